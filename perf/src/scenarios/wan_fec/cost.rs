//! `wan-fec-cost`: what FEC and lz4 compression cost per core, beside
//! the plain copy a path without them does for the same packet, in the
//! same run. One thread; the engine's `wan` library (FecEncoder,
//! FecDecoder, Compressor) on preallocated buffers; time is a synthetic
//! clock (1 µs per packet) so groups fill long before their 20 ms delay.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use anyhow::bail;
use boringtun::noise::{Tunn, TunnResult};
use boringtun::x25519::{PublicKey, StaticSecret};
use patronus_engine::wan::wire::{write_plain_header, WanPacket, PLAIN_HEADER_LEN};
use patronus_engine::wan::{Compressor, FecConfig, FecDecoder, FecEncoder};

use super::channel::{Channel, LossModel};
use super::payload::{http_packets, random_packet, HTTP_CAPTURE};
use crate::report::{Report, Row};
use crate::scenarios::rounds::{median, merge_rounds, same_round_ratios};
use crate::scenarios::Options;

/// Inner packet sizes of the fixed-size rows.
pub const SIZES: [usize; 2] = [200, 1400];
/// (k, m) shapes timed.
pub const SHAPES: [(u8, u8); 4] = [(10, 2), (10, 4), (20, 4), (5, 1)];
/// Wire loss of the recovery rows (Bernoulli).
pub const LOSS: f64 = 0.05;
/// Distinct random packets cycled through at each size.
const RANDOM_SET: u64 = 16;
/// Synthetic time per packet, ns.
const NS_PER_PACKET: u64 = 1_000;
/// Packets between clock checks.
const CHUNK: u32 = 256;
/// Length of the precomputed loss pattern (a power of two).
const PATTERN: usize = 1 << 16;

/// Which payloads a row pushes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Set {
    /// Random packets of this size.
    Random(usize),
    /// The HTTP packets of [`HTTP_CAPTURE`].
    Http,
}

impl Set {
    fn label(self) -> String {
        match self {
            Set::Random(n) => n.to_string(),
            Set::Http => "http".into(),
        }
    }
}

/// What a row does per packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Work {
    /// Plain WAN header + copy into the wire buffer (sender side of a path
    /// without FEC or compression).
    CopyTx,
    /// CopyTx, then parse and copy the inner packet out (both sides).
    CopyRtt,
    /// FEC encode: data packet to the wire buffer, group copy, parity.
    FecEnc(u8, u8),
    /// Encode + decode, nothing lost; `loss`: with [`LOSS`] of the wire
    /// packets dropped and recovered from parity.
    FecRtt { k: u8, m: u8, loss: bool },
    /// lz4 compress (or plain when it does not shrink).
    Lz4,
    /// Compress, then parse and decompress (or copy out when plain).
    Lz4Rtt,
    /// Context, not a baseline: boringtun encrypt + decrypt of the same
    /// packet (what every path already pays for its tunnel).
    WgRtt,
}

/// One timed row: its work, payloads, and the baseline its ratio uses.
#[derive(Clone, Debug)]
pub struct Case {
    pub work: Work,
    pub set: Set,
}

impl Case {
    pub fn system(&self) -> String {
        let s = self.set.label();
        match self.work {
            Work::CopyTx => format!("copy-tx-{s}"),
            Work::CopyRtt => format!("copy-rtt-{s}"),
            Work::FecEnc(k, m) => format!("fec-enc-{k}/{m}-{s}"),
            Work::FecRtt { k, m, loss: false } => format!("fec-rtt-{k}/{m}-{s}"),
            Work::FecRtt { k, m, loss: true } => {
                format!("fec-rtt-loss{}-{k}/{m}-{s}", LOSS * 100.0)
            }
            Work::Lz4 => format!("lz4-{s}"),
            Work::Lz4Rtt => format!("lz4-rtt-{s}"),
            Work::WgRtt => format!("boringtun-rtt-{s}"),
        }
    }

    /// The plain-copy row this one is compared with.
    pub fn baseline(&self) -> Option<String> {
        let tx = Case {
            work: Work::CopyTx,
            set: self.set,
        };
        let rtt = Case {
            work: Work::CopyRtt,
            set: self.set,
        };
        match self.work {
            Work::CopyTx | Work::CopyRtt => None,
            Work::FecEnc(..) | Work::Lz4 => Some(tx.system()),
            Work::FecRtt { .. } | Work::Lz4Rtt | Work::WgRtt => Some(rtt.system()),
        }
    }
}

