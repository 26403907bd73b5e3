//! The RIB: one table by prefix holding every peer's route (the
//! Adj-RIBs-In) and the selection (Loc-RIB: best route and multipath set),
//! emitting a diff of what changed for the FIB compiler and for export.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use super::adj_in::{AdjRibIn, AdjRoute};
use super::peer::{PeerId, PeerInfo};
use super::select::{igp_cost, select, Candidate, NextHopResolver, SelectConfig};
use crate::fsm::AfiSet;
use crate::types::{Afi, PathAttributes, Prefix};

/// Most routes in a multipath set.
pub const MAX_PATHS: usize = 8;

/// A selected route.
#[derive(Clone, Debug)]
pub struct Path {
    pub peer: PeerId,
    pub attrs: Arc<PathAttributes>,
    pub igp_cost: u32,
}

impl PartialEq for Path {
    fn eq(&self, other: &Path) -> bool {
        self.peer == other.peer
            && self.igp_cost == other.igp_cost
            && (Arc::ptr_eq(&self.attrs, &other.attrs) || self.attrs == other.attrs)
    }
}

impl Eq for Path {}

/// What the Loc-RIB holds for a prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selected {
    /// The multipath (ECMP) set, best route first; never empty.
    pub paths: Vec<Path>,
}

impl Selected {
    pub fn best(&self) -> &Path {
        &self.paths[0]
    }
}

/// One change of the Loc-RIB.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RibChange {
    /// New best route or multipath set for the prefix.
    Best { prefix: Prefix, selected: Selected },
    /// No usable route left.
    Withdrawn { prefix: Prefix },
}

/// Settings of the RIB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RibConfig {
    pub local_id: Ipv4Addr,
    /// `max_paths` is capped at [`MAX_PATHS`].
    pub select: SelectConfig,
}

#[derive(Clone, Debug)]
struct PeerSlot {
    info: PeerInfo,
    routes: usize,
    stale: usize,
}

/// One peer's route for a prefix.
#[derive(Clone, Debug)]
struct Entry {
    attrs: Arc<PathAttributes>,
    peer: PeerId,
    /// IGP cost at the last selection (meaningful for selected routes).
    igp_cost: u32,
    stale: bool,
}

const NONE: u16 = u16::MAX;

/// A prefix: its routes (one per peer) and the selection as indices into
/// them, best first (`NONE` past the end). Indices are u16: a prefix has
/// at most one route per peer.
#[derive(Clone, Debug)]
struct Destination {
    routes: Vec<Entry>,
    selected: [u16; MAX_PATHS],
}

impl Default for Destination {
    fn default() -> Self {
        Destination {
            routes: Vec::new(),
            selected: [NONE; MAX_PATHS],
        }
    }
}

impl Destination {
    fn position(&self, peer: PeerId) -> Option<usize> {
        self.routes.iter().position(|e| e.peer == peer)
    }

    fn materialize(&self) -> Option<Selected> {
        if self.selected[0] == NONE {
            return None;
        }
        let paths = self
            .selected
            .iter()
            .take_while(|&&i| i != NONE)
            .map(|&i| {
                let e = &self.routes[usize::from(i)];
                Path {
                    peer: e.peer,
                    attrs: e.attrs.clone(),
                    igp_cost: e.igp_cost,
                }
            })
            .collect();
        Some(Selected { paths })
    }
}

/// Adj-RIBs-In and the Loc-RIB.
#[derive(Clone, Debug)]
pub struct Rib {
    cfg: RibConfig,
    /// Indexed by `PeerId`; slot 0 is the local speaker.
    peers: Vec<Option<PeerSlot>>,
    table: HashMap<Prefix, Destination>,
    /// Prefixes with a selected route.
    selected_count: usize,
}

/// The parts of the RIB selection reads while the table is borrowed.
struct Ctx<'a> {
    cfg: &'a SelectConfig,
    peers: &'a [Option<PeerSlot>],
    resolver: &'a dyn NextHopResolver,
}

