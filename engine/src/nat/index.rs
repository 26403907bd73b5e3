//! A fixed-capacity open-addressing index (linear probing, backward-shift
//! deletion, no tombstones) from a 32-bit hash to a `u32` slot number.
//!
//! Chosen over a hashbrown map because the keys live in the slabs already
//! (the index stores only hash + slot, 8 bytes), deletion leaves no
//! tombstones that would need a rehash, and the table is sized once to at
//! least twice the most entries it can hold, so it never grows or allocates
//! and probes stay short.

#[derive(Debug)]
pub struct IndexTable {
    /// `hash << 32 | (slot + 1)`; 0 = empty.
    slots: Vec<u64>,
    mask: usize,
}

impl IndexTable {
    /// A table for at most `entries` entries (load factor <= 1/2).
    pub fn with_capacity(entries: usize) -> Self {
        let size = (entries.max(1) * 2).next_power_of_two();
        Self {
            slots: super::huge::huge_vec(size, 0),
            mask: size - 1,
        }
    }

    /// The slot whose hash is `hash` and for which `eq` holds.
    #[inline]
    pub fn find(&self, hash: u32, mut eq: impl FnMut(u32) -> bool) -> Option<u32> {
        let mut i = hash as usize & self.mask;
        loop {
            let s = self.slots[i];
            if s == 0 {
                return None;
            }
            if (s >> 32) as u32 == hash && eq(s as u32 - 1) {
                return Some(s as u32 - 1);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Prefetches the line where a probe for `hash` starts.
    #[inline]
    pub fn prefetch(&self, hash: u32) {
        super::prefetch::prefetch(&self.slots[hash as usize & self.mask]);
    }

    /// The first slot stored under `hash` (a candidate, not checked
    /// against the key: for prefetching).
    #[inline]
    pub fn first(&self, hash: u32) -> Option<u32> {
        let mut i = hash as usize & self.mask;
        loop {
            let s = self.slots[i];
            if s == 0 {
                return None;
            }
            if (s >> 32) as u32 == hash {
                return Some(s as u32 - 1);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Adds `slot` under `hash`. The caller keeps the entry count within the
    /// capacity given at construction, so an empty place always exists.
    #[inline]
    pub fn insert(&mut self, hash: u32, slot: u32) {
        let mut i = hash as usize & self.mask;
        while self.slots[i] != 0 {
            i = (i + 1) & self.mask;
        }
        self.slots[i] = (u64::from(hash) << 32) | u64::from(slot + 1);
    }

    /// Removes `slot` (inserted under `hash`); false if it is not there.
    #[inline]
    pub fn remove(&mut self, hash: u32, slot: u32) -> bool {
        let want = (u64::from(hash) << 32) | u64::from(slot + 1);
        let mut i = hash as usize & self.mask;
        loop {
            let s = self.slots[i];
            if s == 0 {
                return false;
            }
            if s == want {
                break;
            }
            i = (i + 1) & self.mask;
        }
        // Backward shift: pull later entries of the cluster into the hole
        // when their home slot does not lie strictly after the hole.
        let mut hole = i;
        let mut j = i;
        loop {
            j = (j + 1) & self.mask;
            let s = self.slots[j];
            if s == 0 {
                break;
            }
            let home = (s >> 32) as usize & self.mask;
            if (j.wrapping_sub(home) & self.mask) >= (j.wrapping_sub(hole) & self.mask) {
                self.slots[hole] = s;
                hole = j;
            }
        }
        self.slots[hole] = 0;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    proptest! {
        /// Random inserts and removes with colliding hashes agree with a
        /// HashMap model.
        #[test]
        fn matches_model(ops in proptest::collection::vec((any::<bool>(), 0u32..64, 0u32..8), 1..400)) {
            let mut t = IndexTable::with_capacity(64);
            let mut model: HashMap<u32, u32> = HashMap::new();
            for (ins, slot, h) in ops {
                // A few hash values so clusters and wrap-around happen.
                let hash = h.wrapping_mul(0x8000_0001) | (h << 28);
                if ins && !model.contains_key(&slot) {
                    t.insert(hash, slot);
                    model.insert(slot, hash);
                } else if let Some(hh) = model.remove(&slot) {
                    prop_assert!(t.remove(hh, slot));
                }
                for (&s, &hh) in &model {
                    prop_assert_eq!(t.find(hh, |x| x == s), Some(s));
                }
                prop_assert_eq!(t.find(hash, |x| x == slot), model.contains_key(&slot).then_some(slot));
            }
        }
    }
}
