//! The speaker's settings: the instance (AS, router id, listener,
//! originated networks, connected subnets) and its neighbours.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use patronus_bgp::fsm::{
    AfiSet, LocalGracefulRestart, SessionConfig, CONNECT_RETRY_DEFAULT_SECS, HOLD_TIME_DEFAULT_SECS,
};
use patronus_bgp::policy::Policy;
use patronus_bgp::types::{Afi, Prefix};

/// The well-known BGP port.
pub const BGP_PORT: u16 = 179;

/// The whole speaker.
#[derive(Clone, Debug)]
pub struct SpeakerConfig {
    pub local_as: u32,
    pub router_id: Ipv4Addr,
    /// Where to accept connections from neighbours; `None` = accept none
    /// (outbound sessions and [`super::SpeakerHandle::incoming`] only).
    /// [`SpeakerConfig::new`] sets `[::]:179` (dual stack).
    pub listen: Option<SocketAddr>,
    pub neighbors: Vec<NeighborConfig>,
    /// Networks we originate (announced to every neighbour whose export
    /// policy accepts them; never installed as routes by us).
    pub networks: Vec<Prefix>,
    /// Directly connected subnets: the default next-hop resolver
    /// ([`super::ConnectedResolver`]) deems a next hop reachable (cost 0)
    /// when it lies in one of them, and unreachable otherwise.
    pub connected: Vec<Prefix>,
    /// Most routes in a multipath (ECMP) set (1 = best only).
    pub max_paths: usize,
}

impl SpeakerConfig {
    /// An instance with no neighbours, listening on `[::]:179`.
    pub fn new(local_as: u32, router_id: Ipv4Addr) -> SpeakerConfig {
        SpeakerConfig {
            local_as,
            router_id,
            listen: Some(SocketAddr::new(IpAddr::from([0u16; 8]), BGP_PORT)),
            neighbors: Vec::new(),
            networks: Vec::new(),
            connected: Vec::new(),
            max_paths: 1,
        }
    }

    /// Refuses settings no session could run with, naming the neighbour.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.local_as == 0 {
            return Err(ConfigError::LocalAs);
        }
        for (i, n) in self.neighbors.iter().enumerate() {
            if self.neighbors[..i]
                .iter()
                .any(|m| m.address.to_canonical() == n.address.to_canonical())
            {
                return Err(ConfigError::Duplicate(n.address));
            }
            if n.remote_as == 0 {
                return Err(ConfigError::Neighbor(
                    n.address,
                    "remote_as must not be 0".into(),
                ));
            }
            n.session_config(self)
                .validate()
                .map_err(|e| ConfigError::Neighbor(n.address, e.to_string()))?;
        }
        Ok(())
    }
}

/// Address families a session carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Families {
    pub ipv4_unicast: bool,
    pub ipv6_unicast: bool,
}

impl Families {
    pub const IPV4: Families = Families {
        ipv4_unicast: true,
        ipv6_unicast: false,
    };
    pub const IPV6: Families = Families {
        ipv4_unicast: false,
        ipv6_unicast: true,
    };
    pub const BOTH: Families = Families {
        ipv4_unicast: true,
        ipv6_unicast: true,
    };

    pub fn to_afi_set(self) -> AfiSet {
        let mut s = AfiSet::EMPTY;
        if self.ipv4_unicast {
            s.insert(Afi::Ipv4);
        }
        if self.ipv6_unicast {
            s.insert(Afi::Ipv6);
        }
        s
    }
}

/// One neighbour.
#[derive(Clone, Debug)]
pub struct NeighborConfig {
    pub address: IpAddr,
    /// Its TCP port when we connect out (179).
    pub port: u16,
    pub remote_as: u32,
    /// Source address for outbound connections (and next hop self when
    /// the session's own address is of the other family: see
    /// `next_hop_v4`/`next_hop_v6`).
    pub local_address: Option<IpAddr>,
    pub hold_time: u16,
    pub connect_retry: u32,
    /// Never connect out; wait for the neighbour.
    pub passive: bool,
    pub families: Families,
    /// Offer graceful restart (as helper: the neighbour's routes are kept
    /// across its restarts).
    pub graceful_restart: bool,
    /// Restart Time advertised with graceful restart (RFC 4724 3).
    pub restart_time_secs: u16,
    /// `None`: RFC 8212 — an eBGP neighbour gets and gives nothing, iBGP
    /// everything.
    pub import: Option<Policy>,
    pub export: Option<Policy>,
    /// Next hop self for the family the session's transport is not of
    /// (an IPv6 route over an IPv4 session and vice versa).
    pub next_hop_v4: Option<Ipv4Addr>,
    pub next_hop_v6: Option<std::net::Ipv6Addr>,
}

impl NeighborConfig {
    /// A neighbour with the defaults: active, hold 90 s, retry 120 s, the
    /// family of its address, no graceful restart, no policies.
    pub fn new(address: IpAddr, remote_as: u32) -> NeighborConfig {
        NeighborConfig {
            address,
            port: BGP_PORT,
            remote_as,
            local_address: None,
            hold_time: HOLD_TIME_DEFAULT_SECS,
            connect_retry: CONNECT_RETRY_DEFAULT_SECS,
            passive: false,
            families: if address.is_ipv4() {
                Families::IPV4
            } else {
                Families::IPV6
            },
            graceful_restart: false,
            restart_time_secs: LocalGracefulRestart::default().restart_time_secs,
            import: None,
            export: None,
            next_hop_v4: None,
            next_hop_v6: None,
        }
    }

    pub fn is_ebgp(&self, local_as: u32) -> bool {
        self.remote_as != local_as
    }

    /// The FSM's settings for this neighbour.
    pub fn session_config(&self, speaker: &SpeakerConfig) -> SessionConfig {
        let mut c = SessionConfig::new(speaker.local_as, speaker.router_id, self.remote_as);
        c.hold_time_secs = self.hold_time;
        c.connect_retry_secs = self.connect_retry;
        c.passive = self.passive;
        c.families = self.families.to_afi_set();
        c.graceful_restart = self.graceful_restart.then(|| LocalGracefulRestart {
            restart_time_secs: self.restart_time_secs,
            ..LocalGracefulRestart::default()
        });
        c
    }
}

/// A setting refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("local_as must not be 0")]
    LocalAs,
    #[error("neighbor {0} configured twice")]
    Duplicate(IpAddr),
    #[error("neighbor {0}: {1}")]
    Neighbor(IpAddr, String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graceful_restart_carries_the_neighbors_restart_time() {
        let speaker = SpeakerConfig::new(65001, Ipv4Addr::new(10, 0, 0, 1));
        let mut n = NeighborConfig::new("10.0.0.2".parse().unwrap(), 65002);
        assert!(n.session_config(&speaker).graceful_restart.is_none());
        n.graceful_restart = true;
        n.restart_time_secs = 45;
        let gr = n.session_config(&speaker).graceful_restart.unwrap();
        assert_eq!(gr.restart_time_secs, 45);
        let open = super::super::open::local_open(&n.session_config(&speaker));
        assert!(
            format!("{open:?}").contains("restart_time_secs: 45"),
            "{open:?}"
        );
    }
}
