//! `wan-fec-loss`: loss recovered versus overhead. 200 000 packets per
//! row go encoder → seeded lossy channel → decoder (the engine's
//! FecEncoder/FecDecoder), beside the same packets over the same channel
//! without FEC; rows for each k/m and loss model. No timing: the figures
//! are counts. A short adaptive run (FecToggle fed by a probe window over
//! the same channel) closes the report.

use std::collections::BTreeMap;

use patronus_engine::wan::wire::{write_plain_header, PLAIN_HEADER_LEN};
use patronus_engine::wan::{
    FecConfig, FecCounters, FecDecoder, FecEncoder, FecToggle, ProbeWindow, WindowConfig,
};

use super::channel::{Channel, LossModel, SplitMix64};
use super::payload::random_packet;
use crate::report::{Report, Row};
use crate::scenarios::Options;

/// Data packets per row and round.
pub const PACKETS: u64 = 200_000;
/// Inner packet size (bytes, before the WAN headers).
pub const SIZE: usize = 1400;
/// (k, m) shapes.
pub const SHAPES: [(u8, u8); 6] = [(5, 1), (10, 1), (10, 2), (10, 4), (20, 2), (20, 4)];
/// Time between data packets (10 kpps: 1400 B at ≈ 112 Mbit/s), ns.
const GAP_NS: u64 = 100_000;

/// The loss models of the rows.
pub fn models() -> Vec<LossModel> {
    let mut v: Vec<LossModel> = [0.01, 0.02, 0.05, 0.10]
        .iter()
        .map(|&p| LossModel::Bernoulli { p })
        .collect();
    // Bursty: mean burst 5 packets, ≈ 4.8 % mean loss.
    v.push(LossModel::GilbertElliott {
        good_to_bad: 0.01,
        bad_to_good: 0.2,
        loss_good: 0.0,
        loss_bad: 1.0,
    });
    v
}

/// Totals of one simulated transfer.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Transfer {
    pub data_packets: u64,
    /// Inner bytes offered / delivered.
    pub data_bytes: u64,
    pub delivered_packets: u64,
    pub delivered_bytes: u64,
    /// Everything put on the wire (WAN headers, FEC headers, parity).
    pub wire_bytes: u64,
    /// Parity packets' bytes (headers included).
    pub parity_bytes: u64,
    pub wire_packets: u64,
    pub wire_lost: u64,
    pub recovered: u64,
    pub unrecoverable: u64,
}

impl Transfer {
    pub fn loss_pct(&self) -> f64 {
        100.0 * (1.0 - self.delivered_packets as f64 / self.data_packets.max(1) as f64)
    }

    /// Inner bytes delivered per byte sent.
    pub fn goodput(&self) -> f64 {
        self.delivered_bytes as f64 / self.wire_bytes.max(1) as f64
    }

    fn add(&mut self, o: &Transfer) {
        self.data_packets += o.data_packets;
        self.data_bytes += o.data_bytes;
        self.delivered_packets += o.delivered_packets;
        self.delivered_bytes += o.delivered_bytes;
        self.wire_bytes += o.wire_bytes;
        self.parity_bytes += o.parity_bytes;
        self.wire_packets += o.wire_packets;
        self.wire_lost += o.wire_lost;
        self.recovered += o.recovered;
        self.unrecoverable += o.unrecoverable;
    }
}

fn fec_config(k: u8, m: u8) -> FecConfig {
    FecConfig {
        k,
        m,
        ..FecConfig::default()
    }
}

/// IMIX by packet count (7 : 4 : 1 of 64, 576 and 1400 B inner packets).
pub const IMIX: [usize; 12] = [64, 64, 64, 64, 64, 64, 64, 576, 576, 576, 576, 1400];

/// The inner size of each packet: drawn from `sizes` by a generator
/// seeded from `seed`, so the runs with and without FEC see the same
/// sequence.
struct Sizes<'a> {
    sizes: &'a [usize],
    rng: SplitMix64,
}

impl<'a> Sizes<'a> {
    fn new(sizes: &'a [usize], seed: u64) -> Self {
        Sizes {
            sizes,
            rng: SplitMix64::new(seed ^ 0x51_2e5),
        }
    }

    fn next(&mut self) -> usize {
        if self.sizes.len() == 1 {
            return self.sizes[0];
        }
        self.sizes[(self.rng.next_u64() % self.sizes.len() as u64) as usize]
    }
}

