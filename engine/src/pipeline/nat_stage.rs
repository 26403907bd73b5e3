//! NAT44 in the pipeline: where [`crate::nat::Nat`] is called and how
//! packets reach the worker that owns their session.
//!
//! - Before the route lookup ([`Pipeline::nat_pre_lookup`]): a packet to an
//!   outside address (pool, forward, 1:1) is translated inbound when it came
//!   in on the outside interface — or from inside with an outside source
//!   already (the second half of a hairpin) — so the lookup routes its
//!   inside destination; a TCP/UDP packet from inside to an outside address
//!   is hairpinned (source then destination translated).
//! - After the route lookup (in `ipv4_lookup`, see [`Pipeline::nat_out_owner`]
//!   and [`Pipeline::nat_outbound`]): a packet from inside leaving through the
//!   outside interface is translated outbound, after the TTL and MTU checks
//!   (so ICMP errors about it quote what the inside host sent) and before
//!   any fragmentation.
//!
//! Ownership (see [`crate::nat::ports`]): outbound packets belong to the
//! worker chosen by their inside address, inbound ones to the worker owning
//! their outside port's range. The ports spread received frames by a
//! symmetric 5-tuple hash instead, so a packet that reaches another worker
//! first is handed to its owner *before anything has changed in it*
//! ([`crate::buffer::Disposition::Handoff`], rings in [`super::handoff`]);
//! the owner runs it through the stages again as if it had received it. The
//! one exception is a hairpin whose destination belongs to a third worker:
//! it travels with its source translated, which that worker recognises as
//! inbound. A handed-off packet is never handed on by an owner check, so a
//! momentary disagreement between workers' configurations costs a counted
//! drop, not a loop.

use super::Pipeline;
use crate::buffer::{Batch, Disposition, Packet};
use crate::counters::DropReason;
use crate::nat::{Nat, NatConfigError, Prefetched, Verdict};
use crate::nat_slot::NatPlan;
use crate::wire::ipv4::{PROTO_TCP, PROTO_UDP};

/// What the fast path's NAT step did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum FastNat {
    /// Translated (or nothing to translate): go on.
    Done,
    /// Untouched: let the full stages handle it.
    Slow,
    /// Dropped by NAT (counted in its counters).
    Drop,
}

/// A worker's NAT and where its outside interface is.
#[derive(Debug)]
pub(super) struct NatState {
    pub nat: Nat,
    /// Interface index of the outside interface in the current interface
    /// table (u16::MAX when the table has no such interface).
    pub outside_iface: u16,
    pub outside_port: u16,
    pub outside_vlan: u16,
    pub worker: usize,
}

