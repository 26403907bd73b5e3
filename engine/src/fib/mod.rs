//! The IPv4 FIB: a DIR-24-8 longest-prefix-match table whose values index a
//! table of next hops (local, connected, via a gateway, ECMP group,
//! blackhole). Built from the configuration plus the routes the control
//! process pushes, shared read-only by every worker through an `Arc`; a
//! private copy takes pushed changes in place ([`Fib::apply`]) before it is
//! published as the next table (see `fib_sync`).

pub mod fib6;
pub mod lpm;
pub mod lpm6;

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use crate::config::{parse_prefix, EngineConfig, InterfaceConfig, ViaConfig};
use lpm::{Dir24_8, LpmError};

/// Where a matching packet goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NextHop {
    /// One of our own addresses, on this interface.
    Local { iface: u16 },
    /// A directed broadcast address of a connected subnet.
    Broadcast { iface: u16 },
    /// A connected subnet: the destination itself is the next hop.
    Connected { iface: u16 },
    /// Through a gateway on a connected subnet.
    Via { iface: u16, gw: u32 },
    /// Several `Via` next hops (indices `first..first+count` of the ECMP
    /// member list); one is chosen by flow hash.
    Ecmp { first: u32, count: u32 },
    /// Drop.
    Blackhole,
    /// Into the WireGuard tunnel with key `tunnel` (see
    /// [`crate::wg_plan::TunnelKey`]: a `[[wireguard]]` or a pushed tunnel).
    Tunnel { tunnel: u32 },
}

/// A route from outside the configuration (the control process).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticRoute {
    /// Network (host order) and length.
    pub prefix: u32,
    pub len: u8,
    pub action: RouteAction,
}

/// What a [`StaticRoute`] does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteAction {
    Blackhole,
    /// Gateways (host order); several = ECMP.
    Via(Vec<u32>),
    /// Into the tunnel with this key (it may not exist yet: the pipeline
    /// drops what it cannot encrypt, never sends it in clear).
    Tunnel(u32),
    /// One of our own addresses, held by interface `iface` (a tunnel's
    /// inner address, on its outer interface).
    Local(u16),
}

/// One change pushed by the control process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PushedChange {
    /// Add the route or replace the pushed route of the same prefix.
    Upsert(StaticRoute),
    /// Remove the pushed route of this prefix (a configured route of the
    /// same prefix comes back).
    Withdraw { prefix: u32, len: u8 },
}

/// Errors building the FIB.
#[derive(Debug, thiserror::Error)]
pub enum FibError {
    #[error("{key}: {msg}")]
    Route { key: String, msg: String },
    #[error("{key}: LPM table: {source}")]
    Lpm {
        key: String,
        #[source]
        source: LpmError,
    },
}

/// The forwarding table.
#[derive(Clone)]
pub struct Fib {
    lpm: Dir24_8,
    nexthops: Vec<NextHop>,
    ecmp_members: Vec<NextHop>,
    /// Index of each next hop in `nexthops` (interning).
    nexthop_index: HashMap<NextHop, u32>,
    /// First member of each ECMP group in `ecmp_members`, so a group that
    /// comes back reuses its slots instead of growing the list.
    ecmp_index: HashMap<Vec<NextHop>, u32>,
    /// Connected subnets (network, length, interface) that resolve pushed
    /// gateways.
    subnets: Vec<(u32, u8, u16)>,
    /// Routes from the configuration (next-hop index), restored when a
    /// pushed route of the same prefix goes away.
    configured: HashMap<(u32, u8), u32>,
    /// The interfaces this table was built on (interface indices in next
    /// hops are positions in it). Workers rebuild their interface state
    /// when a new table comes with a different list (another `Arc`).
    interfaces: Arc<Vec<InterfaceConfig>>,
}

impl std::fmt::Debug for Fib {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fib")
            .field("routes", &self.lpm.len())
            .field("nexthops", &self.nexthops.len())
            .finish()
    }
}

fn mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - len)
    }
}

impl Fib {
    /// An empty table.
    pub fn new(tbl8_groups: u32) -> Self {
        Fib {
            lpm: Dir24_8::new(tbl8_groups),
            nexthops: Vec::new(),
            ecmp_members: Vec::new(),
            nexthop_index: HashMap::new(),
            ecmp_index: HashMap::new(),
            subnets: Vec::new(),
            configured: HashMap::new(),
            interfaces: Arc::new(Vec::new()),
        }
    }

    /// The interfaces this table was built on.
    pub fn interfaces(&self) -> &Arc<Vec<InterfaceConfig>> {
        &self.interfaces
    }

