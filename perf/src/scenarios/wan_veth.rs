//! `wan-veth` (root): delivered loss and goodput of a sequence-numbered UDP
//! flow between two Patronus sites — the real engines of the e2e WAN
//! topology (tests/src/wan_topology.rs: WireGuard tunnels over carriers
//! with nftables `numgen random` loss) — with FEC off (the same path
//! without it) beside FEC on at several k/m and adaptive, in the same run.
//! Figures are counts and rates; nothing is compared with a threshold.

mod sample;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use anyhow::bail;
use patronus_e2e::wan_topology::{PolicyOpts, WanOptions, WanTopology};

use self::sample::Sample;
use crate::netns::{sleep_checked, stop_requested};
use crate::report::{Report, Row};
use crate::scenarios::Options;

/// Flow shape: datagrams per second and UDP payload bytes.
#[derive(Clone, Debug)]
pub struct FlowOptions {
    pub pps: u32,
    pub payload: u32,
    /// Random loss of every carrier, percent, one row group each.
    pub loss_pct: Vec<u8>,
}

/// One engine configuration (the bulk and default policies' FEC).
#[derive(Clone, Copy, Debug)]
struct Setting {
    fec: &'static str,
    k: u8,
    m: u8,
}

impl Setting {
    fn name(&self) -> String {
        match self.fec {
            "off" => "fec-off".into(),
            "on" => format!("fec-{}/{}", self.k, self.m),
            other => format!("{other}-{}/{}", self.k, self.m),
        }
    }
}

const SETTINGS: [Setting; 5] = [
    Setting {
        fec: "off",
        k: 10,
        m: 2,
    },
    Setting {
        fec: "on",
        k: 10,
        m: 2,
    },
    Setting {
        fec: "on",
        k: 10,
        m: 4,
    },
    Setting {
        fec: "on",
        k: 20,
        m: 4,
    },
    Setting {
        fec: "adaptive",
        k: 10,
        m: 4,
    },
];

/// Longest wait for both engines to see both paths alive.
const PATHS_UP: Duration = Duration::from_secs(20);

fn system(s: &Setting, loss: u8) -> String {
    format!("{}@{loss}%", s.name())
}

/// The topology for `s`: both carriers lossy (the flow's path loses
/// whichever it is on), the bulk and default policies alike (a flow gets
/// the same FEC before and after the classifier names it), both
/// "cheapest" (the flow stays on fibre).
fn topology(s: &Setting, loss: u8) -> WanTopology {
    let policy = PolicyOpts {
        mode: Some("cheapest"),
        fec: s.fec,
        fec_k: s.k,
        fec_m: s.m,
        fec_delay_ms: 20,
        compress: false,
        duplicate: false,
    };
    let mut t = WanTopology::build(WanOptions {
        loss_pct: [loss, loss],
        bulk: policy,
        default: policy,
        ..WanOptions::default()
    });
    t.wait_paths_alive(PATHS_UP);
    t
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic".into())
}

/// One topology per setting; one flow per loss level in it (each on its
/// own UDP port, after a warm-up at the new loss). `Err` carries why the
/// setting could not be measured.
fn measure_setting(
    s: &Setting,
    flow: &FlowOptions,
    count: u32,
    warmup: Duration,
    port_base: u16,
) -> anyhow::Result<Vec<Sample>> {
    let mut out = Vec::new();
    let result = catch_unwind(AssertUnwindSafe(|| -> anyhow::Result<()> {
        let mut t = topology(s, flow.loss_pct[0]);
        for (i, &loss) in flow.loss_pct.iter().enumerate() {
            if stop_requested() {
                bail!("interrupted");
            }
            for c in &t.carriers {
                c.set_loss(loss);
            }
            sleep_checked(warmup)?;
            let port = port_base + i as u16;
            out.push(sample::flow(&mut t, port, flow.pps, count, flow.payload));
        }
        Ok(())
    }));
    match result {
        Ok(Ok(())) => Ok(out),
        Ok(Err(e)) => Err(e),
        Err(p) => bail!("{}", panic_text(&*p)),
    }
}

