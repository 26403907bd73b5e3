//! Pushes desired state to the engine: compiles the default organization's
//! routes into a table generation and publishes it through shared memory
//! (`patronus-shm`). The store actor calls [`Pusher::push`] at start (a
//! restarted control process republishes what it holds, numbering on) and
//! after every successful change, so the engine follows the store.
//! [`PushWatch`] measures each push's latency (publication until every live
//! worker acknowledged it) on a tokio task, off the store actor.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use patronus_shm::layout::IFACE_ANY;
use patronus_shm::{GenerationBuilder, Publisher, RouteEntry, RouteKind, TableBuilder};

use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::store::Store;

/// Organization whose routes the engine forwards with (one routing table
/// until per-tenant tables exist).
pub const PUSHED_ORG: &str = "default";

/// The publisher, shared with the engine view (status, metrics).
pub type SharedPublisher = Arc<Mutex<Publisher>>;

/// The generation last published and when.
pub type LastPush = Arc<Mutex<Option<(u64, Instant)>>>;

/// How often acks are checked while a push is outstanding.
pub const ACK_POLL_INTERVAL: Duration = Duration::from_millis(1);

/// Compiles and publishes.
#[derive(Debug)]
pub struct Pusher {
    publisher: SharedPublisher,
    /// Desired-state generation last published.
    published_desired: Option<u64>,
    /// When the last generation was published and its number (for the
    /// push-latency measurement in the engine view).
    pub last: LastPush,
    /// Wakes the [`PushWatch`] after a publication.
    published: Arc<Notify>,
}

fn storage(e: impl std::fmt::Display) -> Error {
    Error::Storage(format!("shared memory: {e}"))
}

impl Pusher {
    /// Attaches to the runtime directory (created 0700 if missing).
    pub fn open(dir: &Path) -> Result<Pusher> {
        let publisher = Publisher::open(dir).map_err(storage)?;
        Ok(Pusher {
            publisher: Arc::new(Mutex::new(publisher)),
            published_desired: None,
            last: Arc::new(Mutex::new(None)),
            published: Arc::new(Notify::new()),
        })
    }

    /// The shared publisher.
    pub fn publisher(&self) -> SharedPublisher {
        self.publisher.clone()
    }

    /// A watch measuring this pusher's push latencies.
    pub fn watch(&self) -> PushWatch {
        PushWatch {
            publisher: self.publisher.clone(),
            last: self.last.clone(),
            published: self.published.clone(),
            done: 0,
        }
    }

    /// Publishes the store's state if it changed since the last push.
    pub fn push_if_changed(&mut self, store: &mut Store) -> Result<Option<u64>> {
        let desired = store.generation()?;
        if self.published_desired == Some(desired) {
            return Ok(None);
        }
        let g = self.push(store)?;
        self.published_desired = Some(desired);
        Ok(Some(g))
    }

    /// Compiles the routes and publishes them as a new generation.
    pub fn push(&mut self, store: &mut Store) -> Result<u64> {
        let mut routes = TableBuilder::<RouteEntry>::new();
        for r in store.list_routes(PUSHED_ORG)? {
            let kind = if r.blackhole {
                RouteKind::Blackhole
            } else {
                RouteKind::Via
            };
            let mut e = RouteEntry::new(
                u32::from(r.prefix.addr) & r.prefix.mask(),
                r.prefix.len,
                kind,
            );
            for nh in &r.next_hops {
                if !e.push_nexthop(u32::from(nh.via), IFACE_ANY) {
                    return Err(Error::invalid(
                        "next_hops",
                        "too many next hops for the engine",
                    ));
                }
            }
            routes.push(e).map_err(storage)?;
        }
        let mut generation = GenerationBuilder::new();
        generation.add(routes).map_err(storage)?;
        let mut publisher = self
            .publisher
            .lock()
            .map_err(|_| storage("publisher lock poisoned"))?;
        let g = publisher.publish(&generation).map_err(storage)?;
        // Old generations no live worker uses any more.
        let _ = publisher.gc();
        if let Ok(mut last) = self.last.lock() {
            *last = Some((g, Instant::now()));
        }
        // Stores a permit when the watch is busy: no publication is missed.
        self.published.notify_one();
        Ok(g)
    }
}

/// What [`PushWatch::check`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushState {
    /// Nothing outstanding: no publication yet, the last one was measured,
    /// or no worker is live to acknowledge it (not measured then).
    Idle,
    /// The last generation is published but not acknowledged by every live
    /// worker yet (or the publisher is busy publishing).
    Pending,
    /// Every live worker acknowledged the last generation this long after
    /// it was published; reported once per generation.
    Acked(Duration),
}

/// Measures push latency: compares the workers' acks in shared memory with
/// the last published generation. A generation superseded before every
/// worker acked it is not measured (the next one is).
#[derive(Debug)]
pub struct PushWatch {
    publisher: SharedPublisher,
    last: LastPush,
    published: Arc<Notify>,
    /// Newest generation measured or given up on.
    done: u64,
}

