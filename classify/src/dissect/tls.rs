//! TLS over TCP on any port: the flow's first payload must be a TLS
//! handshake record. A ClientHello is put back together from the client's
//! segments by TCP sequence number (across segments and records, into a
//! bounded inline buffer) and its server name (SNI) read; a ServerHello
//! seen first (a flow caught mid-way) says tls without a name. A protocol
//! that starts in clear text and upgrades (STARTTLS) is not tls: its first
//! payload is not a TLS record.

use super::client_hello::{client_hello_sni, Hello, Reasm, CLIENT_HELLO};
use super::Ctx;
use crate::class::Class;
use crate::view::{AppName, Dir, PacketView, Step, Verdict, L4};

/// Bytes of the client's stream kept to find the server name in.
pub const CLIENT_BYTES: usize = 4096;
/// Client segments looked at before settling for tls without a name.
const MAX_CLIENT_SEGMENTS: u8 = 8;
/// TLS record header: type, version, length.
const RECORD_HEADER: usize = 5;
const CONTENT_CHANGE_CIPHER_SPEC: u8 = 20;
const CONTENT_HANDSHAKE: u8 = 22;
const CONTENT_APPLICATION_DATA: u8 = 23;
/// How sure a verdict from records after the handshake is (no hello
/// seen: three fixed bytes and consistent lengths).
const MID_FLOW_CONFIDENCE: f32 = 0.9;
const SERVER_HELLO: u8 = 2;
/// Handshake messages that start a flow caught after its hellos.
const MID_HANDSHAKE_TYPES: [u8; 6] = [4, 11, 12, 13, 14, 16];
/// Ports of protocols that run inside TLS from the first byte and that
/// nDPI reports by name (IMAPS, POP3S, SMTPS): class `other`.
const IMPLICIT_TLS_PORTS: [u16; 3] = [993, 995, 465];
/// Longest run of zero bytes skipped before the first record.
const MAX_JUNK: usize = 8;
/// Largest record (2^14 plus the expansion TLS allows).
const MAX_RECORD: usize = 16384 + 2048;

#[derive(Clone, Debug, Default)]
pub struct State {
    /// The ClientHello's direction and first sequence number, once seen.
    client: Option<(Dir, u32)>,
    /// The server's port (the lower one when the roles are not known).
    server_port: u16,
    segments: u8,
    stream: Reasm<CLIENT_BYTES>,
}

impl State {
    pub fn inspect(&mut self, _ctx: &mut Ctx, p: &PacketView<'_>) -> Step {
        if p.l4 != L4::Tcp {
            return Step::NotMine;
        }
        let Some((dir, base)) = self.client else {
            return self.first(p);
        };
        if p.dir != dir {
            // The server answered: the client's hello was all sent, so what
            // is missing was lost to the capture.
            return if is_server_hello(p.payload) {
                self.done(None, 1.0)
            } else {
                Step::More
            };
        }
        let offset = p.tcp_seq.wrapping_sub(base);
        if offset < 1 << 31 {
            self.stream.insert(u64::from(offset), p.payload);
        }
        self.segments = self.segments.saturating_add(1);
        self.progress()
    }

    /// The flow's first payload: a handshake record, or not TLS at all.
    fn first(&mut self, p: &PacketView<'_>) -> Step {
        let b = p.payload;
        self.server_port = p.dport;
        if !is_handshake_record(b) && !is_handshake_header_start(b) {
            if is_sslv2_client_hello(b) {
                return self.done(None, 1.0);
            }
            if b.len() <= MAX_JUNK && b.iter().all(|&x| x == 0) {
                // Zero bytes some stacks put in a bare ACK: not a start.
                return Step::More;
            }
            // A flow caught after its handshake: records of application
            // data (or an alert, a cipher change) only.
            return if is_record_run(b) {
                self.server_port = p.sport.min(p.dport);
                self.done(None, MID_FLOW_CONFIDENCE)
            } else {
                Step::NotMine
            };
        }
        match b.get(RECORD_HEADER) {
            Some(&SERVER_HELLO) if is_server_hello(b) => {
                self.server_port = p.sport;
                self.done(None, 1.0)
            }
            // The record header alone may come in a segment of its own.
            Some(&CLIENT_HELLO) | None => {
                self.client = Some((p.dir, p.tcp_seq));
                self.segments = 1;
                self.stream.insert(0, b);
                self.progress()
            }
            // Later handshake messages of a flow caught mid-way
            // (certificate, key exchange, hello done, session ticket).
            Some(&t) if MID_HANDSHAKE_TYPES.contains(&t) => {
                self.server_port = p.sport.min(p.dport);
                self.done(None, MID_FLOW_CONFIDENCE)
            }
            _ => Step::NotMine,
        }
    }

    /// Reads the ClientHello from the bytes gathered so far.
    fn progress(&mut self) -> Step {
        let mut scratch = [0u8; CLIENT_BYTES];
        let Some(hs) = handshake_bytes(self.stream.prefix(), &mut scratch) else {
            return Step::NotMine;
        };
        match client_hello_sni(hs, false) {
            Hello::Sni(name) => self.done(name, 1.0),
            // A handshake record with a malformed hello: still TLS.
            Hello::Invalid => self.done(None, MID_FLOW_CONFIDENCE),
            Hello::Incomplete if self.stream.is_full() => self.done(None, 1.0),
            Hello::Incomplete if self.segments >= MAX_CLIENT_SEGMENTS => self.done(None, 1.0),
            Hello::Incomplete => Step::More,
        }
    }

