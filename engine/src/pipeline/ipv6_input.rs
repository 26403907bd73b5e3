//! The IPv6 path: the Ethernet stage marks IPv6 frames ([`Disposition::Ipv6`])
//! and the IPv4 stages (LB, NAT, classification, WireGuard, the fast path)
//! pass them by; at dispatch each is handled here, one at a time: header
//! checks (version, payload length against the frame), source and scope
//! checks, multicast groups we joined, the LPM (ECMP by flow hash), hop
//! limit and egress MTU (with their ICMPv6 errors), then next-hop
//! resolution by ND ([`super::nd6`]). Packets for us go to
//! [`super::ipv6_local`].
//!
//! [`Disposition::Ipv6`]: crate::buffer::Disposition::Ipv6

use std::net::Ipv6Addr;
use std::sync::Arc;

use super::flow_hash;
use super::icmp_limit::TokenBucket;
use super::iface6::Interfaces6;
use super::Pipeline;
use crate::buffer::Packet;
use crate::config::EngineConfig;
use crate::counters::{DropReason, FIB6_ROUTES, ROUTE6_GENERATION};
use crate::fib::fib6::{Fib6, NextHop6};
use crate::neighbor::nd::{NdCache, NdTimers};
use crate::neighbor::PendingQueue;
use crate::ports::LinkInfo;
use crate::wire::icmpv6;
use crate::wire::ipv6::{Ipv6Packet, NH_TCP, NH_UDP};
use crate::wire::WireError;

/// ND cache slots per worker (IPv6 on), and with IPv6 off.
const ND_SLOTS: usize = 4096;
const ND_SLOTS_OFF: usize = 16;

/// A worker's IPv6 state.
pub(super) struct Ipv6State {
    pub(super) ifaces: Interfaces6,
    pub(super) fib: Arc<Fib6>,
    pub(super) nd: NdCache,
    /// Packets waiting for ND, by cache slot.
    pub(super) pending: PendingQueue,
    /// Configured permanent neighbors: (interface, address, MAC).
    pub(super) statics: Vec<(u16, Ipv6Addr, [u8; 6])>,
    pub(super) icmp_limit: TokenBucket,
    /// xorshift state for ND's randomised reachable time.
    pub(super) rng: u64,
}

impl Ipv6State {
    pub(super) fn new(cfg: &EngineConfig, links: &[LinkInfo]) -> Self {
        let ifaces = Interfaces6::build(cfg, links);
        let fib = Fib6::build(cfg).unwrap_or_default();
        let statics = cfg
            .ipv6
            .neighbors
            .iter()
            .filter_map(|n| {
                let port = cfg.port_index(&n.port)? as u16;
                let iface = ifaces.lookup(port, n.vlan.unwrap_or(0))?;
                Some((iface, n.address, n.mac))
            })
            .collect();
        let slots = if ifaces.enabled() {
            ND_SLOTS
        } else {
            ND_SLOTS_OFF
        };
        Ipv6State {
            ifaces,
            fib: Arc::new(fib),
            nd: NdCache::new(slots, NdTimers::default()),
            pending: PendingQueue::new(cfg.arp.queue_len),
            statics,
            icmp_limit: TokenBucket::new(cfg.icmp.errors_per_sec, cfg.icmp.burst),
            rng: 0x9E37_79B9_7F4A_7C15,
        }
    }

    /// The next pseudo-random number.
    pub(super) fn rand(&mut self) -> u32 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        (x >> 32) as u32
    }
}

/// Folds an IPv6 address to 32 bits for the flow hash.
#[inline]
fn fold(a: &[u8]) -> u32 {
    let w = |i: usize| u32::from_be_bytes([a[i], a[i + 1], a[i + 2], a[i + 3]]);
    w(0) ^ w(4) ^ w(8) ^ w(12)
}

/// Symmetric flow hash of an IPv6 packet (`ip` starts at its header,
/// which `new_checked` accepted): addresses, upper-layer protocol, and the
/// ports of TCP/UDP in a first (or no) fragment.
pub(super) fn flow_hash6(ip: &[u8]) -> u32 {
    let v = Ipv6Packet::new_unchecked(ip);
    let (mut proto, mut sport, mut dport) = (v.next_header(), 0, 0);
    if let Ok(ul) = v.upper_layer() {
        proto = ul.protocol;
        if (proto == NH_TCP || proto == NH_UDP) && ul.fragment.is_none_or(|f| f.offset == 0) {
            if let Some(p) = v.packet().get(ul.offset..ul.offset + 4) {
                sport = u16::from_be_bytes([p[0], p[1]]);
                dport = u16::from_be_bytes([p[2], p[3]]);
            }
        }
    }
    flow_hash::symmetric(fold(&ip[8..24]), fold(&ip[24..40]), proto, sport, dport)
}