/// `packets` plain WAN packets over `model` (seeded), no FEC.
pub fn without_fec(model: LossModel, seed: u64, packets: u64, sizes: &[usize]) -> Transfer {
    let mut ch = Channel::new(model, seed);
    let mut sz = Sizes::new(sizes, seed);
    let mut t = Transfer::default();
    for _ in 0..packets {
        let size = sz.next();
        t.data_packets += 1;
        t.data_bytes += size as u64;
        t.wire_packets += 1;
        t.wire_bytes += (PLAIN_HEADER_LEN + size) as u64;
        if ch.lose() {
            t.wire_lost += 1;
        } else {
            t.delivered_packets += 1;
            t.delivered_bytes += size as u64;
        }
    }
    t
}

/// Sends FEC wire packets through a channel into a decoder, counting.
struct Link {
    ch: Channel,
    dec: FecDecoder,
    t: Transfer,
}

impl Link {
    fn send(&mut self, wire: &[u8], parity: bool, now: u64) -> anyhow::Result<()> {
        self.t.wire_packets += 1;
        self.t.wire_bytes += wire.len() as u64;
        if parity {
            self.t.parity_bytes += wire.len() as u64;
        }
        if self.ch.lose() {
            self.t.wire_lost += 1;
            return Ok(());
        }
        let t = &mut self.t;
        self.dec.push(wire, now, |inner| {
            t.delivered_packets += 1;
            t.delivered_bytes += (inner.len() - PLAIN_HEADER_LEN) as u64;
        })?;
        Ok(())
    }

    fn finish(mut self, now: u64) -> Transfer {
        self.dec.expire(now.saturating_add(u64::MAX / 2));
        let c: &FecCounters = self.dec.counters();
        self.t.recovered = c.recovered;
        self.t.unrecoverable = c.unrecoverable;
        self.t
    }
}

/// The same with FEC k/m: every packet FEC-encoded, parity sent when a
/// group fills (or its delay runs out at the end).
pub fn with_fec(
    model: LossModel,
    seed: u64,
    packets: u64,
    sizes: &[usize],
    k: u8,
    m: u8,
) -> anyhow::Result<Transfer> {
    let cfg = fec_config(k, m);
    let mut enc = FecEncoder::new(cfg)?;
    let mut link = Link {
        ch: Channel::new(model, seed),
        dec: FecDecoder::new(cfg)?,
        t: Transfer::default(),
    };
    let mut sz = Sizes::new(sizes, seed);
    let inner = plain(*sizes.iter().max().unwrap_or(&SIZE))?;
    let mut wire = vec![0u8; 4096];
    let mut parity: Vec<Vec<u8>> = Vec::with_capacity(usize::from(m));
    let mut now = 0u64;
    for _ in 0..packets {
        let size = sz.next();
        now += GAP_NS;
        parity.clear();
        let n = enc.encode(&inner[..PLAIN_HEADER_LEN + size], now, &mut wire, |p| {
            parity.push(p.to_vec())
        })?;
        link.t.data_packets += 1;
        link.t.data_bytes += size as u64;
        link.send(&wire[..n], false, now)?;
        for p in &parity {
            link.send(p, true, now)?;
        }
    }
    now += cfg.max_delay_ns;
    parity.clear();
    enc.poll(now, |p| parity.push(p.to_vec()))?;
    for p in &parity {
        link.send(p, true, now)?;
    }
    Ok(link.finish(now))
}

fn plain(size: usize) -> anyhow::Result<Vec<u8>> {
    let p = random_packet(size, 1);
    let mut w = vec![0u8; PLAIN_HEADER_LEN + size];
    let h = write_plain_header(&mut w)?;
    w[h..].copy_from_slice(&p);
    Ok(w)
}

/// One phase of the adaptive run: loss rate and length.
#[derive(Clone, Copy, Debug)]
pub struct Phase {
    pub loss: f64,
    pub secs: u64,
}

/// Clean 5 s, 5 % loss 10 s, 0.5 % 10 s, clean 10 s.
pub const PHASES: [Phase; 4] = [
    Phase { loss: 0.0, secs: 5 },
    Phase {
        loss: 0.05,
        secs: 10,
    },
    Phase {
        loss: 0.005,
        secs: 10,
    },
    Phase {
        loss: 0.0,
        secs: 10,
    },
];
/// Probe period and round trip of the adaptive run.
const PROBE_NS: u64 = 100_000_000;
const RTT_NS: u64 = 20_000_000;

/// FEC mode of an adaptive-run row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Off,
    On,
    /// FecToggle: on at `on_ppm` measured probe loss, off below `off_ppm`.
    Adaptive {
        on_ppm: u32,
        off_ppm: u32,
    },
}

