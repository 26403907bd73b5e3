//! `[lb]`: the engine's own load-balancer configuration (VIPs and their
//! backends), used until the control process pushes one (`lb.bin`).

use std::net::Ipv4Addr;

use serde::Deserialize;

use super::{invalid, ConfigError, EngineConfig};
use crate::lb::maglev::{is_prime, MAX_TABLE_SIZE, SIZE_PER_BACKEND};
use crate::lb::spec::{
    BackendSpec, LbMode, LbSettings, LbSpec, VipSpec, DEFAULT_MAX_FLOWS,
    DEFAULT_TCP_CLOSING_TIMEOUT_SECS, DEFAULT_TCP_TIMEOUT_SECS, DEFAULT_UDP_TIMEOUT_SECS,
};
use crate::wire::ipv4::{PROTO_TCP, PROTO_UDP};

/// `[lb]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LbSection {
    /// Pinned flows per worker.
    pub max_flows: Option<usize>,
    pub tcp_timeout_secs: Option<u32>,
    pub tcp_closing_timeout_secs: Option<u32>,
    pub udp_timeout_secs: Option<u32>,
    #[serde(default, rename = "vip")]
    pub vips: Vec<VipSection>,
}

/// `[[lb.vip]]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VipSection {
    pub address: Ipv4Addr,
    pub port: u16,
    #[serde(default = "tcp")]
    pub protocol: String,
    #[serde(default = "nat")]
    pub mode: String,
    pub table_size: Option<u32>,
    #[serde(default, rename = "backend")]
    pub backends: Vec<BackendSection>,
}

/// `[[lb.vip.backend]]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BackendSection {
    pub address: Ipv4Addr,
    /// Absent: the VIP's port.
    pub port: Option<u16>,
    #[serde(default = "one")]
    pub weight: u16,
}

fn tcp() -> String {
    "tcp".into()
}
fn nat() -> String {
    "nat".into()
}
fn one() -> u16 {
    1
}

