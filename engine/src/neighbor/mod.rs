//! Neighbors: IPv4 (ARP) and IPv6 ([`nd`]); a per-worker table and the queue of packets waiting
//! for a next hop to be resolved.
//!
//! Each worker owns its table (no locks). What one worker learns from an ARP
//! packet it passes to the others through bounded queues ([`NeighborUpdate`]),
//! so a reply that the kernel's fan-out hands to another worker still
//! resolves the entry everywhere. Time is an argument (`now`, nanoseconds on
//! the engine's monotonic clock) so tests drive a fake clock.

pub mod nd;
mod pending;
mod table;

pub use pending::PendingQueue;
pub use table::{ArpTimers, NeighborEvent, NeighborTable, Resolve};

/// A mapping learnt by one worker, sent to the others.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NeighborUpdate {
    pub iface: u16,
    pub ip: u32,
    pub mac: [u8; 6],
}

/// An IPv6 neighbor mapping one worker learnt, sent to the others: from an
/// advertisement (`advert`, applied as the cache applies one) or from a
/// source link-layer address option (`advert` None).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NeighborUpdate6 {
    pub iface: u16,
    pub addr: std::net::Ipv6Addr,
    pub mac: [u8; 6],
    pub advert: Option<nd::Advert>,
}
