//! NAT44 for one worker: source NAT to a pool with endpoint-independent
//! mapping, configurable filtering, port forwards, 1:1 mappings,
//! hairpinning, ICMP query and error translation and fragments, on packet
//! bytes in place with incremental checksums. A library the pipeline calls:
//! no I/O, no clock (`now` is an argument, in nanoseconds), no locks, and no
//! allocation after [`Nat::new`] (but for [`Nat::reconfigure`], the live
//! config change a worker applies between batches).
//!
//! Multiple workers (see [`ports`]): each owns a disjoint range of every pool
//! address's ports. The pipeline steers outbound packets by inside address
//! ([`Nat::outbound_owner`]) and inbound ones by the translated destination
//! port or query id ([`Nat::inbound_owner`]), so both directions of every
//! session meet on the worker that created it.

pub mod config;
pub mod counters;
mod dnat;
mod established;
mod frag;
mod hosts;
pub(crate) mod huge;
mod icmp;
pub(crate) mod index;
pub mod key;
mod list;
mod mapping;
pub mod ports;
pub(crate) mod prefetch;
mod reconfigure;
pub(crate) mod rewrite;
mod table;
pub mod tcp_state;
pub mod timeouts;
mod translate;

#[cfg(test)]
mod tests;

pub use config::{Filtering, NatConfig, NatConfigError, OneToOne, PortForward};
pub use counters::{NatCounters, NAT_COUNTER_NAMES};
pub use key::{Endpoint, Proto};
pub use list::SessionInfo;
pub use ports::{inside_worker, owner_worker, port_range};
pub use prefetch::Prefetched;
pub use reconfigure::ReconfigureReport;
pub use timeouts::{Timeouts, TimerClass};

use std::net::Ipv4Addr;

use dnat::StaticMaps;
use frag::FragmentCache;
use hosts::HostCounts;
use key::addr_hash;
use mapping::{Mapping, MappingTable, STATIC_POOL};
use ports::PortAllocator;
use table::{Session, SessionTable};

/// What NAT did with a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Rewritten in place; forward it.
    Translated,
    /// Not NAT's business (not from/to an outside address, or an inbound
    /// ICMP echo request or other protocol to it, for local delivery).
    NotNat,
    /// Source translated; the destination is an outside address whose
    /// session belongs to worker `n`: hand the packet to that worker's
    /// [`Nat::inbound`] (hairpinning across workers).
    Hairpin(u16),
    /// Drop it (counted in [`NatCounters`]).
    Drop(NatDrop),
}

/// Why NAT dropped a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NatDrop {
    /// Inbound to an outside address with no session or mapping.
    NoSession,
    /// Inbound from a remote the mapping has not sent to (APDF).
    Filtered,
    /// New session refused: no free port on any pool address.
    PoolExhausted,
    /// New session refused: the inside host is at its session limit.
    HostLimit,
    /// New session refused: the session table is full.
    TableFull,
    /// A non-first fragment without state from its first fragment.
    FragmentNoState,
    /// L4 header or embedded packet too short or inconsistent.
    Malformed,
    /// A protocol or ICMP type NAT cannot translate.
    Unsupported,
}

/// The NAT state of one worker.
#[derive(Debug)]
pub struct Nat {
    cfg: NatConfig,
    statics: StaticMaps,
    pool: Vec<u32>,
    ports: PortAllocator,
    sessions: SessionTable,
    mappings: MappingTable,
    hosts: HostCounts,
    frags: FragmentCache,
    counters: NatCounters,
}