#[inline]
fn rd32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl Pipeline {
    /// Runs NAT as `plan` says (None: no NAT) as worker `worker`. A plan
    /// replacing a running one reconfigures it ([`Nat::reconfigure`]: the
    /// sessions the new plan allows are kept); on error nothing changes.
    pub fn set_nat(&mut self, plan: Option<&NatPlan>, worker: usize) -> Result<(), NatConfigError> {
        let Some(plan) = plan else {
            self.nat = None;
            return Ok(());
        };
        let outside_iface = self
            .ifaces
            .lookup(plan.outside_port, plan.outside_vlan)
            .unwrap_or(u16::MAX);
        let mut cfg = plan.config.clone();
        cfg.worker = worker as u16;
        cfg.outside_iface = outside_iface;
        if let Some(st) = self.nat.as_mut() {
            // Established sessions stay where the new plan allows them.
            st.nat.reconfigure(cfg)?;
            st.outside_iface = outside_iface;
            st.outside_port = plan.outside_port;
            st.outside_vlan = plan.outside_vlan;
            return Ok(());
        }
        let nat = Nat::new(cfg)?;
        self.nat = Some(NatState {
            nat,
            outside_iface,
            outside_port: plan.outside_port,
            outside_vlan: plan.outside_vlan,
            worker,
        });
        Ok(())
    }

    /// The worker's NAT, if it runs one.
    pub fn nat(&self) -> Option<&Nat> {
        self.nat.as_ref().map(|s| &s.nat)
    }

    /// After an interface table change: where the outside interface is now.
    pub(super) fn nat_resolve_outside(&mut self) {
        if let Some(st) = self.nat.as_mut() {
            st.outside_iface = self
                .ifaces
                .lookup(st.outside_port, st.outside_vlan)
                .unwrap_or(u16::MAX);
        }
    }

    /// The interface whose routes the fast path must set aside for NAT
    /// when a batch arrived on interface `rx_iface` (u16::MAX: none).
    #[inline]
    pub(super) fn nat_out_iface_for(&self, rx_iface: u16) -> u16 {
        match &self.nat {
            Some(st) if st.outside_iface != rx_iface => st.outside_iface,
            _ => u16::MAX,
        }
    }

    /// True when NAT must see a packet to `dst` before its route lookup.
    #[inline]
    pub(super) fn nat_wants_dst(&self, dst: u32) -> bool {
        self.nat.as_ref().is_some_and(|st| st.nat.is_outside(dst))
    }

    /// Fast path, before the lookup: inbound translation of a plain packet
    /// that came in on the outside interface to an outside address, when
    /// this worker owns it. `ip` starts at its (checked, 20-byte) header.
    #[inline]
    pub(super) fn nat_fast_inbound(&mut self, ip: &mut [u8], i: usize, now: u64) -> FastNat {
        let Some(st) = self.nat.as_mut() else {
            return FastNat::Slow;
        };
        if st.nat.config().workers > 1 && st.nat.inbound_owner(ip) != st.worker {
            return FastNat::Slow;
        }
        // The prefetch pass hashed this packet's key from the same bytes.
        if st
            .nat
            .inbound_established(ip, Nat::inbound_hash(self.nat_keys[i]), now)
        {
            return FastNat::Done;
        }
        match st.nat.inbound(ip, now) {
            Verdict::Translated => FastNat::Done,
            // Not NAT's (e.g. a ping to the router): the stages decide.
            Verdict::NotNat | Verdict::Hairpin(_) => FastNat::Slow,
            Verdict::Drop(_) => FastNat::Drop,
        }
    }

    /// Fast path, after the lookup and checks: outbound translation of a
    /// plain packet from inside leaving through the outside interface, when
    /// this worker owns its inside address (else the stages hand it over).
    /// The destination is not an outside address (those never get here).
    #[inline]
    pub(super) fn nat_fast_outbound(&mut self, ip: &mut [u8], i: usize, now: u64) -> FastNat {
        let Some(st) = self.nat.as_mut() else {
            return FastNat::Slow;
        };
        // The prefetch pass hashed this packet's key from the same bytes.
        let hash = Nat::outbound_hash(self.nat_keys[i]);
        if st.nat.outbound_established(ip, hash, now) {
            return FastNat::Done;
        }
        match st.nat.outbound(ip, now) {
            Verdict::Translated | Verdict::NotNat => FastNat::Done,
            Verdict::Hairpin(_) | Verdict::Drop(_) => FastNat::Drop,
        }
    }

    /// Starts the loads NAT will need for the batch's IPv4 packets (see
    /// [`crate::nat::Prefetched`]): inbound keys for packets from the
    /// outside to an outside address, outbound keys for the rest.
    pub(super) fn nat_prefetch(&mut self, batch: &Batch, from_outside: bool) {
        let Some(st) = self.nat.as_ref() else {
            return;
        };
        for (i, p) in batch.packets().iter().enumerate() {
            let d = p.data();
            self.nat_keys[i] = match d.get(14..) {
                Some(ip) if d[12..14] == [0x08, 0x00] && ip.len() >= 20 => {
                    let inbound = from_outside && st.nat.is_outside(rd32(ip, 16));
                    st.nat.prefetch_index(ip, inbound)
                }
                _ => Prefetched::default(),
            };
        }
        for (k, p) in self.nat_keys.iter().zip(batch.packets()) {
            if let Some(ip) = p.data().get(14..) {
                st.nat.prefetch_session(*k, ip);
            }
        }
    }

    /// True when this worker translates outbound packets from `src`.
    #[inline]
    pub(super) fn nat_owns_inside(&self, src: u32) -> bool {
        self.nat.as_ref().is_some_and(|st| {
            st.nat.config().workers < 2
                || crate::nat::inside_worker(st.nat.config().workers, src.into()) == st.worker
        })
    }

    /// The outside interface (u16::MAX: none or no NAT).
    #[inline]
    pub(super) fn nat_outside_iface(&self) -> u16 {
        self.nat.as_ref().map_or(u16::MAX, |s| s.outside_iface)
    }

    /// Stage between `ipv4_input` and `ipv4_lookup`: inbound translation
    /// and hairpinning of packets to outside addresses.
    pub(super) fn nat_pre_lookup(&mut self, batch: &mut Batch, now: u64) {
        let Some(st) = self.nat.as_mut() else {
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
            let Some(ip) = p.data_mut().get_mut(usize::from(m.l3_offset)..) else {
                continue;
            };
            if ip.len() < 20 || !st.nat.is_outside(rd32(ip, 16)) {
                continue;
            }
            let inbound = m.rx_iface == st.outside_iface || st.nat.is_outside(rd32(ip, 12));
            // From inside, only TCP and UDP hairpin; an echo request to an
            // outside address is for the router.
            if !inbound && ip[9] != PROTO_TCP && ip[9] != PROTO_UDP {
                continue;
            }
            let owner = if inbound {
                st.nat.inbound_owner(ip)
            } else {
                st.nat.outbound_owner(ip)
            };
            let d = if owner != st.worker {
                if m.handed_off {
                    Disposition::Drop(DropReason::HandoffLoop)
                } else {
                    Disposition::Handoff(owner as u16)
                }
            } else {
                let v = if inbound {
                    st.nat.inbound(ip, now)
                } else {
                    st.nat.outbound(ip, now)
                };
                match v {
                    Verdict::Translated | Verdict::NotNat => continue,
                    // Source translated; its destination's owner finishes it.
                    Verdict::Hairpin(w) => Disposition::Handoff(w),
                    Verdict::Drop(_) => Disposition::Drop(DropReason::Nat),
                }
            };
            p.meta_mut().disposition = d;
        }
    }

    /// For a packet routed out of `iface`: None when NAT has nothing to do
    /// with it, else the worker that must translate it.
    #[inline]
    pub(super) fn nat_out_owner(&self, p: &Packet, iface: u16) -> Option<usize> {
        let st = self.nat.as_ref()?;
        if iface != st.outside_iface || p.meta().rx_iface == st.outside_iface || p.meta().lb_done {
            return None;
        }
        let ip = p.data().get(usize::from(p.meta().l3_offset)..)?;
        Some(st.nat.outbound_owner(ip))
    }

    /// This worker's index when it runs NAT.
    #[inline]
    pub(super) fn nat_worker(&self) -> usize {
        self.nat.as_ref().map_or(0, |s| s.worker)
    }

    /// Outbound translation of a packet `nat_out_owner` gave to this
    /// worker (checks done, TTL decremented). Err: drop it.
    #[inline]
    pub(super) fn nat_outbound(&mut self, p: &mut Packet, now: u64) -> Result<(), DropReason> {
        let Some(st) = self.nat.as_mut() else {
            return Ok(());
        };
        let l3 = usize::from(p.meta().l3_offset);
        let Some(ip) = p.data_mut().get_mut(l3..) else {
            return Err(DropReason::Nat);
        };
        match st.nat.outbound(ip, now) {
            Verdict::Translated | Verdict::NotNat => Ok(()),
            Verdict::Hairpin(_) | Verdict::Drop(_) => Err(DropReason::Nat),
        }
    }

    /// Sends a packet to worker `to` (the frame as received, and its port).
    pub(super) fn hand_off(&mut self, p: Packet, to: u16) {
        let sent = self
            .handoff
            .as_mut()
            .is_some_and(|h| h.send(usize::from(to), p.meta().rx_port, p.data()));
        if !sent {
            self.tally.add(DropReason::HandoffFull);
        }
    }

    /// Takes frames other workers handed to this one and runs them through
    /// the stages, a batch per port. Returns how many.
    pub(super) fn drain_handoff(&mut self, rx: &mut Batch, now: u64) -> usize {
        let Some(mut h) = self.handoff.take() else {
            return 0;
        };
        let mut total = 0;
        // Bounded, so a flood from other workers cannot starve the ports.
        while total < 4 * crate::buffer::BATCH_SIZE {
            let Some(ring) = h.next_busy_inbox() else {
                break;
            };
            let Some(port) = ring.peek_port() else {
                continue;
            };
            rx.clear();
            while rx.space() > 0 && ring.peek_port() == Some(port) {
                match ring.pop_with(|_, f| self.pool.alloc_from(f)) {
                    Some(Some(p)) => {
                        let _ = rx.push(p);
                    }
                    Some(None) => self.tally.add(DropReason::NoBuffer),
                    None => break,
                }
            }
            total += rx.len();
            self.process_handed(rx, port, now);
        }
        self.handoff = Some(h);
        crate::counters::bump(&self.counters.handoff_received, total as u64);
        total
    }

    /// Copies the NAT counters into the shared worker counters.
    pub(super) fn publish_nat_counters(&self) {
        let Some(st) = &self.nat else {
            return;
        };
        for (c, v) in self.counters.nat.iter().zip(st.nat.counters().values()) {
            c.store(v, std::sync::atomic::Ordering::Relaxed);
        }
        self.counters.nat_sessions.store(
            st.nat.session_count() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
    }
}
