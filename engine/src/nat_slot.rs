//! NAT configuration and session queries handed between the engine's link
//! thread and its workers, without a lock on the packet path.
//!
//! Configuration: the link thread publishes a [`NatPlan`] (or none: NAT
//! off) through a [`PlanSlot`]; each worker applies the newest plan to its
//! [`crate::nat::Nat`] (keeping established sessions), then acknowledges.
//!
//! Session listing (the API's paged `GET`): the link thread posts a
//! [`SessionQuery`] for one worker and bumps the query number; that worker
//! answers between two batches into its [`SessionAnswer`] slot. The mutexes
//! are taken only by the link thread and by a worker that has a query to
//! answer, never per packet.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::nat::{NatConfig, SessionInfo};
use crate::plan_slot::PlanSlot;

/// NAT as every worker should run it: the config (with `workers` set;
/// each worker puts its own index in `worker`) and where the outside
/// interface is, by port and VLAN (its interface index is resolved by each
/// worker against its current interface table).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NatPlan {
    pub config: NatConfig,
    pub outside_port: u16,
    pub outside_vlan: u16,
}

/// One page request for one worker's sessions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionQuery {
    pub worker: usize,
    pub inside: Option<Ipv4Addr>,
    /// First session slot to look at.
    pub cursor: usize,
    pub limit: usize,
}

/// A worker's answer to query number `seq`.
#[derive(Clone, Debug, Default)]
pub struct SessionAnswer {
    pub seq: u64,
    pub sessions: Vec<SessionInfo>,
    /// Slot where the next page starts; None when this worker has no more.
    pub next: Option<usize>,
    /// False when the worker runs no NAT.
    pub nat_enabled: bool,
}

/// The shared state between the link thread and the workers.
#[derive(Debug)]
pub struct NatSlot {
    plans: PlanSlot<NatPlan>,
    query_seq: AtomicU64,
    query: Mutex<Option<SessionQuery>>,
    answers: Box<[Mutex<SessionAnswer>]>,
}

impl NatSlot {
    /// Generation 1 holding `plan` (None: NAT off) for `workers` workers.
    pub fn new(plan: Option<NatPlan>, workers: usize) -> Self {
        NatSlot {
            plans: PlanSlot::new(plan, workers),
            query_seq: AtomicU64::new(0),
            query: Mutex::new(None),
            answers: (0..workers)
                .map(|_| Mutex::new(SessionAnswer::default()))
                .collect(),
        }
    }

    /// Publishes a new plan; returns its generation.
    pub fn publish(&self, plan: Option<NatPlan>) -> u64 {
        self.plans.publish(plan)
    }

    /// The newest generation number (workers poll this).
    #[inline]
    pub fn generation(&self) -> u64 {
        self.plans.generation()
    }

    /// The newest plan and its generation.
    pub fn load(&self) -> (u64, Option<Arc<NatPlan>>) {
        self.plans.load()
    }

    /// Records that `worker` runs generation `g`.
    pub fn ack(&self, worker: usize, g: u64) {
        self.plans.ack(worker, g)
    }

    /// The oldest generation a worker still runs.
    pub fn min_acked(&self) -> u64 {
        self.plans.min_acked()
    }

    /// The newest query number (workers poll this).
    #[inline]
    pub fn query_seq(&self) -> u64 {
        self.query_seq.load(Ordering::Acquire)
    }

    /// The pending query, if it is for `worker`.
    pub fn query_for(&self, worker: usize) -> Option<(u64, SessionQuery)> {
        let q = self.query.lock().ok()?;
        let seq = self.query_seq();
        q.filter(|q| q.worker == worker).map(|q| (seq, q))
    }

    /// A worker's answer to query `seq`.
    pub fn answer(&self, worker: usize, a: SessionAnswer) {
        if let Some(slot) = self.answers.get(worker) {
            if let Ok(mut s) = slot.lock() {
                *s = a;
            }
        }
    }

    /// Asks worker `q.worker` for a page and waits up to `timeout` for the
    /// answer (None: the worker did not answer: stopped or stuck).
    pub fn ask(&self, q: SessionQuery, timeout: Duration) -> Option<SessionAnswer> {
        let slot = self.answers.get(q.worker)?;
        let seq = {
            let mut cur = self.query.lock().ok()?;
            *cur = Some(q);
            self.query_seq.fetch_add(1, Ordering::AcqRel) + 1
        };
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(mut a) = slot.lock() {
                if a.seq == seq {
                    return Some(std::mem::take(&mut *a));
                }
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_is_answered_by_its_worker_only() {
        let slot = Arc::new(NatSlot::new(None, 2));
        let s = slot.clone();
        let worker = std::thread::spawn(move || loop {
            if let Some((seq, q)) = s.query_for(1) {
                s.answer(
                    1,
                    SessionAnswer {
                        seq,
                        sessions: Vec::new(),
                        next: Some(q.cursor + 7),
                        nat_enabled: true,
                    },
                );
                return;
            }
            assert!(s.query_for(0).is_none() || s.query_seq() == 0);
            std::thread::yield_now();
        });
        let a = slot
            .ask(
                SessionQuery {
                    worker: 1,
                    inside: None,
                    cursor: 5,
                    limit: 10,
                },
                Duration::from_secs(10),
            )
            .expect("answered");
        assert_eq!(a.next, Some(12));
        worker.join().unwrap();
        // Nobody answers for worker 0: the ask times out.
        let none = slot.ask(
            SessionQuery {
                worker: 0,
                inside: None,
                cursor: 0,
                limit: 1,
            },
            Duration::from_millis(20),
        );
        assert!(none.is_none());
    }
}
