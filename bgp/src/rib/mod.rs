//! Routing information bases: Adj-RIB-In per peer, the Loc-RIB with
//! best-path selection (RFC 4271 9.1.2 tie-breaks) and multipath, stale
//! routes for the graceful-restart helper, and the stream of changes the
//! FIB compiler and export consume. Policy runs before (import) and after
//! (export) and is not part of this module.

mod adj_in;
mod peer;
mod select;
mod table;

pub use adj_in::{AdjRibIn, AdjRoute};
pub use peer::{PeerId, PeerInfo};
pub use select::{NextHopResolver, SelectConfig};
pub use table::{Path, Rib, RibChange, RibConfig, Selected, MAX_PATHS};

#[cfg(test)]
mod tests;