impl LbSection {
    /// Checks the section; the error names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_flows == Some(0) || self.max_flows.is_some_and(|m| m > 1 << 26) {
            return Err(invalid("lb.max_flows", "must be 1..=67108864"));
        }
        for (k, v) in [
            ("lb.tcp_timeout_secs", self.tcp_timeout_secs),
            ("lb.tcp_closing_timeout_secs", self.tcp_closing_timeout_secs),
            ("lb.udp_timeout_secs", self.udp_timeout_secs),
        ] {
            if v == Some(0) {
                return Err(invalid(k, "must be positive"));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, v) in self.vips.iter().enumerate() {
            let key = |f: &str| format!("lb.vip[{i}].{f}");
            if v.port == 0 {
                return Err(invalid(key("port"), "must be 1..=65535"));
            }
            let proto = proto_number(&v.protocol)
                .ok_or_else(|| invalid(key("protocol"), "must be \"tcp\" or \"udp\""))?;
            let mode = mode_of(&v.mode)
                .ok_or_else(|| invalid(key("mode"), "must be \"nat\" or \"dsr\""))?;
            if !seen.insert((v.address, v.port, proto)) {
                return Err(invalid(
                    key("address"),
                    "another VIP has this address, port and protocol",
                ));
            }
            if let Some(t) = v.table_size {
                let t = t as usize;
                if !is_prime(t) || t > MAX_TABLE_SIZE {
                    return Err(invalid(key("table_size"), "must be a prime up to 16777216"));
                }
                if t <= SIZE_PER_BACKEND * v.backends.len() {
                    return Err(invalid(
                        key("table_size"),
                        format!("must exceed {SIZE_PER_BACKEND} × the backends"),
                    ));
                }
            }
            let mut eps = std::collections::HashSet::new();
            for (j, b) in v.backends.iter().enumerate() {
                let bkey = |f: &str| format!("lb.vip[{i}].backend[{j}].{f}");
                let port = b.port.unwrap_or(v.port);
                if port == 0 {
                    return Err(invalid(bkey("port"), "must be 1..=65535"));
                }
                if mode == LbMode::Dsr && port != v.port {
                    return Err(invalid(bkey("port"), "a DSR backend uses the VIP's port"));
                }
                if !eps.insert((b.address, port)) {
                    return Err(invalid(bkey("address"), "the same backend twice"));
                }
            }
        }
        Ok(())
    }

    /// The spec (validated section): VIP ids are their positions, backend
    /// ids `vip << 16 | position`.
    pub fn to_spec(&self) -> LbSpec {
        LbSpec {
            settings: LbSettings {
                max_flows: self.max_flows.unwrap_or(DEFAULT_MAX_FLOWS),
                tcp_timeout_secs: self.tcp_timeout_secs.unwrap_or(DEFAULT_TCP_TIMEOUT_SECS),
                tcp_closing_timeout_secs: self
                    .tcp_closing_timeout_secs
                    .unwrap_or(DEFAULT_TCP_CLOSING_TIMEOUT_SECS),
                udp_timeout_secs: self.udp_timeout_secs.unwrap_or(DEFAULT_UDP_TIMEOUT_SECS),
            },
            vips: self
                .vips
                .iter()
                .enumerate()
                .map(|(i, v)| VipSpec {
                    id: i as u32 + 1,
                    addr: u32::from(v.address),
                    port: v.port,
                    proto: proto_number(&v.protocol).unwrap_or(PROTO_TCP),
                    mode: mode_of(&v.mode).unwrap_or(LbMode::Nat),
                    table_size: v.table_size.unwrap_or(0),
                    backends: v
                        .backends
                        .iter()
                        .enumerate()
                        .map(|(j, b)| BackendSpec {
                            id: ((i as u32 + 1) << 16) | j as u32,
                            addr: u32::from(b.address),
                            port: b.port.unwrap_or(v.port),
                            weight: b.weight,
                            up: true,
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

fn proto_number(s: &str) -> Option<u8> {
    match s {
        "tcp" => Some(PROTO_TCP),
        "udp" => Some(PROTO_UDP),
        _ => None,
    }
}

fn mode_of(s: &str) -> Option<LbMode> {
    match s {
        "nat" => Some(LbMode::Nat),
        "dsr" => Some(LbMode::Dsr),
        _ => None,
    }
}

/// Validates `[lb]` if present.
pub fn validate(cfg: &EngineConfig) -> Result<(), ConfigError> {
    match &cfg.lb {
        Some(s) => s.validate(),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::EngineConfig;

    const BASE: &str = r#"
[engine]
workers = 1
[[port]]
name = "lan0"
driver = "mem"
"#;

    fn load(extra: &str) -> Result<EngineConfig, String> {
        EngineConfig::parse(&format!("{BASE}{extra}")).map_err(|e| e.to_string())
    }

    #[test]
    fn a_vip_with_backends_parses_into_a_spec() {
        let c = load(
            r#"
[lb]
max_flows = 1000
[[lb.vip]]
address = "10.9.0.100"
port = 80
[[lb.vip.backend]]
address = "10.2.0.11"
port = 8080
weight = 2
[[lb.vip.backend]]
address = "10.2.0.12"
"#,
        )
        .unwrap();
        let spec = c.lb.as_ref().unwrap().to_spec();
        assert_eq!(spec.settings.max_flows, 1000);
        assert_eq!(spec.vips.len(), 1);
        let v = &spec.vips[0];
        assert_eq!((v.port, v.proto), (80, 6));
        assert_eq!(v.backends[0].port, 8080);
        assert_eq!(v.backends[0].weight, 2);
        assert_eq!(v.backends[1].port, 80, "default: the VIP's port");
        assert_ne!(v.backends[0].id, v.backends[1].id);
    }

    #[test]
    fn bad_values_name_their_key() {
        let cases = [
            ("[lb]\nmax_flows = 0\n", "lb.max_flows"),
            ("[[lb.vip]]\naddress = \"10.9.0.1\"\nport = 0\n", "lb.vip[0].port"),
            (
                "[[lb.vip]]\naddress = \"10.9.0.1\"\nport = 80\nprotocol = \"sctp\"\n",
                "lb.vip[0].protocol",
            ),
            (
                "[[lb.vip]]\naddress = \"10.9.0.1\"\nport = 80\nmode = \"tun\"\n",
                "lb.vip[0].mode",
            ),
            (
                "[[lb.vip]]\naddress = \"10.9.0.1\"\nport = 80\ntable_size = 1000\n",
                "lb.vip[0].table_size",
            ),
            (
                "[[lb.vip]]\naddress = \"10.9.0.1\"\nport = 80\nmode = \"dsr\"\n[[lb.vip.backend]]\naddress = \"10.2.0.1\"\nport = 81\n",
                "lb.vip[0].backend[0].port",
            ),
            (
                "[[lb.vip]]\naddress = \"10.9.0.1\"\nport = 80\n[[lb.vip]]\naddress = \"10.9.0.1\"\nport = 80\n",
                "lb.vip[1].address",
            ),
        ];
        for (extra, key) in cases {
            let e = load(extra).unwrap_err();
            assert!(e.contains(key), "{extra}: {e}");
        }
    }
}