    /// Interned index of a next hop. Next hops are never removed: their
    /// number is bounded by the distinct next hops ever used since the last
    /// full build.
    fn intern(&mut self, nh: NextHop) -> u32 {
        if let Some(&i) = self.nexthop_index.get(&nh) {
            return i;
        }
        self.nexthops.push(nh);
        let i = (self.nexthops.len() - 1) as u32;
        self.nexthop_index.insert(nh, i);
        i
    }

    /// Adds (or replaces) a route.
    pub fn add_route(&mut self, prefix: u32, len: u8, nh: NextHop) -> Result<(), LpmError> {
        let idx = self.intern(nh);
        self.lpm.insert(prefix & mask(len), len, idx)
    }

    /// Adds a route from the configuration (remembered, see `configured`).
    fn add_configured(&mut self, prefix: u32, len: u8, nh: NextHop) -> Result<(), LpmError> {
        let idx = self.intern(nh);
        let prefix = prefix & mask(len);
        self.lpm.insert(prefix, len, idx)?;
        self.configured.insert((prefix, len), idx);
        Ok(())
    }

    /// The interface of the most specific connected subnet holding `gw`.
    fn resolve(&self, gw: u32) -> Option<u16> {
        self.subnets
            .iter()
            .filter(|(net, l, _)| gw & mask(*l) == *net)
            .max_by_key(|(_, l, _)| *l)
            .map(|(_, _, i)| *i)
    }

    /// Applies one pushed change in place. Returns `false` when an upsert
    /// was skipped because a gateway lies on no connected subnet (the
    /// prefix then keeps what the configuration gives it, if anything). On
    /// error the table may be partly changed: the caller discards it.
    pub fn apply(&mut self, change: &PushedChange) -> Result<bool, LpmError> {
        match change {
            PushedChange::Upsert(r) => {
                let p = r.prefix & mask(r.len);
                let members: Vec<NextHop> = match &r.action {
                    RouteAction::Blackhole => vec![NextHop::Blackhole],
                    RouteAction::Tunnel(t) => vec![NextHop::Tunnel { tunnel: *t }],
                    RouteAction::Local(iface) => vec![NextHop::Local { iface: *iface }],
                    RouteAction::Via(gws) => gws
                        .iter()
                        .map_while(|&gw| self.resolve(gw).map(|iface| NextHop::Via { iface, gw }))
                        .collect(),
                };
                let resolved = match &r.action {
                    RouteAction::Blackhole | RouteAction::Tunnel(_) | RouteAction::Local(_) => true,
                    RouteAction::Via(gws) => !gws.is_empty() && members.len() == gws.len(),
                };
                if !resolved {
                    self.withdraw(p, r.len);
                    return Ok(false);
                }
                self.add_ecmp_route(p, r.len, &members)?;
                Ok(true)
            }
            PushedChange::Withdraw { prefix, len } => {
                self.withdraw(*prefix & mask(*len), *len);
                Ok(true)
            }
        }
    }

    /// Removes the pushed route `prefix/len`, restoring a configured one.
    fn withdraw(&mut self, prefix: u32, len: u8) {
        match self.configured.get(&(prefix, len)) {
            Some(&idx) => {
                // Replacing an existing prefix allocates no group: cannot fail.
                let _ = self.lpm.insert(prefix, len, idx);
            }
            None => {
                self.lpm.remove(prefix, len);
            }
        }
    }

    /// Adds an ECMP route over several gateways.
    pub fn add_ecmp_route(
        &mut self,
        prefix: u32,
        len: u8,
        members: &[NextHop],
    ) -> Result<(), LpmError> {
        if members.len() == 1 {
            return self.add_route(prefix, len, members[0]);
        }
        let first = match self.ecmp_index.get(members) {
            Some(&first) => first,
            None => {
                let first = self.ecmp_members.len() as u32;
                self.ecmp_members.extend_from_slice(members);
                self.ecmp_index.insert(members.to_vec(), first);
                first
            }
        };
        self.add_route(
            prefix,
            len,
            NextHop::Ecmp {
                first,
                count: members.len() as u32,
            },
        )
    }

    /// Builds the table from the configuration: connected subnets, our own
    /// addresses, directed broadcasts and the static routes. Interface
    /// indices are positions in `cfg.interfaces`.
    pub fn build(cfg: &EngineConfig) -> Result<Fib, FibError> {
        Self::build_with(cfg, &[]).map(|(fib, _)| fib)
    }

    /// Builds the table from the configuration plus `extra` routes (pushed
    /// by the control process), which replace configured routes of the same
    /// prefix. Extra routes whose gateways lie on no connected subnet are
    /// skipped; their number is returned beside the table.
    pub fn build_with(cfg: &EngineConfig, extra: &[StaticRoute]) -> Result<(Fib, usize), FibError> {
        Self::build_on(cfg, Arc::new(cfg.interfaces.clone()), extra)
    }

