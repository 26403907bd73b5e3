//! Pushes desired state to the engine: compiles the default organization's
//! routes into table generations and publishes them through shared memory
//! (`patronus-shm`). The store actor calls [`Pusher::push_if_changed`] at
//! start (a restarted control process republishes what it holds, numbering
//! on) and after every successful change with the prefixes it touched, so
//! the engine follows the store.
//!
//! Policy: the pusher keeps what it last published in memory. A full
//! generation (the whole route table) goes out at start and whenever the
//! current generation is not the one this pusher published last. Otherwise
//! only the touched prefixes are read back from the store and diffed: no
//! difference publishes nothing; a few differences publish a delta (a
//! `RouteChange` table against the current generation); more than
//! [`Pusher::checkpoint_threshold`] publish a checkpoint (full table plus the
//! changes), or a full generation when they are half the table or more. Once [`CHECKPOINT_DELTAS`] deltas or the threshold's worth of
//! changed entries piled up since the last self-contained generation, the
//! actor publishes a checkpoint (full table, no changes) when its queue is
//! empty ([`Pusher::checkpoint_if_due`]), so a restarting engine never
//! replays a long chain and old delta files can be reclaimed.
//! Every generation also carries the organization's interfaces (a small
//! table, sent whole each time); a change of interfaces alone publishes a
//! delta with no route changes, and the engine rebuilds on the new
//! interfaces.
//! BGP routes ([`Pusher::push_bgp`], from the speaker's coalesced
//! changes) merge under the static routes: a static route or a connected
//! subnet of the same prefix wins, and a BGP next hop becomes the gateways
//! it resolves to ([`crate::bgp::nexthop`]); the pusher keeps the static
//! routes in the shared [`NexthopView`] that the speaker resolves through.
//! [`PushWatch`] measures each push's latency (publication until every live
//! worker acknowledged it) on a tokio task, off the store actor.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use patronus_shm::layout::{encode_name, IFACE_ANY};
use patronus_shm::{
    GenerationBuilder, InterfaceEntry, Publisher, RouteChange, RouteEntry, RouteKind, TableBuilder,
};

use crate::bgp::nexthop::{NexthopView, ViewData};
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::model::{Cidr, Route};
use crate::store::Store;

/// Organization whose routes the engine forwards with (one routing table
/// until per-tenant tables exist).
pub const PUSHED_ORG: &str = "default";

/// Deltas after which a checkpoint is due.
pub const CHECKPOINT_DELTAS: u32 = 256;
/// Changed entries after which a checkpoint is due, at least (a quarter of
/// the table when that is more).
pub const MIN_CHECKPOINT_CHANGES: usize = 4096;

/// The publisher, shared with the engine view (status, metrics).
pub type SharedPublisher = Arc<Mutex<Publisher>>;

/// The generation last published and when.
pub type LastPush = Arc<Mutex<Option<(u64, Instant)>>>;

/// How often acks are checked while a push is outstanding.
pub const ACK_POLL_INTERVAL: Duration = Duration::from_millis(1);

/// A route's key in the engine's table: network address and length.
pub type RouteKey = (u32, u8);

/// BGP routes in recent generations: `(generation, BGP routes in it)`,
/// oldest first (the summary counts those of the newest generation every
/// live worker acknowledged).
pub type BgpInstalled = Arc<Mutex<VecDeque<(u64, u64)>>>;

/// Generations remembered in [`BgpInstalled`].
const INSTALLED_LOG: usize = 256;

/// A batch of changes of the speaker's selected IPv4 routes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BgpUpdate {
    /// The routes below replace every BGP route (a resync, or none at
    /// all when the speaker stopped).
    pub replace: bool,
    /// Prefix → BGP next hops (none: withdrawn).
    pub routes: Vec<(RouteKey, Vec<Ipv4Addr>)>,
}

/// The BGP route `key` as the engine takes it: a `Via` route over the
/// gateways its next hops resolve to (up to the entry's next-hop slots);
/// `None` when none resolves.
pub fn compile_bgp(view: &ViewData, key: RouteKey, next_hops: &[Ipv4Addr]) -> Option<RouteEntry> {
    let mut e = RouteEntry::new(key.0, key.1, RouteKind::Via);
    'hops: for nh in next_hops {
        let Some((_, gateways)) = view.gateways4(*nh) else {
            continue;
        };
        for g in gateways {
            let used = usize::from(e.nexthop_count);
            if e.nexthops[..used].contains(&g) {
                continue;
            }
            if !e.push_nexthop(g, IFACE_ANY) {
                break 'hops;
            }
        }
    }
    (e.nexthop_count > 0).then_some(e)
}

