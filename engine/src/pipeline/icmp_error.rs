//! ICMP error messages (time exceeded, destination unreachable, fragmentation
//! needed), built in a fresh buffer per RFC 792/1812 and rate-limited.

use std::net::Ipv4Addr;

use super::local::LOCAL_TTL;
use super::Pipeline;
use crate::buffer::Packet;
use crate::counters::{bump, DropReason};
use crate::wire::icmpv4::{self, Icmpv4Packet};
use crate::wire::ipv4::{self, Ipv4Packet, PROTO_ICMP};

/// Room left for the quoted datagram so the error fits in 576 bytes (RFC 1812 4.3.2.3).
const MAX_QUOTE: usize = 576 - 20 - 8;
/// Headroom-side space reserved for the Ethernet header of the new packet.
const L2_RESERVE: usize = 14;

impl Pipeline {
    /// Sends an ICMP error about `orig` (an IPv4 packet at its `l3_offset`)
    /// back to its source, if the rules and the rate limiter allow.
    pub(super) fn icmp_error(&mut self, orig: &Packet, msg_type: u8, code: u8, mtu: u16, now: u64) {
        if orig.meta().local_origin {
            return;
        }
        let l3 = orig.meta().l3_offset as usize;
        let Ok(ip) = Ipv4Packet::new_checked(&orig.data()[l3..]) else {
            return;
        };
        let src = u32::from(ip.src_addr());
        let dst = u32::from(ip.dst_addr());
        // Never about a non-first fragment, a broadcast/multicast, a martian
        // source, or another ICMP error (RFC 1812 4.3.2.7).
        if ip.frag_offset() != 0
            || dst >> 28 == 0xe
            || dst == u32::MAX
            || super::ipv4_input::is_martian_source(src)
        {
            return;
        }
        if ip.protocol() == PROTO_ICMP {
            match Icmpv4Packet::new_checked(ip.payload()) {
                Ok(icmp) if !icmpv4::is_error(icmp.msg_type()) => {}
                _ => return,
            }
        }
        if !self.icmp_limit.take(now) {
            self.tally.add(DropReason::IcmpRateLimited);
            return;
        }
        let iface = self.ifaces.get(orig.meta().rx_iface);
        let our_addr = Ipv4Addr::from(iface.addr);
        let quote = (ip.total_len() as usize)
            .min(MAX_QUOTE)
            .min(orig.len() - l3);
        let Some(mut p) = self.pool.alloc() else {
            self.tally.add(DropReason::NoBuffer);
            return;
        };
        let ident = self.next_ident();
        let icmp_len = 8 + quote;
        let Some(buf) = p.append(L2_RESERVE + 20 + icmp_len) else {
            return;
        };
        buf[..L2_RESERVE].fill(0);
        if ipv4::emit_header(
            &mut buf[L2_RESERVE..],
            our_addr,
            Ipv4Addr::from(src),
            PROTO_ICMP,
            LOCAL_TTL,
            icmp_len as u16,
            ident,
        )
        .is_err()
        {
            return;
        }
        {
            let body = &mut buf[L2_RESERVE + 20..];
            body[..8].fill(0);
            body[8..].copy_from_slice(&orig.data()[l3..l3 + quote]);
            let mut icmp = Icmpv4Packet::new_unchecked(body);
            icmp.set_msg_type(msg_type);
            icmp.set_code(code);
            if msg_type == icmpv4::TYPE_DEST_UNREACHABLE && code == icmpv4::CODE_FRAG_NEEDED {
                icmp.set_next_hop_mtu(mtu);
            }
            icmp.fill_checksum();
        }
        let m = p.meta_mut();
        m.l3_offset = L2_RESERVE as u16;
        m.rx_iface = orig.meta().rx_iface;
        m.local_origin = true;
        bump(&self.counters.icmp_sent, 1);
        self.output_local(p, now);
    }
}