/// Every row, in run order.
pub fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    for &size in &SIZES {
        let set = Set::Random(size);
        v.push(Case {
            work: Work::CopyTx,
            set,
        });
        v.push(Case {
            work: Work::CopyRtt,
            set,
        });
        for &(k, m) in &SHAPES {
            v.push(Case {
                work: Work::FecEnc(k, m),
                set,
            });
            for loss in [false, true] {
                v.push(Case {
                    work: Work::FecRtt { k, m, loss },
                    set,
                });
            }
        }
        v.push(Case {
            work: Work::Lz4,
            set,
        });
        v.push(Case {
            work: Work::Lz4Rtt,
            set,
        });
        v.push(Case {
            work: Work::WgRtt,
            set,
        });
    }
    for work in [Work::CopyTx, Work::CopyRtt, Work::Lz4, Work::Lz4Rtt] {
        v.push(Case {
            work,
            set: Set::Http,
        });
    }
    v
}

/// What one timed row measured.
#[derive(Debug, Default)]
pub struct Measured {
    /// Data packets offered (sender side).
    pub packets: u64,
    /// Their inner bytes.
    pub bytes: u64,
    pub secs: f64,
    pub figures: BTreeMap<String, f64>,
}

/// Runs `case` over `pkts` for about `dur` (whole chunks of packets).
pub fn measure(case: &Case, pkts: &[Vec<u8>], dur: Duration) -> anyhow::Result<Measured> {
    if pkts.is_empty() {
        bail!("no packets");
    }
    match case.work {
        Work::CopyTx => copy_rows(pkts, dur, false),
        Work::CopyRtt => copy_rows(pkts, dur, true),
        Work::FecEnc(k, m) => fec_enc(pkts, dur, k, m),
        Work::FecRtt { k, m, loss } => fec_rtt(pkts, dur, k, m, loss),
        Work::Lz4 => lz4_rows(pkts, dur, false),
        Work::Lz4Rtt => lz4_rows(pkts, dur, true),
        Work::WgRtt => boringtun_rtt(pkts, dur),
    }
}

fn fec_config(k: u8, m: u8) -> FecConfig {
    FecConfig {
        k,
        m,
        ..FecConfig::default()
    }
}

/// Each packet with its plain WAN header, as the FEC stage receives it.
fn plain_wrapped(pkts: &[Vec<u8>]) -> anyhow::Result<Vec<Vec<u8>>> {
    pkts.iter()
        .map(|p| {
            let mut w = vec![0u8; PLAIN_HEADER_LEN + p.len()];
            let h = write_plain_header(&mut w)?;
            w[h..].copy_from_slice(p);
            Ok(w)
        })
        .collect()
}

fn copy_rows(pkts: &[Vec<u8>], dur: Duration, rx: bool) -> anyhow::Result<Measured> {
    let mut wire = vec![0u8; 4096];
    let mut out = vec![0u8; 4096];
    let mut m = Measured::default();
    let mut i = 0usize;
    let start = Instant::now();
    while start.elapsed() < dur {
        for _ in 0..CHUNK {
            let p = &pkts[i];
            i = (i + 1) % pkts.len();
            let h = write_plain_header(&mut wire)?;
            wire[h..h + p.len()].copy_from_slice(p);
            let n = black_box(h + p.len());
            if rx {
                match WanPacket::parse(&wire[..n])? {
                    WanPacket::Plain(inner) => out[..inner.len()].copy_from_slice(inner),
                    other => bail!("not plain: {other:?}"),
                }
                black_box(&out);
            }
            m.packets += 1;
            m.bytes += p.len() as u64;
        }
    }
    m.secs = start.elapsed().as_secs_f64();
    Ok(m)
}

fn fec_enc(pkts: &[Vec<u8>], dur: Duration, k: u8, mm: u8) -> anyhow::Result<Measured> {
    let inner = plain_wrapped(pkts)?;
    let mut enc = FecEncoder::new(fec_config(k, mm))?;
    let mut wire = vec![0u8; 4096];
    let mut ptx = vec![0u8; 4096];
    let mut m = Measured::default();
    let (mut i, mut now, mut wire_bytes) = (0usize, 0u64, 0u64);
    let start = Instant::now();
    while start.elapsed() < dur {
        for _ in 0..CHUNK {
            let p = &inner[i];
            i = (i + 1) % inner.len();
            now += NS_PER_PACKET;
            let n = enc.encode(p, now, &mut wire, |par| {
                ptx[..par.len()].copy_from_slice(par);
                wire_bytes += par.len() as u64;
            })?;
            wire_bytes += black_box(n) as u64;
            m.packets += 1;
            m.bytes += (p.len() - PLAIN_HEADER_LEN) as u64;
        }
        enc.poll(now, |_| {})?;
    }
    m.secs = start.elapsed().as_secs_f64();
    black_box(&ptx);
    m.figures.insert(
        "wire_bytes_per_data_byte".into(),
        wire_bytes as f64 / m.bytes as f64,
    );
    Ok(m)
}

