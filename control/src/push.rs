//! Pushes desired state to the engine: compiles the default organization's
//! routes into a table generation and publishes it through shared memory
//! (`patronus-shm`). The store actor calls [`Pusher::push`] at start (a
//! restarted control process republishes what it holds, numbering on) and
//! after every successful change, so the engine follows the store.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use patronus_shm::layout::IFACE_ANY;
use patronus_shm::{GenerationBuilder, Publisher, RouteEntry, RouteKind, TableBuilder};

use crate::error::{Error, Result};
use crate::store::Store;

/// Organization whose routes the engine forwards with (one routing table
/// until per-tenant tables exist).
pub const PUSHED_ORG: &str = "default";

/// The publisher, shared with the engine view (status, metrics).
pub type SharedPublisher = Arc<Mutex<Publisher>>;

/// Compiles and publishes.
#[derive(Debug)]
pub struct Pusher {
    publisher: SharedPublisher,
    /// Desired-state generation last published.
    published_desired: Option<u64>,
    /// When the last generation was published and its number (for the
    /// push-latency measurement in the engine view).
    pub last: Arc<Mutex<Option<(u64, Instant)>>>,
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
        })
    }

    /// The shared publisher.
    pub fn publisher(&self) -> SharedPublisher {
        self.publisher.clone()
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
        Ok(g)
    }
}
