//! The fast path: what nearly every packet of a router is — an untagged
//! IPv4 frame to our MAC, a plain 20-byte header, a unicast route through
//! one next hop, TTL above 1, within the MTU — done in two passes over the
//! batch around one batched LPM, with no per-stage revisits. This is the
//! form for NAT, the balancer and the classifier, which act between the
//! checks and the lookup; a plain router takes the one-pass form of
//! [`super::fast_plain`].
//!
//! Anything else (IPv6, VLAN tags, ARP, options, bad headers, local delivery, ECMP,
//! TTL expiry, fragmentation, no route) is set aside untouched and runs
//! through the full stages afterwards, which also count its drops and build
//! its ICMP errors.
//!
//! NAT (see [`super::nat_stage`]): a plain packet from the outside to an
//! outside address is translated in pass 1 (its new destination is what the
//! lookup sees), one leaving through the outside interface in pass 2 after
//! its checks — each only on the worker owning its session; others, and
//! hairpins, are set aside for the stages, which hand them over. Both paths apply the same checks; the fast one only
//! skips the work of stages that have nothing to do. Packets set aside can
//! leave after the fast ones of the same batch.

use super::iface::Interfaces;
use super::lb_stage::FastLb;
use super::nat_stage::FastNat;
use super::{ipv4_input, Pipeline};
use crate::buffer::{Batch, Packet, PacketMeta};
use crate::counters::DropReason;
use crate::fib::lpm::LPM_MISS;
use crate::fib::{Fib, NextHop};
use crate::wire::ethernet::ETHERTYPE_IPV4;

/// Frame bytes the fast path reads: Ethernet header + 20-byte IPv4 header.
pub(super) const FAST_HEADERS: usize = 14 + 20;

/// What pass 1 decided for packet `i` (`Pipeline::lane`).
pub(super) const LANE_SLOW: u8 = 0;
const LANE_PLAIN: u8 = 1;
/// NAT dropped it in pass 1 (counted there): pass 2 frees it.
const LANE_NAT_DROP: u8 = 2;
/// Rewritten by the balancer in pass 1: forward like a plain packet, but
/// NAT must not touch it.
const LANE_LB: u8 = 3;
/// The balancer found no backend for a new flow: pass 2 drops it.
const LANE_LB_DROP: u8 = 4;
/// The balancer had no room to pin a new flow: pass 2 drops it.
const LANE_LB_FULL: u8 = 5;

