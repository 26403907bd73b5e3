//! Forward error correction: Reed-Solomon (GF(2^8), crate
//! `reed-solomon-erasure`) over groups of up to `k` data packets with `m`
//! parity packets, so a group survives any `m` losses.
//!
//! - [`FecEncoder`] (one per path and direction) sends every data packet
//!   at once (FEC data header + the inner WAN packet) and keeps a copy in
//!   its group buffer; it emits the `m` parity packets when the group
//!   fills, or from [`FecEncoder::poll`] once the group's first packet is
//!   `max_delay_ns` old (a partial group: parity over the packets
//!   present, its real `k` in the parity header). Shards of different
//!   lengths are zero-padded to the group's longest; the parity header
//!   carries every length.
//! - [`FecDecoder`] delivers a data packet as soon as it arrives, keeps a
//!   bounded window of groups (`window_groups` slots, each at most
//!   `reassembly_ns` old), and delivers the missing data packets of a
//!   group as soon as any `k` of its `k + m` packets are there. Each data
//!   packet is delivered at most once (a per-group bitmap); a packet for a
//!   group whose slot has been taken by a newer group is dropped as late
//!   (the decoder no longer knows whether it delivered it). Groups given
//!   up with data missing count as unrecoverable.
//! - [`FecToggle`]: FEC on when measured loss crosses `on_ppm`, off again
//!   only below `off_ppm` (hysteresis).
//!
//! Allocation: group buffers are preallocated in `new` (encoder: `k + m`
//! shards; decoder: `window_groups * (max_k + max_m)` shards of
//! `max_shard` bytes). The Reed-Solomon codec of each (k, m) shape is
//! built on first use (a partial group has its own shape), and the
//! crate's `reconstruct_data` allocates its decode matrix and takes its
//! own (uncontended, per-codec) mutex around a matrix cache: both only on
//! the recovery path, after a loss.

use reed_solomon_erasure::galois_8::ReedSolomon;

use super::wire::{parity_len, write_fec_header, FecHeader, Kind, WanPacket, FEC_HEADER_LEN};

/// Largest `k` (data packets per group).
pub const MAX_K: u8 = 32;
/// Largest `m` (parity packets per group).
pub const MAX_M: u8 = 16;

/// FEC settings; the decoder accepts any k <= `k`, m <= `m` from the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FecConfig {
    pub k: u8,
    pub m: u8,
    /// Encoder: longest a group stays open, ns.
    pub max_delay_ns: u64,
    /// Decoder: longest a group waits for recovery, ns.
    pub reassembly_ns: u64,
    /// Decoder: groups tracked at once.
    pub window_groups: u8,
    /// Longest inner packet (data shard), bytes.
    pub max_shard: u16,
}

impl Default for FecConfig {
    /// k = 10, m = 2 (20 % overhead), 20 ms encoder delay, 50 ms
    /// reassembly, 8 groups.
    fn default() -> Self {
        FecConfig {
            k: 10,
            m: 2,
            max_delay_ns: 20_000_000,
            reassembly_ns: 50_000_000,
            window_groups: 8,
            max_shard: 2048,
        }
    }
}

/// FEC failures (configuration and per-packet).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FecError {
    #[error("k must be 1..=32 and m 1..=16")]
    BadShape,
    #[error("window_groups and max_shard must be > 0")]
    BadConfig,
    #[error("packet longer than max_shard")]
    TooLong,
    #[error("output buffer too small")]
    NoRoom,
    #[error("not a FEC packet")]
    NotFec,
    #[error("malformed FEC packet")]
    Malformed,
    /// The group's packets disagree (k, m or lengths).
    #[error("FEC packet inconsistent with its group")]
    Inconsistent,
    #[error("Reed-Solomon codec failure")]
    Codec,
}

impl FecConfig {
    pub fn validate(&self) -> Result<(), FecError> {
        if self.k == 0 || self.k > MAX_K || self.m == 0 || self.m > MAX_M {
            return Err(FecError::BadShape);
        }
        if self.window_groups == 0 || self.max_shard == 0 {
            return Err(FecError::BadConfig);
        }
        Ok(())
    }
}

