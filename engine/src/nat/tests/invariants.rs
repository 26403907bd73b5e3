//! A full consistency check of one worker's NAT state, for tests that
//! churn sessions and reconfigure: lists, indexes, mappings, ports, hosts.

use std::collections::{HashMap, HashSet};

use crate::nat::key::{Endpoint, Proto};
use crate::nat::mapping::STATIC_POOL;
use crate::nat::ports::inside_worker;
use crate::nat::Nat;

impl Nat {
    /// Every invariant the tables rely on; the error says which broke.
    pub(super) fn check_invariants(&self) -> Result<(), String> {
        self.sessions.check_lists()?;
        let live_maps = self.mappings.live_slots();
        let mut per_mapping: HashMap<u32, u32> = HashMap::new();
        let mut per_host: HashMap<u32, u32> = HashMap::new();
        for i in 0..self.sessions.capacity() {
            let Some(s) = self.sessions.live(i) else {
                continue;
            };
            let idx = i as u32;
            if !live_maps.get(s.mapping as usize).copied().unwrap_or(false) {
                return Err(format!("session {i} points at dead mapping {}", s.mapping));
            }
            let m = self.mappings.get(s.mapping);
            if (m.inside, m.outside, m.proto) != (s.inside, s.outside, s.proto) {
                return Err(format!("session {i} disagrees with its mapping {m:?}"));
            }
            if self.sessions.find_inside(s.inside, s.remote, s.proto) != Some(idx)
                || self.sessions.find_outside(s.outside, s.remote, s.proto) != Some(idx)
            {
                return Err(format!("session {i} not found by its keys"));
            }
            *per_mapping.entry(s.mapping).or_default() += 1;
            *per_host.entry(s.inside.addr).or_default() += 1;
        }
        for (&a, &n) in &per_host {
            if self.hosts.get(a) != n {
                return Err(format!(
                    "host {a:#x}: count {} != {n} sessions",
                    self.hosts.get(a)
                ));
            }
        }
        if self.hosts.total() != self.sessions.count() as u64 {
            return Err(format!("host counts sum to {}", self.hosts.total()));
        }

        let mut outsides: HashSet<(Endpoint, Proto)> = HashSet::new();
        let mut insides: HashSet<(Endpoint, Proto)> = HashSet::new();
        // (pool index, proto) -> ports held by dynamic mappings.
        let mut held: HashMap<(usize, Proto), HashSet<u16>> = HashMap::new();
        let mut statics = HashSet::new();
        for (i, _) in live_maps.iter().enumerate().filter(|(_, &l)| l) {
            let m = self.mappings.get(i as u32);
            let n = per_mapping.get(&(i as u32)).copied().unwrap_or(0);
            if m.sessions != n {
                return Err(format!(
                    "mapping {i}: {} sessions recorded, {n} live",
                    m.sessions
                ));
            }
            if !outsides.insert((m.outside, m.proto)) {
                return Err(format!("outside {:?}/{:?} used twice", m.outside, m.proto));
            }
            if !insides.insert((m.inside, m.proto)) {
                return Err(format!("inside {:?}/{:?} mapped twice", m.inside, m.proto));
            }
            if self.mappings.find_outside(m.outside, m.proto) != Some(i as u32)
                || self.mappings.find_inside(m.inside, m.proto) != Some(i as u32)
            {
                return Err(format!("mapping {i} not found by its keys"));
            }
            if m.is_static {
                if m.pool_idx != STATIC_POOL {
                    return Err(format!("static mapping {i} has a pool index"));
                }
                statics.insert((m.proto, m.outside, m.inside));
                continue;
            }
            if n == 0 {
                return Err(format!("dynamic mapping {i} without sessions"));
            }
            let a = usize::from(m.pool_idx);
            if self.pool.get(a) != Some(&m.outside.addr) {
                return Err(format!("mapping {i}: pool index {a} is not its address"));
            }
            if !self.ports.is_used(a, m.proto, m.outside.port) {
                return Err(format!("mapping {i}: port {} not reserved", m.outside.port));
            }
            held.entry((a, m.proto)).or_default().insert(m.outside.port);
        }

        let worker = usize::from(self.cfg.worker);
        let mut want_statics = HashSet::new();
        for f in &self.cfg.forwards {
            let out = Endpoint::new(f.outside_addr.into(), f.outside_port);
            if inside_worker(self.cfg.workers, f.inside_addr) == worker {
                want_statics.insert((
                    f.proto,
                    out,
                    Endpoint::new(f.inside_addr.into(), f.inside_port),
                ));
            }
            if let Some(a) = self.pool.iter().position(|&p| p == out.addr) {
                if self.ports.in_range(f.outside_port) {
                    if !self.ports.is_used(a, f.proto, f.outside_port) {
                        return Err(format!("forward port {} not reserved", f.outside_port));
                    }
                    if !held.entry((a, f.proto)).or_default().insert(f.outside_port) {
                        return Err(format!("forward port {} also dynamic", f.outside_port));
                    }
                }
            }
        }
        if statics != want_statics {
            return Err(format!(
                "static mappings {statics:?} != forwards {want_statics:?}"
            ));
        }
        // Free ports are really free: as many marked as held.
        for a in 0..self.pool.len() {
            for proto in [Proto::Icmp, Proto::Tcp, Proto::Udp] {
                let n = held.get(&(a, proto)).map_or(0, |s| s.len()) as u32;
                if self.ports.used(a, proto) != n {
                    return Err(format!(
                        "pool {a} {proto:?}: {} ports marked, {n} held",
                        self.ports.used(a, proto)
                    ));
                }
            }
        }
        Ok(())
    }
}
