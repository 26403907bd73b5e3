//! `nat-veth`: inside host — router — outside server namespaces joined by
//! veth pairs; iperf3 (TCP, then UDP; several streams) from the inside host
//! to the outside server through the router doing source NAT, by (a) the
//! kernel with nftables masquerade and (b) the Patronus engine with `[nat]`
//! on its outside port (afpacket, then afxdp ports), in the same run. The
//! outside server has no route to the inside subnet, so traffic only flows
//! when the router translates.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::fwd_veth::Driver;
use super::rounds::{median, merge_rounds_by, same_round_ratios_by, Key};
use super::udp_rate;
use super::Options;
use crate::engine::{self, EngineProcess};
use crate::netns::{sleep_checked, End, Lab};
use crate::report::{Report, Row};
use crate::sysstat::{self, ProcStat};

const INSIDE_HOST: &str = "10.1.0.2";
const ROUTER_INSIDE: &str = "10.1.0.1";
/// The router's outside address: the masquerade source and the NAT pool.
const ROUTER_OUTSIDE: &str = "203.0.113.1";
const SERVER: &str = "203.0.113.2";
const IPERF_PORT: &str = "5201";
/// UDP datagram size: a 1428-byte IP packet, below the veth MTU.
const UDP_LEN: usize = 1400;
/// Loss a UDP rate probe may have and still pass, in percent.
const UDP_MAX_LOSS_PCT: f64 = 0.5;
/// Probes of a UDP rate search, each `UDP_PROBE_SECS` after a second's warm-up.
const UDP_PROBES: usize = 7;
const UDP_PROBE_SECS: u64 = 3;
/// First offered rate of a search (all streams).
const UDP_START_BPS: f64 = 1e9;

/// The traffic of one row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Traffic {
    Tcp,
    /// Unlimited rate (`-b 0`), `UDP_LEN`-byte datagrams.
    Udp,
    /// `UDP_LEN`-byte datagrams at the highest rate the router carries
    /// with at most `UDP_MAX_LOSS_PCT` loss ([`super::udp_rate`]).
    UdpRate,
}

impl Traffic {
    fn name(self) -> &'static str {
        match self {
            Traffic::Tcp => "tcp",
            Traffic::Udp => "udp",
            Traffic::UdpRate => "udp-rate",
        }
    }
}

/// The router of one row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Router {
    Nftables,
    Engine(Driver, Poll),
}

/// The engine worker's `poll` mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Poll {
    /// Spins on its core whether or not traffic comes.
    Busy,
    /// The engine's default: backs off and sleeps when idle, leaving its
    /// core to the co-located iperf3 ends.
    Adaptive,
}

impl Poll {
    fn config(self) -> &'static str {
        match self {
            Poll::Busy => "busy",
            Poll::Adaptive => "adaptive",
        }
    }
}

impl Router {
    fn system(self, t: Traffic) -> String {
        let r = match self {
            Router::Nftables => "nftables",
            Router::Engine(Driver::AfPacket, Poll::Busy) => "patronus",
            Router::Engine(Driver::AfPacket, Poll::Adaptive) => "patronus-adaptive",
            Router::Engine(Driver::AfXdp, Poll::Busy) => "patronus-afxdp",
            Router::Engine(Driver::AfXdp, Poll::Adaptive) => "patronus-afxdp-adaptive",
        };
        format!("{r}-{}", t.name())
    }
}

const TRAFFIC: [Traffic; 3] = [Traffic::Tcp, Traffic::Udp, Traffic::UdpRate];

const ROUTERS: [Router; 4] = [
    Router::Nftables,
    Router::Engine(Driver::AfPacket, Poll::Busy),
    Router::Engine(Driver::AfPacket, Poll::Adaptive),
    Router::Engine(Driver::AfXdp, Poll::Busy),
];

