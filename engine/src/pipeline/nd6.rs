//! Neighbor discovery in the pipeline, around the per-worker
//! [`NdCache`](crate::neighbor::nd::NdCache): resolve a next hop (or hold
//! the packet and send a solicitation to the solicited-node group), write
//! the Ethernet header, send solicitations and advertisements, run the
//! cache's timers (REACHABLE → STALE → DELAY → PROBE, retries, aging) and
//! share what one worker learns with the others, as ARP does.

use std::net::Ipv6Addr;

use super::Pipeline;
use crate::buffer::Packet;
use crate::counters::{bump, DropReason, ND_ADVERTS_SENT, ND_SOLICITS_SENT};
use crate::neighbor::nd::{multicast_mac, solicited_node, NdAction, NdEvent, Resolve6};
use crate::neighbor::{NeighborUpdate6, PendingQueue};
use crate::wire::ethernet::{ETHERTYPE_IPV6, ETHERTYPE_VLAN};
use crate::wire::icmpv6;

/// Cache slots whose timers one housekeeping run visits.
const ND_POLL_BUDGET: usize = 256;

impl Pipeline {
    /// Sends a routed (or locally built) IPv6 packet to next hop `nh` on
    /// IPv6 interface `oif`, resolving it first.
    pub(super) fn forward6(&mut self, mut p: Packet, oif: u16, nh: Ipv6Addr, now: u64) {
        if nh.is_multicast() {
            return self.l2_write6(p, oif, multicast_mac(nh));
        }
        if !self.v6.statics.is_empty() {
            if let Some(&(_, _, mac)) = self
                .v6
                .statics
                .iter()
                .find(|(i, a, _)| *i == oif && *a == nh)
            {
                return self.l2_write6(p, oif, mac);
            }
        }
        match self.v6.nd.resolve(oif, nh, now) {
            Resolve6::Mac(mac) => self.l2_write6(p, oif, mac),
            Resolve6::Wait { slot, solicit } => {
                if solicit {
                    self.send_ns(oif, nh, None);
                }
                p.meta_mut().tx_iface = oif;
                if let Err(p) = self.v6.pending.push(slot, p) {
                    self.drop_packet(p, DropReason::Ipv6NdQueueFull);
                }
            }
            Resolve6::TableFull => self.drop_packet(p, DropReason::Ipv6NdQueueFull),
        }
    }

    /// Puts the Ethernet header towards `mac` through `oif` in front of the
    /// IPv6 header and queues the frame on the interface's port.
    pub(super) fn l2_write6(&mut self, mut p: Packet, oif: u16, mac: [u8; 6]) {
        let itf = self.v6.ifaces.get(oif);
        let (port, src, vlan) = (itf.port, itf.mac, itf.vlan);
        let want = if vlan != 0 { 18 } else { 14 };
        let have = p.meta().l3_offset as usize;
        if want > have {
            if p.prepend(want - have).is_none() {
                return self.drop_packet(p, DropReason::NoBuffer);
            }
        } else if want < have {
            let _ = p.strip_front(have - want);
        }
        p.meta_mut().l3_offset = want as u16;
        let d = p.data_mut();
        d[0..6].copy_from_slice(&mac);
        d[6..12].copy_from_slice(&src);
        if vlan != 0 {
            d[12..14].copy_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
            d[14..16].copy_from_slice(&vlan.to_be_bytes());
        }
        d[want - 2..want].copy_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
        self.enqueue_tx(port, p);
    }

    /// A new frame with room for the Ethernet header and `l3_len` bytes of
    /// IPv6; its L3 part is written by the caller.
    fn alloc6(&mut self, oif: u16, l3_len: usize) -> Option<Packet> {
        let Some(mut p) = self.pool.alloc() else {
            self.tally.add(DropReason::NoBuffer);
            return None;
        };
        let l2 = if self.v6.ifaces.get(oif).vlan != 0 {
            18
        } else {
            14
        };
        p.append(l2 + l3_len)?.fill(0);
        p.meta_mut().l3_offset = l2 as u16;
        p.meta_mut().rx_iface = oif;
        p.meta_mut().local_origin = true;
        Some(p)
    }

