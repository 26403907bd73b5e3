//! `[nat]`: NAT44 on one outside interface, as written in the engine's TOML,
//! and its translation into each worker's [`NatConfig`] and the plan the
//! workers start with ([`NatSection::to_plan`]; the control process can
//! replace it at run time).
//!
//! ```toml
//! [nat]
//! outside = "wan0"                 # the port of the outside interface
//! outside_vlan = 0                 # optional: its VLAN (0 = untagged)
//! pool = ["198.51.100.1"]
//! filtering = "address-and-port-dependent"   # or "endpoint-independent"
//! max_sessions = 65536             # per worker, preallocated
//! max_sessions_per_host = 4096
//! inbound_refresh = true
//! [nat.timeouts]                   # seconds; RFC 5382 / 4787 / 5508 defaults
//! tcp_established = 7440
//! [[nat.forward]]
//! proto = "tcp"
//! outside = "198.51.100.1:8080"
//! inside = "10.10.0.2:8000"
//! [[nat.one_to_one]]
//! outside = "198.51.100.10"
//! inside = "10.10.0.10"
//! ```

use std::net::{Ipv4Addr, SocketAddrV4};

use serde::Deserialize;

use super::{invalid, ConfigError, EngineConfig};
use crate::nat::{Filtering, NatConfig, OneToOne, PortForward, Proto, Timeouts};
use crate::nat_slot::NatPlan;

/// `[nat]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NatSection {
    /// Name of the `[[port]]` whose interface faces the outside.
    pub outside: String,
    /// VLAN of that interface (0 or absent: untagged).
    #[serde(default)]
    pub outside_vlan: u16,
    pub pool: Vec<Ipv4Addr>,
    #[serde(default)]
    pub filtering: FilteringName,
    pub max_sessions: Option<u32>,
    pub max_sessions_per_host: Option<u32>,
    pub inbound_refresh: Option<bool>,
    #[serde(default)]
    pub timeouts: TimeoutsSection,
    #[serde(default, rename = "forward")]
    pub forwards: Vec<ForwardSection>,
    #[serde(default)]
    pub one_to_one: Vec<OneToOneSection>,
}

/// `filtering`: RFC 4787's names.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum FilteringName {
    /// Any remote endpoint may use a mapping ("full cone").
    EndpointIndependent,
    /// Only the endpoints the inside host sent to (the safe default).
    #[default]
    AddressAndPortDependent,
}

/// `[nat.timeouts]`, seconds; each absent key keeps its RFC default.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TimeoutsSection {
    pub tcp_established: Option<u32>,
    pub tcp_transitory: Option<u32>,
    pub tcp_initial: Option<u32>,
    pub udp: Option<u32>,
    pub icmp_query: Option<u32>,
    pub fragment: Option<u32>,
}

/// `[[nat.forward]]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ForwardSection {
    /// "tcp" or "udp".
    pub proto: String,
    /// "ADDR:PORT" on the outside.
    pub outside: String,
    /// "ADDR:PORT" of the inside server.
    pub inside: String,
}

/// `[[nat.one_to_one]]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OneToOneSection {
    pub outside: Ipv4Addr,
    pub inside: Ipv4Addr,
}

impl NatSection {
    /// Worker `worker`'s view of this section (of `cfg`'s `workers`):
    /// errors name the key.
    pub fn to_nat_config(
        &self,
        cfg: &EngineConfig,
        workers: u16,
        worker: u16,
    ) -> Result<NatConfig, ConfigError> {
        let outside_iface = cfg
            .interfaces
            .iter()
            .position(|i| i.port == self.outside && i.vlan.unwrap_or(0) == self.outside_vlan)
            .ok_or_else(|| {
                invalid(
                    "nat.outside",
                    format!(
                        "no [[interface]] on port {:?} with vlan {}",
                        self.outside, self.outside_vlan
                    ),
                )
            })?;
        let d = NatConfig::default();
        let t = Timeouts::default();
        let s = &self.timeouts;
        let mut forwards = Vec::with_capacity(self.forwards.len());
        for (i, f) in self.forwards.iter().enumerate() {
            let key = |k: &str| format!("nat.forward[{i}].{k}");
            let proto = match f.proto.as_str() {
                "tcp" => Proto::Tcp,
                "udp" => Proto::Udp,
                other => return Err(invalid(key("proto"), format!("{other:?}: tcp or udp"))),
            };
            let addr = |k: &str, v: &str| {
                v.parse::<SocketAddrV4>()
                    .map_err(|_| invalid(key(k), format!("{v:?} is not ADDR:PORT")))
            };
            let (o, i) = (addr("outside", &f.outside)?, addr("inside", &f.inside)?);
            forwards.push(PortForward {
                proto,
                outside_addr: *o.ip(),
                outside_port: o.port(),
                inside_addr: *i.ip(),
                inside_port: i.port(),
            });
        }
        let nat = NatConfig {
            outside_iface: outside_iface as u16,
            pool: self.pool.clone(),
            filtering: match self.filtering {
                FilteringName::EndpointIndependent => Filtering::EndpointIndependent,
                FilteringName::AddressAndPortDependent => Filtering::AddressAndPortDependent,
            },
            timeouts: Timeouts {
                tcp_established_secs: s.tcp_established.unwrap_or(t.tcp_established_secs),
                tcp_transitory_secs: s.tcp_transitory.unwrap_or(t.tcp_transitory_secs),
                tcp_initial_secs: s.tcp_initial.unwrap_or(t.tcp_initial_secs),
                udp_secs: s.udp.unwrap_or(t.udp_secs),
                icmp_query_secs: s.icmp_query.unwrap_or(t.icmp_query_secs),
                fragment_secs: s.fragment.unwrap_or(t.fragment_secs),
            },
            inbound_refresh: self.inbound_refresh.unwrap_or(d.inbound_refresh),
            max_sessions_per_host: self
                .max_sessions_per_host
                .unwrap_or(d.max_sessions_per_host),
            max_sessions: self.max_sessions.unwrap_or(d.max_sessions),
            forwards,
            one_to_one: self
                .one_to_one
                .iter()
                .map(|m| OneToOne {
                    outside: m.outside,
                    inside: m.inside,
                })
                .collect(),
            workers,
            worker,
        };
        // NatConfigError's messages already name the `nat.` key.
        nat.validate().map_err(|e| invalid("nat", e.to_string()))?;
        Ok(nat)
    }
}

