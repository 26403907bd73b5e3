//! The engine's side of WireGuard through the control plane: turns the
//! WireGuard file the control process pushes (`wg.bin`, see
//! `patronus_shm::wg`) into the workers' [`WgPlan`], next to the tunnels of
//! the configuration file. Driven by the link thread.
//!
//! - Peer slots: each pushed peer (by its id) keeps the slot it was given
//!   for as long as it exists (its session index and owning worker depend
//!   on it); a new peer takes the lowest free slot of its tunnel. So a
//!   push that adds, removes or changes some peers leaves the others'
//!   sessions alone (see `wg::reconfigure`).
//! - Outer address: a pushed tunnel listens on every address of the
//!   engine; what it sends leaves from the address the peer last reached
//!   us on, and before that from the address of the interface the FIB
//!   sends the first peer endpoint through (or the first interface). This
//!   is re-resolved when the interfaces change.
//! - A pushed tunnel that clashes with a configured one (name or port), or
//!   that the data path refuses, is left out with a message; the others
//!   run.

use std::collections::{BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use patronus_shm::wg::WgTables;

use crate::config::{parse_prefix, InterfaceConfig};
use crate::fib::{Fib, NextHop};
use crate::wg::{PeerConfig, Tunnel, TunnelConfig, DEFAULT_MTU};
use crate::wg_plan::{pushed_tunnel_key, PlannedTunnel, WgPlan, WgSlot, CONFIG_TUNNEL_BASE};

/// What one push did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct WgOutcome {
    /// The plan's generation in the slot, if one was published.
    pub published: Option<u64>,
    /// Pushed tunnels running, with their peer counts.
    pub tunnels: Vec<(String, usize)>,
    /// Pushed tunnels left out, and why.
    pub refused: Vec<String>,
}

/// Follows `wg.bin` into the [`WgSlot`].
pub struct WgLink {
    workers: usize,
    configured: Vec<PlannedTunnel>,
    pushed: WgTables,
    /// Tunnel id → (peer id → slot).
    slots: HashMap<u32, HashMap<u32, u32>>,
    slot: Arc<WgSlot>,
}

impl WgLink {
    /// Starts from the configured tunnels (the plan the workers start with).
    pub fn new(configured: Vec<PlannedTunnel>, slot: Arc<WgSlot>) -> WgLink {
        WgLink {
            workers: slot.workers(),
            configured,
            pushed: WgTables::default(),
            slots: HashMap::new(),
            slot,
        }
    }

    /// A new WireGuard file: publishes the plan it makes with `fib`'s
    /// interfaces and routes.
    pub fn pushed(&mut self, tables: WgTables, fib: &Fib) -> WgOutcome {
        self.pushed = tables;
        self.assign_slots();
        self.publish(fib)
    }

    /// The interfaces (or routes) changed: outer addresses are resolved
    /// again. Publishes only when something changed.
    pub fn interfaces_changed(&mut self, fib: &Fib) -> Option<WgOutcome> {
        if self.pushed.tunnels.is_empty() {
            return None;
        }
        let (tunnels, _) = self.plan_tunnels(fib);
        let (_, current) = self.slot.load();
        let same = current.is_some_and(|p| {
            p.tunnels.len() == tunnels.len()
                && p.tunnels
                    .iter()
                    .zip(&tunnels)
                    .all(|(a, b)| a.key == b.key && a.config.local_addr == b.config.local_addr)
        });
        (!same).then(|| self.publish(fib))
    }

    fn publish(&mut self, fib: &Fib) -> WgOutcome {
        let (tunnels, refused) = self.plan_tunnels(fib);
        let pushed: Vec<(String, usize)> = tunnels
            .iter()
            .filter(|t| t.key < CONFIG_TUNNEL_BASE)
            .map(|t| (t.name.clone(), t.config.peers.len()))
            .collect();
        let g = self.slot.publish(Some(WgPlan::new(tunnels, self.workers)));
        WgOutcome {
            published: Some(g),
            tunnels: pushed,
            refused,
        }
    }

