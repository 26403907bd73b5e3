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
use crate::view::{Dir, PacketView, Step, Verdict, L4};

/// Bytes of the client's stream kept to find the server name in.
pub const CLIENT_BYTES: usize = 4096;
/// Client segments looked at before settling for tls without a name.
const MAX_CLIENT_SEGMENTS: u8 = 8;
/// TLS record header: type, version, length.
const RECORD_HEADER: usize = 5;
const CONTENT_HANDSHAKE: u8 = 22;
const SERVER_HELLO: u8 = 2;
/// Largest record (2^14 plus the expansion TLS allows).
const MAX_RECORD: usize = 16384 + 2048;

#[derive(Clone, Debug, Default)]
pub struct State {
    /// The ClientHello's direction and first sequence number, once seen.
    client: Option<(Dir, u32)>,
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
                Step::Done(tls(None))
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
        if !is_handshake_record(b) {
            return Step::NotMine;
        }
        match b.get(RECORD_HEADER) {
            Some(&SERVER_HELLO) if is_server_hello(b) => Step::Done(tls(None)),
            // The record header alone may come in a segment of its own.
            Some(&CLIENT_HELLO) | None => {
                self.client = Some((p.dir, p.tcp_seq));
                self.segments = 1;
                self.stream.insert(0, b);
                self.progress()
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
            Hello::Sni(name) => Step::Done(tls(name)),
            Hello::Invalid => Step::NotMine,
            Hello::Incomplete if self.stream.is_full() => Step::Done(tls(None)),
            Hello::Incomplete if self.segments >= MAX_CLIENT_SEGMENTS => {
                Step::Done(tls(None))
            }
            Hello::Incomplete => Step::More,
        }
    }
}

fn tls(name: Option<crate::view::AppName>) -> Verdict {
    Verdict::sure(Class::Tls, name)
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
    }
}
