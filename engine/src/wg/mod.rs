//! WireGuard data path: a per-worker [`Tunnel`] built on boringtun's noise
//! protocol (`Tunn`; not its `device` module, no TUN, no sockets) that
//! encrypts and decrypts pool packets in place, answers handshakes, drives
//! the timers with time passed in, enforces allowed IPs and counts drops.
//!
//! # Ownership and steering (what the pipeline does)
//! Every worker builds its own `Tunnel` from the same [`TunnelConfig`]:
//! all peers are known everywhere (same [`PeerId`] = config order), but a
//! peer's boringtun state, timers and counters live only on
//! [`owner_worker`]`(peer, workers)`, so nothing is shared or locked.
//! - Outgoing inner packets: route into the tunnel with
//!   [`Tunnel::peer_for`]`(dst)` (allowed IPs, longest prefix), hand the
//!   packet to the owner of that peer, which calls [`Tunnel::encapsulate`].
//! - Received datagrams to the listen port: [`steer`] reads the receiver
//!   index of transport data, handshake responses and cookie replies
//!   (peer = index >> 8) → hand to the owner. A handshake initiation names
//!   its peer only inside its encrypted part: the receiving worker calls
//!   [`Tunnel::decapsulate`], which identifies the peer (MAC1 + rate limit,
//!   then one Diffie-Hellman) and answers [`Decap::Handoff`] when another
//!   worker owns it; the owner then repeats the identification (one more
//!   DH per initiation — handshakes are rare; cookie replies under load
//!   are sent by the receiving worker before any DH).
//! - Timers: each worker calls [`Tunnel::tick`] every 100–250 ms; it only
//!   touches the peers it owns.
//!
//! # Time
//! Every call takes `now` in nanoseconds from the caller's monotonic
//! clock. boringtun reads its own clock; see [`clock`] for how unit tests
//! make it read `now` (boringtun's `mock-instant` feature, dev only).
//!
//! # Differences from kernel WireGuard
//! No staging queue: an inner packet sent while no session is up is
//! dropped (counted `no_session`) and a handshake starts (boringtun would
//! queue a heap copy). IPv4 outer and inner only. No fragmentation: the
//! pipeline keeps inner packets within the tunnel MTU.

pub mod allowed_ips;
mod clock;
pub mod config;
pub mod counters;
pub mod export;
pub mod outer;
mod reconfigure;
mod tunnel;

#[cfg(test)]
mod tests;

pub use allowed_ips::AllowedIps;
pub use config::{PeerConfig, TunnelConfig, WgConfigError, DEFAULT_MTU, MAX_PEERS};
pub use counters::{
    PeerCounters, TunnelCounters, WgDrop, PEER_COUNTER_NAMES, TUNNEL_COUNTER_NAMES, WG_DROP_NAMES,
};
pub use tunnel::{
    owner_worker, public_key_of, steer, Decap, Encap, PeerId, Steer, Tunnel, DATA_HEADER_LEN,
    DATA_TAG_LEN, ENCAP_HEADROOM, ENCAP_OVERHEAD, HANDSHAKE_RATE_LIMIT, MSG_COOKIE_REPLY, MSG_DATA,
    MSG_HANDSHAKE_INIT, MSG_HANDSHAKE_RESP,
};
