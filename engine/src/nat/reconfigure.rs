//! Live reconfiguration of one worker's NAT ([`Nat::reconfigure`]): the
//! worker applies a new [`NatConfig`] between two batches and keeps every
//! session the new config still allows, with its outside endpoint.
//!
//! An administrative act, not the packet path: it allocates. A change of
//! timeouts, filtering, limits or 1:1 mappings only swaps the config (O(1)
//! but for the short static lists and the fragment cache); a pool, forward
//! or size change walks the tables once (O(table capacity): about 0.16 s
//! for 1 M sessions in a release build, 0.8 s with a resize to 2 M, during
//! which that worker does not poll).

use std::collections::{HashMap, HashSet};

use super::config::{NatConfig, NatConfigError, PortForward};
use super::dnat::StaticMaps;
use super::hosts::HostCounts;
use super::key::{Endpoint, Proto};
use super::mapping::{Mapping, MappingTable, STATIC_POOL};
use super::ports::{inside_worker, PortAllocator};
use super::table::SessionTable;
use super::timeouts::TimerClass;
use super::Nat;

/// What [`Nat::reconfigure`] did on this worker. Pool, forward and 1:1
/// figures compare the two configs (the same on every worker); session and
/// mapping figures are this worker's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReconfigureReport {
    /// Sessions still live, with the same outside endpoint.
    pub sessions_kept: usize,
    /// Sessions flushed because their pool address was removed.
    pub flushed_removed_pool: usize,
    /// Sessions flushed because their port forward was removed (or changed:
    /// a forward is identified by all of its fields).
    pub flushed_removed_forward: usize,
    /// Sessions flushed because a new forward took their dynamic mapping's
    /// outside port or inside endpoint.
    pub flushed_forward_conflict: usize,
    /// Mappings removed (dynamic and static).
    pub mappings_flushed: usize,
    pub pool_kept: usize,
    pub pool_added: usize,
    pub pool_removed: usize,
    pub forwards_kept: usize,
    pub forwards_added: usize,
    pub forwards_removed: usize,
    /// Static mappings installed on this worker (new forwards whose inside
    /// host it owns).
    pub static_mappings_added: usize,
    pub one_to_one_added: usize,
    pub one_to_one_removed: usize,
    /// The session (and mapping) tables were rebuilt: `max_sessions`
    /// changed, or the mapping table needed room for more forwards. Session
    /// slots (the listing's cursors) are renumbered then.
    pub tables_rebuilt: bool,
    /// Fragment-cache entries forgotten because they involve an address
    /// whose translation was removed or changed.
    pub fragments_purged: usize,
}

impl ReconfigureReport {
    /// All sessions flushed (added to `NatCounters::sessions_flushed`).
    pub fn sessions_flushed(&self) -> usize {
        self.flushed_removed_pool + self.flushed_removed_forward + self.flushed_forward_conflict
    }
}

/// What becomes of one live mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    Keep,
    RemovedPool,
    RemovedForward,
    ForwardConflict,
}

/// A forward as a set key (every field).
type ForwardKey = (Proto, u32, u16, u32, u16);

fn forward_key(f: &PortForward) -> ForwardKey {
    (
        f.proto,
        u32::from(f.outside_addr),
        f.outside_port,
        u32::from(f.inside_addr),
        f.inside_port,
    )
}

const NIL: u32 = u32::MAX;

