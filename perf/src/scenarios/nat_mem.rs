//! `nat-mem`: source NAT in the engine's pipeline between two in-memory
//! ports (generator inside, sink outside) on one busy-polling pinned worker,
//! beside the same engine forwarding the same traffic without `[nat]`.
//! Measures (a) new sessions per second — one pass over 2^20 flows with
//! distinct inside endpoints, every packet a new session — and (b)
//! established packets per second with those 2^20 sessions live.

use std::path::Path;
use std::time::Duration;

use super::mem_phase::{run_phase, run_rounds};
use super::Options;
use crate::engine::EngineStats;
use crate::report::{Report, Row};

/// Flows of one pass: the generator's maximum. With `GEN_SRC` a /16 (65534
/// hosts) and the source port moving with the flow number, all 2^20 inside
/// endpoints (address, port) are distinct (see the mem driver's tests).
pub const FLOWS: u32 = 1 << 20;
pub(super) const FRAME_LEN: usize = 64;
const GEN_SRC: &str = "10.16.0.0/16";
const GEN_DST: &str = "192.0.2.0/24";
const SINK_NEXT_HOP: &str = "198.51.100.254";
const SINK_NEXT_HOP_MAC: &str = "02:00:00:00:00:99";
/// Pool addresses: 32 x 64512 ports = 2 M outside endpoints for 1 M mappings,
/// so the allocator rarely walks a full bitmap.
const POOL_ADDRS: u8 = 32;
/// Sessions the table holds (≥ FLOWS, with headroom).
const MAX_SESSIONS: u32 = FLOWS + FLOWS / 8;
/// Seconds between SIGUSR1 samples of the established run.
pub(super) const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// Which engine a row runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Routing only (the baseline).
    Plain,
    /// `[nat]` source NAT on the outside port.
    Nat,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Plain => "plain",
            Mode::Nat => "nat",
        }
    }
}

/// Which phase a row measures (nat-mem and lb-mem).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// One pass over the flows (every packet a new session or pin).
    New,
    /// Later passes over the same flows (every session established).
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

/// Passes over the flows of an established run: the first creates the
/// sessions, the rest (≈ 4 M packets per second of `--duration`, at least
/// two passes) are measured.
pub(super) fn passes(opts: &Options) -> u64 {
    let measured = (opts.duration.as_secs_f64() * 4e6 / f64::from(FLOWS)).ceil() as u64;
    1 + measured.max(2)
}

/// Generator on gen0 (inside) → route 192.0.2.0/24 via a static neighbour
/// on sink0 (outside); with `nat`, source NAT on sink0 to a 32-address pool.
pub fn engine_config(opts: &Options, nat: bool, count: u64) -> String {
    let mut text = format!(
        r#"# nat-mem: generator port (inside) -> pipeline{with} -> sink port (outside)
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
dst = "{GEN_DST}"
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
prefix = "{GEN_DST}"
via = "{SINK_NEXT_HOP}"

[[neighbor]]
port = "sink0"
address = "{SINK_NEXT_HOP}"
mac = "{SINK_NEXT_HOP_MAC}"
"#,
        with = if nat { " with source NAT" } else { "" },
        core = opts.router_core,
    );
    if nat {
        let pool: Vec<String> = (0..POOL_ADDRS)
            .map(|i| format!("\"198.51.100.{}\"", 10 + u32::from(i)))
            .collect();
        text.push_str(&format!(
            r#"
[nat]
outside = "sink0"
pool = [{pool}]
max_sessions = {MAX_SESSIONS}
"#,
            pool = pool.join(", ")
        ));
    }
    text
}

