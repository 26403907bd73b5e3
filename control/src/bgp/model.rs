//! BGP desired state as the API sees it: request bodies (`*Spec`,
//! `NeighborPatch`, strict serde), their validation on their own (errors
//! name the field), the validated forms the store keeps (`BgpGlobal`,
//! `NeighborDef`, policies as `PolicyConfig`, networks as `Prefix`) and
//! [`BgpDesired`], the whole of it as the speaker gets it. Checks against
//! stored state (duplicates, policies that exist, policies in use) live in
//! the store.

use std::net::{IpAddr, Ipv4Addr};

use patronus_bgp::policy::PolicyConfig;
use patronus_bgp::types::{Afi, Prefix};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// The BGP port (RFC 4271 section 8.2.1).
pub const DEFAULT_LISTEN_PORT: u16 = 179;
/// The 2-octet stand-in for 4-octet ASNs (RFC 6793): never a real AS.
pub const AS_TRANS: u32 = 23456;
/// Hold time proposed when none is given (RFC 4271 section 10 suggests 90).
pub const DEFAULT_HOLD_TIME_SECS: u16 = 90;
/// Shortest non-zero hold time (RFC 4271 section 4.2).
pub const MIN_HOLD_TIME_SECS: u16 = 3;
/// ConnectRetryTimer when none is given (RFC 4271 section 10 suggests 120).
pub const DEFAULT_CONNECT_RETRY_SECS: u16 = 120;
/// Graceful restart time announced when none is given.
pub const DEFAULT_RESTART_TIME_SECS: u16 = 120;
/// The restart time is a 12-bit field of the capability (RFC 4724 section 3).
pub const MAX_RESTART_TIME_SECS: u16 = 4095;
/// Longest neighbor description.
pub const MAX_DESCRIPTION_LEN: usize = 80;
/// Longest policy name (that of `patronus_bgp::policy`).
pub const MAX_POLICY_NAME_LEN: usize = 64;
/// Most neighbors, policies and originated networks the store keeps.
pub const MAX_NEIGHBORS: usize = 1024;
pub const MAX_POLICIES: usize = 4096;
pub const MAX_NETWORKS: usize = 65536;

/// Body of `PUT /api/v1/bgp`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalSpec {
    /// The local AS (4-octet).
    pub asn: u32,
    pub router_id: String,
    /// Default 179.
    #[serde(default)]
    pub listen_port: Option<u16>,
    /// Default true.
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// The validated global settings, as stored and returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BgpGlobal {
    pub asn: u32,
    pub router_id: Ipv4Addr,
    pub listen_port: u16,
    /// False: no session runs, nothing is listened on.
    pub enabled: bool,
}

/// An address family the session carries (unicast only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Family {
    #[serde(rename = "ipv4-unicast")]
    Ipv4Unicast,
    #[serde(rename = "ipv6-unicast")]
    Ipv6Unicast,
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::Ipv4Unicast => "ipv4-unicast",
            Family::Ipv6Unicast => "ipv6-unicast",
        }
    }

    pub fn afi(self) -> Afi {
        match self {
            Family::Ipv4Unicast => Afi::Ipv4,
            Family::Ipv6Unicast => Afi::Ipv6,
        }
    }

    /// The family of `address`'s own kind.
    pub fn of(address: IpAddr) -> Family {
        match address {
            IpAddr::V4(_) => Family::Ipv4Unicast,
            IpAddr::V6(_) => Family::Ipv6Unicast,
        }
    }
}

