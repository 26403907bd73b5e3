//! One engine run of the in-memory benchmarks (nat-mem, lb-mem): the
//! generator's flows through one busy-polling worker into a sink port;
//! "new" = one pass, rated from first packet to last; "established" =
//! later passes, rated by the slope of SIGUSR1 samples (and the engine's
//! own CPU over them).

use std::path::Path;
use std::time::{Duration, Instant};

use super::nat_mem::{established_rate, Phase, Sample, FLOWS, FRAME_LEN, SAMPLE_EVERY};
use super::rounds::{median, merge_rounds, same_round_ratios};
use super::Options;
use crate::engine::{self, EngineProcess, EngineStats};
use crate::netns::sleep_checked;
use crate::report::{Report, Row};
use crate::sysstat;

/// The rounds of a mem benchmark: per round every phase without and with
/// the feature (interleaved, so a slow stretch of the machine hits both),
/// rows merged by their medians, and per phase the median of the
/// same-round ratios with / without (the established one is the report's
/// ratio). `name(with, phase)` names a row, `one(bin, with, phase)` runs
/// it. False when the engine binary is missing (the rows say so).
pub(super) fn run_rounds(
    report: &mut Report,
    opts: &Options,
    name: impl Fn(bool, Phase) -> String,
    mut one: impl FnMut(&Path, bool, Phase) -> anyhow::Result<Row>,
) -> anyhow::Result<bool> {
    let bin = match engine::locate(opts.engine.as_deref()) {
        Ok(p) => p,
        Err(e) => {
            report.notes.push(format!("engine unavailable: {e:#}"));
            for phase in [Phase::New, Phase::Established] {
                for with in [false, true] {
                    report.rows.push(Row::not_run(
                        &name(with, phase),
                        FRAME_LEN,
                        "engine binary unavailable",
                    ));
                }
            }
            return Ok(false);
        }
    };
    let mut rounds: Vec<Vec<Row>> = Vec::new();
    for _ in 0..opts.rounds.max(1) {
        let mut rows = Vec::new();
        for phase in [Phase::New, Phase::Established] {
            for with in [false, true] {
                rows.push(match one(&bin, with, phase) {
                    Ok(r) => r,
                    Err(e) if crate::netns::stop_requested() => return Err(e),
                    Err(e) => Row::not_run(&name(with, phase), FRAME_LEN, format!("{e:#}")),
                });
            }
        }
        rounds.push(rows);
    }
    report.rows = merge_rounds(&rounds, &mut report.notes);
    for phase in [Phase::Established, Phase::New] {
        let (sys, base) = (name(true, phase), name(false, phase));
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
    Ok(true)
}

/// Runs the engine on `config_text` (a run of `count` generated packets) and
/// rates it as `phase` says; returns the row and the engine's final stats
/// (for the caller's checks and notes). `new_cpu_note` completes the note
/// on why "new" rows give no CPU figure.
pub(super) fn run_phase(
    opts: &Options,
    bin: &Path,
    tag: String,
    config_text: &str,
    count: u64,
    phase: Phase,
    new_cpu_note: &str,
) -> anyhow::Result<(Row, EngineStats)> {
    let dir = &opts.workdir;
    let config = dir.join(format!("{tag}.toml"));
    std::fs::write(&config, config_text)?;
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
                 cpu_ns not given: the process's CPU includes building 2^20 templates {new_cpu_note}",
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
    Ok((row, st))
}