/// Which routes of the pushed organization a change may have touched.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Touched {
    /// None (a read, another organization, interfaces).
    #[default]
    Nothing,
    /// The routes with these prefixes (present or gone).
    Prefixes(Vec<Cidr>),
    /// Possibly any: compare the whole table.
    Everything,
}

impl Touched {
    /// Both sets of changes.
    pub fn merge(self, other: Touched) -> Touched {
        match (self, other) {
            (Touched::Everything, _) | (_, Touched::Everything) => Touched::Everything,
            (Touched::Nothing, t) | (t, Touched::Nothing) => t,
            (Touched::Prefixes(mut a), Touched::Prefixes(b)) => {
                a.extend(b);
                Touched::Prefixes(a)
            }
        }
    }

    pub fn is_nothing(&self) -> bool {
        *self == Touched::Nothing
    }
}

/// What one publication was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushKind {
    /// The whole table, standing alone.
    Full,
    /// Changes against the generation before.
    Delta,
    /// The whole table and the changes against the generation before.
    Checkpoint,
}

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
    /// The route table as last published (what the engine converges to).
    table: HashMap<RouteKey, RouteEntry>,
    /// Generation this pusher published last (0 = none yet).
    last_generation: u64,
    /// Deltas and changed entries since the last self-contained generation.
    deltas_since_full: u32,
    changes_since_full: usize,
    /// Touched routes not published yet (a failed push retries them).
    pending: Touched,
    /// The interfaces to publish, as of the last read of the store, and
    /// those last published.
    interfaces: Vec<InterfaceEntry>,
    published_interfaces: Option<Vec<InterfaceEntry>>,
    /// Kind of the last publication.
    last_kind: Option<PushKind>,
    /// Deltas after which a checkpoint is due ([`CHECKPOINT_DELTAS`]).
    checkpoint_deltas: u32,
    /// Least changed entries after which a checkpoint is due
    /// ([`MIN_CHECKPOINT_CHANGES`]).
    min_checkpoint_changes: usize,
    /// Connected subnets, static routes (shared with the BGP resolver).
    nexthops: Arc<NexthopView>,
    /// The speaker's selected IPv4 routes: prefix → BGP next hops.
    bgp: HashMap<RouteKey, Box<[Ipv4Addr]>>,
    /// Those with a next hop off the connected subnets (they move when
    /// static routes do).
    bgp_recursive: HashSet<RouteKey>,
    /// The interfaces' subnets (a BGP route of the same prefix is not
    /// installed).
    connected_keys: HashSet<RouteKey>,
    /// Every BGP route must be compared again (the subnets changed, or a
    /// publication failed).
    bgp_all_dirty: bool,
    installed: BgpInstalled,
}

fn storage(e: impl std::fmt::Display) -> Error {
    Error::Storage(format!("shared memory: {e}"))
}

/// The engine's form of a stored route.
pub fn compile(r: &Route) -> Result<RouteEntry> {
    if let Some(id) = r.tunnel_id {
        let id = u32::try_from(id)
            .ok()
            .filter(|&i| i != 0)
            .ok_or_else(|| Error::Storage(format!("tunnel id {id} does not fit the engine")))?;
        return Ok(RouteEntry::tunnel(
            u32::from(r.prefix.addr) & r.prefix.mask(),
            r.prefix.len,
            id,
        ));
    }
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
    Ok(e)
}

fn key_of(c: Cidr) -> RouteKey {
    (u32::from(c.addr) & c.mask(), c.len)
}

