//! `[[wireguard]]`: WireGuard tunnels the engine terminates, as written in
//! its TOML, and their translation into [`TunnelConfig`]s. A `[[route]]`
//! with `tunnel = "NAME"` sends its prefix into the tunnel, whose peers'
//! allowed IPs choose the peer.
//!
//! ```toml
//! [[wireguard]]
//! name = "wg0"
//! private_key_file = "/etc/patronus/wg0.key"   # or private_key = "BASE64" (avoid: the file is world-readable)
//! listen_port = 51820
//! address = "192.0.2.1"            # outer source: one of the engine's interface addresses
//! mtu = 1420                       # inner MTU (larger inner packets: ICMP frag-needed / dropped)
//! [[wireguard.peer]]
//! public_key = "BASE64"
//! endpoint = "198.51.100.1:51820"  # optional: learnt from the peer otherwise
//! allowed_ips = ["10.10.2.0/24"]
//! persistent_keepalive = 25        # optional, seconds
//! preshared_key_file = "/etc/patronus/wg0-b.psk"   # optional
//! ```

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;

use base64::Engine as _;
use serde::Deserialize;

use super::{invalid, parse_prefix, ConfigError, EngineConfig};
use crate::wg::{PeerConfig, TunnelConfig, DEFAULT_MTU};
use crate::wg_plan::{config_tunnel_key, PlannedTunnel, WgPlan};

/// `[[wireguard]]`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireguardSection {
    pub name: String,
    pub private_key: Option<String>,
    pub private_key_file: Option<PathBuf>,
    pub listen_port: u16,
    pub address: Ipv4Addr,
    pub mtu: Option<u16>,
    #[serde(default, rename = "peer")]
    pub peers: Vec<WgPeerSection>,
}

/// `[[wireguard.peer]]`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WgPeerSection {
    pub public_key: String,
    pub endpoint: Option<String>,
    #[serde(default)]
    pub allowed_ips: Vec<String>,
    pub persistent_keepalive: Option<u16>,
    pub preshared_key: Option<String>,
    pub preshared_key_file: Option<PathBuf>,
}

// Keys never appear in debug output.
impl std::fmt::Debug for WireguardSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WireguardSection")
            .field("name", &self.name)
            .field("listen_port", &self.listen_port)
            .field("address", &self.address)
            .field("peers", &self.peers.len())
            .finish()
    }
}

impl std::fmt::Debug for WgPeerSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WgPeerSection")
            .field("public_key", &self.public_key)
            .field("endpoint", &self.endpoint)
            .field("allowed_ips", &self.allowed_ips)
            .finish()
    }
}

/// A 32-byte key from base64 text (the text is never quoted in errors).
fn key32(key: &str, text: &str) -> Result<[u8; 32], ConfigError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| invalid(key, "not base64"))?;
    bytes
        .try_into()
        .map_err(|_| invalid(key, "a WireGuard key is 32 bytes (44 base64 characters)"))
}

/// A key given inline or in a file.
fn key_from(
    key: &str,
    inline: &Option<String>,
    file: &Option<PathBuf>,
) -> Result<Option<[u8; 32]>, ConfigError> {
    match (inline, file) {
        (Some(_), Some(_)) => Err(invalid(key, "give the key inline or in a file, not both")),
        (Some(t), None) => key32(key, t).map(Some),
        (None, Some(f)) => {
            let t = std::fs::read_to_string(f)
                .map_err(|e| invalid(format!("{key}_file"), format!("{}: {e}", f.display())))?;
            key32(&format!("{key}_file"), &t).map(Some)
        }
        (None, None) => Ok(None),
    }
}