impl NatSection {
    /// The plan every worker of `cfg` runs: the config (as worker 0; each
    /// worker sets its own index) and the outside port and VLAN.
    pub fn to_plan(&self, cfg: &EngineConfig) -> Result<NatPlan, ConfigError> {
        let config = self.to_nat_config(cfg, cfg.engine.workers as u16, 0)?;
        let outside_port = cfg
            .ports
            .iter()
            .position(|p| p.name == self.outside)
            .ok_or_else(|| invalid("nat.outside", format!("no [[port]] {:?}", self.outside)))?;
        Ok(NatPlan {
            config,
            outside_port: outside_port as u16,
            outside_vlan: self.outside_vlan,
        })
    }
}

/// Checks `[nat]` (when present) as worker 0 of `engine.workers` sees it.
pub(super) fn validate(cfg: &EngineConfig) -> Result<(), ConfigError> {
    if let Some(n) = &cfg.nat {
        n.to_nat_config(cfg, cfg.engine.workers as u16, 0)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
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

    fn parse(nat: &str) -> Result<EngineConfig, ConfigError> {
        EngineConfig::parse(&format!("{BASE}{nat}"))
    }

    #[test]
    fn full_section_becomes_the_workers_config() {
        let cfg = parse(
            r#"
[nat]
outside = "wan0"
pool = ["198.51.100.1", "198.51.100.2"]
filtering = "endpoint-independent"
max_sessions = 1000
max_sessions_per_host = 10
inbound_refresh = false
[nat.timeouts]
udp = 120
[[nat.forward]]
proto = "tcp"
outside = "198.51.100.1:8080"
inside = "10.10.0.2:8000"
[[nat.one_to_one]]
outside = "198.51.100.10"
inside = "10.10.0.10"
"#,
        )
        .unwrap();
        let n = cfg.nat.as_ref().unwrap().to_nat_config(&cfg, 2, 1).unwrap();
        assert_eq!(n.outside_iface, 1);
        assert_eq!(n.pool.len(), 2);
        assert_eq!(n.filtering, Filtering::EndpointIndependent);
        assert_eq!((n.max_sessions, n.max_sessions_per_host), (1000, 10));
        assert!(!n.inbound_refresh);
        assert_eq!(n.timeouts.udp_secs, 120);
        assert_eq!(n.timeouts.tcp_established_secs, 7440);
        assert_eq!((n.workers, n.worker), (2, 1));
        assert_eq!(
            n.forwards,
            vec![PortForward {
                proto: Proto::Tcp,
                outside_addr: "198.51.100.1".parse().unwrap(),
                outside_port: 8080,
                inside_addr: "10.10.0.2".parse().unwrap(),
                inside_port: 8000,
            }]
        );
        assert_eq!(n.one_to_one.len(), 1);
    }

    #[test]
    fn defaults_are_dependent_filtering_and_rfc_timeouts() {
        let cfg = parse("[nat]\noutside = \"wan0\"\npool = [\"198.51.100.1\"]\n").unwrap();
        let n = cfg.nat.as_ref().unwrap().to_nat_config(&cfg, 1, 0).unwrap();
        assert_eq!(n.filtering, Filtering::AddressAndPortDependent);
        assert_eq!(n.timeouts, Timeouts::default());
    }

    #[test]
    fn bad_sections_name_the_key() {
        let cases = [
            ("[nat]\noutside = \"lan9\"\npool = [\"198.51.100.1\"]\n", "nat.outside"),
            ("[nat]\noutside = \"wan0\"\npool = []\n", "nat.pool is empty"),
            (
                "[nat]\noutside = \"wan0\"\npool = [\"198.51.100.1\"]\n[[nat.forward]]\nproto = \"icmp\"\noutside = \"198.51.100.1:1\"\ninside = \"10.10.0.2:1\"\n",
                "nat.forward[0].proto",
            ),
            (
                "[nat]\noutside = \"wan0\"\npool = [\"198.51.100.1\"]\n[[nat.forward]]\nproto = \"tcp\"\noutside = \"198.51.100.1\"\ninside = \"10.10.0.2:1\"\n",
                "nat.forward[0].outside",
            ),
            (
                "[nat]\noutside = \"wan0\"\npool = [\"198.51.100.1\"]\n[nat.timeouts]\nudp = 0\n",
                "nat.timeouts.udp",
            ),
            ("[nat]\noutside = \"wan0\"\npool = [\"198.51.100.1\"]\nfiltering = \"cone\"\n", "filtering"),
            ("[nat]\noutside = \"wan0\"\npool = [\"198.51.100.1\"]\nbogus = 1\n", "bogus"),
        ];
        for (text, want) in cases {
            let err = parse(text).expect_err(text).to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
    }
}
