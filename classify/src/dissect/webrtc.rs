//! Real-time media (webrtc class): STUN (RFC 5389 with its magic cookie,
//! and classic RFC 3489 binding messages), DTLS records, RTP and RTCP.
//! STUN, DTLS handshakes and RTCP compounds are specific enough to say so
//! from one datagram (exact lengths, a cookie or fixed fields); RTP is
//! only taken after a few packets of one stream (same SSRC, sequence
//! numbers moving forward), so that random UDP is not claimed. Up to two
//! small packets that fit none of them (keep-alives, probes) are let by;
//! a larger one rules the flow out. Over TCP: bare STUN messages, or
//! any of them behind an RFC 4571 length.

use super::client_hello::{client_hello_sni, Hello};
use super::Ctx;
use crate::class::Class;
use crate::view::{AppName, Dir, PacketView, Step, Verdict, L4};

/// RFC 5389 magic cookie.
const MAGIC_COOKIE: u32 = 0x2112_a442;
const STUN_HEADER: usize = 20;
/// RFC 3489 message types: binding and shared secret, request, response
/// and error.
const CLASSIC_STUN_TYPES: [u16; 6] = [0x0001, 0x0101, 0x0111, 0x0002, 0x0102, 0x0112];
const DTLS_HEADER: usize = 13;
const RTP_HEADER: usize = 12;
/// Packets of one RTP stream (consistent with each other) needed.
const RTP_PACKETS: u8 = 3;
/// Largest forward step of an RTP sequence number between two packets
/// seen (losses, reordering in the capture).
const RTP_MAX_SEQ_STEP: u16 = 64;
/// Packets that fit none of the protocols let by before giving up.
const MAX_MISSES: u8 = 2;
/// Longest packet that fits nothing let by.
const MAX_MISS_LEN: usize = 32;
/// Packets looked at before giving up on an unfinished DTLS or RTP guess.
const MAX_PACKETS: u8 = 10;

/// The RTP stream followed in one direction.
#[derive(Clone, Copy, Debug, Default)]
struct RtpStream {
    ssrc: u32,
    seq: u16,
    packets: u8,
}

#[derive(Clone, Debug, Default)]
pub struct State {
    packets: u8,
    /// DTLS records (of a flow seen mid-way, without a handshake) seen.
    dtls_records: u8,
    /// Packets that fit none of the protocols.
    misses: u8,
    rtp: [RtpStream; 2],
}

impl State {
    pub fn inspect(&mut self, _ctx: &mut Ctx, p: &PacketView<'_>) -> Step {
        self.packets = self.packets.saturating_add(1);
        let b = if p.l4 == L4::Tcp {
            // Over TCP (TURN, ICE-TCP, RTP): bare STUN messages, or
            // anything behind an RFC 4571 two-byte length.
            if stun_messages(p.payload) {
                return webrtc(None);
            }
            match framed(p.payload) {
                Some(inner) => inner,
                None => return self.miss(p.payload),
            }
        } else {
            p.payload
        };
        if stun_messages(b) {
            return webrtc(None);
        }
        match dtls(b) {
            Dtls::Handshake(name) => return webrtc(name),
            Dtls::Records => {
                self.dtls_records += 1;
                return if self.dtls_records >= 2 {
                    webrtc(None)
                } else {
                    self.more()
                };
            }
            Dtls::No => {}
        }
        if rtcp(b) {
            return webrtc(None);
        }
        let Some((ssrc, seq)) = rtp(b) else {
            return self.miss(b);
        };
        let i = usize::from(p.dir == Dir::Reply);
        let s = self.rtp[i];
        let step = seq.wrapping_sub(s.seq);
        let packets = if s.packets > 0 && (s.ssrc != ssrc || step == 0 || step > RTP_MAX_SEQ_STEP) {
            // Another stream, or not RTP at all: start over from this one.
            if self.miss(b) == Step::NotMine {
                return Step::NotMine;
            }
            1
        } else {
            s.packets + 1
        };
        self.rtp[i] = RtpStream { ssrc, seq, packets };
        if packets >= RTP_PACKETS {
            webrtc(None)
        } else {
            self.more()
        }
    }

    /// A packet `b` that fits none of the protocols: a few small ones are
    /// let by (keep-alives, a peer's own probes); a larger one is another
    /// protocol's.
    fn miss(&mut self, b: &[u8]) -> Step {
        self.misses += 1;
        if self.misses > MAX_MISSES || b.len() > MAX_MISS_LEN {
            Step::NotMine
        } else {
            self.more()
        }
    }

    fn more(&self) -> Step {
        if self.packets >= MAX_PACKETS {
            Step::NotMine
        } else {
            Step::More
        }
    }
}

fn webrtc(name: Option<AppName>) -> Step {
    Step::Done(Verdict::sure(Class::Webrtc, name))
}

fn be16(b: &[u8], at: usize) -> usize {
    usize::from(u16::from_be_bytes([b[at], b[at + 1]]))
}

