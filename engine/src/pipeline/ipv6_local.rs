//! IPv6 packets for the engine itself (its addresses, link-local included,
//! and the multicast groups it joined): neighbor solicitations and
//! advertisements are handled here (and copied to the punt TAP so the
//! kernel's neighbor cache works too), echo requests to a unicast address
//! are answered in place; everything else (TCP, UDP, other ICMPv6, fragments)
//! goes to the punt TAP when there is one, else is dropped and counted
//! (UDP with an ICMPv6 port unreachable).

use super::Pipeline;
use crate::buffer::Packet;
use crate::counters::{bump, DropReason, ICMPV6_ECHO_REPLIES_SENT};
use crate::neighbor::nd::{answer_solicit, Advert, NdAction};
use crate::neighbor::NeighborUpdate6;
use crate::wire::checksum;
use crate::wire::icmpv6::{self, Icmpv6Packet, NdMessage};
use crate::wire::ipv6::{Ipv6Packet, HEADER_LEN, NH_ICMPV6, NH_UDP};

/// Hop limit of packets the engine originates.
pub(super) const LOCAL_HOP_LIMIT: u8 = 64;

impl Pipeline {
    /// Delivers a packet addressed to us (`multicast`: to a group).
    pub(super) fn ipv6_local(&mut self, p: Packet, multicast: bool, now: u64) {
        let l3 = p.meta().l3_offset as usize;
        let ul = {
            let ip = Ipv6Packet::new_unchecked(&p.data()[l3..]);
            ip.upper_layer()
        };
        let ul = match ul {
            Ok(ul) => ul,
            Err(_) => return self.drop_packet(p, DropReason::Ipv6BadExtHeader),
        };
        if ul.fragment.is_some() {
            // The kernel reassembles; we do not.
            return self.punt_or_drop(p, DropReason::Ipv6LocalUnsupported, now);
        }
        match ul.protocol {
            NH_ICMPV6 => {
                let ty = p.data().get(l3 + ul.offset).copied();
                match ty {
                    Some(icmpv6::TYPE_NEIGHBOR_SOLICIT | icmpv6::TYPE_NEIGHBOR_ADVERT) => {
                        self.nd_input(p, now)
                    }
                    Some(icmpv6::TYPE_ECHO_REQUEST) if !multicast && ul.offset == HEADER_LEN => {
                        self.echo6_reply(p, now)
                    }
                    _ => self.punt_or_drop(p, DropReason::Ipv6IcmpUnsupported, now),
                }
            }
            NH_UDP if !multicast && !self.punt_on() => {
                self.icmp6_error(
                    &p,
                    icmpv6::TYPE_DEST_UNREACHABLE,
                    icmpv6::CODE_PORT_UNREACHABLE,
                    0,
                    now,
                );
                self.drop_packet(p, DropReason::Ipv6LocalUnsupported)
            }
            _ => self.punt_or_drop(p, DropReason::Ipv6LocalUnsupported, now),
        }
    }

    /// To the kernel's TAP when the punt path is on, else dropped as `r`.
    fn punt_or_drop(&mut self, p: Packet, r: DropReason, now: u64) {
        if self.punt_on() {
            self.punt(p, now)
        } else {
            self.drop_packet(p, r)
        }
    }

    /// Answers an echo request (no extension headers) in place.
    fn echo6_reply(&mut self, mut p: Packet, now: u64) {
        let l3 = p.meta().l3_offset as usize;
        let ok = {
            let ip = Ipv6Packet::new_unchecked(&p.data()[l3..]);
            let (src, dst) = (ip.src_addr(), ip.dst_addr());
            !src.is_unspecified()
                && Icmpv6Packet::new_checked(ip.payload())
                    .is_ok_and(|i| i.code() == 0 && i.verify_checksum(src, dst))
        };
        if !ok {
            return self.punt_or_drop(p, DropReason::Ipv6IcmpUnsupported, now);
        }
        {
            let data = &mut p.data_mut()[l3..];
            let mut ip = Ipv6Packet::new_unchecked(&mut *data);
            let (src, dst) = (ip.src_addr(), ip.dst_addr());
            // Swapping the addresses leaves the pseudo-header sum as it is.
            ip.set_src_addr(dst);
            ip.set_dst_addr(src);
            ip.set_hop_limit(LOCAL_HOP_LIMIT);
            let mut icmp = Icmpv6Packet::new_unchecked(ip.payload_mut());
            let old = u16::from_be_bytes([icmpv6::TYPE_ECHO_REQUEST, 0]);
            let new = u16::from_be_bytes([icmpv6::TYPE_ECHO_REPLY, 0]);
            let c = checksum::update16(icmp.checksum(), old, new);
            icmp.set_msg_type(icmpv6::TYPE_ECHO_REPLY);
            icmp.set_checksum(c);
        }
        p.meta_mut().local_origin = true;
        bump(&self.counters.ipv6[ICMPV6_ECHO_REPLIES_SENT], 1);
        self.output_local6(p, now);
    }

    /// A neighbor solicitation or advertisement to us.
    fn nd_input(&mut self, p: Packet, now: u64) {
        let l3 = p.meta().l3_offset as usize;
        let iface = p.meta().rx_iface;
        let frame_src: [u8; 6] = p.data()[6..12].try_into().expect("Ethernet header");
        let (msg, src) = {
            let ip = Ipv6Packet::new_unchecked(&p.data()[l3..]);
            (icmpv6::parse_nd(&ip), ip.src_addr())
        };
        let Ok(msg) = msg else {
            return self.drop_packet(p, DropReason::Ipv6NdMalformed);
        };
        match msg {
            NdMessage::Solicit { target, source_ll } => {
                if !self.v6.ifaces.get(iface).has(target) {
                    return self.drop_packet(p, DropReason::Ipv6NdNotForUs);
                }
                // The kernel's copy of the port answers and learns too.
                self.punt_copy(&p, now);
                if let (false, Some(mac)) = (src.is_unspecified(), source_ll) {
                    self.nd_learn(
                        NeighborUpdate6 {
                            iface,
                            addr: src,
                            mac,
                            advert: None,
                        },
                        now,
                        true,
                    );
                }
                let to_mac = source_ll.unwrap_or(frame_src);
                if let NdAction::Advertise {
                    dst,
                    dst_mac,
                    target,
                    flags,
                } = answer_solicit(target, src, to_mac, true)
                {
                    self.send_na(iface, dst, dst_mac, target, flags);
                }
            }
            NdMessage::Advert {
                target,
                router,
                solicited,
                override_flag,
                target_ll,
            } => {
                self.punt_copy(&p, now);
                if self.v6.ifaces.get(iface).has(target) {
                    // Someone claims our address: nothing we change.
                    return;
                }
                self.nd_learn(
                    NeighborUpdate6 {
                        iface,
                        addr: target,
                        mac: target_ll.unwrap_or(frame_src),
                        advert: Some(Advert {
                            router,
                            solicited,
                            override_flag,
                            target_ll,
                        }),
                    },
                    now,
                    true,
                );
            }
        }
    }
}
