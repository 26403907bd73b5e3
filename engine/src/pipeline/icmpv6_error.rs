//! ICMPv6 errors (destination unreachable, packet too big, time exceeded;
//! RFC 4443), built in a fresh buffer, rate-limited like IPv4's, and the
//! routing of packets the engine originates over IPv6.

use std::net::Ipv6Addr;

use super::ipv6_input::flow_hash6;
use super::ipv6_local::LOCAL_HOP_LIMIT;
use super::Pipeline;
use crate::buffer::Packet;
use crate::counters::{bump, DropReason, ICMPV6_ERRORS_SENT};
use crate::fib::fib6::NextHop6;
use crate::wire::icmpv6::{self, Icmpv6Packet, MAX_QUOTE};
use crate::wire::ipv6::{emit_header, Ipv6Packet, HEADER_LEN, NH_ICMPV6};

impl Pipeline {
    /// Sends an ICMPv6 error about `orig` (an IPv6 packet at its
    /// `l3_offset`, received on IPv6 interface `rx_iface`) to its source,
    /// if RFC 4443 2.4 and the rate limiter allow. `param`: the MTU of a
    /// packet too big, the pointer of a parameter problem.
    pub(super) fn icmp6_error(&mut self, orig: &Packet, ty: u8, code: u8, param: u32, now: u64) {
        if orig.meta().local_origin {
            return;
        }
        let l3 = orig.meta().l3_offset as usize;
        let inv = &orig.data()[l3..];
        if !icmpv6::error_allowed(inv, ty, code) {
            return;
        }
        if !self.v6.icmp_limit.take(now) {
            self.tally.add(DropReason::Ipv6IcmpRateLimited);
            return;
        }
        let ip = Ipv6Packet::new_unchecked(inv);
        let to = ip.src_addr();
        let iface = orig.meta().rx_iface;
        let itf = self.v6.ifaces.get(iface);
        let from = match itf.source_for(to) {
            a if a.is_unicast_link_local() && !to.is_unicast_link_local() => {
                self.v6.ifaces.any_global().unwrap_or(a)
            }
            a => a,
        };
        let quote = ip.total_len().min(MAX_QUOTE).min(inv.len());
        let Some(mut p) = self.pool.alloc() else {
            self.tally.add(DropReason::NoBuffer);
            return;
        };
        let icmp_len = 8 + quote;
        let Some(buf) = p.append(14 + HEADER_LEN + icmp_len) else {
            return;
        };
        buf[..14].fill(0);
        if emit_header(
            &mut buf[14..],
            from,
            to,
            NH_ICMPV6,
            LOCAL_HOP_LIMIT,
            icmp_len as u16,
        )
        .is_err()
        {
            return;
        }
        {
            let body = &mut buf[14 + HEADER_LEN..];
            body[..8].fill(0);
            body[8..].copy_from_slice(&orig.data()[l3..l3 + quote]);
            let mut icmp = Icmpv6Packet::new_unchecked(body);
            icmp.set_msg_type(ty);
            icmp.set_code(code);
            icmp.set_rest_of_header(param);
            icmp.fill_checksum(from, to);
        }
        let m = p.meta_mut();
        m.l3_offset = 14;
        m.rx_iface = iface;
        m.local_origin = true;
        bump(&self.counters.ipv6[ICMPV6_ERRORS_SENT], 1);
        self.output_local6(p, now);
    }

    /// Routes an IPv6 packet the engine built or answered (at `l3_offset`);
    /// link-local and multicast destinations leave through `rx_iface`.
    pub(super) fn output_local6(&mut self, p: Packet, now: u64) {
        let l3 = p.meta().l3_offset as usize;
        let Some(dst) = p.data().get(l3 + 24..l3 + 40).map(|d| {
            let o: [u8; 16] = d.try_into().expect("16 bytes");
            Ipv6Addr::from(o)
        }) else {
            return self.drop_packet(p, DropReason::Ipv6Truncated);
        };
        let iface = p.meta().rx_iface;
        if dst.is_multicast() || dst.is_unicast_link_local() {
            return self.forward6(p, iface, dst, now);
        }
        let hash = flow_hash6(&p.data()[l3..]);
        match self.v6.fib.route(dst, hash) {
            Some(NextHop6::Connected { iface }) => self.forward6(p, iface, dst, now),
            Some(NextHop6::Via { iface, gw }) => self.forward6(p, iface, Ipv6Addr::from(gw), now),
            Some(NextHop6::Local { .. }) => self.drop_packet(p, DropReason::Ipv6LocalUnsupported),
            Some(NextHop6::Blackhole | NextHop6::Ecmp { .. }) => {
                self.drop_packet(p, DropReason::Blackhole)
            }
            None => self.drop_packet(p, DropReason::Ipv6NoRoute),
        }
    }
}
