//! Next-hop resolution and the L2 rewrite: find the neighbor's MAC (or hold
//! the packet while ARP asks), write the Ethernet header (with the egress
//! VLAN tag) in front of the IP header, and queue it on the egress port.

use super::Pipeline;
use crate::buffer::Packet;
use crate::counters::DropReason;
use crate::neighbor::Resolve;
use crate::wire::ethernet::{ETHERTYPE_IPV4, ETHERTYPE_VLAN};
use crate::wire::icmpv4;

impl Pipeline {
    /// Sends a routed packet (meta has `tx_iface` and `next_hop`).
    pub(super) fn forward(&mut self, mut p: Packet, now: u64) {
        let iface = p.meta().tx_iface;
        let nh = p.meta().next_hop;
        match self.neigh.resolve(iface, nh, now) {
            Resolve::Mac { mac, refresh } => {
                if refresh {
                    self.send_arp_request(iface, nh);
                }
                if self.rewrite_l2(&mut p, iface, mac) {
                    let port = self.ifaces.get(iface).port;
                    self.enqueue_tx(port, p);
                } else {
                    self.drop_packet(p, DropReason::NoBuffer);
                }
            }
            Resolve::Wait { slot, request } => {
                if request {
                    self.send_arp_request(iface, nh);
                }
                if let Err(p) = self.pending.push(slot, p) {
                    self.drop_packet(p, DropReason::ArpQueueFull);
                }
            }
            Resolve::Failed => {
                self.icmp_error(
                    &p,
                    icmpv4::TYPE_DEST_UNREACHABLE,
                    icmpv4::CODE_HOST_UNREACHABLE,
                    0,
                    now,
                );
                self.drop_packet(p, DropReason::ArpUnresolved);
            }
            Resolve::TableFull => self.drop_packet(p, DropReason::ArpUnresolved),
        }
    }

    /// Writes the Ethernet header for interface `iface` and neighbor `mac`
    /// in front of the L3 header; false when the headroom is too small.
    #[inline]
    fn rewrite_l2(&mut self, p: &mut Packet, iface: u16, mac: [u8; 6]) -> bool {
        let itf = self.ifaces.get(iface);
        let want = if itf.vlan != 0 { 18 } else { 14 };
        let have = p.meta().l3_offset as usize;
        if want > have {
            if p.prepend(want - have).is_none() {
                return false;
            }
        } else if want < have {
            let _ = p.strip_front(have - want);
        }
        let (src, vlan) = (itf.mac, itf.vlan);
        let d = p.data_mut();
        d[0..6].copy_from_slice(&mac);
        d[6..12].copy_from_slice(&src);
        if vlan != 0 {
            d[12..14].copy_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
            d[14..16].copy_from_slice(&vlan.to_be_bytes());
            d[16..18].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        } else {
            d[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        }
        p.meta_mut().l3_offset = want as u16;
        true
    }
}
