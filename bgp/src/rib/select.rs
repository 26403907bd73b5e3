//! Best-path selection (RFC 4271 9.1.2) and the multipath (ECMP) set.
//!
//! Each step removes the candidates that are worse than the best remaining
//! one on that criterion, in order. MED is compared only within a
//! neighbouring AS, which is not a total order; removing by group (a route
//! goes when a route of its group has a lower MED) keeps the result
//! independent of the order routes arrived in.

use std::cmp::Reverse;
use std::net::IpAddr;
use std::sync::Arc;

use super::peer::{PeerId, PeerInfo};
use crate::types::PathAttributes;

/// IGP cost to a next hop, from the FIB the speaker resolves through.
/// `None` = unresolvable: the route is not eligible. Directly connected
/// next hops (eBGP) resolve with cost 0.
pub trait NextHopResolver {
    fn igp_cost(&self, next_hop: IpAddr) -> Option<u32>;
}

impl<F: Fn(IpAddr) -> Option<u32>> NextHopResolver for F {
    fn igp_cost(&self, next_hop: IpAddr) -> Option<u32> {
        self(next_hop)
    }
}

/// Selection settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SelectConfig {
    pub local_as: u32,
    /// LOCAL_PREF of a route that carries none (eBGP-learned).
    pub default_local_pref: u32,
    /// Compare MED between routes from different neighbouring ASes too.
    pub always_compare_med: bool,
    /// Most routes in the multipath set (1 = best only).
    pub max_paths: usize,
    /// Multipath across different neighbouring ASes (same AS_PATH length).
    pub multipath_relax: bool,
}

impl Default for SelectConfig {
    fn default() -> Self {
        SelectConfig {
            local_as: 0,
            default_local_pref: 100,
            always_compare_med: false,
            max_paths: 1,
            multipath_relax: false,
        }
    }
}

/// A route competing for a prefix.
#[derive(Clone, Debug)]
pub(crate) struct Candidate {
    /// Index of the route in its destination.
    pub index: usize,
    pub peer: PeerId,
    pub info: PeerInfo,
    pub attrs: Arc<PathAttributes>,
    pub igp_cost: u32,
}

impl Candidate {
    fn local_pref(&self, cfg: &SelectConfig) -> u32 {
        self.attrs.local_pref.unwrap_or(cfg.default_local_pref)
    }

    /// The neighbouring AS; our own for routes with an empty AS_PATH.
    fn neighbour_as(&self, cfg: &SelectConfig) -> u32 {
        self.attrs.as_path.first_as().unwrap_or(cfg.local_as)
    }

    fn ibgp(&self, cfg: &SelectConfig) -> bool {
        self.info.asn == cfg.local_as
    }

    /// The steps after IGP cost, as one lexicographic key.
    fn final_key(&self) -> (u32, usize, IpAddr, PeerId) {
        let id = self.attrs.originator_id.unwrap_or(self.info.bgp_id);
        (
            u32::from(id),
            self.attrs.cluster_list.len(),
            self.info.address,
            self.peer,
        )
    }
}

/// Eligibility of a route: its IGP cost, None when not usable. Originated
/// routes are always usable (cost 0).
pub(crate) fn igp_cost(
    peer: PeerId,
    attrs: &PathAttributes,
    resolver: &dyn NextHopResolver,
) -> Option<u32> {
    if peer == PeerId::LOCAL {
        return Some(0);
    }
    resolver.igp_cost(attrs.next_hop?)
}

fn keep_min<K: Ord>(c: &mut Vec<Candidate>, key: impl Fn(&Candidate) -> K) {
    if let Some(m) = c.iter().map(&key).min() {
        c.retain(|x| key(x) == m);
    }
}

/// Picks the best route and the multipath set (best first, at most
/// `max_paths`) among eligible candidates; consumes them.
pub(crate) fn select(cfg: &SelectConfig, mut c: Vec<Candidate>) -> Option<Vec<Candidate>> {
    if c.is_empty() {
        return None;
    }
    keep_min(&mut c, |x| Reverse(x.local_pref(cfg)));
    keep_min(&mut c, |x| x.peer != PeerId::LOCAL);
    keep_min(&mut c, |x| x.attrs.as_path.path_len());
    keep_min(&mut c, |x| x.attrs.origin);
    // MED, missing = 0, within a neighbouring AS unless always compared.
    let med = |x: &Candidate| x.attrs.med.unwrap_or(0);
    let group = |x: &Candidate| {
        if cfg.always_compare_med {
            0
        } else {
            x.neighbour_as(cfg)
        }
    };
    let snapshot: Vec<(u32, u32)> = c.iter().map(|x| (group(x), med(x))).collect();
    c.retain(|x| !snapshot.iter().any(|&(g, m)| g == group(x) && m < med(x)));
    keep_min(&mut c, |x| x.ibgp(cfg));
    keep_min(&mut c, |x| x.igp_cost);
    // Equal so far: the multipath candidates. The rest decides the best.
    c.sort_by_key(Candidate::final_key);
    let best_as = c[0].neighbour_as(cfg);
    if c[0].peer == PeerId::LOCAL {
        c.truncate(1);
    } else if !cfg.multipath_relax {
        c.retain(|x| x.neighbour_as(cfg) == best_as);
    }
    c.truncate(cfg.max_paths.max(1));
    Some(c)
}
