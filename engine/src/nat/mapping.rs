//! Mappings (RFC 4787 §4.1): inside endpoint <-> outside endpoint for one
//! protocol, shared by every session of that inside endpoint whatever the
//! destination (endpoint-independent mapping, REQ-1). A dynamic mapping
//! lives while a session uses it; a static one (a port forward) forever.

use super::index::IndexTable;
use super::key::{endpoint_hash, Endpoint, Proto};

/// Pool index of a mapping whose outside address is not allocated from the
/// pool (a static forward).
pub const STATIC_POOL: u16 = u16::MAX;

#[derive(Clone, Copy, Debug)]
pub struct Mapping {
    pub inside: Endpoint,
    pub outside: Endpoint,
    pub proto: Proto,
    /// Index of the outside address in the pool, or [`STATIC_POOL`].
    pub pool_idx: u16,
    pub is_static: bool,
    /// Sessions using this mapping.
    pub sessions: u32,
}

#[derive(Debug)]
pub struct MappingTable {
    slots: Vec<Mapping>,
    free: Vec<u32>,
    by_inside: IndexTable,
    by_outside: IndexTable,
}

impl MappingTable {
    pub fn new(capacity: usize) -> Self {
        let blank = Mapping {
            inside: Endpoint::default(),
            outside: Endpoint::default(),
            proto: Proto::Udp,
            pool_idx: STATIC_POOL,
            is_static: false,
            sessions: 0,
        };
        Self {
            slots: super::huge::huge_vec(capacity, blank),
            free: (0..capacity as u32).rev().collect(),
            by_inside: IndexTable::with_capacity(capacity),
            by_outside: IndexTable::with_capacity(capacity),
        }
    }

    pub fn count(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Which slots hold a live mapping (from the free list: O(capacity),
    /// allocates; for reconfiguration and checks, not the packet path).
    pub fn live_slots(&self) -> Vec<bool> {
        let mut live = vec![true; self.slots.len()];
        for &f in &self.free {
            live[f as usize] = false;
        }
        live
    }

    #[inline]
    pub fn get(&self, idx: u32) -> &Mapping {
        &self.slots[idx as usize]
    }

    #[inline]
    pub fn get_mut(&mut self, idx: u32) -> &mut Mapping {
        &mut self.slots[idx as usize]
    }

    #[inline]
    pub fn find_inside(&self, inside: Endpoint, proto: Proto) -> Option<u32> {
        self.by_inside.find(endpoint_hash(inside, proto), |i| {
            let m = &self.slots[i as usize];
            m.inside == inside && m.proto == proto
        })
    }

    /// Prefetches the index line of an inside-endpoint key.
    #[inline]
    pub fn prefetch_inside(&self, hash: u32) {
        self.by_inside.prefetch(hash);
    }

    #[inline]
    pub fn find_outside(&self, outside: Endpoint, proto: Proto) -> Option<u32> {
        self.by_outside.find(endpoint_hash(outside, proto), |i| {
            let m = &self.slots[i as usize];
            m.outside == outside && m.proto == proto
        })
    }

    /// Stores `m`; `None` when full (cannot happen when sized to sessions +
    /// forwards, as every dynamic mapping has a session).
    #[inline]
    pub fn insert(&mut self, m: Mapping) -> Option<u32> {
        let idx = self.free.pop()?;
        self.slots[idx as usize] = m;
        self.by_inside.insert(endpoint_hash(m.inside, m.proto), idx);
        self.by_outside
            .insert(endpoint_hash(m.outside, m.proto), idx);
        Some(idx)
    }

    #[inline]
    pub fn remove(&mut self, idx: u32) -> Mapping {
        let m = self.slots[idx as usize];
        self.by_inside.remove(endpoint_hash(m.inside, m.proto), idx);
        self.by_outside
            .remove(endpoint_hash(m.outside, m.proto), idx);
        self.free.push(idx);
        m
    }
}