    /// Keeps every live peer's slot, frees removed peers' slots, gives new
    /// peers the lowest free slot of their tunnel.
    fn assign_slots(&mut self) {
        let mut next: HashMap<u32, HashMap<u32, u32>> = HashMap::new();
        for t in &self.pushed.tunnels {
            let old = self.slots.get(&t.id);
            let ids: Vec<u32> = self
                .pushed
                .peers
                .iter()
                .filter(|p| p.tunnel_id == t.id)
                .map(|p| p.peer_id)
                .collect();
            let mut map: HashMap<u32, u32> = ids
                .iter()
                .filter_map(|id| Some((*id, *old?.get(id)?)))
                .collect();
            let mut taken: BTreeSet<u32> = map.values().copied().collect();
            let mut free = (0u32..).filter(|s| !taken.contains(s));
            let mut fresh = Vec::new();
            for id in ids.iter().filter(|id| !map.contains_key(id)) {
                let s = free.next().unwrap_or(u32::MAX);
                fresh.push((*id, s));
            }
            for (id, s) in fresh {
                taken.insert(s);
                map.insert(id, s);
            }
            next.insert(t.id, map);
        }
        self.slots = next;
    }

    /// The configured tunnels, then the pushed ones that can run.
    fn plan_tunnels(&self, fib: &Fib) -> (Vec<PlannedTunnel>, Vec<String>) {
        let mut out = self.configured.clone();
        let mut refused = Vec::new();
        for t in &self.pushed.tunnels {
            let name = t.name().to_string();
            match self.pushed_tunnel(t, fib) {
                Ok(pt) => {
                    if let Some(c) = out
                        .iter()
                        .find(|c| c.name == pt.name || c.config.listen_port == t.listen_port)
                    {
                        refused.push(format!(
                            "{name}: name or listen port {} taken by configured tunnel {}",
                            t.listen_port, c.name
                        ));
                        continue;
                    }
                    out.push(pt);
                }
                Err(e) => refused.push(format!("{name}: {e}")),
            }
        }
        (out, refused)
    }

    fn pushed_tunnel(
        &self,
        t: &patronus_shm::wg::WgTunnelEntry,
        fib: &Fib,
    ) -> Result<PlannedTunnel, String> {
        let key = pushed_tunnel_key(t.id);
        if key == 0 {
            return Err(format!("id {} out of range", t.id));
        }
        let slots = self.slots.get(&t.id);
        let mut peers = Vec::new();
        let mut peer_slots = Vec::new();
        for p in self.pushed.peers.iter().filter(|p| p.tunnel_id == t.id) {
            let slot = slots
                .and_then(|s| s.get(&p.peer_id))
                .copied()
                .ok_or("peer without a slot")?;
            peers.push(PeerConfig {
                public_key: p.public_key,
                endpoint: (p.endpoint_addr != 0)
                    .then(|| SocketAddrV4::new(Ipv4Addr::from(p.endpoint_addr), p.endpoint_port)),
                allowed_ips: self
                    .pushed
                    .allowed_ips
                    .iter()
                    .filter(|a| a.peer_id == p.peer_id)
                    .map(|a| (Ipv4Addr::from(a.prefix), a.prefix_len))
                    .collect(),
                persistent_keepalive_secs: p.persistent_keepalive_secs,
                preshared_key: p.psk().copied(),
            });
            peer_slots.push(slot);
        }
        let endpoint = peers.iter().find_map(|p| p.endpoint);
        let local_addr = outer_address(fib, endpoint.map(|e| *e.ip()))
            .ok_or("the engine has no interface address to send from")?;
        let config = TunnelConfig {
            private_key: t.private_key,
            listen_port: t.listen_port,
            local_addr,
            mtu: DEFAULT_MTU,
            peers,
            peer_slots,
        };
        // The data path's own checks (slots, overlapping allowed IPs, keys).
        Tunnel::new(&config, 0, 1, 0).map_err(|e| e.to_string())?;
        Ok(PlannedTunnel {
            key,
            name: t.name().to_string(),
            config,
            listen_addr: None,
        })
    }
}