    /// TLS, or the protocol TLS carries on a port where nDPI (the ground
    /// truth) names it as a protocol of its own.
    fn done(&self, name: Option<AppName>, confidence: f32) -> Step {
        let class = if IMPLICIT_TLS_PORTS.contains(&self.server_port) {
            Class::Other
        } else {
            Class::Tls
        };
        Step::Done(Verdict {
            class,
            name,
            confidence,
        })
    }
}

/// `b` starts with a TLS handshake record header (SSL 3.0 to TLS 1.3
/// record versions, a possible length).
fn is_handshake_record(b: &[u8]) -> bool {
    match b {
        [CONTENT_HANDSHAKE, 3, minor, hi, lo, ..] => {
            let len = usize::from(u16::from_be_bytes([*hi, *lo]));
            *minor <= 4 && len > 0 && len <= MAX_RECORD
        }
        _ => false,
    }
}

/// The first bytes (fewer than a header's five) of a handshake record.
fn is_handshake_header_start(b: &[u8]) -> bool {
    match b {
        [CONTENT_HANDSHAKE] | [CONTENT_HANDSHAKE, 3] => true,
        [CONTENT_HANDSHAKE, 3, minor] | [CONTENT_HANDSHAKE, 3, minor, _] => *minor <= 4,
        _ => false,
    }
}

/// An SSL 2.0 style ClientHello (two-byte length with the top bit set,
/// message type 1, an SSL 3.0 to TLS 1.2 version), as old clients send
/// to reach servers of any version. It has no extensions.
fn is_sslv2_client_hello(b: &[u8]) -> bool {
    match b {
        [hi, lo, 1, 3, minor, ..] if hi & 0x80 != 0 => {
            let len = (usize::from(hi & 0x7f) << 8) | usize::from(*lo);
            *minor <= 3 && len + 2 >= b.len() && len > 9
        }
        _ => false,
    }
}

/// `b` is a run of whole TLS records of the types that follow a handshake
/// (change cipher spec, alert, application data), of TLS 1.0 to 1.3
/// record versions; the last one may go on in the next segment.
fn is_record_run(b: &[u8]) -> bool {
    let mut pos = 0;
    while pos + RECORD_HEADER <= b.len() {
        let h = &b[pos..pos + RECORD_HEADER];
        let len = usize::from(u16::from_be_bytes([h[3], h[4]]));
        if !(CONTENT_CHANGE_CIPHER_SPEC..=CONTENT_APPLICATION_DATA).contains(&h[0])
            || h[0] == CONTENT_HANDSHAKE
            || h[1] != 3
            || !(1..=4).contains(&h[2])
            || len == 0
            || len > MAX_RECORD
        {
            return false;
        }
        pos += RECORD_HEADER + len;
    }
    pos > 0
}

/// `b` starts with a record holding (the start of) a ServerHello: its
/// version and session id length are checked when present.
fn is_server_hello(b: &[u8]) -> bool {
    if !is_handshake_record(b) || b.get(RECORD_HEADER) != Some(&SERVER_HELLO) {
        return false;
    }
    // type(1) len(3) version(2) random(32) session id length(1)
    let version_ok = match b.get(RECORD_HEADER + 4..RECORD_HEADER + 6) {
        Some(&[3, minor]) => minor <= 4,
        Some(_) => false,
        None => true,
    };
    let sid_ok = b.get(RECORD_HEADER + 38).is_none_or(|&n| n <= 32);
    version_ok && sid_ok
}

/// The handshake bytes carried by the records at the start of `stream`:
/// a slice of it when the first record holds all there is so far, else
/// the records' payloads copied into `scratch`. `None` when a record
/// other than a handshake one comes before the hello is whole.
fn handshake_bytes<'a>(stream: &'a [u8], scratch: &'a mut [u8]) -> Option<&'a [u8]> {
    let mut pos = 0;
    let mut n = 0;
    while pos + RECORD_HEADER <= stream.len() {
        if !is_handshake_record(&stream[pos..]) {
            return if n > 0 { Some(&scratch[..n]) } else { None };
        }
        let len = usize::from(u16::from_be_bytes([stream[pos + 3], stream[pos + 4]]));
        let start = pos + RECORD_HEADER;
        let end = (start + len).min(stream.len());
        if pos == 0 && end == stream.len() {
            return Some(&stream[start..end]);
        }
        let take = (end - start).min(scratch.len() - n);
        scratch[n..n + take].copy_from_slice(&stream[start..start + take]);
        n += take;
        pos = start + len;
    }
    Some(&scratch[..n])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_checks() {
        assert!(is_handshake_record(&[22, 3, 1, 0, 200]));
        assert!(!is_handshake_record(&[22, 3, 5, 0, 200]));
        assert!(!is_handshake_record(&[23, 3, 3, 0, 200]));
        assert!(!is_handshake_record(&[22, 3, 3, 0, 0]));
        assert!(!is_handshake_record(b"220 smtp.example.org ESMTP\r\n"));
        assert!(is_record_run(&[23, 3, 3, 0, 2, 9, 9, 23, 3, 3, 0, 9, 1]));
        assert!(!is_record_run(&[23, 3, 3, 0, 2, 9, 9, 99, 3, 3, 0, 9, 1]));
        assert!(!is_record_run(&[23, 3, 3, 0]));
    }
}