/// FEC counters of one encoder or decoder.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FecCounters {
    pub data_sent: u64,
    pub parity_sent: u64,
    /// Groups closed by the delay before they filled.
    pub partial_groups: u64,
    /// Data packets delivered as received.
    pub delivered: u64,
    /// Data packets rebuilt from parity (and delivered).
    pub recovered: u64,
    /// Data packets of groups given up with them missing.
    pub unrecoverable: u64,
    pub duplicates: u64,
    /// Packets for a group no longer in the window.
    pub late: u64,
    pub malformed: u64,
}

/// Reed-Solomon codecs by shape, built on first use.
#[derive(Debug, Default)]
struct Codecs {
    table: Vec<Option<ReedSolomon>>,
}

impl Codecs {
    fn new() -> Self {
        Codecs {
            table: (0..usize::from(MAX_K) * usize::from(MAX_M))
                .map(|_| None)
                .collect(),
        }
    }

    fn get(&mut self, k: u8, m: u8) -> Result<&ReedSolomon, FecError> {
        let i = usize::from(k - 1) * usize::from(MAX_M) + usize::from(m - 1);
        let slot = self.table.get_mut(i).ok_or(FecError::BadShape)?;
        if slot.is_none() {
            *slot = Some(ReedSolomon::new(k.into(), m.into()).map_err(|_| FecError::Codec)?);
        }
        slot.as_ref().ok_or(FecError::Codec)
    }
}

fn shards(n: usize, len: usize) -> Box<[Box<[u8]>]> {
    (0..n).map(|_| vec![0u8; len].into_boxed_slice()).collect()
}

/// Packs `v` (at most `N` items from an iterator) into an array, padding
/// with `fill`; lets the codec calls run without a `Vec`.
fn array_from<'a, const N: usize>(mut it: impl Iterator<Item = &'a mut [u8]>) -> [&'a mut [u8]; N] {
    std::array::from_fn(|_| it.next().unwrap_or(&mut []))
}

/// The FEC sender of one path.
#[derive(Debug)]
pub struct FecEncoder {
    cfg: FecConfig,
    codecs: Codecs,
    group: u32,
    count: u8,
    opened_ns: u64,
    lens: [u16; MAX_K as usize],
    data: Box<[Box<[u8]>]>,
    parity: Box<[Box<[u8]>]>,
    out: Box<[u8]>,
    counters: FecCounters,
}

impl FecEncoder {
    pub fn new(cfg: FecConfig) -> Result<Self, FecError> {
        cfg.validate()?;
        let shard = usize::from(cfg.max_shard);
        Ok(FecEncoder {
            cfg,
            codecs: Codecs::new(),
            group: 0,
            count: 0,
            opened_ns: 0,
            lens: [0; MAX_K as usize],
            data: shards(cfg.k.into(), shard),
            parity: shards(cfg.m.into(), shard),
            out: vec![0; FEC_HEADER_LEN + 2 * usize::from(MAX_K) + shard].into_boxed_slice(),
            counters: FecCounters::default(),
        })
    }

    pub fn config(&self) -> &FecConfig {
        &self.cfg
    }

    pub fn counters(&self) -> &FecCounters {
        &self.counters
    }

    /// Data packets in the open group.
    pub fn pending(&self) -> u8 {
        self.count
    }

    /// When [`poll`](Self::poll) must run to close the open group.
    pub fn deadline(&self) -> Option<u64> {
        (self.count > 0).then(|| self.opened_ns.saturating_add(self.cfg.max_delay_ns))
    }

    /// Writes the FEC data packet for `inner` (a whole plain or
    /// compressed WAN packet) into `out` and returns its length. When this
    /// fills the group, its parity packets go to `emit` at once.
    pub fn encode(
        &mut self,
        inner: &[u8],
        now: u64,
        out: &mut [u8],
        emit: impl FnMut(&[u8]),
    ) -> Result<usize, FecError> {
        if inner.is_empty() || inner.len() > usize::from(self.cfg.max_shard) {
            return Err(FecError::TooLong);
        }
        let n = FEC_HEADER_LEN + inner.len();
        if out.len() < n {
            return Err(FecError::NoRoom);
        }
        let hdr = FecHeader {
            group: self.group,
            index: self.count,
            k: self.cfg.k,
            m: self.cfg.m,
        };
        write_fec_header(Kind::FecData, &hdr, out).map_err(|_| FecError::NoRoom)?;
        out[FEC_HEADER_LEN..n].copy_from_slice(inner);
        let i = usize::from(self.count);
        self.data[i][..inner.len()].copy_from_slice(inner);
        self.lens[i] = inner.len() as u16;
        if self.count == 0 {
            self.opened_ns = now;
        }
        self.count += 1;
        self.counters.data_sent += 1;
        if self.count == self.cfg.k {
            self.close(emit)?;
        }
        Ok(n)
    }

