//! Selected routes → engine: follows the running speaker's route changes,
//! coalesces them ([`Coalescer`]: a batch goes out [`BATCH_DELAY`] after
//! its first change, or at once past [`BATCH_ROUTES`]), merges IPv4 into
//! the route pusher's generations through the store actor (deltas) and
//! writes IPv6 whole into `route6.bin`. A receiver that lagged behind the
//! change stream resyncs from the speaker's snapshot. When told to stop
//! (the speaker stopped) it removes every BGP route from both.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use patronus_bgp::types::Prefix;
use patronus_shm::layout::IFACE_ANY;
use patronus_shm::{Route6Entry, Route6Tables, RouteKind};
use tokio::sync::{broadcast, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, Instant};

use super::speaker::{RouteChange, RouteTable, SpeakerHandle};
use crate::push::{BgpUpdate, RouteKey, SharedPublisher};
use crate::state::StoreHandle;

/// Most time a change waits for its batch.
pub const BATCH_DELAY: Duration = Duration::from_millis(50);
/// A batch this large goes out without waiting.
pub const BATCH_ROUTES: usize = 16384;
/// route6.bin numbers remembered with their BGP route counts.
const ROUTE6_LOG: usize = 64;

/// `(route6.bin number, BGP routes in it)`, oldest first.
pub type Route6Installed = Arc<Mutex<VecDeque<(u64, u64)>>>;

fn key4(p: &Prefix) -> Option<RouteKey> {
    match p.addr() {
        IpAddr::V4(a) => Some((u32::from(a), p.prefix_len())),
        IpAddr::V6(_) => None,
    }
}

/// Pending changes, by family.
#[derive(Debug, Default)]
pub struct Coalescer {
    /// IPv4: latest next hops per prefix since the last batch.
    pending4: HashMap<RouteKey, Vec<Ipv4Addr>>,
    /// The next IPv4 batch replaces every BGP route.
    replace4: bool,
    /// IPv6: the whole table (route6.bin is written whole).
    table6: BTreeMap<Prefix, Vec<Ipv6Addr>>,
    dirty6: bool,
    /// When the oldest pending change arrived.
    since: Option<Instant>,
    /// `seq` of the last change taken.
    last_seq: u64,
}

impl Coalescer {
    /// Takes one change (one already covered by a resync is skipped).
    pub fn apply(&mut self, c: &RouteChange, now: Instant) {
        if c.seq <= self.last_seq {
            return;
        }
        self.last_seq = c.seq;
        self.take(&c.prefix, &c.next_hops);
        self.since.get_or_insert(now);
    }

    fn take(&mut self, p: &Prefix, hops: &[IpAddr]) {
        if let Some(k) = key4(p) {
            let v4 = hops
                .iter()
                .filter_map(|h| match h.to_canonical() {
                    IpAddr::V4(a) => Some(a),
                    IpAddr::V6(_) => None,
                })
                .collect();
            self.pending4.insert(k, v4);
        } else {
            let v6: Vec<Ipv6Addr> = hops
                .iter()
                .filter_map(|h| match h {
                    IpAddr::V6(a) => Some(*a),
                    IpAddr::V4(_) => None,
                })
                .collect();
            if v6.is_empty() {
                self.table6.remove(p);
            } else {
                self.table6.insert(*p, v6);
            }
            self.dirty6 = true;
        }
    }

    /// Replaces everything with the speaker's table as of change `seq`.
    pub fn resync(&mut self, seq: u64, table: &RouteTable, now: Instant) {
        self.pending4.clear();
        self.table6.clear();
        self.replace4 = true;
        self.dirty6 = true;
        self.last_seq = seq;
        for (p, hops) in table {
            self.take(p, hops);
        }
        self.since.get_or_insert(now);
    }

    /// Every BGP route goes (the speaker stopped).
    pub fn clear(&mut self, now: Instant) {
        self.resync(self.last_seq, &RouteTable::new(), now);
    }

    /// When the pending batch is due (None: nothing pending).
    pub fn deadline(&self) -> Option<Instant> {
        self.since.map(|t| {
            if self.pending4.len() >= BATCH_ROUTES {
                t
            } else {
                t + BATCH_DELAY
            }
        })
    }

    pub fn pending(&self) -> usize {
        self.pending4.len() + usize::from(self.dirty6)
    }

    /// The IPv4 batch (None: nothing to send).
    pub fn take4(&mut self) -> Option<BgpUpdate> {
        if self.pending4.is_empty() && !self.replace4 {
            return None;
        }
        let mut routes: Vec<(RouteKey, Vec<Ipv4Addr>)> = self.pending4.drain().collect();
        routes.sort_unstable_by_key(|(k, _)| *k);
        Some(BgpUpdate {
            replace: std::mem::take(&mut self.replace4),
            routes,
        })
    }

