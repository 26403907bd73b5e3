//! One worker's balancer: matches packets to VIPs (forward) or to NAT-mode
//! backends (replies), chooses and pins backends, and rewrites in place.
//! No I/O, no clock (`now` in ns is an argument), no locks, no allocation
//! after [`Balancer::new`].
//!
//! Worker ownership: both directions of a flow must meet the worker holding
//! its pin, but a reply's 5-tuple (backend → client) differs from the
//! request's (client → VIP). Both carry the client's address and port, so
//! the owner is a hash of those ([`client_owner`]); the pipeline hands
//! packets that arrive elsewhere to their owner first.

use std::sync::Arc;

use super::counters::LbCounters;
use super::pins::{fwd_hash, rev_hash, Pin, PinTable, CLOSING, OPEN};
use super::plan::LbPlan;
use super::spec::LbMode;
use crate::nat::rewrite::{rd16, rd32, rewrite, Side};
use crate::wire::ipv4::{PROTO_TCP, PROTO_UDP};

/// What the balancer did with a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LbVerdict {
    /// Not a VIP's packet nor a reply from a backend.
    NotLb,
    /// Rewritten in place (NAT mode, either direction).
    Nat,
    /// To be encapsulated toward this backend address (DSR).
    Dsr { backend: u32 },
    /// Drop it.
    Drop(LbDrop),
}

/// Why the balancer dropped a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LbDrop {
    /// No backend is up with a weight.
    NoBackend,
    /// A first fragment to a VIP (its other fragments carry no ports).
    Fragment,
}

/// Which direction a matched packet goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// Client to VIP (index into the plan's VIPs).
    Forward(u16),
    /// Backend to client.
    Reply,
}

/// A packet the balancer must see, and the worker that owns it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Match {
    pub dir: Dir,
    pub owner: usize,
}

