//! The load balancer in the pipeline: where [`crate::lb::Balancer`] is
//! called, how packets reach the worker that holds their flow's pin, and
//! the IP-in-IP encapsulation of direct server return.
//!
//! - Before the route lookup and before NAT ([`Pipeline::lb_pre_lookup`]):
//!   a TCP/UDP packet to a VIP's address and port, or from a NAT-mode
//!   backend's address and port, goes to the worker owning its client
//!   ([`crate::lb::balancer::client_owner`]; handed over unchanged when it
//!   arrived elsewhere). NAT mode rewrites it in place (the lookup then
//!   routes the backend, or the client for a reply); DSR wraps it in an
//!   outer IPv4 header to the backend (source: our address on the way to
//!   it), which the lookup routes. Either way the packet is marked
//!   `lb_done` and NAT leaves it alone.
//! - The fast path does the same for NAT-mode packets its worker owns
//!   ([`Pipeline::lb_fast`]); DSR and others' packets take the stages.

use std::sync::Arc;

use super::Pipeline;
use crate::buffer::{Batch, Disposition, Packet};
use crate::counters::DropReason;
use crate::fib::NextHop;
use crate::lb::balancer::Fast;
use crate::lb::{Balancer, LbDrop, LbPlan, LbVerdict};
use crate::nat::rewrite::rd16;
use crate::wire::checksum;
use crate::wire::icmpv4;

/// Pins examined for expiry per poll.
const LB_EXPIRE_BUDGET: usize = 64;
/// Below this many pins the tables are cache-resident: no prefetch.
const PREFETCH_ABOVE: usize = 8192;
/// IP protocol number of IP-in-IP.
const PROTO_IPIP: u8 = 4;

/// What the fast path's balancer step did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum FastLb {
    /// Not the balancer's packet.
    NotLb,
    /// Rewritten in place: route its new destination, skip NAT.
    Done,
    /// Untouched: the stages handle it (another worker's, DSR, fragment).
    Slow,
    /// New flow with no backend (or no room for its pin): drop it,
    /// counted under this reason.
    Drop(DropReason),
}

impl Pipeline {
    /// Runs `plan` as worker `worker` of `workers` (None: no balancer).
    /// Pins survive a plan change; the pin table is sized by the first plan.
    pub fn set_lb(&mut self, plan: Option<Arc<LbPlan>>, worker: usize, workers: usize) {
        match (plan, self.lb.as_mut()) {
            (None, _) => self.lb = None,
            (Some(p), Some(b)) => b.set_plan(p),
            (Some(p), None) => self.lb = Some(Balancer::new(p, worker, workers)),
        }
    }

    /// The worker's balancer, if it runs one.
    pub fn lb(&self) -> Option<&Balancer> {
        self.lb.as_ref()
    }

    /// Stage between `ipv4_input` and NAT: balance packets to VIPs and
    /// replies from NAT-mode backends.
    pub(super) fn lb_pre_lookup(&mut self, batch: &mut Batch, now: u64) {
        let Some(mut b) = self.lb.take() else {
            return;
        };
        for p in batch.packets_mut() {
            if p.meta().disposition != Disposition::Continue {
                continue;
            }
            let m = *p.meta();
            if m.lb_done {
                continue;
            }
            let l3 = usize::from(m.l3_offset);
            let Some(ip) = p.data().get(l3..) else {
                continue;
            };
            let Some(hit) = b.match_packet(ip) else {
                continue;
            };
            if hit.owner != b.worker() {
                p.meta_mut().disposition = if m.handed_off {
                    Disposition::Drop(DropReason::HandoffLoop)
                } else {
                    Disposition::Handoff(hit.owner as u16)
                };
                continue;
            }
            let v = b.handle(&mut p.data_mut()[l3..], hit.dir, now);
            let d = match v {
                LbVerdict::NotLb => continue,
                LbVerdict::Nat => {
                    p.meta_mut().lb_done = true;
                    continue;
                }
                LbVerdict::Dsr { backend } => match self.lb_encap(p, backend, now) {
                    Ok(()) => {
                        p.meta_mut().lb_done = true;
                        continue;
                    }
                    Err(r) => Disposition::Drop(r),
                },
                LbVerdict::Drop(LbDrop::NoBackend) => Disposition::Drop(DropReason::LbNoBackend),
                LbVerdict::Drop(LbDrop::Fragment) => Disposition::Drop(DropReason::LbFragment),
                LbVerdict::Drop(LbDrop::TableFull) => Disposition::Drop(DropReason::LbTableFull),
            };
            p.meta_mut().disposition = d;
        }
        self.lb = Some(b);
    }

