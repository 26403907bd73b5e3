//! The WAN header carried inside the tunnel payload (after WireGuard
//! decryption): plain, probe, probe reply, FEC data, FEC parity and
//! compressed packets. Parsing is zero-copy ([`WanPacket::parse`] borrows
//! the payload) and never panics; emitters write into caller buffers.
//!
//! Layout (big endian), every packet starts with `VERSION`, `kind`:
//! ```text
//! plain       0x11 0x00 | inner IP packet
//! probe       0x11 0x01 path:u16 seq:u32 tx_ns:u64                       (16 B)
//! probe reply 0x11 0x02 path:u16 seq:u32 tx_ns:u64 rx_ns:u64 refl_tx_ns:u64 (32 B)
//! FEC data    0x11 0x03 index:u8 k:u8 m:u8 0:u8 group:u32 | inner WAN packet
//! FEC parity  0x11 0x04 index:u8 k:u8 m:u8 0:u8 group:u32 len[k]:u16 | parity shard
//! compressed  0x11 0x05 orig_len:u16 | lz4 block
//! duplicate   0x11 0x06 0:u16 seq:u32 | inner WAN packet (plain or compressed)
//! ```
//! The version byte's high nibble (1) can never be an IP version (4 or 6),
//! so a receiver may also accept a bare IP packet as plain
//! ([`WanPacket::Raw`]). A FEC data packet's `k` is the encoder's nominal
//! group size (the group may close early); its parity packets carry the
//! group's real `k` and the lengths of its data shards (the inner WAN
//! packets), so a receiver can trim recovered shards. A parity shard is as
//! long as the group's longest data shard.

/// First byte of every WAN packet.
pub const VERSION: u8 = 0x11;
/// Length of the probe header.
pub const PROBE_LEN: usize = 16;
/// Length of the probe reply header.
pub const PROBE_REPLY_LEN: usize = 32;
/// Fixed part of both FEC headers.
pub const FEC_HEADER_LEN: usize = 10;
/// Header before a compressed block.
pub const COMPRESSED_HEADER_LEN: usize = 4;
/// Header before a plain payload.
pub const PLAIN_HEADER_LEN: usize = 2;
/// Header of a duplicated packet (sent on two paths, kept once).
pub const DUP_HEADER_LEN: usize = 8;

/// The kind byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    Plain = 0,
    Probe = 1,
    ProbeReply = 2,
    FecData = 3,
    FecParity = 4,
    Compressed = 5,
    Duplicate = 6,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        Some(match b {
            0 => Kind::Plain,
            1 => Kind::Probe,
            2 => Kind::ProbeReply,
            3 => Kind::FecData,
            4 => Kind::FecParity,
            5 => Kind::Compressed,
            6 => Kind::Duplicate,
            _ => return None,
        })
    }
}

/// Why a WAN packet was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WanWireError {
    #[error("WAN packet truncated")]
    Truncated,
    #[error("unknown WAN header version")]
    BadVersion,
    #[error("unknown WAN packet kind")]
    BadKind,
    /// k or m zero, index out of range, reserved byte set, or parity
    /// lengths inconsistent with the shard.
    #[error("malformed FEC header")]
    BadFec,
    /// A length field disagrees with the packet.
    #[error("bad WAN length field")]
    BadLength,
    /// The caller's output buffer is too small.
    #[error("output buffer too small")]
    NoRoom,
}

/// A probe, or the probe part of a reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Probe {
    pub path: u16,
    pub seq: u32,
    /// The sender's monotonic clock at send, ns.
    pub tx_ns: u64,
}

/// A reflected probe: the original fields plus the reflector's clock at
/// receive and at send (ns, its own monotonic clock).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ProbeReply {
    pub probe: Probe,
    pub reflector_rx_ns: u64,
    pub reflector_tx_ns: u64,
}

impl ProbeReply {
    /// Round trip time seen by the sender receiving this at `now_ns`, less
    /// the reflector's residence time. Saturates at 0 on nonsense.
    pub fn rtt_ns(&self, now_ns: u64) -> u64 {
        let total = now_ns.saturating_sub(self.probe.tx_ns);
        let residence = self.reflector_tx_ns.saturating_sub(self.reflector_rx_ns);
        total.saturating_sub(residence)
    }

    /// Forward one-way delay plus the (unknown, constant) clock offset
    /// between the two ends, as a signed value: differences of successive
    /// values are offset-free (RFC 3550 transit time).
    pub fn forward_transit(&self) -> i64 {
        self.reflector_rx_ns.wrapping_sub(self.probe.tx_ns) as i64
    }
}