impl Nat {
    /// Applies `cfg` to this worker without disturbing established
    /// sessions. Call it between two batches. Validates first: on error
    /// nothing changed.
    ///
    /// - `workers` and `worker` must not change (the port ranges and the
    ///   steering depend on them): [`NatConfigError::WorkersChanged`].
    /// - Timeouts, filtering, `inbound_refresh`, `max_sessions_per_host`,
    ///   `outside_iface`: apply at once to existing sessions (the next
    ///   lookup or expiry uses the new timeouts; the expiry lists are
    ///   ordered by link time, which no timeout changes). A lowered host
    ///   limit keeps existing sessions and refuses new ones until the host
    ///   is under it.
    /// - Pool: addresses kept, in any order, keep their mappings, ports and
    ///   sessions; mappings on removed addresses are flushed with their
    ///   sessions, whose flows get a new mapping on their next outbound
    ///   packet. The port allocator is rebuilt for the new pool order from
    ///   the live mappings and forwards.
    /// - Forwards (identified by all fields): a removed one's static mapping
    ///   and sessions are flushed; a new one gets its static mapping on the
    ///   inside host's worker and its port reserved on the worker whose range
    ///   holds it. A dynamic mapping holding a new forward's outside port,
    ///   or the mapping of its inside endpoint (which the forward now
    ///   defines), is flushed with its sessions.
    /// - 1:1 mappings are stateless: the new ones apply to the next packet.
    ///   Fragment-cache entries involving a removed pool address, a removed
    ///   forward's or displaced mapping's outside address, or either address
    ///   of a removed 1:1 mapping are forgotten (their later fragments drop).
    /// - `max_sessions`: the tables are rebuilt at the new size keeping
    ///   every kept session (slot numbers change), or, when the kept
    ///   sessions do not fit, [`NatConfigError::MaxSessionsBelowLive`].
    pub fn reconfigure(&mut self, cfg: NatConfig) -> Result<ReconfigureReport, NatConfigError> {
        cfg.validate()?;
        if cfg.workers != self.cfg.workers || cfg.worker != self.cfg.worker {
            return Err(NatConfigError::WorkersChanged {
                from_workers: self.cfg.workers,
                from_worker: self.cfg.worker,
                to_workers: cfg.workers,
                to_worker: cfg.worker,
            });
        }
        if cfg.pool == self.cfg.pool
            && cfg.forwards == self.cfg.forwards
            && cfg.max_sessions == self.cfg.max_sessions
        {
            return Ok(self.reconfigure_settings(cfg));
        }
        let mut report = ReconfigureReport::default();

        // Pool: old index -> new index.
        let new_pool: Vec<u32> = cfg.pool.iter().map(|&a| u32::from(a)).collect();
        let pool_pos: HashMap<u32, u16> = new_pool
            .iter()
            .enumerate()
            .map(|(i, &a)| (a, i as u16))
            .collect();
        let old_to_new: Vec<Option<u16>> =
            self.pool.iter().map(|a| pool_pos.get(a).copied()).collect();
        report.pool_kept = old_to_new.iter().flatten().count();
        report.pool_removed = self.pool.len() - report.pool_kept;
        report.pool_added = new_pool.len() - report.pool_kept;

        // Forwards.
        let old_fwds: HashSet<ForwardKey> = self.cfg.forwards.iter().map(forward_key).collect();
        let new_fwds: HashSet<ForwardKey> = cfg.forwards.iter().map(forward_key).collect();
        report.forwards_kept = new_fwds.intersection(&old_fwds).count();
        report.forwards_removed = old_fwds.len() - report.forwards_kept;
        report.forwards_added = new_fwds.len() - report.forwards_kept;
        let added: Vec<PortForward> = cfg
            .forwards
            .iter()
            .filter(|f| !old_fwds.contains(&forward_key(f)))
            .copied()
            .collect();
        let claimed_out: HashSet<(Proto, u32, u16)> = added
            .iter()
            .map(|f| (f.proto, u32::from(f.outside_addr), f.outside_port))
            .collect();
        let claimed_in: HashSet<(Proto, u32, u16)> = added
            .iter()
            .map(|f| (f.proto, u32::from(f.inside_addr), f.inside_port))
            .collect();

        // 1:1 mappings.
        let o2o = |c: &NatConfig| -> HashSet<(u32, u32)> {
            c.one_to_one
                .iter()
                .map(|m| (u32::from(m.outside), u32::from(m.inside)))
                .collect()
        };
        let (old_o2o, new_o2o) = (o2o(&self.cfg), o2o(&cfg));
        report.one_to_one_added = new_o2o.difference(&old_o2o).count();
        report.one_to_one_removed = old_o2o.difference(&new_o2o).count();

        // Plan, read-only: the fate of every live mapping.
        let live = self.mappings.live_slots();
        let mut fate = vec![Fate::Keep; live.len()];
        for (i, _) in live.iter().enumerate().filter(|(_, &l)| l) {
            let m = self.mappings.get(i as u32);
            let f = if m.is_static {
                let key = (
                    m.proto,
                    m.outside.addr,
                    m.outside.port,
                    m.inside.addr,
                    m.inside.port,
                );
                if new_fwds.contains(&key) {
                    Fate::Keep
                } else {
                    Fate::RemovedForward
                }
            } else if old_to_new[usize::from(m.pool_idx)].is_none() {
                Fate::RemovedPool
            } else if claimed_out.contains(&(m.proto, m.outside.addr, m.outside.port))
                || claimed_in.contains(&(m.proto, m.inside.addr, m.inside.port))
            {
                Fate::ForwardConflict
            } else {
                Fate::Keep
            };
            fate[i] = f;
            let n = m.sessions as usize;
            match f {
                Fate::Keep => {}
                Fate::RemovedPool => report.flushed_removed_pool += n,
                Fate::RemovedForward => report.flushed_removed_forward += n,
                Fate::ForwardConflict => report.flushed_forward_conflict += n,
            }
        }
        report.sessions_kept = self.sessions.count() - report.sessions_flushed();
        if report.sessions_kept > cfg.max_sessions as usize {
            return Err(NatConfigError::MaxSessionsBelowLive {
                max: cfg.max_sessions,
                sessions: report.sessions_kept,
            });
        }

        // Apply; nothing below fails.
        // Addresses whose fragment-cache entries must go.
        let mut affected: HashSet<u32> = self
            .pool
            .iter()
            .filter(|a| !pool_pos.contains_key(a))
            .copied()
            .collect();
        for (o, i) in old_o2o.difference(&new_o2o) {
            affected.insert(*o);
            affected.insert(*i);
        }
        for (i, _) in live.iter().enumerate().filter(|(_, &l)| l) {
            let m = self.mappings.get_mut(i as u32);
            if fate[i] == Fate::Keep {
                if !m.is_static {
                    // Kept dynamic mappings follow their address's new index.
                    m.pool_idx = old_to_new[usize::from(m.pool_idx)].unwrap_or(STATIC_POOL);
                }
            } else {
                affected.insert(m.outside.addr);
                report.mappings_flushed += 1;
            }
        }
        self.flush(&fate);
        self.counters.sessions_flushed += report.sessions_flushed() as u64;

        let max = cfg.max_sessions as usize;
        let map_cap = max + cfg.forwards.len();
        if max != self.sessions.capacity() {
            self.rebuild_tables(max, map_cap);
            report.tables_rebuilt = true;
        } else if self.mappings.capacity() < map_cap {
            self.rebuild_mappings(map_cap);
            report.tables_rebuilt = true;
        }

        for f in &added {
            if inside_worker(cfg.workers, f.inside_addr) == usize::from(cfg.worker) {
                // Sized for every kept session plus every forward, and the
                // conflicting mappings are gone: cannot fail.
                let _ = self.mappings.insert(Mapping {
                    inside: Endpoint::new(f.inside_addr.into(), f.inside_port),
                    outside: Endpoint::new(f.outside_addr.into(), f.outside_port),
                    proto: f.proto,
                    pool_idx: STATIC_POOL,
                    is_static: true,
                    sessions: 0,
                });
                report.static_mappings_added += 1;
            }
        }

        self.ports = rebuilt_ports(&self.mappings, &cfg, &pool_pos);
        report.fragments_purged = self.frags.purge(|a| affected.contains(&a));
        self.statics = StaticMaps::new(&cfg);
        self.pool = new_pool;
        self.cfg = cfg;
        Ok(report)
    }

