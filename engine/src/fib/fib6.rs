//! The IPv6 FIB: an [`Lpm6`] whose values index a table of next hops
//! (local, connected, via a gateway, ECMP group, blackhole), built whole
//! from the configuration plus the routes the control process pushes
//! (`route6.bin`, also whole each time; a pushed prefix replaces a
//! configured one of the same prefix and length). Workers share it
//! read-only through an `Arc` handed over by a [`Fib6Slot`].
//!
//! Interface indices are positions in
//! [`crate::config::ipv6::ipv6_interfaces`]. Link-local addresses are not
//! in the table: they are scoped to an interface, which the pipeline checks
//! before the lookup.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv6Addr;

use patronus_shm::layout::IFACE_ANY;
use patronus_shm::route6::Route6Entry;
use patronus_shm::RouteKind;

use super::lpm6::{mask6, Lpm6, Lpm6Error, LPM6_MISS};
use crate::config::ipv6::{ipv6_interfaces, Iface6Spec, Route6Action};
use crate::config::EngineConfig;
use crate::plan_slot::PlanSlot;

/// The slot the link thread publishes IPv6 FIBs through.
pub type Fib6Slot = PlanSlot<Fib6>;

/// Where a matching IPv6 packet goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NextHop6 {
    /// One of our own addresses, on this interface.
    Local {
        iface: u16,
    },
    /// A connected subnet: the destination itself is the next hop.
    Connected {
        iface: u16,
    },
    /// Through a gateway (global or link-local) on interface `iface`.
    Via {
        iface: u16,
        gw: u128,
    },
    /// Members `first..first+count` of the ECMP list; one by flow hash.
    Ecmp {
        first: u32,
        count: u32,
    },
    Blackhole,
}

/// Errors building the table.
#[derive(Debug, thiserror::Error)]
pub enum Fib6Error {
    #[error("IPv6 FIB: {0}")]
    Lpm(#[from] Lpm6Error),
}

/// The IPv6 forwarding table of one generation.
#[derive(Clone, Default)]
pub struct Fib6 {
    lpm: Lpm6,
    nexthops: Vec<NextHop6>,
    ecmp: Vec<NextHop6>,
    /// Routes that are neither connected subnets nor our addresses.
    routes: usize,
    /// The `route6.bin` number it holds (0 = configuration only).
    pushed_generation: u64,
    /// Pushed routes skipped (gateway on no connected subnet, unknown port).
    skipped: usize,
}

impl std::fmt::Debug for Fib6 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fib6")
            .field("prefixes", &self.lpm.len())
            .field("routes", &self.routes)
            .field("pushed_generation", &self.pushed_generation)
            .finish()
    }
}

/// The interface of the most specific connected subnet holding `gw`.
fn resolve(ifaces: &[Iface6Spec], gw: Ipv6Addr) -> Option<u16> {
    let g = u128::from(gw);
    ifaces
        .iter()
        .enumerate()
        .flat_map(|(i, s)| s.addrs.iter().map(move |(a, l)| (i, *a, *l)))
        .filter(|(_, a, l)| u128::from(*a) & mask6(*l) == g & mask6(*l))
        .max_by_key(|(_, _, l)| *l)
        .map(|(i, _, _)| i as u16)
}

/// The untagged IPv6 interface of port `port`.
fn port_iface(ifaces: &[Iface6Spec], port: u16) -> Option<u16> {
    ifaces
        .iter()
        .position(|s| s.port == port && s.vlan == 0)
        .map(|i| i as u16)
}

impl Fib6 {
    /// An empty table (IPv6 off).
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds the table of the configuration alone.
    pub fn build(cfg: &EngineConfig) -> Result<Fib6, Fib6Error> {
        Self::build_with(cfg, &[], 0)
    }

