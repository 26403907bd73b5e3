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
use super::pins::{fwd_key, key_hash, rev_key, Pin, PinTable, CLOSING, OPEN};
use super::plan::LbPlan;
use super::spec::LbMode as Mode;
use crate::nat::rewrite::{rd16, rd32};
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
    /// A new NAT-mode flow and no room to pin it (its replies could not
    /// be translated back).
    TableFull,
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

/// TCP flags of a packet with its TCP header at `hl` (0 for UDP).
#[inline]
fn tcp_flags(ip: &[u8], hl: usize) -> u8 {
    if ip[9] == PROTO_TCP {
        ip.get(hl + 13).copied().unwrap_or(0)
    } else {
        0
    }
}

/// FIN or RST.
#[inline]
fn closing(flags: u8) -> bool {
    flags & 0x05 != 0
}

/// SYN without ACK.
#[inline]
fn syn(flags: u8) -> bool {
    flags & 0x12 == 0x02
}

/// A packet's fields the balancer reads, parsed once.
#[derive(Clone, Copy, Debug)]
struct Head {
    hl: usize,
    src: u32,
    dst: u32,
    sport: u16,
    dport: u16,
    proto: u8,
    flags: u8,
}

/// Rewrites one endpoint of a TCP/UDP packet from (`old`, `old_port`) to
/// (`new`, `new_port`), updating the IPv4 and L4 checksums with one shared
/// difference (RFC 1624); the source when `dst` is false. The caller checked
/// that the L4 checksum word is in `ip`. A UDP checksum
/// of 0 (none) stays 0; a computed 0 is sent as 0xffff.
#[inline]
#[allow(clippy::too_many_arguments)]
fn translate(
    ip: &mut [u8],
    hl: usize,
    proto: u8,
    dst: bool,
    old: u32,
    new: u32,
    old_port: u16,
    new_port: u16,
) {
    let (a_at, p_at) = if dst { (16, hl + 2) } else { (12, hl) };
    // ~old + new over the address's two words, as a partial sum.
    let d_addr =
        u32::from(!(old >> 16) as u16) + u32::from(!(old as u16)) + (new >> 16) + (new & 0xffff);
    let fold = |mut x: u32| {
        x = (x & 0xffff) + (x >> 16);
        x = (x & 0xffff) + (x >> 16);
        x as u16
    };
    let ipc = rd16(ip, 10);
    ip[a_at..a_at + 4].copy_from_slice(&new.to_be_bytes());
    ip[10..12].copy_from_slice(&(!fold(u32::from(!ipc) + d_addr)).to_be_bytes());
    ip[p_at..p_at + 2].copy_from_slice(&new_port.to_be_bytes());
    let c_at = hl + if proto == PROTO_TCP { 16 } else { 6 };
    let c = rd16(ip, c_at);
    if proto == PROTO_UDP && c == 0 {
        return;
    }
    let mut n = !fold(u32::from(!c) + d_addr + u32::from(!old_port) + u32::from(new_port));
    if proto == PROTO_UDP && n == 0 {
        n = 0xffff;
    }
    ip[c_at..c_at + 2].copy_from_slice(&n.to_be_bytes());
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

/// What [`Balancer::fast`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fast {
    NotLb,
    /// Rewritten in place (NAT mode).
    Done,
    /// Untouched: for the full stages (another worker's, DSR, fragment).
    Slow,
    /// Drop it: no backend, or no room to pin a new flow.
    Drop(LbDrop),
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

    #[inline]
    fn classify(&self, h: &Head) -> Option<Match> {
        if self.plan.maybe_vip(h.dst) {
            if let Some(v) = self.plan.vip(h.dst, h.dport, h.proto) {
                return Some(Match {
                    dir: Dir::Forward(v),
                    owner: client_owner(self.workers, h.src, h.sport),
                });
            }
        }
        if self.plan.maybe_backend(h.src) && self.plan.reply_vip(h.src, h.sport, h.proto).is_some()
        {
            return Some(Match {
                dir: Dir::Reply,
                owner: client_owner(self.workers, h.dst, h.dport),
            });
        }
        None
    }

    /// Whether the balancer must see `ip` (header at 0, validated by the
    /// caller), and who owns it.
    #[inline]
    pub fn match_packet(&self, ip: &[u8]) -> Option<Match> {
        let (src, dst) = (rd32(ip, 12), rd32(ip, 16));
        if !self.may_match(src, dst) {
            return None;
        }
        let (hl, sport, dport, _) = l4(ip)?;
        self.classify(&Head {
            hl,
            src,
            dst,
            sport,
            dport,
            proto: ip[9],
            flags: 0,
        })
    }

    /// Handles a packet [`Balancer::match_packet`] gave this worker.
    #[inline]
    pub fn handle(&mut self, ip: &mut [u8], dir: Dir, now: u64) -> LbVerdict {
        match dir {
            Dir::Forward(v) => self.forward(ip, v, now),
            Dir::Reply => self.reply(ip, now),
        }
    }

    /// The fast path's whole step for a plain packet (a checked 20-byte
    /// header at `ip[0]`, unfragmented): parsed once, balanced in place
    /// when this worker owns it and its VIP is in NAT mode.
    #[inline]
    pub fn fast(&mut self, ip: &mut [u8], now: u64) -> Fast {
        // Ports at 20..24; a short UDP datagram may end right after them.
        let Some(b) = ip.get(..24) else {
            return Fast::NotLb;
        };
        let (src, dst) = (rd32(b, 12), rd32(b, 16));
        if !self.may_match(src, dst) || !matches!(b[9], PROTO_TCP | PROTO_UDP) {
            return Fast::NotLb;
        }
        if rd16(b, 6) & 0x3fff != 0 {
            return Fast::Slow;
        }
        let h = Head {
            hl: 20,
            src,
            dst,
            sport: rd16(b, 20),
            dport: rd16(b, 22),
            proto: b[9],
            flags: 0,
        };
        // The L4 checksum word must be there.
        if ip.len() < if h.proto == PROTO_TCP { 38 } else { 28 } {
            return Fast::Slow;
        }
        let h = Head {
            flags: if h.proto == PROTO_TCP { ip[33] } else { 0 },
            ..h
        };
        let Some(m) = self.classify(&h) else {
            return Fast::NotLb;
        };
        if m.owner != self.worker {
            return Fast::Slow;
        }
        let v = match m.dir {
            Dir::Forward(v) => {
                if self.plan.vips[usize::from(v)].mode != Mode::Nat {
                    return Fast::Slow;
                }
                self.forward_head(ip, &h, v, now)
            }
            Dir::Reply => self.reply_head(ip, &h, now),
        };
        match v {
            LbVerdict::Nat => Fast::Done,
            LbVerdict::NotLb => Fast::NotLb,
            LbVerdict::Drop(d) => Fast::Drop(d),
            LbVerdict::Dsr { .. } => Fast::Slow,
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
        let h = Head {
            hl,
            src: rd32(ip, 12),
            dst: rd32(ip, 16),
            sport,
            dport,
            proto: ip[9],
            flags: tcp_flags(ip, hl),
        };
        self.forward_head(ip, &h, v, now)
    }

    #[inline]
    fn forward_head(&mut self, ip: &mut [u8], h: &Head, v: u16, now: u64) -> LbVerdict {
        let k = fwd_key(h.src, h.sport, h.dst, h.dport, h.proto);
        let kh = key_hash(k);
        // Fields borrowed apart: no reference count touched per packet.
        let plan: &LbPlan = &self.plan;
        let pins = &mut self.pins;
        let mut found = pins.find_fwd(kh, k);
        if let Some(i) = found {
            let p = pins.get(i);
            let (slot, id, state) = (p.slot, p.backend_id, p.state);
            let live = plan.slot_live(slot, id);
            // A SYN on a closing flow's tuple is a new connection reusing
            // the client port: it is balanced afresh (a drained backend
            // must not get it).
            if !live || (state == CLOSING && syn(h.flags)) {
                pins.remove(i);
                if plan.slot_is(slot, id) {
                    plan.counters.flow_unpinned(self.worker, slot);
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
                if closing(h.flags) {
                    p.state = CLOSING;
                }
                (p.slot, p.backend(), p.bport())
            }
            None => {
                let Some(slot) = vip.choose(flow_hash(h.src, h.sport, h.dst, h.dport, h.proto))
                else {
                    self.counters.no_backend += 1;
                    return LbVerdict::Drop(LbDrop::NoBackend);
                };
                let b = plan.slots[usize::from(slot)];
                let nat = vip.mode == Mode::Nat;
                let rev = rev_key(b.addr, b.port, h.src, h.sport, h.proto);
                let pin = Pin {
                    fwd: k,
                    rev,
                    last_seen: now,
                    backend_id: b.id,
                    fwd_hash: kh,
                    rev_hash: if nat { key_hash(rev) } else { 0 },
                    slot,
                    state: if closing(h.flags) { CLOSING } else { OPEN },
                    reverse: nat,
                };
                if pins.insert(pin).is_some() {
                    self.counters.flows_pinned += 1;
                    plan.counters.flow_pinned(self.worker, slot);
                } else {
                    self.counters.flows_table_full += 1;
                    if nat {
                        return LbVerdict::Drop(LbDrop::TableFull);
                    }
                    // DSR: balanced unpinned (Maglev keeps it on one
                    // backend while the pool is unchanged).
                }
                (slot, b.addr, b.port)
            }
        };
        plan.counters
            .packet(self.worker, slot, u64::from(rd16(ip, 2)));
        match vip.mode {
            Mode::Nat => {
                translate(ip, h.hl, h.proto, true, h.dst, baddr, h.dport, bport);
                self.counters.nat_forward += 1;
                LbVerdict::Nat
            }
            Mode::Dsr => {
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
        let h = Head {
            hl,
            src: rd32(ip, 12),
            dst: rd32(ip, 16),
            sport,
            dport,
            proto: ip[9],
            flags: tcp_flags(ip, hl),
        };
        self.reply_head(ip, &h, now)
    }

    #[inline]
    fn reply_head(&mut self, ip: &mut [u8], h: &Head, now: u64) -> LbVerdict {
        let k = rev_key(h.src, h.sport, h.dst, h.dport, h.proto);
        let plan: &LbPlan = &self.plan;
        let (vaddr, vport) = match self.pins.find_rev(key_hash(k), k) {
            Some(i) => {
                let p = self.pins.get_mut(i);
                p.last_seen = now;
                if closing(h.flags) {
                    p.state = CLOSING;
                }
                let (va, vp, slot, id) = (p.vip_addr(), p.vport(), p.slot, p.backend_id);
                if plan.slot_live(slot, id) {
                    plan.counters
                        .packet(self.worker, slot, u64::from(rd16(ip, 2)));
                }
                (va, vp)
            }
            // No pin: not a balanced flow's reply (a client talking to the
            // backend's own address, a health check crossing the engine),
            // or one the engine forgot (expired, restarted): left alone.
            None => return LbVerdict::NotLb,
        };
        translate(ip, h.hl, h.proto, false, h.src, vaddr, h.sport, vport);
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
        let plan: &LbPlan = &self.plan;
        let worker = self.worker;
        let n = self.pins.expire(
            now,
            budget,
            |p| match (p.proto(), p.state) {
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
        let Some(b) = ip.get(..24) else {
            return 0;
        };
        if !matches!(b[9], PROTO_TCP | PROTO_UDP) || b[0] != 0x45 {
            return 0;
        }
        let (sport, dport) = (rd16(b, 20), rd16(b, 22));
        let (src, dst) = (rd32(b, 12), rd32(b, 16));
        let k = if self.plan.maybe_vip(dst) {
            fwd_key(src, sport, dst, dport, b[9])
        } else if self.plan.maybe_backend(src) {
            rev_key(src, sport, dst, dport, b[9])
        } else {
            return 0;
        };
        let h = key_hash(k);
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