/// The worker owning the flows of client `addr:port`.
#[inline]
pub fn client_owner(workers: usize, addr: u32, port: u16) -> usize {
    if workers <= 1 {
        return 0;
    }
    let x = ((u64::from(addr) << 16) | u64::from(port)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    ((x >> 32) % workers as u64) as usize
}

/// The stable hash Maglev looks up for a new flow: the same on every
/// worker, every engine and after a restart.
#[inline]
pub fn flow_hash(client: u32, cport: u16, vip: u32, vport: u16, proto: u8) -> u64 {
    let a = (u64::from(client) << 32) | u64::from(vip);
    let b = (u64::from(cport) << 32) | (u64::from(vport) << 16) | u64::from(proto);
    let mut z = a ^ b.rotate_left(17) ^ 0x6c62_5f66_6c6f_7731;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The ports of a TCP/UDP packet and its L4 offset; None for other
/// protocols, non-first fragments and truncated headers.
#[inline]
fn l4(ip: &[u8]) -> Option<(usize, u16, u16, bool)> {
    if ip.len() < 20 || !matches!(ip[9], PROTO_TCP | PROTO_UDP) {
        return None;
    }
    let hl = usize::from(ip[0] & 0x0f) * 4;
    let frag = rd16(ip, 6);
    if frag & 0x1fff != 0 || ip.len() < hl + 4 {
        return None;
    }
    let more = frag & 0x2000 != 0;
    // The checksum word must be there to update it.
    let need = hl + if ip[9] == PROTO_TCP { 18 } else { 8 };
    if !more && ip.len() < need {
        return None;
    }
    Some((hl, rd16(ip, hl), rd16(ip, hl + 2), more))
}

/// FIN or RST in a TCP header at `hl`.
#[inline]
fn closing(ip: &[u8], hl: usize) -> bool {
    ip[9] == PROTO_TCP && ip.get(hl + 13).is_some_and(|f| f & 0x05 != 0)
}

/// A TCP SYN without ACK in a TCP header at `hl`.
#[inline]
fn syn(ip: &[u8], hl: usize) -> bool {
    ip[9] == PROTO_TCP && ip.get(hl + 13).is_some_and(|f| f & 0x12 == 0x02)
}

/// One worker's balancer.
#[derive(Debug)]
pub struct Balancer {
    plan: Arc<LbPlan>,
    pins: PinTable,
    counters: LbCounters,
    worker: usize,
    workers: usize,
}

impl Balancer {
    /// A balancer running `plan` as worker `worker` of `workers`; its pin
    /// table holds the plan's `max_flows` (fixed for the engine's life).
    pub fn new(plan: Arc<LbPlan>, worker: usize, workers: usize) -> Self {
        let pins = PinTable::new(plan.settings.max_flows);
        Balancer {
            plan,
            pins,
            counters: LbCounters::default(),
            worker,
            workers: workers.max(1),
        }
    }

    /// Switches to a new plan. Pins stay; those whose backend is gone or
    /// down are chosen again at their next packet.
    pub fn set_plan(&mut self, plan: Arc<LbPlan>) {
        self.plan = plan;
    }

    pub fn plan(&self) -> &Arc<LbPlan> {
        &self.plan
    }

    pub fn worker(&self) -> usize {
        self.worker
    }

    pub fn counters(&self) -> LbCounters {
        LbCounters {
            flows_active: self.pins.len() as u64,
            ..self.counters
        }
    }

    pub fn pins(&self) -> &PinTable {
        &self.pins
    }

    /// Cheap pre-check: `dst` may be a VIP or `src` a NAT backend.
    #[inline]
    pub fn may_match(&self, src: u32, dst: u32) -> bool {
        self.plan.maybe_vip(dst) || self.plan.maybe_backend(src)
    }

    /// Whether the balancer must see `ip` (header at 0, validated by the
    /// caller), and who owns it.
    #[inline]
    pub fn match_packet(&self, ip: &[u8]) -> Option<Match> {
        let (src, dst) = (rd32(ip, 12), rd32(ip, 16));
        if !self.may_match(src, dst) {
            return None;
        }
        let (_, sport, dport, _) = l4(ip)?;
        let proto = ip[9];
        if self.plan.maybe_vip(dst) {
            if let Some(v) = self.plan.vip(dst, dport, proto) {
                return Some(Match {
                    dir: Dir::Forward(v),
                    owner: client_owner(self.workers, src, sport),
                });
            }
        }
        if self.plan.maybe_backend(src) && self.plan.reply_vip(src, sport, proto).is_some() {
            return Some(Match {
                dir: Dir::Reply,
                owner: client_owner(self.workers, dst, dport),
            });
        }
        None
    }

    /// Handles a packet [`Balancer::match_packet`] gave this worker.
    #[inline]
    pub fn handle(&mut self, ip: &mut [u8], dir: Dir, now: u64) -> LbVerdict {
        match dir {
            Dir::Forward(v) => self.forward(ip, v, now),
            Dir::Reply => self.reply(ip, now),
        }
    }

    /// A packet to VIP `v`: its pinned backend, or a new choice.
    pub fn forward(&mut self, ip: &mut [u8], v: u16, now: u64) -> LbVerdict {
        let Some((hl, sport, dport, more)) = l4(ip) else {
            return LbVerdict::NotLb;
        };
        if more {
            return LbVerdict::Drop(LbDrop::Fragment);
        }
        let (src, dst, proto) = (rd32(ip, 12), rd32(ip, 16), ip[9]);
        let h = fwd_hash(src, sport, dst, dport, proto);
        // Fields borrowed apart: no reference count touched per packet.
        let plan: &LbPlan = &self.plan;
        let pins = &mut self.pins;
        let mut found = pins.find_fwd(h, src, sport, dst, dport, proto);
        if let Some(i) = found {
            let p = *pins.get(i);
            let live = plan.slot_live(p.slot, p.backend_id);
            // A SYN on a closing flow's tuple is a new connection reusing
            // the client port: it is balanced afresh (a drained backend
            // must not get it).
            if !live || (p.state == CLOSING && syn(ip, hl)) {
                pins.remove(i);
                if plan.slot_is(p.slot, p.backend_id) {
                    plan.counters.flow_unpinned(self.worker, p.slot);
                }
                if !live {
                    // Its backend is down or gone: choose again.
                    self.counters.repinned += 1;
                }
                found = None;
            }
        }
        let vip = &plan.vips[usize::from(v)];
        let (slot, baddr, bport) = match found {
            Some(i) => {
                let p = pins.get_mut(i);
                p.last_seen = now;
                if closing(ip, hl) {
                    p.state = CLOSING;
                }
                (p.slot, p.backend, p.bport)
            }
            None => {
                let Some(slot) = vip.choose(flow_hash(src, sport, dst, dport, proto)) else {
                    self.counters.no_backend += 1;
                    return LbVerdict::Drop(LbDrop::NoBackend);
                };
                let b = plan.slots[usize::from(slot)];
                let nat = vip.mode == LbMode::Nat;
                let pin = Pin {
                    client: src,
                    vip_addr: dst,
                    backend: b.addr,
                    backend_id: b.id,
                    last_seen: now,
                    fwd_hash: h,
                    rev_hash: if nat {
                        rev_hash(b.addr, b.port, src, sport, proto)
                    } else {
                        0
                    },
                    cport: sport,
                    vport: dport,
                    bport: b.port,
                    slot,
                    proto,
                    state: if closing(ip, hl) { CLOSING } else { OPEN },
                    reverse: nat,
                };
                if pins.insert(pin).is_some() {
                    self.counters.flows_pinned += 1;
                    plan.counters.flow_pinned(self.worker, slot);
                } else {
                    self.counters.flows_table_full += 1;
                }
                (slot, b.addr, b.port)
            }
        };
        plan.counters
            .packet(self.worker, slot, u64::from(rd16(ip, 2)));
        match vip.mode {
            LbMode::Nat => {
                rewrite(ip, hl, proto, Side::Dst, baddr, Some(bport));
                self.counters.nat_forward += 1;
                LbVerdict::Nat
            }
            LbMode::Dsr => {
                self.counters.dsr_encap += 1;
                LbVerdict::Dsr { backend: baddr }
            }
        }
    }

    /// A packet from a NAT-mode backend: source back to the VIP.
    pub fn reply(&mut self, ip: &mut [u8], now: u64) -> LbVerdict {
        let Some((hl, sport, dport, _)) = l4(ip) else {
            return LbVerdict::NotLb;
        };
        let (src, dst, proto) = (rd32(ip, 12), rd32(ip, 16), ip[9]);
        let h = rev_hash(src, sport, dst, dport, proto);
        let plan: &LbPlan = &self.plan;
        let (vaddr, vport) = match self.pins.find_rev(h, src, sport, dst, dport, proto) {
            Some(i) => {
                let p = self.pins.get_mut(i);
                p.last_seen = now;
                if closing(ip, hl) {
                    p.state = CLOSING;
                }
                let (va, vp, slot, id) = (p.vip_addr, p.vport, p.slot, p.backend_id);
                if plan.slot_live(slot, id) {
                    plan.counters
                        .packet(self.worker, slot, u64::from(rd16(ip, 2)));
                }
                (va, vp)
            }
            // No pin (table full, engine restarted, expired): the VIP this
            // backend serves, when it serves one only.
            None => match plan.reply_vip(src, sport, proto) {
                Some(v) if v != u16::MAX => {
                    let vip = &plan.vips[usize::from(v)];
                    (vip.addr, vip.port)
                }
                _ => return LbVerdict::NotLb,
            },
        };
        rewrite(ip, hl, proto, Side::Src, vaddr, Some(vport));
        self.counters.nat_reply += 1;
        LbVerdict::Nat
    }

    /// Forgets flows idle past their timeout, looking at up to `budget`
    /// pins. Returns how many went.
    pub fn expire(&mut self, now: u64, budget: usize) -> usize {
        let s = self.plan.settings;
        let secs = |x: u32| u64::from(x) * 1_000_000_000;
        let (tcp, closing, udp) = (
            secs(s.tcp_timeout_secs),
            secs(s.tcp_closing_timeout_secs),
            secs(s.udp_timeout_secs),
        );
        let plan = self.plan.clone();
        let worker = self.worker;
        let n = self.pins.expire(
            now,
            budget,
            |p| match (p.proto, p.state) {
                (PROTO_TCP, CLOSING) => closing,
                (PROTO_TCP, _) => tcp,
                _ => udp,
            },
            |p| {
                if plan.slot_is(p.slot, p.backend_id) {
                    plan.counters.flow_unpinned(worker, p.slot);
                }
            },
        );
        self.counters.flows_expired += n as u64;
        n
    }

    /// First prefetch step for a packet (IPv4 header at `ip[0]`): starts
    /// loading the index line its pin lookup will read; returns the key's
    /// hash for [`Balancer::prefetch_pin`] (0: nothing to look up).
    #[inline]
    pub fn prefetch(&self, ip: &[u8]) -> u32 {
        if ip.len() < 24 || !matches!(ip[9], PROTO_TCP | PROTO_UDP) {
            return 0;
        }
        let hl = usize::from(ip[0] & 0x0f) * 4;
        let Some(ports) = ip.get(hl..hl + 4) else {
            return 0;
        };
        let (sport, dport) = (rd16(ports, 0), rd16(ports, 2));
        let (src, dst) = (rd32(ip, 12), rd32(ip, 16));
        let h = if self.plan.maybe_vip(dst) {
            fwd_hash(src, sport, dst, dport, ip[9])
        } else if self.plan.maybe_backend(src) {
            rev_hash(src, sport, dst, dport, ip[9])
        } else {
            return 0;
        };
        self.pins.prefetch_index(h);
        h
    }

    /// Second step: the pin the index names under the hash step 1 returned.
    #[inline]
    pub fn prefetch_pin(&self, h: u32) {
        if h != 0 {
            self.pins.prefetch_pin(h);
        }
    }
}
