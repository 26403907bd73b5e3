//! What a dissector is given (one packet of a flow) and what it answers.

use crate::class::Class;

/// Transport protocol of a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum L4 {
    Tcp,
    Udp,
}

/// Direction of a packet within its flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dir {
    /// From the endpoint that sent the flow's first packet (the client).
    Orig,
    /// Towards it (the server's answers).
    Reply,
}

/// One packet of a flow as the dissectors see it. Addresses are IPv4 as
/// `u32` or IPv6 as `u128` mapped into [`std::net::IpAddr`] only where a
/// dissector needs them (FTP data expectations).
#[derive(Clone, Copy, Debug)]
pub struct PacketView<'a> {
    pub l4: L4,
    pub dir: Dir,
    /// Source and destination of this packet (not of the flow).
    pub src: std::net::IpAddr,
    pub dst: std::net::IpAddr,
    pub sport: u16,
    pub dport: u16,
    /// The L4 payload (may be empty: a bare TCP ACK).
    pub payload: &'a [u8],
    /// TCP sequence number of the payload's first byte (0 for UDP).
    pub tcp_seq: u32,
    /// TCP flags (0 for UDP).
    pub tcp_flags: u8,
}

/// Longest application name kept (longer names are cut, at a character
/// boundary).
pub const APP_NAME_LEN: usize = 96;

/// An application name (SNI, Host, DNS query name) kept inline: a flow's
/// state holds one without allocating.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AppName {
    len: u8,
    bytes: [u8; APP_NAME_LEN],
}

impl AppName {
    /// `s` lower-cased, non-printable bytes refused (None), cut to
    /// [`APP_NAME_LEN`]. Empty names are None.
    pub fn new(s: &[u8]) -> Option<AppName> {
        if s.is_empty() || s.iter().any(|b| !(0x21..0x7f).contains(b)) {
            return None;
        }
        let n = s.len().min(APP_NAME_LEN);
        let mut bytes = [0u8; APP_NAME_LEN];
        for (d, b) in bytes.iter_mut().zip(&s[..n]) {
            *d = b.to_ascii_lowercase();
        }
        Some(AppName {
            len: n as u8,
            bytes,
        })
    }

    pub fn as_str(&self) -> &str {
        // Only printable ASCII is ever stored.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

impl std::fmt::Debug for AppName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl std::fmt::Display for AppName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a flow was found to be.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Verdict {
    pub class: Class,
    pub name: Option<AppName>,
    /// 0..=1: how sure the dissector is (a full protocol parse is 1.0; a
    /// port or a weak pattern less).
    pub confidence: f32,
}

impl Verdict {
    pub fn sure(class: Class, name: Option<AppName>) -> Verdict {
        Verdict {
            class,
            name,
            confidence: 1.0,
        }
    }
}

/// A dissector's answer to one packet.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Step {
    /// Could still be mine: show me the flow's next packets.
    More,
    /// It is mine.
    Done(Verdict),
    /// It is not mine: do not call me again for this flow.
    NotMine,
}
