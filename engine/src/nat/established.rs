//! The common case, done with the fewest instructions: a TCP or UDP packet
//! (20-byte header, not a fragment, no 1:1 host involved) of a live
//! session. [`Nat::outbound_established`] (inside → outside, not from or to
//! an outside address) and [`Nat::inbound_established`] (outside → an
//! outside address) translate it and return true, or leave it untouched and
//! return false for [`Nat::outbound`] / [`Nat::inbound`] to handle (new
//! sessions, expiry, filtering, ICMP, fragments, hairpins, ...). Same
//! effects as those on every packet they take.

use super::key::{session_hash, Endpoint, Proto};
use super::rewrite::{rd16, rd32, wr16, wr32, IP_CSUM, IP_DST, IP_SRC};
use super::Nat;
use crate::wire::checksum::{update16, update32};
use crate::wire::ipv4::{PROTO_TCP, PROTO_UDP};

impl Nat {
    /// See the module notes. `ip` starts at the IPv4 header; `hash`, when
    /// known, is its session hash as [`Nat::prefetch_index`] computed it
    /// from these same bytes (saves computing it again).
    #[inline]
    pub fn outbound_established(&mut self, ip: &mut [u8], hash: Option<u32>, now: u64) -> bool {
        let Some(h) = ip.get(..28) else {
            return false;
        };
        let proto = match h[9] {
            PROTO_UDP => Proto::Udp,
            PROTO_TCP => Proto::Tcp,
            _ => return false,
        };
        let total = usize::from(rd16(h, 2));
        // 20-byte header, whole datagram, room for the L4 header.
        if h[0] != 0x45 || rd16(h, 6) & 0x3fff != 0 || total > ip.len() {
            return false;
        }
        if total < if proto == Proto::Tcp { 40 } else { 28 } {
            return false;
        }
        let (src, dst) = (rd32(h, IP_SRC), rd32(h, 16));
        if self.statics.is_outside(src)
            || self.statics.is_outside(dst)
            || self.statics.one_to_one_out(src).is_some()
        {
            return false;
        }
        let (sport, dport) = (rd16(h, 20), rd16(h, 22));
        let (inside, remote) = (Endpoint::new(src, sport), Endpoint::new(dst, dport));
        let hash = hash.unwrap_or_else(|| session_hash(inside, remote, proto));
        debug_assert_eq!(hash, session_hash(inside, remote, proto));
        let Some(idx) = self
            .sessions
            .find_inside_hashed(hash, inside, remote, proto)
        else {
            return false;
        };
        if self.is_expired(idx, now) {
            return false;
        }
        let class = if proto == Proto::Tcp {
            let t = self.sessions.tcp_mut(idx);
            t.on_packet(ip[33], true);
            t.class()
        } else {
            self.sessions.get(idx).class
        };
        self.sessions.touch(idx, class, now);
        let out = self.sessions.get(idx).outside;
        // Source address and port, with both checksums updated once.
        wr32(ip, IP_SRC, out.addr);
        wr16(ip, IP_CSUM, update32(rd16(ip, IP_CSUM), src, out.addr));
        wr16(ip, 20, out.port);
        let c_off = if proto == Proto::Udp { 26 } else { 36 };
        let c = rd16(ip, c_off);
        // UDP checksum 0 = none: stays none.
        if proto == Proto::Tcp || c != 0 {
            let mut n = update16(update32(c, src, out.addr), sport, out.port);
            if proto == Proto::Udp && n == 0 {
                n = 0xffff;
            }
            wr16(ip, c_off, n);
        }
        self.counters.translated_out += 1;
        true
    }

    /// The inbound twin of [`Nat::outbound_established`]: `ip` arrived on
    /// the outside interface; `hash` as [`Nat::prefetch_index`] computed it
    /// for an inbound packet.
    #[inline]
    pub fn inbound_established(&mut self, ip: &mut [u8], hash: Option<u32>, now: u64) -> bool {
        let Some(h) = ip.get(..28) else {
            return false;
        };
        let proto = match h[9] {
            PROTO_UDP => Proto::Udp,
            PROTO_TCP => Proto::Tcp,
            _ => return false,
        };
        let total = usize::from(rd16(h, 2));
        if h[0] != 0x45 || rd16(h, 6) & 0x3fff != 0 || total > ip.len() {
            return false;
        }
        if total < if proto == Proto::Tcp { 40 } else { 28 } {
            return false;
        }
        let (src, dst) = (rd32(h, IP_SRC), rd32(h, IP_DST));
        if !self.statics.is_outside(dst) || self.statics.one_to_one_in(dst).is_some() {
            return false;
        }
        let (sport, dport) = (rd16(h, 20), rd16(h, 22));
        let (outside, remote) = (Endpoint::new(dst, dport), Endpoint::new(src, sport));
        let hash = hash.unwrap_or_else(|| session_hash(outside, remote, proto));
        debug_assert_eq!(hash, session_hash(outside, remote, proto));
        let Some(idx) = self
            .sessions
            .find_outside_hashed(hash, outside, remote, proto)
        else {
            return false;
        };
        if self.is_expired(idx, now) {
            return false;
        }
        if proto == Proto::Tcp {
            let t = self.sessions.tcp_mut(idx);
            t.on_packet(ip[33], false);
            let class = t.class();
            self.sessions.touch(idx, class, now);
        } else if self.cfg.inbound_refresh {
            let class = self.sessions.get(idx).class;
            self.sessions.touch(idx, class, now);
        }
        let ins = self.sessions.get(idx).inside;
        wr32(ip, IP_DST, ins.addr);
        wr16(ip, IP_CSUM, update32(rd16(ip, IP_CSUM), dst, ins.addr));
        wr16(ip, 22, ins.port);
        let c_off = if proto == Proto::Udp { 26 } else { 36 };
        let c = rd16(ip, c_off);
        if proto == Proto::Tcp || c != 0 {
            let mut n = update16(update32(c, dst, ins.addr), dport, ins.port);
            if proto == Proto::Udp && n == 0 {
                n = 0xffff;
            }
            wr16(ip, c_off, n);
        }
        self.counters.translated_in += 1;
        true
    }
}
