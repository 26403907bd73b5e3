//! `fwd-dpdk-null`: the engine's full forwarding pipeline over DPDK virtual
//! devices against `dpdk-testpmd` (io and macswap) on the same vdevs, one
//! forwarding core each, same window.
//!
//! `net_null` RX hands out zero-filled 64 B frames (destination MAC
//! 00:00:00:00:00:00): a router drops every one as not addressed to it, so
//! on `net_null` the engine row can only show RX + drop. The forwarding
//! comparison therefore runs on `net_pcap` vdevs replaying real frames
//! (`rx_pcap=F,infinite_rx=1`: each RX allocates an mbuf and copies a stored
//! 64 B frame into it, like a NIC's DMA; no TX file, so TX frees the mbufs
//! like `net_null`'s TX), and testpmd runs on both device sets.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::rounds::{median, merge_rounds, same_round_ratios};
use super::Options;
use crate::engine::{self, EngineProcess};
use crate::generator::{build_frame, GenConfig};
use crate::netns::sleep_checked;
use crate::report::{Report, Row};
use crate::sysstat;

const FRAME_LEN: usize = 64;
/// Distinct flows per replayed direction (one stored frame each).
const FLOWS: u32 = 64;
/// testpmd's mbufs: what `-m 512` without hugepages can hold.
const TESTPMD_MBUFS: u32 = 32_768;
/// testpmd's default RX/TX burst.
const TESTPMD_BURST: u16 = 32;
/// The engine's batch (RX burst per port per poll).
const ENGINE_BURST: u16 = 256;
const LAN_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x01, 0x01];
const WAN_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x02, 0x01];
/// Where the replayed frames come from (any MAC but the ports').
const PEER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x88];

/// The two device sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Vdevs {
    /// `net_null0,size=64` / `net_null1,size=64`.
    Null,
    /// `net_pcap` vdevs replaying 64 B UDP frames to the ports' MACs.
    Replay,
}

impl Vdevs {
    fn args(self, dir: &Path) -> Vec<String> {
        match self {
            Vdevs::Null => vec![
                format!("net_null0,size={FRAME_LEN}"),
                format!("net_null1,size={FRAME_LEN}"),
            ],
            Vdevs::Replay => ["lan", "wan"]
                .iter()
                .enumerate()
                .map(|(i, side)| {
                    format!(
                        "net_pcap{i},rx_pcap={},infinite_rx=1",
                        dir.join(format!("fwd-dpdk-{side}.pcap")).display()
                    )
                })
                .collect(),
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Vdevs::Null => "",
            Vdevs::Replay => "-replay",
        }
    }
}

