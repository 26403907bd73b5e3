//! WireGuard tunnels and peers as the API sees them: request bodies
//! (`*Spec`, strict serde), their validation on their own (fields named in
//! errors, key text never echoed), validated definitions (`*Def`) and
//! responses. A tunnel response carries its public key, never the private
//! one; a peer response says whether it has a preshared key, never which.
//! Checks against stored state (duplicate names, ports, keys, overlapping
//! allowed IPs) live in the store.

use std::net::SocketAddrV4;

use serde::{Deserialize, Serialize};

use super::keys::{PresharedKey, PrivateKey, PublicKey};
use crate::error::{Error, Result};
use crate::model::Cidr;
use crate::nat::model::parse_endpoint;

/// Longest tunnel name (like a port name: Linux IFNAMSIZ - 1).
pub const MAX_TUNNEL_NAME_LEN: usize = 15;
/// Most allowed-IP prefixes of one peer.
pub const MAX_ALLOWED_IPS: usize = 1024;
/// Most peers of one tunnel.
pub const MAX_PEERS: usize = 4096;

/// Checks a tunnel name: 1..=15 of `A-Z a-z 0-9 - _` (no dots: the name
/// is one dot-separated part of the engine's counter names).
pub fn validate_tunnel_name(field: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_TUNNEL_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!(
                "{name:?} is not a valid tunnel name (1..={MAX_TUNNEL_NAME_LEN} of A-Z a-z 0-9 - _)"
            ),
        ))
    }
}

/// Body of `POST /wg/tunnels`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TunnelSpec {
    pub name: String,
    /// UDP port the engine receives the tunnel's packets on.
    pub listen_port: u16,
    /// Base64 private key, given once; absent: the control process
    /// generates one.
    #[serde(default)]
    pub private_key: Option<String>,
    /// The tunnel's own inner address with its subnet, e.g. `10.99.0.1/24`.
    #[serde(default)]
    pub address: Option<String>,
}

// By hand: the derived Debug would print the private key.
impl std::fmt::Debug for TunnelSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunnelSpec")
            .field("name", &self.name)
            .field("listen_port", &self.listen_port)
            .field(
                "private_key",
                &self.private_key.as_ref().map(|_| "<redacted>"),
            )
            .field("address", &self.address)
            .finish()
    }
}

/// Body of `PUT /wg/tunnels/{tunnel}`: the port and address; a private key
/// replaces the tunnel's (key rotation), absent keeps it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TunnelUpdateSpec {
    pub listen_port: u16,
    #[serde(default)]
    pub private_key: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
}

impl std::fmt::Debug for TunnelUpdateSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunnelUpdateSpec")
            .field("listen_port", &self.listen_port)
            .field(
                "private_key",
                &self.private_key.as_ref().map(|_| "<redacted>"),
            )
            .field("address", &self.address)
            .finish()
    }
}

/// A validated tunnel, not yet stored. `Debug` redacts the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelDef {
    pub name: String,
    pub listen_port: u16,
    pub private_key: PrivateKey,
    pub address: Option<Cidr>,
}

/// A validated tunnel update. `None` key: keep the stored one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelUpdate {
    pub listen_port: u16,
    pub private_key: Option<PrivateKey>,
    pub address: Option<Cidr>,
}

fn listen_port(port: u16) -> Result<u16> {
    if port == 0 {
        return Err(Error::invalid("listen_port", "port 0 is not a port"));
    }
    Ok(port)
}

fn tunnel_address(text: Option<&str>) -> Result<Option<Cidr>> {
    let Some(text) = text else { return Ok(None) };
    let c = Cidr::parse("address", text)?;
    let ip = c.addr;
    if c.len == 0
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_loopback()
    {
        return Err(Error::invalid(
            "address",
            format!("{c} cannot be a tunnel address"),
        ));
    }
    Ok(Some(c))
}

impl TunnelSpec {
    /// Validates the body; generates the private key when none is given.
    pub fn validate(&self) -> Result<TunnelDef> {
        validate_tunnel_name("name", &self.name)?;
        let private_key = match &self.private_key {
            Some(text) => PrivateKey::parse("private_key", text)?,
            None => PrivateKey::generate()?,
        };
        Ok(TunnelDef {
            name: self.name.clone(),
            listen_port: listen_port(self.listen_port)?,
            private_key,
            address: tunnel_address(self.address.as_deref())?,
        })
    }
}