    /// Builds the table of the configuration plus `pushed` (route6.bin
    /// number `generation`).
    pub fn build_with(
        cfg: &EngineConfig,
        pushed: &[Route6Entry],
        generation: u64,
    ) -> Result<Fib6, Fib6Error> {
        let ifaces = ipv6_interfaces(cfg);
        let mut fib = Fib6 {
            pushed_generation: generation,
            ..Default::default()
        };
        let mut index: HashMap<NextHop6, u32> = HashMap::new();
        let mut groups: HashMap<Vec<NextHop6>, u32> = HashMap::new();
        // Routes by (prefix, len): configured first, pushed over them.
        let mut routes: BTreeMap<(u128, u8), Vec<NextHop6>> = BTreeMap::new();
        for r in &cfg.ipv6.routes {
            let members = match &r.action {
                Route6Action::Blackhole => vec![NextHop6::Blackhole],
                Route6Action::Via(gws) => {
                    let m: Vec<NextHop6> = gws
                        .iter()
                        .filter_map(|g| {
                            let iface = match &g.port {
                                Some(p) => port_iface(&ifaces, cfg.port_index(p)? as u16)?,
                                None => resolve(&ifaces, g.addr)?,
                            };
                            Some(NextHop6::Via {
                                iface,
                                gw: u128::from(g.addr),
                            })
                        })
                        .collect();
                    if m.len() != gws.len() {
                        continue; // validated: does not happen
                    }
                    m
                }
            };
            routes.insert((u128::from(r.prefix), r.len), members);
        }
        for e in pushed {
            let key = (
                u128::from(e.prefix_addr()) & mask6(e.prefix_len),
                e.prefix_len,
            );
            let members = match e.route_kind() {
                Some(RouteKind::Blackhole) => vec![NextHop6::Blackhole],
                Some(RouteKind::Via) => {
                    let m: Vec<NextHop6> = e
                        .nexthops()
                        .filter_map(|(gw, iface)| {
                            let iface = if iface == IFACE_ANY {
                                resolve(&ifaces, gw)?
                            } else {
                                port_iface(&ifaces, iface)?
                            };
                            Some(NextHop6::Via {
                                iface,
                                gw: u128::from(gw),
                            })
                        })
                        .collect();
                    if m.is_empty() || m.len() != usize::from(e.nexthop_count) {
                        fib.skipped += 1;
                        continue;
                    }
                    m
                }
                _ => {
                    fib.skipped += 1;
                    continue;
                }
            };
            routes.insert(key, members);
        }
        fib.routes = routes.len();
        for ((prefix, len), members) in routes {
            let nh = fib.group(&mut index, &mut groups, &members);
            fib.lpm.insert(prefix, len, nh)?;
        }
        // Connected subnets and our addresses win over routes of the same prefix.
        for (i, s) in ifaces.iter().enumerate() {
            let iface = i as u16;
            for (a, l) in &s.addrs {
                let a = u128::from(*a);
                let c = fib.intern(&mut index, NextHop6::Connected { iface });
                fib.lpm.insert(a & mask6(*l), *l, c)?;
                let local = fib.intern(&mut index, NextHop6::Local { iface });
                fib.lpm.insert(a, 128, local)?;
            }
        }
        Ok(fib)
    }

    fn intern(&mut self, index: &mut HashMap<NextHop6, u32>, nh: NextHop6) -> u32 {
        *index.entry(nh).or_insert_with(|| {
            self.nexthops.push(nh);
            (self.nexthops.len() - 1) as u32
        })
    }

    fn group(
        &mut self,
        index: &mut HashMap<NextHop6, u32>,
        groups: &mut HashMap<Vec<NextHop6>, u32>,
        members: &[NextHop6],
    ) -> u32 {
        if members.len() == 1 {
            return self.intern(index, members[0]);
        }
        let first = match groups.get(members) {
            Some(&f) => f,
            None => {
                let f = self.ecmp.len() as u32;
                self.ecmp.extend_from_slice(members);
                groups.insert(members.to_vec(), f);
                f
            }
        };
        self.intern(
            index,
            NextHop6::Ecmp {
                first,
                count: members.len() as u32,
            },
        )
    }

    /// The next-hop index of the longest match of `addr`, if any.
    #[inline]
    pub fn lookup(&self, addr: Ipv6Addr) -> Option<u32> {
        if self.lpm.is_empty() {
            return None;
        }
        self.lpm.lookup(u128::from(addr))
    }

    /// Looks up several addresses at once (`LPM6_MISS` for none).
    pub fn lookup_batch(&self, addrs: &[u128], out: &mut [u32]) {
        if self.lpm.is_empty() {
            out[..addrs.len()].fill(LPM6_MISS);
            return;
        }
        self.lpm.lookup_batch(addrs, out)
    }

    /// True when next hop `idx` is an ECMP group (the caller then needs a hash).
    #[inline]
    pub fn is_ecmp(&self, idx: u32) -> bool {
        matches!(self.nexthops.get(idx as usize), Some(NextHop6::Ecmp { .. }))
    }

    /// The next hop `idx` stands for; for a group, the member `hash` picks.
    #[inline]
    pub fn next_hop(&self, idx: u32, hash: u32) -> NextHop6 {
        match self.nexthops.get(idx as usize) {
            Some(NextHop6::Ecmp { first, count }) => {
                let k = ((u64::from(hash) * u64::from(*count)) >> 32) as u32;
                self.ecmp
                    .get((first + k) as usize)
                    .copied()
                    .unwrap_or(NextHop6::Blackhole)
            }
            Some(nh) => *nh,
            None => NextHop6::Blackhole,
        }
    }

    /// Longest match and next hop in one call.
    #[inline]
    pub fn route(&self, addr: Ipv6Addr, hash: u32) -> Option<NextHop6> {
        self.lookup(addr).map(|i| self.next_hop(i, hash))
    }

    /// Routes (configured and pushed, not connected subnets or our addresses).
    pub fn routes(&self) -> usize {
        self.routes
    }

    /// Prefixes in the LPM (routes, subnets and our addresses).
    pub fn prefixes(&self) -> usize {
        self.lpm.len()
    }

    /// The `route6.bin` number this table holds (0 = none).
    pub fn pushed_generation(&self) -> u64 {
        self.pushed_generation
    }

    /// Pushed routes that could not be installed.
    pub fn skipped(&self) -> usize {
        self.skipped
    }
}

#[cfg(test)]
mod tests;