impl Pipeline {
    /// Switches to a new IPv6 FIB (between two batches) and records what
    /// it holds in the worker's gauges.
    pub fn set_fib6(&mut self, fib: Arc<Fib6>) {
        let c = &self.counters.ipv6;
        c[FIB6_ROUTES].store(fib.routes() as u64, std::sync::atomic::Ordering::Relaxed);
        c[ROUTE6_GENERATION].store(
            fib.pushed_generation(),
            std::sync::atomic::Ordering::Relaxed,
        );
        self.v6.fib = fib;
    }

    /// The Ethernet stage's part for an IPv6 frame on `port`/`vlan` sent to
    /// `dst`: its IPv6 interface, or why it is dropped.
    #[inline]
    pub(super) fn ipv6_l2(&self, port: u16, vlan: u16, dst: &[u8; 6]) -> Result<u16, DropReason> {
        if !self.v6.ifaces.enabled() {
            return Err(DropReason::EthUnsupportedType);
        }
        let Some(iface) = self.v6.ifaces.lookup(port, vlan) else {
            return Err(DropReason::VlanUnknown);
        };
        // Unicast to our MAC, or IPv6 multicast (33:33:…; groups checked at L3).
        if *dst != self.v6.ifaces.get(iface).mac && dst[..2] != [0x33, 0x33] {
            return Err(DropReason::EthNotForUs);
        }
        Ok(iface)
    }

    /// One IPv6 packet marked by the Ethernet stage.
    pub(super) fn ipv6_input(&mut self, mut p: Packet, now: u64) {
        let l3 = p.meta().l3_offset as usize;
        let iface = p.meta().rx_iface;
        let (src, dst, total, hop) = match Ipv6Packet::new_checked(&p.data()[l3..]) {
            Ok(ip) => (ip.src_addr(), ip.dst_addr(), ip.total_len(), ip.hop_limit()),
            Err(WireError::BadVersion) => return self.drop_packet(p, DropReason::Ipv6BadVersion),
            Err(WireError::BadTotalLen) => return self.drop_packet(p, DropReason::Ipv6BadLength),
            Err(_) => return self.drop_packet(p, DropReason::Ipv6Truncated),
        };
        // Ethernet padding.
        p.truncate(l3 + total);
        if src.is_multicast() || src.is_loopback() || dst.is_loopback() || dst.is_unspecified() {
            return self.drop_packet(p, DropReason::Ipv6BadSource);
        }
        let itf = self.v6.ifaces.get(iface);
        if dst.is_multicast() {
            if itf.joined(dst) {
                return self.ipv6_local(p, true, now);
            }
            return self.drop_packet(p, DropReason::Ipv6MulticastNotJoined);
        }
        if dst.is_unicast_link_local() {
            if itf.has(dst) {
                return self.ipv6_local(p, false, now);
            }
            return self.drop_packet(p, DropReason::Ipv6NotForwardable);
        }
        let fib = self.v6.fib.clone();
        let Some(idx) = fib.lookup(dst) else {
            self.icmp6_error(
                &p,
                icmpv6::TYPE_DEST_UNREACHABLE,
                icmpv6::CODE_NO_ROUTE,
                0,
                now,
            );
            return self.drop_packet(p, DropReason::Ipv6NoRoute);
        };
        let hash = if fib.is_ecmp(idx) {
            flow_hash6(&p.data()[l3..])
        } else {
            0
        };
        let (oif, nh) = match fib.next_hop(idx, hash) {
            NextHop6::Local { .. } => return self.ipv6_local(p, false, now),
            NextHop6::Blackhole | NextHop6::Ecmp { .. } => {
                return self.drop_packet(p, DropReason::Blackhole)
            }
            NextHop6::Connected { iface } => (iface, dst),
            NextHop6::Via { iface, gw } => (iface, Ipv6Addr::from(gw)),
        };
        if src.is_unspecified() {
            return self.drop_packet(p, DropReason::Ipv6BadSource);
        }
        if src.is_unicast_link_local() {
            // RFC 4291 2.5.6: never forwarded off its link.
            self.icmp6_error(
                &p,
                icmpv6::TYPE_DEST_UNREACHABLE,
                icmpv6::CODE_BEYOND_SCOPE,
                0,
                now,
            );
            return self.drop_packet(p, DropReason::Ipv6NotForwardable);
        }
        if hop <= 1 {
            self.icmp6_error(
                &p,
                icmpv6::TYPE_TIME_EXCEEDED,
                icmpv6::CODE_HOP_LIMIT_EXCEEDED,
                0,
                now,
            );
            return self.drop_packet(p, DropReason::Ipv6HopLimit);
        }
        let mtu = self.v6.ifaces.get(oif).mtu;
        if total > usize::from(mtu) {
            self.icmp6_error(&p, icmpv6::TYPE_PACKET_TOO_BIG, 0, u32::from(mtu), now);
            return self.drop_packet(p, DropReason::Ipv6TooBig);
        }
        p.data_mut()[l3 + 7] = hop - 1;
        self.forward6(p, oif, nh, now);
    }
}
