//! Per-worker counters: packets and bytes per port, drops by reason, and a
//! log2 histogram of how long each poll that received packets took.
//!
//! Each worker is the only writer of its own counters (plain load + store on
//! relaxed atomics, no read-modify-write), and other threads only read them,
//! so counting costs the same as a plain increment. Workers add up a batch's
//! counts locally and publish once per batch.

use std::sync::atomic::{AtomicU64, Ordering};

/// The same layout as the shared counters file's histograms (64 power-of-two
/// buckets of `AtomicU64`, single writer), so the link thread copies it as is.
pub use patronus_shm::{HistogramSnapshot, Log2Histogram};

macro_rules! drop_reasons {
    ($( $(#[$doc:meta])* $name:ident = $label:literal, )*) => {
        /// Why a packet was dropped. Every drop in the engine is counted
        /// under one of these.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum DropReason { $( $(#[$doc])* $name, )* }

        impl DropReason {
            /// All reasons, in counter order.
            pub const ALL: &'static [DropReason] = &[$(DropReason::$name,)*];
            /// Number of reasons.
            pub const COUNT: usize = Self::ALL.len();
            /// Stable snake_case name (metrics labels, reports).
            pub const fn label(self) -> &'static str {
                match self { $(DropReason::$name => $label,)* }
            }
        }
    };
}

drop_reasons! {
    /// Frame shorter than an Ethernet header, or a truncated VLAN tag.
    EthTruncated = "eth_truncated",
    /// EtherType the engine does not handle.
    EthUnsupportedType = "eth_unsupported_type",
    /// Frame addressed to another station's MAC.
    EthNotForUs = "eth_not_for_us",
    /// VLAN with no interface configured on this port.
    VlanUnknown = "vlan_unknown",
    /// ARP packet malformed or not Ethernet/IPv4.
    ArpMalformed = "arp_malformed",
    /// ARP request for an address that is not ours (consumed, not an error).
    ArpNotForUs = "arp_not_for_us",
    /// IPv4 header shorter than 20 bytes or than the frame claims.
    Ipv4Truncated = "ipv4_truncated",
    /// IP version field is not 4.
    Ipv4BadVersion = "ipv4_bad_version",
    /// IHL below 5 or past the packet.
    Ipv4BadIhl = "ipv4_bad_ihl",
    /// Total length below the header or past the frame.
    Ipv4BadLength = "ipv4_bad_length",
    /// Header checksum does not verify.
    Ipv4BadChecksum = "ipv4_bad_checksum",
    /// Source address that must never appear on the wire (martian).
    Ipv4Martian = "ipv4_martian",
    /// TTL reached zero (time exceeded sent, rate allowing).
    TtlExpired = "ttl_expired",
    /// No route to the destination.
    NoRoute = "no_route",
    /// Route says blackhole / prohibit.
    Blackhole = "blackhole",
    /// Larger than the egress MTU with DF set (frag-needed sent), or an MTU
    /// too small to fragment into.
    MtuExceeded = "mtu_exceeded",
    /// Next hop did not answer ARP in time.
    ArpUnresolved = "arp_unresolved",
    /// Queue of packets awaiting ARP resolution was full.
    ArpQueueFull = "arp_queue_full",
    /// Addressed to us with a protocol we do not serve.
    LocalUnsupported = "local_unsupported",
    /// ICMP to us that we do not answer (or malformed).
    IcmpUnsupported = "icmp_unsupported",
    /// ICMP error suppressed by the rate limiter.
    IcmpRateLimited = "icmp_rate_limited",
    /// No free buffer to build a reply or error.
    NoBuffer = "no_buffer",
    /// Port's transmit queue was full.
    TxFull = "tx_full",
    /// Frame too large for a buffer, or an offload we cannot complete.
    RxOversize = "rx_oversize",
    /// Multicast/broadcast IPv4 destination that we do not forward.
    NotForwardable = "not_forwardable",
    /// Dropped by NAT (the `nat.*` counters say why: no session, filtered,
    /// pool exhausted, host limit, ...).
    Nat = "nat",
    /// Another worker's handoff ring was full.
    HandoffFull = "handoff_full",
    /// A handed-off packet that this worker does not own either (the two
    /// workers saw different NAT configurations for a moment).
    HandoffLoop = "handoff_loop",
    /// Dropped by a WireGuard tunnel (the tunnel's counters say why: bad
    /// MAC, replay, not an allowed IP, no session, ...).
    Wg = "wg",
    /// Routed into a tunnel whose peers' allowed IPs hold no match.
    WgNoPeer = "wg_no_peer",
    /// A WAN packet out of a tunnel that was malformed, failed FEC or
    /// decompression, or came with no `[wan]` to take it.
    WanBad = "wan_bad",
    /// A new flow to a VIP none of whose backends is up with a weight.
    LbNoBackend = "lb_no_backend",
    /// A DSR packet too big for its IP-in-IP header with DF set (an ICMP
    /// "fragmentation needed" went back to the client).
    LbTooBig = "lb_too_big",
    /// A fragment of a packet to a VIP (ports unknown: not balanced).
    LbFragment = "lb_fragment",
    /// A new NAT-mode flow to a VIP while the worker's pin table is full.
    LbTableFull = "lb_table_full",
    /// Punt path: over the per-worker rate.
    PuntRateLimited = "punt_rate_limited",
    /// Punt path: the kernel did not take the frame (TAP queue full).
    PuntFailed = "punt_failed",
    /// IPv6 header shorter than 40 bytes.
    Ipv6Truncated = "ipv6_truncated",
    /// IPv6 version field is not 6.
    Ipv6BadVersion = "ipv6_bad_version",
    /// Payload length past the frame.
    Ipv6BadLength = "ipv6_bad_length",
    /// Multicast, unspecified (when forwarding) or loopback source, or a
    /// loopback destination.
    Ipv6BadSource = "ipv6_bad_source",
    /// Extension headers that run past the packet or are out of order.
    Ipv6BadExtHeader = "ipv6_bad_ext_header",
    /// Hop limit reached zero (time exceeded sent, rate allowing).
    Ipv6HopLimit = "ipv6_hop_limit",
    /// No IPv6 route to the destination (unreachable sent).
    Ipv6NoRoute = "ipv6_no_route",
    /// Larger than the egress MTU (packet too big sent).
    Ipv6TooBig = "ipv6_too_big",
    /// Link-local source or destination that must not be forwarded.
    Ipv6NotForwardable = "ipv6_not_forwardable",
    /// To a multicast group the engine has not joined.
    Ipv6MulticastNotJoined = "ipv6_multicast_not_joined",
    /// Neighbor solicitation / advertisement malformed (RFC 4861 checks).
    Ipv6NdMalformed = "ipv6_nd_malformed",
    /// Neighbor solicitation for an address that is not ours (consumed).
    Ipv6NdNotForUs = "ipv6_nd_not_for_us",
    /// Next hop did not answer neighbor solicitations.
    Ipv6NdUnresolved = "ipv6_nd_unresolved",
    /// Queue of packets awaiting ND resolution was full (or the ND cache).
    Ipv6NdQueueFull = "ipv6_nd_queue_full",
    /// To us with a protocol we do not serve (and no punt path).
    Ipv6LocalUnsupported = "ipv6_local_unsupported",
    /// ICMPv6 to us that we do not answer (or bad checksum), no punt path.
    Ipv6IcmpUnsupported = "ipv6_icmp_unsupported",
    /// ICMPv6 error suppressed by the rate limiter.
    Ipv6IcmpRateLimited = "ipv6_icmp_rate_limited",
}

/// Counters of one port as seen by one worker.
#[derive(Debug, Default)]
pub struct PortCounters {
    pub rx_packets: AtomicU64,
    pub rx_bytes: AtomicU64,
    pub tx_packets: AtomicU64,
    pub tx_bytes: AtomicU64,
    /// Frames the port itself could not take (ring full, kernel refused).
    pub tx_errors: AtomicU64,
    /// Driver view, refreshed by the worker now and then: frames lost before
    /// the engine saw them, frames it could not hand over.
    pub rx_missed: AtomicU64,
    pub rx_errors: AtomicU64,
}

/// Adds `n` to a counter this thread alone writes.
#[inline]
pub fn bump(c: &AtomicU64, n: u64) {
    if n != 0 {
        c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
    }
}

/// Reads a counter.
#[inline]
pub fn read(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

/// All counters of one worker.
#[derive(Debug)]
pub struct WorkerCounters {
    pub ports: Vec<PortCounters>,
    pub drops: [AtomicU64; DropReason::COUNT],
    /// Bursts polled that returned packets, and ones that returned none.
    pub busy_polls: AtomicU64,
    pub idle_polls: AtomicU64,
    /// ICMP messages the engine generated (echo replies and errors).
    pub icmp_sent: AtomicU64,
    /// ARP requests sent and replies given.
    pub arp_requests_sent: AtomicU64,
    pub arp_replies_sent: AtomicU64,
    /// IPv4 fragments built for packets larger than the egress MTU.
    pub ipv4_fragments_sent: AtomicU64,
    /// Punt path: frames handed to the kernel (TAP), and frames the kernel
    /// sent out through the ports.
    pub punt_to_host: AtomicU64,
    pub punt_from_host: AtomicU64,
    /// Engine-clock times (ns) of the first and the latest burst that
    /// carried packets (0 = none yet).
    pub first_rx_ns: AtomicU64,
    pub last_rx_ns: AtomicU64,
    /// Duration (ns) of every poll that received packets: receive, the whole
    /// pipeline and transmit of that burst. Written by the worker only.
    pub poll_latency_ns: Log2Histogram,
    /// NAT counters ([`crate::nat::NAT_COUNTER_NAMES`] order) and live
    /// sessions (a gauge), copied from the worker's NAT after each poll.
    pub nat: [AtomicU64; crate::nat::NAT_COUNTER_NAMES.len()],
    pub nat_sessions: AtomicU64,
    /// Frames other workers handed to this one (NAT session owner).
    pub handoff_received: AtomicU64,
    /// Classification counters (`classify.*`, in
    /// `patronus_shm::classify_counters` order), copied from the worker's
    /// classifier at housekeeping.
    pub classify: [AtomicU64; crate::classify::CLASSIFY_COUNTER_COUNT],
    /// Load-balancer counters (`crate::lb::LB_COUNTER_NAMES` order; the
    /// first, `flows_active`, a gauge), copied at housekeeping.
    pub lb: [AtomicU64; crate::lb::LB_COUNTER_NAMES.len()],
    /// IPv6 ([`IPV6_COUNTER_NAMES`] order): neighbor solicitations and
    /// advertisements sent, ICMPv6 errors and echo replies sent, and two
    /// gauges of the IPv6 FIB this worker runs: its routes and the
    /// `route6.bin` number it holds.
    pub ipv6: [AtomicU64; IPV6_COUNTER_NAMES.len()],
}

/// Names of [`WorkerCounters::ipv6`], as exported (stats JSON, counters.shm).
pub const IPV6_COUNTER_NAMES: [&str; 6] = [
    "nd_solicits_sent",
    "nd_adverts_sent",
    "icmpv6_errors_sent",
    "icmpv6_echo_replies_sent",
    "fib6.routes",
    "route6.generation",
];
/// Indices into [`WorkerCounters::ipv6`].
pub const ND_SOLICITS_SENT: usize = 0;
pub const ND_ADVERTS_SENT: usize = 1;
pub const ICMPV6_ERRORS_SENT: usize = 2;
pub const ICMPV6_ECHO_REPLIES_SENT: usize = 3;
pub const FIB6_ROUTES: usize = 4;
pub const ROUTE6_GENERATION: usize = 5;

impl WorkerCounters {
    /// Zeroed counters for `nports` ports. (WireGuard counters live in
    /// the WireGuard plan: their names change with the tunnels.)
    pub fn new(nports: usize) -> Self {
        WorkerCounters {
            ports: (0..nports).map(|_| PortCounters::default()).collect(),
            drops: std::array::from_fn(|_| AtomicU64::new(0)),
            busy_polls: AtomicU64::new(0),
            idle_polls: AtomicU64::new(0),
            icmp_sent: AtomicU64::new(0),
            arp_requests_sent: AtomicU64::new(0),
            arp_replies_sent: AtomicU64::new(0),
            ipv4_fragments_sent: AtomicU64::new(0),
            punt_to_host: AtomicU64::new(0),
            punt_from_host: AtomicU64::new(0),
            first_rx_ns: AtomicU64::new(0),
            last_rx_ns: AtomicU64::new(0),
            poll_latency_ns: Log2Histogram::default(),
            nat: std::array::from_fn(|_| AtomicU64::new(0)),
            nat_sessions: AtomicU64::new(0),
            classify: std::array::from_fn(|_| AtomicU64::new(0)),
            lb: std::array::from_fn(|_| AtomicU64::new(0)),
            ipv6: std::array::from_fn(|_| AtomicU64::new(0)),
            handoff_received: AtomicU64::new(0),
        }
    }

    /// Drops counted under `r`.
    pub fn drop_count(&self, r: DropReason) -> u64 {
        read(&self.drops[r as usize])
    }

    /// All drops.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().map(read).sum()
    }
}

/// Drop counts of one batch, kept on the stack and published at its end.
#[derive(Debug, Clone)]
pub struct DropTally {
    counts: [u32; DropReason::COUNT],
    any: bool,
}

impl Default for DropTally {
    fn default() -> Self {
        DropTally {
            counts: [0; DropReason::COUNT],
            any: false,
        }
    }
}

impl DropTally {
    /// Counts one drop.
    #[inline]
    pub fn add(&mut self, r: DropReason) {
        self.counts[r as usize] += 1;
        self.any = true;
    }

    /// Adds the tally into the worker's counters and resets it.
    pub fn publish(&mut self, into: &WorkerCounters) {
        if !self.any {
            return;
        }
        for (i, c) in self.counts.iter_mut().enumerate() {
            bump(&into.drops[i], *c as u64);
            *c = 0;
        }
        self.any = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for r in DropReason::ALL {
            assert!(seen.insert(r.label()), "duplicate label {}", r.label());
        }
        assert_eq!(
            DropReason::ALL[DropReason::NoRoute as usize],
            DropReason::NoRoute
        );
    }

    #[test]
    fn poll_latency_buckets_by_power_of_two() {
        let c = WorkerCounters::new(0);
        c.poll_latency_ns.record(1500);
        c.poll_latency_ns.record(1024);
        c.poll_latency_ns.record(3);
        let s = c.poll_latency_ns.snapshot();
        assert_eq!(s.count, 3);
        assert_eq!(s.sum, 2527);
        assert_eq!(s.buckets[11], 2, "1024..2047");
        assert_eq!(s.buckets[2], 1, "2..3");
    }

    #[test]
    fn tally_publishes_and_resets() {
        let c = WorkerCounters::new(1);
        let mut t = DropTally::default();
        t.add(DropReason::NoRoute);
        t.add(DropReason::NoRoute);
        t.publish(&c);
        t.publish(&c);
        assert_eq!(c.drop_count(DropReason::NoRoute), 2);
        assert_eq!(c.total_drops(), 2);
    }
}