/// What the adaptive run measured: totals, per-phase delivered loss, time
/// with FEC on, toggles, and how long after the lossy phase began FEC came on.
#[derive(Clone, Debug, Default)]
pub struct AdaptiveResult {
    pub total: Transfer,
    pub phase_loss_pct: Vec<f64>,
    pub fec_on_pct: f64,
    pub toggles: u32,
    pub on_after_ms: Option<f64>,
}

/// Runs `PHASES` at 10 kpps with probes every 100 ms over the same
/// channel (a probe is lost like a data packet), k/m FEC per `mode`.
pub fn adaptive(mode: Mode, seed: u64, k: u8, m: u8) -> anyhow::Result<AdaptiveResult> {
    let cfg = fec_config(k, m);
    let mut enc = FecEncoder::new(cfg)?;
    let mut link = Link {
        ch: Channel::new(LossModel::Bernoulli { p: 0.0 }, seed),
        dec: FecDecoder::new(cfg)?,
        t: Transfer::default(),
    };
    let mut window = ProbeWindow::new(WindowConfig::default());
    let mut toggle = match mode {
        Mode::Adaptive { on_ppm, off_ppm } => Some(FecToggle::new(on_ppm, off_ppm)),
        _ => None,
    };
    let mut on = mode == Mode::On;
    let inner = plain(SIZE)?;
    let mut wire = vec![0u8; 4096];
    let mut parity: Vec<Vec<u8>> = Vec::new();
    let mut res = AdaptiveResult::default();
    let (mut now, mut next_probe, mut reply): (u64, u64, Option<(u32, u64)>) = (0, 0, None);
    let (mut on_packets, mut all_packets) = (0u64, 0u64);
    let mut lossy_start: Option<u64> = None;
    for ph in PHASES {
        link.ch = Channel::new(LossModel::Bernoulli { p: ph.loss }, seed.wrapping_add(now));
        let mut probe_ch = Channel::new(LossModel::Bernoulli { p: ph.loss }, seed ^ now);
        let before = link.t;
        let end = now + ph.secs * 1_000_000_000;
        if ph.loss > 0.01 && lossy_start.is_none() {
            lossy_start = Some(now);
        }
        while now < end {
            now += GAP_NS;
            if let Some((seq, due)) = reply {
                if now >= due {
                    window.on_reply(seq, RTT_NS, (RTT_NS / 2) as i64, due);
                    reply = None;
                }
            }
            if now >= next_probe {
                next_probe = now + PROBE_NS;
                let seq = window.record_sent(now);
                if !probe_ch.lose() {
                    reply = Some((seq, now + RTT_NS));
                }
                if let Some(t) = toggle.as_mut() {
                    let was = on;
                    on = t.update(window.stats(now).loss_ppm);
                    if on != was {
                        res.toggles += 1;
                        if on && res.on_after_ms.is_none() {
                            if let Some(s) = lossy_start {
                                res.on_after_ms = Some((now - s) as f64 / 1e6);
                            }
                        }
                    }
                }
            }
            parity.clear();
            enc.poll(now, |p| parity.push(p.to_vec()))?;
            for p in &parity {
                link.send(p, true, now)?;
            }
            link.t.data_packets += 1;
            link.t.data_bytes += SIZE as u64;
            all_packets += 1;
            if on {
                on_packets += 1;
                parity.clear();
                let n = enc.encode(&inner, now, &mut wire, |p| parity.push(p.to_vec()))?;
                link.send(&wire[..n], false, now)?;
                for p in &parity {
                    link.send(p, true, now)?;
                }
            } else {
                link.t.wire_packets += 1;
                link.t.wire_bytes += inner.len() as u64;
                if link.ch.lose() {
                    link.t.wire_lost += 1;
                } else {
                    link.t.delivered_packets += 1;
                    link.t.delivered_bytes += SIZE as u64;
                }
            }
        }
        let sent = link.t.data_packets - before.data_packets;
        let got = link.t.delivered_packets - before.delivered_packets;
        res.phase_loss_pct
            .push(100.0 * (1.0 - got as f64 / sent.max(1) as f64));
    }
    now += cfg.max_delay_ns;
    parity.clear();
    enc.poll(now, |p| parity.push(p.to_vec()))?;
    for p in &parity {
        link.send(p, true, now)?;
    }
    res.total = link.finish(now);
    res.fec_on_pct = 100.0 * on_packets as f64 / all_packets.max(1) as f64;
    Ok(res)
}