    /// The IPv6 table when it changed.
    pub fn take6(&mut self) -> Option<Route6Tables> {
        if !std::mem::take(&mut self.dirty6) {
            return None;
        }
        let routes = self
            .table6
            .iter()
            .filter_map(|(p, hops)| {
                let IpAddr::V6(a) = p.addr() else { return None };
                let mut e = Route6Entry::new(a, p.prefix_len(), RouteKind::Via);
                for h in hops {
                    if !e.push_nexthop(*h, IFACE_ANY) {
                        break;
                    }
                }
                Some(e)
            })
            .collect();
        Some(Route6Tables { routes })
    }

    /// Batches taken: nothing pending any more.
    pub fn taken(&mut self) {
        if self.pending4.is_empty() && !self.replace4 && !self.dirty6 {
            self.since = None;
        }
    }
}

/// Where the batches go.
#[derive(Clone)]
pub struct FibSink {
    pub store: StoreHandle,
    /// `None`: no engine runtime directory (IPv6 is not published).
    pub publisher: Option<SharedPublisher>,
    pub route6: Route6Installed,
}

/// One batch on its way (IPv4 to the store actor, IPv6 to route6.bin).
struct Batch {
    v4: Option<BgpUpdate>,
    v6: Option<Route6Tables>,
}

impl FibSink {
    async fn send(self, b: Batch) {
        if let Some(u) = b.v4 {
            if let Err(e) = self.store.push_bgp_routes(u).await {
                tracing::error!("BGP routes to the engine: {e}");
            }
        }
        if let (Some(t), Some(p)) = (b.v6, self.publisher.clone()) {
            let count = t.routes.len() as u64;
            let log = self.route6.clone();
            let r = tokio::task::spawn_blocking(move || {
                let mut p = p
                    .lock()
                    .map_err(|_| "publisher lock poisoned".to_string())?;
                p.publish_route6(&t).map_err(|e| e.to_string())
            })
            .await;
            match r {
                Ok(Ok(n)) => {
                    if let Ok(mut l) = log.lock() {
                        l.push_back((n, count));
                        while l.len() > ROUTE6_LOG {
                            l.pop_front();
                        }
                    }
                }
                Ok(Err(e)) => tracing::error!("publishing route6.bin failed: {e}"),
                Err(e) => tracing::error!("publishing route6.bin failed: {e}"),
            }
        }
    }
}

fn take(c: &mut Coalescer) -> Batch {
    let b = Batch {
        v4: c.take4(),
        v6: c.take6(),
    };
    c.taken();
    b
}

async fn join_opt(h: &mut Option<JoinHandle<()>>) {
    match h {
        Some(j) => {
            let _ = j.await;
        }
        None => std::future::pending().await,
    }
}

