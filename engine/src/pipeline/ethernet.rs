//! Stage 1: Ethernet and 802.1Q. Finds the L3 header and the interface a
//! frame belongs to, hands ARP to [`super::arp`], passes IPv4 on and marks
//! IPv6 for [`super::ipv6_input`].

use super::{ipv4_input, Pipeline};
use crate::buffer::{Batch, Disposition};
use crate::counters::DropReason;
use crate::wire::ethernet::{self, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6};

impl Pipeline {
    pub(super) fn ethernet_input(&mut self, batch: &mut Batch, now: u64) {
        for p in batch.packets_mut() {
            let port = p.meta().rx_port;
            // Fast path: an untagged IPv4 frame to the port's own MAC with
            // a 20-byte header that passes every check of `ipv4_input`.
            if let (Some(h), Some((mac, iface))) = (p.data().get(..34), self.ifaces.untagged(port))
            {
                if h[12..14] == ETHERTYPE_IPV4.to_be_bytes() && h[..6] == mac && iface != u16::MAX {
                    let ip: &[u8; 20] = h[14..34].try_into().expect("20 bytes");
                    let checked = ipv4_input::fast_check(ip, p.len() - 14);
                    let m = p.meta_mut();
                    m.l3_offset = 14;
                    m.vlan = 0;
                    m.rx_iface = iface;
                    if let Some(total) = checked {
                        m.l3_checked = true;
                        p.truncate(14 + total);
                    }
                    continue;
                }
            }
            let l2 = match ethernet::parse_l2(p.data()) {
                Ok(l2) => l2,
                Err(_) => {
                    p.meta_mut().disposition = Disposition::Drop(DropReason::EthTruncated);
                    continue;
                }
            };
            let dst: [u8; 6] = p.data()[..6]
                .try_into()
                .expect("parse_l2 checked the length");
            if l2.ethertype == ETHERTYPE_IPV6 {
                // Its own interfaces and MAC rules (multicast groups).
                let d = self.ipv6_l2(port, l2.vlan.unwrap_or(0), &dst);
                let m = p.meta_mut();
                m.l3_offset = l2.l3_offset as u16;
                m.vlan = l2.vlan.unwrap_or(0);
                match d {
                    Ok(iface) => {
                        m.rx_iface = iface;
                        m.disposition = Disposition::Ipv6;
                    }
                    Err(r) => m.disposition = Disposition::Drop(r),
                }
                continue;
            }
            if dst != self.ifaces.port_mac(port) && !ethernet::is_broadcast(&dst) {
                p.meta_mut().disposition = Disposition::Drop(DropReason::EthNotForUs);
                continue;
            }
            let vlan = l2.vlan.unwrap_or(0);
            let Some(iface) = self.ifaces.lookup(port, vlan) else {
                p.meta_mut().disposition = Disposition::Drop(DropReason::VlanUnknown);
                continue;
            };
            let m = p.meta_mut();
            m.l3_offset = l2.l3_offset as u16;
            m.vlan = vlan;
            m.rx_iface = iface;
            match l2.ethertype {
                ETHERTYPE_IPV4 if !ethernet::is_broadcast(&dst) => {}
                ETHERTYPE_IPV4 => m.disposition = Disposition::Drop(DropReason::NotForwardable),
                ETHERTYPE_ARP => self.arp_input(p, now),
                _ => m.disposition = Disposition::Drop(DropReason::EthUnsupportedType),
            }
        }
    }
}