    /// The common case without a pool, forward or size change: no mapping
    /// changes, so no table is walked (O(1) but for the 1:1 lists and the
    /// fragment cache).
    fn reconfigure_settings(&mut self, cfg: NatConfig) -> ReconfigureReport {
        let mut affected = HashSet::new();
        let mut removed = 0;
        for m in &self.cfg.one_to_one {
            if !cfg.one_to_one.contains(m) {
                affected.insert(u32::from(m.outside));
                affected.insert(u32::from(m.inside));
                removed += 1;
            }
        }
        let report = ReconfigureReport {
            sessions_kept: self.sessions.count(),
            pool_kept: cfg.pool.len(),
            forwards_kept: cfg.forwards.len(),
            one_to_one_added: cfg
                .one_to_one
                .iter()
                .filter(|m| !self.cfg.one_to_one.contains(m))
                .count(),
            one_to_one_removed: removed,
            fragments_purged: if affected.is_empty() {
                0
            } else {
                self.frags.purge(|a| affected.contains(&a))
            },
            ..ReconfigureReport::default()
        };
        self.statics = StaticMaps::new(&cfg);
        self.cfg = cfg;
        report
    }

    /// Removes every session whose mapping's fate is not `Keep`, and those
    /// mappings (their ports are not released: the allocator is rebuilt).
    fn flush(&mut self, fate: &[Fate]) {
        if fate.iter().all(|&f| f == Fate::Keep) {
            return;
        }
        for i in 0..self.sessions.capacity() {
            let Some(s) = self.sessions.live(i) else {
                continue;
            };
            if fate[s.mapping as usize] != Fate::Keep {
                let s = self.sessions.remove(i as u32);
                self.hosts.decrement(s.inside.addr);
            }
        }
        for (i, &f) in fate.iter().enumerate() {
            if f != Fate::Keep {
                self.mappings.remove(i as u32);
            }
        }
    }

