//! `lb-mem`: the L4 load balancer (`[lb]`, one UDP VIP in NAT mode over
//! eight backends) in the engine's pipeline between two in-memory ports
//! (generator → VIP, sink towards the backends) on one busy-polling pinned
//! worker, beside the same engine forwarding the same traffic without
//! `[lb]`. Measures (a) new flows per second — one pass over 2^20 flows with
//! distinct source endpoints, every packet a new pinned flow — and (b)
//! established packets per second with those 2^20 flows pinned.

use std::path::Path;

use super::mem_phase::{run_phase, run_rounds};
use super::nat_mem::{Phase, FLOWS, FRAME_LEN, SAMPLE_EVERY};
use super::Options;
use crate::engine::EngineStats;
use crate::report::{Report, Row};

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
    let mode = |with: bool| if with { Mode::Lb } else { Mode::Plain };
    if !run_rounds(
        &mut report,
        opts,
        |with, phase| system(mode(with), phase),
        |bin, with, phase| run_one(opts, bin, mode(with), phase),
    )? {
        return Ok(report);
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
    let config = engine_config(opts, mode == Mode::Lb, count);
    let (mut row, st) = run_phase(
        opts,
        bin,
        system(mode, phase),
        &config,
        count,
        phase,
        "(and with [lb] the flow table)",
    )?;
    if mode == Mode::Lb {
        let sink = st.port("sink0").map_or(0, |p| p.tx_packets);
        check_balanced(&st, sink)?;
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
    use std::time::Duration;

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