pub fn run(opts: &Options) -> anyhow::Result<Report> {
    let mut report = Report::new("fwd-dpdk-null");
    if opts.gen_core == opts.router_core {
        bail!("testpmd needs a main lcore besides its forwarding lcore: give --gen-core and --router-core different cores");
    }
    write_pcaps(&opts.workdir)?;
    let engine_bin = engine::locate(opts.engine.as_deref())?;

    let mut rounds: Vec<Vec<Row>> = Vec::new();
    for _ in 0..opts.rounds.max(1) {
        let mut rows = Vec::new();
        for vdevs in [Vdevs::Null, Vdevs::Replay] {
            // testpmd's default burst (32), and on the replay devices also the
            // engine's batch size (256), which shows what the burst alone costs.
            let mut runs = vec![("io", TESTPMD_BURST), ("macswap", TESTPMD_BURST)];
            if vdevs == Vdevs::Replay {
                runs.push(("macswap", ENGINE_BURST));
            }
            for (mode, burst) in runs {
                let name = format!(
                    "testpmd-{mode}{}{}",
                    vdevs.suffix(),
                    if burst == TESTPMD_BURST { "" } else { "-b256" }
                );
                rows.push(match testpmd_row(opts, vdevs, mode, burst, &name) {
                    Ok(r) => r,
                    Err(e) if crate::netns::stop_requested() => return Err(e),
                    Err(e) => Row::not_run(&name, FRAME_LEN, format!("{e:#}")),
                });
            }
            let name = match vdevs {
                Vdevs::Null => "patronus-null-rxdrop",
                Vdevs::Replay => "patronus",
            };
            rows.push(match engine_row(opts, &engine_bin, vdevs, name) {
                Ok(r) => r,
                Err(e) if crate::netns::stop_requested() => return Err(e),
                Err(e) => Row::not_run(name, FRAME_LEN, format!("{e:#}")),
            });
        }
        rounds.push(rows);
    }
    report.rows = merge_rounds(&rounds, &mut report.notes);

    for (system, baseline) in [
        ("patronus", "testpmd-macswap-replay"),
        ("patronus", "testpmd-io-replay"),
        ("patronus", "testpmd-macswap-replay-b256"),
        ("patronus", "testpmd-macswap"),
        ("testpmd-macswap-replay", "testpmd-macswap"),
    ] {
        let mut ratios = same_round_ratios(&rounds, system, baseline);
        if rounds.len() > 1 {
            report.notes.push(format!(
                "per-round ratios {system} / {baseline}: {}",
                ratios
                    .iter()
                    .map(|r| format!("{r:.3}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let ratio = median(&mut ratios);
        if baseline == "testpmd-macswap-replay" {
            report.ratio = ratio;
        }
        report.push_ratio(system, baseline, ratio);
    }
    report.notes.push(format!(
        "one forwarding core (core {}) for every row, EAL main lcore on core {}, everything at nice {}; \
         --no-huge --no-shconf -m 512 --no-pci; pps = frames transmitted on both ports per second over a \
         {:.0} s window after a {:.0} s warm-up (testpmd: the mean of its per-second Tx-pps, both ports; \
         engine: tx_packets deltas between two --stats-json snapshots)",
        opts.router_core,
        opts.gen_core,
        opts.nice,
        opts.duration.as_secs_f64(),
        opts.warmup.as_secs_f64()
    ));
    report.notes.push(format!(
        "net_null RX frames are {FRAME_LEN} B of zeros, which a router drops (destination MAC not its own): \
         patronus-null-rxdrop shows the engine receiving and dropping them; the forwarding rows use net_pcap \
         replay ({FLOWS} UDP flows per direction, lan0 -> 10.3.0.0/24 and wan0 -> 10.4.0.0/24, both ways at \
         once, as testpmd forwards port 0 <-> port 1): RX allocates an mbuf and copies a stored frame, TX frees"
    ));
    report.notes.push(
        "testpmd runs with its defaults (burst 32, paired ports) and --total-num-mbufs=32768, and once more \
         with --burst=256 (the -b256 row) on the replay devices; the engine's worker receives bursts of up to 32 per port and runs the whole \
         pipeline on every frame (its fast path: Ethernet, IPv4 validation with checksum, DIR-24-8 lookup, \
         TTL decrement, neighbour, L2 rewrite)"
            .into(),
    );
    Ok(report)
}

/// Writes the replayed frames: lan side to LAN_MAC for 10.3.0.x, wan side
/// to WAN_MAC for 10.4.0.x.
fn write_pcaps(dir: &Path) -> anyhow::Result<()> {
    for (side, dst_mac, src, dst) in [
        ("lan", LAN_MAC, [10, 1, 0, 10], [10, 3, 0, 0]),
        ("wan", WAN_MAC, [10, 2, 0, 10], [10, 4, 0, 0]),
    ] {
        let cfg = GenConfig {
            netns: None,
            iface: String::new(),
            src_mac: PEER_MAC,
            dst_mac,
            frame_len: FRAME_LEN,
            flows: FLOWS,
            src_base: src.into(),
            dst_base: dst.into(),
            core: None,
            nice: 0,
        };
        let frames: Vec<Vec<u8>> = (0..FLOWS).map(|f| build_frame(&cfg, f)).collect();
        let path = dir.join(format!("fwd-dpdk-{side}.pcap"));
        std::fs::write(&path, pcap_file(&frames))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// A classic little-endian pcap file (Ethernet link type) holding `frames`.
fn pcap_file(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    for v in [0u32, 0, 65_535, 1] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for (i, f) in frames.iter().enumerate() {
        for v in [0u32, i as u32, f.len() as u32, f.len() as u32] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(f);
    }
    out
}

/// testpmd's per-second statistics: Tx-pps summed over the ports, per block.
fn parse_tx_pps(text: &str) -> Vec<f64> {
    let mut samples = Vec::new();
    let mut in_block = false;
    let mut sum = 0.0;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("Port statistics =") {
            if in_block {
                samples.push(sum);
            }
            in_block = true;
            sum = 0.0;
        } else if in_block && t.starts_with("Tx-pps:") {
            sum += t
                .split_whitespace()
                .nth(1)
                .and_then(|n| n.parse::<f64>().ok())
                .unwrap_or(0.0);
        } else if in_block && t.starts_with("Telling cores to stop") {
            samples.push(sum);
            in_block = false;
        }
    }
    samples
}

fn testpmd_row(
    opts: &Options,
    vdevs: Vdevs,
    mode: &str,
    burst: u16,
    name: &str,
) -> anyhow::Result<Row> {
    let mut cmd = Command::new("nice");
    cmd.arg("-n").arg(opts.nice.to_string()).arg("dpdk-testpmd");
    cmd.args(["--no-huge", "--no-shconf", "-m", "512", "--no-pci"]);
    cmd.arg("-l")
        .arg(format!("{},{}", opts.gen_core, opts.router_core));
    cmd.arg("--main-lcore").arg(opts.gen_core.to_string());
    cmd.arg(format!(
        "--file-prefix=patronus-perf-{}",
        std::process::id()
    ));
    for v in vdevs.args(&opts.workdir) {
        cmd.arg(format!("--vdev={v}"));
    }
    cmd.arg("--");
    cmd.arg(format!("--total-num-mbufs={TESTPMD_MBUFS}"));
    cmd.arg(format!("--forward-mode={mode}"));
    cmd.arg(format!("--burst={burst}"));
    cmd.args(["--auto-start", "--nb-cores=1", "--stats-period", "1"]);
    let log = opts.workdir.join(format!("{name}.log"));
    let logfile = std::fs::File::create(&log)?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(logfile.try_clone()?)
        .stderr(logfile)
        .spawn()
        .context("starting dpdk-testpmd (Debian package dpdk-dev)")?;
    let pid = child.id();
    let measured = (|| -> anyhow::Result<(f64, u64)> {
        sleep_checked(opts.warmup)?;
        let c0 = sysstat::process_cpu_ns(pid)?;
        let t0 = Instant::now();
        sleep_checked(opts.duration)?;
        let c1 = sysstat::process_cpu_ns(pid)?;
        Ok((t0.elapsed().as_secs_f64(), c1.saturating_sub(c0)))
    })();
    // Every path reaches here before the child is waited for (the window's
    // errors are only returned afterwards), so it never outlives the row.
    // SAFETY: signals our own child, not yet waited for.
    unsafe { libc::kill(pid as i32, libc::SIGINT) };
    let status = wait_with_timeout(&mut child, Duration::from_secs(10))?;
    let (secs, cpu_ns) = measured?;
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    if !text.contains("Port statistics") {
        bail!(
            "testpmd printed no statistics (exit {status:?}): {}",
            tail(&text, 12)
        );
    }
    // Sample k is printed about k+1 s after forwarding starts: skip the
    // warm-up's, keep the window's.
    let samples = parse_tx_pps(&text);
    let skip = opts.warmup.as_secs_f64().ceil() as usize + 1;
    let keep = opts.duration.as_secs_f64().floor().max(1.0) as usize;
    let window: Vec<f64> = samples.iter().skip(skip).take(keep).copied().collect();
    if window.is_empty() {
        bail!(
            "testpmd printed {} statistics samples, none inside the window",
            samples.len()
        );
    }
    let pps = window.iter().sum::<f64>() / window.len() as f64;
    let mut row = Row {
        system: name.into(),
        packet_size: FRAME_LEN,
        ..Row::default()
    };
    row.set_rate((pps * window.len() as f64) as u64, window.len() as f64);
    let share = cpu_ns as f64 / 1e9 / secs;
    row.cpu_ns_per_packet = Some(cpu_ns as f64 / (pps * secs).max(1.0));
    row.limited_by = format!(
        "testpmd's forwarding core (busy poll; the process used {:.0}% of a core)",
        share * 100.0
    );
    row.notes.push(format!(
        "{mode} forwarding, burst {burst}, {} vdevs; mean of {} per-second Tx-pps samples: {}",
        match vdevs {
            Vdevs::Null => "net_null",
            Vdevs::Replay => "net_pcap replay",
        },
        window.len(),
        window
            .iter()
            .map(|p| format!("{:.2}", p / 1e6))
            .collect::<Vec<_>>()
            .join(" ")
    ));
    Ok(row)
}

fn engine_config(opts: &Options, vdevs: Vdevs) -> String {
    let list = vdevs
        .args(&opts.workdir)
        .iter()
        .map(|v| format!("\"{v}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let (dev0, dev1) = match vdevs {
        Vdevs::Null => ("net_null0", "net_null1"),
        Vdevs::Replay => ("net_pcap0", "net_pcap1"),
    };
    let mac = |m: [u8; 6]| {
        m.iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":")
    };
    format!(
        r#"# fwd-dpdk-null: two DPDK vdevs, one busy-polling worker, routes both ways
[engine]
workers = 1
poll = "busy"
cores = [{core}]

[dpdk]
lcores = "{main}"
no_huge = true
vdevs = [{list}]

[[port]]
name = "lan0"
driver = "dpdk"
device = "{dev0}"
mac = "{lan}"

[[port]]
name = "wan0"
driver = "dpdk"
device = "{dev1}"
mac = "{wan}"

[[interface]]
port = "lan0"
address = "10.1.0.1/24"

[[interface]]
port = "wan0"
address = "10.2.0.1/24"

[[route]]
prefix = "10.3.0.0/16"
via = "10.2.0.2"

[[route]]
prefix = "10.4.0.0/16"
via = "10.1.0.2"

[[neighbor]]
port = "wan0"
address = "10.2.0.2"
mac = "02:00:00:00:02:99"

[[neighbor]]
port = "lan0"
address = "10.1.0.2"
mac = "02:00:00:00:01:99"
"#,
        core = opts.router_core,
        main = opts.gen_core,
        lan = mac(LAN_MAC),
        wan = mac(WAN_MAC),
    )
}

fn engine_row(opts: &Options, bin: &Path, vdevs: Vdevs, name: &str) -> anyhow::Result<Row> {
    let dir = &opts.workdir;
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(&config, engine_config(opts, vdevs))?;
    engine::check_config(bin, &config).context(
        "the engine needs the dpdk feature: cargo build --release -p patronus-engine --features dpdk",
    )?;
    let stats = dir.join(format!("{name}-stats.json"));
    let mut eng = EngineProcess::spawn(
        bin,
        &config,
        &stats,
        None,
        opts.nice,
        &dir.join(format!("{name}-engine.log")),
    )?;
    sleep_checked(Duration::from_millis(500))?;
    if let Some(info) = eng.exited()? {
        bail!(
            "engine exited at start-up (code {:?}): {}",
            info.code,
            tail(&info.output, 12)
        );
    }
    let measured = (|| -> anyhow::Result<_> {
        sleep_checked(opts.warmup)?;
        let s0 = eng.snapshot(&stats)?;
        let c0 = sysstat::process_cpu_ns(eng.pid())?;
        let t0 = Instant::now();
        sleep_checked(opts.duration)?;
        let s1 = eng.snapshot(&stats)?;
        let secs = t0.elapsed().as_secs_f64();
        let c1 = sysstat::process_cpu_ns(eng.pid())?;
        Ok((s0, s1, secs, c1.saturating_sub(c0)))
    })();
    let info = eng.stop()?;
    let (s0, s1, secs, cpu_ns) = measured?;
    let sum = |st: &crate::engine::EngineStats, rx: bool| -> u64 {
        st.ports
            .iter()
            .map(|p| if rx { p.rx_packets } else { p.tx_packets })
            .sum()
    };
    let tx = sum(&s1, false).saturating_sub(sum(&s0, false));
    let rx = sum(&s1, true).saturating_sub(sum(&s0, true));
    let drops = s1.drops_total.saturating_sub(s0.drops_total);
    let mut row = Row {
        system: name.into(),
        packet_size: FRAME_LEN,
        ..Row::default()
    };
    let share = cpu_ns as f64 / 1e9 / secs.max(1e-9);
    match vdevs {
        Vdevs::Replay => {
            row.set_rate(tx, secs);
            row.cpu_ns_per_packet = Some(cpu_ns as f64 / tx.max(1) as f64);
            row.limited_by = format!(
                "the engine's worker core (busy poll, full pipeline; the process used {:.0}% of a core)",
                share * 100.0
            );
        }
        Vdevs::Null => {
            // Nothing is forwarded: the row's rate is frames received and dropped.
            row.set_rate(rx, secs);
            row.cpu_ns_per_packet = Some(cpu_ns as f64 / rx.max(1) as f64);
            row.limited_by = format!(
                "NOT forwarding: net_null's all-zero frames are dropped ({}); rate = frames received and \
                 dropped per second on one core ({:.0}% of a core)",
                s1.drops_summary(),
                share * 100.0
            );
        }
    }
    row.notes.push(format!(
        "window: rx {rx}, tx {tx}, drops {drops}; engine drops over its whole run: {}{}",
        s1.drops_summary(),
        if info.success {
            String::new()
        } else {
            format!("; exit code {:?} on SIGINT", info.code)
        }
    ));
    Ok(row)
}

fn wait_with_timeout(
    child: &mut std::process::Child,
    timeout: Duration,
) -> anyhow::Result<Option<i32>> {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait()? {
            return Ok(st.code());
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let st = child.wait()?;
            return Ok(st.code());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use patronus_engine::config::EngineConfig;

    #[test]
    fn parses_testpmd_periodic_statistics() {
        let text = "\
Port statistics ====================================
  ######################## NIC statistics for port 0  ########################
  RX-packets: 8456704    RX-missed: 0          RX-bytes:  0
  TX-packets: 8250880    TX-errors: 0          TX-bytes:  0
  Throughput (since last show)
  Rx-pps:      8225720          Rx-bps:            0
  Tx-pps:      8225752          Tx-bps:            0
  ######################## NIC statistics for port 1  ########################
  Tx-pps:      8225645          Tx-bps:            0
\x1b[2J\x1b[1;1H
Port statistics ====================================
  Tx-pps:      1000          Tx-bps:            0
  Tx-pps:      2000          Tx-bps:            0
Telling cores to stop...
  TX-packets: 26521248       TX-dropped: 0             TX-total: 26521248
";
        assert_eq!(parse_tx_pps(text), vec![16451397.0, 3000.0]);
        assert!(parse_tx_pps("no stats").is_empty());
    }

    #[test]
    fn pcap_file_layout() {
        let f = pcap_file(&[vec![1u8; 64], vec![2u8; 60]]);
        assert_eq!(f.len(), 24 + 16 + 64 + 16 + 60);
        assert_eq!(&f[0..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(u32::from_le_bytes(f[20..24].try_into().unwrap()), 1);
        assert_eq!(u32::from_le_bytes(f[32..36].try_into().unwrap()), 64);
        assert_eq!(f[40], 1);
        assert_eq!(
            u32::from_le_bytes(f[40 + 64 + 8..40 + 64 + 12].try_into().unwrap()),
            60
        );
    }

    #[test]
    fn replay_frames_are_routed_both_ways() {
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
        let vdevs = Vdevs::Replay.args(&opts.workdir);
        assert!(vdevs[0].starts_with("net_pcap0,rx_pcap=") && vdevs[0].ends_with("infinite_rx=1"));
        let text = engine_config(&opts, Vdevs::Replay);
        assert!(text.contains(&format!("\"{}\"", vdevs[1])));
        let cfg = EngineConfig::parse(&text);
        // A build without the dpdk feature refuses dpdk ports by name.
        let cfg = match cfg {
            Ok(c) => c,
            Err(e) => {
                assert!(e.to_string().contains("dpdk"), "{e}");
                return;
            }
        };
        assert_eq!(cfg.ports[0].mac.as_deref(), Some("02:00:00:00:01:01"));
        assert_eq!(cfg.routes.len(), 2);
    }
}