    /// A new mapping table of `map_cap` slots holding the live mappings,
    /// and every session pointed at its mapping's new slot.
    fn rebuild_mappings(&mut self, map_cap: usize) {
        let live = self.mappings.live_slots();
        // Never smaller than what it must hold, so inserts cannot fail.
        let mut table = MappingTable::new(map_cap.max(self.mappings.count()));
        let mut remap = vec![NIL; live.len()];
        for (i, _) in live.iter().enumerate().filter(|(_, &l)| l) {
            remap[i] = table.insert(*self.mappings.get(i as u32)).unwrap_or(NIL);
        }
        self.mappings = table;
        for i in 0..self.sessions.capacity() {
            if let Some(s) = self.sessions.live(i) {
                let m = remap[s.mapping as usize];
                self.sessions.set_mapping(i as u32, m);
            }
        }
    }

    /// New session, mapping and host tables for `max` sessions, holding
    /// every live session (fits: checked by the caller) in the same expiry
    /// order per class, with their link times, so expiry stays exact.
    fn rebuild_tables(&mut self, max: usize, map_cap: usize) {
        self.rebuild_mappings(map_cap);
        let old = &self.sessions;
        let mut table = SessionTable::new(max.max(old.count()));
        let mut hosts = HostCounts::with_capacity(max);
        for class in TimerClass::ALL {
            let mut cur = old.oldest(class);
            while let Some(i) = cur {
                let s = *old.get(i);
                hosts.increment(s.inside.addr);
                let _ = table.insert(s);
                cur = old.next_in_list(i);
            }
        }
        self.sessions = table;
        self.hosts = hosts;
    }
}

/// A port allocator for `cfg`'s pool order with every live dynamic
/// mapping's port and every forward's pool port (in this worker's range)
/// reserved.
fn rebuilt_ports(
    mappings: &MappingTable,
    cfg: &NatConfig,
    pool_pos: &HashMap<u32, u16>,
) -> PortAllocator {
    let mut ports = PortAllocator::new(cfg.pool.len(), cfg.workers, cfg.worker);
    for (i, _) in mappings.live_slots().iter().enumerate().filter(|(_, &l)| l) {
        let m = mappings.get(i as u32);
        if !m.is_static {
            // Unique before, unique after: every take succeeds.
            let taken = ports.take(usize::from(m.pool_idx), m.proto, m.outside.port);
            debug_assert!(taken, "port of a live mapping taken twice: {m:?}");
        }
    }
    for f in &cfg.forwards {
        if let Some(&a) = pool_pos.get(&u32::from(f.outside_addr)) {
            ports.take(usize::from(a), f.proto, f.outside_port);
        }
    }
    ports
}