impl Nat {
    /// Validates `cfg` and preallocates every table: sessions and host
    /// counts for `max_sessions`, mappings for sessions + forwards, port
    /// bitmaps for the pool, the fragment cache. Installs this worker's
    /// port forwards as static mappings and reserves every forwarded pool
    /// port that falls in this worker's range.
    pub fn new(cfg: NatConfig) -> Result<Self, NatConfigError> {
        cfg.validate()?;
        let max = cfg.max_sessions as usize;
        let pool: Vec<u32> = cfg.pool.iter().map(|&a| u32::from(a)).collect();
        let mut nat = Self {
            statics: StaticMaps::new(&cfg),
            ports: PortAllocator::new(pool.len(), cfg.workers, cfg.worker),
            sessions: SessionTable::new(max),
            mappings: MappingTable::new(max + cfg.forwards.len()),
            hosts: HostCounts::with_capacity(max),
            frags: FragmentCache::default(),
            counters: NatCounters::default(),
            pool,
            cfg,
        };
        for f in nat.cfg.forwards.clone() {
            let out = u32::from(f.outside_addr);
            if let Some(i) = nat.pool.iter().position(|&a| a == out) {
                nat.ports.take(i, f.proto, f.outside_port);
            }
            if inside_worker(nat.cfg.workers, f.inside_addr) == usize::from(nat.cfg.worker) {
                nat.mappings.insert(Mapping {
                    inside: Endpoint::new(f.inside_addr.into(), f.inside_port),
                    outside: Endpoint::new(out, f.outside_port),
                    proto: f.proto,
                    pool_idx: STATIC_POOL,
                    is_static: true,
                    sessions: 0,
                });
            }
        }
        Ok(nat)
    }

    pub fn config(&self) -> &NatConfig {
        &self.cfg
    }

    pub fn counters(&self) -> &NatCounters {
        &self.counters
    }

    /// True for an address NAT answers for on the outside (pool, 1:1 and
    /// forward addresses).
    #[inline]
    pub fn is_outside(&self, addr: u32) -> bool {
        self.statics.is_outside(addr)
    }

    /// Live sessions.
    pub fn session_count(&self) -> usize {
        self.sessions.count()
    }

    /// Live mappings (static ones included).
    pub fn mapping_count(&self) -> usize {
        self.mappings.count()
    }

    /// Sessions `inside` holds on this worker.
    pub fn host_sessions(&self, inside: Ipv4Addr) -> u32 {
        self.hosts.get(inside.into())
    }

    /// The worker owning returning packets to `addr:port/proto`; same as
    /// [`owner_worker`] on this config.
    #[inline]
    pub fn owner_worker(&self, addr: Ipv4Addr, port: u16, proto: Proto) -> usize {
        self.statics.owner_worker(addr.into(), port, proto)
    }

    /// Frees sessions idle past their timeout at `now`; returns how many.
    /// At most `budget` sessions are examined (freed or stepped over), so
    /// one call never pauses the worker long: call it every batch or so
    /// with a small budget.
    pub fn expire(&mut self, now: u64, budget: usize) -> usize {
        let mut freed = 0;
        let mut steps = 0;
        for class in TimerClass::ALL {
            let t = self.cfg.timeouts.nanos(class);
            let mut cur = self.sessions.oldest(class);
            while let Some(i) = cur {
                // Sorted by link time, and last use < link time + RELINK:
                // past the first session linked less than a timeout ago,
                // none is due.
                if steps >= budget || self.sessions.linked_at(i).saturating_add(t) > now {
                    break;
                }
                steps += 1;
                cur = self.sessions.next_in_list(i);
                if self.sessions.get(i).last_seen.saturating_add(t) <= now {
                    self.free_session(i);
                    self.counters.sessions_expired += 1;
                    freed += 1;
                }
            }
        }
        freed
    }

    /// True when session `idx` is past its timeout at `now` (a lookup that
    /// finds one before [`Nat::expire`] reached it treats it as gone).
    #[inline]
    fn is_expired(&self, idx: u32, now: u64) -> bool {
        let s = self.sessions.get(idx);
        s.last_seen.saturating_add(self.cfg.timeouts.nanos(s.class)) <= now
    }

    /// Looked-up session `found` if still live at `now`; an expired one is
    /// freed (counted as expired).
    #[inline]
    fn live_or_reap(&mut self, found: Option<u32>, now: u64) -> Option<u32> {
        let i = found?;
        if self.is_expired(i, now) {
            self.free_session(i);
            self.counters.sessions_expired += 1;
            return None;
        }
        Some(i)
    }

    fn free_session(&mut self, idx: u32) {
        let s = self.sessions.remove(idx);
        self.hosts.decrement(s.inside.addr);
        let m = self.mappings.get_mut(s.mapping);
        m.sessions -= 1;
        if m.sessions == 0 && !m.is_static {
            let m = self.mappings.remove(s.mapping);
            self.ports
                .release(usize::from(m.pool_idx), m.proto, m.outside.port);
        }
    }