fn fec_rtt(pkts: &[Vec<u8>], dur: Duration, k: u8, mm: u8, loss: bool) -> anyhow::Result<Measured> {
    let inner = plain_wrapped(pkts)?;
    let cfg = fec_config(k, mm);
    let mut enc = FecEncoder::new(cfg)?;
    let mut dec = FecDecoder::new(cfg)?;
    // Drops drawn once, outside the timed loop.
    let mut ch = Channel::new(LossModel::Bernoulli { p: LOSS }, 1);
    let pattern: Vec<bool> = (0..PATTERN).map(|_| loss && ch.lose()).collect();
    let mut wire = vec![0u8; 4096];
    let mut parity = vec![vec![0u8; 4096]; usize::from(mm)];
    let mut plens = vec![0usize; usize::from(mm)];
    let mut out = vec![0u8; 4096];
    let mut m = Measured::default();
    let (mut i, mut now, mut sent, mut dropped, mut delivered) = (0usize, 0u64, 0usize, 0u64, 0u64);
    let start = Instant::now();
    while start.elapsed() < dur {
        for _ in 0..CHUNK {
            let p = &inner[i];
            i = (i + 1) % inner.len();
            now += NS_PER_PACKET;
            let mut np = 0usize;
            let n = enc.encode(p, now, &mut wire, |par| {
                parity[np][..par.len()].copy_from_slice(par);
                plens[np] = par.len();
                np += 1;
            })?;
            let mut deliver = |d: &[u8]| {
                out[..d.len()].copy_from_slice(d);
                delivered += 1;
            };
            let mut to_wire = |w: &[u8], dec: &mut FecDecoder| -> anyhow::Result<()> {
                sent = (sent + 1) % PATTERN;
                if pattern[sent] {
                    dropped += 1;
                    return Ok(());
                }
                dec.push(w, now, &mut deliver)?;
                Ok(())
            };
            to_wire(&wire[..n], &mut dec)?;
            for j in 0..np {
                to_wire(&parity[j][..plens[j]], &mut dec)?;
            }
            m.packets += 1;
            m.bytes += (p.len() - PLAIN_HEADER_LEN) as u64;
        }
        enc.poll(now, |_| {})?;
    }
    m.secs = start.elapsed().as_secs_f64();
    black_box(&out);
    let c = dec.counters();
    m.figures.insert(
        "delivered_pct".into(),
        100.0 * delivered as f64 / m.packets as f64,
    );
    if loss {
        m.figures.insert(
            "recovered_per_dropped_wire_pkt".into(),
            c.recovered as f64 / dropped.max(1) as f64,
        );
    }
    Ok(m)
}

fn lz4_rows(pkts: &[Vec<u8>], dur: Duration, rx: bool) -> anyhow::Result<Measured> {
    let mut c = Compressor::new();
    let mut d = Compressor::new();
    let mut wire = vec![0u8; 4096];
    let mut out = vec![0u8; 4096];
    let mut m = Measured::default();
    let mut i = 0usize;
    let start = Instant::now();
    while start.elapsed() < dur {
        for _ in 0..CHUNK {
            let p = &pkts[i];
            i = (i + 1) % pkts.len();
            let n = c.compress(p, &mut wire)?.len();
            if rx {
                let got = match WanPacket::parse(&wire[..n])? {
                    WanPacket::Compressed { orig_len, block } => {
                        d.decompress(orig_len, block, &mut out, 2048)?
                    }
                    WanPacket::Plain(inner) => {
                        out[..inner.len()].copy_from_slice(inner);
                        inner.len()
                    }
                    other => bail!("unexpected {other:?}"),
                };
                if got != p.len() {
                    bail!("decompressed {got} bytes of {}", p.len());
                }
            }
            black_box(&wire);
            m.packets += 1;
            m.bytes += p.len() as u64;
        }
    }
    m.secs = start.elapsed().as_secs_f64();
    let cc = c.counters();
    m.figures.insert(
        "out_per_in_bytes".into(),
        cc.bytes_out as f64 / cc.bytes_in.max(1) as f64,
    );
    m.figures.insert(
        "skipped_pct".into(),
        100.0 * cc.skipped as f64 / (cc.skipped + cc.compressed).max(1) as f64,
    );
    Ok(m)
}