/// Body of `POST /api/v1/bgp/neighbors`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NeighborSpec {
    pub address: String,
    pub remote_as: u32,
    #[serde(default)]
    pub description: Option<String>,
    /// Source address of the session; default: the kernel's choice.
    #[serde(default)]
    pub local_address: Option<String>,
    /// 0 (no keepalives) or 3..=65535; default 90.
    #[serde(default)]
    pub hold_time_secs: Option<u16>,
    /// Default 120.
    #[serde(default)]
    pub connect_retry_secs: Option<u16>,
    /// Only wait for the peer to connect; default false.
    #[serde(default)]
    pub passive: Option<bool>,
    /// Default: the family of `address`.
    #[serde(default)]
    pub families: Option<Vec<Family>>,
    /// Announce graceful restart and act as its helper; default false.
    #[serde(default)]
    pub graceful_restart: Option<bool>,
    /// 0..=4095; default 120.
    #[serde(default)]
    pub restart_time_secs: Option<u16>,
    #[serde(default)]
    pub import_policy: Option<String>,
    #[serde(default)]
    pub export_policy: Option<String>,
    /// Default true.
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// `Some(None)` for an explicit JSON `null` (clears the field), `None`
/// when the field is absent (keeps it).
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> std::result::Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Body of `PATCH /api/v1/bgp/neighbors/{address}`: absent fields stay;
/// `null` clears `description`, `local_address` and the policies. The
/// address cannot change (delete and add instead).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NeighborPatch {
    #[serde(default)]
    pub remote_as: Option<u32>,
    #[serde(default, deserialize_with = "nullable")]
    pub description: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub local_address: Option<Option<String>>,
    #[serde(default)]
    pub hold_time_secs: Option<u16>,
    #[serde(default)]
    pub connect_retry_secs: Option<u16>,
    #[serde(default)]
    pub passive: Option<bool>,
    #[serde(default)]
    pub families: Option<Vec<Family>>,
    #[serde(default)]
    pub graceful_restart: Option<bool>,
    #[serde(default)]
    pub restart_time_secs: Option<u16>,
    #[serde(default, deserialize_with = "nullable")]
    pub import_policy: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub export_policy: Option<Option<String>>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// A validated neighbor, as stored and returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NeighborDef {
    pub address: IpAddr,
    pub remote_as: u32,
    pub description: Option<String>,
    pub local_address: Option<IpAddr>,
    pub hold_time_secs: u16,
    pub connect_retry_secs: u16,
    pub passive: bool,
    /// Sorted, without duplicates, never empty.
    pub families: Vec<Family>,
    pub graceful_restart: bool,
    pub restart_time_secs: u16,
    pub import_policy: Option<String>,
    pub export_policy: Option<String>,
    pub enabled: bool,
}

impl NeighborDef {
    /// True when the session is eBGP (the peer's AS is not `local_as`).
    pub fn is_ebgp(&self, local_as: u32) -> bool {
        self.remote_as != local_as
    }

    /// The request that would create this neighbor (a patch applies to it).
    fn to_spec(&self) -> NeighborSpec {
        NeighborSpec {
            address: self.address.to_string(),
            remote_as: self.remote_as,
            description: self.description.clone(),
            local_address: self.local_address.map(|a| a.to_string()),
            hold_time_secs: Some(self.hold_time_secs),
            connect_retry_secs: Some(self.connect_retry_secs),
            passive: Some(self.passive),
            families: Some(self.families.clone()),
            graceful_restart: Some(self.graceful_restart),
            restart_time_secs: Some(self.restart_time_secs),
            import_policy: self.import_policy.clone(),
            export_policy: self.export_policy.clone(),
            enabled: Some(self.enabled),
        }
    }
}

/// A stored neighbor with the local AS it is judged against (`None`: the
/// global settings are not set yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbor {
    pub def: NeighborDef,
    pub local_as: Option<u32>,
}

impl Neighbor {
    /// eBGP or iBGP; `None` while the local AS is unknown.
    pub fn ebgp(&self) -> Option<bool> {
        self.local_as.map(|asn| self.def.is_ebgp(asn))
    }

    /// What the operator should know: RFC 8212's default deny for an eBGP
    /// neighbor without a policy, and a missing local AS.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        match self.ebgp() {
            None => w.push(
                "the BGP global settings (asn, router_id) are not set: no session starts".into(),
            ),
            Some(false) => {}
            Some(true) => {
                if self.def.import_policy.is_none() {
                    w.push(
                        "eBGP neighbor without import_policy: RFC 8212 will deny every route \
                         received from it"
                            .into(),
                    );
                }
                if self.def.export_policy.is_none() {
                    w.push(
                        "eBGP neighbor without export_policy: RFC 8212 will deny every route \
                         advertised to it"
                            .into(),
                    );
                }
            }
        }
        w
    }
}

/// Body of `POST /api/v1/bgp/networks`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    pub prefix: String,
}

/// An originated network, as returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Network {
    #[serde(serialize_with = "display")]
    pub prefix: Prefix,
}

/// Serializes a value as its `Display` text.
pub fn display<T: std::fmt::Display, S: Serializer>(
    v: &T,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// Everything the speaker runs from: published by the store actor at
/// start and after every BGP change (see `StoreHandle::subscribe_bgp`).
/// Stored policies passed [`PolicyConfig::validate`] when they were put,
/// so compiling them again succeeds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BgpDesired {
    /// `None`: BGP not configured (no speaker runs).
    pub global: Option<BgpGlobal>,
    /// By address.
    pub neighbors: Vec<NeighborDef>,
    /// By name; every name a neighbor refers to is here.
    pub policies: Vec<PolicyConfig>,
    /// Sorted.
    pub networks: Vec<Prefix>,
}

impl BgpDesired {
    pub fn policy(&self, name: &str) -> Option<&PolicyConfig> {
        self.policies.iter().find(|p| p.name == name)
    }
}

