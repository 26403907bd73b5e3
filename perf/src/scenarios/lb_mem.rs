//! `lb-mem`: the L4 load balancer (`[lb]`, one UDP VIP in NAT mode over
//! eight backends) in the engine's pipeline between two in-memory ports
//! (generator → VIP, sink towards the backends) on one busy-polling pinned
//! worker, beside the same engine forwarding the same traffic without
//! `[lb]`. Measures (a) new flows per second — one pass over 2^20 flows with
//! distinct source endpoints, every packet a new pinned flow — and (b)
//! established packets per second with those 2^20 flows pinned.

use std::path::Path;
use std::time::{Duration, Instant};

use super::nat_mem::{established_rate, Sample, FLOWS, SAMPLE_EVERY};
use super::rounds::{median, merge_rounds, same_round_ratios};
use super::Options;
use crate::engine::{self, EngineProcess, EngineStats};
use crate::netns::sleep_checked;
use crate::report::{Report, Row};
use crate::sysstat;

const FRAME_LEN: usize = 64;
/// Sources: a /16 with the source port moving with the flow number, so the
/// 2^20 flows are distinct 5-tuples (see the mem driver's template).
const GEN_SRC: &str = "10.16.0.0/16";
/// The VIP: the generator's destination prefix is this one address, so
/// every flow goes to it.
const VIP: &str = "10.9.0.100";
const VIP_PORT: u16 = 80;
/// Backends 192.0.2.11 .. 192.0.2.(10 + BACKENDS), behind the sink's next hop.
const BACKENDS: u8 = 8;
const BACKEND_NET: &str = "192.0.2.0/24";
/// NAT mode rewrites the port too (the backends listen on another one).
const BACKEND_PORT: u16 = 8080;
const SINK_NEXT_HOP: &str = "198.51.100.254";
const SINK_NEXT_HOP_MAC: &str = "02:00:00:00:00:99";
/// Pinned flows the table holds (≥ FLOWS, with headroom).
const MAX_FLOWS: u32 = FLOWS + FLOWS / 4;
/// The issue's target for established traffic on one core.
const TARGET_PPS: f64 = 10e6;

/// Packets per second of `--duration` an established run is sized for:
/// plain forwarding here runs at ≈ 20 Mpps, so a window of a few samples
/// needs far more passes than nat-mem's.
const SIZING_PPS: f64 = 24e6;

/// Passes over the flows of an established run: the first pins the flows,
/// the rest (≈ SIZING_PPS per second of `--duration`, at least two) are
/// measured.
fn passes(opts: &Options) -> u64 {
    let measured = (opts.duration.as_secs_f64() * SIZING_PPS / f64::from(FLOWS)).ceil() as u64;
    1 + measured.max(2)
}

/// Which engine a row runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Routing only (the baseline): the VIP is just a routed address.
    Plain,
    /// `[lb]` with the VIP in NAT mode.
    Lb,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Plain => "plain",
            Mode::Lb => "lb",
        }
    }
}

/// Which phase a row measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// One pass over the flows (every packet a new pinned flow with `[lb]`).
    New,
    /// Later passes over the same flows (every flow pinned).
    Established,
}

fn system(mode: Mode, phase: Phase) -> String {
    format!(
        "patronus-{}-{}",
        mode.name(),
        match phase {
            Phase::New => "new",
            Phase::Established => "established",
        }
    )
}

/// Generator on gen0 (all flows to VIP:80) → sink0, whose next hop leads to
/// the VIP's /24 and to the backends' /24 (both routes in both modes); with
/// `lb`, the `[lb]` section balancing the VIP over the backends.
pub fn engine_config(opts: &Options, lb: bool, count: u64) -> String {
    let mut text = format!(
        r#"# lb-mem: generator port (clients -> VIP) -> pipeline{with} -> sink port
[engine]
workers = 1
poll = "busy"
cores = [{core}]

[[port]]
name = "gen0"
driver = "mem"

[port.generator]
flows = {FLOWS}
pattern = "fixed"
sizes = [{FRAME_LEN}]
src = "{GEN_SRC}"
dst = "{VIP}/32"
dst_port = {VIP_PORT}
count = {count}
rate_pps = 0

[[port]]
name = "sink0"
driver = "mem"

[[interface]]
port = "gen0"
address = "10.1.0.1/24"

[[interface]]
port = "sink0"
address = "198.51.100.1/24"

[[route]]
prefix = "10.9.0.0/24"
via = "{SINK_NEXT_HOP}"

[[route]]
prefix = "{BACKEND_NET}"
via = "{SINK_NEXT_HOP}"

[[neighbor]]
port = "sink0"
address = "{SINK_NEXT_HOP}"
mac = "{SINK_NEXT_HOP_MAC}"
"#,
        with = if lb { " with the L4 balancer" } else { "" },
        core = opts.router_core,
    );
    if lb {
        text.push_str(&lb_section());
    }
    text
}