fn row(system: &str, payload: u32, x: &Sample) -> Row {
    let mut r = Row {
        system: system.into(),
        packet_size: payload as usize,
        limited_by: "fixed-rate sender (seq_udp.py)".into(),
        offered_pps: Some(x.offered_pps()),
        ..Row::default()
    };
    // pps / bps: delivered datagrams and payload bits per second of the
    // receiver's arrival span.
    r.set_rate(x.received, x.span_secs);
    let f = &mut r.figures;
    f.insert("sent".into(), x.sent as f64);
    f.insert("received".into(), x.received as f64);
    f.insert("delivered_loss_pct".into(), x.delivered_loss_pct());
    f.insert("goodput_mbit_s".into(), x.goodput_mbit_s());
    f.insert(
        "delivered_payload_per_wire_byte".into(),
        x.delivered_per_wire_byte(),
    );
    f.insert("wire_sent_bytes".into(), x.wire_sent_bytes as f64);
    f.insert("wire_sent_packets".into(), x.wire_sent_packets as f64);
    f.insert("wire_loss_pct".into(), x.wire_loss_pct());
    f.insert("fec_data_sent".into(), x.fec_data_sent as f64);
    f.insert("fec_parity_sent".into(), x.fec_parity_sent as f64);
    f.insert("parity_per_data".into(), x.parity_per_data());
    // Share of the flow's datagrams that went through a FEC encoder (the
    // adaptive toggle's on-time, as the flow saw it).
    f.insert(
        "fec_coverage_pct".into(),
        100.0 * x.fec_data_sent as f64 / x.sent.max(1) as f64,
    );
    f.insert("fec_recovered".into(), x.fec_recovered as f64);
    f.insert("fec_unrecoverable".into(), x.fec_unrecoverable as f64);
    if x.duplicates > 0 {
        r.notes
            .push(format!("{} duplicate datagrams arrived", x.duplicates));
    }
    r
}

/// Namespaces of the e2e helpers (`pt<pid>x…`) still present.
fn leftover_e2e_namespaces() -> Vec<String> {
    crate::netns::namespaces_starting_with(&format!("pt{}x", std::process::id()))
}

