//! Packets addressed to the engine itself: ping is answered in place,
//! WireGuard's UDP goes to its tunnel; with the punt path on, everything
//! else goes to the kernel's TAP for the port ([`crate::punt`]); without
//! it, UDP gets port unreachable and the rest is counted and dropped. Also
//! routes packets the engine originates.

use super::Pipeline;
use crate::buffer::Packet;
use crate::counters::{bump, DropReason};
use crate::fib::NextHop;
use crate::wire::checksum;
use crate::wire::icmpv4::{self, Icmpv4Packet};
use crate::wire::ipv4::{Ipv4Packet, PROTO_ICMP, PROTO_TCP, PROTO_UDP};

/// TTL of packets the engine originates.
pub(super) const LOCAL_TTL: u8 = 64;

impl Pipeline {
    pub(super) fn local_input(&mut self, mut p: Packet, now: u64) {
        let l3 = p.meta().l3_offset as usize;
        let (proto, frag) = {
            let ip = Ipv4Packet::new_unchecked(&p.data()[l3..]);
            (ip.protocol(), ip.more_frags() || ip.frag_offset() != 0)
        };
        if frag {
            if self.punt_on() {
                // The kernel reassembles.
                return self.punt(p, now);
            }
            // We do not reassemble datagrams addressed to us.
            return self.drop_packet(p, DropReason::LocalUnsupported);
        }
        match proto {
            PROTO_ICMP => {
                if self.echo_reply_in_place(&mut p) {
                    p.meta_mut().local_origin = true;
                    bump(&self.counters.icmp_sent, 1);
                    self.output_local(p, now);
                } else if self.punt_on() {
                    // Echo replies to the kernel's pings, errors about its
                    // connections.
                    self.punt(p, now);
                } else {
                    self.drop_packet(p, DropReason::IcmpUnsupported);
                }
            }
            PROTO_UDP => {
                let l3 = p.meta().l3_offset as usize;
                let wg = {
                    let ip = Ipv4Packet::new_unchecked(&p.data()[l3..]);
                    let dport = ip
                        .payload()
                        .get(2..4)
                        .map(|b| u16::from_be_bytes([b[0], b[1]]));
                    dport.and_then(|d| self.wg_listener(u32::from(ip.dst_addr()), d))
                };
                if let Some(t) = wg {
                    return self.wg_input(p, t, now);
                }
                if self.punt_on() {
                    return self.punt(p, now);
                }
                self.icmp_error(
                    &p,
                    icmpv4::TYPE_DEST_UNREACHABLE,
                    icmpv4::CODE_PORT_UNREACHABLE,
                    0,
                    now,
                );
                self.drop_packet(p, DropReason::LocalUnsupported);
            }
            PROTO_TCP if self.punt_on() => self.punt(p, now),
            PROTO_TCP => self.drop_packet(p, DropReason::LocalUnsupported),
            _ if self.punt_on() => self.punt(p, now),
            _ => {
                self.icmp_error(
                    &p,
                    icmpv4::TYPE_DEST_UNREACHABLE,
                    icmpv4::CODE_PROTO_UNREACHABLE,
                    0,
                    now,
                );
                self.drop_packet(p, DropReason::LocalUnsupported);
            }
        }
    }

    /// Turns a valid echo request into its reply; false if it is not one.
    fn echo_reply_in_place(&mut self, p: &mut Packet) -> bool {
        let l3 = p.meta().l3_offset as usize;
        let data = &mut p.data_mut()[l3..];
        let mut ip = Ipv4Packet::new_unchecked(&mut *data);
        let hl = ip.header_len();
        let total = ip.total_len() as usize;
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        {
            let Ok(icmp) = Icmpv4Packet::new_checked(&ip.payload_mut()[..]) else {
                return false;
            };
            if icmp.msg_type() != icmpv4::TYPE_ECHO_REQUEST
                || icmp.code() != 0
                || !icmp.verify_checksum()
            {
                return false;
            }
        }
        ip.set_src_addr(dst);
        ip.set_dst_addr(src);
        ip.set_ttl(LOCAL_TTL);
        ip.fill_checksum();
        let mut icmp = Icmpv4Packet::new_unchecked(&mut data[hl..total]);
        let old = u16::from_be_bytes([icmpv4::TYPE_ECHO_REQUEST, 0]);
        let new = u16::from_be_bytes([icmpv4::TYPE_ECHO_REPLY, 0]);
        let c = checksum::update16(icmp.checksum(), old, new);
        icmp.set_msg_type(icmpv4::TYPE_ECHO_REPLY);
        icmp.set_checksum(c);
        true
    }

    /// Routes a packet the engine built (an L3 packet at `l3_offset`).
    pub(super) fn output_local(&mut self, mut p: Packet, now: u64) {
        let l3 = p.meta().l3_offset as usize;
        let (dst, hash) = {
            let ip = Ipv4Packet::new_unchecked(&p.data()[l3..]);
            (
                u32::from(ip.dst_addr()),
                super::ipv4_lookup::packet_flow_hash(&ip),
            )
        };
        let (iface, nh) = match self.fib.route(dst, hash) {
            Some(NextHop::Connected { iface }) => (iface, dst),
            Some(NextHop::Via { iface, gw }) => (iface, gw),
            Some(NextHop::Local { .. }) => {
                return self.drop_packet(p, DropReason::LocalUnsupported)
            }
            Some(NextHop::Blackhole) => return self.drop_packet(p, DropReason::Blackhole),
            Some(NextHop::Tunnel { tunnel }) => return self.wg_output_local(p, tunnel),
            _ => return self.drop_packet(p, DropReason::NoRoute),
        };
        let m = p.meta_mut();
        m.tx_iface = iface;
        m.next_hop = nh;
        self.forward(p, now);
    }
}