impl Rib {
    pub fn new(mut cfg: RibConfig) -> Rib {
        cfg.select.max_paths = cfg.select.max_paths.clamp(1, MAX_PATHS);
        let local = PeerSlot {
            info: PeerInfo {
                address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                bgp_id: cfg.local_id,
                asn: cfg.select.local_as,
            },
            routes: 0,
            stale: 0,
        };
        Rib {
            cfg,
            peers: vec![Some(local)],
            table: HashMap::new(),
            selected_count: 0,
        }
    }

    pub fn config(&self) -> &RibConfig {
        &self.cfg
    }

    /// Registers a peer (reusing a free handle).
    pub fn add_peer(&mut self, info: PeerInfo) -> PeerId {
        let slot = Some(PeerSlot {
            info,
            routes: 0,
            stale: 0,
        });
        match self.peers.iter().skip(1).position(Option::is_none) {
            Some(i) => {
                self.peers[i + 1] = slot;
                PeerId(i as u32 + 1)
            }
            None => {
                self.peers.push(slot);
                PeerId(self.peers.len() as u32 - 1)
            }
        }
    }

    pub fn peer_info(&self, peer: PeerId) -> Option<&PeerInfo> {
        self.slot(peer).map(|s| &s.info)
    }

    /// Updates what selection knows of a peer (its BGP Identifier is known
    /// once its OPEN arrived) and reselects its prefixes.
    pub fn set_peer_info(
        &mut self,
        peer: PeerId,
        info: PeerInfo,
        resolver: &dyn NextHopResolver,
        out: &mut Vec<RibChange>,
    ) {
        let Some(slot) = self.slot_mut(peer) else {
            return;
        };
        slot.info = info;
        self.scan(resolver, out, |_, dest| dest.position(peer).is_some());
    }

    /// Forgets a peer and withdraws its routes.
    pub fn remove_peer(
        &mut self,
        peer: PeerId,
        resolver: &dyn NextHopResolver,
        out: &mut Vec<RibChange>,
    ) {
        if peer == PeerId::LOCAL {
            return;
        }
        self.peer_down(peer, AfiSet::EMPTY, resolver, out);
        if let Some(s) = self.peers.get_mut(peer.index()) {
            *s = None;
        }
    }

