//! A plan the link thread hands to every worker without a lock on the
//! packet path: the link publishes an `Arc` of the plan (or none) and bumps
//! a generation; each worker compares it with its own between two batches
//! (one relaxed-cost acquire load), adopts the newest plan and
//! acknowledges, so the link knows when every worker runs it. Used for the
//! NAT plan ([`crate::nat_slot`]) and the WireGuard plan
//! ([`crate::wg_plan`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwapOption;

#[derive(Debug)]
pub struct PlanSlot<T> {
    generation: AtomicU64,
    plan: ArcSwapOption<T>,
    acks: Box<[AtomicU64]>,
}

impl<T> PlanSlot<T> {
    /// Generation 1 holding `plan` for `workers` workers.
    pub fn new(plan: Option<T>, workers: usize) -> Self {
        PlanSlot {
            generation: AtomicU64::new(1),
            plan: ArcSwapOption::new(plan.map(Arc::new)),
            acks: (0..workers).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Publishes a new plan; returns its generation.
    pub fn publish(&self, plan: Option<T>) -> u64 {
        self.plan.store(plan.map(Arc::new));
        self.generation.fetch_add(1, Ordering::Release) + 1
    }

    /// The newest generation number (workers poll this).
    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The newest plan and its generation.
    pub fn load(&self) -> (u64, Option<Arc<T>>) {
        let g = self.generation();
        (g, self.plan.load_full())
    }

    /// Records that `worker` runs generation `g`.
    pub fn ack(&self, worker: usize, g: u64) {
        if let Some(a) = self.acks.get(worker) {
            a.store(g, Ordering::Release);
        }
    }

    /// The oldest generation a worker still runs.
    pub fn min_acked(&self) -> u64 {
        self.acks
            .iter()
            .map(|a| a.load(Ordering::Acquire))
            .min()
            .unwrap_or(0)
    }

    /// Workers the slot was made for.
    pub fn workers(&self) -> usize {
        self.acks.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_and_ack() {
        let slot: PlanSlot<u32> = PlanSlot::new(None, 2);
        assert_eq!(slot.generation(), 1);
        assert!(slot.load().1.is_none());
        assert_eq!(slot.publish(Some(7)), 2);
        assert_eq!(slot.load().1.as_deref(), Some(&7));
        slot.ack(0, 2);
        assert_eq!(slot.min_acked(), 0);
        slot.ack(1, 2);
        assert_eq!(slot.min_acked(), 2);
        slot.ack(5, 9); // no such worker: ignored
        assert_eq!(slot.min_acked(), 2);
    }
}
