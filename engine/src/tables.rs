//! Table generations handed from the control side of the engine process to
//! its workers without a lock on the packet path (RCU style).
//!
//! The publisher stores a new immutable [`Fib`] and bumps a generation
//! counter. Each worker compares the counter with its own between two
//! batches (one relaxed load), adopts the new table when it changed and
//! acknowledges the generation. A table is freed when the last worker lets
//! go of it (the `Arc`), so no worker ever reads freed memory and none waits.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::fib::fib6::Fib6Slot;
use crate::fib::Fib;

/// The current FIB and who has adopted it.
#[derive(Debug)]
pub struct TableSlot {
    generation: AtomicU64,
    fib: ArcSwap<Fib>,
    /// Generation each worker acknowledged.
    acks: Box<[AtomicU64]>,
    /// The IPv6 FIB, in its own slot (own generations and acks): built
    /// whole from the configuration and `route6.bin`, apart from the IPv4
    /// table's generations. Empty until the engine publishes its first.
    pub fib6: Fib6Slot,
}

impl TableSlot {
    /// A slot holding generation 1 for `workers` workers.
    pub fn new(fib: Arc<Fib>, workers: usize) -> Self {
        TableSlot {
            generation: AtomicU64::new(1),
            fib: ArcSwap::new(fib),
            acks: (0..workers).map(|_| AtomicU64::new(0)).collect(),
            fib6: Fib6Slot::new(None, workers),
        }
    }

    /// Publishes a new table; returns its generation.
    pub fn publish(&self, fib: Arc<Fib>) -> u64 {
        self.fib.store(fib);
        // Release: a worker that sees the new number also sees the table.
        self.generation.fetch_add(1, Ordering::Release) + 1
    }

    /// The newest generation number.
    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The newest table (and its generation).
    pub fn load(&self) -> (u64, Arc<Fib>) {
        let g = self.generation();
        (g, self.fib.load_full())
    }

    /// Records that `worker` now forwards with generation `g`.
    pub fn ack(&self, worker: usize, g: u64) {
        if let Some(a) = self.acks.get(worker) {
            a.store(g, Ordering::Release);
        }
    }

    /// The oldest generation any worker still uses.
    pub fn min_acked(&self) -> u64 {
        self.acks
            .iter()
            .map(|a| a.load(Ordering::Acquire))
            .min()
            .unwrap_or(0)
    }

    /// Generation each worker acknowledged.
    pub fn acks(&self) -> Vec<u64> {
        self.acks
            .iter()
            .map(|a| a.load(Ordering::Acquire))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_bumps_generation_and_acks_track_workers() {
        let slot = TableSlot::new(Arc::new(Fib::new(16)), 2);
        assert_eq!(slot.generation(), 1);
        let mut fib = Fib::new(16);
        fib.add_route(0, 0, crate::fib::NextHop::Blackhole).unwrap();
        assert_eq!(slot.publish(Arc::new(fib)), 2);
        let (g, f) = slot.load();
        assert_eq!((g, f.len()), (2, 1));
        slot.ack(0, 2);
        assert_eq!(slot.min_acked(), 0);
        slot.ack(1, 2);
        assert_eq!(slot.min_acked(), 2);
    }
}
