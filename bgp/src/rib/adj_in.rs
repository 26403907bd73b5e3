//! Adj-RIB-In: the routes one peer announced (after import policy), by
//! prefix, with the graceful-restart stale mark.

use std::collections::HashMap;
use std::sync::Arc;

use crate::types::{Afi, PathAttributes, Prefix};

/// One route a peer announced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdjRoute {
    /// Shared: one UPDATE's attributes serve all its prefixes.
    pub attrs: Arc<PathAttributes>,
    /// Kept across the peer's restart, not yet refreshed (RFC 4724).
    pub stale: bool,
}

/// A peer's routes by prefix.
#[derive(Clone, Debug, Default)]
pub struct AdjRibIn {
    routes: HashMap<Prefix, AdjRoute>,
}

impl AdjRibIn {
    pub fn get(&self, prefix: &Prefix) -> Option<&AdjRoute> {
        self.routes.get(prefix)
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Prefix, &AdjRoute)> {
        self.routes.iter()
    }

    /// Number of stale routes.
    pub fn stale_count(&self) -> usize {
        self.routes.values().filter(|r| r.stale).count()
    }

    /// Stores a fresh route (clearing any stale mark); true when it
    /// differs from what was there.
    pub(crate) fn insert(&mut self, prefix: Prefix, attrs: Arc<PathAttributes>) -> bool {
        let fresh = AdjRoute {
            attrs,
            stale: false,
        };
        match self.routes.insert(prefix, fresh) {
            Some(old) => {
                let new = &self.routes[&prefix].attrs;
                !(Arc::ptr_eq(&old.attrs, new) || *old.attrs == **new)
            }
            None => true,
        }
    }

    pub(crate) fn remove(&mut self, prefix: &Prefix) -> Option<AdjRoute> {
        self.routes.remove(prefix)
    }

    /// Marks the routes of `afi` stale.
    pub(crate) fn mark_stale(&mut self, afi: Afi) {
        for (p, r) in self.routes.iter_mut() {
            if p.afi() == afi {
                r.stale = true;
            }
        }
    }

    /// Prefixes of `afi` (all families when None) matching `stale_only`.
    pub(crate) fn prefixes(&self, afi: Option<Afi>, stale_only: bool) -> Vec<Prefix> {
        self.routes
            .iter()
            .filter(|(p, r)| afi.is_none_or(|a| p.afi() == a) && (!stale_only || r.stale))
            .map(|(p, _)| *p)
            .collect()
    }
}
