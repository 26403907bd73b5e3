//! Sessions per inside host: a fixed-capacity open-addressing map from
//! address to count (inline entries, backward-shift deletion when a count
//! drops to zero), for the per-host session limit.

use super::key::addr_hash;

#[derive(Debug)]
pub struct HostCounts {
    /// (address, count); count 0 = empty slot.
    slots: Vec<(u32, u32)>,
    mask: usize,
}

impl HostCounts {
    /// Room for `hosts` distinct addresses (at most one per session).
    pub fn with_capacity(hosts: usize) -> Self {
        let size = (hosts.max(1) * 2).next_power_of_two();
        Self {
            slots: super::huge::huge_vec(size, (0, 0)),
            mask: size - 1,
        }
    }

    #[inline]
    fn home(&self, addr: u32) -> usize {
        addr_hash(addr) as usize & self.mask
    }

    /// Sessions `addr` holds now.
    #[inline]
    pub fn get(&self, addr: u32) -> u32 {
        let mut i = self.home(addr);
        loop {
            let (a, c) = self.slots[i];
            if c == 0 {
                return 0;
            }
            if a == addr {
                return c;
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Sum of all counts (tests: with per-address checks, no stray counts).
    #[cfg(test)]
    pub fn total(&self) -> u64 {
        self.slots.iter().map(|&(_, c)| u64::from(c)).sum()
    }

    #[inline]
    pub fn increment(&mut self, addr: u32) {
        let mut i = self.home(addr);
        loop {
            let (a, c) = self.slots[i];
            if c == 0 {
                self.slots[i] = (addr, 1);
                return;
            }
            if a == addr {
                self.slots[i].1 = c + 1;
                return;
            }
            i = (i + 1) & self.mask;
        }
    }

    #[inline]
    pub fn decrement(&mut self, addr: u32) {
        let mut i = self.home(addr);
        loop {
            let (a, c) = self.slots[i];
            if c == 0 {
                return;
            }
            if a == addr {
                break;
            }
            i = (i + 1) & self.mask;
        }
        if self.slots[i].1 > 1 {
            self.slots[i].1 -= 1;
            return;
        }
        let mut hole = i;
        let mut j = i;
        loop {
            j = (j + 1) & self.mask;
            let (a, c) = self.slots[j];
            if c == 0 {
                break;
            }
            let home = self.home(a);
            if (j.wrapping_sub(home) & self.mask) >= (j.wrapping_sub(hole) & self.mask) {
                self.slots[hole] = self.slots[j];
                hole = j;
            }
        }
        self.slots[hole] = (0, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    proptest! {
        #[test]
        fn matches_model(ops in proptest::collection::vec((any::<bool>(), 0u32..40), 1..300)) {
            let mut h = HostCounts::with_capacity(40);
            let mut model: HashMap<u32, u32> = HashMap::new();
            for (inc, addr) in ops {
                let e = model.entry(addr).or_insert(0);
                if inc {
                    h.increment(addr);
                    *e += 1;
                } else if *e > 0 {
                    h.decrement(addr);
                    *e -= 1;
                }
                for (&a, &c) in &model {
                    prop_assert_eq!(h.get(a), c);
                }
            }
        }
    }
}