    /// A peer's Adj-RIB-In.
    pub fn adj_rib_in(&self, peer: PeerId) -> Option<AdjRibIn<'_>> {
        let slot = self.slot(peer)?;
        Some(AdjRibIn {
            rib: self,
            peer,
            routes: slot.routes,
            stale: slot.stale,
        })
    }

    pub(crate) fn route_of(&self, peer: PeerId, prefix: &Prefix) -> Option<AdjRoute<'_>> {
        let dest = self.table.get(prefix)?;
        let e = &dest.routes[dest.position(peer)?];
        Some(AdjRoute {
            attrs: &e.attrs,
            stale: e.stale,
        })
    }

    pub(crate) fn routes_of(&self, peer: PeerId) -> impl Iterator<Item = (&Prefix, AdjRoute<'_>)> {
        self.table.iter().filter_map(move |(p, d)| {
            let e = &d.routes[d.position(peer)?];
            Some((
                p,
                AdjRoute {
                    attrs: &e.attrs,
                    stale: e.stale,
                },
            ))
        })
    }

    /// The Loc-RIB entry of a prefix.
    pub fn selected(&self, prefix: &Prefix) -> Option<Selected> {
        self.table.get(prefix)?.materialize()
    }

    /// Every prefix with a selected route.
    pub fn loc_rib(&self) -> impl Iterator<Item = (&Prefix, Selected)> {
        self.table
            .iter()
            .filter_map(|(p, d)| d.materialize().map(|s| (p, s)))
    }

    /// Number of prefixes with a selected route.
    pub fn loc_rib_len(&self) -> usize {
        self.selected_count
    }

    /// A peer announced (or re-announced) `prefix`. Routes of an unknown
    /// peer handle are ignored.
    pub fn announce(
        &mut self,
        peer: PeerId,
        prefix: Prefix,
        attrs: Arc<PathAttributes>,
        resolver: &dyn NextHopResolver,
        out: &mut Vec<RibChange>,
    ) {
        if self.slot(peer).is_none() {
            return;
        }
        let dest = self.table.entry(prefix).or_default();
        let (new_route, was_stale) = match dest.position(peer) {
            Some(i) => {
                let e = &mut dest.routes[i];
                let same = Arc::ptr_eq(&e.attrs, &attrs) || *e.attrs == *attrs;
                let was_stale = std::mem::replace(&mut e.stale, false);
                if same {
                    if was_stale {
                        self.peers[peer.index()].as_mut().expect("checked").stale -= 1;
                    }
                    return;
                }
                (false, was_stale)
            }
            None => (true, false),
        };
        let old = dest.materialize();
        match dest.position(peer) {
            Some(i) => dest.routes[i].attrs = attrs,
            None => {
                // Most prefixes have one or two routes: grow one at a time
                // (the default first step is four).
                dest.routes.reserve_exact(1);
                dest.routes.push(Entry {
                    attrs,
                    peer,
                    igp_cost: 0,
                    stale: false,
                })
            }
        }
        let slot = self.peers[peer.index()].as_mut().expect("checked");
        slot.routes += usize::from(new_route);
        slot.stale -= usize::from(was_stale);
        let ctx = Ctx {
            cfg: &self.cfg.select,
            peers: &self.peers,
            resolver,
        };
        let delta = reselect(&ctx, prefix, dest, old, out);
        self.selected_count = self.selected_count.wrapping_add_signed(delta);
    }

    /// A peer withdrew `prefix`.
    pub fn withdraw(
        &mut self,
        peer: PeerId,
        prefix: Prefix,
        resolver: &dyn NextHopResolver,
        out: &mut Vec<RibChange>,
    ) {
        let Some(dest) = self.table.get_mut(&prefix) else {
            return;
        };
        let Some(i) = dest.position(peer) else {
            return;
        };
        let old = dest.materialize();
        let e = dest.routes.swap_remove(i);
        if let Some(slot) = self.peers.get_mut(peer.index()).and_then(Option::as_mut) {
            slot.routes -= 1;
            slot.stale -= usize::from(e.stale);
        }
        let ctx = Ctx {
            cfg: &self.cfg.select,
            peers: &self.peers,
            resolver,
        };
        let delta = reselect(&ctx, prefix, dest, old, out);
        self.selected_count = self.selected_count.wrapping_add_signed(delta);
        if dest.routes.is_empty() {
            self.table.remove(&prefix);
        }
    }

    /// Originates a network (a route of the local speaker).
    pub fn originate(
        &mut self,
        prefix: Prefix,
        attrs: Arc<PathAttributes>,
        resolver: &dyn NextHopResolver,
        out: &mut Vec<RibChange>,
    ) {
        self.announce(PeerId::LOCAL, prefix, attrs, resolver, out);
    }

    /// Stops originating a network.
    pub fn stop_originating(
        &mut self,
        prefix: Prefix,
        resolver: &dyn NextHopResolver,
        out: &mut Vec<RibChange>,
    ) {
        self.withdraw(PeerId::LOCAL, prefix, resolver, out);
    }

    /// The peer's session went down: its routes of `keep_stale` stay,
    /// marked stale (graceful restart), the others are withdrawn.
    pub fn peer_down(
        &mut self,
        peer: PeerId,
        keep_stale: AfiSet,
        resolver: &dyn NextHopResolver,
        out: &mut Vec<RibChange>,
    ) {
        if self.slot(peer).is_none() {
            return;
        }
        let (mut removed, mut marked, mut unmarked) = (0, 0, 0);
        self.scan(resolver, out, |prefix, dest| {
            let Some(i) = dest.position(peer) else {
                return false;
            };
            if keep_stale.contains(prefix.afi()) {
                let e = &mut dest.routes[i];
                marked += usize::from(!e.stale);
                e.stale = true;
                false
            } else {
                let e = dest.routes.swap_remove(i);
                removed += 1;
                unmarked += usize::from(e.stale);
                true
            }
        });
        let slot = self.slot_mut(peer).expect("checked");
        slot.routes -= removed;
        slot.stale = slot.stale + marked - unmarked;
    }

    /// Withdraws the peer's routes of `afi` still stale (End-of-RIB or the
    /// restart timer).
    pub fn sweep_stale(
        &mut self,
        peer: PeerId,
        afi: Afi,
        resolver: &dyn NextHopResolver,
        out: &mut Vec<RibChange>,
    ) {
        if self.slot(peer).map_or(0, |s| s.stale) == 0 {
            return;
        }
        let mut removed = 0;
        self.scan(resolver, out, |prefix, dest| match dest.position(peer) {
            Some(i) if dest.routes[i].stale && prefix.afi() == afi => {
                dest.routes.swap_remove(i);
                removed += 1;
                true
            }
            _ => false,
        });
        let slot = self.slot_mut(peer).expect("checked");
        slot.routes -= removed;
        slot.stale -= removed;
    }

    /// Reselects every prefix (IGP costs or reachability of next hops
    /// changed).
    pub fn reresolve(&mut self, resolver: &dyn NextHopResolver, out: &mut Vec<RibChange>) {
        self.scan(resolver, out, |_, _| true);
    }

    /// Walks the table: `edit` changes a destination and says whether to
    /// reselect it; emptied destinations are dropped.
    fn scan(
        &mut self,
        resolver: &dyn NextHopResolver,
        out: &mut Vec<RibChange>,
        mut edit: impl FnMut(&Prefix, &mut Destination) -> bool,
    ) {
        let ctx = Ctx {
            cfg: &self.cfg.select,
            peers: &self.peers,
            resolver,
        };
        let mut delta = 0isize;
        let mut emptied = false;
        for (prefix, dest) in self.table.iter_mut() {
            let old = dest.materialize();
            if edit(prefix, dest) {
                delta += reselect(&ctx, *prefix, dest, old, out);
                emptied |= dest.routes.is_empty();
            }
        }
        self.selected_count = self.selected_count.wrapping_add_signed(delta);
        if emptied {
            self.table.retain(|_, d| !d.routes.is_empty());
        }
    }

    fn slot(&self, peer: PeerId) -> Option<&PeerSlot> {
        self.peers.get(peer.index())?.as_ref()
    }

    fn slot_mut(&mut self, peer: PeerId) -> Option<&mut PeerSlot> {
        self.peers.get_mut(peer.index())?.as_mut()
    }
}