    /// Closes the open group if its delay has run out at `now`, emitting
    /// parity over the packets present. Returns the parity packets sent.
    pub fn poll(&mut self, now: u64, emit: impl FnMut(&[u8])) -> Result<u8, FecError> {
        match self.deadline() {
            Some(d) if now >= d => {
                self.counters.partial_groups += 1;
                self.close(emit)
            }
            _ => Ok(0),
        }
    }

    /// Emits the open group's parity and starts the next group.
    fn close(&mut self, mut emit: impl FnMut(&[u8])) -> Result<u8, FecError> {
        let k = self.count;
        let m = self.cfg.m;
        let ku = usize::from(k);
        let l = usize::from(*self.lens[..ku].iter().max().unwrap_or(&0));
        for (d, &len) in self.data.iter_mut().zip(&self.lens).take(ku) {
            d[usize::from(len)..l].fill(0);
        }
        let codec = self.codecs.get(k, m)?;
        let data: [&[u8]; MAX_K as usize] = {
            let mut it = self.data.iter().map(|d| &d[..l]);
            std::array::from_fn(|_| it.next().unwrap_or(&[]))
        };
        let mut parity: [&mut [u8]; MAX_M as usize] =
            array_from(self.parity.iter_mut().map(|p| &mut p[..l]));
        codec
            .encode_sep(&data[..ku], &mut parity[..usize::from(m)])
            .map_err(|_| FecError::Codec)?;
        for j in 0..m {
            let hdr = FecHeader {
                group: self.group,
                index: j,
                k,
                m,
            };
            let mut at = write_fec_header(Kind::FecParity, &hdr, &mut self.out)
                .map_err(|_| FecError::NoRoom)?;
            for &len in &self.lens[..ku] {
                self.out[at..at + 2].copy_from_slice(&len.to_be_bytes());
                at += 2;
            }
            self.out[at..at + l].copy_from_slice(&parity[usize::from(j)][..l]);
            emit(&self.out[..at + l]);
            self.counters.parity_sent += 1;
        }
        self.group = self.group.wrapping_add(1);
        self.count = 0;
        Ok(m)
    }
}

/// One group being reassembled.
#[derive(Debug)]
struct GroupSlot {
    live: bool,
    /// Recovered, complete or given up: only dedup remains.
    done: bool,
    group: u32,
    opened_ns: u64,
    /// Real k, from a parity packet (0 = not seen yet).
    k: u8,
    m: u8,
    lens: [u16; MAX_K as usize],
    /// Length of every received data shard (checked against `lens`).
    got_lens: [u16; MAX_K as usize],
    data_have: u32,
    parity_have: u16,
    /// Highest data index seen + 1 (gap counting without parity).
    data_hi: u8,
    /// `max_k` data shards then `max_m` parity shards.
    shards: Box<[Box<[u8]>]>,
}

impl GroupSlot {
    fn reset(&mut self, group: u32, now: u64) {
        self.live = true;
        self.done = false;
        self.group = group;
        self.opened_ns = now;
        self.k = 0;
        self.m = 0;
        self.data_have = 0;
        self.parity_have = 0;
        self.data_hi = 0;
    }

    /// Data packets known to be missing.
    fn missing(&self) -> u32 {
        let upto = if self.k > 0 { self.k } else { self.data_hi };
        let mask = if upto >= 32 {
            u32::MAX
        } else {
            (1u32 << upto) - 1
        };
        (mask & !self.data_have).count_ones()
    }
}

/// The FEC receiver of one path.
#[derive(Debug)]
pub struct FecDecoder {
    cfg: FecConfig,
    codecs: Codecs,
    slots: Box<[GroupSlot]>,
    counters: FecCounters,
}