    /// [`Fib::build_with`] on the interfaces `interfaces` instead of the
    /// configured ones (validated: see `pushed_ifaces`).
    pub fn build_on(
        cfg: &EngineConfig,
        interfaces: Arc<Vec<InterfaceConfig>>,
        extra: &[StaticRoute],
    ) -> Result<(Fib, usize), FibError> {
        let mut fib = Fib::new(cfg.engine.fib_tbl8_groups);
        let mut subnets: Vec<(u32, u8, u16)> = Vec::new();
        for (i, itf) in interfaces.iter().enumerate() {
            let key = format!("interface[{i}].address");
            let (a, len) = parse_prefix(&itf.address, false).map_err(|msg| FibError::Route {
                key: key.clone(),
                msg,
            })?;
            let a = u32::from(a);
            let iface = i as u16;
            let lpm_err = |source| FibError::Lpm {
                key: key.clone(),
                source,
            };
            fib.add_configured(a & mask(len), len, NextHop::Connected { iface })
                .map_err(lpm_err)?;
            if len < 31 {
                fib.add_configured(a | !mask(len), 32, NextHop::Broadcast { iface })
                    .map_err(lpm_err)?;
            }
            subnets.push((a & mask(len), len, iface));
        }
        // Own addresses last so a /32 always wins over the connected subnet.
        for (i, itf) in interfaces.iter().enumerate() {
            let (a, _) = parse_prefix(&itf.address, false).expect("validated above");
            fib.add_configured(u32::from(a), 32, NextHop::Local { iface: i as u16 })
                .map_err(|source| FibError::Lpm {
                    key: format!("interface[{i}].address"),
                    source,
                })?;
        }
        // With pushed interfaces a configured gateway may lie on no subnet
        // any more: that route is left out (counted), not the whole table.
        let own_interfaces = *interfaces == cfg.interfaces;
        let mut skipped = 0;
        'routes: for (i, r) in cfg.routes.iter().enumerate() {
            let key = format!("route[{i}]");
            let (p, len) = parse_prefix(&r.prefix, true).map_err(|msg| FibError::Route {
                key: format!("{key}.prefix"),
                msg,
            })?;
            let p = u32::from(p);
            let lpm_err = |source| FibError::Lpm {
                key: key.clone(),
                source,
            };
            if r.blackhole {
                fib.add_configured(p, len, NextHop::Blackhole)
                    .map_err(lpm_err)?;
                continue;
            }
            if let Some(t) = &r.tunnel {
                let tunnel = crate::config::tunnel_index(cfg, t)
                    .map(crate::wg_plan::config_tunnel_key)
                    .ok_or_else(|| FibError::Route {
                        key: format!("{key}.tunnel"),
                        msg: format!("no [[wireguard]] {t:?}"),
                    })?;
                fib.add_configured(p, len, NextHop::Tunnel { tunnel })
                    .map_err(lpm_err)?;
                continue;
            }
            let vias: Vec<&String> = match &r.via {
                Some(ViaConfig::One(v)) => vec![v],
                Some(ViaConfig::Many(v)) => v.iter().collect(),
                None => Vec::new(),
            };
            let mut members = Vec::with_capacity(vias.len());
            for v in vias {
                let gw: Ipv4Addr = v.parse().map_err(|_| FibError::Route {
                    key: format!("{key}.via"),
                    msg: format!("{v:?} is not an IPv4 address"),
                })?;
                let gw = u32::from(gw);
                // The most specific connected subnet holding the gateway.
                let iface = subnets
                    .iter()
                    .filter(|(net, l, _)| gw & mask(*l) == *net)
                    .max_by_key(|(_, l, _)| *l)
                    .map(|(_, _, i)| *i);
                if iface.is_none() && !own_interfaces {
                    skipped += 1;
                    continue 'routes;
                }
                let iface = iface.ok_or_else(|| FibError::Route {
                    key: format!("{key}.via"),
                    msg: format!(
                        "next hop {} is not on a connected subnet",
                        Ipv4Addr::from(gw)
                    ),
                })?;
                members.push(NextHop::Via { iface, gw });
            }
            fib.add_ecmp_route(p, len, &members).map_err(lpm_err)?;
            let idx = fib.lpm.get(p, len).expect("just added");
            fib.configured.insert((p & mask(len), len), idx);
        }
        fib.subnets = subnets;
        fib.interfaces = interfaces;
        for (i, r) in extra.iter().enumerate() {
            let applied = fib
                .apply(&PushedChange::Upsert(r.clone()))
                .map_err(|source| FibError::Lpm {
                    key: format!("pushed route[{i}]"),
                    source,
                })?;
            if !applied {
                skipped += 1;
            }
        }
        Ok((fib, skipped))
    }

    /// Looks up a batch of destinations (host order): next-hop indices or
    /// [`lpm::LPM_MISS`].
    #[inline]
    pub fn lookup_batch(&self, addrs: &[u32], out: &mut [u32]) {
        self.lpm.lookup_batch(addrs, out)
    }

    /// Looks up one destination.
    #[inline]
    pub fn lookup(&self, addr: u32) -> Option<NextHop> {
        self.lpm.lookup(addr).map(|i| self.nexthops[i as usize])
    }

    /// Routes one destination, with ECMP resolved by `flow_hash`.
    #[inline]
    pub fn route(&self, addr: u32, flow_hash: u32) -> Option<NextHop> {
        self.lpm.lookup(addr).map(|i| self.next_hop(i, flow_hash))
    }

    /// The next hop behind an index from [`Fib::lookup_batch`], with ECMP
    /// resolved by `flow_hash`.
    #[inline]
    pub fn next_hop(&self, idx: u32, flow_hash: u32) -> NextHop {
        match self.nexthops[idx as usize] {
            NextHop::Ecmp { first, count } => {
                // Multiply-shift maps the hash onto 0..count without a division.
                let pick = ((flow_hash as u64 * count as u64) >> 32) as u32;
                self.ecmp_members[(first + pick) as usize]
            }
            nh => nh,
        }
    }

    /// True when the index names an ECMP group (the caller then needs a flow hash).
    #[inline]
    pub fn is_ecmp(&self, idx: u32) -> bool {
        matches!(self.nexthops[idx as usize], NextHop::Ecmp { .. })
    }

    /// Routes in the table.
    pub fn len(&self) -> usize {
        self.lpm.len()
    }

    /// True when there are no routes.
    pub fn is_empty(&self) -> bool {
        self.lpm.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(extra: &str) -> EngineConfig {
        EngineConfig::parse(&format!(
            r#"
[[port]]
name = "a"
driver = "mem"
[[port]]
name = "b"
driver = "mem"
[[interface]]
port = "a"
address = "10.1.0.1/24"
[[interface]]
port = "b"
address = "10.2.0.1/24"
{extra}
"#
        ))
        .unwrap()
    }

    fn ip(s: &str) -> u32 {
        u32::from(s.parse::<Ipv4Addr>().unwrap())
    }

    #[test]
    fn connected_local_broadcast_and_static() {
        let fib = Fib::build(&cfg(
            "[[route]]\nprefix = \"0.0.0.0/0\"\nvia = \"10.2.0.254\"\n[[route]]\nprefix = \"192.0.2.0/24\"\nblackhole = true\n",
        ))
        .unwrap();
        assert_eq!(
            fib.lookup(ip("10.1.0.1")),
            Some(NextHop::Local { iface: 0 })
        );
        assert_eq!(
            fib.lookup(ip("10.1.0.9")),
            Some(NextHop::Connected { iface: 0 })
        );
        assert_eq!(
            fib.lookup(ip("10.1.0.255")),
            Some(NextHop::Broadcast { iface: 0 })
        );
        assert_eq!(
            fib.lookup(ip("8.8.8.8")),
            Some(NextHop::Via {
                iface: 1,
                gw: ip("10.2.0.254")
            })
        );
        assert_eq!(fib.lookup(ip("192.0.2.7")), Some(NextHop::Blackhole));
    }

    #[test]
    fn no_default_means_miss() {
        let fib = Fib::build(&cfg("")).unwrap();
        assert_eq!(fib.lookup(ip("8.8.8.8")), None);
        let mut out = [0u32; 2];
        fib.lookup_batch(&[ip("8.8.8.8"), ip("10.2.0.5")], &mut out);
        assert_eq!(out[0], lpm::LPM_MISS);
        assert_eq!(fib.next_hop(out[1], 0), NextHop::Connected { iface: 1 });
    }

    #[test]
    fn ecmp_spreads_by_hash() {
        let fib = Fib::build(&cfg(
            "[[route]]\nprefix = \"0.0.0.0/0\"\nvia = [\"10.2.0.254\", \"10.2.0.253\", \"10.1.0.254\"]\n",
        ))
        .unwrap();
        let mut out = [0u32; 1];
        fib.lookup_batch(&[ip("8.8.8.8")], &mut out);
        assert!(fib.is_ecmp(out[0]));
        let mut seen = std::collections::HashSet::new();
        for h in 0..3000u32 {
            seen.insert(fib.next_hop(out[0], h.wrapping_mul(0x9E37_79B9)));
        }
        assert_eq!(seen.len(), 3);
        // The same hash always picks the same member.
        assert_eq!(fib.next_hop(out[0], 12345), fib.next_hop(out[0], 12345));
    }
}
