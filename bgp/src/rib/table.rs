//! The RIB: every peer's Adj-RIB-In and the Loc-RIB (per prefix: the
//! candidates, the best route and the multipath set), emitting a diff of
//! what changed for the FIB compiler and for export.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use super::adj_in::AdjRibIn;
use super::peer::{PeerId, PeerInfo};
use super::select::{igp_cost, select, Candidate, NextHopResolver, SelectConfig};
use crate::fsm::AfiSet;
use crate::types::{Afi, PathAttributes, Prefix};

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
    pub select: SelectConfig,
}

#[derive(Clone, Debug)]
struct PeerSlot {
    info: PeerInfo,
    adj_in: AdjRibIn,
}

#[derive(Clone, Debug, Default)]
struct Destination {
    /// Peers with a route for the prefix (eligible or not).
    candidates: Vec<PeerId>,
    selected: Option<Selected>,
}

/// Adj-RIBs-In and the Loc-RIB.
#[derive(Clone, Debug)]
pub struct Rib {
    cfg: RibConfig,
    /// Indexed by `PeerId`; slot 0 is the local speaker.
    peers: Vec<Option<PeerSlot>>,
    loc: HashMap<Prefix, Destination>,
    /// Prefixes with a selected route.
    selected_count: usize,
}

impl Rib {
    pub fn new(cfg: RibConfig) -> Rib {
        let local = PeerSlot {
            info: PeerInfo {
                address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                bgp_id: cfg.local_id,
                asn: cfg.select.local_as,
            },
            adj_in: AdjRibIn::default(),
        };
        Rib {
            cfg,
            peers: vec![Some(local)],
            loc: HashMap::new(),
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
            adj_in: AdjRibIn::default(),
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
        for prefix in slot.adj_in.prefixes(None, false) {
            self.reselect(prefix, resolver, out);
        }
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
    pub fn adj_rib_in(&self, peer: PeerId) -> Option<&AdjRibIn> {
        self.slot(peer).map(|s| &s.adj_in)
    }

    /// The Loc-RIB entry of a prefix.
    pub fn selected(&self, prefix: &Prefix) -> Option<&Selected> {
        self.loc.get(prefix)?.selected.as_ref()
    }

    /// Every prefix with a selected route.
    pub fn loc_rib(&self) -> impl Iterator<Item = (&Prefix, &Selected)> {
        self.loc
            .iter()
            .filter_map(|(p, d)| d.selected.as_ref().map(|s| (p, s)))
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
        let Some(slot) = self.slot_mut(peer) else {
            return;
        };
        let changed = slot.adj_in.insert(prefix, attrs);
        let dest = self.loc.entry(prefix).or_default();
        if !dest.candidates.contains(&peer) {
            dest.candidates.push(peer);
        }
        if changed {
            self.reselect(prefix, resolver, out);
        }
    }

    /// A peer withdrew `prefix`.
    pub fn withdraw(
        &mut self,
        peer: PeerId,
        prefix: Prefix,
        resolver: &dyn NextHopResolver,
        out: &mut Vec<RibChange>,
    ) {
        let Some(slot) = self.slot_mut(peer) else {
            return;
        };
        if slot.adj_in.remove(&prefix).is_none() {
            return;
        }
        if let Some(dest) = self.loc.get_mut(&prefix) {
            dest.candidates.retain(|p| *p != peer);
        }
        self.reselect(prefix, resolver, out);
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
        let Some(slot) = self.slot_mut(peer) else {
            return;
        };
        for afi in keep_stale.iter() {
            slot.adj_in.mark_stale(afi);
        }
        let gone: Vec<Prefix> = slot
            .adj_in
            .prefixes(None, false)
            .into_iter()
            .filter(|p| !keep_stale.contains(p.afi()))
            .collect();
        for prefix in gone {
            self.withdraw(peer, prefix, resolver, out);
        }
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
        let Some(slot) = self.slot(peer) else {
            return;
        };
        for prefix in slot.adj_in.prefixes(Some(afi), true) {
            self.withdraw(peer, prefix, resolver, out);
        }
    }

    /// Reselects every prefix (IGP costs or reachability of next hops
    /// changed).
    pub fn reresolve(&mut self, resolver: &dyn NextHopResolver, out: &mut Vec<RibChange>) {
        let prefixes: Vec<Prefix> = self.loc.keys().copied().collect();
        for prefix in prefixes {
            self.reselect(prefix, resolver, out);
        }
    }

    fn slot(&self, peer: PeerId) -> Option<&PeerSlot> {
        self.peers.get(peer.index())?.as_ref()
    }

    fn slot_mut(&mut self, peer: PeerId) -> Option<&mut PeerSlot> {
        self.peers.get_mut(peer.index())?.as_mut()
    }

    fn reselect(
        &mut self,
        prefix: Prefix,
        resolver: &dyn NextHopResolver,
        out: &mut Vec<RibChange>,
    ) {
        let Some(dest) = self.loc.get(&prefix) else {
            return;
        };
        let mut candidates = Vec::with_capacity(dest.candidates.len());
        for &peer in &dest.candidates {
            let Some(slot) = self.slot(peer) else {
                continue;
            };
            let Some(route) = slot.adj_in.get(&prefix) else {
                continue;
            };
            if let Some(cost) = igp_cost(peer, &route.attrs, resolver) {
                candidates.push(Candidate {
                    peer,
                    info: slot.info,
                    attrs: route.attrs.clone(),
                    igp_cost: cost,
                });
            }
        }
        let selected = select(&self.cfg.select, candidates).map(|c| Selected {
            paths: c
                .into_iter()
                .map(|x| Path {
                    peer: x.peer,
                    attrs: x.attrs,
                    igp_cost: x.igp_cost,
                })
                .collect(),
        });
        let dest = self.loc.get_mut(&prefix).expect("looked up above");
        if dest.selected != selected {
            out.push(match &selected {
                Some(s) => RibChange::Best {
                    prefix,
                    selected: s.clone(),
                },
                None => RibChange::Withdrawn { prefix },
            });
            match (&dest.selected, &selected) {
                (None, Some(_)) => self.selected_count += 1,
                (Some(_), None) => self.selected_count -= 1,
                _ => {}
            }
            dest.selected = selected;
        }
        if dest.candidates.is_empty() {
            self.loc.remove(&prefix);
        }
    }
}
