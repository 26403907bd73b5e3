//! `fwd-veth`: gen — R — sink namespaces joined by veth pairs; a 64 B UDP
//! flood from gen to sink through R, forwarded by (a) the Linux kernel and
//! (b) the Patronus engine over `afpacket` ports and (c) over `afxdp` ports
//! (native XDP on veth, copy mode), in the same run, after calibrating the
//! generator against a directly attached sink.
//!
//! The sink counts the flood at its veth and drops it at the netdev
//! ingress hook (nftables), before any IP processing: veth runs the
//! receiver's stack in the sender's context, so a sink that routed each
//! packet (a route lookup and a dst per packet for a destination it does
//! not own) charged that work to whoever sent last — the generator's core
//! for the kernel router, the worker's core for the engine (≈ 40 % of an
//! AF_XDP worker's time, measured with `perf record`). ARP passes.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Instant;

use anyhow::Context;

use super::Options;
use crate::engine::{self, EngineProcess, EngineStats};
use crate::generator::{GenConfig, Generator};
use crate::netns::{sleep_checked, End, Lab};
use crate::report::{Report, Row};
use crate::sysstat::{self, ProcStat};

use super::rounds::{median, merge_rounds, same_round_ratios};

const FRAME_LEN: usize = 64;
const FLOWS: u32 = 64;
const GEN_SRC: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 10);
/// Not local to the sink, which does not forward: it counts and drops them.
const GEN_DST: Ipv4Addr = Ipv4Addr::new(10, 3, 0, 1);
const SINK_ADDR: &str = "10.2.0.2";
const SEND_BATCH: usize = crate::generator::SEND_BATCH;

/// What one measured window saw.
#[derive(Debug)]
struct Window {
    secs: f64,
    /// Frames the generator handed to the kernel.
    sent: u64,
    /// Frames counted at the sink's veth.
    delivered: u64,
    /// Per-core time split (for the busy percentages only: the machine is
    /// shared, so whole-machine deltas include other people's work).
    cpu: ProcStat,
    /// Generator thread utime+stime (includes softirq work on its core).
    gen_ns: u64,
    /// Part of `gen_ns` spent waiting for free ring slots.
    gen_wait_ns: u64,
    ksoftirqd_ns: u64,
    /// ksoftirqd/<router core> alone (part of `ksoftirqd_ns`).
    router_core_ksoftirqd: u64,
    engine_ns: Option<u64>,
    /// Engine (busy_polls, idle_polls) over the window.
    engine_polls: Option<(u64, u64)>,
}

impl Window {
    fn core_busy_pct(&self, core: usize) -> f64 {
        self.cpu
            .cores
            .get(core)
            .map(|c| {
                let all = c.busy() + c.idle + c.steal;
                if all == 0 {
                    0.0
                } else {
                    100.0 * c.busy() as f64 / all as f64
                }
            })
            .unwrap_or(0.0)
    }

    /// Generator thread CPU minus its waits for ring slots.
    fn gen_work_ns(&self) -> f64 {
        self.gen_ns.saturating_sub(self.gen_wait_ns) as f64
    }

    /// Share of the window the generator waited for ring slots, in %.
    fn gen_wait_pct(&self) -> f64 {
        self.gen_wait_ns as f64 / 1e7 / self.secs
    }

    /// CPU nanoseconds attributable to the router: what the generator thread spent
    /// beyond its solo cost per frame (the softirq work its sends triggered
    /// in R), plus ksoftirqd, plus the engine process.
    fn router_ns(&self, gen_cost_per_sent: f64) -> f64 {
        let gen_excess = self.gen_work_ns() - gen_cost_per_sent * self.sent as f64;
        gen_excess.max(0.0) + self.ksoftirqd_ns as f64 + self.engine_ns.unwrap_or(0) as f64
    }
}

/// The engine's port driver on R's veth ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Driver {
    /// TPACKET_V3 RX ring, `sendmmsg` TX.
    AfPacket,
    /// AF_XDP sockets behind the driver's native XDP program (copy mode on veth).
    AfXdp,
}