    /// Checks the limits for one more session of `inside_addr`.
    #[inline]
    fn admit(&self, inside_addr: u32) -> Result<(), NatDrop> {
        if self.hosts.get(inside_addr) >= self.cfg.max_sessions_per_host {
            return Err(NatDrop::HostLimit);
        }
        if self.sessions.is_full() {
            return Err(NatDrop::TableFull);
        }
        Ok(())
    }

    /// A new session for outbound `inside` -> `remote`, reusing the inside
    /// endpoint's mapping if it has one (EIM) or allocating one.
    fn new_outbound_session(
        &mut self,
        inside: Endpoint,
        remote: Endpoint,
        proto: Proto,
        now: u64,
    ) -> Result<u32, NatDrop> {
        self.admit(inside.addr)?;
        let m = match self.mappings.find_inside(inside, proto) {
            Some(m) => m,
            None => self.new_mapping(inside, proto)?,
        };
        Ok(self.add_session(m, remote, now))
    }

    /// A new session on an existing mapping for inbound traffic from
    /// `remote` to `outside`: always for a forward (static), for a dynamic
    /// mapping only under endpoint-independent filtering.
    fn new_inbound_session(
        &mut self,
        outside: Endpoint,
        remote: Endpoint,
        proto: Proto,
        now: u64,
    ) -> Result<u32, NatDrop> {
        let m = self
            .mappings
            .find_outside(outside, proto)
            .ok_or(NatDrop::NoSession)?;
        let mapping = self.mappings.get(m);
        if !mapping.is_static && self.cfg.filtering == Filtering::AddressAndPortDependent {
            return Err(NatDrop::Filtered);
        }
        self.admit(mapping.inside.addr)?;
        Ok(self.add_session(m, remote, now))
    }

    /// Allocates an outside endpoint: the pool address paired with the
    /// inside address (RFC 4787 REQ-2, by hash) first, then the others; on
    /// each, the inside port if it is in this worker's range and free (port
    /// preservation), else the next free port of the range.
    fn new_mapping(&mut self, inside: Endpoint, proto: Proto) -> Result<u32, NatDrop> {
        let n = self.pool.len();
        let pref = addr_hash(inside.addr) as usize % n;
        for k in 0..n {
            let a = (pref + k) % n;
            let port = if self.ports.take(a, proto, inside.port) {
                inside.port
            } else if let Some(p) = self.ports.take_next(a, proto) {
                p
            } else {
                continue;
            };
            let m = Mapping {
                inside,
                outside: Endpoint::new(self.pool[a], port),
                proto,
                pool_idx: a as u16,
                is_static: false,
                sessions: 0,
            };
            // Sized for every session plus every forward: cannot fail.
            return self.mappings.insert(m).ok_or(NatDrop::TableFull);
        }
        Err(NatDrop::PoolExhausted)
    }

    /// Adds a session on mapping `m` (limits already checked).
    fn add_session(&mut self, m: u32, remote: Endpoint, now: u64) -> u32 {
        let mp = self.mappings.get_mut(m);
        mp.sessions += 1;
        let s = Session::new(mp.inside, mp.outside, remote, mp.proto, m, now);
        self.hosts.increment(s.inside.addr);
        self.counters.sessions_created += 1;
        // `admit` checked there is room.
        self.sessions.insert(s).unwrap_or(u32::MAX)
    }

    fn count_drop(&mut self, r: NatDrop) {
        let c = &mut self.counters;
        match r {
            NatDrop::NoSession => c.dropped_no_session += 1,
            NatDrop::Filtered => c.dropped_filtered += 1,
            NatDrop::PoolExhausted => c.refused_pool_exhausted += 1,
            NatDrop::HostLimit => c.refused_host_limit += 1,
            NatDrop::TableFull => c.refused_table_full += 1,
            NatDrop::FragmentNoState => c.dropped_fragment += 1,
            NatDrop::Malformed => c.dropped_malformed += 1,
            NatDrop::Unsupported => c.dropped_unsupported += 1,
        }
    }
}