fn figures_of(plain: &Transfer, fec: &Transfer) -> BTreeMap<String, f64> {
    let mut f = BTreeMap::new();
    f.insert("loss_without_fec_pct".into(), plain.loss_pct());
    f.insert("loss_with_fec_pct".into(), fec.loss_pct());
    f.insert(
        "parity_overhead_pct".into(),
        100.0 * fec.parity_bytes as f64 / fec.data_bytes.max(1) as f64,
    );
    f.insert(
        "wire_overhead_pct".into(),
        100.0 * (fec.wire_bytes as f64 / plain.wire_bytes.max(1) as f64 - 1.0),
    );
    f.insert("goodput_without_fec".into(), plain.goodput());
    f.insert("goodput_with_fec".into(), fec.goodput());
    f.insert("wire_loss_pct".into(), {
        100.0 * fec.wire_lost as f64 / fec.wire_packets.max(1) as f64
    });
    f.insert("recovered".into(), fec.recovered as f64);
    f.insert("unrecoverable".into(), fec.unrecoverable as f64);
    f
}

/// Rows of one loss model and size mix: each k/m of `shapes` against the
/// same channel without FEC, totals over `rounds` seeds.
fn loss_rows(
    report: &mut Report,
    model: LossModel,
    sizes: &[usize],
    shapes: &[(u8, u8)],
    suffix: &str,
    rounds: u64,
) {
    let mean = sizes.iter().sum::<usize>() / sizes.len().max(1);
    let mut plain = Transfer::default();
    for seed in 1..=rounds {
        plain.add(&without_fec(model, seed, PACKETS, sizes));
    }
    for &(k, m) in shapes {
        let system = format!("{k}/{m} {}{suffix}", model.label());
        let mut fec = Transfer::default();
        let mut per_round = Vec::new();
        let mut failed = None;
        for seed in 1..=rounds {
            match with_fec(model, seed, PACKETS, sizes, k, m) {
                Ok(t) => {
                    per_round.push(format!("{:.3}", t.loss_pct()));
                    fec.add(&t);
                }
                Err(e) => failed = Some(format!("{e:#}")),
            }
        }
        if let Some(e) = failed {
            report.rows.push(Row::not_run(&system, mean, e));
            continue;
        }
        let mut row = Row {
            system: system.clone(),
            packet_size: mean,
            packets: Some(fec.data_packets),
            limited_by: "simulation, no timing".into(),
            figures: figures_of(&plain, &fec),
            ..Row::default()
        };
        row.notes.push(format!(
            "delivered loss with FEC per round (%): {}",
            per_round.join(", ")
        ));
        report.rows.push(row);
        let (a, b) = (fec.loss_pct(), plain.loss_pct());
        if b > 0.0 {
            report.push_ratio(
                &format!("{system} loss with FEC"),
                "without FEC",
                Some(a / b),
            );
        }
    }
}