impl FecDecoder {
    pub fn new(cfg: FecConfig) -> Result<Self, FecError> {
        cfg.validate()?;
        let n = usize::from(cfg.k) + usize::from(cfg.m);
        let slots = (0..cfg.window_groups)
            .map(|_| GroupSlot {
                live: false,
                done: false,
                group: 0,
                opened_ns: 0,
                k: 0,
                m: 0,
                lens: [0; MAX_K as usize],
                got_lens: [0; MAX_K as usize],
                data_have: 0,
                parity_have: 0,
                data_hi: 0,
                shards: shards(n, cfg.max_shard.into()),
            })
            .collect();
        Ok(FecDecoder {
            cfg,
            codecs: Codecs::new(),
            slots,
            counters: FecCounters::default(),
        })
    }

    pub fn counters(&self) -> &FecCounters {
        &self.counters
    }

    /// Gives up every group older than `reassembly_ns` at `now`.
    pub fn expire(&mut self, now: u64) {
        for s in self.slots.iter_mut() {
            if s.live && !s.done && now.saturating_sub(s.opened_ns) >= self.cfg.reassembly_ns {
                s.done = true;
                self.counters.unrecoverable += u64::from(s.missing());
            }
        }
    }

    /// Takes one FEC packet (data or parity) received at `now`; every data
    /// packet it makes available (its own, or recovered ones) goes to
    /// `deliver` as a whole inner WAN packet, each exactly once.
    pub fn push(
        &mut self,
        wire: &[u8],
        now: u64,
        deliver: impl FnMut(&[u8]),
    ) -> Result<(), FecError> {
        let r = self.push_inner(wire, now, deliver);
        if matches!(
            r,
            Err(FecError::Malformed
                | FecError::Inconsistent
                | FecError::NotFec
                | FecError::TooLong)
        ) {
            self.counters.malformed += 1;
        }
        r
    }