    /// Sends a neighbor solicitation for `target` on `oif`: to its
    /// solicited-node group, or to `unicast` (a probe).
    pub(super) fn send_ns(&mut self, oif: u16, target: Ipv6Addr, unicast: Option<[u8; 6]>) {
        let itf = self.v6.ifaces.get(oif);
        let (src, mac) = (itf.source_for(target), itf.mac);
        let (dst, dst_mac) = match unicast {
            Some(m) => (target, m),
            None => {
                let g = solicited_node(target);
                (g, multicast_mac(g))
            }
        };
        let Some(mut p) = self.alloc6(oif, 40 + 32) else {
            return;
        };
        let l3 = p.meta().l3_offset as usize;
        match icmpv6::emit_neighbor_solicit(&mut p.data_mut()[l3..], src, dst, target, Some(mac)) {
            Ok(n) => p.truncate(l3 + n),
            Err(_) => return,
        }
        bump(&self.counters.ipv6[ND_SOLICITS_SENT], 1);
        self.l2_write6(p, oif, dst_mac);
    }

    /// Sends a neighbor advertisement of our `target` on `oif`.
    pub(super) fn send_na(
        &mut self,
        oif: u16,
        dst: Ipv6Addr,
        dst_mac: [u8; 6],
        target: Ipv6Addr,
        flags: u8,
    ) {
        let mac = self.v6.ifaces.get(oif).mac;
        let Some(mut p) = self.alloc6(oif, 40 + 32) else {
            return;
        };
        let l3 = p.meta().l3_offset as usize;
        match icmpv6::emit_neighbor_advert(
            &mut p.data_mut()[l3..],
            target,
            dst,
            target,
            flags,
            Some(mac),
        ) {
            Ok(n) => p.truncate(l3 + n),
            Err(_) => return,
        }
        bump(&self.counters.ipv6[ND_ADVERTS_SENT], 1);
        self.l2_write6(p, oif, dst_mac);
    }

    /// Applies what an NS (source link-layer address) or NA taught us, and
    /// when `share`, tells the other workers.
    pub(super) fn nd_learn(&mut self, u: NeighborUpdate6, now: u64, share: bool) {
        let ev = match u.advert {
            Some(na) => {
                let r = self.v6.rand();
                self.v6.nd.on_advert(u.iface, u.addr, na, now, r)
            }
            None => self
                .v6
                .nd
                .on_link_layer_address(u.iface, u.addr, u.mac, now),
        };
        if let Some(ev) = ev {
            self.nd_event(ev, now);
        }
        if share {
            for q in &self.sync.peers6 {
                // A full inbox only means that worker resolves by itself.
                let _ = q.push(u);
            }
        }
    }

    /// Carries out what the cache asks.
    fn nd_event(&mut self, ev: NdEvent, now: u64) {
        match ev.action {
            NdAction::SolicitMulticast { target } => self.send_ns(ev.iface, target, None),
            NdAction::SolicitUnicast { target, mac } => self.send_ns(ev.iface, target, Some(mac)),
            NdAction::Advertise {
                dst,
                dst_mac,
                target,
                flags,
            } => self.send_na(ev.iface, dst, dst_mac, target, flags),
            NdAction::Release { mac } => {
                let mut pending = std::mem::replace(&mut self.v6.pending, PendingQueue::new(0));
                pending.release(ev.slot, |p| self.l2_write6(p, ev.iface, mac));
                self.v6.pending = pending;
            }
            NdAction::Fail => {
                let mut pending = std::mem::replace(&mut self.v6.pending, PendingQueue::new(0));
                pending.release(ev.slot, |p| {
                    self.icmp6_error(
                        &p,
                        icmpv6::TYPE_DEST_UNREACHABLE,
                        icmpv6::CODE_ADDR_UNREACHABLE,
                        0,
                        now,
                    );
                    self.drop_packet(p, DropReason::Ipv6NdUnresolved);
                });
                self.v6.pending = pending;
            }
        }
    }

    /// ND timers (part of housekeeping).
    pub(super) fn housekeeping6(&mut self, now: u64) {
        if !self.v6.ifaces.enabled() {
            return;
        }
        let mut events = [None; ND_POLL_BUDGET];
        let mut n = 0;
        self.v6.nd.poll(now, ND_POLL_BUDGET, |e| {
            if n < events.len() {
                events[n] = Some(e);
                n += 1;
            }
        });
        for e in events.iter().take(n).flatten() {
            self.nd_event(*e, now);
        }
    }

    /// What the other workers learnt.
    pub(super) fn drain_neighbor_updates6(&mut self, now: u64) {
        while let Some(u) = self.sync.inbox6.pop() {
            self.nd_learn(u, now, false);
        }
    }
}
