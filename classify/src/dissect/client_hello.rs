//! What the TLS, QUIC and DTLS dissectors share: the ClientHello parser
//! (server name from the `server_name` extension, read from a prefix of
//! the message) and a bounded inline reassembly buffer that puts a byte
//! stream's pieces back in order by offset.

use crate::view::AppName;

/// What a (possibly truncated) ClientHello says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hello {
    /// The bytes so far are a valid start; the server name (if any) lies
    /// further on.
    Incomplete,
    /// Not a ClientHello.
    Invalid,
    /// A ClientHello, read far enough: its server name, if it has one.
    Sni(Option<AppName>),
}

/// Handshake type of a ClientHello.
pub(crate) const CLIENT_HELLO: u8 = 1;
/// `server_name` extension type.
const EXT_SERVER_NAME: u16 = 0;
/// `host_name` entry of a server name list.
const NAME_TYPE_HOST: u8 = 0;

/// A bounds-checked reader; `None` means "ran out of bytes".
struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn u8(&mut self) -> Option<u8> {
        let v = *self.b.get(self.pos)?;
        self.pos += 1;
        Some(v)
    }

    fn u16(&mut self) -> Option<u16> {
        let s = self.take(2)?;
        Some(u16::from_be_bytes([s[0], s[1]]))
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.b.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }
}

/// Reads a ClientHello handshake message from its first bytes `hs` (type,
/// 24-bit length, body; for DTLS, `dtls` set, the 12-byte DTLS handshake
/// header and a cookie after the session id). `hs` may hold only a prefix
/// of the message: while the server name may still come, the answer is
/// `Incomplete`.
pub(crate) fn client_hello_sni(hs: &[u8], dtls: bool) -> Hello {
    let header = if dtls { 12 } else { 4 };
    if hs.is_empty() {
        return Hello::Incomplete;
    }
    if hs[0] != CLIENT_HELLO {
        return Hello::Invalid;
    }
    if hs.len() < header {
        return Hello::Incomplete;
    }
    let msg_len = u24(&hs[1..4]);
    let mut body_len = msg_len;
    if dtls {
        // A first fragment only: its length bounds what can be read.
        if u24(&hs[6..9]) != 0 {
            return Hello::Invalid;
        }
        let frag_len = u24(&hs[9..12]);
        if frag_len > msg_len {
            return Hello::Invalid;
        }
        body_len = frag_len;
    }
    let have = hs.len() - header;
    let truncated = have < body_len;
    let body = &hs[header..header + body_len.min(have)];
    match parse_body(body, dtls, !truncated) {
        Some(v) => v,
        // Ran out of bytes: fine if the message goes on beyond `hs`.
        None if truncated => Hello::Incomplete,
        None => Hello::Invalid,
    }
}

/// The body after the handshake header (`complete`: all of it). `None`:
/// ran out of bytes before an answer.
fn parse_body(body: &[u8], dtls: bool, complete: bool) -> Option<Hello> {
    let mut r = Reader { b: body, pos: 0 };
    let version = r.u16()?;
    let major_ok = if dtls {
        version >> 8 == 0xfe
    } else {
        version >> 8 == 3 && version & 0xff <= 4
    };
    if !major_ok {
        return Some(Hello::Invalid);
    }
    r.take(32)?; // random
    let sid = r.u8()?;
    if sid > 32 {
        return Some(Hello::Invalid);
    }
    r.take(usize::from(sid))?;
    if dtls {
        let cookie = r.u8()?;
        r.take(usize::from(cookie))?;
    }
    let suites = r.u16()?;
    if suites < 2 || suites % 2 != 0 {
        return Some(Hello::Invalid);
    }
    r.take(usize::from(suites))?;
    let comp = r.u8()?;
    if comp == 0 {
        return Some(Hello::Invalid);
    }
    r.take(usize::from(comp))?;
    if r.pos == body.len() {
        // No extensions at all (only when the body really ends here).
        return if complete {
            Some(Hello::Sni(None))
        } else {
            None
        };
    }
    let ext_total = usize::from(r.u16()?);
    let ext_end = r.pos + ext_total;
    while r.pos < ext_end {
        let ty = r.u16()?;
        let len = usize::from(r.u16()?);
        if r.pos + len > ext_end {
            return Some(Hello::Invalid);
        }
        if ty == EXT_SERVER_NAME {
            let ext = r.take(len)?;
            return Some(Hello::Sni(server_name(ext)));
        }
        r.take(len)?;
    }
    Some(Hello::Sni(None))
}

