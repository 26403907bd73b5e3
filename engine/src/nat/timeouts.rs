//! Idle timeouts per session class and where each default comes from.

/// The timer class of a session: every session sits in exactly one class,
/// and all sessions of a class share its timeout, so a per-class list in
/// last-use order is also in expiry order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum TimerClass {
    /// TCP before a SYN was seen in both directions (also mid-stream pickup).
    TcpInitial = 0,
    TcpEstablished = 1,
    /// TCP after FINs in both directions or a RST.
    TcpTransitory = 2,
    Udp = 3,
    IcmpQuery = 4,
}

impl TimerClass {
    pub const COUNT: usize = 5;
    pub const ALL: [TimerClass; 5] = [
        TimerClass::TcpInitial,
        TimerClass::TcpEstablished,
        TimerClass::TcpTransitory,
        TimerClass::Udp,
        TimerClass::IcmpQuery,
    ];
}

/// Idle timeouts in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// RFC 5382 REQ-5: an established connection's idle timeout must be at
    /// least 2 h 4 min (7440 s).
    pub tcp_established_secs: u32,
    /// RFC 5382 REQ-5: the partially-open / closing ("transitory") timeout
    /// must be at least 4 min (240 s, i.e. 2 MSL).
    pub tcp_transitory_secs: u32,
    /// SYN seen one way only (RFC 5382 counts this as "partially open", so
    /// its 4 min transitory minimum applies).
    pub tcp_initial_secs: u32,
    /// RFC 4787 REQ-5: at least 2 min, 5 min (300 s) recommended.
    pub udp_secs: u32,
    /// RFC 5508 REQ-1: ICMP query mappings time out after at least 60 s.
    pub icmp_query_secs: u32,
    /// How long the state from a first fragment translates later fragments
    /// of the same datagram (ours; no RFC: fragments follow within
    /// milliseconds, and a short life limits confusion on IP ident reuse).
    pub fragment_secs: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            tcp_established_secs: 7440,
            tcp_transitory_secs: 240,
            tcp_initial_secs: 240,
            udp_secs: 300,
            icmp_query_secs: 60,
            fragment_secs: 2,
        }
    }
}

const NANOS_PER_SEC: u64 = 1_000_000_000;

impl Timeouts {
    /// Timeout of `class` in nanoseconds.
    #[inline]
    pub fn nanos(&self, class: TimerClass) -> u64 {
        let s = match class {
            TimerClass::TcpInitial => self.tcp_initial_secs,
            TimerClass::TcpEstablished => self.tcp_established_secs,
            TimerClass::TcpTransitory => self.tcp_transitory_secs,
            TimerClass::Udp => self.udp_secs,
            TimerClass::IcmpQuery => self.icmp_query_secs,
        };
        u64::from(s) * NANOS_PER_SEC
    }

    #[inline]
    pub fn fragment_nanos(&self) -> u64 {
        u64::from(self.fragment_secs) * NANOS_PER_SEC
    }
}