fn entry_key(e: &RouteEntry) -> RouteKey {
    (e.prefix, e.prefix_len)
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
            table: HashMap::new(),
            last_generation: 0,
            deltas_since_full: 0,
            changes_since_full: 0,
            pending: Touched::Nothing,
            interfaces: Vec::new(),
            published_interfaces: None,
            last_kind: None,
            checkpoint_deltas: CHECKPOINT_DELTAS,
            min_checkpoint_changes: MIN_CHECKPOINT_CHANGES,
            nexthops: NexthopView::new(),
            bgp: HashMap::new(),
            bgp_recursive: HashSet::new(),
            connected_keys: HashSet::new(),
            bgp_all_dirty: false,
            installed: Arc::new(Mutex::new(VecDeque::new())),
        })
    }

    /// What next hops resolve through (shared with the BGP speaker).
    pub fn nexthops(&self) -> Arc<NexthopView> {
        self.nexthops.clone()
    }

    /// BGP routes per recent generation.
    pub fn bgp_installed(&self) -> BgpInstalled {
        self.installed.clone()
    }

    /// BGP routes in the table as last published.
    pub fn bgp_routes_installed(&self) -> usize {
        let statics = self.nexthops.read().statics.len();
        self.table.len().saturating_sub(statics)
    }

    fn record_installed(&self, generation: u64) {
        let n = self.bgp_routes_installed() as u64;
        if let Ok(mut log) = self.installed.lock() {
            log.push_back((generation, n));
            while log.len() > INSTALLED_LOG {
                log.pop_front();
            }
        }
    }

    /// What the engine should have for `k`: the static route, else
    /// (unless `k` is a connected subnet) the BGP route.
    fn effective(&self, d: &ViewData, k: RouteKey) -> Option<RouteEntry> {
        if let Some(e) = d.statics.get(&k) {
            return Some(*e);
        }
        if self.connected_keys.contains(&k) {
            return None;
        }
        compile_bgp(d, k, self.bgp.get(&k)?)
    }

    /// Changes bringing the published table to [`Pusher::effective`] for
    /// `keys` (each once).
    fn changes_for(
        &self,
        d: &ViewData,
        keys: impl IntoIterator<Item = RouteKey>,
    ) -> Vec<RouteChange> {
        let mut seen = HashSet::new();
        let mut changes = Vec::new();
        for k in keys {
            if !seen.insert(k) {
                continue;
            }
            let new = self.effective(d, k);
            let old = self.table.get(&k);
            match (new, old) {
                (Some(n), Some(o)) if n == *o => {}
                (Some(n), _) => changes.push(RouteChange::upsert(n)),
                (None, Some(_)) => changes.push(RouteChange::withdraw(k.0, k.1)),
                (None, None) => {}
            }
        }
        changes
    }

    /// Takes the interfaces' subnets (after a read of the store); a change
    /// makes every BGP route due for comparison.
    fn set_connected(&mut self) {
        let keys: Vec<RouteKey> = self
            .interfaces
            .iter()
            .map(|i| {
                let mask = if i.prefix_len == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(i.prefix_len.min(32)))
                };
                (i.addr & mask, i.prefix_len)
            })
            .collect();
        let set: HashSet<RouteKey> = keys.iter().copied().collect();
        if set == self.connected_keys {
            return;
        }
        self.connected_keys = set;
        self.nexthops.write().connected4 = keys;
        self.nexthops.changed();
        self.bgp_all_dirty = !self.bgp.is_empty();
    }

    /// Merges a batch of the speaker's changes into the table and
    /// publishes the difference: a delta (a checkpoint when it is large,
    /// a full generation when there is no base to build on).
    pub fn push_bgp(&mut self, store: &mut Store, update: BgpUpdate) -> Result<Option<u64>> {
        let mut keys: Vec<RouteKey> = Vec::with_capacity(update.routes.len());
        if update.replace {
            keys.extend(self.bgp.keys().copied());
            self.bgp.clear();
            self.bgp_recursive.clear();
        }
        {
            let d = self.nexthops.read();
            for (k, hops) in update.routes {
                keys.push(k);
                if hops.is_empty() {
                    self.bgp.remove(&k);
                    self.bgp_recursive.remove(&k);
                    continue;
                }
                if hops
                    .iter()
                    .any(|h| d.gateways4(*h).is_none_or(|(c, _)| c != 0))
                {
                    self.bgp_recursive.insert(k);
                } else {
                    self.bgp_recursive.remove(&k);
                }
                self.bgp.insert(k, hops.into_boxed_slice());
            }
        }
        let current = self.lock()?.current_generation();
        if self.last_generation == 0 || current != self.last_generation || self.bgp_all_dirty {
            self.bgp_all_dirty = false;
            return self.push(store).map(Some);
        }
        let changes = {
            let d = self.nexthops.read();
            self.changes_for(&d, keys)
        };
        if changes.is_empty() {
            return Ok(None);
        }
        let out = if changes.len() >= self.checkpoint_threshold() {
            self.publish_checkpoint(changes)
        } else {
            self.publish_delta(changes)
        };
        if out.is_err() {
            // Compared whole at the next push.
            self.bgp_all_dirty = true;
        }
        out.map(Some)
    }

    /// Sets when checkpoints are due: after `deltas` deltas, or after
    /// max(`min_changes`, routes/4) changed entries (tests use small values).
    pub fn set_checkpoint_policy(&mut self, deltas: u32, min_changes: usize) {
        self.checkpoint_deltas = deltas.max(1);
        self.min_checkpoint_changes = min_changes.max(1);
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

    /// Routes in the table as last published.
    pub fn routes(&self) -> usize {
        self.table.len()
    }

    /// Kind of the last publication (`None` before the first).
    pub fn last_kind(&self) -> Option<PushKind> {
        self.last_kind
    }

    /// Changed entries after which a checkpoint is due (and above which one
    /// change set goes out as a checkpoint rather than a delta).
    pub fn checkpoint_threshold(&self) -> usize {
        self.min_checkpoint_changes.max(self.table.len() / 4)
    }

    fn lock(&self) -> Result<MutexGuard<'_, Publisher>> {
        self.publisher
            .lock()
            .map_err(|_| storage("publisher lock poisoned"))
    }

    /// Publishes what `touched` (plus anything a failed push left pending)
    /// changed, if the desired state moved since the last push; the first
    /// call publishes the whole table.
    pub fn push_if_changed(&mut self, store: &mut Store, touched: Touched) -> Result<Option<u64>> {
        let pending = std::mem::take(&mut self.pending).merge(touched);
        let desired = store.generation()?;
        // Few rows: read whole every time the desired state moved.
        if self.published_desired != Some(desired) {
            self.interfaces = compile_interfaces(store)?;
            self.set_connected();
        }
        if self.published_desired == Some(desired) && pending.is_nothing() {
            return Ok(None);
        }
        let out = self.push_touched(store, pending.clone());
        if out.is_err() {
            // Tried again after the next change.
            self.pending = std::mem::take(&mut self.pending).merge(pending);
        } else {
            self.published_desired = Some(desired);
        }
        out
    }

    /// Publishes the changes to the routes `touched` names: a full
    /// generation when there is no base to build on, else a delta or a
    /// checkpoint; nothing when nothing changed.
    pub fn push_touched(&mut self, store: &mut Store, touched: Touched) -> Result<Option<u64>> {
        let current = self.lock()?.current_generation();
        if self.last_generation == 0 || current != self.last_generation {
            return self.push(store).map(Some);
        }
        let interfaces_changed = self.published_interfaces.as_ref() != Some(&self.interfaces);
        let all = std::mem::take(&mut self.bgp_all_dirty);
        let changes = match touched {
            _ if all => self.diff_all(store)?,
            Touched::Nothing if !interfaces_changed => return Ok(None),
            Touched::Nothing => Vec::new(),
            // Point lookups unless reading the whole table is cheaper.
            Touched::Prefixes(p)
                if p.len() <= self.checkpoint_threshold().max(self.table.len() / 2) =>
            {
                self.diff_prefixes(store, p)?
            }
            _ => self.diff_all(store)?,
        };
        if changes.is_empty() && !interfaces_changed {
            return Ok(None);
        }
        if changes.len() >= self.checkpoint_threshold() {
            self.publish_checkpoint(changes).map(Some)
        } else {
            self.publish_delta(changes).map(Some)
        }
    }

    /// Changes that bring the published table to the store's routes with
    /// these prefixes.
    fn diff_prefixes(
        &self,
        store: &mut Store,
        mut prefixes: Vec<Cidr>,
    ) -> Result<Vec<RouteChange>> {
        prefixes.sort_unstable();
        prefixes.dedup();
        let now = store.routes_with_prefixes(PUSHED_ORG, &prefixes)?;
        let mut present = HashSet::with_capacity(now.len());
        let mut keys = Vec::with_capacity(prefixes.len());
        let mut d = self.nexthops.write();
        for r in &now {
            let e = compile(r)?;
            present.insert(entry_key(&e));
            keys.push(entry_key(&e));
            d.set_static(entry_key(&e), Some(e));
        }
        for p in prefixes {
            let k = key_of(p);
            if !present.contains(&k) {
                d.set_static(k, None);
                keys.push(k);
            }
        }
        // BGP routes resolved through static routes may move with them.
        keys.extend(self.bgp_recursive.iter().copied());
        let changes = self.changes_for(&d, keys);
        drop(d);
        self.nexthops.changed();
        Ok(changes)
    }

    /// Changes that bring the published table to the store's whole table.
    fn diff_all(&self, store: &mut Store) -> Result<Vec<RouteChange>> {
        let now = compile_all(store)?;
        let mut d = self.nexthops.write();
        d.replace_statics(now);
        let keys: Vec<RouteKey> = d
            .statics
            .keys()
            .chain(self.table.keys())
            .chain(self.bgp.keys())
            .copied()
            .collect();
        let changes = self.changes_for(&d, keys);
        drop(d);
        self.nexthops.changed();
        Ok(changes)
    }

    fn apply(&mut self, changes: &[RouteChange]) {
        for c in changes {
            let k = entry_key(&c.route);
            if c.is_withdraw() {
                self.table.remove(&k);
            } else {
                self.table.insert(k, c.route);
            }
        }
    }

    /// The whole table as it stands, sorted (deterministic files).
    fn full_table(table: &HashMap<RouteKey, RouteEntry>) -> Result<TableBuilder<RouteEntry>> {
        // Sorted keys, not a sorted copy of the entries: a full BGP table
        // is a million entries of 108 bytes.
        let mut keys: Vec<RouteKey> = table.keys().copied().collect();
        keys.sort_unstable();
        let mut t = TableBuilder::<RouteEntry>::new();
        for k in keys {
            t.push(table[&k]).map_err(storage)?;
        }
        Ok(t)
    }

    fn changes_table(changes: &[RouteChange]) -> Result<TableBuilder<RouteChange>> {
        let mut t = TableBuilder::<RouteChange>::new();
        t.extend_from_slice(changes).map_err(storage)?;
        Ok(t)
    }

    fn publish_delta(&mut self, changes: Vec<RouteChange>) -> Result<u64> {
        let mut generation = self.builder()?;
        generation
            .add(Self::changes_table(&changes)?)
            .map_err(storage)?;
        generation.set_delta_of(self.last_generation);
        let g = self.publish(&generation, PushKind::Delta)?;
        self.apply(&changes);
        self.deltas_since_full += 1;
        self.changes_since_full += changes.len();
        self.record_installed(g);
        Ok(g)
    }

    /// A checkpoint: the changes against the current generation (for an
    /// engine holding it) and the resulting whole table (for any other).
    /// When the changes are at least half the resulting table, a full
    /// generation instead (the engine rebuilds either way; half the bytes).
    fn publish_checkpoint(&mut self, changes: Vec<RouteChange>) -> Result<u64> {
        // Applied first to build the whole table; on failure the table no
        // longer matches what was published, so the next push is a full one.
        self.apply(&changes);
        let full = !changes.is_empty() && changes.len() * 2 >= self.table.len();
        let out = (|| {
            let mut generation = self.builder()?;
            generation
                .add(Self::full_table(&self.table)?)
                .map_err(storage)?;
            if full {
                return self.publish(&generation, PushKind::Full);
            }
            generation
                .add(Self::changes_table(&changes)?)
                .map_err(storage)?;
            generation.set_delta_of(self.last_generation);
            self.publish(&generation, PushKind::Checkpoint)
        })();
        match out {
            Ok(g) => {
                self.deltas_since_full = 0;
                self.changes_since_full = 0;
                self.record_installed(g);
                Ok(g)
            }
            Err(e) => {
                self.last_generation = 0;
                Err(e)
            }
        }
    }

    /// True when enough deltas or changes piled up since the last
    /// self-contained generation.
    pub fn checkpoint_due(&self) -> bool {
        self.last_generation != 0
            && (self.deltas_since_full >= self.checkpoint_deltas
                || self.changes_since_full >= self.checkpoint_threshold())
    }

    /// Publishes a checkpoint (whole table, no changes) when one is due;
    /// the store actor calls this when its queue is empty.
    pub fn checkpoint_if_due(&mut self) -> Result<Option<u64>> {
        if !self.checkpoint_due() {
            return Ok(None);
        }
        if self.lock()?.current_generation() != self.last_generation {
            // Someone else published: the next push is a full one anyway.
            return Ok(None);
        }
        self.publish_checkpoint(Vec::new()).map(Some)
    }

    /// True when deltas piled up so far (four times the due count) that a
    /// checkpoint should not wait for an idle moment any more.
    pub fn checkpoint_overdue(&self) -> bool {
        self.deltas_since_full >= self.checkpoint_deltas.saturating_mul(4)
    }

    /// Compiles every route from the store and publishes them as a full
    /// generation.
    pub fn push(&mut self, store: &mut Store) -> Result<u64> {
        let statics = compile_all(store)?;
        let mut d = self.nexthops.write();
        d.replace_statics(statics);
        let mut table = d.statics.clone();
        for (k, hops) in &self.bgp {
            if d.statics.contains_key(k) || self.connected_keys.contains(k) {
                continue;
            }
            if let Some(e) = compile_bgp(&d, *k, hops) {
                table.insert(*k, e);
            }
        }
        drop(d);
        self.nexthops.changed();
        let mut generation = self.builder()?;
        generation.add(Self::full_table(&table)?).map_err(storage)?;
        let g = self.publish(&generation, PushKind::Full)?;
        self.table = table;
        self.deltas_since_full = 0;
        self.changes_since_full = 0;
        self.record_installed(g);
        Ok(g)
    }

    /// A generation holding the interfaces to publish.
    fn builder(&self) -> Result<GenerationBuilder> {
        let mut t = TableBuilder::<InterfaceEntry>::new();
        t.extend_from_slice(&self.interfaces).map_err(storage)?;
        let mut g = GenerationBuilder::new();
        g.add(t).map_err(storage)?;
        Ok(g)
    }

    fn publish(&mut self, generation: &GenerationBuilder, kind: PushKind) -> Result<u64> {
        let mut publisher = self.lock()?;
        let g = publisher.publish(generation).map_err(storage)?;
        // Old generations no live worker uses any more.
        let _ = publisher.gc();
        drop(publisher);
        self.published_interfaces = Some(self.interfaces.clone());
        self.last_generation = g;
        self.last_kind = Some(kind);
        if let Ok(mut last) = self.last.lock() {
            *last = Some((g, Instant::now()));
        }
        // Stores a permit when the watch is busy: no publication is missed.
        self.published.notify_one();
        Ok(g)
    }
}