/// `[lb]`: one UDP VIP in NAT mode over `BACKENDS` equal backends.
fn lb_section() -> String {
    let mut s = format!(
        r#"
[lb]
max_flows = {MAX_FLOWS}

[[lb.vip]]
address = "{VIP}"
port = {VIP_PORT}
protocol = "udp"
mode = "nat"
table_size = 65537
"#
    );
    for i in 0..BACKENDS {
        s.push_str(&format!(
            r#"
[[lb.vip.backend]]
address = "192.0.2.{}"
port = {BACKEND_PORT}
weight = 1
"#,
            11 + u32::from(i)
        ));
    }
    s
}

pub fn run(opts: &Options) -> anyhow::Result<Report> {
    let mut report = Report::new("lb-mem");
    let bin = match engine::locate(opts.engine.as_deref()) {
        Ok(p) => p,
        Err(e) => {
            report.notes.push(format!("engine unavailable: {e:#}"));
            for phase in [Phase::New, Phase::Established] {
                for mode in [Mode::Plain, Mode::Lb] {
                    report.rows.push(Row::not_run(
                        &system(mode, phase),
                        FRAME_LEN,
                        "engine binary unavailable",
                    ));
                }
            }
            return Ok(report);
        }
    };
    let mut rounds: Vec<Vec<Row>> = Vec::new();
    for _ in 0..opts.rounds.max(1) {
        let mut rows = Vec::new();
        for phase in [Phase::New, Phase::Established] {
            for mode in [Mode::Plain, Mode::Lb] {
                rows.push(match run_one(opts, &bin, mode, phase) {
                    Ok(r) => r,
                    Err(e) if crate::netns::stop_requested() => return Err(e),
                    Err(e) => Row::not_run(&system(mode, phase), FRAME_LEN, format!("{e:#}")),
                });
            }
        }
        rounds.push(rows);
    }
    report.rows = merge_rounds(&rounds, &mut report.notes);
    for phase in [Phase::Established, Phase::New] {
        let (sys, base) = (system(Mode::Lb, phase), system(Mode::Plain, phase));
        let ratio = if rounds.len() > 1 {
            let mut ratios = same_round_ratios(&rounds, &sys, &base);
            report.notes.push(format!(
                "per-round ratios {sys} / {base}: {}",
                ratios
                    .iter()
                    .map(|r| format!("{r:.3}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            median(&mut ratios)
        } else {
            report.pps_ratio(&sys, &base)
        };
        if phase == Phase::Established {
            report.ratio = ratio;
        }
        report.push_ratio(&sys, &base, ratio);
    }
    if let Some(pps) = report
        .rows
        .iter()
        .find(|r| r.system == system(Mode::Lb, Phase::Established))
        .and_then(|r| r.pps)
    {
        report.notes.push(format!(
            "issue 8 target ≥ {:.0} Mpps per core established with 1 M pinned flows: measured {:.2} Mpps \
             (median row) — {}",
            TARGET_PPS / 1e6,
            pps / 1e6,
            if pps >= TARGET_PPS { "met" } else { "not met" }
        ));
    }
    report.notes.push(format!(
        "one worker pinned to core {} at nice {}, poll = \"busy\"; generator and sink are mem ports in that \
         worker (their cost is included); {FLOWS} UDP flows of {FRAME_LEN} B from {GEN_SRC} (the source \
         port moves with the flow: 2^20 distinct 5-tuples) to {VIP}:{VIP_PORT}, pattern fixed (each pass \
         walks the flows in order); lb: [lb] max_flows {MAX_FLOWS}, one UDP VIP in NAT mode, Maglev table \
         65537, {BACKENDS} backends 192.0.2.11-{}:{BACKEND_PORT} of weight 1, default timeouts (UDP 300 s, \
         nothing expires during a run); plain: the same config without [lb] (the VIP is routed like any \
         address). The mem generator builds UDP only, so there is no TCP row",
        opts.router_core,
        opts.nice,
        10 + u32::from(BACKENDS)
    ));
    report.notes.push(format!(
        "*-new rows: an engine run of exactly one pass ({FLOWS} packets); pps = sink0 tx_packets / \
         elapsed_secs (first packet received to last sent), so for lb it is new pinned flows per second on \
         one core. *-established rows: an engine run of {} passes, sampled by SIGUSR1 every {} ms; pps = \
         the slope of sink0 tx_packets over the samples taken after the first pass and before the generator \
         ended; cpu_ns_per_packet = the engine process's CPU over those samples / packets. Ratio = lb / \
         plain of the same phase",
        passes(opts),
        SAMPLE_EVERY.as_millis()
    ));
    Ok(report)
}

fn run_one(opts: &Options, bin: &Path, mode: Mode, phase: Phase) -> anyhow::Result<Row> {
    let count = match phase {
        Phase::New => u64::from(FLOWS),
        Phase::Established => u64::from(FLOWS) * passes(opts),
    };
    let dir = &opts.workdir;
    let tag = system(mode, phase);
    let config = dir.join(format!("{tag}.toml"));
    std::fs::write(&config, engine_config(opts, mode == Mode::Lb, count))?;
    engine::check_config(bin, &config)?;
    let stats_path = dir.join(format!("{tag}-stats.json"));
    let _ = std::fs::remove_file(&stats_path);
    let mut eng = EngineProcess::spawn(
        bin,
        &config,
        &stats_path,
        None,
        opts.nice,
        &dir.join(format!("{tag}.log")),
    )?;
    let cap = Duration::from_secs(120).max(opts.duration * 6);
    let started = Instant::now();
    let mut samples: Vec<Sample> = Vec::new();
    let info = loop {
        if let Some(info) = eng.exited()? {
            break info;
        }
        if started.elapsed() > cap {
            break eng.stop()?;
        }
        sleep_checked(match phase {
            Phase::New => Duration::from_millis(20),
            Phase::Established => SAMPLE_EVERY,
        })?;
        if phase == Phase::Established {
            // A snapshot can fail or return the final file when the engine
            // exits meanwhile; `established_rate` drops such samples.
            if let (Ok(st), Ok(cpu)) = (
                eng.snapshot(&stats_path),
                sysstat::process_cpu_ns(eng.pid()),
            ) {
                samples.push(Sample::of(&st, cpu));
            }
        }
    };
    if !info.success {
        anyhow::bail!(
            "engine exited with code {:?}: {}",
            info.code,
            info.output.trim()
        );
    }
    let st = EngineStats::read(&stats_path)?;
    let sink = st.port("sink0").map_or(0, |p| p.tx_packets);
    if mode == Mode::Lb {
        check_balanced(&st, sink)?;
    }
    let mut row = Row {
        system: tag,
        packet_size: FRAME_LEN,
        limited_by:
            "engine pipeline on one busy-polling core (generator and sink inside the same worker)"
                .into(),
        ..Row::default()
    };
    match phase {
        Phase::New => {
            row.set_rate(sink, st.elapsed_secs);
            row.notes.push(format!(
                "{sink} of {count} packets reached the sink in {:.3} s (first received to last sent); \
                 cpu_ns not given: the process's CPU includes building 2^20 templates (and with [lb] the flow table)",
                st.elapsed_secs
            ));
        }
        Phase::Established => {
            let e = established_rate(&samples, u64::from(FLOWS), count)?;
            row.set_rate(e.packets, e.secs);
            row.cpu_ns_per_packet = Some(e.cpu_ns as f64 / e.packets.max(1) as f64);
            let share = e.cpu_ns as f64 / 1e9 / e.secs;
            if share < 0.9 {
                row.limited_by = format!(
                    "engine pipeline on one core, of which the engine got only ≈{:.0}% (other load on the \
                     machine): cpu_ns_per_packet is its own cost",
                    share * 100.0
                );
            }
            row.notes.push(format!(
                "window of {:.3} s over {} samples after the first pass; the engine process used {:.0}% of \
                 a core in it; whole run: {sink} of {count} packets to the sink in {:.3} s",
                e.secs,
                e.samples,
                share * 100.0,
                st.elapsed_secs
            ));
        }
    }
    if sink < count {
        row.notes.push(format!(
            "only {sink} of {count} generated packets reached the sink; drops: {}",
            st.drops_summary()
        ));
    }
    if !st.lb.is_empty() {
        row.notes
            .push(format!("lb counters: {}", counters_text(&st.lb)));
    }
    Ok(row)
}

fn counters_text(c: &[(String, u64)]) -> String {
    c.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A row with `[lb]` only counts when the balancer really handled the
/// traffic: every delivered packet NAT-forwarded, every flow pinned.
fn check_balanced(st: &EngineStats, sink: u64) -> anyhow::Result<()> {
    let get = |k: &str| st.lb.iter().find(|(n, _)| n == k).map_or(0, |(_, v)| *v);
    let (forwarded, pinned) = (get("nat_forward"), get("flows_pinned"));
    if forwarded < sink || pinned < u64::from(FLOWS).min(sink) {
        anyhow::bail!(
            "the balancer did not handle the traffic: {sink} packets at the sink, lb counters: {}",
            if st.lb.is_empty() {
                "none (no \"lb\" object in the stats)".to_string()
            } else {
                counters_text(&st.lb)
            }
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use patronus_engine::config::EngineConfig;

    fn opts() -> Options {
        Options {
            duration: Duration::from_secs(1),
            warmup: Duration::ZERO,
            engine: None,
            gen_core: 0,
            router_core: 1,
            nice: 0,
            rps: false,
            rounds: 1,
            workdir: std::env::temp_dir(),
        }
    }

    #[test]
    fn plain_config_sends_every_flow_to_the_vip() {
        let plain = EngineConfig::parse(&engine_config(&opts(), false, 1000)).unwrap();
        let g = plain.ports[0].generator.as_ref().unwrap();
        assert_eq!((g.flows, g.count), (FLOWS, 1000));
        assert_eq!(g.dst, format!("{VIP}/32"));
        assert_eq!(g.dst_port, VIP_PORT);
        assert_eq!(plain.routes.len(), 2);
    }

    #[test]
    fn configs_differ_only_by_the_lb_section() {
        let plain = EngineConfig::parse(&engine_config(&opts(), false, 1000)).unwrap();
        assert!(plain.lb.is_none());
        let cfg = EngineConfig::parse(&engine_config(&opts(), true, 1000)).unwrap();
        let lb = cfg.lb.as_ref().unwrap();
        lb.validate().unwrap();
        assert!(lb.max_flows.unwrap() > FLOWS as usize);
        assert_eq!(lb.vips.len(), 1);
        let vip = &lb.vips[0];
        assert_eq!(vip.address.to_string(), VIP);
        assert_eq!(
            (vip.port, vip.protocol.as_str(), vip.mode.as_str()),
            (VIP_PORT, "udp", "nat")
        );
        assert_eq!(vip.backends.len(), usize::from(BACKENDS));
        assert!(vip.backends.iter().all(|b| b.port == Some(BACKEND_PORT)));
        assert_eq!(vip.backends[7].address.to_string(), "192.0.2.18");
        assert_eq!(format!("{:?}", cfg.routes), format!("{:?}", plain.routes));
        assert_eq!(
            format!("{:?}", cfg.ports[0].generator),
            format!("{:?}", plain.ports[0].generator)
        );
    }

    #[test]
    fn established_runs_are_sized_for_fast_forwarding() {
        let mut o = opts();
        assert_eq!(passes(&o), 1 + 23); // 24 M packets = 22.9 passes, rounded up
        o.duration = Duration::from_millis(10);
        assert_eq!(passes(&o), 1 + 2);
    }

    #[test]
    fn lb_rows_need_the_balancers_counters() {
        let mut st = EngineStats::default();
        assert!(check_balanced(&st, 10).is_err());
        st.lb = vec![("flows_pinned".into(), 10), ("nat_forward".into(), 9)];
        assert!(check_balanced(&st, 10).is_err());
        st.lb[1].1 = 10;
        check_balanced(&st, 10).unwrap();
    }
}
