//! The per-packet entry points: [`Nat::outbound`] (inside -> outside:
//! source NAT, then destination NAT when the destination is one of our
//! outside addresses, i.e. hairpinning) and [`Nat::inbound`] (outside ->
//! inside: destination NAT), plus steering helpers for the pipeline.

use std::net::Ipv4Addr;

use super::icmp::{self, ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST};
use super::key::{Endpoint, Proto};
use super::ports::inside_worker;
use super::rewrite::{rd16, rd32, rewrite, set_addr, Side, IP_DST, IP_SRC};
use super::{Nat, NatDrop, Verdict};
use crate::wire::icmpv4;
use crate::wire::ipv4::PROTO_ICMP;

/// Not a fragment, the first fragment (offset 0, more fragments), or a
/// later one (offset > 0: no L4 header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Frag {
    None,
    First,
    Later,
}

/// The IPv4 fields NAT reads, parsed once.
#[derive(Clone, Copy, Debug)]
pub(super) struct Hdr {
    /// Header length = offset of the L4 header.
    pub l4: usize,
    /// End of the datagram (total length).
    pub end: usize,
    pub proto: u8,
    pub src: u32,
    pub dst: u32,
    pub ident: u16,
    pub frag: Frag,
}

impl Hdr {
    /// Parses `ip`; `None` if the header does not fit (the caller has
    /// validated it, so this only guards against misuse).
    #[inline]
    pub fn parse(ip: &[u8]) -> Option<Hdr> {
        if ip.len() < 20 || ip[0] >> 4 != 4 {
            return None;
        }
        let l4 = usize::from(ip[0] & 0x0f) * 4;
        let end = usize::from(rd16(ip, 2));
        if l4 < 20 || end < l4 || end > ip.len() {
            return None;
        }
        let ff = rd16(ip, 6);
        let frag = if ff & 0x1fff != 0 {
            Frag::Later
        } else if ff & 0x2000 != 0 {
            Frag::First
        } else {
            Frag::None
        };
        Some(Hdr {
            l4,
            end,
            proto: ip[9],
            src: rd32(ip, IP_SRC),
            dst: rd32(ip, IP_DST),
            ident: rd16(ip, 4),
            frag,
        })
    }

    #[inline]
    fn frag_key(&self) -> (u32, u32, u16, u8) {
        (self.src, self.dst, self.ident, self.proto)
    }

    /// Whether the fixed L4 header of `proto` is present.
    #[inline]
    fn has_l4(&self, proto: Proto) -> bool {
        let min = match proto {
            Proto::Tcp => 20,
            Proto::Udp | Proto::Icmp => 8,
        };
        self.end >= self.l4 + min
    }
}

impl Nat {
    /// Translates a packet going from inside to outside (`ip` starts at the
    /// IPv4 header, validated by the caller).
    #[inline]
    pub fn outbound(&mut self, ip: &mut [u8], now: u64) -> Verdict {
        let v = self.outbound_inner(ip, now);
        if let Verdict::Drop(r) = v {
            self.count_drop(r);
        }
        v
    }

    /// Translates a packet arriving on the outside interface.
    #[inline]
    pub fn inbound(&mut self, ip: &mut [u8], now: u64) -> Verdict {
        let v = self.inbound_inner(ip, now);
        if let Verdict::Drop(r) = v {
            self.count_drop(r);
        }
        v
    }

    /// The worker that must handle outbound packet `ip` (by inside address).
    #[inline]
    pub fn outbound_owner(&self, ip: &[u8]) -> usize {
        match Hdr::parse(ip) {
            Some(h) => inside_worker(self.cfg.workers, Ipv4Addr::from(h.src)),
            None => 0,
        }
    }