/// The pushed organization's interfaces as the engine takes them (in id
/// order). A port name too long for the table cannot name an engine port:
/// left out.
fn compile_interfaces(store: &mut Store) -> Result<Vec<InterfaceEntry>> {
    Ok(store
        .list_interfaces(PUSHED_ORG)?
        .iter()
        .filter_map(|i| {
            Some(InterfaceEntry {
                port_name: encode_name(&i.port)?,
                addr: u32::from(i.address.addr),
                vlan: i.vlan.unwrap_or(0),
                mtu: 0,
                prefix_len: i.address.len,
                reserved: [0; 7],
            })
        })
        .collect())
}

/// Every route of the pushed organization, compiled.
fn compile_all(store: &mut Store) -> Result<HashMap<RouteKey, RouteEntry>> {
    let routes = store.list_routes(PUSHED_ORG)?;
    let mut table = HashMap::with_capacity(routes.len());
    for r in &routes {
        let e = compile(r)?;
        table.insert(entry_key(&e), e);
    }
    Ok(table)
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

    use patronus_shm::{Generation, Subscriber};

    use super::*;
    use crate::metrics::{Detached, TABLE_PUSH_LATENCY};
    use crate::model::{InterfaceDef, RouteDef};
    use crate::store::BulkRoutes;

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

    fn cidr(s: &str) -> Cidr {
        Cidr::parse_prefix("prefix", s).unwrap()
    }

    fn via(prefix: &str, gw: [u8; 4]) -> RouteDef {
        RouteDef {
            prefix: cidr(prefix),
            next_hops: vec![gw.into()],
            blackhole: false,
            tunnel: None,
        }
    }

    fn store_with_wan() -> Store {
        let mut store = Store::open_in_memory().unwrap();
        store
            .create_interface(
                PUSHED_ORG,
                &InterfaceDef {
                    port: "wan0".into(),
                    address: Cidr::parse("a", "10.2.0.1/24").unwrap(),
                    vlan: None,
                },
            )
            .unwrap();
        store
    }

    fn newest(dir: &Path, pusher: &Pusher) -> Generation {
        let g = pusher.publisher().lock().unwrap().current_generation();
        Generation::load(&patronus_shm::subscribe::generation_path(dir, g), g).unwrap()
    }

    #[test]
    fn every_generation_carries_the_interfaces_and_a_change_of_them_is_pushed() {
        let dir = TempDir::new("ifaces");
        let mut store = store_with_wan();
        let mut pusher = Pusher::open(&dir.0).unwrap();
        pusher
            .push_if_changed(&mut store, Touched::Nothing)
            .unwrap();
        let names = |g: &Generation| -> Vec<(String, u32, u8)> {
            g.view()
                .interfaces()
                .iter()
                .map(|i| {
                    (
                        patronus_shm::layout::decode_name(&i.port_name)
                            .unwrap()
                            .to_string(),
                        i.addr,
                        i.prefix_len,
                    )
                })
                .collect()
        };
        let wan = ("wan0".to_string(), u32::from_be_bytes([10, 2, 0, 1]), 24);
        assert_eq!(names(&newest(&dir.0, &pusher)), vec![wan.clone()]);

        // A route change: a delta, still with the interfaces.
        store
            .create_route(PUSHED_ORG, &via("10.9.0.0/24", [10, 2, 0, 7]))
            .unwrap();
        let t = Touched::Prefixes(vec![cidr("10.9.0.0/24")]);
        pusher.push_if_changed(&mut store, t).unwrap().unwrap();
        assert_eq!(pusher.last_kind(), Some(PushKind::Delta));
        assert_eq!(names(&newest(&dir.0, &pusher)), vec![wan.clone()]);

        // An interface alone: a delta with no route changes.
        store
            .create_interface(
                PUSHED_ORG,
                &InterfaceDef {
                    port: "lan0".into(),
                    address: Cidr::parse("a", "10.1.0.1/24").unwrap(),
                    vlan: Some(5),
                },
            )
            .unwrap();
        pusher
            .push_if_changed(&mut store, Touched::Nothing)
            .unwrap()
            .expect("an interface change is published");
        let g = newest(&dir.0, &pusher);
        assert_eq!(pusher.last_kind(), Some(PushKind::Delta));
        assert!(g.view().route_changes().is_empty());
        assert_eq!(g.view().interfaces()[1].vlan, 5);
        assert_eq!(names(&g).len(), 2);
        // Nothing new: nothing published.
        assert_eq!(
            pusher
                .push_if_changed(&mut store, Touched::Nothing)
                .unwrap(),
            None
        );
    }

    #[test]
    fn full_then_deltas_then_checkpoints() {
        let dir = TempDir::new("policy");
        let mut store = store_with_wan();
        let mut pusher = Pusher::open(&dir.0).unwrap();
        pusher.set_checkpoint_policy(3, 4);
        let a = store
            .create_route(PUSHED_ORG, &via("10.9.0.0/24", [10, 2, 0, 7]))
            .unwrap();

        // First push: the whole table.
        let g1 = pusher
            .push_if_changed(&mut store, Touched::Nothing)
            .unwrap()
            .unwrap();
        assert_eq!(pusher.last_kind(), Some(PushKind::Full));
        assert_eq!(newest(&dir.0, &pusher).view().routes().len(), 1);
        // Nothing changed: nothing published.
        assert_eq!(
            pusher
                .push_if_changed(&mut store, Touched::Nothing)
                .unwrap(),
            None
        );

        // One route replaced: a delta of one upsert against g1.
        store
            .replace_route(PUSHED_ORG, a.id, &via("10.9.0.0/24", [10, 2, 0, 8]))
            .unwrap();
        let g2 = pusher
            .push_if_changed(&mut store, Touched::Prefixes(vec![a.prefix]))
            .unwrap()
            .unwrap();
        assert_eq!(pusher.last_kind(), Some(PushKind::Delta));
        let g = newest(&dir.0, &pusher);
        assert_eq!((g.number(), g.view().delta_of()), (g2, Some(g1)));
        assert!(!g.view().has_full_routes());
        let ch = g.view().route_changes();
        assert_eq!(ch.len(), 1);
        assert_eq!(ch[0].route.nexthops[0], u32::from_be_bytes([10, 2, 0, 8]));

        // A touched prefix whose route did not change: nothing.
        store
            .create_route("default", &via("10.8.0.0/24", [10, 2, 0, 7]))
            .unwrap();
        store.delete_route("default", a.id + 1).unwrap();
        assert_eq!(
            pusher
                .push_if_changed(&mut store, Touched::Prefixes(vec![cidr("10.8.0.0/24")]))
                .unwrap(),
            None
        );

        // A delete: one withdrawal.
        store.delete_route(PUSHED_ORG, a.id).unwrap();
        pusher
            .push_if_changed(&mut store, Touched::Prefixes(vec![a.prefix]))
            .unwrap()
            .unwrap();
        let g = newest(&dir.0, &pusher);
        assert_eq!(g.view().route_changes().len(), 1);
        assert!(g.view().route_changes()[0].is_withdraw());
        assert!(!pusher.checkpoint_due(), "two deltas, two changes");

        // Five changes at once (threshold 4) that make up the whole table: a
        // full generation.
        let bulk = |store: &mut Store, from: u8, n: u8| {
            let add: Vec<_> = (from..from + n)
                .map(|i| via(&format!("10.{}.0.0/16", 100 + i), [10, 2, 0, 7]))
                .collect();
            store
                .bulk_routes(
                    PUSHED_ORG,
                    &BulkRoutes {
                        add,
                        ..Default::default()
                    },
                )
                .unwrap()
                .prefixes
        };
        let touched = bulk(&mut store, 0, 5);
        pusher
            .push_if_changed(&mut store, Touched::Prefixes(touched))
            .unwrap()
            .unwrap();
        assert_eq!(pusher.last_kind(), Some(PushKind::Full));
        let g = newest(&dir.0, &pusher);
        assert_eq!((g.view().routes().len(), g.view().delta_of()), (5, None));
        // Four more (threshold 4, less than half the table): a checkpoint
        // carrying them.
        let touched = bulk(&mut store, 5, 4);
        let gc = pusher
            .push_if_changed(&mut store, Touched::Prefixes(touched))
            .unwrap()
            .unwrap();
        assert_eq!(pusher.last_kind(), Some(PushKind::Checkpoint));
        let g = newest(&dir.0, &pusher);
        assert_eq!(g.view().delta_of(), Some(gc - 1));
        assert_eq!(
            (g.view().routes().len(), g.view().route_changes().len()),
            (9, 4)
        );
        assert!(!pusher.checkpoint_due());

        // Three single-route deltas make a checkpoint due: whole table, no changes.
        for i in 0..3u8 {
            let r = store
                .create_route(PUSHED_ORG, &via(&format!("10.50.{i}.0/24"), [10, 2, 0, 7]))
                .unwrap();
            pusher
                .push_if_changed(&mut store, Touched::Prefixes(vec![r.prefix]))
                .unwrap()
                .unwrap();
            assert_eq!(pusher.last_kind(), Some(PushKind::Delta));
        }
        assert!(pusher.checkpoint_due());
        let gk = pusher.checkpoint_if_due().unwrap().unwrap();
        let g = newest(&dir.0, &pusher);
        assert_eq!(g.view().delta_of(), Some(gk - 1));
        assert_eq!(
            (g.view().routes().len(), g.view().route_changes().len()),
            (12, 0)
        );
        assert_eq!(pusher.checkpoint_if_due().unwrap(), None, "no longer due");

        // Another publisher's generation in between: the next push is full.
        drop(g);
        let other = {
            let mut p = pusher.publisher.lock().unwrap();
            p.publish(&GenerationBuilder::new()).unwrap()
        };
        let r = store
            .create_route(PUSHED_ORG, &via("10.60.0.0/24", [10, 2, 0, 7]))
            .unwrap();
        let gf = pusher
            .push_if_changed(&mut store, Touched::Prefixes(vec![r.prefix]))
            .unwrap()
            .unwrap();
        assert_eq!((gf, pusher.last_kind()), (other + 1, Some(PushKind::Full)));
        let g = newest(&dir.0, &pusher);
        assert_eq!((g.view().routes().len(), g.view().delta_of()), (13, None));
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

#[cfg(test)]
#[path = "push_bgp_tests.rs"]
mod bgp_tests;