fn asn(field: &str, v: u32) -> Result<u32> {
    match v {
        0 => Err(Error::invalid(field, "AS 0 is reserved (RFC 7607)")),
        AS_TRANS => Err(Error::invalid(
            field,
            "AS 23456 is AS_TRANS (RFC 6793), not a real AS",
        )),
        _ => Ok(v),
    }
}

impl GlobalSpec {
    /// Errors name `asn`, `router_id`, `listen_port`.
    pub fn validate(&self) -> Result<BgpGlobal> {
        let router_id: Ipv4Addr = self.router_id.parse().map_err(|_| {
            Error::invalid(
                "router_id",
                format!("{:?} is not an IPv4 address", self.router_id),
            )
        })?;
        if router_id.is_unspecified() {
            return Err(Error::invalid(
                "router_id",
                "the BGP identifier must not be 0.0.0.0 (RFC 6286)",
            ));
        }
        let listen_port = self.listen_port.unwrap_or(DEFAULT_LISTEN_PORT);
        if listen_port == 0 {
            return Err(Error::invalid("listen_port", "port 0 is not a port"));
        }
        Ok(BgpGlobal {
            asn: asn("asn", self.asn)?,
            router_id,
            listen_port,
            enabled: self.enabled.unwrap_or(true),
        })
    }
}

/// Parses a peer or local address: unicast, not link-local (a link-local
/// peer would need an interface scope, which is not supported).
pub fn parse_peer_address(field: &str, text: &str) -> Result<IpAddr> {
    let a: IpAddr = text
        .parse()
        .map_err(|_| Error::invalid(field, format!("{text:?} is not an IP address")))?;
    let bad = match a {
        IpAddr::V4(v4) => {
            (v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast()).then_some("unicast")
        }
        IpAddr::V6(v6) => {
            if v6.is_unspecified() || v6.is_multicast() {
                Some("unicast")
            } else if v6.segments()[0] & 0xffc0 == 0xfe80 {
                Some("global (link-local peers are not supported)")
            } else {
                None
            }
        }
    };
    match bad {
        Some(what) => Err(Error::invalid(
            field,
            format!("{a} is not a {what} address"),
        )),
        None => Ok(a),
    }
}

/// Checks a policy name: 1..=64 of `A-Z a-z 0-9 . _ -`.
pub fn validate_policy_name(field: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_POLICY_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!(
                "{name:?} is not a valid policy name (1..={MAX_POLICY_NAME_LEN} of A-Z a-z 0-9 . _ -)"
            ),
        ))
    }
}

fn description(text: Option<&str>) -> Result<Option<String>> {
    let Some(t) = text else { return Ok(None) };
    if t.chars().count() > MAX_DESCRIPTION_LEN {
        return Err(Error::invalid(
            "description",
            format!("longer than {MAX_DESCRIPTION_LEN} characters"),
        ));
    }
    if t.chars().any(char::is_control) {
        return Err(Error::invalid(
            "description",
            "control characters are not allowed",
        ));
    }
    Ok((!t.is_empty()).then(|| t.to_owned()))
}

fn families(list: Option<&[Family]>, address: IpAddr) -> Result<Vec<Family>> {
    let Some(list) = list else {
        return Ok(vec![Family::of(address)]);
    };
    if list.is_empty() {
        return Err(Error::invalid(
            "families",
            "give at least one of ipv4-unicast, ipv6-unicast",
        ));
    }
    for (i, f) in list.iter().enumerate() {
        if let Some(j) = list[..i].iter().position(|o| o == f) {
            return Err(Error::invalid(
                format!("families[{i}]"),
                format!("{} is also families[{j}]", f.name()),
            ));
        }
    }
    let mut out = list.to_vec();
    out.sort();
    Ok(out)
}

