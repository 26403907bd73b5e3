//! Adj-RIB-In: the routes one peer announced (after import policy), by
//! prefix, with the graceful-restart stale mark. A view over the RIB's one
//! table: every prefix keeps its routes from all peers together, so a
//! full table costs one map entry per prefix, not one per peer and prefix.

use std::sync::Arc;

use super::peer::PeerId;
use super::table::Rib;
use crate::types::{PathAttributes, Prefix};

/// One route a peer announced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdjRoute<'a> {
    /// Shared: one UPDATE's attributes serve all its prefixes.
    pub attrs: &'a Arc<PathAttributes>,
    /// Kept across the peer's restart, not yet refreshed (RFC 4724).
    pub stale: bool,
}

/// A peer's routes by prefix.
#[derive(Clone, Copy, Debug)]
pub struct AdjRibIn<'a> {
    pub(crate) rib: &'a Rib,
    pub(crate) peer: PeerId,
    pub(crate) routes: usize,
    pub(crate) stale: usize,
}

impl<'a> AdjRibIn<'a> {
    pub fn get(&self, prefix: &Prefix) -> Option<AdjRoute<'a>> {
        self.rib.route_of(self.peer, prefix)
    }

    pub fn len(&self) -> usize {
        self.routes
    }

    pub fn is_empty(&self) -> bool {
        self.routes == 0
    }

    /// Number of stale routes.
    pub fn stale_count(&self) -> usize {
        self.stale
    }

    /// The peer's routes (walks the whole table).
    pub fn iter(&self) -> impl Iterator<Item = (&'a Prefix, AdjRoute<'a>)> + 'a {
        self.rib.routes_of(self.peer)
    }
}