impl WireguardSection {
    /// The tunnel as the data path takes it; errors name the key (of
    /// `wireguard[i]`).
    pub fn to_tunnel_config(&self, i: usize) -> Result<TunnelConfig, ConfigError> {
        let k = |s: &str| format!("wireguard[{i}].{s}");
        let private_key = key_from(&k("private_key"), &self.private_key, &self.private_key_file)?
            .ok_or_else(|| {
            invalid(
                k("private_key"),
                "missing (private_key_file or private_key)",
            )
        })?;
        let mut peers = Vec::with_capacity(self.peers.len());
        for (j, p) in self.peers.iter().enumerate() {
            let pk = |s: &str| format!("wireguard[{i}].peer[{j}].{s}");
            let endpoint = match &p.endpoint {
                None => None,
                Some(e) => Some(
                    e.parse::<SocketAddrV4>()
                        .map_err(|_| invalid(pk("endpoint"), format!("{e:?} is not ADDR:PORT")))?,
                ),
            };
            let mut allowed = Vec::with_capacity(p.allowed_ips.len());
            for a in &p.allowed_ips {
                allowed.push(parse_prefix(a, true).map_err(|m| invalid(pk("allowed_ips"), m))?);
            }
            peers.push(PeerConfig {
                public_key: key32(&pk("public_key"), &p.public_key)?,
                endpoint,
                allowed_ips: allowed,
                persistent_keepalive_secs: p.persistent_keepalive.unwrap_or(0),
                preshared_key: key_from(
                    &pk("preshared_key"),
                    &p.preshared_key,
                    &p.preshared_key_file,
                )?,
            });
        }
        let cfg = TunnelConfig {
            private_key,
            listen_port: self.listen_port,
            local_addr: self.address,
            mtu: self.mtu.unwrap_or(DEFAULT_MTU),
            peers,
            peer_slots: Vec::new(),
        };
        // The library's own checks (duplicate peers, overlapping allowed IPs).
        crate::wg::Tunnel::new(&cfg, 0, 1, 0).map_err(|e| invalid(k("peer"), e.to_string()))?;
        Ok(cfg)
    }
}

/// Checks every `[[wireguard]]` and the routes into them.
pub(super) fn validate(cfg: &EngineConfig) -> Result<(), ConfigError> {
    let mut names = std::collections::HashSet::new();
    let mut ports = std::collections::HashSet::new();
    for (i, w) in cfg.wireguard.iter().enumerate() {
        let k = |s: &str| format!("wireguard[{i}].{s}");
        if w.name.is_empty() || w.name.len() > 15 {
            return Err(invalid(k("name"), "1 to 15 characters"));
        }
        if !names.insert(w.name.as_str()) {
            return Err(invalid(k("name"), format!("{:?} is used twice", w.name)));
        }
        if w.listen_port == 0 || !ports.insert(w.listen_port) {
            return Err(invalid(k("listen_port"), "must be non-zero and unique"));
        }
        let ours = cfg
            .interfaces
            .iter()
            .any(|f| parse_prefix(&f.address, false).is_ok_and(|(a, _)| a == w.address));
        if !ours {
            return Err(invalid(
                k("address"),
                format!("{} is not an [[interface]] address", w.address),
            ));
        }
        if let Some(m) = w.mtu {
            if !(576..=9000).contains(&m) {
                return Err(invalid(k("mtu"), "must be 576..=9000"));
            }
        }
        w.to_tunnel_config(i)?;
    }
    for (i, r) in cfg.routes.iter().enumerate() {
        if let Some(t) = &r.tunnel {
            if r.via.is_some() || r.blackhole {
                return Err(invalid(
                    format!("route[{i}].tunnel"),
                    "excludes via and blackhole",
                ));
            }
            if !cfg.wireguard.iter().any(|w| &w.name == t) {
                return Err(invalid(
                    format!("route[{i}].tunnel"),
                    format!("no [[wireguard]] {t:?}"),
                ));
            }
        }
    }
    Ok(())
}

/// Index of the tunnel named `name`.
pub fn tunnel_index(cfg: &EngineConfig, name: &str) -> Option<u16> {
    cfg.wireguard
        .iter()
        .position(|w| w.name == name)
        .map(|i| i as u16)
}

/// The tunnels of `cfg` as a plan for `workers` workers (no pushed
/// tunnels yet): keys [`crate::wg_plan::config_tunnel_key`], listening on
/// their configured address.
pub fn wg_plan(cfg: &EngineConfig, workers: usize) -> Result<WgPlan, ConfigError> {
    Ok(WgPlan::new(config_tunnels(cfg)?, workers))
}

/// The `[[wireguard]]` tunnels as planned tunnels.
pub fn config_tunnels(cfg: &EngineConfig) -> Result<Vec<PlannedTunnel>, ConfigError> {
    cfg.wireguard
        .iter()
        .enumerate()
        .map(|(i, w)| {
            Ok(PlannedTunnel {
                key: config_tunnel_key(i as u16),
                name: w.name.clone(),
                config: w.to_tunnel_config(i)?,
                listen_addr: Some(u32::from(w.address)),
            })
        })
        .collect()
}
