//! Who a route came from: a dense peer handle and what best-path selection
//! needs to know about the peer.

use std::net::{IpAddr, Ipv4Addr};

/// A peer's handle in the RIB (dense index). [`PeerId::LOCAL`] is the
/// speaker itself: originated networks are its routes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub u32);

impl PeerId {
    pub const LOCAL: PeerId = PeerId(0);

    pub(crate) fn index(self) -> usize {
        self.0 as usize
    }
}

/// A peer as best-path selection sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PeerInfo {
    /// The transport address (last tie-break).
    pub address: IpAddr,
    /// Its BGP Identifier (from its OPEN).
    pub bgp_id: Ipv4Addr,
    /// Its AS: equal to ours = iBGP.
    pub asn: u32,
}
