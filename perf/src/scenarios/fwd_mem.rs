//! `fwd-mem`: the engine's full pipeline between two in-memory ports — a
//! synthetic generator port and a sink — on one busy-polling pinned worker,
//! at 64 B and 1500 B. Measures the pipeline's own cost per packet, and the
//! cost of classification: each case runs the same engine without and
//! with `[classify]` (flow table, signature DPI, batched inference with
//! the repository's model), in interleaved rounds, 64 flows and (at 64 B)
//! 65536 flows.

use std::time::Duration;

use super::rounds::{median, merge_rounds, same_round_ratios};
use super::Options;
use crate::engine::{self, EngineProcess, EngineStats};
use crate::report::{Report, Row};

const FLOWS: u32 = 64;
/// Flows of the many-flows case (every packet a flow-table miss in cache).
const MANY_FLOWS: u32 = 65536;

/// One measured case: frame size, flows, classification on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Case {
    size: usize,
    flows: u32,
    classify: bool,
}

impl Case {
    fn system(self) -> String {
        let base = if self.classify {
            "patronus+classify"
        } else {
            "patronus"
        };
        if self.flows == FLOWS {
            base.to_string()
        } else {
            format!("{base}/{}k-flows", self.flows / 1024)
        }
    }
}

/// The cases of one round, each plain case before its classify twin.
fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    for (size, flows) in [(64, FLOWS), (1500, FLOWS), (64, MANY_FLOWS)] {
        for classify in [false, true] {
            v.push(Case {
                size,
                flows,
                classify,
            });
        }
    }
    v
}

/// The repository's model file (the classify rows load it).
fn model_path() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/flow-mlp.bin")
}
const SINK_NEXT_HOP: &str = "10.2.0.2";
const SINK_NEXT_HOP_MAC: &str = "02:00:00:00:00:99";

/// Generated packets per size: 4 M per second of `--duration` (a few
/// seconds of work at ~10 Mpps for the default 10 s).
fn packet_count(opts: &Options) -> u64 {
    ((opts.duration.as_secs_f64() * 4e6) as u64).max(100_000)
}

/// The configuration of one case: generator on gen0 → route 10.3.0.0/16
/// via a static neighbour on sink0 (and `[classify]` for the classify
/// rows).
fn case_config(opts: &Options, case: Case, count: u64) -> String {
    let classify = if case.classify {
        format!(
            "\n[classify]\nflows = {}\nmodel = \"{}\"\n",
            (2 * case.flows).next_power_of_two().max(1024),
            model_path().display()
        )
    } else {
        String::new()
    };
    // Many flows: a /16 of sources (the generator's address moves with the
    // flow number).
    let (src, gen_addr) = if case.flows > 128 {
        ("10.16.0.0/16", "10.16.0.1/16")
    } else {
        ("10.1.0.128/25", "10.1.0.1/24")
    };
    let body = format!(
        r#"# fwd-mem: generator port -> full pipeline -> sink port
[engine]
workers = 1
poll = "busy"
cores = [{core}]

[[port]]
name = "gen0"
driver = "mem"

[port.generator]
flows = {flows}
sizes = [{size}]
src = "{src}"
dst = "10.3.0.0/24"
count = {count}
rate_pps = 0

[[port]]
name = "sink0"
driver = "mem"

[[interface]]
port = "gen0"
address = "{gen_addr}"

[[interface]]
port = "sink0"
address = "10.2.0.1/24"

[[route]]
prefix = "10.3.0.0/16"
via = "{SINK_NEXT_HOP}"

[[neighbor]]
port = "sink0"
address = "{SINK_NEXT_HOP}"
mac = "{SINK_NEXT_HOP_MAC}"
"#,
        core = opts.router_core,
        flows = case.flows,
        size = case.size,
    );
    format!("{body}{classify}")
}

