//! Static translations built once from the config: which addresses are
//! outside addresses (pool, 1:1, forwards), the 1:1 mappings both ways, and
//! the forwards by outside endpoint for steering returning packets.
//! Sorted arrays searched by bisection: the lists are short and read-only.

use super::config::NatConfig;
use super::key::Proto;
use super::ports::{inside_worker, range_owner};

#[derive(Debug)]
pub struct StaticMaps {
    outside_addrs: Vec<u32>,
    one_to_one_by_inside: Vec<(u32, u32)>,
    one_to_one_by_outside: Vec<(u32, u32)>,
    /// (outside addr << 24 | port << 8 | proto, inside addr), sorted.
    forwards: Vec<(u64, u32)>,
    workers: u16,
    /// Smallest and largest outside address: most packets' addresses lie
    /// outside that range and are rejected with two compares.
    lo: u32,
    hi: u32,
}

#[inline]
fn forward_key(addr: u32, port: u16, proto: Proto) -> u64 {
    (u64::from(addr) << 24) | (u64::from(port) << 8) | proto as u64
}

impl StaticMaps {
    pub fn new(cfg: &NatConfig) -> Self {
        let mut outside_addrs: Vec<u32> = cfg.pool.iter().map(|&a| u32::from(a)).collect();
        outside_addrs.extend(cfg.one_to_one.iter().map(|m| u32::from(m.outside)));
        outside_addrs.extend(cfg.forwards.iter().map(|f| u32::from(f.outside_addr)));
        outside_addrs.sort_unstable();
        outside_addrs.dedup();
        let mut by_in: Vec<(u32, u32)> = cfg
            .one_to_one
            .iter()
            .map(|m| (u32::from(m.inside), u32::from(m.outside)))
            .collect();
        by_in.sort_unstable();
        let mut by_out: Vec<(u32, u32)> = by_in.iter().map(|&(i, o)| (o, i)).collect();
        by_out.sort_unstable();
        let mut forwards: Vec<(u64, u32)> = cfg
            .forwards
            .iter()
            .map(|f| {
                (
                    forward_key(u32::from(f.outside_addr), f.outside_port, f.proto),
                    u32::from(f.inside_addr),
                )
            })
            .collect();
        forwards.sort_unstable();
        Self {
            lo: outside_addrs.first().copied().unwrap_or(1),
            hi: outside_addrs.last().copied().unwrap_or(0),
            outside_addrs,
            one_to_one_by_inside: by_in,
            one_to_one_by_outside: by_out,
            forwards,
            workers: cfg.workers,
        }
    }

    /// True for an address NAT answers for on the outside.
    #[inline]
    pub fn is_outside(&self, addr: u32) -> bool {
        addr >= self.lo && addr <= self.hi && self.outside_addrs.binary_search(&addr).is_ok()
    }

    /// The outside address of 1:1-mapped inside host `inside`.
    #[inline]
    pub fn one_to_one_out(&self, inside: u32) -> Option<u32> {
        if self.one_to_one_by_inside.is_empty() {
            return None;
        }
        let i = self
            .one_to_one_by_inside
            .binary_search_by_key(&inside, |e| e.0)
            .ok()?;
        Some(self.one_to_one_by_inside[i].1)
    }

    /// The inside host of 1:1 outside address `outside`.
    #[inline]
    pub fn one_to_one_in(&self, outside: u32) -> Option<u32> {
        if self.one_to_one_by_outside.is_empty() {
            return None;
        }
        let i = self
            .one_to_one_by_outside
            .binary_search_by_key(&outside, |e| e.0)
            .ok()?;
        Some(self.one_to_one_by_outside[i].1)
    }

    /// Same answer as [`super::ports::owner_worker`], from the sorted tables.
    #[inline]
    pub fn owner_worker(&self, addr: u32, port: u16, proto: Proto) -> usize {
        if self.workers <= 1 {
            return 0;
        }
        let k = forward_key(addr, port, proto);
        if let Ok(i) = self.forwards.binary_search_by_key(&k, |e| e.0) {
            return inside_worker(self.workers, self.forwards[i].1.into());
        }
        if let Some(inside) = self.one_to_one_in(addr) {
            return inside_worker(self.workers, inside.into());
        }
        range_owner(self.workers, port).unwrap_or(0)
    }
}
