//! Port ownership and allocation without locks, VPP style.
//!
//! The dynamic ports 1024..=65535 of every pool address (per protocol; ICMP
//! query ids alike) are split into `workers` contiguous ranges, worker `w`
//! owning range `w` (the last one takes the remainder). A worker allocates
//! only from its own range, so workers never share allocator state, and a
//! returning packet's destination port names the worker holding its session:
//! [`owner_worker`]. Outbound packets are steered by inside address
//! ([`inside_worker`]), so every flow of one inside host — and so every
//! mapping of one inside endpoint (EIM) and its per-host count — lives on one
//! worker. Forwards and 1:1 mappings are owned by their inside host's worker.

use std::net::Ipv4Addr;

use super::config::NatConfig;
use super::key::{addr_hash, Proto};

/// First dynamic port: well-known ports (below 1024) are never handed out,
/// not even to preserve an inside port (RFC 4787 REQ-3's port ranges).
pub const DYNAMIC_PORT_MIN: u32 = 1024;
/// Number of dynamic ports per address and protocol.
pub const DYNAMIC_PORTS: u32 = 65536 - DYNAMIC_PORT_MIN;

/// The half-open port range `[lo, hi)` worker `worker` of `workers` owns.
#[inline]
pub fn port_range(workers: u16, worker: u16) -> (u32, u32) {
    let per = DYNAMIC_PORTS / u32::from(workers.max(1));
    let lo = DYNAMIC_PORT_MIN + per * u32::from(worker);
    let hi = if worker + 1 >= workers {
        65536
    } else {
        lo + per
    };
    (lo, hi)
}

/// The worker whose range holds `port`, or `None` below the dynamic range.
#[inline]
pub fn range_owner(workers: u16, port: u16) -> Option<usize> {
    let p = u32::from(port);
    if p < DYNAMIC_PORT_MIN {
        return None;
    }
    let per = DYNAMIC_PORTS / u32::from(workers.max(1));
    Some(((p - DYNAMIC_PORT_MIN) / per).min(u32::from(workers.max(1)) - 1) as usize)
}

/// The worker that handles outbound packets from `inside` (and owns its
/// sessions): a hash of the address, so the pipeline can steer by it.
#[inline]
pub fn inside_worker(workers: u16, inside: Ipv4Addr) -> usize {
    (addr_hash(u32::from(inside)) % u32::from(workers.max(1))) as usize
}

/// The worker that owns a returning packet to `outside_addr:outside_port`
/// (`proto`; for ICMP the translated query id, for an ICMP error the
/// embedded packet's source port or id): a forward's or 1:1 mapping's inside
/// host's worker, otherwise the owner of the port's range. Ports below the
/// dynamic range that no forward uses belong to no session; they go to 0.
pub fn owner_worker(
    cfg: &NatConfig,
    outside_addr: Ipv4Addr,
    outside_port: u16,
    proto: Proto,
) -> usize {
    if let Some(f) = cfg.forwards.iter().find(|f| {
        f.outside_addr == outside_addr && f.outside_port == outside_port && f.proto == proto
    }) {
        return inside_worker(cfg.workers, f.inside_addr);
    }
    if let Some(m) = cfg.one_to_one.iter().find(|m| m.outside == outside_addr) {
        return inside_worker(cfg.workers, m.inside);
    }
    range_owner(cfg.workers, outside_port).unwrap_or(0)
}

/// Free/used ports of this worker's range, one bitmap per (pool address,
/// protocol), with a next-fit cursor each. Preallocated; never grows.
#[derive(Debug)]
pub struct PortAllocator {
    lo: u32,
    len: u32,
    words: usize,
    /// Set bit = port in use (bits past `len` are set so they are never free).
    bits: Vec<u64>,
    cursors: Vec<u32>,
    used: Vec<u32>,
}

impl PortAllocator {
    pub fn new(pool_len: usize, workers: u16, worker: u16) -> Self {
        let (lo, hi) = port_range(workers, worker);
        let len = hi - lo;
        let words = len.div_ceil(64) as usize;
        let spaces = pool_len * Proto::COUNT;
        let mut bits = vec![0u64; spaces * words];
        if len % 64 != 0 {
            let pad = !0u64 << (len % 64);
            for s in 0..spaces {
                bits[s * words + words - 1] = pad;
            }
        }
        Self {
            lo,
            len,
            words,
            bits,
            cursors: vec![0; spaces],
            used: vec![0; spaces],
        }
    }

    /// This worker's range `[lo, hi)`.
    pub fn range(&self) -> (u32, u32) {
        (self.lo, self.lo + self.len)
    }

    #[inline]
    fn space(addr_idx: usize, proto: Proto) -> usize {
        addr_idx * Proto::COUNT + proto.index()
    }

    #[inline]
    fn offset(&self, port: u16) -> Option<u32> {
        let off = u32::from(port).wrapping_sub(self.lo);
        (off < self.len).then_some(off)
    }