pub fn run(opts: &Options) -> anyhow::Result<Report> {
    let mut report = Report::new("fwd-mem");
    let bin = match engine::locate(opts.engine.as_deref()) {
        Ok(p) => p,
        Err(e) => {
            report.notes.push(format!("engine unavailable: {e:#}"));
            for c in cases() {
                report.rows.push(Row::not_run(
                    &c.system(),
                    c.size,
                    "engine binary unavailable",
                ));
            }
            return Ok(report);
        }
    };
    let mut rounds: Vec<Vec<Row>> = Vec::new();
    for _ in 0..opts.rounds.max(1) {
        let mut rows = Vec::new();
        for c in cases() {
            rows.push(match run_case(opts, &bin, c) {
                Ok(r) => r,
                Err(e) if crate::netns::stop_requested() => return Err(e),
                Err(e) => Row::not_run(&c.system(), c.size, format!("{e:#}")),
            });
        }
        rounds.push(rows);
    }
    report.rows = merge_rounds(&rounds, &mut report.notes);
    // Ratios: classify / plain of each size (system names repeat across
    // sizes, so the rounds are compared per case pair by position).
    let all = cases();
    for (k, pair) in all.chunks(2).enumerate() {
        let (plain, class) = (pair[0], pair[1]);
        let per_round: Vec<Vec<Row>> = rounds
            .iter()
            .map(|r| r[2 * k..2 * k + 2].to_vec())
            .collect();
        let mut ratios = same_round_ratios(&per_round, &class.system(), &plain.system());
        let ratio = median(&mut ratios);
        if let (Some(a), Some(b)) = (
            report.rows.get(2 * k).and_then(|r| r.cpu_ns_per_packet),
            report.rows.get(2 * k + 1).and_then(|r| r.cpu_ns_per_packet),
        ) {
            report.notes.push(format!(
                "{} B, {} flows: classification costs {:+.1} cpu ns per packet ({:.1} → {:.1}); \
                 per-round pps ratios classify/plain: {}",
                plain.size,
                plain.flows,
                b - a,
                a,
                b,
                ratios
                    .iter()
                    .map(|r| format!("{r:.3}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if k == 0 {
            report.ratio = ratio;
        }
        report.push_ratio(
            &format!("{}@{}B", class.system(), class.size),
            &format!("{}@{}B", plain.system(), plain.size),
            ratio,
        );
    }
    report.notes.push(format!(
        "one worker pinned to core {} at nice {}, poll = \"busy\"; {} packets per case; pps = sink0 \
         tx_packets / elapsed_secs from --stats-json; ns_per_packet = 1e9 / pps on that one core; \
         cpu_ns_per_packet = the engine process's user+system CPU (wait4 rusage, start-up included) / \
         forwarded packets; the synthetic generator runs inside the same worker, so its cost is included",
        opts.router_core,
        opts.nice,
        packet_count(opts)
    ));
    report.notes.push(
        "classify rows: [classify] with the repository's model (models/flow-mlp.bin), flow table of at \
         least 2x the flows; the generator's UDP payload is zeros, so every flow goes through the \
         dissectors (all rule themselves out on the first packet) and, after 10 packets, through one \
         batched inference — then every later packet is a flow-table hit that adds to its class's counters"
            .into(),
    );
    report.notes.push(
        "the baseline is the same engine without classification (the cost a user pays for it); the \
         engine over DPDK vdevs against testpmd is the fwd-dpdk-null scenario"
            .into(),
    );
    Ok(report)
}

fn run_case(opts: &Options, bin: &std::path::Path, case: Case) -> anyhow::Result<Row> {
    let count = packet_count(opts);
    let dir = &opts.workdir;
    let size = case.size;
    let tag = format!(
        "{size}-{}{}",
        case.flows,
        if case.classify { "-classify" } else { "" }
    );
    let config = dir.join(format!("fwd-mem-{tag}.toml"));
    std::fs::write(&config, case_config(opts, case, count))?;
    engine::check_config(bin, &config)?;
    let stats_path = dir.join(format!("fwd-mem-{tag}-stats.json"));
    let mut eng = EngineProcess::spawn(
        bin,
        &config,
        &stats_path,
        None,
        opts.nice,
        &dir.join(format!("fwd-mem-{tag}.log")),
    )?;
    // The engine stops by itself once the finite generator is exhausted.
    let cap = Duration::from_secs(120).max(opts.duration * 6);
    let info = match eng.wait_timeout(Some(cap))? {
        Some(info) => info,
        None => eng.stop()?,
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
    let mut row = Row {
        system: case.system(),
        packet_size: size,
        limited_by: "engine pipeline on one busy-polling core (generator inside the same worker)"
            .into(),
        ..Row::default()
    };
    row.set_rate(sink, st.elapsed_secs);
    row.cpu_ns_per_packet = Some(info.cpu_secs * 1e9 / sink.max(1) as f64);
    let share = 100.0 * info.cpu_secs / st.elapsed_secs.max(1e-9);
    if share < 90.0 {
        row.limited_by = format!(
            "engine pipeline on one core, of which the worker got only ≈{share:.0}% (other load on the \
             machine): cpu_ns_per_packet is its own cost"
        );
    }
    row.notes.push(format!(
        "{sink} packets in {:.3} s; the engine process used {:.2} s of CPU (it got ≈{:.0}% of its core: the \
         machine is shared), drops: {}",
        st.elapsed_secs,
        info.cpu_secs,
        100.0 * info.cpu_secs / st.elapsed_secs.max(1e-9),
        st.drops_summary()
    ));
    if sink < count {
        row.notes.push(format!(
            "only {sink} of {count} generated packets reached the sink; drops: {}",
            st.drops_summary()
        ));
    }
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;
    use patronus_engine::config::EngineConfig;

    #[test]
    fn config_routes_generated_traffic_to_the_sink() {
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
        let plain = Case {
            size: 64,
            flows: FLOWS,
            classify: false,
        };
        let text = case_config(&opts, plain, 1000);
        let cfg = EngineConfig::parse(&text).unwrap();
        assert!(cfg.classify.is_none());
        let text = case_config(
            &opts,
            Case {
                flows: MANY_FLOWS,
                classify: true,
                ..plain
            },
            1000,
        );
        let c = EngineConfig::parse(&text).unwrap();
        c.validate().unwrap();
        let cl = c.classify.as_ref().unwrap();
        assert_eq!(cl.flows, 2 * MANY_FLOWS);
        assert_eq!(c.ports[0].generator.as_ref().unwrap().flows, MANY_FLOWS);
        assert_eq!(cfg.ports.len(), 2);
        let g = cfg.ports[0].generator.as_ref().unwrap();
        assert_eq!((g.flows, g.count, g.sizes.clone()), (64, 1000, vec![64]));
        assert_eq!(cfg.engine.cores, vec![1]);
        assert_eq!(cfg.routes[0].prefix, "10.3.0.0/16");
        assert_eq!(cfg.neighbors[0].port, "sink0");
        assert_eq!(cfg.neighbors[0].address, SINK_NEXT_HOP);
    }
}