/// boringtun `Tunn` A encrypts, B decrypts, after a handshake (as
/// wg-mem's baseline row).
fn boringtun_rtt(pkts: &[Vec<u8>], dur: Duration) -> anyhow::Result<Measured> {
    let sa = StaticSecret::from([0x11; 32]);
    let sb = StaticSecret::from([0x22; 32]);
    let (pa, pb) = (PublicKey::from(&sa), PublicKey::from(&sb));
    let mut a = Tunn::new(sa, pb, None, None, 1, None).map_err(anyhow::Error::msg)?;
    let mut b = Tunn::new(sb, pa, None, None, 2, None).map_err(anyhow::Error::msg)?;
    let mut buf1 = vec![0u8; 4096];
    let mut buf2 = vec![0u8; 4096];
    let init = match a.encapsulate(&pkts[0], &mut buf1) {
        TunnResult::WriteToNetwork(p) => p.to_vec(),
        _ => bail!("no initiation"),
    };
    let resp = match b.decapsulate(None, &init, &mut buf2) {
        TunnResult::WriteToNetwork(p) => p.to_vec(),
        _ => bail!("no response"),
    };
    if let TunnResult::WriteToNetwork(k) = a.decapsulate(None, &resp, &mut buf1) {
        let k = k.to_vec();
        let _ = b.decapsulate(None, &k, &mut buf2);
    }
    while let TunnResult::WriteToNetwork(_) = a.decapsulate(None, &[], &mut buf1) {}
    let mut m = Measured::default();
    let mut i = 0usize;
    let start = Instant::now();
    while start.elapsed() < dur {
        for _ in 0..CHUNK {
            let p = &pkts[i];
            i = (i + 1) % pkts.len();
            let len = match a.encapsulate(p, &mut buf1) {
                TunnResult::WriteToNetwork(w) => w.len(),
                _ => bail!("encapsulate failed"),
            };
            match b.decapsulate(None, &buf1[..len], &mut buf2) {
                TunnResult::WriteToTunnelV4(..) | TunnResult::WriteToTunnelV6(..) => {}
                _ => bail!("decapsulate failed"),
            }
            m.packets += 1;
            m.bytes += p.len() as u64;
        }
    }
    m.secs = start.elapsed().as_secs_f64();
    Ok(m)
}

/// The payload sets, built once.
struct Sets {
    random: Vec<(usize, Vec<Vec<u8>>)>,
    http: anyhow::Result<Vec<Vec<u8>>>,
}

impl Sets {
    fn build() -> Sets {
        Sets {
            random: SIZES
                .iter()
                .map(|&s| {
                    (
                        s,
                        (0..RANDOM_SET).map(|i| random_packet(s, i + 1)).collect(),
                    )
                })
                .collect(),
            http: http_packets(&patronus_classify::corpus::root()),
        }
    }

    fn get(&self, set: Set) -> anyhow::Result<&[Vec<u8>]> {
        match set {
            Set::Random(s) => self
                .random
                .iter()
                .find(|(n, _)| *n == s)
                .map(|(_, v)| v.as_slice())
                .ok_or_else(|| anyhow::anyhow!("no set of {s} B")),
            Set::Http => self.http.as_deref().map_err(|e| anyhow::anyhow!("{e:#}")),
        }
    }
}

fn row_of(case: &Case, sets: &Sets, dur: Duration, warm: Duration) -> Row {
    let system = case.system();
    let pkts = match sets.get(case.set) {
        Ok(p) => p,
        Err(e) => return Row::not_run(&system, 0, format!("{e:#}")),
    };
    let mean = pkts.iter().map(Vec::len).sum::<usize>() / pkts.len();
    let r = measure(case, pkts, warm).and_then(|_| measure(case, pkts, dur));
    match r {
        Ok(meas) => {
            let mut row = Row {
                system,
                packet_size: mean,
                ..Row::default()
            };
            row.set_rate(meas.packets, meas.secs);
            row.bps = Some(meas.bytes as f64 * 8.0 / meas.secs);
            row.cpu_ns_per_packet = row.ns_per_packet;
            row.limited_by = "one thread, in memory".into();
            row.figures = meas.figures;
            row
        }
        Err(e) => Row::not_run(&system, mean, format!("{e:#}")),
    }
}

