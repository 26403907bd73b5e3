//! HTTP/1.x on any TCP port: a request line (`METHOD target HTTP/1.x`,
//! including proxy requests with an absolute URI and `CONNECT host:port`)
//! or a status line (`HTTP/1.x NNN`). The name is the request's `Host`
//! header, found by a streaming scan of the request that survives any
//! segmentation; without one, the host of an absolute or CONNECT target.
//!
//! Also holds the small byte-text helpers the other text dissectors share.

use super::Ctx;
use crate::class::Class;
use crate::view::{AppName, Dir, PacketView, Step, Verdict, L4};

/// Request methods recognised (RFC 9110 and WebDAV).
const METHODS: [&[u8]; 16] = [
    b"GET",
    b"POST",
    b"HEAD",
    b"PUT",
    b"DELETE",
    b"OPTIONS",
    b"CONNECT",
    b"PATCH",
    b"TRACE",
    b"PROPFIND",
    b"PROPPATCH",
    b"MKCOL",
    b"COPY",
    b"MOVE",
    b"LOCK",
    b"UNLOCK",
];
/// Longest method above plus one.
const METHOD_MAX: usize = 10;
/// Bytes of the request line kept (method, target start: enough for a host).
const LINE_KEEP: usize = 128;
/// Bytes of a Host value kept (a name is cut to [`crate::view::APP_NAME_LEN`]).
const HOST_KEEP: usize = 128;
/// Request packets read after the request line started before giving up on
/// finding a Host header (the flow is HTTP all the same).
const REQUEST_PACKETS: u8 = 8;
/// Packets awaited after a response came first (capture started mid-flow)
/// for a request that carries the Host.
const AFTER_RESPONSE_PACKETS: u8 = 6;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Phase {
    /// Nothing seen yet.
    #[default]
    Start,
    /// Scanning a request (`req_dir`).
    Request,
    /// A status line came first; waiting for a request the other way.
    ResponseFirst,
}

/// Where the streaming scanner is within the request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Scan {
    /// In the request line.
    #[default]
    RequestLine,
    /// At the start of a header line; `n` bytes of `host:` matched.
    LineStart(u8),
    /// Skipping the rest of a header line.
    SkipLine,
    /// Skipping blanks after `Host:`.
    HostBlank,
    /// Copying the Host value.
    HostValue,
    /// A line ended with CR; LF expected (an empty line if `empty`).
    Cr { empty: bool },
}

#[derive(Clone, Debug)]
pub struct State {
    phase: Phase,
    req_dir: Dir,
    next_seq: u32,
    /// Payload packets seen in the current phase.
    packets: u8,
    scan: Scan,
    line: [u8; LINE_KEEP],
    line_len: u16,
    /// Last bytes of the request line (` HTTP/1.x`).
    tail: [u8; 9],
    host: [u8; HOST_KEEP],
    host_len: u8,
}

impl Default for State {
    fn default() -> State {
        State {
            phase: Phase::Start,
            req_dir: Dir::Orig,
            next_seq: 0,
            packets: 0,
            scan: Scan::RequestLine,
            line: [0; LINE_KEEP],
            line_len: 0,
            tail: [0; 9],
            host: [0; HOST_KEEP],
            host_len: 0,
        }
    }
}

impl State {
    pub fn inspect(&mut self, _ctx: &mut Ctx, p: &PacketView<'_>) -> Step {
        if p.l4 != L4::Tcp {
            return Step::NotMine;
        }
        let b = p.payload;
        match self.phase {
            Phase::Start => {
                if is_filler(b) {
                    return Step::More;
                }
                if let Some(step) = self.status_line(b, p.dir) {
                    return step;
                }
                self.start_request(p)
            }
            Phase::ResponseFirst => {
                self.packets = self.packets.saturating_add(1);
                if p.dir == self.req_dir && !is_filler(b) {
                    let step = self.start_request(p);
                    // Whatever this is, the flow already showed a response.
                    return match step {
                        Step::NotMine => self.done(None),
                        s => s,
                    };
                }
                if self.packets >= AFTER_RESPONSE_PACKETS {
                    return self.done(None);
                }
                Step::More
            }
            Phase::Request => {
                if is_filler(b) {
                    return Step::More;
                }
                if p.dir != self.req_dir {
                    // The server answered: the request is complete.
                    return if self.scan == Scan::RequestLine {
                        self.request_line_unfinished()
                    } else {
                        self.done(self.found_host())
                    };
                }
                self.packets = self.packets.saturating_add(1);
                let gap = p.tcp_seq.wrapping_sub(self.next_seq) as i32;
                let bytes = if gap == 0 {
                    b
                } else if gap < 0 && gap.unsigned_abs() < b.len() as u32 {
                    &b[gap.unsigned_abs() as usize..]
                } else if gap < 0 {
                    return Step::More; // a retransmission
                } else if self.scan == Scan::RequestLine {
                    return self.request_line_unfinished();
                } else {
                    return self.done(self.found_host()); // lost a segment
                };
                self.next_seq = self.next_seq.wrapping_add(bytes.len() as u32);
                let step = self.scan_request(bytes);
                if step == Step::More && self.packets >= REQUEST_PACKETS {
                    return if self.scan == Scan::RequestLine {
                        self.request_line_unfinished()
                    } else {
                        self.done(self.found_host())
                    };
                }
                step
            }
        }
    }

