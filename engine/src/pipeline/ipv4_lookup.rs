//! Stage 3: route lookup a batch at a time (one LPM pass over every
//! destination), then per packet: local / drop / forward, ECMP choice by flow
//! hash, TTL check and decrement, egress MTU.

use super::flow_hash;
use super::Pipeline;
use crate::buffer::{Batch, Disposition, Packet};
use crate::counters::DropReason;
use crate::fib::lpm::LPM_MISS;
use crate::fib::NextHop;
use crate::wire::checksum;
use crate::wire::icmpv4;
use crate::wire::ipv4::{Ipv4Packet, PROTO_TCP, PROTO_UDP};

/// Flow hash of an IPv4 packet (ports for TCP/UDP first fragments).
pub(super) fn packet_flow_hash(ip: &Ipv4Packet<&[u8]>) -> u32 {
    let (mut sport, mut dport) = (0, 0);
    let payload = ip.payload();
    if (ip.protocol() == PROTO_TCP || ip.protocol() == PROTO_UDP)
        && ip.frag_offset() == 0
        && payload.len() >= 4
    {
        sport = u16::from_be_bytes([payload[0], payload[1]]);
        dport = u16::from_be_bytes([payload[2], payload[3]]);
    }
    flow_hash::symmetric(
        u32::from(ip.src_addr()),
        u32::from(ip.dst_addr()),
        ip.protocol(),
        sport,
        dport,
    )
}

impl Pipeline {
    pub(super) fn ipv4_lookup(&mut self, batch: &mut Batch, now: u64) {
        let mut k = 0;
        for p in batch.packets() {
            if p.meta().disposition == Disposition::Continue {
                self.dst[k] =
                    header20(p).map_or(0, |h| u32::from_be_bytes([h[16], h[17], h[18], h[19]]));
                k += 1;
            }
        }
        if k == 0 {
            return;
        }
        let fib = self.fib.clone();
        fib.lookup_batch(&self.dst[..k], &mut self.nh[..k]);
        let mut j = 0;
        for p in batch.packets_mut() {
            if p.meta().disposition != Disposition::Continue {
                continue;
            }
            let idx = self.nh[j];
            j += 1;
            if idx == LPM_MISS {
                self.icmp_error(
                    p,
                    icmpv4::TYPE_DEST_UNREACHABLE,
                    icmpv4::CODE_NET_UNREACHABLE,
                    0,
                    now,
                );
                p.meta_mut().disposition = Disposition::Drop(DropReason::NoRoute);
                continue;
            }
            let l3 = p.meta().l3_offset as usize;
            let hash = if fib.is_ecmp(idx) {
                packet_flow_hash(&Ipv4Packet::new_unchecked(&p.data()[l3..]))
            } else {
                0
            };
            let (iface, next_hop) = match fib.next_hop(idx, hash) {
                NextHop::Local { .. } => {
                    p.meta_mut().disposition = Disposition::Local;
                    continue;
                }
                NextHop::Broadcast { .. } => {
                    p.meta_mut().disposition = Disposition::Drop(DropReason::NotForwardable);
                    continue;
                }
                NextHop::Tunnel { tunnel } => {
                    self.classify_observe(p, now);
                    self.wg_route(p, tunnel, now);
                    continue;
                }
                NextHop::Blackhole | NextHop::Ecmp { .. } => {
                    p.meta_mut().disposition = Disposition::Drop(DropReason::Blackhole);
                    continue;
                }
                NextHop::Connected { iface } => (iface, self.dst[j - 1]),
                NextHop::Via { iface, gw } => (iface, gw),
            };
            // Leaving through NAT's outside interface: only the session's
            // worker may translate it; others hand it over unchanged.
            let nat_out = match self.nat_out_owner(p, iface) {
                Some(w) if w != self.nat_worker() => {
                    p.meta_mut().disposition = if p.meta().handed_off {
                        Disposition::Drop(DropReason::HandoffLoop)
                    } else {
                        Disposition::Handoff(w as u16)
                    };
                    continue;
                }
                owner => owner.is_some(),
            };
            let fits = self.forward_checks(p, iface, now);
            if fits.is_ok() {
                // After inbound NAT, before outbound: the inside addresses,
                // on the worker owning the NAT session.
                self.classify_observe(p, now);
            }
            if nat_out && fits.is_ok() {
                if let Err(r) = self.nat_outbound(p, now) {
                    p.meta_mut().disposition = Disposition::Drop(r);
                    continue;
                }
            }
            match fits {
                Ok(Fits::Yes) => {}
                Ok(Fits::NeedsFragments(mtu)) => {
                    p.meta_mut().disposition =
                        match self.fragment_and_forward(p, iface, next_hop, mtu, now) {
                            Ok(()) => Disposition::Consumed,
                            Err(r) => Disposition::Drop(r),
                        };
                    continue;
                }
                Err(r) => {
                    p.meta_mut().disposition = Disposition::Drop(r);
                    continue;
                }
            }
            let m = p.meta_mut();
            m.tx_iface = iface;
            m.next_hop = next_hop;
        }
    }

    /// TTL and MTU for a packet leaving through `iface`; decrements the TTL.
    fn forward_checks(&mut self, p: &mut Packet, iface: u16, now: u64) -> Result<Fits, DropReason> {
        let l3 = p.meta().l3_offset as usize;
        // ipv4_input validated the header: read the fields straight.
        let h = &p.data()[l3..l3 + 20];
        let (ttl, total, df) = (h[8], u16::from_be_bytes([h[2], h[3]]), h[6] & 0x40 != 0);
        if ttl <= 1 {
            self.icmp_error(
                p,
                icmpv4::TYPE_TIME_EXCEEDED,
                icmpv4::CODE_TTL_EXCEEDED,
                0,
                now,
            );
            return Err(DropReason::TtlExpired);
        }
        let mtu = self.ifaces.get(iface).mtu;
        if total > mtu && !df {
            decrement_ttl(p);
            return Ok(Fits::NeedsFragments(mtu));
        }
        if total > mtu {
            {
                self.icmp_error(
                    p,
                    icmpv4::TYPE_DEST_UNREACHABLE,
                    icmpv4::CODE_FRAG_NEEDED,
                    mtu,
                    now,
                );
            }
            return Err(DropReason::MtuExceeded);
        }
        decrement_ttl(p);
        Ok(Fits::Yes)
    }
}

/// The first 20 bytes of the IPv4 header of a packet `ipv4_input` passed.
#[inline]
fn header20(p: &Packet) -> Option<&[u8; 20]> {
    let l3 = p.meta().l3_offset as usize;
    p.data()
        .get(l3..l3 + 20)
        .map(|h| h.try_into().expect("20 bytes"))
}

/// TTL - 1 with the checksum updated incrementally (RFC 1624) on a header
/// whose TTL is above 1, touching only those four bytes.
#[inline]
pub(super) fn decrement_ttl(p: &mut Packet) {
    let l3 = p.meta().l3_offset as usize;
    if let Some(h) = p.data_mut().get_mut(l3 + 8..l3 + 12) {
        // TTL and protocol share one 16-bit checksum word.
        let old = u16::from_be_bytes([h[0], h[1]]);
        let new = old - 0x0100;
        let csum = checksum::update16(u16::from_be_bytes([h[2], h[3]]), old, new);
        h[0] = (new >> 8) as u8;
        h[2..4].copy_from_slice(&csum.to_be_bytes());
    }
}

/// Whether a packet fits the egress MTU.
enum Fits {
    Yes,
    /// Larger than this MTU, DF clear: send it as fragments.
    NeedsFragments(u16),
}