pub fn run(opts: &Options) -> anyhow::Result<Report> {
    let mut report = Report::new("wan-fec-cost");
    let cases = cases();
    let sets = Sets::build();
    let per = opts
        .duration
        .div_f64(cases.len() as f64)
        .max(Duration::from_millis(100));
    let warm = opts
        .warmup
        .div_f64(cases.len() as f64)
        .max(Duration::from_millis(10));
    let mut rounds = Vec::new();
    for round in 0..opts.rounds.max(1) {
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        report.notes.push(format!(
            "round {} starts at load {}",
            round + 1,
            load.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        ));
        rounds.push(
            cases
                .iter()
                .map(|c| row_of(c, &sets, per, warm))
                .collect::<Vec<_>>(),
        );
    }
    report.rows = merge_rounds(&rounds, &mut report.notes);
    for c in &cases {
        if let Some(base) = c.baseline() {
            let mut r = same_round_ratios(&rounds, &c.system(), &base);
            report.push_ratio(&c.system(), &base, median(&mut r));
        }
    }
    // Context: FEC / lz4 round trips against what the tunnel costs.
    for c in &cases {
        if let (Work::FecRtt { loss: false, .. } | Work::Lz4Rtt, Set::Random(_)) = (c.work, c.set) {
            let wg = Case {
                work: Work::WgRtt,
                set: c.set,
            };
            let mut r = same_round_ratios(&rounds, &c.system(), &wg.system());
            report.push_ratio(&c.system(), &wg.system(), median(&mut r));
        }
    }
    let main = Case {
        work: Work::FecRtt {
            k: 10,
            m: 2,
            loss: false,
        },
        set: Set::Random(1400),
    };
    report.ratio = report
        .ratios
        .iter()
        .find(|r| r.system == main.system())
        .map(|r| r.ratio);
    if let Ok(h) = &sets.http {
        report.notes.push(format!(
            "http rows: the {} IPv4 TCP port-80 packets with >= 64 B of payload of the corpus capture {HTTP_CAPTURE} (whole IP packets, cycled); size column = their mean length",
            h.len()
        ));
    }
    report.notes.push(
        "pps = data packets per second on one thread; Gbit/s = inner (data) bytes. copy-tx = plain WAN \
         header + copy into the wire buffer; copy-rtt = that + parse + copy out at the receiver. \
         fec-enc = FecEncoder::encode (FEC header + copy to wire + copy into the group) with parity \
         packets copied out when a group fills; fec-rtt = encode + FecDecoder::push of every data and \
         parity packet, delivered packets copied out; fec-rtt-loss5 = the same with 5 % of wire packets \
         (Bernoulli, seeded) dropped and recovered. lz4 = Compressor::compress (plain when it does not \
         shrink); lz4-rtt = + parse + decompress. boringtun-rtt (context, the \
         tunnel every path pays): boringtun Tunn encrypt at A + decrypt at B, as wg-mem's baseline. Ratio = row pps / its copy baseline's pps (same round, \
         median of rounds): enc/lz4 against copy-tx, rtt rows against copy-rtt; the main ratio is \
         fec-rtt-10/2-1400 / copy-rtt-1400"
            .into(),
    );
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_runs_and_has_a_distinct_name() {
        let sets = Sets::build();
        let cases = cases();
        let mut names: Vec<String> = cases.iter().map(Case::system).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), cases.len());
        for c in cases.iter().filter(|c| c.set != Set::Http) {
            let m = measure(c, sets.get(c.set).unwrap(), Duration::from_millis(1)).unwrap();
            assert!(m.packets >= u64::from(CHUNK), "{}", c.system());
            if let Some(b) = c.baseline() {
                assert!(names.contains(&b), "{b}");
            }
        }
    }

    #[test]
    fn recovery_rows_deliver_what_parity_can_rebuild() {
        let pkts: Vec<Vec<u8>> = (0..4).map(|i| random_packet(200, i)).collect();
        let dur = Duration::from_millis(5);
        let clean = fec_rtt(&pkts, dur, 10, 2, false).unwrap();
        assert_eq!(clean.figures["delivered_pct"], 100.0);
        let lossy = fec_rtt(&pkts, dur, 10, 4, true).unwrap();
        // 5 % loss, 4 parity per 10: nearly every group is rebuilt.
        assert!(lossy.figures["delivered_pct"] > 99.0, "{:?}", lossy.figures);
        let random = lz4_rows(&pkts, dur, true).unwrap();
        assert_eq!(random.figures["skipped_pct"], 100.0);
    }
}
