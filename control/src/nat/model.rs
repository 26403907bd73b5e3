//! NAT44 configuration as the API takes it (`NatSpec`, `ForwardSpec`:
//! strict serde, addresses as text so errors name the field) and as it is
//! stored and returned (`NatSettings`, `Forward`, `NatConfig`). Checks that
//! need no other state live here; whether the outside interface exists is
//! the store's check.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddrV4};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::MAX_PORT_NAME_LEN;

/// Most pool addresses.
pub const MAX_POOL: usize = 4096;
/// Most port forwards.
pub const MAX_FORWARDS: usize = 65_536;
/// Most 1:1 mappings.
pub const MAX_ONE_TO_ONE: usize = 65_536;
/// Longest timeout accepted (a week), seconds.
pub const MAX_TIMEOUT_SECS: u32 = 7 * 24 * 3600;

/// Which inbound packets may use a mapping (RFC 4787 names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Filtering {
    EndpointIndependent,
    #[default]
    AddressAndPortDependent,
}

impl Filtering {
    pub fn name(self) -> &'static str {
        match self {
            Filtering::EndpointIndependent => "endpoint-independent",
            Filtering::AddressAndPortDependent => "address-and-port-dependent",
        }
    }
}

/// Forwarded protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// Idle timeouts in seconds; an absent one is the engine's default (RFC
/// 5382 / 4787 / 5508).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timeouts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_established: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_transitory: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_initial: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udp: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp_query: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fragment: Option<u32>,
}

impl Timeouts {
    /// (name, value) in the engine's order.
    pub fn fields(&self) -> [(&'static str, Option<u32>); 6] {
        [
            ("tcp_established", self.tcp_established),
            ("tcp_transitory", self.tcp_transitory),
            ("tcp_initial", self.tcp_initial),
            ("udp", self.udp),
            ("icmp_query", self.icmp_query),
            ("fragment", self.fragment),
        ]
    }
}

/// The outside interface: a port and optional VLAN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outside {
    pub port: String,
    #[serde(default)]
    pub vlan: Option<u16>,
}

/// A 1:1 mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OneToOne {
    pub outside: Ipv4Addr,
    pub inside: Ipv4Addr,
}

/// Everything but the forwards (stored as one JSON document).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatSettings {
    pub enabled: bool,
    pub outside: Outside,
    pub pool: Vec<Ipv4Addr>,
    pub filtering: Filtering,
    pub timeouts: Timeouts,
    pub max_sessions_per_host: Option<u32>,
    pub inbound_refresh: Option<bool>,
    pub one_to_one: Vec<OneToOne>,
}

/// A validated port forward, not yet stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwardDef {
    pub proto: Proto,
    pub outside: SocketAddrV4,
    pub inside: SocketAddrV4,
}

/// A stored port forward.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Forward {
    pub id: i64,
    pub proto: Proto,
    pub outside: SocketAddrV4,
    pub inside: SocketAddrV4,
}

impl Forward {
    pub fn def(&self) -> ForwardDef {
        ForwardDef {
            proto: self.proto,
            outside: self.outside,
            inside: self.inside,
        }
    }
}

/// The NAT configuration as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NatConfig {
    #[serde(flatten)]
    pub settings: NatSettings,
    pub forwards: Vec<Forward>,
}

/// Body of `PUT /nat`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatSpec {
    /// False: NAT off (the configuration is kept). Default true.
    #[serde(default)]
    pub enabled: Option<bool>,
    pub outside: Outside,
    pub pool: Vec<String>,
    /// `endpoint-independent` or `address-and-port-dependent` (default).
    #[serde(default)]
    pub filtering: Option<String>,
    #[serde(default)]
    pub timeouts: Timeouts,
    #[serde(default)]
    pub max_sessions_per_host: Option<u32>,
    #[serde(default)]
    pub inbound_refresh: Option<bool>,
    #[serde(default)]
    pub forwards: Vec<ForwardSpec>,
    #[serde(default)]
    pub one_to_one: Vec<OneToOneSpec>,
}

/// A port forward in a request.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardSpec {
    /// `tcp` or `udp`.
    pub proto: String,
    /// `ADDR:PORT` on the outside.
    pub outside: String,
    /// `ADDR:PORT` of the inside server.
    pub inside: String,
}

/// A 1:1 mapping in a request.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OneToOneSpec {
    pub outside: String,
    pub inside: String,
}

/// Body of `POST /nat/pool`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolAddressSpec {
    pub address: String,
}

