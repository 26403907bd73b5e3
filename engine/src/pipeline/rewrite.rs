//! Next-hop resolution and the L2 rewrite: find the neighbor's MAC (or hold
//! the packet while ARP asks), write the Ethernet header (with the egress
//! VLAN tag) in front of the IP header, and queue it on the egress port.

use super::Pipeline;
use crate::buffer::Packet;
use crate::counters::DropReason;
use crate::neighbor::Resolve;
use crate::wire::ethernet::{ETHERTYPE_IPV4, ETHERTYPE_VLAN};
use crate::wire::icmpv4;

/// A resolved next hop with its finished Ethernet header, reused for the
/// packets of one batch that go the same way (VPP's adjacency rewrite string).
#[derive(Clone, Copy, Debug)]
pub(super) struct Adjacency {
    iface: u16,
    next_hop: u32,
    port: u16,
    len: u8,
    header: [u8; 18],
}

impl Pipeline {
    /// Sends a routed packet (meta has `tx_iface` and `next_hop`).
    #[inline(always)]
    pub(super) fn forward(&mut self, p: Packet, now: u64) {
        let iface = p.meta().tx_iface;
        let nh = p.meta().next_hop;
        let l3 = p.meta().l3_offset;
        self.forward_to(p, iface, nh, l3, now)
    }

    /// [`forward`](Self::forward) with the egress interface and next hop
    /// passed in rather than read from the metadata (the fast path's way:
    /// no store and reload through the metadata line).
    #[inline(always)]
    pub(super) fn forward_to(&mut self, mut p: Packet, iface: u16, nh: u32, l3: u16, now: u64) {
        if let Some(adj) = self.adj_cache {
            if adj.iface == iface && adj.next_hop == nh {
                return if apply(&mut p, &adj, l3) {
                    self.enqueue_tx(adj.port, p)
                } else {
                    self.drop_packet(p, DropReason::NoBuffer)
                };
            }
        }
        self.forward_slow(p, iface, nh, l3, now)
    }

    #[inline(never)]
    fn forward_slow(&mut self, mut p: Packet, iface: u16, nh: u32, l3: u16, now: u64) {
        match self.neigh.resolve(iface, nh, now) {
            Resolve::Mac { mac, refresh } => {
                if refresh {
                    self.send_arp_request(iface, nh);
                }
                let adj = self.adjacency(iface, nh, mac);
                if !refresh {
                    self.adj_cache = Some(adj);
                }
                if apply(&mut p, &adj, l3) {
                    self.enqueue_tx(adj.port, p);
                } else {
                    self.drop_packet(p, DropReason::NoBuffer);
                }
            }
            Resolve::Wait { slot, request } => {
                if request {
                    self.send_arp_request(iface, nh);
                }
                // Released later through `forward`, which reads these.
                let m = p.meta_mut();
                m.tx_iface = iface;
                m.next_hop = nh;
                m.l3_offset = l3;
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

    /// The Ethernet header towards `mac` through interface `iface`.
    fn adjacency(&self, iface: u16, next_hop: u32, mac: [u8; 6]) -> Adjacency {
        let itf = self.ifaces.get(iface);
        let mut header = [0u8; 18];
        header[0..6].copy_from_slice(&mac);
        header[6..12].copy_from_slice(&itf.mac);
        let len = if itf.vlan != 0 {
            header[12..14].copy_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
            header[14..16].copy_from_slice(&itf.vlan.to_be_bytes());
            header[16..18].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
            18
        } else {
            header[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
            14
        };
        Adjacency {
            iface,
            next_hop,
            port: itf.port,
            len,
            header,
        }
    }
}

/// Puts the adjacency's header in front of the L3 header (at `l3`, the
/// packet's L3 offset), growing or shrinking the L2 part as the VLAN tags
/// differ; false without headroom. Always inlined: the fast path's
/// `l3` is the constant 14, which folds its size checks away.
#[inline(always)]
fn apply(p: &mut Packet, adj: &Adjacency, l3: u16) -> bool {
    let want = adj.len as usize;
    let have = l3 as usize;
    if want > have {
        if p.prepend(want - have).is_none() {
            return false;
        }
    } else if want < have {
        let _ = p.strip_front(have - want);
    }
    // Two fixed sizes, so each copy is a few moves instead of a memcpy call.
    let data = p.data_mut();
    if want == 14 {
        data[..14].copy_from_slice(&adj.header[..14]);
    } else {
        data[..18].copy_from_slice(&adj.header);
    }
    if want != have {
        p.meta_mut().l3_offset = want as u16;
    }
    true
}
