//! WireGuard counters: per peer and per tunnel, plain integers (the owning
//! worker is the only writer), with name lists for export like
//! `nat::NAT_COUNTER_NAMES`. Every packet the tunnel refuses is counted
//! under a [`WgDrop`] reason.

/// Why the tunnel refused a packet. `Copy`, so the pipeline can count it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WgDrop {
    /// Outer headers wrong (not IPv4/UDP to the listen port, bad checksum,
    /// fragment), unknown message type or length, or an inner packet that
    /// is not IP or is shorter than its own length field.
    Malformed,
    /// No peer with this receiver index or public key.
    NoPeer,
    /// A handshake MAC1 or a data packet's AEAD tag did not verify (or a
    /// handshake could not be decrypted with our key).
    BadMac,
    /// Data counter already seen or behind the replay window; or a
    /// handshake initiation with a timestamp not newer than the last one.
    Replay,
    /// Data for a session we do not have (expired after REJECT_AFTER_TIME,
    /// or never made); or an inner packet to send while no session is up
    /// (WireGuard would queue it; we drop it and start a handshake).
    NoSession,
    /// The decrypted packet's source is not in the peer's allowed IPs.
    NotAllowedIp,
    /// A handshake message the state machine refused (unexpected response,
    /// wrong index, ...).
    HandshakeFailed,
    /// A handshake refused because the tunnel is under load (no source
    /// address to send a cookie to).
    UnderLoad,
    /// Nothing to send to: the peer has no endpoint yet.
    NoEndpoint,
    /// The encapsulated packet would not fit in the buffer.
    TooBig,
}

/// Labels of [`WgDrop`], indexed by [`WgDrop::index`].
pub const WG_DROP_NAMES: [&str; 10] = [
    "malformed",
    "no_peer",
    "bad_mac",
    "replay",
    "no_session",
    "not_allowed_ip",
    "handshake_failed",
    "under_load",
    "no_endpoint",
    "too_big",
];

impl WgDrop {
    pub const ALL: [WgDrop; 10] = [
        WgDrop::Malformed,
        WgDrop::NoPeer,
        WgDrop::BadMac,
        WgDrop::Replay,
        WgDrop::NoSession,
        WgDrop::NotAllowedIp,
        WgDrop::HandshakeFailed,
        WgDrop::UnderLoad,
        WgDrop::NoEndpoint,
        WgDrop::TooBig,
    ];

    /// Position in [`WG_DROP_NAMES`] and in drop arrays.
    #[inline]
    pub const fn index(self) -> usize {
        self as usize
    }

    pub const fn label(self) -> &'static str {
        WG_DROP_NAMES[self as usize]
    }
}

/// Counters of one peer, kept by the worker that owns it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerCounters {
    /// Sessions established (as initiator or responder).
    pub handshakes_completed: u64,
    /// `now` (ns, the caller's clock) of the last completed handshake; 0 never.
    pub last_handshake_ns: u64,
    pub handshake_initiations_sent: u64,
    pub handshake_responses_sent: u64,
    pub keepalives_sent: u64,
    pub keepalives_received: u64,
    /// Data packets encapsulated (keepalives not included).
    pub tx_packets: u64,
    /// WireGuard message bytes sent (UDP payload, every message type),
    /// as `wg show` counts transfer.
    pub tx_bytes: u64,
    /// Inner packets delivered (keepalives not included).
    pub rx_packets: u64,
    /// WireGuard message bytes received and authenticated.
    pub rx_bytes: u64,
    /// Drops charged to this peer, by [`WgDrop::index`].
    pub drops: [u64; 10],
}

impl PeerCounters {
    #[inline]
    pub fn drop(&mut self, why: WgDrop) {
        self.drops[why.index()] += 1;
    }

    pub fn drops_total(&self) -> u64 {
        self.drops.iter().sum()
    }
}

/// Names of [`PeerCounters::values`], in order (`drop_REASON` for drops).
pub const PEER_COUNTER_NAMES: [&str; 20] = [
    "handshakes_completed",
    "last_handshake_ns",
    "handshake_initiations_sent",
    "handshake_responses_sent",
    "keepalives_sent",
    "keepalives_received",
    "tx_packets",
    "tx_bytes",
    "rx_packets",
    "rx_bytes",
    "drop_malformed",
    "drop_no_peer",
    "drop_bad_mac",
    "drop_replay",
    "drop_no_session",
    "drop_not_allowed_ip",
    "drop_handshake_failed",
    "drop_under_load",
    "drop_no_endpoint",
    "drop_too_big",
];

impl PeerCounters {
    /// The counters in [`PEER_COUNTER_NAMES`] order.
    pub fn values(&self) -> [u64; 20] {
        let d = &self.drops;
        [
            self.handshakes_completed,
            self.last_handshake_ns,
            self.handshake_initiations_sent,
            self.handshake_responses_sent,
            self.keepalives_sent,
            self.keepalives_received,
            self.tx_packets,
            self.tx_bytes,
            self.rx_packets,
            self.rx_bytes,
            d[0],
            d[1],
            d[2],
            d[3],
            d[4],
            d[5],
            d[6],
            d[7],
            d[8],
            d[9],
        ]
    }
}

/// Counters of one worker's tunnel for what no peer can be charged with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TunnelCounters {
    /// Cookie replies sent to initiators while under load.
    pub cookie_replies_sent: u64,
    /// Drops before a peer was known, by [`WgDrop::index`].
    pub drops: [u64; 10],
}

impl TunnelCounters {
    #[inline]
    pub fn drop(&mut self, why: WgDrop) {
        self.drops[why.index()] += 1;
    }
}

/// Names of [`TunnelCounters::values`], in order.
pub const TUNNEL_COUNTER_NAMES: [&str; 11] = [
    "cookie_replies_sent",
    "drop_malformed",
    "drop_no_peer",
    "drop_bad_mac",
    "drop_replay",
    "drop_no_session",
    "drop_not_allowed_ip",
    "drop_handshake_failed",
    "drop_under_load",
    "drop_no_endpoint",
    "drop_too_big",
];

impl TunnelCounters {
    /// The counters in [`TUNNEL_COUNTER_NAMES`] order.
    pub fn values(&self) -> [u64; 11] {
        let d = &self.drops;
        [
            self.cookie_replies_sent,
            d[0],
            d[1],
            d[2],
            d[3],
            d[4],
            d[5],
            d[6],
            d[7],
            d[8],
            d[9],
        ]
    }
}