/// The address to send from toward `to`: that of the interface the FIB
/// routes it through, else the first interface's.
fn outer_address(fib: &Fib, to: Option<Ipv4Addr>) -> Option<Ipv4Addr> {
    let ifaces = fib.interfaces();
    let addr = |i: &InterfaceConfig| parse_prefix(&i.address, false).ok().map(|(a, _)| a);
    let via = to
        .and_then(|dst| fib.route(u32::from(dst), 0))
        .and_then(|nh| match nh {
            NextHop::Connected { iface } | NextHop::Via { iface, .. } => Some(iface),
            _ => None,
        })
        .and_then(|i| ifaces.get(usize::from(i)))
        .and_then(addr);
    via.or_else(|| ifaces.iter().find_map(addr))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EngineConfig;
    use patronus_shm::wg::{WgAllowedIpEntry, WgPeerEntry, WgTunnelEntry};

    const CFG: &str = r#"
[engine]
workers = 2
[[port]]
name = "lan0"
driver = "mem"
[[port]]
name = "wan0"
driver = "mem"
[[interface]]
port = "lan0"
address = "10.10.0.1/24"
[[interface]]
port = "wan0"
address = "198.51.100.1/24"
"#;

    fn fib() -> Fib {
        Fib::build(&EngineConfig::parse(CFG).unwrap()).unwrap()
    }

    fn tunnel(id: u32, name: &str, port: u16) -> WgTunnelEntry {
        let k = [id as u8; 32];
        WgTunnelEntry::new(id, name, port, k, crate::wg::public_key_of(&k)).unwrap()
    }

    fn peer(tunnel_id: u32, peer_id: u32, endpoint: &str) -> WgPeerEntry {
        let (addr, port) = match endpoint.split_once(':') {
            Some((a, p)) => (
                u32::from(a.parse::<Ipv4Addr>().unwrap()),
                p.parse().unwrap(),
            ),
            None => (0, 0),
        };
        WgPeerEntry {
            tunnel_id,
            peer_id,
            endpoint_addr: addr,
            endpoint_port: port,
            persistent_keepalive_secs: 0,
            flags: 0,
            reserved: 0,
            public_key: crate::wg::public_key_of(&[100 + peer_id as u8; 32]),
            preshared_key: [0; 32],
        }
    }

    fn allowed(peer_id: u32, net: [u8; 4], len: u8) -> WgAllowedIpEntry {
        WgAllowedIpEntry {
            peer_id,
            prefix: u32::from(Ipv4Addr::from(net)),
            prefix_len: len,
            reserved: [0; 7],
        }
    }

    fn link() -> WgLink {
        WgLink::new(Vec::new(), Arc::new(WgSlot::new(None, 2)))
    }

    /// Slot of each peer (by public key) of the plan's tunnel `key`.
    fn slots(l: &WgLink, key: u32) -> Vec<(u8, u32)> {
        let plan = l.slot.load().1.unwrap();
        let t = plan.tunnel(key).unwrap();
        let mut out: Vec<(u8, u32)> = (0..t.config.peers.len())
            .map(|i| {
                let pk = t.config.peers[i].public_key;
                let who = (0..=255u8)
                    .find(|b| crate::wg::public_key_of(&[*b; 32]) == pk)
                    .unwrap();
                (who - 100, t.config.slot_of(i))
            })
            .collect();
        out.sort_unstable();
        out
    }

    #[test]
    fn peers_keep_their_slots_across_pushes() {
        let mut l = link();
        let f = fib();
        let mut t = WgTables {
            tunnels: vec![tunnel(4, "wgx", 51900)],
            peers: vec![peer(4, 1, ""), peer(4, 2, ""), peer(4, 3, "")],
            allowed_ips: vec![
                allowed(1, [10, 1, 0, 0], 16),
                allowed(2, [10, 2, 0, 0], 16),
                allowed(3, [10, 3, 0, 0], 16),
            ],
        };
        let o = l.pushed(t.clone(), &f);
        assert_eq!(o.published, Some(2));
        assert_eq!(o.tunnels, vec![("wgx".to_string(), 3)]);
        assert!(o.refused.is_empty());
        assert_eq!(slots(&l, 4), [(1, 0), (2, 1), (3, 2)]);
        // Peer 2 leaves: 1 and 3 stay where they were.
        t.peers.retain(|p| p.peer_id != 2);
        l.pushed(t.clone(), &f);
        assert_eq!(slots(&l, 4), [(1, 0), (3, 2)]);
        // Peer 5 comes: it takes the free slot 1.
        t.peers.push(peer(4, 5, ""));
        t.allowed_ips.push(allowed(5, [10, 5, 0, 0], 16));
        l.pushed(t.clone(), &f);
        assert_eq!(slots(&l, 4), [(1, 0), (3, 2), (5, 1)]);
        let plan = l.slot.load().1.unwrap();
        let per = crate::wg::export::PER_PEER;
        assert_eq!(
            plan.counter_names.len(),
            3 * per + crate::wg::export::PER_TUNNEL
        );
        assert_eq!(plan.counters.len(), 2);
    }

    #[test]
    fn the_outer_address_follows_the_route_to_the_endpoint() {
        let mut l = link();
        let f = fib();
        let t = WgTables {
            tunnels: vec![tunnel(4, "wgx", 51900), tunnel(5, "wgy", 51901)],
            peers: vec![peer(4, 1, "198.51.100.7:51820"), peer(5, 2, "")],
            allowed_ips: vec![allowed(1, [10, 1, 0, 0], 16)],
        };
        l.pushed(t, &f);
        let plan = l.slot.load().1.unwrap();
        let wan = Ipv4Addr::new(198, 51, 100, 1);
        assert_eq!(plan.tunnel(4).unwrap().config.local_addr, wan);
        // No endpoint: the first interface.
        let lan = Ipv4Addr::new(10, 10, 0, 1);
        assert_eq!(plan.tunnel(5).unwrap().config.local_addr, lan);
        assert_eq!(plan.tunnel(4).unwrap().listen_addr, None);
        // Nothing changed: no new plan.
        assert_eq!(l.interfaces_changed(&f), None);
    }

    #[test]
    fn clashing_or_refused_tunnels_are_left_out_and_the_rest_runs() {
        let cfg = EngineConfig::parse(&format!(
            "{CFG}[[wireguard]]\nname = \"wg0\"\nprivate_key = \"{}\"\nlisten_port = 51820\naddress = \"198.51.100.1\"\n",
            base64_key([9; 32])
        ))
        .unwrap();
        let configured = crate::config::config_tunnels(&cfg).unwrap();
        let mut l = WgLink::new(configured, Arc::new(WgSlot::new(None, 1)));
        let f = fib();
        let t = WgTables {
            tunnels: vec![
                tunnel(4, "wg0", 51999),  // name of the configured one
                tunnel(5, "wgp", 51820),  // its port
                tunnel(6, "wgq", 51998),  // overlapping allowed IPs
                tunnel(7, "wgok", 51997), // fine
            ],
            peers: vec![peer(6, 1, ""), peer(6, 2, ""), peer(7, 3, "")],
            allowed_ips: vec![
                allowed(1, [10, 1, 0, 0], 16),
                allowed(2, [10, 1, 0, 0], 16),
                allowed(3, [10, 3, 0, 0], 16),
            ],
        };
        let o = l.pushed(t, &f);
        assert_eq!(o.tunnels, vec![("wgok".to_string(), 1)]);
        assert_eq!(o.refused.len(), 3, "{:?}", o.refused);
        let plan = l.slot.load().1.unwrap();
        let names: Vec<&str> = plan.tunnels.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["wg0", "wgok"]);
    }

    fn base64_key(k: [u8; 32]) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(k)
    }
}