pub fn run(opts: &Options) -> anyhow::Result<Report> {
    let mut report = Report::new("wan-fec-loss");
    let rounds = opts.rounds.max(1) as u64;
    for model in models() {
        loss_rows(&mut report, model, &[SIZE], &SHAPES, "", rounds);
    }
    // Mixed sizes: parity shards are as long as the group's longest packet.
    loss_rows(
        &mut report,
        LossModel::Bernoulli { p: 0.05 },
        &IMIX,
        &[(10, 2), (10, 4), (20, 4)],
        " imix",
        rounds,
    );
    // Adaptive: 10/2, toggled at 1 % / 0.2 % (the policy defaults).
    let (k, m) = (10, 2);
    for (name, mode) in [
        ("adaptive-off", Mode::Off),
        ("adaptive-always-on", Mode::On),
        (
            "adaptive-1%/0.2%",
            Mode::Adaptive {
                on_ppm: 10_000,
                off_ppm: 2_000,
            },
        ),
    ] {
        let system = format!("{name} {k}/{m}");
        match adaptive(mode, 1, k, m) {
            Ok(r) => {
                let mut f = BTreeMap::new();
                f.insert("loss_pct".into(), r.total.loss_pct());
                for (i, l) in r.phase_loss_pct.iter().enumerate() {
                    f.insert(format!("phase{}_loss_pct", i + 1), *l);
                }
                f.insert(
                    "wire_overhead_pct".into(),
                    100.0
                        * (r.total.wire_bytes as f64
                            / (r.total.data_packets * (SIZE + PLAIN_HEADER_LEN) as u64) as f64
                            - 1.0),
                );
                f.insert("goodput".into(), r.total.goodput());
                f.insert("fec_on_pct".into(), r.fec_on_pct);
                f.insert("toggles".into(), f64::from(r.toggles));
                if let Some(ms) = r.on_after_ms {
                    f.insert("fec_on_after_loss_starts_ms".into(), ms);
                }
                report.rows.push(Row {
                    system,
                    packet_size: SIZE,
                    packets: Some(r.total.data_packets),
                    limited_by: "simulation, no timing".into(),
                    figures: f,
                    ..Row::default()
                });
            }
            Err(e) => report
                .rows
                .push(Row::not_run(&system, SIZE, format!("{e:#}"))),
        }
    }
    report.notes.push(format!(
        "each k/m row: {PACKETS} data packets of {SIZE} B per round ({rounds} rounds, seeds 1..={rounds}, \
         totals summed), FecEncoder -> channel -> FecDecoder (default delay 20 ms, reassembly 50 ms, \
         8 groups), 10 kpps synthetic clock, no reordering; the same seeds without FEC give the \
         'without' figures. loss = 1 - data packets delivered / sent; parity_overhead = parity bytes \
         (headers included) / data bytes; wire_overhead = wire bytes with FEC / without - 1 (FEC \
         header 10 B vs plain 2 B, parity); goodput = data bytes delivered / wire bytes sent. ge = \
         Gilbert-Elliott (good->bad 0.01, bad->good 0.2, all lost in bad: mean {:.2} %, bursts of 5). \
         imix rows: inner sizes 64/576/1400 B drawn 7:4:1 (seeded, same sequence with and without \
         FEC), parity padded to each group's longest packet. ratios: delivered loss with FEC / without",
        models()[4].mean_loss() * 100.0
    ));
    report.notes.push(
        "adaptive rows: phases clean 5 s, 5 % 10 s, 0.5 % 10 s, clean 10 s at 10 kpps of 1400 B; a \
         probe every 100 ms (lost like a data packet, 20 ms RTT) into a ProbeWindow (50 probes / 5 s, \
         lost after 500 ms), its loss_ppm fed to FecToggle(on 1 %, off 0.2 %) at each probe; FEC 10/2"
            .into(),
    );
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fec_recovers_what_the_plain_path_loses() {
        let model = LossModel::Bernoulli { p: 0.05 };
        let plain = without_fec(model, 1, 20_000, &[200]);
        let fec = with_fec(model, 1, 20_000, &[200], 10, 4).unwrap();
        assert!(
            plain.loss_pct() > 4.0 && plain.loss_pct() < 6.0,
            "{plain:?}"
        );
        assert!(fec.loss_pct() < 0.5, "{fec:?}");
        assert!(fec.recovered > 0);
        // 4 parity per 10 data, each the data's size plus headers.
        let over = fec.parity_bytes as f64 / fec.data_bytes as f64;
        assert!(over > 0.4 && over < 0.5, "{over}");
    }

    #[test]
    fn mixed_sizes_pay_parity_for_the_longest_packet() {
        let model = LossModel::Bernoulli { p: 0.0 };
        let plain = without_fec(model, 1, 12_000, &IMIX);
        let fec = with_fec(model, 1, 12_000, &IMIX, 10, 2).unwrap();
        assert_eq!(plain.data_bytes, fec.data_bytes);
        assert_eq!(fec.delivered_bytes, fec.data_bytes);
        // Mean inner size 346 B; a group of 10 almost always holds a
        // 1400 B packet, so parity is far above m/k = 20 % of the data.
        let over = fec.parity_bytes as f64 / fec.data_bytes as f64;
        assert!(over > 0.5, "{over}");
    }

    #[test]
    fn no_loss_delivers_everything_once() {
        let model = LossModel::Bernoulli { p: 0.0 };
        let fec = with_fec(model, 1, 1_005, &[300], 10, 2).unwrap();
        assert_eq!(fec.delivered_packets, 1_005);
        assert_eq!(fec.delivered_bytes, 1_005 * 300);
        assert_eq!(fec.unrecoverable, 0);
        // 100 full groups + the partial one closed by its delay.
        assert!(fec.parity_bytes > 0);
        assert_eq!(fec.wire_packets, 1_005 + 101 * 2);
    }

    #[test]
    fn adaptive_turns_fec_on_under_loss_and_off_after() {
        let r = adaptive(
            Mode::Adaptive {
                on_ppm: 10_000,
                off_ppm: 2_000,
            },
            1,
            10,
            2,
        )
        .unwrap();
        assert!(r.fec_on_pct > 10.0 && r.fec_on_pct < 95.0, "{r:?}");
        assert!(r.on_after_ms.is_some(), "{r:?}");
        let off = adaptive(Mode::Off, 1, 10, 2).unwrap();
        assert_eq!(off.fec_on_pct, 0.0);
        assert!(r.phase_loss_pct[1] < off.phase_loss_pct[1], "{r:?} {off:?}");
    }
}