impl Pipeline {
    /// Forwards the batch's plain packets; leaves every other one in `slow`
    /// (in arrival order) for the full stages.
    /// Plain packets never touch their metadata: only those set aside get
    /// theirs (the port they came in on), on the way to `slow`.
    pub(super) fn fast_path(&mut self, batch: &mut Batch, port: u16, slow: &mut Batch, now: u64) {
        let n = batch.len();
        let (mac, iface) = self.ifaces.untagged(port).unwrap_or(([0; 6], u16::MAX));
        // NAT: which packets it must see (see the module notes).
        let nat_on = self.nat.is_some();
        let from_outside = nat_on && iface == self.nat_outside_iface();
        let nat_out_iface = self.nat_out_iface_for(iface);
        if nat_on {
            self.nat_prefetch(batch, from_outside);
        }
        let lb_on = self.lb_on();
        if lb_on {
            self.lb_prefetch(batch);
        }
        self.classify_prefetch(batch);
        // Pass 1: L2 + L3 checks; the destination of each plain packet.
        for i in 0..n {
            self.lane[i] = LANE_SLOW;
            let p = &mut batch.packets_mut()[i];
            let Some(h) = p.data().get(..FAST_HEADERS) else {
                continue;
            };
            if h[12..14] != ETHERTYPE_IPV4.to_be_bytes() || h[..6] != mac || iface == u16::MAX {
                continue;
            }
            let ip: &[u8; 20] = h[14..].try_into().expect("20 bytes");
            let Some(total) = ipv4_input::fast_check(ip, p.len() - 14) else {
                continue;
            };
            let mut dst = u32::from_be_bytes([ip[16], ip[17], ip[18], ip[19]]);
            p.truncate(14 + total);
            if lb_on {
                let ip = &mut batch.packets_mut()[i].data_mut()[14..];
                match self.lb_fast(ip, now) {
                    FastLb::NotLb => {}
                    FastLb::Done => {
                        self.dst[i] = u32::from_be_bytes([ip[16], ip[17], ip[18], ip[19]]);
                        self.lane[i] = LANE_LB;
                        continue;
                    }
                    FastLb::Slow => continue,
                    FastLb::Drop(r) => {
                        self.lane[i] = if r == DropReason::LbTableFull {
                            LANE_LB_FULL
                        } else {
                            LANE_LB_DROP
                        };
                        continue;
                    }
                }
            }
            if nat_on && self.nat_wants_dst(dst) {
                if !from_outside {
                    // A hairpin: the stages.
                    continue;
                }
                let p = &mut batch.packets_mut()[i];
                let ip = &mut p.data_mut()[14..];
                match self.nat_fast_inbound(ip, i, now) {
                    FastNat::Done => dst = u32::from_be_bytes([ip[16], ip[17], ip[18], ip[19]]),
                    FastNat::Slow => continue,
                    FastNat::Drop => {
                        self.lane[i] = LANE_NAT_DROP;
                        continue;
                    }
                }
            }
            self.dst[i] = dst;
            self.lane[i] = LANE_PLAIN;
        }
        // One LPM pass (set-aside packets' slots hold stale addresses; their
        // results are ignored).
        // A clone (two atomic operations per batch): borrowing through a raw
        // pointer saved 1-2 % but would rest on nothing in this function
        // ever replacing `self.fib`; not worth an `unsafe`.
        let fib = self.fib.clone();
        fib.lookup_batch(&self.dst[..n], &mut self.nh[..n]);
        // Pass 2: next hop, TTL, MTU, rewrite, TX. Consecutive packets
        // mostly share a route: its next hop and MTU are kept from the last
        // packet with the same LPM result.
        let mut last: Option<Route> = None;
        batch.take_each(|i, mut p| {
            let idx = self.nh[i];
            let lane = self.lane[i];
            if (lane != LANE_PLAIN && lane != LANE_LB) || idx == LPM_MISS {
                match lane {
                    LANE_NAT_DROP => self.drop_packet(p, DropReason::Nat),
                    LANE_LB_DROP => self.drop_packet(p, DropReason::LbNoBackend),
                    LANE_LB_FULL => self.drop_packet(p, DropReason::LbTableFull),
                    _ => set_aside(slow, p, port, lane == LANE_LB),
                }
                return;
            }
            let route = match last {
                Some(r) if r.idx == idx => r,
                _ => {
                    let Some(r) = Route::of(&fib, &self.ifaces, idx) else {
                        set_aside(slow, p, port, lane == LANE_LB);
                        return;
                    };
                    last = Some(r);
                    r
                }
            };
            let (iface, next_hop) = (route.iface, route.gw.unwrap_or(self.dst[i]));
            let Some(h) = p.data_mut().get_mut(14..FAST_HEADERS) else {
                set_aside(slow, p, port, lane == LANE_LB);
                return;
            };
            let (ttl, total) = (h[8], u16::from_be_bytes([h[2], h[3]]));
            let nat_out = iface == nat_out_iface && lane != LANE_LB;
            if ttl <= 1
                || total > route.mtu
                || (nat_out
                    && !self.nat_owns_inside(u32::from_be_bytes([h[12], h[13], h[14], h[15]])))
            {
                set_aside(slow, p, port, lane == LANE_LB);
                return;
            }
            let csum =
                crate::wire::checksum::ttl_decrement_update(u16::from_be_bytes([h[10], h[11]]));
            h[8] = ttl - 1;
            h[10..12].copy_from_slice(&csum.to_be_bytes());
            // Between inbound and outbound NAT: the inside addresses.
            if let Some(c) = self.classify.as_mut() {
                c.observe(&p.data()[14..], now);
            }
            if nat_out && self.nat_fast_outbound(&mut p.data_mut()[14..], i, now) == FastNat::Drop {
                self.drop_packet(p, DropReason::Nat);
                return;
            }
            self.forward_to(p, iface, next_hop, 14, now);
        });
    }
}

/// Hands a packet to the full stages with fresh metadata (whatever a
/// driver left there is not trusted: the fast path never reads it, so ports
/// need not reset it) naming the port it came in on.
#[inline]
pub(super) fn set_aside(slow: &mut Batch, mut p: Packet, port: u16, lb_done: bool) {
    *p.meta_mut() = PacketMeta {
        rx_port: port,
        lb_done,
        ..PacketMeta::default()
    };
    // `slow` has room for a whole batch.
    let _ = slow.push(p);
}

/// What pass 2 keeps of the last route it used.
#[derive(Clone, Copy)]
pub(super) struct Route {
    /// The LPM result it belongs to.
    pub(super) idx: u32,
    pub(super) iface: u16,
    /// The gateway; None for a connected subnet (the destination itself).
    pub(super) gw: Option<u32>,
    pub(super) mtu: u16,
}

impl Route {
    /// The route behind LPM result `idx` when the fast path can take it: one
    /// next hop (an ECMP group or a local/blackhole entry goes to the stages).
    #[inline]
    pub(super) fn of(fib: &Fib, ifaces: &Interfaces, idx: u32) -> Option<Route> {
        let (iface, gw) = match fib.next_hop(idx, 0) {
            _ if fib.is_ecmp(idx) => return None,
            NextHop::Connected { iface } => (iface, None),
            NextHop::Via { iface, gw } => (iface, Some(gw)),
            _ => return None,
        };
        Some(Route {
            idx,
            iface,
            gw,
            mtu: ifaces.get(iface).mtu,
        })
    }
}