pub fn run(opts: &Options, streams: usize) -> anyhow::Result<Report> {
    let mut report = Report::new("nat-veth");
    let streams = streams.clamp(1, 128);
    let mut rounds: Vec<Vec<Row>> = Vec::new();
    for _ in 0..opts.rounds.max(1) {
        let mut rows = Vec::new();
        for traffic in TRAFFIC {
            for router in ROUTERS {
                rows.push(match run_one(opts, router, traffic, streams) {
                    Ok(r) => r,
                    Err(e) if crate::netns::stop_requested() => return Err(e),
                    Err(e) => Row::not_run(&router.system(traffic), 0, format!("{e:#}")),
                });
            }
        }
        rounds.push(rows);
    }
    report.rows = merge_rounds_by(&rounds, &mut report.notes, Key::Bps);
    for traffic in TRAFFIC {
        let base = Router::Nftables.system(traffic);
        for router in &ROUTERS[1..] {
            let sys = router.system(traffic);
            let mut ratios = same_round_ratios_by(&rounds, &sys, &base, Key::Bps);
            if rounds.len() > 1 {
                report.notes.push(format!(
                    "per-round ratios {sys} / {base} (bit rate): {}",
                    ratios
                        .iter()
                        .map(|r| format!("{r:.3}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            let ratio = median(&mut ratios);
            if traffic == Traffic::Tcp && *router == Router::Engine(Driver::AfPacket, Poll::Busy) {
                report.ratio = ratio;
            }
            report.push_ratio(&sys, &base, ratio);
        }
    }
    report.notes.push(format!(
        "iperf3 -P {streams} from {INSIDE_HOST} (inside namespace) to {SERVER} (outside namespace) through \
         the router namespace; {}s measured after {}s omitted (-O); TCP with the veth offloads left on \
         (TSO/GSO, checksum offload); UDP -b 0 -l {UDP_LEN} (a flood: the receiving iperf3 drops most of \
         it); udp-rate: -l {UDP_LEN} at the highest offered rate (of {UDP_PROBES} probes of \
         {UDP_PROBE_SECS}s, doubling from {:.1} Gbit/s then bisecting) that lost at most {UDP_MAX_LOSS_PCT}% \
         (RFC 2544 throughput with a loss allowance), Gbit/s = the goodput of that probe. Ratios are bit \
         rate / nftables of the same traffic; Gbit/s = iperf3's received goodput (TCP: sum_received; UDP: \
         received datagrams); Mpps = frames counted at the outside server's veth over the whole iperf3 \
         run (TSO frames count once)",
        secs(opts.duration),
        secs(opts.warmup),
        UDP_START_BPS / 1e9
    ));
    report.notes.push(format!(
        "nftables: ip_forward=1 and `oifname <outside veth> masquerade` in a nat postrouting chain; \
         patronus: one busy-polling worker pinned to core {} at nice {} (patronus-adaptive: the same with \
         the engine's default poll = \"adaptive\", which sleeps when idle), [nat] outside = wan0, pool = \
         [{ROUTER_OUTSIDE}]; iperf3 client and server are not pinned (the scheduler places them), so with \
         the engine they share the core the worker leaves, while the kernel routes in softirq on whichever \
         core sends; core busy % per row says where the CPU went. The outside server has no route back to \
         the inside subnet, so a row that moved traffic was translated",
        opts.router_core, opts.nice
    ));
    Ok(report)
}

/// Whole seconds for iperf3's -t / -O (at least 1 for -t).
pub(super) fn secs(d: Duration) -> u64 {
    d.as_secs_f64().round() as u64
}

/// inside — R — outside; returns the lab and the ends (i0, r0, r1, o0).
fn nat_lab(tag: &str) -> anyhow::Result<(Lab, [End; 4])> {
    let mut lab = Lab::new(tag);
    let in_ns = lab.add_netns("in")?;
    let r_ns = lab.add_netns("r")?;
    let out_ns = lab.add_netns("out")?;
    let i0 = End::new(&in_ns, "i0", [4, 1]);
    let r0 = End::new(&r_ns, "r0", [4, 2]);
    let r1 = End::new(&r_ns, "r1", [5, 1]);
    let o0 = End::new(&out_ns, "o0", [5, 2]);
    lab.veth(&i0, &r0)?;
    lab.veth(&r1, &o0)?;
    lab.ip(
        &in_ns,
        &[
            "addr",
            "add",
            &format!("{INSIDE_HOST}/24"),
            "dev",
            &i0.iface,
        ],
    )?;
    lab.ip(&in_ns, &["route", "add", "default", "via", ROUTER_INSIDE])?;
    lab.ip(
        &out_ns,
        &["addr", "add", &format!("{SERVER}/24"), "dev", &o0.iface],
    )?;
    Ok((lab, [i0, r0, r1, o0]))
}

/// The nftables ruleset of the kernel router.
fn nft_ruleset(outside_iface: &str) -> String {
    format!(
        "table ip pperf_nat {{\n  chain postrouting {{\n    type nat hook postrouting priority 100; policy accept;\n    oifname \"{outside_iface}\" masquerade\n  }}\n}}\n"
    )
}

/// Engine config for R: ports of `driver` on r0/r1, source NAT to the
/// outside address.
fn engine_config(opts: &Options, r0: &End, r1: &End, driver: Driver, poll: Poll) -> String {
    format!(
        r#"# nat-veth: Patronus as the NAT router R
[engine]
workers = 1
poll = "{poll}"
cores = [{core}]

[[port]]
name = "lan0"
{lan_keys}
[[port]]
name = "wan0"
{wan_keys}

[[interface]]
port = "lan0"
address = "{ROUTER_INSIDE}/24"

[[interface]]
port = "wan0"
address = "{ROUTER_OUTSIDE}/24"

[nat]
outside = "wan0"
pool = ["{ROUTER_OUTSIDE}"]
"#,
        core = opts.router_core,
        poll = poll.config(),
        lan_keys = driver.port_keys(&r0.iface),
        wan_keys = driver.port_keys(&r1.iface),
    )
}

/// A child process killed (and reaped) on drop.
pub(super) struct ChildGuard(pub(super) Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run_one(
    opts: &Options,
    router: Router,
    traffic: Traffic,
    streams: usize,
) -> anyhow::Result<Row> {
    let tag = match router {
        Router::Nftables => "n",
        Router::Engine(Driver::AfPacket, Poll::Busy) => "e",
        Router::Engine(Driver::AfPacket, Poll::Adaptive) => "d",
        Router::Engine(Driver::AfXdp, _) => "a",
    };
    let (lab, [i0, r0, r1, o0]) = nat_lab(tag)?;
    let r_ns = r0.netns.clone();
    let dir = &opts.workdir;
    let system = router.system(traffic);
    // The engine (declared after the lab so it stops before the lab goes).
    let mut eng: Option<(EngineProcess, std::path::PathBuf)> = None;
    match router {
        Router::Nftables => {
            lab.sysctl(&r_ns, "net.ipv4.ip_forward", "1")?;
            lab.ip(
                &r_ns,
                &[
                    "addr",
                    "add",
                    &format!("{ROUTER_INSIDE}/24"),
                    "dev",
                    &r0.iface,
                ],
            )?;
            lab.ip(
                &r_ns,
                &[
                    "addr",
                    "add",
                    &format!("{ROUTER_OUTSIDE}/24"),
                    "dev",
                    &r1.iface,
                ],
            )?;
            let file = dir.join("nat-veth.nft");
            std::fs::write(&file, nft_ruleset(&r1.iface))?;
            crate::netns::run(
                "ip",
                &[
                    "netns",
                    "exec",
                    &r_ns,
                    "nft",
                    "-f",
                    file.to_str().context("workdir path")?,
                ],
            )?;
        }
        Router::Engine(driver, poll) => {
            let bin = engine::locate(opts.engine.as_deref())?;
            // The engine owns R's veth ends: no kernel address, no IPv6.
            for end in [&r0, &r1] {
                lab.sysctl(
                    &r_ns,
                    &format!("net.ipv6.conf.{}.disable_ipv6", end.iface),
                    "1",
                )?;
            }
            let config = dir.join("nat-veth-engine.toml");
            std::fs::write(&config, engine_config(opts, &r0, &r1, driver, poll))?;
            engine::check_config(&bin, &config)?;
            let stats = dir.join("nat-veth-stats.json");
            let _ = std::fs::remove_file(&stats);
            let mut e = EngineProcess::spawn(
                &bin,
                &config,
                &stats,
                Some(&r_ns),
                opts.nice,
                &dir.join("nat-veth-engine.log"),
            )?;
            sleep_checked(Duration::from_millis(500))?;
            if let Some(info) = e.exited()? {
                bail!(
                    "engine exited at start-up (code {:?}): {}",
                    info.code,
                    info.output.trim()
                );
            }
            eng = Some((e, stats));
        }
    }

    let server = ChildGuard(
        Command::new("ip")
            .args(["netns", "exec", &o0.netns, "iperf3", "-s", "-p", IPERF_PORT])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting iperf3 -s")?,
    );
    sleep_checked(Duration::from_millis(500))?;

    let engine_before = match &eng {
        Some((e, stats)) => Some((e.snapshot(stats)?, sysstat::process_cpu_ns(e.pid())?)),
        None => None,
    };
    let cpu0 = ProcStat::read()?;
    let frames0 = sysstat::if_counters(&o0.netns, &o0.iface)?.rx_packets;
    let t0 = Instant::now();
    let (out, rate_notes) = if traffic == Traffic::UdpRate {
        udp_rate_search(&i0.netns, streams)?
    } else {
        let out = iperf3_client(opts, &i0.netns, SERVER, IPERF_PORT, traffic, streams)?;
        (out, Vec::new())
    };
    let wall = t0.elapsed().as_secs_f64();
    let frames = sysstat::if_counters(&o0.netns, &o0.iface)?.rx_packets - frames0;
    let cpu = ProcStat::read()?.delta(&cpu0);
    let engine_after = match &eng {
        Some((e, stats)) => Some((e.snapshot(stats)?, sysstat::process_cpu_ns(e.pid())?)),
        None => None,
    };

    let bps = received_bps(&out, traffic)?;
    let mut row = Row {
        system,
        packet_size: match traffic {
            Traffic::Tcp => 0,
            Traffic::Udp | Traffic::UdpRate => UDP_LEN + 42,
        },
        bps: Some(bps),
        // A rate search's frames span all its probes: no single rate.
        pps: (traffic != Traffic::UdpRate).then_some(frames as f64 / wall),
        packets: Some(frames),
        window_secs: Some(wall),
        ..Row::default()
    };
    let busy = |c: usize| {
        cpu.cores.get(c).map_or(0.0, |t| {
            let all = t.busy() + t.idle + t.steal;
            if all == 0 {
                0.0
            } else {
                100.0 * t.busy() as f64 / all as f64
            }
        })
    };
    row.notes.push(format!(
        "core busy over the iperf3 run: core 0 {:.0}%, core 1 {:.0}%; {frames} frames at the server's veth",
        busy(0),
        busy(1)
    ));
    row.limited_by = match router {
        Router::Nftables => {
            "endpoints and the kernel's forwarding share both cores (softirq of the sender)".into()
        }
        Router::Engine(..) => "see notes: engine poll counters".into(),
    };
    if let (Some((a, ca)), Some((b, cb))) = (&engine_before, &engine_after) {
        let busy_polls = b.busy_polls.saturating_sub(a.busy_polls);
        let idle_polls = b.idle_polls.saturating_sub(a.idle_polls);
        let share = busy_polls as f64 / (busy_polls + idle_polls).max(1) as f64;
        let engine_cpu = cb.saturating_sub(*ca) as f64;
        row.cpu_ns_per_packet = Some(engine_cpu / frames.max(1) as f64);
        // The share of polls that found packets alone misleads: a poll that
        // finds a GSO train works for long, and the engine thread's time
        // includes the kernel's work inside its sends (skb copies, veth
        // delivery, the receiver's softirq). Say what was measured.
        let engine_pct = engine_cpu / 1e7 / wall;
        let other = if opts.router_core == 0 { 1 } else { 0 };
        row.limited_by = if share > 0.9 {
            format!(
                "engine: {:.0}% of its polls found packets (its core is the limit)",
                share * 100.0
            )
        } else if engine_pct < 90.0 {
            format!(
                "a shared core: the engine thread ran only {engine_pct:.0}% of its core (the scheduler \
                 gave the rest to iperf3 or softirq work); other core {:.0}% busy",
                busy(other)
            )
        } else {
            format!(
                "not told by the counters: the engine ran {engine_pct:.0}% of its core (its time includes \
                 the kernel's work in its sends), {:.1}% of its polls found packets ({:.0} frames each); \
                 other core {:.0}% busy",
                share * 100.0,
                frames as f64 / busy_polls.max(1) as f64,
                busy(other)
            )
        };
        row.notes.push(format!(
            "engine over the run: {busy_polls} non-empty / {idle_polls} empty polls, {:.0}% of a core; \
             lan0 rx {} / wan0 tx {} (frames), drops {}",
            engine_cpu / 1e7 / wall,
            b.port("lan0")
                .map_or(0, |p| p.rx_packets)
                .saturating_sub(a.port("lan0").map_or(0, |p| p.rx_packets)),
            b.port("wan0")
                .map_or(0, |p| p.tx_packets)
                .saturating_sub(a.port("wan0").map_or(0, |p| p.tx_packets)),
            b.drops_summary()
        ));
        if !b.nat.is_empty() {
            row.notes.push(format!(
                "nat counters: {}",
                b.nat
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    if let Some(note) = udp_loss_note(&out, traffic) {
        row.notes.push(note);
    }
    row.notes.extend(rate_notes);
    drop(server);
    if let Some((e, _)) = eng {
        let info = e.stop()?;
        if !info.success {
            row.notes
                .push(format!("engine exit code {:?} on SIGINT", info.code));
        }
        for line in info.output.lines().filter(|l| l.contains("AF_XDP on")) {
            row.notes.push(format!("engine: {}", line.trim()));
        }
    }
    drop(lab);
    Ok(row)
}

/// The UDP rate search of a `udp-rate` row: returns the report of the best
/// passing probe (or of the last probe when none passed) and a note per
/// probe.
fn udp_rate_search(
    netns: &str,
    streams: usize,
) -> anyhow::Result<(serde_json::Value, Vec<String>)> {
    let mut reports: Vec<serde_json::Value> = Vec::new();
    let s = udp_rate::Search {
        start_bps: UDP_START_BPS,
        probes: UDP_PROBES,
        max_loss_pct: UDP_MAX_LOSS_PCT,
    };
    let (best, probes) = udp_rate::search(s, |offered| {
        // iperf3's -b is per stream.
        let per_stream = format!("{}", (offered / streams as f64).round() as u64);
        let v = iperf3_run(
            netns,
            SERVER,
            IPERF_PORT,
            streams,
            Some(&per_stream),
            UDP_PROBE_SECS,
            1,
        )?;
        let p = udp_rate::Probe {
            offered_bps: offered,
            received_bps: received_bps(&v, Traffic::UdpRate)?,
            loss_pct: udp_rate::loss_percent(&v).context("iperf3 UDP report without loss")?,
        };
        reports.push(v);
        Ok(p)
    })?;
    let notes = probes
        .iter()
        .map(|p| {
            format!(
                "udp-rate probe: offered {:.2} Gbit/s, received {:.2} Gbit/s, lost {:.2}%{}",
                p.offered_bps / 1e9,
                p.received_bps / 1e9,
                p.loss_pct,
                if p.loss_pct <= UDP_MAX_LOSS_PCT {
                    " (pass)"
                } else {
                    ""
                }
            )
        })
        .collect();
    let at = match best {
        Some(b) => probes
            .iter()
            .position(|p| *p == b)
            .context("best probe not among the probes")?,
        None => probes.len() - 1,
    };
    let mut v = reports.swap_remove(at);
    if best.is_none() {
        // No rate passed: the row's goodput is zero, not the failing probe's.
        v["server_output_json"]["end"]["sum"]["bits_per_second"] = serde_json::json!(0.0);
    }
    Ok((v, notes))
}

/// Runs the iperf3 client in `netns` against `server`:`port` and returns
/// its JSON report.
pub(super) fn iperf3_client(
    opts: &Options,
    netns: &str,
    server: &str,
    port: &str,
    traffic: Traffic,
    streams: usize,
) -> anyhow::Result<serde_json::Value> {
    let udp = (traffic != Traffic::Tcp).then_some("0");
    let (t, omit) = (secs(opts.duration).max(1), secs(opts.warmup));
    iperf3_run(netns, server, port, streams, udp, t, omit)
}

/// One iperf3 client run of `t` seconds after `omit` seconds of warm-up;
/// UDP at `-b udp_rate` per stream when `udp_rate` is set, else TCP.
fn iperf3_run(
    netns: &str,
    server: &str,
    port: &str,
    streams: usize,
    udp_rate: Option<&str>,
    t: u64,
    omit: u64,
) -> anyhow::Result<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(t + omit + 30);
    let (t, omit_s, p) = (t.to_string(), omit.to_string(), streams.to_string());
    let len = UDP_LEN.to_string();
    let mut args = vec![
        "netns",
        "exec",
        netns,
        "iperf3",
        "-c",
        server,
        "-p",
        port,
        "-t",
        &t,
        "-O",
        &omit_s,
        "-P",
        &p,
        "-J",
        "--get-server-output",
    ];
    if let Some(b) = udp_rate {
        args.extend_from_slice(&["-u", "-b", b, "-l", &len]);
    }
    let child = Command::new("ip")
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting iperf3 -c")?;
    let mut guard = ChildGuard(child);
    loop {
        if let Some(status) = guard.0.try_wait()? {
            let mut stdout = String::new();
            if let Some(mut o) = guard.0.stdout.take() {
                std::io::Read::read_to_string(&mut o, &mut stdout)?;
            }
            let v: serde_json::Value = serde_json::from_str(&stdout)
                .with_context(|| format!("iperf3 output (exit {status}): {}", stdout.trim()))?;
            if let Some(e) = v.get("error").and_then(|e| e.as_str()) {
                bail!("iperf3: {e}");
            }
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("iperf3 client did not finish in time");
        }
        sleep_checked(Duration::from_millis(100))?;
    }
}

/// Received goodput in bit/s: TCP's `end.sum_received`; for UDP the
/// server's own sum (`--get-server-output`: what it received), else the
/// sender's rate minus the lost share (iperf3 3.12's client-side loss can
/// exceed 100% with -O and several streams, so it is only the fallback).
pub(super) fn received_bps(v: &serde_json::Value, traffic: Traffic) -> anyhow::Result<f64> {
    let end = v.get("end").context("iperf3 report without \"end\"")?;
    let f = |o: &serde_json::Value, k: &str| o.get(k).and_then(|x| x.as_f64());
    match traffic {
        Traffic::Tcp => end
            .get("sum_received")
            .and_then(|s| f(s, "bits_per_second"))
            .context("iperf3 report without end.sum_received.bits_per_second"),
        Traffic::Udp | Traffic::UdpRate => {
            if let Some(bps) = v
                .get("server_output_json")
                .and_then(|s| s.get("end"))
                .and_then(|e| e.get("sum"))
                .and_then(|s| f(s, "bits_per_second"))
            {
                return Ok(bps);
            }
            let sum = end.get("sum").context("iperf3 report without end.sum")?;
            let sent = f(sum, "bits_per_second").context("no end.sum.bits_per_second")?;
            let lost = f(sum, "lost_percent").unwrap_or(0.0).clamp(0.0, 100.0);
            Ok(sent * (1.0 - lost / 100.0))
        }
    }
}

fn udp_loss_note(v: &serde_json::Value, traffic: Traffic) -> Option<String> {
    if traffic == Traffic::Tcp {
        return None;
    }
    let sum = v.get("end")?.get("sum")?;
    Some(format!(
        "iperf3 UDP: sent {:.2} Gbit/s, lost {:.1}% ({} of {} datagrams)",
        sum.get("bits_per_second")?.as_f64()? / 1e9,
        sum.get("lost_percent")?.as_f64()?,
        sum.get("lost_packets")?.as_u64()?,
        sum.get("packets")?.as_u64()?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use patronus_engine::config::EngineConfig;

    #[test]
    fn engine_config_masquerades_to_the_outside_address() {
        let opts = Options {
            duration: Duration::from_secs(1),
            warmup: Duration::ZERO,
            engine: None,
            gen_core: 0,
            router_core: 1,
            nice: 0,
            rps: false,
            rounds: 1,
            workdir: std::env::temp_dir(),
        };
        let r0 = End::new("ns", "r0", [0, 1]);
        let r1 = End::new("ns", "r1", [0, 2]);
        for (driver, poll) in [
            (Driver::AfPacket, Poll::Busy),
            (Driver::AfPacket, Poll::Adaptive),
            (Driver::AfXdp, Poll::Busy),
        ] {
            let cfg = EngineConfig::parse(&engine_config(&opts, &r0, &r1, driver, poll)).unwrap();
            let want = match poll {
                Poll::Busy => patronus_engine::config::PollMode::Busy,
                Poll::Adaptive => patronus_engine::config::PollMode::Adaptive,
            };
            assert_eq!(cfg.engine.poll, want);
            let nat = cfg.nat.as_ref().unwrap();
            assert_eq!(nat.outside, "wan0");
            assert_eq!(
                nat.pool,
                vec![ROUTER_OUTSIDE.parse::<std::net::Ipv4Addr>().unwrap()]
            );
            assert_eq!(cfg.ports[1].iface.as_deref(), Some(r1.iface.as_str()));
            nat.to_nat_config(&cfg, 1, 0).unwrap();
        }
    }

    #[test]
    fn nft_ruleset_masquerades_on_the_outside_iface() {
        let r = nft_ruleset("pp1r1");
        assert!(r.contains("type nat hook postrouting priority 100"));
        assert!(r.contains("oifname \"pp1r1\" masquerade"));
    }

    #[test]
    fn received_rate_from_iperf3_json() {
        let tcp = serde_json::json!({"end": {"sum_received": {"bits_per_second": 2.5e9}}});
        assert_eq!(received_bps(&tcp, Traffic::Tcp).unwrap(), 2.5e9);
        let udp = serde_json::json!({"end": {"sum": {"bits_per_second": 1e9, "lost_percent": 25.0,
            "lost_packets": 1, "packets": 4}}});
        assert_eq!(received_bps(&udp, Traffic::Udp).unwrap(), 0.75e9);
        assert!(udp_loss_note(&udp, Traffic::Udp)
            .unwrap()
            .contains("lost 25.0%"));
        assert!(received_bps(&serde_json::json!({}), Traffic::Tcp).is_err());
        let both = serde_json::json!({"end": {"sum": {"bits_per_second": 1e9, "lost_percent": 103.0}},
            "server_output_json": {"end": {"sum": {"bits_per_second": 0.4e9}}}});
        assert_eq!(received_bps(&both, Traffic::Udp).unwrap(), 0.4e9);
        let odd =
            serde_json::json!({"end": {"sum": {"bits_per_second": 1e9, "lost_percent": 103.0}}});
        assert_eq!(received_bps(&odd, Traffic::Udp).unwrap(), 0.0);
    }
}
