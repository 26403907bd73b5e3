//! ARP: answer requests for our addresses in place, learn senders, send
//! requests for next hops, and release packets that waited for an answer.

use std::net::Ipv4Addr;

use super::Pipeline;
use crate::buffer::{Disposition, Packet};
use crate::counters::{bump, DropReason};
use crate::neighbor::{NeighborUpdate, PendingQueue};
use crate::wire::arp::{self, ArpPacket};
use crate::wire::ethernet::{BROADCAST, ETHERTYPE_ARP, ETHERTYPE_VLAN};

/// Shortest Ethernet frame without FCS; shorter ones are padded.
const MIN_FRAME_LEN: usize = 60;

impl Pipeline {
    /// Handles one ARP frame in place (reply) or consumes it (learnt).
    pub(super) fn arp_input(&mut self, p: &mut Packet, now: u64) {
        let l3 = p.meta().l3_offset as usize;
        let iface_idx = p.meta().rx_iface;
        let itf = *self.ifaces.get(iface_idx);
        let (op, sha, spa, tpa) = match ArpPacket::new_checked(&p.data()[l3..]) {
            Ok(a) => (
                a.operation(),
                a.sender_hw(),
                u32::from(a.sender_ip()),
                u32::from(a.target_ip()),
            ),
            Err(_) => {
                p.meta_mut().disposition = Disposition::Drop(DropReason::ArpMalformed);
                return;
            }
        };
        // The kernel's copy of the port learns its neighbours too.
        self.punt_copy(p, now);
        let for_us = tpa == itf.addr;
        // Learn from any ARP on the subnet (RFC 826: create only when it is
        // addressed to us, update otherwise). Probes with sender 0 teach nothing.
        if spa != 0
            && spa != itf.addr
            && itf.on_subnet(spa)
            && !crate::wire::ethernet::is_multicast(&sha)
        {
            self.adj_cache = None;
            if let Some(slot) = self.neigh.learn(iface_idx, spa, sha, now, for_us) {
                self.release_pending(slot, now);
            }
            let update = NeighborUpdate {
                iface: iface_idx,
                ip: spa,
                mac: sha,
            };
            for q in &self.sync.peers {
                // A full inbox only means that worker resolves by itself.
                let _ = q.push(update);
            }
        }
        if op == arp::OP_REQUEST && for_us {
            let data = p.data_mut();
            data[0..6].copy_from_slice(&sha);
            data[6..12].copy_from_slice(&itf.mac);
            let mut a = ArpPacket::new_unchecked(&mut data[l3..]);
            a.set_operation(arp::OP_REPLY);
            a.set_target_hw(sha);
            a.set_target_ip(Ipv4Addr::from(spa));
            a.set_sender_hw(itf.mac);
            a.set_sender_ip(Ipv4Addr::from(itf.addr));
            p.meta_mut().disposition = Disposition::Tx(itf.port);
            bump(&self.counters.arp_replies_sent, 1);
        } else if op == arp::OP_REQUEST {
            p.meta_mut().disposition = Disposition::Drop(DropReason::ArpNotForUs);
        } else {
            p.meta_mut().disposition = Disposition::Consumed;
        }
    }

    /// Broadcasts a request for `ip` on interface `iface_idx`.
    pub(super) fn send_arp_request(&mut self, iface_idx: u16, ip: u32) {
        let itf = *self.ifaces.get(iface_idx);
        let Some(mut p) = self.pool.alloc() else {
            self.tally.add(DropReason::NoBuffer);
            return;
        };
        let l2 = if itf.vlan != 0 { 18 } else { 14 };
        let Some(buf) = p.append(MIN_FRAME_LEN.max(l2 + ArpPacket::<&[u8]>::LEN)) else {
            return;
        };
        buf.fill(0);
        buf[0..6].copy_from_slice(&BROADCAST);
        buf[6..12].copy_from_slice(&itf.mac);
        if itf.vlan != 0 {
            buf[12..14].copy_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
            buf[14..16].copy_from_slice(&itf.vlan.to_be_bytes());
        }
        buf[l2 - 2..l2].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
        if arp::emit(
            &mut buf[l2..],
            arp::OP_REQUEST,
            itf.mac,
            Ipv4Addr::from(itf.addr),
            [0; 6],
            Ipv4Addr::from(ip),
        )
        .is_err()
        {
            return;
        }
        bump(&self.counters.arp_requests_sent, 1);
        self.enqueue_tx(itf.port, p);
    }

    /// Sends the packets that waited on `slot`, now that it resolved.
    pub(super) fn release_pending(&mut self, slot: u32, now: u64) {
        let mut pending = std::mem::replace(&mut self.pending, PendingQueue::new(0));
        pending.release(slot, |p| self.forward(p, now));
        self.pending = pending;
    }

    /// Drops the packets that waited on `slot`: it did not resolve.
    pub(super) fn fail_pending(&mut self, slot: u32, now: u64) {
        let mut pending = std::mem::replace(&mut self.pending, PendingQueue::new(0));
        pending.release(slot, |p| {
            self.icmp_error(
                &p,
                crate::wire::icmpv4::TYPE_DEST_UNREACHABLE,
                crate::wire::icmpv4::CODE_HOST_UNREACHABLE,
                0,
                now,
            );
            self.drop_packet(p, DropReason::ArpUnresolved);
        });
        self.pending = pending;
    }
}