fn unicast(a: Ipv4Addr) -> bool {
    !(a.is_unspecified() || a.is_broadcast() || a.is_multicast() || a.is_loopback())
}

/// A unicast IPv4 address named by `field`.
pub fn parse_unicast(field: &str, text: &str) -> Result<Ipv4Addr> {
    let a: Ipv4Addr = text
        .parse()
        .map_err(|_| Error::invalid(field, format!("{text:?} is not an IPv4 address")))?;
    if !unicast(a) {
        return Err(Error::invalid(
            field,
            format!("{a} is not a unicast address"),
        ));
    }
    Ok(a)
}

pub fn parse_endpoint(field: &str, text: &str) -> Result<SocketAddrV4> {
    let e: SocketAddrV4 = text
        .parse()
        .map_err(|_| Error::invalid(field, format!("{text:?} is not ADDR:PORT")))?;
    if !unicast(*e.ip()) {
        return Err(Error::invalid(
            field,
            format!("{} is not a unicast address", e.ip()),
        ));
    }
    if e.port() == 0 {
        return Err(Error::invalid(field, "port 0 is not a port"));
    }
    Ok(e)
}

impl ForwardSpec {
    pub fn validate(&self) -> Result<ForwardDef> {
        let proto = match self.proto.as_str() {
            "tcp" => Proto::Tcp,
            "udp" => Proto::Udp,
            other => {
                return Err(Error::invalid(
                    "proto",
                    format!("{other:?} cannot be forwarded (tcp or udp)"),
                ))
            }
        };
        Ok(ForwardDef {
            proto,
            outside: parse_endpoint("outside", &self.outside)?,
            inside: parse_endpoint("inside", &self.inside)?,
        })
    }
}

fn check_port_name(field: &str, port: &str) -> Result<()> {
    if port.is_empty()
        || port.len() > MAX_PORT_NAME_LEN
        || !port
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(Error::invalid(
            field,
            format!(
                "{port:?} is not a valid port name (1..={MAX_PORT_NAME_LEN} of A-Z a-z 0-9 - _ .)"
            ),
        ));
    }
    Ok(())
}

impl NatSpec {
    /// The settings and forwards, each checked on its own and against each
    /// other; errors name the field (`pool[1]`, `forwards[0].outside`).
    pub fn validate(&self) -> Result<(NatSettings, Vec<ForwardDef>)> {
        check_port_name("outside.port", &self.outside.port)?;
        if let Some(v) = self.outside.vlan {
            if !(1..=4094).contains(&v) {
                return Err(Error::invalid(
                    "outside.vlan",
                    format!("VLAN {v} is out of range 1..=4094"),
                ));
            }
        }
        let filtering = match self.filtering.as_deref() {
            None | Some("address-and-port-dependent") => Filtering::AddressAndPortDependent,
            Some("endpoint-independent") => Filtering::EndpointIndependent,
            Some(other) => {
                return Err(Error::invalid(
                    "filtering",
                    format!("{other:?}: endpoint-independent or address-and-port-dependent"),
                ))
            }
        };
        for (name, v) in self.timeouts.fields() {
            if let Some(v) = v {
                if !(1..=MAX_TIMEOUT_SECS).contains(&v) {
                    return Err(Error::invalid(
                        format!("timeouts.{name}"),
                        format!("{v} is not in 1..={MAX_TIMEOUT_SECS} seconds"),
                    ));
                }
            }
        }
        if self.max_sessions_per_host == Some(0) {
            return Err(Error::invalid(
                "max_sessions_per_host",
                "must be at least 1",
            ));
        }
        if self.one_to_one.len() > MAX_ONE_TO_ONE {
            return Err(Error::invalid(
                "one_to_one",
                format!("at most {MAX_ONE_TO_ONE} mappings"),
            ));
        }
        let mut one_to_one = Vec::with_capacity(self.one_to_one.len());
        for (i, m) in self.one_to_one.iter().enumerate() {
            one_to_one.push(OneToOne {
                outside: parse_unicast(&format!("one_to_one[{i}].outside"), &m.outside)?,
                inside: parse_unicast(&format!("one_to_one[{i}].inside"), &m.inside)?,
            });
        }
        let mut settings = NatSettings {
            enabled: self.enabled.unwrap_or(true),
            outside: self.outside.clone(),
            pool: Vec::new(),
            filtering,
            timeouts: self.timeouts,
            max_sessions_per_host: self.max_sessions_per_host,
            inbound_refresh: self.inbound_refresh,
            one_to_one,
        };
        for (i, a) in self.pool.iter().enumerate() {
            let a = parse_unicast(&format!("pool[{i}]"), a)?;
            add_pool_address(&mut settings, a)
                .map_err(|m| Error::invalid(format!("pool[{i}]"), m))?;
        }
        if settings.pool.is_empty() {
            return Err(Error::invalid("pool", "needs at least one address"));
        }
        check_one_to_one(&settings)?;
        if self.forwards.len() > MAX_FORWARDS {
            return Err(Error::invalid(
                "forwards",
                format!("at most {MAX_FORWARDS} forwards"),
            ));
        }
        let mut forwards: Vec<ForwardDef> = Vec::with_capacity(self.forwards.len());
        let mut seen = ForwardIndex::default();
        for (i, f) in self.forwards.iter().enumerate() {
            let d = f
                .validate()
                .map_err(|e| e.nested(&format!("forwards[{i}].")))?;
            check_forward(&settings, &mut seen, &d)
                .map_err(|(k, m)| Error::invalid(format!("forwards[{i}].{k}"), m))?;
            forwards.push(d);
        }
        Ok((settings, forwards))
    }
}