pub fn run(opts: &Options) -> anyhow::Result<Report> {
    let mut report = Report::new("nat-mem");
    let mode = |with: bool| if with { Mode::Nat } else { Mode::Plain };
    if !run_rounds(
        &mut report,
        opts,
        |with, phase| system(mode(with), phase),
        |bin, with, phase| run_one(opts, bin, mode(with), phase),
    )? {
        return Ok(report);
    }
    report.notes.push(format!(
        "one worker pinned to core {} at nice {}, poll = \"busy\"; generator and sink are mem ports in that \
         worker (their cost is included); {FLOWS} UDP flows of {FRAME_LEN} B, source {GEN_SRC} with the \
         source port moving with the flow (2^20 distinct inside endpoints), pattern fixed (each pass walks \
         the flows in order); nat: {POOL_ADDRS} pool addresses, max_sessions {MAX_SESSIONS}, default \
         filtering and timeouts (UDP 300 s, so nothing expires during a run)",
        opts.router_core, opts.nice
    ));
    report.notes.push(format!(
        "*-new rows: an engine run of exactly one pass ({FLOWS} packets); pps = sink0 tx_packets / \
         elapsed_secs (first packet received to last sent), so for nat it is new sessions per second on one \
         core. *-established rows: an engine run of {} passes, sampled by SIGUSR1 every {} ms; pps = the \
         slope of sink0 tx_packets over the samples taken after the first pass and before the generator \
         ended; cpu_ns_per_packet = the engine process's CPU over those samples / packets. Ratio = nat / \
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
    let config = engine_config(opts, mode == Mode::Nat, count);
    let (mut row, st) = run_phase(
        opts,
        bin,
        system(mode, phase),
        &config,
        count,
        phase,
        "and the session tables",
    )?;
    if !st.nat.is_empty() {
        row.notes.push(format!(
            "nat counters: {}",
            st.nat
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(row)
}

/// One SIGUSR1 snapshot of a running engine.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Sample {
    /// Seconds since the engine started (a running engine's `elapsed_secs`).
    secs: f64,
    generated: u64,
    delivered: u64,
    cpu_ns: u64,
}

impl Sample {
    pub(super) fn of(st: &EngineStats, cpu_ns: u64) -> Sample {
        Sample {
            secs: st.elapsed_secs,
            generated: st.port("gen0").map_or(0, |p| p.rx_packets),
            delivered: st.port("sink0").map_or(0, |p| p.tx_packets),
            cpu_ns,
        }
    }
}

/// The steady part of an established run.
#[derive(Debug, PartialEq)]
pub(super) struct Established {
    pub(super) packets: u64,
    pub(super) secs: f64,
    pub(super) cpu_ns: u64,
    pub(super) samples: usize,
}

/// The rate between the first sample taken after the first pass (plus a
/// margin of 1/16 pass) and the last one taken while the generator still
/// ran. The final stats file (written at exit, with a different time base)
/// has every packet generated, so it never qualifies.
pub(super) fn established_rate(
    samples: &[Sample],
    flows: u64,
    count: u64,
) -> anyhow::Result<Established> {
    let steady: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.generated >= flows + flows / 16 && s.generated < count)
        .collect();
    let (Some(a), Some(b)) = (steady.first(), steady.last()) else {
        anyhow::bail!(
            "no samples after the first pass ({} in all): raise --duration",
            samples.len()
        );
    };
    let secs = b.secs - a.secs;
    if steady.len() < 3 || secs < 0.1 {
        anyhow::bail!(
            "only {} samples over {secs:.3} s after the first pass: raise --duration",
            steady.len()
        );
    }
    Ok(Established {
        packets: b.delivered.saturating_sub(a.delivered),
        secs,
        cpu_ns: b.cpu_ns.saturating_sub(a.cpu_ns),
        samples: steady.len(),
    })
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
    fn configs_differ_only_by_the_nat_section() {
        let plain = EngineConfig::parse(&engine_config(&opts(), false, 1000)).unwrap();
        assert!(plain.nat.is_none());
        let g = plain.ports[0].generator.as_ref().unwrap();
        assert_eq!((g.flows, g.count), (FLOWS, 1000));
        let nat = EngineConfig::parse(&engine_config(&opts(), true, 1000)).unwrap();
        let n = nat.nat.as_ref().unwrap();
        assert_eq!(n.outside, "sink0");
        assert_eq!(n.pool.len(), usize::from(POOL_ADDRS));
        assert!(n.max_sessions.unwrap() >= FLOWS);
        // The same worker view the engine builds validates.
        n.to_nat_config(&nat, 1, 0).unwrap();
        assert_eq!(format!("{:?}", nat.routes), format!("{:?}", plain.routes));
        assert_eq!(
            format!("{:?}", nat.neighbors),
            format!("{:?}", plain.neighbors)
        );
    }

    #[test]
    fn established_passes_cover_at_least_two_measured_passes() {
        let mut o = opts();
        assert_eq!(passes(&o), 1 + 4); // 4 M packets = 3.8 passes, rounded up
        o.duration = Duration::from_millis(100);
        assert_eq!(passes(&o), 1 + 2);
        o.duration = Duration::from_secs(10);
        assert_eq!(passes(&o), 1 + 39);
    }

    fn s(secs: f64, generated: u64, delivered: u64, cpu_ns: u64) -> Sample {
        Sample {
            secs,
            generated,
            delivered,
            cpu_ns,
        }
    }

    #[test]
    fn established_rate_uses_only_samples_after_the_first_pass() {
        let flows = 1600;
        let count = 16_000;
        let samples = [
            s(0.1, 0, 0, 0),
            s(0.2, 1000, 990, 50),
            s(0.3, 1699, 1690, 100),        // just short of first pass + 1/16
            s(0.4, 3000, 2990, 200),        // steady
            s(0.5, 4500, 4490, 300),        // steady
            s(0.6, 6000, 5990, 400),        // steady
            s(0.35, 16_000, 16_000, 9_000), // final file: excluded
        ];
        let e = established_rate(&samples, flows, count).unwrap();
        assert_eq!(e.samples, 3);
        assert_eq!(e.packets, 3000);
        assert!((e.secs - 0.2).abs() < 1e-9);
        assert_eq!(e.cpu_ns, 200);
    }

    #[test]
    fn established_rate_refuses_too_few_samples() {
        let samples = [s(0.1, 100, 100, 0), s(0.2, 16_000, 16_000, 0)];
        let err = established_rate(&samples, 1600, 16_000).unwrap_err();
        assert!(err.to_string().contains("raise --duration"), "{err}");
    }
}