/// Runs until `stop`, then removes the speaker's routes from the engine.
/// One batch is in flight at a time; changes keep arriving (and
/// coalescing) meanwhile, so the stream rarely lags behind a slow publish.
pub async fn run(handle: SpeakerHandle, sink: FibSink, mut stop: oneshot::Receiver<()>) {
    let mut changes = handle.changes();
    let mut c = Coalescer::default();
    let mut inflight: Option<JoinHandle<()>> = None;
    // Whatever the speaker holds already (and no routes of an earlier run).
    match handle.snapshot().await {
        Ok((seq, t)) => c.resync(seq, &t, Instant::now()),
        Err(_) => c.clear(Instant::now()),
    }
    loop {
        let deadline = c.deadline().filter(|_| inflight.is_none());
        tokio::select! {
            _ = &mut stop => break,
            r = changes.recv() => match r {
                Ok(ch) => c.apply(&ch, Instant::now()),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::info!(missed = n, "BGP: route changes lagged; resyncing from the speaker");
                    match handle.snapshot().await {
                        Ok((seq, t)) => c.resync(seq, &t, Instant::now()),
                        Err(_) => break,
                    }
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
            () = join_opt(&mut inflight) => inflight = None,
            () = async { sleep_until(deadline.unwrap_or_else(Instant::now)).await }, if deadline.is_some() => {
                inflight = Some(tokio::spawn(sink.clone().send(take(&mut c))));
            }
        }
    }
    if let Some(j) = inflight.take() {
        let _ = j.await;
    }
    c.clear(Instant::now());
    sink.send(take(&mut c)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pfx(s: &str) -> Prefix {
        let (a, l) = s.split_once('/').unwrap();
        Prefix::new(a.parse().unwrap(), l.parse().unwrap()).unwrap()
    }

    fn ch(seq: u64, p: &str, hops: &[&str]) -> RouteChange {
        RouteChange {
            prefix: pfx(p),
            next_hops: hops.iter().map(|h| h.parse().unwrap()).collect(),
            seq,
        }
    }

    fn k(a: [u8; 4], len: u8) -> RouteKey {
        (u32::from_be_bytes(a), len)
    }

    #[test]
    fn changes_coalesce_to_the_latest_state_per_prefix() {
        let t0 = Instant::now();
        let mut c = Coalescer::default();
        assert_eq!(c.deadline(), None);
        c.apply(&ch(1, "10.9.0.0/24", &["10.0.0.2"]), t0);
        c.apply(&ch(2, "10.9.1.0/24", &["10.0.0.2"]), t0);
        c.apply(&ch(3, "10.9.0.0/24", &["10.0.0.3", "10.0.0.4"]), t0);
        c.apply(&ch(4, "10.9.1.0/24", &[]), t0);
        assert_eq!(c.deadline(), Some(t0 + BATCH_DELAY));
        let u = c.take4().unwrap();
        assert!(!u.replace);
        assert_eq!(
            u.routes,
            vec![
                (
                    k([10, 9, 0, 0], 24),
                    vec![Ipv4Addr::new(10, 0, 0, 3), Ipv4Addr::new(10, 0, 0, 4)]
                ),
                (k([10, 9, 1, 0], 24), vec![]),
            ]
        );
        assert_eq!(c.take6(), None);
        c.taken();
        assert_eq!(c.deadline(), None, "nothing pending");
        assert_eq!(c.take4(), None);
    }

    #[test]
    fn a_full_batch_is_due_at_once() {
        let t0 = Instant::now();
        let mut c = Coalescer::default();
        for i in 0..BATCH_ROUTES as u64 {
            let a = Ipv4Addr::from(0x0a00_0000u32 + ((i as u32) << 8));
            c.apply(&ch(i + 1, &format!("{a}/24"), &["10.255.0.1"]), t0);
        }
        assert_eq!(c.deadline(), Some(t0));
        assert_eq!(c.take4().unwrap().routes.len(), BATCH_ROUTES);
    }

    #[test]
    fn ipv6_is_kept_whole_and_written_when_changed() {
        let t0 = Instant::now();
        let mut c = Coalescer::default();
        c.apply(&ch(1, "2001:db8:9::/48", &["fd00::2"]), t0);
        c.apply(&ch(2, "2001:db8:8::/48", &["fd00::2", "fd00::3"]), t0);
        let t = c.take6().unwrap();
        assert_eq!(t.routes.len(), 2);
        assert_eq!(
            t.routes[0].prefix_addr(),
            "2001:db8:8::".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(t.routes[0].nexthops().count(), 2);
        assert_eq!(c.take6(), None, "unchanged");
        c.apply(&ch(3, "2001:db8:8::/48", &[]), t0);
        let t = c.take6().unwrap();
        assert_eq!(t.routes.len(), 1, "the withdrawn prefix left the file");
        assert_eq!(c.take4(), None);
    }

    #[test]
    fn resync_replaces_everything_and_skips_changes_it_covers() {
        let t0 = Instant::now();
        let mut c = Coalescer::default();
        c.apply(&ch(1, "10.9.0.0/24", &["10.0.0.2"]), t0);
        let mut table = RouteTable::new();
        table.insert(pfx("10.8.0.0/24"), vec!["10.0.0.2".parse().unwrap()]);
        table.insert(pfx("2001:db8::/32"), vec!["fd00::2".parse().unwrap()]);
        c.resync(5, &table, t0);
        // Older than the snapshot: already in it.
        c.apply(&ch(4, "10.7.0.0/24", &["10.0.0.2"]), t0);
        c.apply(&ch(6, "10.6.0.0/24", &["10.0.0.2"]), t0);
        let u = c.take4().unwrap();
        assert!(u.replace);
        let keys: Vec<RouteKey> = u.routes.iter().map(|r| r.0).collect();
        assert_eq!(keys, vec![k([10, 6, 0, 0], 24), k([10, 8, 0, 0], 24)]);
        assert_eq!(c.take6().unwrap().routes.len(), 1);
        // Clearing: an empty replacement of both families.
        c.clear(t0);
        let u = c.take4().unwrap();
        assert!(u.replace && u.routes.is_empty());
        assert_eq!(c.take6().unwrap().routes.len(), 0);
    }
}
