//! One receiver run's results ([`Outcome`]: times, memory, CPU) as a
//! report row's figures, process memory and CPU from /proc, and the merge
//! of interleaved rounds into per-figure medians.

use std::collections::BTreeMap;

use anyhow::Context;

use super::watch::Watch;
use crate::report::Row;
use crate::scenarios::rounds::median;
use crate::sysstat::process_cpu_ns;

/// VmRSS and VmHWM of a process, bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct ProcMem {
    pub(super) rss: u64,
    pub(super) hwm: u64,
}

pub(super) fn parse_status(text: &str) -> Option<ProcMem> {
    let kb = |key: &str| -> Option<u64> {
        let l = text.lines().find(|l| l.starts_with(key))?;
        let v: u64 = l[key.len()..].split_whitespace().next()?.parse().ok()?;
        Some(v * 1024)
    };
    Some(ProcMem {
        rss: kb("VmRSS:")?,
        hwm: kb("VmHWM:")?,
    })
}

pub(super) fn proc_mem(pid: u32) -> anyhow::Result<ProcMem> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_status(&text).with_context(|| format!("no VmRSS/VmHWM in {path}"))
}

pub(super) const MIB: f64 = 1024.0 * 1024.0;

/// Times and memory of one receiver run, as figures.
#[derive(Debug, Default)]
pub(super) struct Outcome {
    pub(super) setup_secs: f64,
    pub(super) converge: Watch,
    pub(super) withdraw: Option<Watch>,
    /// (process name, memory) at convergence.
    pub(super) mem: Vec<(&'static str, ProcMem)>,
    /// (process name, CPU seconds from Established to convergence).
    pub(super) cpu: Vec<(&'static str, f64)>,
    pub(super) bird_memory: Option<u64>,
    /// The feeder's CPU seconds over the same window as `cpu`.
    pub(super) feeder_cpu: f64,
}

impl Outcome {
    pub(super) fn fill(&self, row: &mut Row, n: u64, has_fib: bool) {
        let f = &mut row.figures;
        f.insert("prefixes".into(), n as f64);
        f.insert("session_setup_secs".into(), self.setup_secs);
        if let Some(t) = self.converge.selected_at {
            f.insert("converge_selected_secs".into(), t);
        }
        if let Some(t) = self.converge.installed_at {
            f.insert("converge_installed_secs".into(), t);
        }
        if let Some(w) = &self.withdraw {
            if let Some(t) = w.selected_at {
                f.insert("withdraw_selected_secs".into(), t);
            }
            if let Some(t) = w.installed_at {
                f.insert("withdraw_installed_secs".into(), t);
            }
        }
        let rss: u64 = self.mem.iter().map(|(_, m)| m.rss).sum();
        let hwm: u64 = self.mem.iter().map(|(_, m)| m.hwm).sum();
        f.insert("rss_mib".into(), rss as f64 / MIB);
        f.insert("peak_rss_mib".into(), hwm as f64 / MIB);
        if self.mem.len() > 1 {
            for (name, m) in &self.mem {
                f.insert(format!("rss_{name}_mib"), m.rss as f64 / MIB);
            }
        }
        f.insert("cpu_secs".into(), self.cpu.iter().map(|(_, c)| c).sum());
        if self.cpu.len() > 1 {
            for (name, c) in &self.cpu {
                f.insert(format!("cpu_{name}_secs"), *c);
            }
        }
        if let Some(b) = self.bird_memory {
            f.insert("bird_show_memory_mib".into(), b as f64 / MIB);
        }
        f.insert("feeder_cpu_secs".into(), self.feeder_cpu);
        let c = &self.converge;
        let window = c
            .selected_at
            .unwrap_or(0.0)
            .max(c.installed_at.unwrap_or(0.0));
        row.limited_by = if c.done(has_fib) {
            // The feeder is one BIRD thread: busy most of the window means
            // it, not the receiver, set the pace.
            format!(
                "converged; feeder busy {:.0} % of it",
                100.0 * self.feeder_cpu / window.max(1e-3)
            )
        } else {
            format!(
                "NOT converged: {} selected, {} installed of {n}",
                c.last.selected,
                c.last.installed.map_or("-".into(), |i| i.to_string())
            )
        };
        let bounds = |w: &Watch| {
            let mut v = Vec::new();
            if let Some(t) = w.selected_at {
                v.push(format!("selected in {:.3}..{t:.3} s", w.selected_after));
            }
            if let Some(t) = w.installed_at {
                v.push(format!("installed in {:.3}..{t:.3} s", w.installed_after));
            }
            v.join(", ")
        };
        row.notes.push(format!(
            "{} polls while converging, slowest answer {:.0} ms; {}",
            c.polls,
            c.slowest_poll_ms,
            bounds(c)
        ));
        if let Some(w) = &self.withdraw {
            row.notes.push(format!(
                "withdraw: {} polls, slowest answer {:.0} ms; {}",
                w.polls,
                w.slowest_poll_ms,
                bounds(w)
            ));
        }
        if let Some(w) = &self.withdraw {
            if !w.done(has_fib) {
                row.notes.push(format!(
                    "withdraw NOT complete: {} selected, {} installed left",
                    w.last.selected,
                    w.last.installed.map_or("-".into(), |i| i.to_string())
                ));
            }
        }
    }
}

pub(super) fn cpu_secs(pid: u32) -> f64 {
    process_cpu_ns(pid).unwrap_or(0) as f64 * 1e-9
}

/// One row per system: every figure the median of the rounds that have
/// it (each round's values in a note).
pub(super) fn merge_rounds(rounds: &[Vec<Row>]) -> Vec<Row> {
    if rounds.len() == 1 {
        return rounds[0].clone();
    }
    let mut out = Vec::new();
    for first in &rounds[0] {
        let all: Vec<&Row> = rounds
            .iter()
            .filter_map(|r| r.iter().find(|x| x.system == first.system))
            .collect();
        let mut keys: Vec<&String> = all.iter().flat_map(|r| r.figures.keys()).collect();
        keys.sort();
        keys.dedup();
        let mut figures = BTreeMap::new();
        let mut per_key = Vec::new();
        for k in keys {
            let mut v: Vec<f64> = all
                .iter()
                .filter_map(|r| r.figures.get(k).copied())
                .collect();
            per_key.push(format!(
                "{k}: {}",
                v.iter()
                    .map(|x| format!("{x:.3}"))
                    .collect::<Vec<_>>()
                    .join(" / ")
            ));
            if let Some(m) = median(&mut v) {
                figures.insert(k.clone(), m);
            }
        }
        let mut row = Row {
            system: first.system.clone(),
            figures,
            limited_by: if all.iter().all(|r| r.limited_by.starts_with("converged")) {
                "converged in every round".into()
            } else {
                all.iter()
                    .enumerate()
                    .map(|(i, r)| format!("round {}: {}", i + 1, r.limited_by))
                    .collect::<Vec<_>>()
                    .join("; ")
            },
            ..Row::default()
        };
        row.notes.push(format!(
            "median of {} rounds; rounds: {}",
            rounds.len(),
            per_key.join("; ")
        ));
        for (i, r) in all.iter().enumerate() {
            for n in &r.notes {
                row.notes.push(format!("round {}: {n}", i + 1));
            }
        }
        out.push(row);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_status() {
        let text = "Name:\tbird\nVmPeak:\t  300000 kB\nVmHWM:\t  123456 kB\nVmRSS:\t  120000 kB\nThreads:\t1\n";
        assert_eq!(
            parse_status(text),
            Some(ProcMem {
                rss: 120_000 * 1024,
                hwm: 123_456 * 1024
            })
        );
        assert_eq!(parse_status("Name:\tx\n"), None);
        let me = proc_mem(std::process::id()).unwrap();
        assert!(me.rss > 0 && me.hwm >= me.rss);
    }

    fn sample_row(system: &str, figs: &[(&str, f64)]) -> Row {
        Row {
            system: system.into(),
            figures: figs.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            limited_by: "converged".into(),
            ..Row::default()
        }
    }

    #[test]
    fn rounds_merge_to_per_figure_medians() {
        let rounds = vec![
            vec![
                sample_row("a", &[("t", 3.0), ("m", 10.0)]),
                sample_row("b", &[("t", 1.0)]),
            ],
            vec![
                sample_row("a", &[("t", 1.0), ("m", 30.0)]),
                sample_row("b", &[("t", 2.0)]),
            ],
            vec![
                sample_row("a", &[("t", 2.0)]),
                sample_row("b", &[("t", 9.0)]),
            ],
        ];
        let m = merge_rounds(&rounds);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].figures["t"], 2.0);
        assert_eq!(m[0].figures["m"], 20.0);
        assert_eq!(m[1].figures["t"], 2.0);
        assert_eq!(m[0].limited_by, "converged in every round");
        assert!(m[0].notes[0].contains("t: 3.000 / 1.000 / 2.000"));
    }
}
