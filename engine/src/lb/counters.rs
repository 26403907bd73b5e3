//! The balancer's counters: per backend slot and worker (flows, active
//! flows, packets, bytes; one writer each, summed by the link thread for
//! `lb.sock`), and per worker totals exported as `lb.<name>`.

use std::sync::atomic::{AtomicU64, Ordering};

use super::plan::MAX_BACKEND_SLOTS;
use crate::counters::bump;

/// Fields per backend slot.
const FIELDS: usize = 4;
const FLOWS: usize = 0;
const ACTIVE: usize = 1;
const PACKETS: usize = 2;
const BYTES: usize = 3;

/// Per-worker per-slot counters, allocated once for the engine's life.
#[derive(Debug)]
pub struct BackendCounters {
    cells: Box<[AtomicU64]>,
    workers: usize,
}

/// One backend's counters summed over the workers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BackendTotals {
    pub flows: u64,
    pub active_flows: u64,
    pub packets: u64,
    pub bytes: u64,
}

impl BackendCounters {
    pub fn new(workers: usize) -> Self {
        BackendCounters {
            cells: (0..workers * MAX_BACKEND_SLOTS * FIELDS)
                .map(|_| AtomicU64::new(0))
                .collect(),
            workers,
        }
    }

    #[inline]
    fn at(&self, worker: usize, slot: u16, field: usize) -> Option<&AtomicU64> {
        self.cells
            .get((worker * MAX_BACKEND_SLOTS + usize::from(slot)) * FIELDS + field)
    }

    /// A new flow pinned to `slot` by `worker`.
    #[inline]
    pub fn flow_pinned(&self, worker: usize, slot: u16) {
        if let Some(c) = self.at(worker, slot, FLOWS) {
            bump(c, 1);
        }
        if let Some(c) = self.at(worker, slot, ACTIVE) {
            bump(c, 1);
        }
    }

    /// A pin of `slot` forgotten by `worker`.
    #[inline]
    pub fn flow_unpinned(&self, worker: usize, slot: u16) {
        if let Some(c) = self.at(worker, slot, ACTIVE) {
            c.store(c.load(Ordering::Relaxed).wrapping_sub(1), Ordering::Relaxed);
        }
    }

    /// A packet of `bytes` IP bytes of a flow of `slot`.
    #[inline]
    pub fn packet(&self, worker: usize, slot: u16, bytes: u64) {
        if let Some(c) = self.at(worker, slot, PACKETS) {
            bump(c, 1);
        }
        if let Some(c) = self.at(worker, slot, BYTES) {
            bump(c, bytes);
        }
    }

    /// Zeroes a slot given to a new backend (link thread).
    pub fn reset_slot(&self, slot: u16) {
        for w in 0..self.workers {
            for f in 0..FIELDS {
                if let Some(c) = self.at(w, slot, f) {
                    c.store(0, Ordering::Relaxed);
                }
            }
        }
    }

    /// The slot's counters summed over the workers.
    pub fn totals(&self, slot: u16) -> BackendTotals {
        let mut t = BackendTotals::default();
        for w in 0..self.workers {
            let r = |f| self.at(w, slot, f).map_or(0, |c| c.load(Ordering::Relaxed));
            t.flows = t.flows.wrapping_add(r(FLOWS));
            t.active_flows = t.active_flows.wrapping_add(r(ACTIVE));
            t.packets = t.packets.wrapping_add(r(PACKETS));
            t.bytes = t.bytes.wrapping_add(r(BYTES));
        }
        // A pin counted out by a worker after the slot was reset.
        if t.active_flows > u64::from(u32::MAX) {
            t.active_flows = 0;
        }
        t
    }
}

/// Names of [`LbCounters`] fields, in [`LbCounters::values`] order
/// (exported as `lb.<name>`).
pub const LB_COUNTER_NAMES: [&str; 9] = [
    "flows_active",
    "flows_pinned",
    "flows_expired",
    "flows_table_full",
    "no_backend",
    "nat_forward",
    "nat_reply",
    "dsr_encap",
    "repinned",
];

/// One worker's totals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LbCounters {
    /// Pins held now.
    pub flows_active: u64,
    pub flows_pinned: u64,
    pub flows_expired: u64,
    /// New flows balanced without a pin: the table was full.
    pub flows_table_full: u64,
    /// New flows dropped: no backend up with a weight.
    pub no_backend: u64,
    pub nat_forward: u64,
    pub nat_reply: u64,
    pub dsr_encap: u64,
    /// Pins whose backend went down or away, chosen again.
    pub repinned: u64,
}

impl LbCounters {
    pub fn values(&self) -> [u64; LB_COUNTER_NAMES.len()] {
        [
            self.flows_active,
            self.flows_pinned,
            self.flows_expired,
            self.flows_table_full,
            self.no_backend,
            self.nat_forward,
            self.nat_reply,
            self.dsr_encap,
            self.repinned,
        ]
    }
}
