//! `classify-pcap`: packets per second of `patronus classify` (signatures
//! and the model) against Debian's `ndpiReader` (nDPI 4.x) on the same
//! capture: every Ethernet capture of the nDPI corpus merged into one
//! (`mergecap -a`, in a scratch directory), each tool run on it as a whole
//! process (reading, flow tracking, classification, output to /dev/null),
//! rounds interleaved. pps = the capture's packets / the process's CPU
//! time (user + system, from the kernel's accounting of the finished
//! child): on a shared machine wall time mostly measures the other load.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context};

use super::rounds::median;
use super::{Options, Workdir};
use crate::report::{Report, Row};

/// The merged capture and its packet count.
fn merged_capture(dir: &Path) -> anyhow::Result<(PathBuf, u64)> {
    let corpus = patronus_classify::corpus::pcap_dir();
    let mut ether = Vec::new();
    for f in patronus_classify::corpus::captures(&corpus)
        .with_context(|| format!("reading {}", corpus.display()))?
    {
        // Only Ethernet captures: one link type for the merged file.
        let cap = patronus_classify::pcap::Capture::read(&f)?;
        if !cap.frames.is_empty() && cap.frames.iter().all(|fr| fr.linktype == 1) {
            ether.push(f);
        }
    }
    if ether.is_empty() {
        bail!("no Ethernet capture in {}", corpus.display());
    }
    let out = dir.join("corpus-ether.pcap");
    let st = Command::new("mergecap")
        .args(["-a", "-F", "pcap", "-w"])
        .arg(&out)
        .args(&ether)
        .stderr(Stdio::null())
        .status()
        .context("running mergecap (wireshark-common)")?;
    if !st.success() {
        bail!("mergecap failed: {st}");
    }
    let n = patronus_classify::pcap::Capture::read(&out)?.frames.len() as u64;
    Ok((out, n))
}

/// CPU seconds (user + system) of finished children so far.
fn children_cpu() -> f64 {
    // SAFETY: getrusage writes the struct we pass; zeroed is a valid start.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; RUSAGE_CHILDREN is a valid selector.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

/// (CPU seconds, wall seconds) of one run of `cmd`.
fn timed(cmd: &mut Command) -> anyhow::Result<(f64, f64)> {
    let cpu0 = children_cpu();
    let t = Instant::now();
    let st = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .with_context(|| format!("running {cmd:?}"))?;
    if !st.success() {
        bail!("{cmd:?}: {st}");
    }
    Ok((children_cpu() - cpu0, t.elapsed().as_secs_f64()))
}

pub fn run(opts: &Options) -> anyhow::Result<Report> {
    let mut report = Report::new("classify-pcap");
    let work = Workdir::create()?;
    let (pcap, packets) = merged_capture(work.path())?;
    let root = crate::engine::workspace_root();
    let ours = root.join("target/release/patronus");
    if !ours.exists() {
        bail!(
            "{} missing: cargo build --release -p patronus-ml",
            ours.display()
        );
    }
    let mut cpu: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut wall: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..opts.rounds.max(1) {
        let runs = [
            timed(Command::new(&ours).arg("classify").arg(&pcap).arg("--json"))?,
            timed(Command::new("ndpiReader").arg("-q").arg("-i").arg(&pcap))?,
        ];
        for (i, (c, w)) in runs.into_iter().enumerate() {
            cpu[i].push(c);
            wall[i].push(w);
        }
    }
    for (i, system) in ["patronus", "ndpiReader"].iter().enumerate() {
        let secs = median(&mut cpu[i].clone()).unwrap_or(f64::NAN);
        let w = median(&mut wall[i].clone()).unwrap_or(f64::NAN);
        let mut row = Row {
            system: (*system).into(),
            ..Row::default()
        };
        row.set_rate(packets, secs);
        row.cpu_ns_per_packet = Some(secs * 1e9 / packets.max(1) as f64);
        row.limited_by = format!("one process: CPU {secs:.3} s, wall {w:.3} s");
        report.rows.push(row);
    }
    report.set_ratio("patronus", "ndpiReader");
    report.notes.push(format!(
        "{packets} packets: every Ethernet capture of the nDPI corpus merged (mergecap -a); \
         median of {} interleaved rounds; patronus = `patronus classify --json` with \
         models/flow-mlp.bin, ndpiReader = `ndpiReader -q -i` (nDPI 4.2, Debian)",
        opts.rounds.max(1)
    ));
    Ok(report)
}
