//! `fwd-mem`: the engine's full pipeline between two in-memory ports — a
//! synthetic generator port and a sink — on one busy-polling pinned worker,
//! at 64 B and 1500 B. Measures the pipeline's own cost per packet.

use std::time::Duration;

use super::Options;
use crate::engine::{self, EngineProcess, EngineStats};
use crate::report::{Report, Row};

const FLOWS: u32 = 64;
const SINK_NEXT_HOP: &str = "10.2.0.2";
const SINK_NEXT_HOP_MAC: &str = "02:00:00:00:00:99";

/// Generated packets per size: 4 M per second of `--duration` (a few
/// seconds of work at ~10 Mpps for the default 10 s).
fn packet_count(opts: &Options) -> u64 {
    ((opts.duration.as_secs_f64() * 4e6) as u64).max(100_000)
}

/// Generator on gen0 → route 10.3.0.0/16 via a static neighbour on sink0.
pub fn engine_config(opts: &Options, size: usize, count: u64) -> String {
    format!(
        r#"# fwd-mem: generator port -> full pipeline -> sink port
[engine]
workers = 1
poll = "busy"
cores = [{core}]

[[port]]
name = "gen0"
driver = "mem"

[port.generator]
flows = {FLOWS}
sizes = [{size}]
src = "10.1.0.128/25"
dst = "10.3.0.0/24"
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
    )
}

pub fn run(opts: &Options) -> anyhow::Result<Report> {
    let mut report = Report::new("fwd-mem");
    let engine_bin = match engine::locate(opts.engine.as_deref()) {
        Ok(p) => Some(p),
        Err(e) => {
            report.notes.push(format!("engine unavailable: {e:#}"));
            None
        }
    };
    for size in [64usize, 1500] {
        let row = match &engine_bin {
            None => Row::not_run("patronus", size, "engine binary unavailable"),
            Some(bin) => match run_size(opts, bin, size) {
                Ok(r) => r,
                Err(e) if crate::netns::stop_requested() => return Err(e),
                Err(e) => Row::not_run("patronus", size, format!("{e:#}")),
            },
        };
        report.rows.push(row);
    }
    report.notes.push(format!(
        "one worker pinned to core {} at nice {}, poll = \"busy\", {FLOWS} flows; {} packets per size; pps = sink0 tx_packets / elapsed_secs \
         from --stats-json; ns_per_packet = 1e9 / pps on that one core; cpu_ns_per_packet = the engine \
         process's user+system CPU (wait4 rusage, start-up included) / forwarded packets; the synthetic \
         generator runs inside the same worker, so its cost is included",
        opts.router_core,
        opts.nice,
        packet_count(opts)
    ));
    report.notes.push(
        "no baseline row: the in-memory pipeline has no kernel equivalent; the engine over DPDK vdevs \
         against testpmd (io/macswap) is the fwd-dpdk-null scenario"
            .into(),
    );
    Ok(report)
}

fn run_size(opts: &Options, bin: &std::path::Path, size: usize) -> anyhow::Result<Row> {
    let count = packet_count(opts);
    let dir = &opts.workdir;
    let config = dir.join(format!("fwd-mem-{size}.toml"));
    std::fs::write(&config, engine_config(opts, size, count))?;
    engine::check_config(bin, &config)?;
    let stats_path = dir.join(format!("fwd-mem-{size}-stats.json"));
    let mut eng = EngineProcess::spawn(
        bin,
        &config,
        &stats_path,
        None,
        opts.nice,
        &dir.join(format!("fwd-mem-{size}.log")),
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
        system: "patronus".into(),
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
        let text = engine_config(&opts, 64, 1000);
        let cfg = EngineConfig::parse(&text).unwrap();
        assert_eq!(cfg.ports.len(), 2);
        let g = cfg.ports[0].generator.as_ref().unwrap();
        assert_eq!((g.flows, g.count, g.sizes.clone()), (64, 1000, vec![64]));
        assert_eq!(cfg.engine.cores, vec![1]);
        assert_eq!(cfg.routes[0].prefix, "10.3.0.0/16");
        assert_eq!(cfg.neighbors[0].port, "sink0");
        assert_eq!(cfg.neighbors[0].address, SINK_NEXT_HOP);
    }
}