/// The fixed FEC header of a data or parity packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FecHeader {
    pub group: u32,
    /// Data: 0..k; parity: 0..m.
    pub index: u8,
    pub k: u8,
    pub m: u8,
}

/// A parsed WAN packet borrowing its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WanPacket<'a> {
    /// A bare IP packet (no WAN header).
    Raw(&'a [u8]),
    Plain(&'a [u8]),
    Probe(Probe),
    ProbeReply(ProbeReply),
    /// `inner` is a whole WAN packet (plain or compressed).
    FecData {
        hdr: FecHeader,
        inner: &'a [u8],
    },
    /// `lens` holds `hdr.k` big-endian u16 data shard lengths.
    FecParity {
        hdr: FecHeader,
        lens: &'a [u8],
        shard: &'a [u8],
    },
    Compressed {
        orig_len: u16,
        block: &'a [u8],
    },
    /// `inner` is a whole WAN packet (plain or compressed).
    Duplicate {
        seq: u32,
        inner: &'a [u8],
    },
}

#[inline]
fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}
#[inline]
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
#[inline]
fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(x)
}

/// The `i`th data shard length of a parity packet's `lens` field (0 when
/// out of range).
#[inline]
pub fn parity_len(lens: &[u8], i: usize) -> u16 {
    if 2 * i + 1 < lens.len() {
        u16_at(lens, 2 * i)
    } else {
        0
    }
}

