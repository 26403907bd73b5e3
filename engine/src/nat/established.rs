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
        let Some((proto, src, dst, sport, dport)) = short_path_fields(ip) else {
            return false;
        };
        if self.statics.is_outside(src)
            || self.statics.is_outside(dst)
            || self.statics.one_to_one_out(src).is_some()
        {
            return false;
        }
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
        set_endpoint(ip, proto, IP_SRC, 20, inside, out);
        self.counters.translated_out += 1;
        true
    }

    /// The inbound twin of [`Nat::outbound_established`]: `ip` arrived on
    /// the outside interface; `hash` as [`Nat::prefetch_index`] computed it
    /// for an inbound packet.
    #[inline]
    pub fn inbound_established(&mut self, ip: &mut [u8], hash: Option<u32>, now: u64) -> bool {
        let Some((proto, src, dst, sport, dport)) = short_path_fields(ip) else {
            return false;
        };
        if !self.statics.is_outside(dst) || self.statics.one_to_one_in(dst).is_some() {
            return false;
        }
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
        set_endpoint(ip, proto, IP_DST, 22, outside, ins);
        self.counters.translated_in += 1;
        true
    }
}

/// (protocol, source, destination, source port, destination port) of a
/// TCP or UDP packet the short paths take: 20-byte header, not a fragment,
/// the whole datagram present with room for its L4 header.
#[inline]
fn short_path_fields(ip: &[u8]) -> Option<(Proto, u32, u32, u16, u16)> {
    let h = ip.get(..28)?;
    let proto = match h[9] {
        PROTO_UDP => Proto::Udp,
        PROTO_TCP => Proto::Tcp,
        _ => return None,
    };
    let total = usize::from(rd16(h, 2));
    let min = if proto == Proto::Tcp { 40 } else { 28 };
    if h[0] != 0x45 || rd16(h, 6) & 0x3fff != 0 || total > ip.len() || total < min {
        return None;
    }
    Some((
        proto,
        rd32(h, IP_SRC),
        rd32(h, IP_DST),
        rd16(h, 20),
        rd16(h, 22),
    ))
}

/// Rewrites one side (address at `addr_at`, port at L4 offset `port_at`)
/// from `old` to `new`, updating the IPv4 and TCP/UDP checksums once (a
/// UDP checksum of 0, "none", stays none).
#[inline]
fn set_endpoint(
    ip: &mut [u8],
    proto: Proto,
    addr_at: usize,
    port_at: usize,
    old: Endpoint,
    new: Endpoint,
) {
    wr32(ip, addr_at, new.addr);
    wr16(ip, IP_CSUM, update32(rd16(ip, IP_CSUM), old.addr, new.addr));
    wr16(ip, port_at, new.port);
    let c_off = if proto == Proto::Udp { 26 } else { 36 };
    let c = rd16(ip, c_off);
    if proto == Proto::Tcp || c != 0 {
        let mut n = update16(update32(c, old.addr, new.addr), old.port, new.port);
        if proto == Proto::Udp && n == 0 {
            n = 0xffff;
        }
        wr16(ip, c_off, n);
    }
}