    /// The worker that must handle inbound packet `ip`: by destination port
    /// (TCP/UDP), echo reply id, or an ICMP error's embedded source port or
    /// id. Non-first fragments go to worker 0 (see [`super::frag`]: with
    /// several workers they are translated only if worker 0 saw the first).
    #[inline]
    pub fn inbound_owner(&self, ip: &[u8]) -> usize {
        let Some(h) = Hdr::parse(ip) else { return 0 };
        if h.frag == Frag::Later {
            return 0;
        }
        let Some(proto) = Proto::from_ip(h.proto) else {
            return 0;
        };
        if !h.has_l4(proto) {
            return 0;
        }
        let l4 = h.l4;
        match proto {
            Proto::Tcp | Proto::Udp => self.statics.owner_worker(h.dst, rd16(ip, l4 + 2), proto),
            Proto::Icmp => {
                let t = ip[l4];
                if t == ICMP_ECHO_REPLY {
                    self.statics.owner_worker(h.dst, rd16(ip, l4 + 4), proto)
                } else if icmpv4::is_error(t) {
                    match icmp::embedded(ip, &h) {
                        Some(e) => self.statics.owner_worker(h.dst, e.src_port, e.proto),
                        None => 0,
                    }
                } else {
                    0
                }
            }
        }
    }

    pub(super) fn outbound_inner(&mut self, ip: &mut [u8], now: u64) -> Verdict {
        let Some(h) = Hdr::parse(ip) else {
            return Verdict::Drop(NatDrop::Malformed);
        };
        if self.statics.is_outside(h.src) {
            // Our own address: the router's traffic, or already translated.
            return Verdict::NotNat;
        }
        if h.frag == Frag::Later {
            return self.later_fragment(ip, &h, now);
        }
        let Some(proto) = Proto::from_ip(h.proto) else {
            // A 1:1 host keeps every protocol; others cannot be translated.
            return match self.statics.one_to_one_out(h.src) {
                Some(o) => {
                    set_addr(ip, Side::Src, o);
                    self.counters.translated_out += 1;
                    Verdict::Translated
                }
                None => Verdict::Drop(NatDrop::Unsupported),
            };
        };
        if !h.has_l4(proto) {
            return Verdict::Drop(NatDrop::Malformed);
        }
        let l4 = h.l4;
        if proto == Proto::Icmp && icmpv4::is_error(ip[l4]) {
            return self.icmp_error_out(ip, &h);
        }
        if let Some(o) = self.statics.one_to_one_out(h.src) {
            rewrite(ip, l4, h.proto, Side::Src, o, None);
            self.counters.translated_out += 1;
            return self.finish_outbound(ip, &h, proto, now);
        }
        let (sport, dport) = match proto {
            Proto::Tcp | Proto::Udp => (rd16(ip, l4), rd16(ip, l4 + 2)),
            Proto::Icmp => {
                if ip[l4] != ICMP_ECHO_REQUEST {
                    return Verdict::Drop(NatDrop::Unsupported);
                }
                (rd16(ip, l4 + 4), 0)
            }
        };
        let inside = Endpoint::new(h.src, sport);
        let remote = Endpoint::new(h.dst, dport);
        let found = self.sessions.find_inside(inside, remote, proto);
        let idx = match self.live_or_reap(found, now) {
            Some(i) => i,
            None => match self.new_outbound_session(inside, remote, proto, now) {
                Ok(i) => i,
                Err(r) => return Verdict::Drop(r),
            },
        };
        let class = if proto == Proto::Tcp {
            let t = self.sessions.tcp_mut(idx);
            t.on_packet(ip[l4 + 13], true);
            t.class()
        } else {
            self.sessions.get(idx).class
        };
        self.sessions.touch(idx, class, now);
        let out = self.sessions.get(idx).outside;
        rewrite(ip, l4, h.proto, Side::Src, out.addr, Some(out.port));
        self.counters.translated_out += 1;
        self.finish_outbound(ip, &h, proto, now)
    }

    /// After source NAT: hairpin when the destination is one of our outside
    /// addresses (TCP/UDP; an echo request to it is for the router), and
    /// remember a first fragment's translation.
    #[inline]
    fn finish_outbound(&mut self, ip: &mut [u8], h: &Hdr, proto: Proto, now: u64) -> Verdict {
        if proto != Proto::Icmp && self.statics.is_outside(h.dst) {
            let owner = self.statics.owner_worker(h.dst, rd16(ip, h.l4 + 2), proto);
            if owner != usize::from(self.cfg.worker) {
                return Verdict::Hairpin(owner as u16);
            }
            self.counters.hairpinned += 1;
            if let Verdict::Drop(r) = self.inbound_inner(ip, now) {
                return Verdict::Drop(r);
            }
        }
        if h.frag == Frag::First {
            self.remember_fragment(ip, h, now);
        }
        Verdict::Translated
    }

