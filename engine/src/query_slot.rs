//! A question the link thread asks one worker, answered between two of
//! its batches without a lock on the packet path: the link posts the
//! query and bumps a sequence number; the worker notices the bump with one
//! atomic load per poll, answers into its own slot; the link waits for
//! the answer of that sequence number. The mutexes are taken only by the
//! link and by a worker with a question to answer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A worker's answer slot: the query number answered, and the answer.
type Answer<A> = Mutex<(u64, Option<A>)>;

#[derive(Debug)]
pub struct QuerySlot<Q, A> {
    seq: AtomicU64,
    /// (worker, query).
    query: Mutex<Option<(usize, Q)>>,
    /// Per worker: the sequence number answered and the answer.
    answers: Box<[Answer<A>]>,
}

impl<Q: Clone, A> QuerySlot<Q, A> {
    pub fn new(workers: usize) -> Self {
        QuerySlot {
            seq: AtomicU64::new(0),
            query: Mutex::new(None),
            answers: (0..workers).map(|_| Mutex::new((0, None))).collect(),
        }
    }

    /// The newest query number (workers poll this).
    #[inline]
    pub fn seq(&self) -> u64 {
        self.seq.load(Ordering::Acquire)
    }

    /// The pending query with its number, if it is for `worker`.
    pub fn query_for(&self, worker: usize) -> Option<(u64, Q)> {
        let q = self.query.lock().ok()?;
        let seq = self.seq();
        q.as_ref()
            .filter(|(w, _)| *w == worker)
            .map(|(_, q)| (seq, q.clone()))
    }

    /// `worker`'s answer to query number `seq`.
    pub fn answer(&self, worker: usize, seq: u64, a: A) {
        if let Some(slot) = self.answers.get(worker) {
            if let Ok(mut s) = slot.lock() {
                *s = (seq, Some(a));
            }
        }
    }

    /// Asks `worker` and waits up to `timeout` for its answer (None: it did
    /// not answer — stopped or stuck — or there is no such worker).
    pub fn ask(&self, worker: usize, q: Q, timeout: Duration) -> Option<A> {
        let slot = self.answers.get(worker)?;
        let seq = {
            let mut cur = self.query.lock().ok()?;
            *cur = Some((worker, q));
            self.seq.fetch_add(1, Ordering::AcqRel) + 1
        };
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(mut a) = slot.lock() {
                if a.0 == seq {
                    return a.1.take();
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
    use std::sync::Arc;

    #[test]
    fn a_query_is_answered_by_its_worker_only() {
        let slot: Arc<QuerySlot<u32, u32>> = Arc::new(QuerySlot::new(2));
        let s = slot.clone();
        let worker = std::thread::spawn(move || loop {
            assert!(s.query_for(0).is_none());
            if let Some((seq, q)) = s.query_for(1) {
                s.answer(1, seq, q + 7);
                return;
            }
            std::thread::yield_now();
        });
        assert_eq!(slot.ask(1, 5, Duration::from_secs(10)), Some(12));
        worker.join().unwrap();
        // Nobody answers for worker 0: the ask times out; no worker 2.
        assert_eq!(slot.ask(0, 1, Duration::from_millis(20)), None);
        assert_eq!(slot.ask(2, 1, Duration::from_millis(20)), None);
    }
}