    /// `HTTP/1.x NNN`: a response came first.
    fn status_line(&mut self, b: &[u8], dir: Dir) -> Option<Step> {
        const V: &[u8] = b"HTTP/1.";
        if b.len() < V.len() {
            // "HTTP/" and "HEAD " share a prefix: let the request scan decide.
            return None;
        }
        if !b.starts_with(V) {
            return None;
        }
        let ok = b.len() >= 13
            && matches!(b[7], b'0' | b'1')
            && b[8] == b' '
            && b[9..12].iter().all(u8::is_ascii_digit);
        if !ok {
            return Some(Step::NotMine);
        }
        self.phase = Phase::ResponseFirst;
        self.req_dir = match dir {
            Dir::Orig => Dir::Reply,
            Dir::Reply => Dir::Orig,
        };
        self.packets = 0;
        Some(Step::More)
    }

    /// First packet of a request (direction `p.dir`).
    fn start_request(&mut self, p: &PacketView<'_>) -> Step {
        self.phase = Phase::Request;
        self.req_dir = p.dir;
        self.packets = 1;
        self.next_seq = p.tcp_seq.wrapping_add(p.payload.len() as u32);
        self.scan = Scan::RequestLine;
        self.line_len = 0;
        self.tail = [0; 9];
        self.host_len = 0;
        self.scan_request(p.payload)
    }

    /// Feeds request bytes to the streaming scanner.
    fn scan_request(&mut self, b: &[u8]) -> Step {
        for &c in b {
            match self.scan {
                Scan::RequestLine => {
                    if c == b'\n' || c == b'\r' {
                        if !self.request_line_ok() {
                            return Step::NotMine;
                        }
                        self.scan = if c == b'\r' {
                            Scan::Cr { empty: false }
                        } else {
                            Scan::LineStart(0)
                        };
                        continue;
                    }
                    if c < 0x20 && c != b'\t' || c == 0x7f {
                        return Step::NotMine;
                    }
                    let n = usize::from(self.line_len);
                    if n < LINE_KEEP {
                        self.line[n] = c;
                    }
                    self.line_len = self.line_len.saturating_add(1);
                    self.tail.copy_within(1.., 0);
                    self.tail[8] = c;
                    if !self.method_ok_so_far() {
                        return Step::NotMine;
                    }
                }
                Scan::Cr { empty } => {
                    if c != b'\n' {
                        // A bare CR: treat it as the line end it meant.
                        return self.done(self.found_host());
                    }
                    if empty {
                        return self.done(self.found_host());
                    }
                    self.scan = Scan::LineStart(0);
                }
                Scan::LineStart(n) => {
                    const HOST: &[u8] = b"host:";
                    if n == 0 && (c == b'\r' || c == b'\n') {
                        if c == b'\n' {
                            return self.done(self.found_host());
                        }
                        self.scan = Scan::Cr { empty: true };
                    } else if c.to_ascii_lowercase() == HOST[usize::from(n)] {
                        self.scan = if usize::from(n) + 1 == HOST.len() {
                            self.host_len = 0;
                            Scan::HostBlank
                        } else {
                            Scan::LineStart(n + 1)
                        };
                    } else {
                        self.scan = self.line_end_or(c, Scan::SkipLine);
                    }
                }
                Scan::SkipLine => self.scan = self.line_end_or(c, Scan::SkipLine),
                Scan::HostBlank | Scan::HostValue => {
                    if c == b' ' || c == b'\t' {
                        if self.scan == Scan::HostValue {
                            self.scan = Scan::SkipLine;
                        }
                    } else if c == b'\r' || c == b'\n' {
                        if self.host_len > 0 {
                            return self.done(self.found_host());
                        }
                        self.scan = self.line_end_or(c, Scan::SkipLine);
                    } else {
                        self.scan = Scan::HostValue;
                        let n = usize::from(self.host_len);
                        if n < HOST_KEEP {
                            self.host[n] = c;
                            self.host_len += 1;
                        }
                    }
                }
            }
            if self.scan == Scan::SkipLine && self.host_len > 0 {
                // The Host value ended at a blank: it is complete.
                return self.done(self.found_host());
            }
        }
        Step::More
    }