impl TunnelUpdateSpec {
    pub fn validate(&self) -> Result<TunnelUpdate> {
        Ok(TunnelUpdate {
            listen_port: listen_port(self.listen_port)?,
            private_key: self
                .private_key
                .as_deref()
                .map(|t| PrivateKey::parse("private_key", t))
                .transpose()?,
            address: tunnel_address(self.address.as_deref())?,
        })
    }
}

/// A stored tunnel as the API returns it: the public key only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tunnel {
    pub name: String,
    pub listen_port: u16,
    pub public_key: PublicKey,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<Cidr>,
    /// Number of peers.
    pub peers: usize,
}

/// Body of `POST /wg/tunnels/{tunnel}/peers` and of `PUT` on a peer.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerSpec {
    /// The peer's base64 public key; unique in the tunnel.
    pub public_key: String,
    /// `ADDR:PORT` to send to first; absent: wait for the peer to reach us.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Prefixes the peer may send from and that are routed to it; no two
    /// peers of a tunnel overlap.
    #[serde(default)]
    pub allowed_ips: Vec<String>,
    /// Seconds between keepalives (1..=65535); absent or 0: off.
    #[serde(default)]
    pub persistent_keepalive: Option<u16>,
    /// Base64 preshared key (secret; never returned).
    #[serde(default)]
    pub preshared_key: Option<String>,
}

impl std::fmt::Debug for PeerSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerSpec")
            .field("public_key", &self.public_key)
            .field("endpoint", &self.endpoint)
            .field("allowed_ips", &self.allowed_ips)
            .field("persistent_keepalive", &self.persistent_keepalive)
            .field(
                "preshared_key",
                &self.preshared_key.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// A validated peer, not yet stored. `Debug` redacts the preshared key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerDef {
    pub public_key: PublicKey,
    pub endpoint: Option<SocketAddrV4>,
    pub allowed_ips: Vec<Cidr>,
    pub persistent_keepalive: Option<u16>,
    pub preshared_key: Option<PresharedKey>,
}

impl PeerSpec {
    pub fn validate(&self) -> Result<PeerDef> {
        let public_key = PublicKey::parse("public_key", &self.public_key)?;
        let endpoint = self
            .endpoint
            .as_deref()
            .map(|e| parse_endpoint("endpoint", e))
            .transpose()?;
        if self.allowed_ips.len() > MAX_ALLOWED_IPS {
            return Err(Error::invalid(
                "allowed_ips",
                format!("at most {MAX_ALLOWED_IPS} prefixes"),
            ));
        }
        let mut allowed_ips: Vec<Cidr> = Vec::with_capacity(self.allowed_ips.len());
        for (i, text) in self.allowed_ips.iter().enumerate() {
            let field = format!("allowed_ips[{i}]");
            let c = Cidr::parse_prefix(&field, text)?;
            if let Some(other) = allowed_ips.iter().find(|o| o.overlaps(c)) {
                return Err(Error::invalid(
                    field,
                    format!("{c} overlaps {other}, listed before"),
                ));
            }
            allowed_ips.push(c);
        }
        Ok(PeerDef {
            public_key,
            endpoint,
            allowed_ips,
            persistent_keepalive: self.persistent_keepalive.filter(|&s| s != 0),
            preshared_key: self
                .preshared_key
                .as_deref()
                .map(|t| PresharedKey::parse("preshared_key", t))
                .transpose()?,
        })
    }
}

/// A stored peer as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Peer {
    pub id: i64,
    pub tunnel: String,
    pub public_key: PublicKey,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<SocketAddrV4>,
    pub allowed_ips: Vec<Cidr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persistent_keepalive: Option<u16>,
    /// Whether a preshared key is set (the key itself is never returned).
    pub preshared_key: bool,
    /// The engine's counters for this peer, when an engine is attached
    /// and exports them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counters: Option<PeerCounters>,
}

/// A tunnel as the API returns it: the stored tunnel and, when an engine
/// is attached and exports them, its tunnel-level counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TunnelView {
    #[serde(flatten)]
    pub tunnel: Tunnel,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counters: Option<TunnelCounters>,
}