impl PushWatch {
    /// Looks once; never blocks (a publisher busy publishing is `Pending`).
    pub fn check(&mut self) -> PushState {
        let last = *self.last.lock().unwrap_or_else(|e| e.into_inner());
        let Some((generation, at)) = last else {
            return PushState::Idle;
        };
        if generation <= self.done {
            return PushState::Idle;
        }
        let workers = match self.publisher.try_lock() {
            Ok(p) => p.workers_at(patronus_shm::monotonic_ms()),
            Err(_) => return PushState::Pending,
        };
        let mut live = workers.iter().filter(|w| w.live).peekable();
        if live.peek().is_none() {
            // No engine to wait for: its later attach is not a push latency.
            self.done = generation;
            return PushState::Idle;
        }
        if live.all(|w| w.acked_generation >= generation) {
            self.done = generation;
            return PushState::Acked(at.elapsed());
        }
        PushState::Pending
    }

    /// Records every push latency into `metrics`: sleeps until a
    /// publication, then checks every [`ACK_POLL_INTERVAL`] until it is
    /// acknowledged. Runs until the task is dropped.
    pub async fn run(mut self, metrics: Metrics) {
        loop {
            match self.check() {
                PushState::Idle => self.published.notified().await,
                PushState::Pending => tokio::time::sleep(ACK_POLL_INTERVAL).await,
                PushState::Acked(d) => {
                    tracing::debug!(
                        generation = self.done,
                        ms = d.as_secs_f64() * 1e3,
                        "every live worker acknowledged"
                    );
                    metrics.observe_push(d.as_secs_f64());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use patronus_shm::Subscriber;

    use super::*;
    use crate::metrics::{Detached, TABLE_PUSH_LATENCY};

    /// A runtime directory removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let p = std::env::temp_dir().join(format!(
                "patronus-push-{tag}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::remove_dir_all(&p);
            TempDir(p)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn push_count(metrics: &Metrics) -> u64 {
        metrics
            .gather()
            .iter()
            .find(|f| f.get_name() == TABLE_PUSH_LATENCY)
            .map_or(0, |f| f.get_metric()[0].get_histogram().get_sample_count())
    }

    #[test]
    fn latency_is_measured_once_when_every_live_worker_acked() {
        let dir = TempDir::new("check");
        let mut store = Store::open_in_memory().unwrap();
        let mut pusher = Pusher::open(&dir.0).unwrap();
        let mut watch = pusher.watch();
        assert_eq!(watch.check(), PushState::Idle, "nothing published");

        // No engine: the generation is not waited for.
        pusher.push(&mut store).unwrap();
        assert_eq!(watch.check(), PushState::Idle);

        let sub = Subscriber::open(&dir.0).unwrap();
        let w0 = sub.worker(0).unwrap();
        let w1 = sub.worker(1).unwrap();
        let g = pusher.push(&mut store).unwrap();
        assert_eq!(watch.check(), PushState::Pending);
        w0.ack(g);
        assert_eq!(watch.check(), PushState::Pending, "worker 1 has not acked");
        w1.ack(g);
        assert!(matches!(watch.check(), PushState::Acked(_)));
        assert_eq!(watch.check(), PushState::Idle, "reported once");

        // A newer ack also acknowledges an older generation; a worker that
        // went away does not hold the measurement back.
        let g = pusher.push(&mut store).unwrap();
        drop(w1);
        assert_eq!(watch.check(), PushState::Pending);
        w0.ack(g + 5);
        assert!(matches!(watch.check(), PushState::Acked(_)));
    }

    #[tokio::test]
    async fn run_observes_each_acknowledged_push() {
        let dir = TempDir::new("run");
        let mut store = Store::open_in_memory().unwrap();
        let mut pusher = Pusher::open(&dir.0).unwrap();
        let metrics = Metrics::new(Arc::new(Detached)).unwrap();
        let task = tokio::spawn(pusher.watch().run(metrics.clone()));
        let sub = Subscriber::open(&dir.0).unwrap();
        let worker = sub.worker(0).unwrap();
        for round in 1..=2u64 {
            let g = pusher.push(&mut store).unwrap();
            // Not acknowledged yet: nothing recorded for this round.
            tokio::time::sleep(ACK_POLL_INTERVAL * 5).await;
            assert_eq!(push_count(&metrics), round - 1);
            worker.ack(g);
            // A hang guard, not a latency bound.
            tokio::time::timeout(Duration::from_secs(30), async {
                while push_count(&metrics) < round {
                    tokio::time::sleep(ACK_POLL_INTERVAL).await;
                }
            })
            .await
            .expect("the acknowledged push is observed");
        }
        tokio::time::sleep(ACK_POLL_INTERVAL * 5).await;
        assert_eq!(push_count(&metrics), 2, "each generation observed once");
        task.abort();
    }
}
