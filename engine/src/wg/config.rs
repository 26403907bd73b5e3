//! What a WireGuard tunnel is made of: its key, listen port and peers
//! (public key, endpoint, allowed IPs, keepalive, preshared key).

use std::net::{Ipv4Addr, SocketAddrV4};

/// Default inner MTU: plaintext is padded to a multiple of 16 up to this.
pub const DEFAULT_MTU: u16 = 1420;
/// Peers per tunnel: boringtun keeps 24 bits of the session index for them.
pub const MAX_PEERS: usize = 1 << 24;

/// One tunnel (a WireGuard "interface").
#[derive(Clone)]
pub struct TunnelConfig {
    /// Curve25519 private key (never logged: `Debug` redacts it).
    pub private_key: [u8; 32],
    /// UDP port the tunnel receives on and sends from.
    pub listen_port: u16,
    /// Outer source address of packets the tunnel originates.
    pub local_addr: Ipv4Addr,
    /// Inner MTU, used only to bound padding.
    pub mtu: u16,
    pub peers: Vec<PeerConfig>,
    /// The [`crate::wg::PeerId`] of each peer (`peers[i]` is peer
    /// `peer_slots[i]`); empty: peer `i` is `PeerId(i)`. Slots are what
    /// keep a peer's id (its boringtun session index and its owning
    /// worker) across reconfigurations that add or remove other peers;
    /// slots no peer takes are holes.
    pub peer_slots: Vec<u32>,
}

impl TunnelConfig {
    /// The slot of `peers[i]`.
    pub fn slot_of(&self, i: usize) -> u32 {
        self.peer_slots.get(i).copied().unwrap_or(i as u32)
    }
}

impl std::fmt::Debug for TunnelConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunnelConfig")
            .field("private_key", &"<redacted>")
            .field("listen_port", &self.listen_port)
            .field("local_addr", &self.local_addr)
            .field("mtu", &self.mtu)
            .field("peers", &self.peers)
            .field("peer_slots", &self.peer_slots)
            .finish()
    }
}

/// One peer of a tunnel.
#[derive(Clone, Default)]
pub struct PeerConfig {
    pub public_key: [u8; 32],
    /// Where to send; learnt from authenticated packets when `None` (and
    /// updated on roaming in any case).
    pub endpoint: Option<SocketAddrV4>,
    /// Inner prefixes routed to this peer and accepted from it.
    pub allowed_ips: Vec<(Ipv4Addr, u8)>,
    /// Seconds between keepalives even when idle; 0 is off.
    pub persistent_keepalive_secs: u16,
    pub preshared_key: Option<[u8; 32]>,
}

impl std::fmt::Debug for PeerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerConfig")
            .field("public_key", &self.public_key)
            .field("endpoint", &self.endpoint)
            .field("allowed_ips", &self.allowed_ips)
            .field("persistent_keepalive_secs", &self.persistent_keepalive_secs)
            .field("preshared_key", &self.preshared_key.map(|_| "<redacted>"))
            .finish()
    }
}

/// Why a tunnel configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WgConfigError {
    #[error("too many peers ({0}, at most {MAX_PEERS})")]
    TooManyPeers(usize),
    #[error("peer {0}: public key listed twice")]
    DuplicatePeer(usize),
    #[error("peer {peer}: allowed IP {addr}/{len}: prefix length above 32")]
    BadPrefixLen {
        peer: usize,
        addr: Ipv4Addr,
        len: u8,
    },
    #[error("peer {peer}: allowed IP {addr}/{len} already belongs to peer {other}")]
    DuplicateAllowedIp {
        peer: usize,
        other: usize,
        addr: Ipv4Addr,
        len: u8,
    },
    #[error("peer {0}: boringtun refused the keys")]
    BadKey(usize),
    #[error("peer_slots: {0} slots for {1} peers, or a slot taken twice or at or above MAX_PEERS")]
    BadSlots(usize, usize),
    #[error("workers must be at least 1 and worker below it (worker {worker} of {workers})")]
    BadWorker { worker: usize, workers: usize },
}