/// Adds `a` to the pool; the message says why not.
pub fn add_pool_address(s: &mut NatSettings, a: Ipv4Addr) -> Result<(), String> {
    if s.pool.contains(&a) {
        return Err(format!("{a} is already in the pool"));
    }
    if s.pool.len() >= MAX_POOL {
        return Err(format!("the pool holds at most {MAX_POOL} addresses"));
    }
    if s.one_to_one.iter().any(|m| m.outside == a) {
        return Err(format!("{a} is the outside address of a 1:1 mapping"));
    }
    s.pool.push(a);
    Ok(())
}

fn check_one_to_one(s: &NatSettings) -> Result<()> {
    let mut outs = HashSet::new();
    let mut ins = HashSet::new();
    for (i, m) in s.one_to_one.iter().enumerate() {
        if !outs.insert(m.outside) {
            return Err(Error::invalid(
                format!("one_to_one[{i}].outside"),
                format!("{} is mapped twice", m.outside),
            ));
        }
        if !ins.insert(m.inside) {
            return Err(Error::invalid(
                format!("one_to_one[{i}].inside"),
                format!("{} is mapped twice", m.inside),
            ));
        }
        if s.pool.contains(&m.outside) {
            return Err(Error::invalid(
                format!("one_to_one[{i}].outside"),
                format!("{} is also a pool address", m.outside),
            ));
        }
    }
    Ok(())
}

/// Outside and inside endpoints of the forwards seen so far.
#[derive(Debug, Default)]
pub struct ForwardIndex {
    outside: HashSet<(Proto, SocketAddrV4)>,
    inside: HashSet<(Proto, SocketAddrV4)>,
}

/// Checks forward `d` against the settings and the forwards in `seen`,
/// then records it; the error is (field, message).
pub fn check_forward(
    s: &NatSettings,
    seen: &mut ForwardIndex,
    d: &ForwardDef,
) -> Result<(), (&'static str, String)> {
    let o = *d.outside.ip();
    if s.one_to_one.iter().any(|m| m.outside == o) {
        return Err((
            "outside",
            format!("{o} is the outside address of a 1:1 mapping"),
        ));
    }
    if !seen.outside.insert((d.proto, d.outside)) {
        return Err((
            "outside",
            format!("{}/{} is already forwarded", d.outside, d.proto.name()),
        ));
    }
    if !seen.inside.insert((d.proto, d.inside)) {
        return Err((
            "inside",
            format!(
                "{}/{} is already the target of a forward",
                d.inside,
                d.proto.name()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> NatSpec {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_minimal_spec_takes_the_defaults() {
        let (s, f) = spec(r#"{"outside":{"port":"wan0"},"pool":["198.51.100.1"]}"#)
            .validate()
            .unwrap();
        assert!(s.enabled);
        assert_eq!(s.filtering, Filtering::AddressAndPortDependent);
        assert_eq!(s.timeouts, Timeouts::default());
        assert!(f.is_empty());
    }

    #[test]
    fn stored_settings_round_trip_through_json() {
        let (s, _) = spec(
            r#"{"outside":{"port":"wan0","vlan":7},"pool":["198.51.100.1"],
                "filtering":"endpoint-independent","timeouts":{"udp":60},
                "max_sessions_per_host":5,"inbound_refresh":false,
                "one_to_one":[{"outside":"198.51.100.9","inside":"10.0.0.9"}]}"#,
        )
        .validate()
        .unwrap();
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<NatSettings>(&text).unwrap(), s);
    }
}