    /// Takes exactly `port` if it is in this worker's range and free.
    #[inline]
    pub fn take(&mut self, addr_idx: usize, proto: Proto, port: u16) -> bool {
        let Some(off) = self.offset(port) else {
            return false;
        };
        let s = Self::space(addr_idx, proto);
        let w = s * self.words + (off / 64) as usize;
        let bit = 1u64 << (off % 64);
        if self.bits[w] & bit != 0 {
            return false;
        }
        self.bits[w] |= bit;
        self.used[s] += 1;
        true
    }

    /// Takes the next free port at or after the cursor (wrapping), or `None`
    /// when the range is exhausted on this address.
    #[inline]
    pub fn take_next(&mut self, addr_idx: usize, proto: Proto) -> Option<u16> {
        let s = Self::space(addr_idx, proto);
        if self.used[s] >= self.len {
            return None;
        }
        let base = s * self.words;
        let bits = &self.bits[base..base + self.words];
        let cur = self.cursors[s];
        let off = find_free(bits, cur, self.len).or_else(|| find_free(bits, 0, cur))?;
        self.bits[base + (off / 64) as usize] |= 1u64 << (off % 64);
        self.used[s] += 1;
        self.cursors[s] = if off + 1 >= self.len { 0 } else { off + 1 };
        Some((self.lo + off) as u16)
    }

    /// Returns `port` to the free set.
    #[inline]
    pub fn release(&mut self, addr_idx: usize, proto: Proto, port: u16) {
        let Some(off) = self.offset(port) else {
            return;
        };
        let s = Self::space(addr_idx, proto);
        let w = s * self.words + (off / 64) as usize;
        let bit = 1u64 << (off % 64);
        if self.bits[w] & bit != 0 {
            self.bits[w] &= !bit;
            self.used[s] -= 1;
        }
    }

    /// Whether `port` is in this worker's range and marked in use.
    pub fn is_used(&self, addr_idx: usize, proto: Proto, port: u16) -> bool {
        let Some(off) = self.offset(port) else {
            return false;
        };
        let w = Self::space(addr_idx, proto) * self.words + (off / 64) as usize;
        self.bits[w] & (1u64 << (off % 64)) != 0
    }

    /// Whether `port` is in this worker's range.
    pub fn in_range(&self, port: u16) -> bool {
        self.offset(port).is_some()
    }

    /// Ports in use on one address and protocol.
    pub fn used(&self, addr_idx: usize, proto: Proto) -> u32 {
        self.used[Self::space(addr_idx, proto)]
    }
}

/// First clear bit in `[from, to)`, scanning 64 at a time.
#[inline]
fn find_free(bits: &[u64], from: u32, to: u32) -> Option<u32> {
    let mut i = from;
    while i < to {
        let w = (i / 64) as usize;
        let free = !bits[w] & (!0u64 << (i % 64));
        if free != 0 {
            let p = (w as u32) * 64 + free.trailing_zeros();
            return (p < to).then_some(p);
        }
        i = (w as u32 + 1) * 64;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_tile_the_dynamic_ports_and_owner_agrees() {
        for workers in [1u16, 2, 3, 7, 64, 256] {
            let mut next = DYNAMIC_PORT_MIN;
            for w in 0..workers {
                let (lo, hi) = port_range(workers, w);
                assert_eq!(lo, next);
                assert!(hi > lo);
                for p in [lo, (lo + hi) / 2, hi - 1] {
                    assert_eq!(range_owner(workers, p as u16), Some(w as usize));
                }
                next = hi;
            }
            assert_eq!(next, 65536);
        }
        assert_eq!(range_owner(4, 1023), None);
    }

    #[test]
    fn allocator_exhausts_wraps_and_reuses() {
        let mut a = PortAllocator::new(1, 256, 3);
        let (lo, hi) = a.range();
        let n = hi - lo;
        assert!(a.take(0, Proto::Udp, lo as u16 + 5));
        assert!(!a.take(0, Proto::Udp, lo as u16 + 5));
        assert!(!a.take(0, Proto::Udp, hi as u16));
        // The same port is free in another protocol's space.
        assert!(a.take(0, Proto::Tcp, lo as u16 + 5));
        let mut got = vec![lo as u16 + 5];
        while let Some(p) = a.take_next(0, Proto::Udp) {
            assert!((lo..hi).contains(&u32::from(p)));
            got.push(p);
        }
        got.sort_unstable();
        got.dedup();
        assert_eq!(got.len() as u32, n);
        assert_eq!(a.used(0, Proto::Udp), n);
        a.release(0, Proto::Udp, lo as u16 + 9);
        assert_eq!(a.take_next(0, Proto::Udp), Some(lo as u16 + 9));
        assert_eq!(a.take_next(0, Proto::Udp), None);
    }
}