impl NeighborSpec {
    /// Errors name the field (`address`, `hold_time_secs`, `families[1]`, ...).
    pub fn validate(&self) -> Result<NeighborDef> {
        let address = parse_peer_address("address", &self.address)?;
        let local_address = self
            .local_address
            .as_deref()
            .map(|t| parse_peer_address("local_address", t))
            .transpose()?;
        if let Some(l) = local_address {
            if l.is_ipv4() != address.is_ipv4() {
                return Err(Error::invalid(
                    "local_address",
                    format!("{l} is not of the same family as the neighbor's address {address}"),
                ));
            }
            if l == address {
                return Err(Error::invalid(
                    "local_address",
                    "the neighbor's own address cannot be ours",
                ));
            }
        }
        let hold_time_secs = self.hold_time_secs.unwrap_or(DEFAULT_HOLD_TIME_SECS);
        if (1..MIN_HOLD_TIME_SECS).contains(&hold_time_secs) {
            return Err(Error::invalid(
                "hold_time_secs",
                format!(
                    "{hold_time_secs} is not 0 or in {MIN_HOLD_TIME_SECS}..=65535 (RFC 4271 4.2)"
                ),
            ));
        }
        let connect_retry_secs = self
            .connect_retry_secs
            .unwrap_or(DEFAULT_CONNECT_RETRY_SECS);
        if connect_retry_secs == 0 {
            return Err(Error::invalid(
                "connect_retry_secs",
                "0 is not in 1..=65535",
            ));
        }
        let restart_time_secs = self.restart_time_secs.unwrap_or(DEFAULT_RESTART_TIME_SECS);
        if restart_time_secs > MAX_RESTART_TIME_SECS {
            return Err(Error::invalid(
                "restart_time_secs",
                format!(
                    "{restart_time_secs} is not in 0..={MAX_RESTART_TIME_SECS} (a 12-bit field, RFC 4724)"
                ),
            ));
        }
        for (field, name) in [
            ("import_policy", &self.import_policy),
            ("export_policy", &self.export_policy),
        ] {
            if let Some(n) = name {
                validate_policy_name(field, n)?;
            }
        }
        Ok(NeighborDef {
            address,
            remote_as: asn("remote_as", self.remote_as)?,
            description: description(self.description.as_deref())?,
            local_address,
            hold_time_secs,
            connect_retry_secs,
            passive: self.passive.unwrap_or(false),
            families: families(self.families.as_deref(), address)?,
            graceful_restart: self.graceful_restart.unwrap_or(false),
            restart_time_secs,
            import_policy: self.import_policy.clone(),
            export_policy: self.export_policy.clone(),
            enabled: self.enabled.unwrap_or(true),
        })
    }
}

impl NeighborPatch {
    /// `current` with this patch applied, validated as a whole.
    pub fn apply(&self, current: &NeighborDef) -> Result<NeighborDef> {
        let mut s = current.to_spec();
        if let Some(v) = self.remote_as {
            s.remote_as = v;
        }
        if let Some(v) = &self.description {
            s.description = v.clone();
        }
        if let Some(v) = &self.local_address {
            s.local_address = v.clone();
        }
        if let Some(v) = self.hold_time_secs {
            s.hold_time_secs = Some(v);
        }
        if let Some(v) = self.connect_retry_secs {
            s.connect_retry_secs = Some(v);
        }
        if let Some(v) = self.passive {
            s.passive = Some(v);
        }
        if let Some(v) = &self.families {
            s.families = Some(v.clone());
        }
        if let Some(v) = self.graceful_restart {
            s.graceful_restart = Some(v);
        }
        if let Some(v) = self.restart_time_secs {
            s.restart_time_secs = Some(v);
        }
        if let Some(v) = &self.import_policy {
            s.import_policy = v.clone();
        }
        if let Some(v) = &self.export_policy {
            s.export_policy = v.clone();
        }
        if let Some(v) = self.enabled {
            s.enabled = Some(v);
        }
        s.validate()
    }
}

/// Parses `ADDRESS/LEN` (IPv4 or IPv6) with no host bits set.
pub fn parse_prefix(field: &str, text: &str) -> Result<Prefix> {
    let bad = || Error::invalid(field, format!("{text:?} is not ADDRESS/LENGTH"));
    let (a, l) = text.split_once('/').ok_or_else(bad)?;
    let addr: IpAddr = a.parse().map_err(|_| bad())?;
    if l.is_empty() || !l.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let len: u8 = l.parse().map_err(|_| bad())?;
    let p = Prefix::new(addr, len).map_err(|e| Error::invalid(field, e.to_string()))?;
    if p.addr() != addr {
        return Err(Error::invalid(
            field,
            format!("{text} has host bits set (did you mean {p}?)"),
        ));
    }
    Ok(p)
}

impl NetworkSpec {
    pub fn validate(&self) -> Result<Prefix> {
        parse_prefix("prefix", &self.prefix)
    }
}

/// The policy put as `name` (the path's): its `name` must be that (or is
/// taken from the path when absent in the body, see the API), and it must
/// compile. Returns the canonical form (as `Policy::to_config` gives it).
pub fn validate_policy(name: &str, config: &PolicyConfig) -> Result<PolicyConfig> {
    validate_policy_name("name", name)?;
    if config.name != name {
        return Err(Error::invalid(
            "name",
            format!(
                "{:?} differs from the name in the path, {name:?}",
                config.name
            ),
        ));
    }
    let policy = config
        .validate()
        .map_err(|e| Error::invalid(e.field, e.problem.to_string()))?;
    Ok(policy.to_config())
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