    pub(super) fn inbound_inner(&mut self, ip: &mut [u8], now: u64) -> Verdict {
        let Some(h) = Hdr::parse(ip) else {
            return Verdict::Drop(NatDrop::Malformed);
        };
        if !self.statics.is_outside(h.dst) {
            return Verdict::NotNat;
        }
        if h.frag == Frag::Later {
            return self.later_fragment(ip, &h, now);
        }
        let Some(proto) = Proto::from_ip(h.proto) else {
            return match self.statics.one_to_one_in(h.dst) {
                Some(i) => {
                    set_addr(ip, Side::Dst, i);
                    self.counters.translated_in += 1;
                    Verdict::Translated
                }
                // E.g. GRE or ESP to a pool address that is also the
                // router's: local delivery decides.
                None => Verdict::NotNat,
            };
        };
        if !h.has_l4(proto) {
            return Verdict::Drop(NatDrop::Malformed);
        }
        let l4 = h.l4;
        if proto == Proto::Icmp && icmpv4::is_error(ip[l4]) {
            return self.icmp_error_in(ip, &h);
        }
        if let Some(i) = self.statics.one_to_one_in(h.dst) {
            rewrite(ip, l4, h.proto, Side::Dst, i, None);
            self.counters.translated_in += 1;
            if h.frag == Frag::First {
                self.remember_fragment(ip, &h, now);
            }
            return Verdict::Translated;
        }
        let (sport, dport) = match proto {
            Proto::Tcp | Proto::Udp => (rd16(ip, l4), rd16(ip, l4 + 2)),
            Proto::Icmp => {
                if ip[l4] != ICMP_ECHO_REPLY {
                    // Echo requests and other queries to an outside address
                    // are for the router itself.
                    return Verdict::NotNat;
                }
                (0, rd16(ip, l4 + 4))
            }
        };
        let outside = Endpoint::new(h.dst, dport);
        let remote = Endpoint::new(h.src, sport);
        let found = self.sessions.find_outside(outside, remote, proto);
        let idx = match self.live_or_reap(found, now) {
            Some(i) => i,
            None => match self.new_inbound_session(outside, remote, proto, now) {
                Ok(i) => i,
                Err(r) => return Verdict::Drop(r),
            },
        };
        if proto == Proto::Tcp {
            let t = self.sessions.tcp_mut(idx);
            t.on_packet(ip[l4 + 13], false);
            let class = t.class();
            self.sessions.touch(idx, class, now);
        } else if self.cfg.inbound_refresh {
            let class = self.sessions.get(idx).class;
            self.sessions.touch(idx, class, now);
        }
        let ins = self.sessions.get(idx).inside;
        rewrite(ip, l4, h.proto, Side::Dst, ins.addr, Some(ins.port));
        self.counters.translated_in += 1;
        if h.frag == Frag::First {
            self.remember_fragment(ip, &h, now);
        }
        Verdict::Translated
    }

    #[inline]
    fn remember_fragment(&mut self, ip: &[u8], h: &Hdr, now: u64) {
        let expires = now.saturating_add(self.cfg.timeouts.fragment_nanos());
        self.frags
            .record(h.frag_key(), rd32(ip, IP_SRC), rd32(ip, IP_DST), expires);
    }

    /// A non-first fragment: rewrite its addresses as its first fragment's
    /// were, or drop it.
    fn later_fragment(&mut self, ip: &mut [u8], h: &Hdr, now: u64) -> Verdict {
        let Some((src, dst)) = self.frags.lookup(h.frag_key(), now) else {
            return Verdict::Drop(NatDrop::FragmentNoState);
        };
        if src != h.src {
            set_addr(ip, Side::Src, src);
        }
        if dst != h.dst {
            set_addr(ip, Side::Dst, dst);
        }
        self.counters.fragments_translated += 1;
        Verdict::Translated
    }
}

// ICMP is protocol 1 in both views; keep the constant used.
const _: () = assert!(PROTO_ICMP == Proto::Icmp as u8);
