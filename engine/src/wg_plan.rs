//! The WireGuard tunnels every worker runs: those of the configuration
//! file (`[[wireguard]]`) and those the control process pushes (`wg.bin`,
//! followed by [`crate::wg_link`]), handed to the workers through a
//! [`PlanSlot`]. Each worker applies a new plan to the tunnels it runs
//! (`Pipeline::apply_wg_plan`): a tunnel with the same key is
//! reconfigured in place ([`crate::wg::Tunnel::reconfigure`]: unchanged
//! peers keep their sessions), others are built or dropped.
//!
//! Keys: routes name tunnels by [`TunnelKey`]. A pushed tunnel's key is
//! its id in `wg.bin` (the control process never reuses one), so a route
//! pushed before its tunnel, or after it was deleted, names no tunnel and
//! what it carries is dropped, never sent in clear. Configured tunnels take
//! keys from [`CONFIG_TUNNEL_BASE`] up, out of the pushed ids' range.
//!
//! Counters: each plan carries the exported names of its tunnels' counters
//! and, per worker, the array the worker writes them into; the link thread
//! copies those into `counters.shm` (recreated with the new names once
//! every worker runs the plan).

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use crate::plan_slot::PlanSlot;
use crate::wg::TunnelConfig;

/// How routes name a tunnel (see the module docs).
pub type TunnelKey = u32;
/// Keys of configured tunnels: this plus their `[[wireguard]]` index.
pub const CONFIG_TUNNEL_BASE: TunnelKey = 0x8000_0000;

/// The key of `[[wireguard]]` number `i`.
pub fn config_tunnel_key(i: u16) -> TunnelKey {
    CONFIG_TUNNEL_BASE | u32::from(i)
}

/// The key of pushed tunnel `id`; ids at or above [`CONFIG_TUNNEL_BASE`]
/// (never given by the control process) get key 0, which no tunnel has.
pub fn pushed_tunnel_key(id: u32) -> TunnelKey {
    if id < CONFIG_TUNNEL_BASE {
        id
    } else {
        0
    }
}

/// One tunnel of a plan.
#[derive(Clone, Debug)]
pub struct PlannedTunnel {
    pub key: TunnelKey,
    /// As in counter names and logs.
    pub name: String,
    /// Peers in their slots; `local_addr` is the outer source address (an
    /// interface address) used until a peer reaches us on another.
    pub config: TunnelConfig,
    /// The local address datagrams to the tunnel's port must be sent to;
    /// `None`: any of the engine's addresses.
    pub listen_addr: Option<u32>,
}

/// Every tunnel the workers run, with where their counters go.
#[derive(Debug)]
pub struct WgPlan {
    pub tunnels: Vec<PlannedTunnel>,
    /// Exported counter names, in the order workers write them
    /// ([`crate::wg::export::names`] per tunnel, in plan order).
    pub counter_names: Vec<String>,
    /// Per worker, the values of `counter_names`.
    pub counters: Vec<Arc<[AtomicU64]>>,
}

impl WgPlan {
    pub fn new(tunnels: Vec<PlannedTunnel>, workers: usize) -> WgPlan {
        let mut counter_names = Vec::new();
        for t in &tunnels {
            let mut slots: Vec<(u32, [u8; 32])> = (0..t.config.peers.len())
                .map(|i| (t.config.slot_of(i), t.config.peers[i].public_key))
                .collect();
            slots.sort_unstable_by_key(|(s, _)| *s);
            let keys: Vec<[u8; 32]> = slots.into_iter().map(|(_, k)| k).collect();
            counter_names.extend(crate::wg::export::names(&t.name, &keys));
        }
        let counters = (0..workers)
            .map(|_| {
                (0..counter_names.len())
                    .map(|_| AtomicU64::new(0))
                    .collect()
            })
            .collect();
        WgPlan {
            tunnels,
            counter_names,
            counters,
        }
    }

    /// The tunnel with key `key`.
    pub fn tunnel(&self, key: TunnelKey) -> Option<&PlannedTunnel> {
        self.tunnels.iter().find(|t| t.key == key)
    }
}

/// The slot workers take WireGuard plans from.
pub type WgSlot = PlanSlot<WgPlan>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wg::{PeerConfig, DEFAULT_MTU};
    use std::net::Ipv4Addr;

    #[test]
    fn keys_of_configured_and_pushed_tunnels_never_meet() {
        assert_eq!(config_tunnel_key(0), 0x8000_0000);
        assert_eq!(pushed_tunnel_key(7), 7);
        assert_eq!(pushed_tunnel_key(0x8000_0000), 0);
        assert_eq!(pushed_tunnel_key(u32::MAX), 0);
    }

    #[test]
    fn counter_names_follow_slot_order() {
        let peer = |k: u8| PeerConfig {
            public_key: [k; 32],
            ..Default::default()
        };
        let t = PlannedTunnel {
            key: 3,
            name: "wg0".into(),
            config: TunnelConfig {
                private_key: [1; 32],
                listen_port: 51820,
                local_addr: Ipv4Addr::new(192, 0, 2, 1),
                mtu: DEFAULT_MTU,
                peers: vec![peer(7), peer(200)],
                peer_slots: vec![5, 2],
            },
            listen_addr: None,
        };
        let plan = WgPlan::new(vec![t], 2);
        let per = crate::wg::export::PER_PEER;
        // Slot 2 (key 200) comes before slot 5 (key 7).
        assert!(plan.counter_names[0].starts_with("wg.wg0.yMjIyMjI."));
        assert!(plan.counter_names[per].starts_with("wg.wg0.BwcHBwcH."));
        assert_eq!(plan.counters.len(), 2);
        assert_eq!(plan.counters[1].len(), plan.counter_names.len());
        assert!(plan.tunnel(3).is_some() && plan.tunnel(4).is_none());
    }
}