pub fn run(opts: &Options, flow: &FlowOptions) -> anyhow::Result<Report> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        bail!("wan-veth creates network namespaces: run it as root");
    }
    if flow.loss_pct.is_empty() || flow.loss_pct.iter().any(|&l| l > 100) {
        bail!("--wan-loss needs one or more percentages (0..=100)");
    }
    if flow.pps == 0 || flow.payload < 17 {
        bail!("--wan-pps must be > 0 and --wan-payload >= 17 (sequence header)");
    }
    // The e2e helpers start the engine named by PATRONUS_ENGINE.
    let engine = crate::engine::locate(opts.engine.as_deref())?;
    std::env::set_var("PATRONUS_ENGINE", &engine);
    let count = ((flow.pps as f64) * opts.duration.as_secs_f64())
        .round()
        .max(1.0) as u32;
    let mut report = Report::new("wan-veth");
    let rounds = opts.rounds.max(1);
    // pooled[setting][loss]: samples summed over rounds; per-round losses
    // for the notes.
    let nloss = flow.loss_pct.len();
    let mut pooled = vec![vec![Sample::default(); nloss]; SETTINGS.len()];
    let mut per_round = vec![vec![Vec::new(); nloss]; SETTINGS.len()];
    let mut failed: Vec<Option<String>> = vec![None; SETTINGS.len()];
    for round in 0..rounds {
        for (si, s) in SETTINGS.iter().enumerate() {
            if failed[si].is_some() {
                continue;
            }
            if stop_requested() {
                bail!("interrupted");
            }
            eprintln!("wan-veth: round {} {}", round + 1, s.name());
            let port_base = 6000 + (round * SETTINGS.len() + si) as u16 * 16;
            match measure_setting(s, flow, count, opts.warmup, port_base) {
                Ok(samples) => {
                    for (li, x) in samples.iter().enumerate() {
                        pooled[si][li].add(x);
                        per_round[si][li].push(x.delivered_loss_pct());
                    }
                }
                Err(e) if stop_requested() => return Err(e),
                Err(e) => failed[si] = Some(format!("{e:#}")),
            }
        }
    }
    for (li, &loss) in flow.loss_pct.iter().enumerate() {
        for (si, s) in SETTINGS.iter().enumerate() {
            let name = system(s, loss);
            let mut r = match &failed[si] {
                Some(why) => Row::not_run(&name, flow.payload as usize, why.clone()),
                None => row(&name, flow.payload, &pooled[si][li]),
            };
            if rounds > 1 && failed[si].is_none() {
                let v: Vec<String> = per_round[si][li]
                    .iter()
                    .map(|l| format!("{l:.3}"))
                    .collect();
                r.notes.insert(
                    0,
                    format!(
                        "pooled over {rounds} rounds; delivered loss % per round: {}",
                        v.join(", ")
                    ),
                );
            }
            report.rows.push(r);
        }
        // Ratios against the FEC-off row of the same loss.
        let off = &pooled[0][li];
        if failed[0].is_none() {
            let base = system(&SETTINGS[0], loss);
            for (si, s) in SETTINGS.iter().enumerate().skip(1) {
                if failed[si].is_some() {
                    continue;
                }
                let x = &pooled[si][li];
                let ratio = |a: f64, b: f64| (b > 0.0).then(|| a / b);
                let name = system(s, loss);
                let loss_ratio = ratio(x.delivered_loss_pct(), off.delivered_loss_pct());
                let goodput_ratio = ratio(x.goodput_mbit_s(), off.goodput_mbit_s());
                let per_wire_ratio =
                    ratio(x.delivered_per_wire_byte(), off.delivered_per_wire_byte());
                report.push_ratio(&format!("{name} delivered loss"), &base, loss_ratio);
                report.push_ratio(&format!("{name} goodput"), &base, goodput_ratio);
                report.push_ratio(&format!("{name} payload/wire"), &base, per_wire_ratio);
                let row = report
                    .rows
                    .iter_mut()
                    .find(|r| r.system == name)
                    .expect("row pushed above");
                for (k, v) in [
                    ("delivered_loss_ratio_vs_off", loss_ratio),
                    ("goodput_ratio_vs_off", goodput_ratio),
                    ("payload_per_wire_ratio_vs_off", per_wire_ratio),
                ] {
                    if let Some(v) = v {
                        row.figures.insert(k.into(), v);
                    }
                }
            }
        }
    }
    report.notes.push(format!(
        "one bulk UDP flow hA -> hB per row: {count} datagrams of {} B payload at {} pps \
         (tests/tools/seq_udp.py); both carriers drop the given share of packets at random \
         (nftables numgen), the flow stays on fibre (policies 'cheapest'); one topology \
         (two engines, fresh namespaces) per FEC setting, the loss levels in turn inside it, \
         {:.1} s warm-up after each loss change",
        flow.payload,
        flow.pps,
        opts.warmup.as_secs_f64()
    ));
    report.notes.push(
        "delivered loss: datagrams sent that never arrived; goodput: delivered UDP payload \
         bits over the receiver's first-to-last arrival; payload/wire: delivered UDP payload \
         bytes per Ethernet byte the carriers took in from site A (both paths; WireGuard, \
         WAN and FEC headers, parity, probes, handshakes); parity_per_data: engine A's \
         wan.path.*.fec_parity_sent / fec_data_sent; recovered / unrecoverable: engine B's"
            .into(),
    );
    report.notes.push(format!(
        "FEC policies: fec_delay_ms 20; adaptive: the engine's default thresholds \
         (on at 1 % measured probe loss, off below 0.2 %); ratios: each row against {} at \
         the same loss, same run",
        SETTINGS[0].name()
    ));
    let left = leftover_e2e_namespaces();
    if !left.is_empty() {
        eprintln!("warning: namespaces left behind: {left:?}");
        report
            .notes
            .push(format!("namespaces left behind: {left:?}"));
    }
    Ok(report)
}