/// One STUN message at the start of `b`: its length, when it is one.
/// With the magic cookie any method goes; without it only RFC 3489's
/// binding and shared secret messages with known attributes do. The
/// attributes must fill the message exactly (the last may lack its
/// padding, as some clients send).
fn stun_message(b: &[u8]) -> Option<usize> {
    if b.len() < STUN_HEADER || b[0] & 0xc0 != 0 {
        return None;
    }
    let ty = u16::from_be_bytes([b[0], b[1]]);
    let len = be16(b, 2);
    let total = STUN_HEADER + len;
    let attrs = b.get(STUN_HEADER..total)?;
    let cookie = u32::from_be_bytes([b[4], b[5], b[6], b[7]]) == MAGIC_COOKIE;
    if !cookie && (!CLASSIC_STUN_TYPES.contains(&ty) || len % 4 != 0) {
        // RFC 3489 had no cookie: the type, the length and the attributes
        // filling the message exactly must do.
        return None;
    }
    let mut pos = 0;
    while pos < attrs.len() {
        let a = attrs.get(pos..pos + 4)?;
        let end = pos + 4 + be16(a, 2);
        if end > attrs.len() {
            return None;
        }
        pos = (end + 3) & !3;
    }
    // A lone padded-out last attribute overshoots by at most 3.
    (pos - attrs.len() <= 3).then_some(total)
}

/// `b` is one or more whole STUN messages.
fn stun_messages(b: &[u8]) -> bool {
    let mut rest = b;
    while !rest.is_empty() {
        match stun_message(rest) {
            Some(n) => rest = &rest[n..],
            None => return false,
        }
    }
    !b.is_empty()
}

/// The first frame behind an RFC 4571 two-byte length.
fn framed(b: &[u8]) -> Option<&[u8]> {
    let len = be16(b.get(..2)?, 0);
    b.get(2..2 + len).filter(|f| !f.is_empty())
}

enum Dtls {
    No,
    /// Records starting a handshake (epoch 0): a ClientHello's server
    /// name when there is one.
    Handshake(Option<AppName>),
    /// Well-formed records of a flow seen after its handshake.
    Records,
}

/// Reads `b` as DTLS records that fill the datagram exactly.
fn dtls(b: &[u8]) -> Dtls {
    let mut pos = 0;
    let mut first: Option<(u8, u16, &[u8])> = None;
    while pos < b.len() {
        let Some(h) = b.get(pos..pos + DTLS_HEADER) else {
            return Dtls::No;
        };
        let version = u16::from_be_bytes([h[1], h[2]]);
        // DTLS 1.0, 1.2, 1.3's legacy value, and OpenSSL's old 0x0100.
        if !(20..=25).contains(&h[0]) || !matches!(version, 0xfeff | 0xfefd | 0xfefc | 0x0100) {
            return Dtls::No;
        }
        let epoch = u16::from_be_bytes([h[3], h[4]]);
        let len = be16(h, 11);
        let end = pos + DTLS_HEADER + len;
        if len == 0 || end > b.len() {
            return Dtls::No;
        }
        first.get_or_insert((h[0], epoch, &b[pos + DTLS_HEADER..end]));
        pos = end;
    }
    match first {
        // Handshake with epoch 0: ClientHello, ServerHello,
        // HelloVerifyRequest, Certificate (fragments of any of them).
        Some((22, 0, body)) => match body.first() {
            Some(1) => Dtls::Handshake(match client_hello_sni(body, true) {
                Hello::Sni(name) => name,
                _ => None,
            }),
            Some(2 | 3 | 11) => Dtls::Handshake(None),
            _ => Dtls::No,
        },
        Some((_, epoch, _)) if epoch <= 8 => Dtls::Records,
        _ => Dtls::No,
    }
}

/// A compound RTCP packet: sender or receiver report first, every part
/// version 2 with an RTCP type, the parts filling the datagram (SRTCP
/// may add its index and a 10-byte tag).
fn rtcp(b: &[u8]) -> bool {
    if b.len() < 8 || b[0] >> 6 != 2 || !(200..=201).contains(&b[1]) {
        return false;
    }
    let mut pos = 0;
    while pos + 4 <= b.len() {
        if b[pos] >> 6 != 2 || !(192..=223).contains(&b[pos + 1]) {
            break;
        }
        pos += (be16(b, pos + 2) + 1) * 4;
    }
    pos == b.len() || pos + 14 == b.len()
}

/// An RTP header: (SSRC, sequence number) when `b` can be RTP.
fn rtp(b: &[u8]) -> Option<(u32, u16)> {
    if b.len() < RTP_HEADER || b[0] >> 6 != 2 {
        return None;
    }
    let pt = b[1] & 0x7f;
    // Static audio/video types and the dynamic range (RFC 3551).
    if !(pt <= 34 || (96..=127).contains(&pt)) {
        return None;
    }
    let csrc = usize::from(b[0] & 0x0f);
    let mut header = RTP_HEADER + 4 * csrc;
    if b[0] & 0x10 != 0 {
        let ext = b.get(header..header + 4)?;
        header += 4 + 4 * be16(ext, 2);
    }
    if header > b.len() {
        return None;
    }
    let seq = u16::from_be_bytes([b[2], b[3]]);
    let ssrc = u32::from_be_bytes([b[8], b[9], b[10], b[11]]);
    Some((ssrc, seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stun_lengths_must_add_up() {
        // Binding request with the cookie and no attributes.
        let mut m = [0u8; 20];
        m[1] = 1;
        m[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
        assert!(stun_messages(&m));
        assert!(!stun_messages(&m[..19]));
        let mut longer = [0u8; 24];
        longer[..20].copy_from_slice(&m);
        assert!(!stun_messages(&longer));
        longer[3] = 4; // one empty attribute
        assert!(stun_messages(&longer));
    }

    #[test]
    fn rtcp_receiver_report_fills_the_datagram() {
        // RR with no report blocks: 8 bytes, length field 1.
        assert!(rtcp(&[0x80, 201, 0, 1, 1, 2, 3, 4]));
        assert!(!rtcp(&[0x80, 201, 0, 2, 1, 2, 3, 4]));
        assert!(!rtcp(&[0x40, 201, 0, 1, 1, 2, 3, 4]));
    }
}