    /// Wraps the packet (IPv4 at its `l3_offset`) in an outer IPv4 header
    /// to `backend` (RFC 2003): outer TTL 64, TOS and DF copied from the
    /// inner header, source our address on the interface toward the
    /// backend. Too big for the path with DF set: "fragmentation needed"
    /// to the client with the MTU less the outer header, and a drop.
    fn lb_encap(&mut self, p: &mut Packet, backend: u32, now: u64) -> Result<(), DropReason> {
        let iface = match self.fib.route(backend, 0) {
            Some(NextHop::Connected { iface } | NextHop::Via { iface, .. }) => iface,
            _ => return Err(DropReason::NoRoute),
        };
        let (our, mtu) = {
            let i = self.ifaces.get(iface);
            (i.addr, i.mtu)
        };
        let l3 = usize::from(p.meta().l3_offset);
        let (total, tos, df) = {
            let ip = &p.data()[l3..];
            (rd16(ip, 2), ip[1], rd16(ip, 6) & 0x4000 != 0)
        };
        let outer_len = u32::from(total) + 20;
        if outer_len > u32::from(mtu) {
            if df {
                self.icmp_error(
                    p,
                    icmpv4::TYPE_DEST_UNREACHABLE,
                    icmpv4::CODE_FRAG_NEEDED,
                    mtu.saturating_sub(20),
                    now,
                );
                return Err(DropReason::LbTooBig);
            }
            if outer_len > u32::from(u16::MAX) {
                return Err(DropReason::LbTooBig);
            }
        }
        let ident = self.next_ident();
        if p.prepend(20).is_none() {
            return Err(DropReason::NoBuffer);
        }
        let d = p.data_mut();
        // The L2 header moves to the new front; the outer header follows.
        d.copy_within(20..20 + l3, 0);
        let h = &mut d[l3..l3 + 20];
        h[0] = 0x45;
        h[1] = tos;
        h[2..4].copy_from_slice(&(outer_len as u16).to_be_bytes());
        h[4..6].copy_from_slice(&ident.to_be_bytes());
        h[6..8].copy_from_slice(&(if df { 0x4000u16 } else { 0 }).to_be_bytes());
        h[8] = 64;
        h[9] = PROTO_IPIP;
        h[10..12].copy_from_slice(&[0, 0]);
        h[12..16].copy_from_slice(&our.to_be_bytes());
        h[16..20].copy_from_slice(&backend.to_be_bytes());
        let c = checksum::checksum(h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        Ok(())
    }

    /// True when the worker balances anything.
    #[inline]
    pub(super) fn lb_on(&self) -> bool {
        self.lb.is_some()
    }

    /// Fast path, before the lookup: a plain packet (checked 20-byte
    /// header at `ip[0]`) to a NAT-mode VIP or from one's backend, when this
    /// worker owns its flow.
    #[inline]
    pub(super) fn lb_fast(&mut self, ip: &mut [u8], now: u64) -> FastLb {
        let Some(b) = self.lb.as_mut() else {
            return FastLb::NotLb;
        };
        match b.fast(ip, now) {
            Fast::NotLb => FastLb::NotLb,
            Fast::Done => FastLb::Done,
            Fast::Slow => FastLb::Slow,
            Fast::Drop(LbDrop::NoBackend) => FastLb::Drop(DropReason::LbNoBackend),
            Fast::Drop(LbDrop::TableFull) => FastLb::Drop(DropReason::LbTableFull),
            Fast::Drop(LbDrop::Fragment) => FastLb::Drop(DropReason::LbFragment),
        }
    }

    /// Starts the loads the batch's pin lookups will need, when the pin
    /// table is too big for the caches: every packet's index line first,
    /// then every pin the index names (by then the early index lines have
    /// arrived), as NAT does (`nat::prefetch`).
    pub(super) fn lb_prefetch(&mut self, batch: &Batch) {
        let Some(b) = self.lb.as_ref().filter(|b| b.pins().len() > PREFETCH_ABOVE) else {
            return;
        };
        for (h, p) in self.lb_keys.iter_mut().zip(batch.packets()) {
            *h = p.data().get(14..).map_or(0, |ip| b.prefetch(ip));
        }
        for &h in &self.lb_keys[..batch.len()] {
            b.prefetch_pin(h);
        }
    }

    /// Timers: forget idle flows a little at a time.
    pub(super) fn lb_expire(&mut self, now: u64) {
        if let Some(b) = self.lb.as_mut() {
            b.expire(now, LB_EXPIRE_BUDGET);
        }
    }

    /// Copies the balancer's counters into the shared worker counters.
    pub(super) fn publish_lb_counters(&self) {
        let v = self
            .lb
            .as_ref()
            .map(|b| b.counters().values())
            .unwrap_or_default();
        for (c, v) in self.counters.lb.iter().zip(v) {
            c.store(v, std::sync::atomic::Ordering::Relaxed);
        }
    }
}