impl Driver {
    /// The row's name (the afpacket row keeps the name of earlier reports).
    fn system(self) -> &'static str {
        match self {
            Driver::AfPacket => "patronus",
            Driver::AfXdp => "patronus-afxdp",
        }
    }

    /// The `[[port]]` lines after `name`.
    pub(super) fn port_keys(self, iface: &str) -> String {
        match self {
            Driver::AfPacket => format!("driver = \"afpacket\"\niface = \"{iface}\"\n"),
            Driver::AfXdp => format!(
                "driver = \"afxdp\"\niface = \"{iface}\"\n\n[port.afxdp]\nxdp_mode = \"native\"\nbind = \"copy\"\n"
            ),
        }
    }
}

/// Generator-thread CPU nanoseconds per frame sent in the calibration run.
#[derive(Clone, Copy, Debug, Default)]
struct GenCost {
    per_sent: f64,
}

pub fn run(opts: &Options) -> anyhow::Result<Report> {
    let mut report = Report::new("fwd-veth");
    let tick_ns = 1e9 / sysstat::ticks_per_sec();

    // Rounds interleave the systems so slow drifts in the machine's load hit
    // all of them alike; each round pairs its own rows.
    let mut rounds: Vec<Vec<Row>> = Vec::new();
    for _ in 0..opts.rounds.max(1) {
        rounds.push(one_round(opts, tick_ns)?);
    }
    report.rows = merge_rounds(&rounds, &mut report.notes);

    report.set_ratio("patronus", "linux-kernel");
    for system in ["patronus", "patronus-afxdp"] {
        let ratio = if rounds.len() > 1 {
            // The median of same-round ratios is steadier than a ratio of medians.
            let mut ratios = same_round_ratios(&rounds, system, "linux-kernel");
            report.notes.push(format!(
                "per-round ratios {system} / linux-kernel: {}",
                ratios
                    .iter()
                    .map(|r| format!("{r:.3}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            median(&mut ratios)
        } else {
            report.pps_ratio(system, "linux-kernel")
        };
        if system == "patronus" {
            report.ratio = ratio;
        }
        report.push_ratio(system, "linux-kernel", ratio);
    }
    if let Some(r) = report.ratio {
        report
            .notes
            .push(format!("ratio patronus / linux-kernel (defaults) = {r:.3}"));
    }
    let pps = |n: &str| {
        report
            .rows
            .iter()
            .find(|r| r.system == n)
            .and_then(|r| r.pps)
    };
    if let (Some(p), Some(k)) = (pps("patronus"), pps("linux-kernel-rps")) {
        if k > 0.0 {
            report.notes.push(format!(
                "ratio patronus / linux-kernel-rps (kernel given the router core too) = {:.3}",
                p / k
            ));
        }
    }
    report.notes.push(format!(
        "{FLOWS} UDP flows, {FRAME_LEN} B frames; delivered = rx_packets of the sink's veth over the window; \
         generator on core {}, router (engine worker) on core {}; generator thread, engine and the harness's scheduler autogroup at nice {}",
        opts.gen_core, opts.router_core, opts.nice
    ));
    report.notes.push(
        "CPU is charged per thread (no IRQ_TIME_ACCOUNTING here, so softirq work is charged to the thread it \
         interrupts): linux-kernel cpu = (generator thread CPU - its solo CPU per frame x frames sent \
         + ksoftirqd CPU) / delivered; patronus cpu = engine process CPU / delivered (a \
         busy-polling worker shows 100% of its core whatever the load); machine_cpu adds, for patronus, the \
         generator's excess (AF_PACKET delivery into R in the sender's softirq) and ksoftirqd; \
         generator-only cpu = generator thread CPU per frame. Thread CPU times come from /proc/*/schedstat (ns)."
            .into(),
    );
    Ok(report)
}

fn gen_config(opts: &Options, from: &End, to_mac: [u8; 6]) -> GenConfig {
    GenConfig {
        netns: Some(from.netns.clone()),
        iface: from.iface.clone(),
        src_mac: from.mac_bytes(),
        dst_mac: to_mac,
        frame_len: FRAME_LEN,
        flows: FLOWS,
        src_base: GEN_SRC,
        dst_base: GEN_DST,
        core: Some(opts.gen_core),
        nice: opts.nice,
    }
}

/// One calibration, kernel and Patronus run, in that order.
fn one_round(opts: &Options, tick_ns: f64) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    // 1. The generator alone, into a directly attached sink.
    let (cal_row, cost) = calibrate(opts)?;
    let cal_pps = cal_row.pps.unwrap_or(0.0);
    rows.push(cal_row);

    // 2. The kernel forwarding in R: defaults (forwarding in the sender's
    // softirq), then optionally with RPS steering R's receive work to the
    // router core.
    let variants: &[bool] = if opts.rps { &[false, true] } else { &[false] };
    for &rps in variants {
        let name = if rps {
            "linux-kernel-rps"
        } else {
            "linux-kernel"
        };
        rows.push(match kernel_router(opts, &cost, cal_pps, tick_ns, rps) {
            Ok(r) => r,
            Err(e) if crate::netns::stop_requested() => return Err(e),
            Err(e) => Row::not_run(name, FRAME_LEN, format!("{e:#}")),
        });
    }

    // 3. Patronus in R, over AF_PACKET and over AF_XDP.
    for driver in [Driver::AfPacket, Driver::AfXdp] {
        rows.push(match patronus_router(opts, &cost, cal_pps, driver) {
            Ok(r) => r,
            Err(e) if crate::netns::stop_requested() => return Err(e),
            Err(e) => Row::not_run(driver.system(), FRAME_LEN, format!("{e:#}")),
        });
    }
    Ok(rows)
}

/// Warm-up, then one window of `opts.duration`.
fn measure(
    opts: &Options,
    gen: &Generator,
    sink: &End,
    engine: Option<(&EngineProcess, &Path)>,
) -> anyhow::Result<Window> {
    sleep_checked(opts.warmup)?;
    let snap = || -> anyhow::Result<_> {
        let polls = engine
            .map(|(e, path)| e.snapshot(path).map(|st| (st.busy_polls, st.idle_polls)))
            .transpose()?;
        Ok((
            Instant::now(),
            gen.sent(),
            sysstat::if_counters(&sink.netns, &sink.iface)?.rx_packets,
            ProcStat::read()?,
            gen.cpu_ns()?,
            gen.wait_ns(),
            sysstat::ksoftirqd_ns(None),
            sysstat::ksoftirqd_ns(Some(opts.router_core)),
            engine
                .map(|(e, _)| sysstat::process_cpu_ns(e.pid()))
                .transpose()?,
            polls,
        ))
    };
    let (t0, s0, d0, c0, g0, w0, k0, q0, e0, p0) = snap()?;
    sleep_checked(opts.duration)?;
    let (t1, s1, d1, c1, g1, w1, k1, q1, e1, p1) = snap()?;
    Ok(Window {
        engine_polls: p0
            .zip(p1)
            .map(|(a, b)| (b.0.saturating_sub(a.0), b.1.saturating_sub(a.1))),
        secs: (t1 - t0).as_secs_f64(),
        sent: s1 - s0,
        delivered: d1 - d0,
        cpu: c1.delta(&c0),
        gen_ns: g1.saturating_sub(g0),
        gen_wait_ns: w1.saturating_sub(w0),
        ksoftirqd_ns: k1.saturating_sub(k0),
        router_core_ksoftirqd: q1.saturating_sub(q0),
        engine_ns: e0.zip(e1).map(|(a, b)| b.saturating_sub(a)),
    })
}

fn calibrate(opts: &Options) -> anyhow::Result<(Row, GenCost)> {
    let mut lab = Lab::new("c");
    let gen_ns = lab.add_netns("gen")?;
    let sink_ns = lab.add_netns("sink")?;
    let g0 = End::new(&gen_ns, "g0", [1, 1]);
    let s0 = End::new(&sink_ns, "s0", [1, 2]);
    lab.veth(&g0, &s0)?;
    lab.ip(&sink_ns, &["addr", "add", "10.2.0.2/24", "dev", &s0.iface])?;
    sink_drops_the_flood(&s0)?;

    let gen = Generator::start(gen_config(opts, &g0, s0.mac_bytes()))?;
    let w = measure(opts, &gen, &s0, None)?;
    gen.stop()?;

    let cost = GenCost {
        per_sent: w.gen_work_ns() / w.sent.max(1) as f64,
    };
    let gen_share = w.gen_ns as f64 / 1e9 / w.secs;
    let mut row = Row {
        system: "generator-only".into(),
        packet_size: FRAME_LEN,
        offered_pps: Some(w.sent as f64 / w.secs),
        cpu_ns_per_packet: Some(cost.per_sent),
        limited_by: format!(
            "generator (its thread got {:.0}% of core {}, which was {:.0}% busy)",
            gen_share * 100.0,
            opts.gen_core,
            w.core_busy_pct(opts.gen_core)
        ),
        ..Row::default()
    };
    row.set_rate(w.delivered, w.secs);
    row.notes.push(format!(
        "AF_PACKET TX ring (TPACKET_V2, qdisc bypass, {SEND_BATCH} frames per send) straight into the \
         sink's veth (which drops it at its ingress hook); cpu = generator thread CPU per frame (incl. the \
         sink's receive softirq); \
         at 100% of a core it would send {:.3} Mpps",
        1e3 / (cost.per_sent).max(1e-9)
    ));
    Ok((row, cost))
}

/// gen — R — sink; returns the lab and the four veth ends (g0, r0, r1, s0).
fn router_lab(tag: &str) -> anyhow::Result<(Lab, [End; 4])> {
    let mut lab = Lab::new(tag);
    let gen_ns = lab.add_netns("gen")?;
    let r_ns = lab.add_netns("r")?;
    let sink_ns = lab.add_netns("sink")?;
    let g0 = End::new(&gen_ns, "g0", [2, 1]);
    let r0 = End::new(&r_ns, "r0", [2, 2]);
    let r1 = End::new(&r_ns, "r1", [3, 1]);
    let s0 = End::new(&sink_ns, "s0", [3, 2]);
    lab.veth(&g0, &r0)?;
    lab.veth(&r1, &s0)?;
    lab.ip(&sink_ns, &["addr", "add", "10.2.0.2/24", "dev", &s0.iface])?;
    sink_drops_the_flood(&s0)?;
    Ok((lab, [g0, r0, r1, s0]))
}

/// An nftables netdev ingress chain on the sink's veth that drops the
/// flood (to `GEN_DST`'s /16) before IP processing; the veth has counted
/// it by then. Everything else (ARP) passes.
fn sink_drops_the_flood(s0: &End) -> anyhow::Result<()> {
    let nft = |args: &[&str]| -> anyhow::Result<()> {
        let mut all = vec!["netns", "exec", &s0.netns, "nft"];
        all.extend_from_slice(args);
        crate::netns::run("ip", &all).map(|_| ())
    };
    nft(&["add", "table", "netdev", "sink"])?;
    nft(&[
        "add", "chain", "netdev", "sink", "in", "{", "type", "filter", "hook", "ingress", "device",
        &s0.iface, "priority", "0", ";", "}",
    ])?;
    let flood = format!("{}/16", Ipv4Addr::from(u32::from(GEN_DST) & 0xffff_0000));
    nft(&[
        "add", "rule", "netdev", "sink", "in", "ip", "daddr", &flood, "drop",
    ])
}

/// `Some("router: ...")` when the router dropped over 10% of what the
/// generator sent, or held the generator back (it waited over 20% of the
/// window for ring slots, which free only as frames are consumed downstream).
fn router_loss(w: &Window) -> Option<String> {
    if w.gen_wait_pct() > 20.0 {
        return Some(format!(
            "router: the generator waited {:.0}% of the window for TX-ring slots held by frames queued downstream",
            w.gen_wait_pct()
        ));
    }
    let lost = w.sent.saturating_sub(w.delivered);
    if w.sent == 0 || (lost as f64) <= 0.1 * w.sent as f64 {
        return None;
    }
    Some(format!(
        "router: lost {:.1}% of the offered {:.3} Mpps",
        100.0 * lost as f64 / w.sent as f64,
        w.sent as f64 / w.secs / 1e6
    ))
}

fn kernel_router(
    opts: &Options,
    cost: &GenCost,
    cal_pps: f64,
    tick_ns: f64,
    rps: bool,
) -> anyhow::Result<Row> {
    let (lab, [g0, r0, r1, s0]) = router_lab(if rps { "q" } else { "k" })?;
    let r_ns = &r0.netns;
    if rps {
        // Receive Packet Steering: r0's receive processing (and with it R's
        // forwarding) moves to the router core's backlog.
        let mask = format!("{:x}", 1u64 << opts.router_core);
        let file = format!("/sys/class/net/{}/queues/rx-0/rps_cpus", r0.iface);
        crate::netns::run(
            "ip",
            &[
                "netns",
                "exec",
                r_ns,
                "sh",
                "-c",
                &format!("echo {mask} > {file}"),
            ],
        )?;
    }
    lab.sysctl(r_ns, "net.ipv4.ip_forward", "1")?;
    lab.ip(r_ns, &["addr", "add", "10.1.0.1/24", "dev", &r0.iface])?;
    lab.ip(r_ns, &["addr", "add", "10.2.0.1/24", "dev", &r1.iface])?;
    lab.ip(r_ns, &["route", "add", "10.3.0.0/16", "via", SINK_ADDR])?;
    lab.ip(
        r_ns,
        &[
            "neigh",
            "replace",
            SINK_ADDR,
            "lladdr",
            &s0.mac,
            "dev",
            &r1.iface,
            "nud",
            "permanent",
        ],
    )?;

    let gen = Generator::start(gen_config(opts, &g0, r0.mac_bytes()))?;
    let w = measure(opts, &gen, &s0, None)?;
    gen.stop()?;

    let mut router = w.router_ns(cost.per_sent);
    if rps {
        // Steered work runs in softirq on the router core, charged to
        // whichever task is there; count that core's irq+softirq ticks
        // (ksoftirqd on it is already inside them).
        router += w.cpu.cores.get(opts.router_core).map_or(0, |c| c.irq) as f64 * tick_ns;
        router -= w.router_core_ksoftirqd as f64;
    }
    let mut row = Row {
        system: if rps {
            "linux-kernel-rps"
        } else {
            "linux-kernel"
        }
        .into(),
        packet_size: FRAME_LEN,
        offered_pps: Some(w.sent as f64 / w.secs),
        ..Row::default()
    };
    row.set_rate(w.delivered, w.secs);
    let delivered = w.delivered.max(1) as f64;
    row.cpu_ns_per_packet = Some(router / delivered);
    row.machine_cpu_ns_per_packet = row.cpu_ns_per_packet;
    row.limited_by = router_loss(&w).unwrap_or_else(|| {
        if rps {
            return format!(
                "generator: forwarding runs on core {} via RPS; the generator thread got {:.0}% of core {} \
                 (solo rate {:.3} Mpps)",
                opts.router_core,
                w.gen_ns as f64 / 1e7 / w.secs,
                opts.gen_core,
                cal_pps / 1e6
            );
        }
        format!(
            "generator core: the kernel forwards in the sender's softirq, so generation and forwarding \
             share core {} ({:.0}% busy; generator alone {:.3} Mpps)",
            opts.gen_core,
            w.core_busy_pct(opts.gen_core),
            cal_pps / 1e6
        )
    });
    row.notes.push(format!(
        "ip_forward=1, static neighbour{}; generator thread (which also runs R's forwarding softirq) got \
         {:.0}% of core {} (waiting for ring slots {:.0}%); core busy: gen core {:.0}%, other core {:.0}%; ksoftirqd {:.0} ms; at {:.0} ns \
         per packet one dedicated core would forward ≈ {:.2} Mpps",
        if rps { ", RPS on R's ingress veth to the router core" } else { "" },
        w.gen_ns as f64 / 1e7 / w.secs,
        opts.gen_core,
        w.gen_wait_pct(),
        w.core_busy_pct(opts.gen_core),
        w.core_busy_pct(opts.router_core),
        w.ksoftirqd_ns as f64 / 1e6,
        router / delivered,
        1e3 / (router / delivered).max(1e-9)
    ));
    Ok(row)
}

/// Engine config for R: ports of `driver` on r0/r1, a route to the sink.
fn engine_config(opts: &Options, r0: &End, r1: &End, driver: Driver) -> String {
    format!(
        r#"# fwd-veth: Patronus as the router R
[engine]
workers = 1
poll = "busy"
cores = [{core}]

[[port]]
name = "lan0"
{lan_keys}
[[port]]
name = "wan0"
{wan_keys}

[[interface]]
port = "lan0"
address = "10.1.0.1/24"

[[interface]]
port = "wan0"
address = "10.2.0.1/24"

[[route]]
prefix = "10.3.0.0/16"
via = "{SINK_ADDR}"
"#,
        core = opts.router_core,
        lan_keys = driver.port_keys(&r0.iface),
        wan_keys = driver.port_keys(&r1.iface),
    )
}

fn patronus_router(
    opts: &Options,
    cost: &GenCost,
    cal_pps: f64,
    driver: Driver,
) -> anyhow::Result<Row> {
    let engine_bin = engine::locate(opts.engine.as_deref())?;
    let (lab, [g0, r0, r1, s0]) = router_lab(match driver {
        Driver::AfPacket => "p",
        Driver::AfXdp => "x",
    })?;
    // The engine owns R's veth ends: no kernel address, no IPv6, no forwarding.
    for end in [&r0, &r1] {
        lab.sysctl(
            &end.netns,
            &format!("net.ipv6.conf.{}.disable_ipv6", end.iface),
            "1",
        )?;
    }
    let dir = &opts.workdir;
    let config = dir.join("fwd-veth-engine.toml");
    std::fs::write(&config, engine_config(opts, &r0, &r1, driver))?;
    engine::check_config(&engine_bin, &config)?;
    let stats_path = dir.join("fwd-veth-stats.json");
    let mut eng = EngineProcess::spawn(
        &engine_bin,
        &config,
        &stats_path,
        Some(&r0.netns),
        opts.nice,
        &dir.join("fwd-veth-engine.log"),
    )?;
    sleep_checked(std::time::Duration::from_millis(500))?;
    if let Some(info) = eng.exited()? {
        anyhow::bail!(
            "engine exited at start-up (code {:?}): {}",
            info.code,
            info.output.trim()
        );
    }

    let idle_poll_ns = idle_poll_cost(&eng, &stats_path);
    let gen = Generator::start(gen_config(opts, &g0, r0.mac_bytes()))?;
    let measured = measure(opts, &gen, &s0, Some((&eng, &stats_path)));
    gen.stop()?;
    let info = eng.stop()?;
    let w = measured?;
    let stats = read_stats(&stats_path);

    let router = w.router_ns(cost.per_sent);
    let mut row = Row {
        system: driver.system().into(),
        packet_size: FRAME_LEN,
        offered_pps: Some(w.sent as f64 / w.secs),
        ..Row::default()
    };
    row.set_rate(w.delivered, w.secs);
    let delivered = w.delivered.max(1) as f64;
    row.cpu_ns_per_packet = w.engine_ns.map(|t| t as f64 / delivered);
    row.machine_cpu_ns_per_packet = Some(router / delivered);
    match (&idle_poll_ns, w.engine_ns, w.engine_polls) {
        (Ok(per_poll), Some(ticks), Some((busy_polls, idle_polls))) => {
            let busy = (ticks as f64 - idle_polls as f64 * per_poll).max(0.0);
            row.busy_cpu_ns_per_packet = Some(busy / delivered);
            row.notes.push(format!(
                "busy-time estimate: {busy_polls} non-empty / {idle_polls} empty polls in the window, one \
                 empty poll ≈ {:.0} ns (measured idle before the flood)",
                per_poll
            ));
        }
        (Err(e), _, _) => row.notes.push(format!("no busy-time estimate: {e:#}")),
        _ => row
            .notes
            .push("no busy-time estimate: engine poll counters unavailable".into()),
    }
    let offered = w.sent as f64 / w.secs;
    row.limited_by = router_loss(&w).unwrap_or_else(|| {
        if offered >= 0.9 * cal_pps {
            format!(
                "generator: the engine delivered what the generator offered ({:.3} Mpps, its solo rate {:.3} Mpps)",
                offered / 1e6,
                cal_pps / 1e6
            )
        } else {
            format!(
                "generator core: offered load fell to {:.0}% of the generator's solo rate (delivery to the \
                 engine's socket, AF_PACKET or XDP, runs in the sender's softirq on core {})",
                100.0 * offered / cal_pps.max(1.0),
                opts.gen_core
            )
        }
    });
    row.notes.push(format!(
        "engine process CPU over the window: {:.0}% of one core (busy poll); generator thread got {:.0}% of core {} \
         (waiting for ring slots {:.0}%); core busy: gen core {:.0}%, engine core {:.0}%; ksoftirqd {:.0} ms",
        w.engine_ns.unwrap_or(0) as f64 / 1e9 / w.secs * 100.0,
        w.gen_ns as f64 / 1e7 / w.secs,
        opts.gen_core,
        w.gen_wait_pct(),
        w.core_busy_pct(opts.gen_core),
        w.core_busy_pct(opts.router_core),
        w.ksoftirqd_ns as f64 / 1e6
    ));
    match stats {
        Ok(st) => {
            let missed: u64 = st.ports.iter().map(|p| p.rx_missed).sum();
            let tx_errors: u64 = st.ports.iter().map(|p| p.tx_errors).sum();
            row.notes.push(format!(
                "engine counters over its whole run: lan0 rx {}, wan0 tx {}, rx_missed {}, tx_errors {}, drops {} ({})",
                st.port("lan0").map_or(0, |p| p.rx_packets),
                st.port("wan0").map_or(0, |p| p.tx_packets),
                missed,
                tx_errors,
                st.drops_total,
                st.drops_summary()
            ));
        }
        Err(e) => row.notes.push(format!("no engine stats: {e:#}")),
    }
    if !info.success {
        row.notes
            .push(format!("engine exit code {:?} on SIGINT", info.code));
    }
    // How the afxdp driver bound (native/generic XDP, copy/zero-copy), as it says.
    for line in info.output.lines().filter(|l| l.contains("AF_XDP on")) {
        row.notes.push(format!("engine: {}", line.trim()));
    }
    drop(lab);
    Ok(row)
}

/// CPU nanoseconds per empty poll of the idle engine, over one second before any
/// traffic (the worker busy-polls, so nearly all its time is empty polls).
fn idle_poll_cost(eng: &EngineProcess, stats: &Path) -> anyhow::Result<f64> {
    let a = eng.snapshot(stats)?;
    let ta = sysstat::process_cpu_ns(eng.pid())?;
    sleep_checked(std::time::Duration::from_secs(1))?;
    let b = eng.snapshot(stats)?;
    let tb = sysstat::process_cpu_ns(eng.pid())?;
    let idle = b.idle_polls.saturating_sub(a.idle_polls);
    if idle == 0 {
        anyhow::bail!("engine reported no empty polls while idle");
    }
    Ok(tb.saturating_sub(ta) as f64 / idle as f64)
}

fn read_stats(path: &Path) -> anyhow::Result<EngineStats> {
    EngineStats::read(path).context("engine --stats-json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn router_loss_names_drops_and_back_pressure() {
        let w = |sent, delivered, wait_ns| Window {
            secs: 1.0,
            sent,
            delivered,
            cpu: ProcStat::default(),
            gen_ns: 0,
            gen_wait_ns: wait_ns,
            ksoftirqd_ns: 0,
            router_core_ksoftirqd: 0,
            engine_ns: None,
            engine_polls: None,
        };
        assert!(router_loss(&w(100, 95, 0)).is_none());
        assert!(router_loss(&w(100, 50, 0)).unwrap().contains("lost 50.0%"));
        assert!(router_loss(&w(100, 100, 500_000_000))
            .unwrap()
            .contains("waited 50%"));
    }
}