/// The host name in a `server_name` extension's data.
fn server_name(ext: &[u8]) -> Option<AppName> {
    let mut r = Reader { b: ext, pos: 0 };
    let list = usize::from(r.u16()?);
    let end = (r.pos + list).min(ext.len());
    while r.pos < end {
        let ty = r.u8()?;
        let len = usize::from(r.u16()?);
        let name = r.take(len)?;
        if ty == NAME_TYPE_HOST {
            return AppName::new(name);
        }
    }
    None
}

fn u24(b: &[u8]) -> usize {
    (usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2])
}

/// Most separate pieces a [`Reasm`] keeps track of.
const PIECES: usize = 8;

/// The first `N` bytes of a byte stream, put together from pieces that
/// may come out of order, repeat or overlap. Pieces beyond `N` are cut;
/// a piece that would make more than [`PIECES`] separate runs is dropped
/// (it can come again).
#[derive(Clone)]
pub(crate) struct Reasm<const N: usize> {
    buf: [u8; N],
    /// Filled runs `[start, end)`, sorted, disjoint and not adjacent.
    runs: [(u16, u16); PIECES],
    nruns: u8,
}

impl<const N: usize> Default for Reasm<N> {
    fn default() -> Self {
        Reasm {
            buf: [0; N],
            runs: [(0, 0); PIECES],
            nruns: 0,
        }
    }
}

impl<const N: usize> std::fmt::Debug for Reasm<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reasm")
            .field("runs", &&self.runs[..usize::from(self.nruns)])
            .finish()
    }
}

impl<const N: usize> Reasm<N> {
    /// Puts `data`, found at stream offset `offset`, in place. Returns
    /// false when it had to be dropped (too many separate runs).
    pub(crate) fn insert(&mut self, offset: u64, data: &[u8]) -> bool {
        const { assert!(N <= u16::MAX as usize) };
        if offset >= N as u64 || data.is_empty() {
            return true;
        }
        let start = offset as usize;
        let end = start.saturating_add(data.len()).min(N);
        let (mut s, mut e) = (start as u16, end as u16);
        let mut out = [(0u16, 0u16); PIECES];
        let mut k = 0;
        let mut placed = false;
        for &(a, b) in &self.runs[..usize::from(self.nruns)] {
            if b < s {
                if k == PIECES {
                    return false;
                }
                out[k] = (a, b);
                k += 1;
            } else if e < a {
                if !placed {
                    if k == PIECES {
                        return false;
                    }
                    out[k] = (s, e);
                    k += 1;
                    placed = true;
                }
                if k == PIECES {
                    return false;
                }
                out[k] = (a, b);
                k += 1;
            } else {
                s = s.min(a);
                e = e.max(b);
            }
        }
        if !placed {
            if k == PIECES {
                return false;
            }
            out[k] = (s, e);
            k += 1;
        }
        self.buf[start..end].copy_from_slice(&data[..end - start]);
        self.runs = out;
        self.nruns = k as u8;
        true
    }

    /// The bytes known from offset 0 on without a gap.
    pub(crate) fn prefix(&self) -> &[u8] {
        match self.runs[..usize::from(self.nruns)].first() {
            Some(&(0, e)) => &self.buf[..usize::from(e)],
            _ => &[],
        }
    }

    /// True when the prefix fills the whole buffer: nothing more can be
    /// learnt.
    pub(crate) fn is_full(&self) -> bool {
        self.prefix().len() == N
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasm_puts_pieces_in_order() {
        let mut r = Reasm::<16>::default();
        assert!(r.insert(4, b"efgh"));
        assert_eq!(r.prefix(), b"");
        assert!(r.insert(10, b"klmnopqrstuv"));
        assert!(r.insert(0, b"abcd"));
        assert_eq!(r.prefix(), b"abcdefgh");
        assert!(r.insert(6, b"ghij"));
        assert_eq!(r.prefix(), b"abcdefghijklmnop");
        assert!(r.is_full());
    }

    #[test]
    fn reasm_drops_a_piece_beyond_its_run_budget() {
        let mut r = Reasm::<64>::default();
        for i in 0..PIECES as u64 {
            assert!(r.insert(2 + 4 * i, b"x"));
        }
        assert!(!r.insert(60, b"y"));
        // Merging with an existing run still works when full.
        assert!(r.insert(0, b"abc"));
        assert_eq!(r.prefix(), b"abc");
    }
}