impl<'a> WanPacket<'a> {
    /// Parses `b`; every length is checked before it is used.
    pub fn parse(b: &'a [u8]) -> Result<WanPacket<'a>, WanWireError> {
        let first = *b.first().ok_or(WanWireError::Truncated)?;
        if matches!(first >> 4, 4 | 6) {
            return Ok(WanPacket::Raw(b));
        }
        if first != VERSION {
            return Err(WanWireError::BadVersion);
        }
        let kind = Kind::from_u8(*b.get(1).ok_or(WanWireError::Truncated)?)
            .ok_or(WanWireError::BadKind)?;
        match kind {
            Kind::Plain => Ok(WanPacket::Plain(&b[PLAIN_HEADER_LEN..])),
            Kind::Probe => {
                if b.len() < PROBE_LEN {
                    return Err(WanWireError::Truncated);
                }
                Ok(WanPacket::Probe(probe_at(b)))
            }
            Kind::ProbeReply => {
                if b.len() < PROBE_REPLY_LEN {
                    return Err(WanWireError::Truncated);
                }
                Ok(WanPacket::ProbeReply(ProbeReply {
                    probe: probe_at(b),
                    reflector_rx_ns: u64_at(b, 16),
                    reflector_tx_ns: u64_at(b, 24),
                }))
            }
            Kind::FecData | Kind::FecParity => {
                if b.len() < FEC_HEADER_LEN {
                    return Err(WanWireError::Truncated);
                }
                let hdr = FecHeader {
                    index: b[2],
                    k: b[3],
                    m: b[4],
                    group: u32_at(b, 6),
                };
                if hdr.k == 0 || hdr.m == 0 || b[5] != 0 {
                    return Err(WanWireError::BadFec);
                }
                let rest = &b[FEC_HEADER_LEN..];
                if kind == Kind::FecData {
                    if hdr.index >= hdr.k {
                        return Err(WanWireError::BadFec);
                    }
                    if rest.is_empty() {
                        return Err(WanWireError::Truncated);
                    }
                    return Ok(WanPacket::FecData { hdr, inner: rest });
                }
                if hdr.index >= hdr.m {
                    return Err(WanWireError::BadFec);
                }
                let lens_len = 2 * usize::from(hdr.k);
                if rest.len() < lens_len {
                    return Err(WanWireError::Truncated);
                }
                let (lens, shard) = rest.split_at(lens_len);
                let longest = lens
                    .chunks_exact(2)
                    .map(|c| u16::from_be_bytes([c[0], c[1]]))
                    .max()
                    .unwrap_or(0);
                if longest == 0 || usize::from(longest) != shard.len() {
                    return Err(WanWireError::BadLength);
                }
                if lens.chunks_exact(2).any(|c| c == [0, 0]) {
                    return Err(WanWireError::BadLength);
                }
                Ok(WanPacket::FecParity { hdr, lens, shard })
            }
            Kind::Compressed => {
                if b.len() < COMPRESSED_HEADER_LEN {
                    return Err(WanWireError::Truncated);
                }
                let orig_len = u16_at(b, 2);
                if orig_len == 0 {
                    return Err(WanWireError::BadLength);
                }
                Ok(WanPacket::Compressed {
                    orig_len,
                    block: &b[COMPRESSED_HEADER_LEN..],
                })
            }
            Kind::Duplicate => {
                if b.len() <= DUP_HEADER_LEN {
                    return Err(WanWireError::Truncated);
                }
                if b[2..4] != [0, 0] {
                    return Err(WanWireError::BadLength);
                }
                Ok(WanPacket::Duplicate {
                    seq: u32_at(b, 4),
                    inner: &b[DUP_HEADER_LEN..],
                })
            }
        }
    }
}

fn probe_at(b: &[u8]) -> Probe {
    Probe {
        path: u16_at(b, 2),
        seq: u32_at(b, 4),
        tx_ns: u64_at(b, 8),
    }
}

fn room(out: &mut [u8], n: usize) -> Result<&mut [u8], WanWireError> {
    out.get_mut(..n).ok_or(WanWireError::NoRoom)
}

/// Writes the 2-byte plain header; the payload follows at offset 2.
pub fn write_plain_header(out: &mut [u8]) -> Result<usize, WanWireError> {
    room(out, PLAIN_HEADER_LEN)?.copy_from_slice(&[VERSION, Kind::Plain as u8]);
    Ok(PLAIN_HEADER_LEN)
}

/// Writes a probe; returns its length.
pub fn write_probe(p: &Probe, out: &mut [u8]) -> Result<usize, WanWireError> {
    let o = room(out, PROBE_LEN)?;
    o[0] = VERSION;
    o[1] = Kind::Probe as u8;
    o[2..4].copy_from_slice(&p.path.to_be_bytes());
    o[4..8].copy_from_slice(&p.seq.to_be_bytes());
    o[8..16].copy_from_slice(&p.tx_ns.to_be_bytes());
    Ok(PROBE_LEN)
}

/// Writes a probe reply; returns its length.
pub fn write_probe_reply(r: &ProbeReply, out: &mut [u8]) -> Result<usize, WanWireError> {
    let o = room(out, PROBE_REPLY_LEN)?;
    write_probe(&r.probe, o)?;
    o[1] = Kind::ProbeReply as u8;
    o[16..24].copy_from_slice(&r.reflector_rx_ns.to_be_bytes());
    o[24..32].copy_from_slice(&r.reflector_tx_ns.to_be_bytes());
    Ok(PROBE_REPLY_LEN)
}

/// The reflector's whole job: turns probe bytes received at `rx_ns` into
/// a reply sent at `tx_ns`, written to `out`.
pub fn reflect(
    probe: &[u8],
    rx_ns: u64,
    tx_ns: u64,
    out: &mut [u8],
) -> Result<usize, WanWireError> {
    match WanPacket::parse(probe)? {
        WanPacket::Probe(p) => write_probe_reply(
            &ProbeReply {
                probe: p,
                reflector_rx_ns: rx_ns,
                reflector_tx_ns: tx_ns,
            },
            out,
        ),
        _ => Err(WanWireError::BadKind),
    }
}

/// Writes the fixed FEC header of kind `kind` (data or parity).
pub fn write_fec_header(kind: Kind, h: &FecHeader, out: &mut [u8]) -> Result<usize, WanWireError> {
    debug_assert!(matches!(kind, Kind::FecData | Kind::FecParity));
    let o = room(out, FEC_HEADER_LEN)?;
    o[0] = VERSION;
    o[1] = kind as u8;
    o[2] = h.index;
    o[3] = h.k;
    o[4] = h.m;
    o[5] = 0;
    o[6..10].copy_from_slice(&h.group.to_be_bytes());
    Ok(FEC_HEADER_LEN)
}

/// Writes the compressed header for an original of `orig_len` bytes; the
/// block follows at offset 4.
pub fn write_compressed_header(orig_len: u16, out: &mut [u8]) -> Result<usize, WanWireError> {
    let o = room(out, COMPRESSED_HEADER_LEN)?;
    o[0] = VERSION;
    o[1] = Kind::Compressed as u8;
    o[2..4].copy_from_slice(&orig_len.to_be_bytes());
    Ok(COMPRESSED_HEADER_LEN)
}

/// Writes a duplicate header with sequence `seq`; the inner WAN packet
/// follows at offset 8.
pub fn write_dup_header(seq: u32, out: &mut [u8]) -> Result<usize, WanWireError> {
    let o = room(out, DUP_HEADER_LEN)?;
    o[0] = VERSION;
    o[1] = Kind::Duplicate as u8;
    o[2..4].copy_from_slice(&[0, 0]);
    o[4..8].copy_from_slice(&seq.to_be_bytes());
    Ok(DUP_HEADER_LEN)
}