/// Selects anew for `prefix`, records it, and reports a change from `old`.
/// Returns the change in the number of selected prefixes (-1, 0, 1).
fn reselect(
    ctx: &Ctx<'_>,
    prefix: Prefix,
    dest: &mut Destination,
    old: Option<Selected>,
    out: &mut Vec<RibChange>,
) -> isize {
    let mut candidates = Vec::with_capacity(dest.routes.len());
    for (index, e) in dest.routes.iter().enumerate() {
        let Some(slot) = ctx.peers.get(e.peer.index()).and_then(Option::as_ref) else {
            continue;
        };
        if let Some(cost) = igp_cost(e.peer, &e.attrs, ctx.resolver) {
            candidates.push(Candidate {
                index,
                peer: e.peer,
                info: slot.info,
                attrs: e.attrs.clone(),
                igp_cost: cost,
            });
        }
    }
    dest.selected = [NONE; MAX_PATHS];
    for (slot, c) in select(ctx.cfg, candidates)
        .into_iter()
        .flatten()
        .enumerate()
    {
        dest.selected[slot] = c.index as u16;
        dest.routes[c.index].igp_cost = c.igp_cost;
    }
    let new = dest.materialize();
    if new == old {
        return 0;
    }
    let delta = isize::from(new.is_some()) - isize::from(old.is_some());
    out.push(match new {
        Some(selected) => RibChange::Best { prefix, selected },
        None => RibChange::Withdrawn { prefix },
    });
    delta
}
