//! BitTorrent: the peer wire handshake (`\x13BitTorrent protocol`) over TCP
//! or inside uTP; DHT messages (bencoded dictionaries, BEP 5); the UDP
//! tracker's connect request (BEP 15); local peer discovery
//! (`BT-SEARCH * HTTP/1.1`, BEP 14); and uTP (BEP 29) when a SYN is
//! answered by a STATE that acknowledges it, or several packets of one
//! direction carry one connection id with consecutive sequence numbers.
//! Tracker announces over HTTP are left to the HTTP dissector (nDPI counts
//! them HTTP).

use super::http::{find, is_filler, starts_with_ci};
use super::Ctx;
use crate::class::Class;
use crate::view::{Dir, PacketView, Step, Verdict, L4};

const HANDSHAKE: &[u8] = b"\x13BitTorrent protocol";
/// The UDP tracker protocol's connect magic (BEP 15).
const TRACKER_MAGIC: [u8; 8] = 0x0417_2710_1980u64.to_be_bytes();
const LSD: &[u8] = b"BT-SEARCH * HTTP/1.";
/// uTP header length.
const UTP_HEADER: usize = 20;
const ST_DATA: u8 = 0;
const ST_STATE: u8 = 2;
const ST_SYN: u8 = 4;
/// Consistent uTP packets of one direction that make the flow uTP.
const UTP_RUN: u8 = 3;
/// uTP-shaped packets after which, without a confirmation, it is not uTP.
const UTP_GIVE_UP: u8 = 8;
/// Largest step of the sender's microsecond clock between two packets of a run.
const UTP_CLOCK_STEP_US: u32 = 10_000_000;

/// A uTP header's fields this dissector uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Utp {
    kind: u8,
    conn_id: u16,
    seq: u16,
    ack: u16,
    /// Microseconds, the sender's clock.
    timestamp: u32,
    /// Where the payload starts (after the extension chain).
    payload_at: usize,
}

#[derive(Clone, Copy, Debug, Default)]
struct Run {
    dir: Option<Dir>,
    conn_id: u16,
    seq: u16,
    timestamp: u32,
    count: u8,
}

#[derive(Clone, Debug, Default)]
pub struct State {
    /// A SYN seen: its connection id and sequence number.
    syn: Option<(Dir, u16, u16)>,
    run: Run,
    /// uTP-shaped packets seen.
    seen: u8,
}

impl State {
    pub fn inspect(&mut self, _ctx: &mut Ctx, p: &PacketView<'_>) -> Step {
        let b = p.payload;
        match p.l4 {
            L4::Tcp => {
                if is_filler(b) {
                    return Step::More;
                }
                if b.len() < HANDSHAKE.len() && HANDSHAKE.starts_with(b) {
                    return Step::More;
                }
                if b.starts_with(HANDSHAKE) {
                    return sure();
                }
                Step::NotMine
            }
            L4::Udp => {
                if is_dht(b) || is_tracker_connect(b) || starts_with_ci(b, LSD) {
                    return sure();
                }
                match utp(b) {
                    Some(u) => self.utp(p.dir, &u, b),
                    None => Step::NotMine,
                }
            }
        }
    }

    fn utp(&mut self, dir: Dir, u: &Utp, b: &[u8]) -> Step {
        if b[u.payload_at..].starts_with(HANDSHAKE) {
            return sure();
        }
        // The answer to a SYN: a STATE for the same connection acking it.
        if let Some((syn_dir, id, seq)) = self.syn {
            if dir != syn_dir && u.kind == ST_STATE && u.conn_id == id && u.ack == seq {
                return sure();
            }
        }
        if u.kind == ST_SYN && self.syn.is_none() {
            self.syn = Some((dir, u.conn_id, u.seq));
        }
        // A run of one direction: one connection id, a clock that moves
        // forward (by under 10 s), DATA sequence numbers one up each, STATE
        // ones unchanged.
        self.seen = self.seen.saturating_add(1);
        let r = &mut self.run;
        if r.dir.is_none() || r.dir == Some(dir) {
            let step = match u.kind {
                ST_DATA => 1,
                ST_STATE => 0,
                _ => u16::MAX,
            };
            let continues = r.dir.is_some()
                && r.conn_id == u.conn_id
                && u.seq.wrapping_sub(r.seq) == step
                && (1..=UTP_CLOCK_STEP_US).contains(&u.timestamp.wrapping_sub(r.timestamp));
            if continues {
                r.count += 1;
                r.seq = u.seq;
                r.timestamp = u.timestamp;
            } else {
                *r = Run {
                    dir: Some(dir),
                    conn_id: u.conn_id,
                    seq: u.seq,
                    timestamp: u.timestamp,
                    count: 1,
                };
            }
            if r.count >= UTP_RUN {
                return Step::Done(Verdict {
                    class: Class::Bittorrent,
                    name: None,
                    confidence: 0.9,
                });
            }
        }
        if self.seen >= UTP_GIVE_UP {
            return Step::NotMine;
        }
        Step::More
    }
}

fn sure() -> Step {
    Step::Done(Verdict::sure(Class::Bittorrent, None))
}

/// A bencoded DHT message: a dictionary whose first key is one of KRPC's
/// (`a`, `e`, `ip`, `r`, `t`, `v`, `y`) and that names a node id or a
/// message type.
fn is_dht(b: &[u8]) -> bool {
    const FIRST_KEYS: [&[u8]; 7] = [
        b"d1:a", b"d1:e", b"d2:ip", b"d1:r", b"d1:t", b"d1:v", b"d1:y",
    ];
    if !FIRST_KEYS.iter().any(|k| b.starts_with(k)) || b.last() != Some(&b'e') {
        return false;
    }
    find(b, b"2:id20:").is_some() || find(b, b"1:y1:").is_some()
}

/// BEP 15 connect request: magic, action 0, transaction id.
fn is_tracker_connect(b: &[u8]) -> bool {
    b.len() == 16 && b[..8] == TRACKER_MAGIC && b[8..12] == [0; 4]
}

/// A uTP header (version 1, a known type, a well-formed extension chain).
fn utp(b: &[u8]) -> Option<Utp> {
    if b.len() < UTP_HEADER {
        return None;
    }
    let kind = b[0] >> 4;
    if b[0] & 0x0f != 1 || kind > ST_SYN {
        return None;
    }
    let mut ext = b[1];
    let mut at = UTP_HEADER;
    // Extensions: 1 selective ack, 2 extension bits; each `next, len, data`.
    while ext != 0 {
        if ext > 2 {
            return None;
        }
        let next = *b.get(at)?;
        let len = usize::from(*b.get(at + 1)?);
        if len == 0 || len % 4 != 0 && ext == 1 {
            return None;
        }
        at += 2 + len;
        if at > b.len() {
            return None;
        }
        ext = next;
    }
    if kind == ST_STATE && at != b.len() || kind == ST_SYN && at != b.len() {
        return None; // these carry no payload
    }
    if kind == ST_DATA && at == b.len() {
        return None; // DATA carries some
    }
    let be16 = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
    Some(Utp {
        kind,
        conn_id: be16(2),
        seq: be16(16),
        ack: be16(18),
        timestamp: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        payload_at: at,
    })
}