    fn push_inner(
        &mut self,
        wire: &[u8],
        now: u64,
        mut deliver: impl FnMut(&[u8]),
    ) -> Result<(), FecError> {
        let pkt = WanPacket::parse(wire).map_err(|_| FecError::Malformed)?;
        let hdr = match pkt {
            WanPacket::FecData { hdr, .. } | WanPacket::FecParity { hdr, .. } => hdr,
            _ => return Err(FecError::NotFec),
        };
        if hdr.k > self.cfg.k || hdr.m > self.cfg.m {
            return Err(FecError::Malformed);
        }
        self.expire(now);
        let w = self.slots.len() as u32;
        let slot = &mut self.slots[(hdr.group % w) as usize];
        if !slot.live {
            slot.reset(hdr.group, now);
        } else if slot.group != hdr.group {
            if (hdr.group.wrapping_sub(slot.group) as i32) < 0 {
                self.counters.late += 1;
                return Ok(());
            }
            if !slot.done {
                self.counters.unrecoverable += u64::from(slot.missing());
            }
            slot.reset(hdr.group, now);
        }
        if slot.m == 0 {
            slot.m = hdr.m;
        } else if slot.m != hdr.m {
            return Err(FecError::Inconsistent);
        }
        let max_k = usize::from(self.cfg.k);
        match pkt {
            WanPacket::FecData { hdr, inner } => {
                if inner.len() > usize::from(self.cfg.max_shard) {
                    return Err(FecError::TooLong);
                }
                let i = usize::from(hdr.index);
                if slot.k > 0 && (hdr.index >= slot.k || usize::from(slot.lens[i]) != inner.len()) {
                    return Err(FecError::Inconsistent);
                }
                if slot.data_have & (1 << i) != 0 {
                    self.counters.duplicates += 1;
                    return Ok(());
                }
                slot.data_have |= 1 << i;
                slot.data_hi = slot.data_hi.max(hdr.index + 1);
                deliver(inner);
                self.counters.delivered += 1;
                if slot.done {
                    return Ok(());
                }
                slot.shards[i][..inner.len()].copy_from_slice(inner);
                slot.got_lens[i] = inner.len() as u16;
            }
            WanPacket::FecParity { hdr, lens, shard } => {
                if slot.done {
                    return Ok(());
                }
                if shard.len() > usize::from(self.cfg.max_shard) {
                    return Err(FecError::TooLong);
                }
                let j = usize::from(hdr.index);
                if slot.k == 0 {
                    // First parity: the group's real shape. Data already
                    // here must agree with it.
                    let mask = if hdr.k >= 32 {
                        u32::MAX
                    } else {
                        (1u32 << hdr.k) - 1
                    };
                    let mut ok = slot.data_have & !mask == 0;
                    for i in 0..usize::from(hdr.k) {
                        let len = parity_len(lens, i);
                        if slot.data_have & (1 << i) != 0 && slot.got_lens[i] != len {
                            ok = false;
                        }
                        slot.lens[i] = len;
                    }
                    if !ok {
                        return Err(FecError::Inconsistent);
                    }
                    slot.k = hdr.k;
                } else if slot.k != hdr.k
                    || (0..usize::from(hdr.k)).any(|i| slot.lens[i] != parity_len(lens, i))
                {
                    return Err(FecError::Inconsistent);
                }
                if slot.parity_have & (1 << j) != 0 {
                    self.counters.duplicates += 1;
                    return Ok(());
                }
                slot.parity_have |= 1 << j;
                slot.shards[max_k + j][..shard.len()].copy_from_slice(shard);
            }
            _ => return Err(FecError::NotFec),
        }
        // Recovery, once the shape is known and k of k + m are here.
        if slot.k == 0 {
            return Ok(());
        }
        let missing = slot.missing();
        if missing == 0 {
            slot.done = true;
            return Ok(());
        }
        let k = usize::from(slot.k);
        let m = usize::from(slot.m);
        let present = (k as u32 - missing) + slot.parity_have.count_ones();
        if present < k as u32 {
            return Ok(());
        }
        let l = usize::from(*slot.lens[..k].iter().max().unwrap_or(&0));
        let (data, parity) = slot.shards.split_at_mut(max_k);
        for (i, d) in data.iter_mut().enumerate().take(k) {
            if slot.data_have & (1 << i) != 0 {
                d[usize::from(slot.lens[i])..l].fill(0);
            }
        }
        let codec = self.codecs.get(slot.k, slot.m)?;
        let (have_d, have_p) = (slot.data_have, slot.parity_have);
        let mut pos = 0usize;
        let mut it = data
            .iter_mut()
            .take(k)
            .chain(parity.iter_mut().take(m))
            .map(|s| &mut s[..l]);
        let mut set: [(&mut [u8], bool); (MAX_K + MAX_M) as usize] = std::array::from_fn(|_| {
            let here = if pos < k {
                have_d & (1 << pos) != 0
            } else {
                pos < k + m && have_p & (1 << (pos - k)) != 0
            };
            pos += 1;
            (it.next().unwrap_or(&mut []), here)
        });
        codec
            .reconstruct_data(&mut set[..k + m])
            .map_err(|_| FecError::Codec)?;
        for i in 0..k {
            if slot.data_have & (1 << i) == 0 {
                deliver(&slot.shards[i][..usize::from(slot.lens[i])]);
                slot.data_have |= 1 << i;
                self.counters.recovered += 1;
            }
        }
        slot.done = true;
        Ok(())
    }
}

/// Adaptive FEC: on at `on_ppm` loss or more, off below `off_ppm`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FecToggle {
    pub on_ppm: u32,
    pub off_ppm: u32,
    on: bool,
}

impl FecToggle {
    /// Starts off; `off_ppm` is clamped to at most `on_ppm`.
    pub fn new(on_ppm: u32, off_ppm: u32) -> Self {
        FecToggle {
            on_ppm,
            off_ppm: off_ppm.min(on_ppm),
            on: false,
        }
    }

    pub fn is_on(&self) -> bool {
        self.on
    }

    /// Feeds the path's measured loss; returns whether FEC is on.
    pub fn update(&mut self, loss_ppm: u32) -> bool {
        if !self.on && loss_ppm >= self.on_ppm {
            self.on = true;
        } else if self.on && loss_ppm < self.off_ppm {
            self.on = false;
        }
        self.on
    }
}
