//! Prefetching for a batch: with a million sessions nearly every lookup
//! misses the caches twice (the index, then the session). Issuing every
//! packet's loads ahead of the translations lets the misses of a whole
//! batch overlap instead of queueing one after another (VPP's dual loops
//! do the same). Two steps, each over the whole batch before the next:
//! [`Nat::prefetch_index`] (the index line of the packet's key), then
//! [`Nat::prefetch_session`] (the session the index names, or for an
//! outbound packet without one — a new session — its mapping's index line). Both are hints: wrong or missing keys cost a
//! wasted load, never a wrong translation.

use super::key::{endpoint_hash, session_hash, Endpoint, Proto};
use super::rewrite::{rd16, rd32, IP_DST, IP_SRC};
use super::Nat;

/// A key prefetched for one packet: its session hash and direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Prefetched {
    hash: u32,
    /// 0 = nothing, 1 = outbound (inside index), 2 = inbound (outside index).
    dir: u8,
}

/// Hints the CPU to load the cache line at `p`.
#[inline(always)]
pub(crate) fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch(p.cast::<i8>(), std::arch::x86_64::_MM_HINT_T0)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// (proto, ports) of an unfragmented TCP/UDP packet or ICMP echo with a
/// 20-byte header; None for anything else (not worth prefetching).
#[inline]
fn l4_key(ip: &[u8]) -> Option<(Proto, u16, u16)> {
    if ip.len() < 28 || ip[0] != 0x45 || rd16(ip, 6) & 0x3fff != 0 {
        return None;
    }
    match Proto::from_ip(ip[9])? {
        p @ (Proto::Tcp | Proto::Udp) => Some((p, rd16(ip, 20), rd16(ip, 22))),
        Proto::Icmp => Some((Proto::Icmp, rd16(ip, 24), rd16(ip, 24))),
    }
}

impl Nat {
    /// The session hash of an outbound key step 1 computed (for
    /// [`Nat::outbound_established`]).
    #[inline]
    pub fn outbound_hash(k: Prefetched) -> Option<u32> {
        (k.dir == 1).then_some(k.hash)
    }

    /// The session hash of an inbound key step 1 computed (for
    /// [`Nat::inbound_established`]).
    #[inline]
    pub fn inbound_hash(k: Prefetched) -> Option<u32> {
        (k.dir == 2).then_some(k.hash)
    }

    /// Step 1 for packet `ip` (starting at its IPv4 header): outbound
    /// (`inbound == false`) or inbound.
    #[inline]
    pub fn prefetch_index(&self, ip: &[u8], inbound: bool) -> Prefetched {
        let Some((proto, sport, dport)) = l4_key(ip) else {
            return Prefetched::default();
        };
        let (src, dst) = (rd32(ip, IP_SRC), rd32(ip, IP_DST));
        if inbound {
            // ICMP: the reply's id is the outside "port"; the remote's is 0.
            let (local, remote) = match proto {
                Proto::Icmp => (Endpoint::new(dst, dport), Endpoint::new(src, 0)),
                _ => (Endpoint::new(dst, dport), Endpoint::new(src, sport)),
            };
            let hash = session_hash(local, remote, proto);
            self.sessions.prefetch_outside(hash);
            Prefetched { hash, dir: 2 }
        } else {
            let (local, remote) = match proto {
                Proto::Icmp => (Endpoint::new(src, sport), Endpoint::new(dst, 0)),
                _ => (Endpoint::new(src, sport), Endpoint::new(dst, dport)),
            };
            let hash = session_hash(local, remote, proto);
            self.sessions.prefetch_inside(hash);
            Prefetched { hash, dir: 1 }
        }
    }

    /// Step 2: the session step 1's index line names (if any); for an
    /// outbound packet without one (a new session), its mapping's index line.
    #[inline]
    pub fn prefetch_session(&self, k: Prefetched, ip: &[u8]) {
        match k.dir {
            1 if !self.sessions.prefetch_session_inside(k.hash) => {
                if let Some((proto, sport, _)) = l4_key(ip) {
                    let local = Endpoint::new(rd32(ip, IP_SRC), sport);
                    self.mappings.prefetch_inside(endpoint_hash(local, proto));
                }
            }
            2 => self.sessions.prefetch_session_outside(k.hash),
            _ => {}
        }
    }
}