/// Per-peer counters as the engine exports them (see
/// [`super::counters`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PeerCounters {
    /// WireGuard message bytes received and authenticated (UDP payload).
    pub rx_bytes: u64,
    /// WireGuard message bytes sent (UDP payload, every message type).
    pub tx_bytes: u64,
    /// Inner packets delivered (keepalives not included).
    pub rx_packets: u64,
    /// Inner packets encapsulated (keepalives not included).
    pub tx_packets: u64,
    pub handshakes: u64,
    /// Unix seconds of the last completed handshake (0: none yet).
    pub last_handshake_secs: u64,
    /// Drops by reason, every reason of
    /// [`patronus_shm::wg_counters::WG_DROP_REASONS`] (zeros included).
    pub drops: std::collections::BTreeMap<String, u64>,
}

/// A tunnel's counters for what no peer can be charged with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TunnelCounters {
    /// Cookie replies sent to initiators while under load.
    pub cookie_replies_sent: u64,
    /// Drops before a peer was known, by reason (zeros included).
    pub drops: std::collections::BTreeMap<String, u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=";

    fn field_of(e: Error) -> String {
        match e {
            Error::Invalid { field, .. } => field,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    fn peer(allowed: &[&str]) -> PeerSpec {
        PeerSpec {
            public_key: KEY.into(),
            endpoint: Some("192.0.2.1:51820".into()),
            allowed_ips: allowed.iter().map(|s| (*s).into()).collect(),
            persistent_keepalive: Some(0),
            preshared_key: None,
        }
    }

    #[test]
    fn tunnel_validation_generates_a_key_and_names_fields() {
        let spec = |name: &str, port, key: Option<&str>, address: Option<&str>| TunnelSpec {
            name: name.into(),
            listen_port: port,
            private_key: key.map(Into::into),
            address: address.map(Into::into),
        };
        let a = spec("wg0", 51820, None, None).validate().unwrap();
        let b = spec("wg0", 51820, None, None).validate().unwrap();
        assert_ne!(a.private_key, b.private_key, "fresh keys");
        let c = spec("wg0", 51820, None, Some("10.99.0.1/24"))
            .validate()
            .unwrap();
        assert_eq!(c.address.unwrap().to_string(), "10.99.0.1/24");
        for (s, field) in [
            (spec("", 1, None, None), "name"),
            (spec("wg 0", 1, None, None), "name"),
            (spec("wg.0", 1, None, None), "name"),
            (spec("a-very-long-tunnel-name", 1, None, None), "name"),
            (spec("wg0", 0, None, None), "listen_port"),
            (spec("wg0", 1, Some("nope"), None), "private_key"),
            (spec("wg0", 1, None, Some("10.0.0.1")), "address"),
            (spec("wg0", 1, None, Some("127.0.0.1/8")), "address"),
        ] {
            assert_eq!(field_of(s.validate().unwrap_err()), field);
        }
        let text = format!("{:?}", spec("wg0", 1, Some("SECRET"), None));
        assert!(!text.contains("SECRET"), "{text}");
    }

    #[test]
    fn peer_validation_names_fields() {
        let ok = peer(&["10.2.0.0/16", "192.168.1.1/32"]).validate().unwrap();
        assert_eq!(ok.persistent_keepalive, None, "0 is off");
        assert_eq!(ok.allowed_ips.len(), 2);
        assert_eq!(
            field_of(
                peer(&["10.2.0.0/16", "10.2.3.0/24"])
                    .validate()
                    .unwrap_err()
            ),
            "allowed_ips[1]"
        );
        assert_eq!(
            field_of(peer(&["10.2.0.1/16"]).validate().unwrap_err()),
            "allowed_ips[0]"
        );
        let mut p = peer(&[]);
        p.endpoint = Some("192.0.2.1".into());
        assert_eq!(field_of(p.validate().unwrap_err()), "endpoint");
        let mut p = peer(&[]);
        p.public_key = KEY[..43].into();
        assert_eq!(field_of(p.validate().unwrap_err()), "public_key");
        let mut p = peer(&[]);
        p.preshared_key = Some("!".repeat(44));
        assert_eq!(field_of(p.validate().unwrap_err()), "preshared_key");
        let psk = "c2VjcmV0LXByZXNoYXJlZC1rZXktMzItYnl0ZXMhISE=";
        let mut p = peer(&[]);
        p.preshared_key = Some(psk.into());
        let text = format!("{:?} {:?}", p, p.validate().unwrap());
        assert!(text.contains("redacted"), "{text}");
        assert!(!text.contains(&psk[..12]), "{text}");
    }
}