    fn line_end_or(&self, c: u8, other: Scan) -> Scan {
        match c {
            b'\r' => Scan::Cr { empty: false },
            b'\n' => Scan::LineStart(0),
            _ => other,
        }
    }

    /// While the method is being read: only capitals, a known method at
    /// the first blank.
    fn method_ok_so_far(&self) -> bool {
        let n = usize::from(self.line_len);
        if n > METHOD_MAX + 1 {
            return true; // checked when its blank came
        }
        let kept = &self.line[..n.min(LINE_KEEP)];
        match kept.iter().position(|&c| c == b' ') {
            Some(sp) => METHODS.contains(&&kept[..sp]),
            None => n <= METHOD_MAX && METHODS.iter().any(|m| m.starts_with(kept)),
        }
    }

    /// At the request line's end: `METHOD SP target SP HTTP/1.x`.
    fn request_line_ok(&self) -> bool {
        let n = usize::from(self.line_len);
        let kept = &self.line[..n.min(LINE_KEEP)];
        let Some(sp) = kept.iter().position(|&c| c == b' ') else {
            return false;
        };
        if !METHODS.contains(&&kept[..sp]) || n < sp + 1 + 1 + 9 {
            return false;
        }
        self.tail[..8] == *b" HTTP/1." && matches!(self.tail[8], b'0' | b'1')
    }

    /// The request line never ended within the packets read: HTTP if it
    /// started with a method and a target, with less confidence.
    fn request_line_unfinished(&self) -> Step {
        let n = usize::from(self.line_len).min(LINE_KEEP);
        let kept = &self.line[..n];
        match kept.iter().position(|&c| c == b' ') {
            Some(sp) if METHODS.contains(&&kept[..sp]) && n > sp + 1 => Step::Done(Verdict {
                class: Class::Http,
                name: self.target_host(),
                confidence: 0.8,
            }),
            _ => Step::NotMine,
        }
    }

    /// The Host header (port removed), else the target's host.
    fn found_host(&self) -> Option<AppName> {
        let h = &self.host[..usize::from(self.host_len)];
        if !h.is_empty() {
            return AppName::new(strip_port(h));
        }
        self.target_host()
    }

    /// `CONNECT host:port` or an absolute `scheme://host[:port]/…` target.
    fn target_host(&self) -> Option<AppName> {
        let n = usize::from(self.line_len).min(LINE_KEEP);
        let kept = &self.line[..n];
        let sp = kept.iter().position(|&c| c == b' ')?;
        let target = &kept[sp + 1..];
        let target = &target[..target
            .iter()
            .position(|&c| c == b' ')
            .unwrap_or(target.len())];
        let auth = if &kept[..sp] == b"CONNECT" {
            target
        } else {
            let at = find(target, b"://")?;
            let rest = &target[at + 3..];
            let end = rest
                .iter()
                .position(|&c| matches!(c, b'/' | b'?' | b'#'))
                .unwrap_or(rest.len());
            &rest[..end]
        };
        // Drop userinfo.
        let auth = match auth.iter().rposition(|&c| c == b'@') {
            Some(i) => &auth[i + 1..],
            None => auth,
        };
        AppName::new(strip_port(auth))
    }

    fn done(&self, name: Option<AppName>) -> Step {
        Step::Done(Verdict::sure(Class::Http, name))
    }
}

/// `host:port` → `host` (also `[v6]:port` → `[v6]`); a bare IPv6 literal
/// is kept whole.
fn strip_port(h: &[u8]) -> &[u8] {
    if let Some(i) = h.iter().rposition(|&c| c == b':') {
        let port = &h[i + 1..];
        let colons = h.iter().filter(|&&c| c == b':').count();
        let bracketed = h.first() == Some(&b'[') && i > 0 && h[i - 1] == b']';
        if port.iter().all(u8::is_ascii_digit) && (colons == 1 || bracketed) {
            return &h[..i];
        }
    }
    h
}

/// A payload that carries nothing: a few zero bytes (Ethernet padding or
/// a keep-alive some stacks send); the text dissectors look past it.
pub(crate) fn is_filler(b: &[u8]) -> bool {
    !b.is_empty() && b.len() <= 6 && b.iter().all(|&c| c == 0)
}

/// First position of `needle` in `hay`.
pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Whether `hay` contains `needle` (ASCII, case-insensitive).
pub(crate) fn contains_ci(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && hay.len() >= needle.len()
        && hay
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
}

/// Whether `b` starts with `prefix` (ASCII, case-insensitive).
pub(crate) fn starts_with_ci(b: &[u8], prefix: &[u8]) -> bool {
    b.len() >= prefix.len() && b[..prefix.len()].eq_ignore_ascii_case(prefix)
}
