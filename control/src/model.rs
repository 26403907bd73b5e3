//! Typed resources of the desired state: what clients send (`*Spec`, strict
//! serde with `deny_unknown_fields`) and what the API returns. Validation that
//! needs no other state lives here and names the offending field; checks
//! against existing state (duplicates, next hop reachability) live in the store.

use std::fmt;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Name of the organization every installation starts with.
pub const DEFAULT_ORG: &str = "default";
/// Most next hops one route may carry (ECMP width).
pub const MAX_NEXT_HOPS: usize = 16;
/// Longest port name (Linux IFNAMSIZ - 1, so a port can mirror a kernel interface).
pub const MAX_PORT_NAME_LEN: usize = 15;
/// Longest organization name (a DNS label).
pub const MAX_ORG_NAME_LEN: usize = 63;

/// An IPv4 address with a prefix length, written `a.b.c.d/len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr {
    pub addr: Ipv4Addr,
    pub len: u8,
}

impl Cidr {
    pub fn mask(self) -> u32 {
        if self.len == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.len))
        }
    }
    pub fn network(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }
    pub fn contains(self, ip: Ipv4Addr) -> bool {
        (u32::from(ip) & self.mask()) == u32::from(self.network())
    }
    /// Whether the two subnets share any address.
    pub fn overlaps(self, other: Cidr) -> bool {
        let shorter = if self.len <= other.len { self } else { other };
        let longer = if self.len <= other.len { other } else { self };
        shorter.contains(longer.addr)
    }

    /// Parses `a.b.c.d/len` with `len` in 0..=32; host bits are allowed here.
    pub fn parse(field: &str, text: &str) -> Result<Cidr> {
        let (addr, len) = text.split_once('/').ok_or_else(|| {
            Error::invalid(field, format!("{text:?} is not of the form a.b.c.d/len"))
        })?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| Error::invalid(field, format!("{addr:?} is not an IPv4 address")))?;
        let len: u8 = match len.parse() {
            Ok(l) if l <= 32 && !len.starts_with('+') => l,
            _ => {
                return Err(Error::invalid(
                    field,
                    format!("prefix length {len:?} is out of range 0..=32"),
                ))
            }
        };
        Ok(Cidr { addr, len })
    }

    /// Parses a route prefix: like [`Cidr::parse`] but no host bits may be set.
    pub fn parse_prefix(field: &str, text: &str) -> Result<Cidr> {
        let c = Cidr::parse(field, text)?;
        if c.network() != c.addr {
            return Err(Error::invalid(
                field,
                format!(
                    "{text} has host bits set (did you mean {}/{}?)",
                    c.network(),
                    c.len
                ),
            ));
        }
        Ok(c)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl Serialize for Cidr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

fn parse_ip(field: &str, text: &str) -> Result<Ipv4Addr> {
    text.parse()
        .map_err(|_| Error::invalid(field, format!("{text:?} is not an IPv4 address")))
}

/// Checks an organization name: a lowercase DNS label.
pub fn validate_org_name(field: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_ORG_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!(
                "{name:?} is not a valid organization name (1..={MAX_ORG_NAME_LEN} of a-z 0-9 -)"
            ),
        ))
    }
}

/// Body of `POST /orgs`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgSpec {
    pub name: String,
}

/// An organization (tenant). Roles and quotas will be added as fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Organization {
    pub name: String,
}

/// Body of `POST`/`PUT` on interfaces.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterfaceSpec {
    /// Engine port name, e.g. `lan0`.
    pub port: String,
    /// The interface's own address with its subnet length, e.g. `10.1.0.1/24`.
    pub address: String,
    /// 802.1Q VLAN id (1..=4094); absent or null for untagged.
    #[serde(default)]
    pub vlan: Option<u16>,
}

/// A validated interface, not yet stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceDef {
    pub port: String,
    pub address: Cidr,
    pub vlan: Option<u16>,
}

impl InterfaceSpec {
    pub fn validate(&self) -> Result<InterfaceDef> {
        let port = &self.port;
        if port.is_empty()
            || port.len() > MAX_PORT_NAME_LEN
            || !port
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return Err(Error::invalid(
                "port",
                format!("{port:?} is not a valid port name (1..={MAX_PORT_NAME_LEN} of A-Z a-z 0-9 - _ .)"),
            ));
        }
        let address = Cidr::parse("address", &self.address)?;
        if address.len == 0 {
            return Err(Error::invalid("address", "prefix length must be 1..=32"));
        }
        let ip = address.addr;
        if ip.is_unspecified() || ip.is_multicast() || ip.is_broadcast() || ip.is_loopback() {
            return Err(Error::invalid(
                "address",
                format!("{ip} cannot be an interface address"),
            ));
        }
        // On subnets with a network and broadcast address, neither is a host.
        if address.len <= 30 {
            let host = u32::from(ip) & !address.mask();
            if host == 0 || host == !address.mask() {
                return Err(Error::invalid(
                    "address",
                    format!(
                        "{ip} is the network or broadcast address of {}/{}",
                        address.network(),
                        address.len
                    ),
                ));
            }
        }
        if let Some(v) = self.vlan {
            if !(1..=4094).contains(&v) {
                return Err(Error::invalid(
                    "vlan",
                    format!("VLAN {v} is out of range 1..=4094"),
                ));
            }
        }
        Ok(InterfaceDef {
            port: port.clone(),
            address,
            vlan: self.vlan,
        })
    }
}

/// A stored interface as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Interface {
    pub id: i64,
    pub org: String,
    pub port: String,
    pub address: Cidr,
    pub vlan: Option<u16>,
}

/// One next hop of a route.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NextHopSpec {
    /// Gateway address; must lie on a subnet of one of the organization's interfaces.
    pub via: String,
}

/// Body of `POST`/`PUT` on routes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    /// Destination prefix without host bits, e.g. `10.0.0.0/8`.
    pub prefix: String,
    /// Next hops (ECMP); empty exactly when `blackhole` is true.
    #[serde(default)]
    pub next_hops: Vec<NextHopSpec>,
    /// Drop matching traffic instead of forwarding it.
    #[serde(default)]
    pub blackhole: bool,
    /// Send matching traffic into this WireGuard tunnel (which picks the
    /// peer by its allowed IPs); excludes `next_hops` and `blackhole`.
    #[serde(default)]
    pub tunnel: Option<String>,
}

/// Body of `PUT /routes`: the organization's complete route set, applied atomically.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSetSpec {
    pub routes: Vec<RouteSpec>,
}

/// Body of `POST /routes/bulk`: routes to add and routes to delete (by id
/// or by prefix), applied in one transaction, deletions first.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkRoutesSpec {
    #[serde(default)]
    pub add: Vec<RouteSpec>,
    /// Route ids.
    #[serde(default)]
    pub delete: Vec<i64>,
    /// Route prefixes, `a.b.c.d/len`.
    #[serde(default)]
    pub delete_prefixes: Vec<String>,
}

impl BulkRoutesSpec {
    /// Checks every entry on its own; errors name it (`add[3].prefix`).
    pub fn validate(&self) -> Result<crate::store::BulkRoutes> {
        let add = self
            .add
            .iter()
            .enumerate()
            .map(|(i, spec)| spec.validate().map_err(|e| e.nested(&format!("add[{i}]."))))
            .collect::<Result<Vec<_>>>()?;
        for (i, &id) in self.delete.iter().enumerate() {
            if id <= 0 {
                return Err(Error::invalid(
                    format!("delete[{i}]"),
                    format!("{id} is not a resource id (a positive integer)"),
                ));
            }
        }
        let delete_prefixes = self
            .delete_prefixes
            .iter()
            .enumerate()
            .map(|(i, p)| Cidr::parse_prefix(&format!("delete_prefixes[{i}]"), p))
            .collect::<Result<Vec<_>>>()?;
        Ok(crate::store::BulkRoutes {
            add,
            delete: self.delete.clone(),
            delete_prefixes,
        })
    }
}

/// Answer of `POST /routes/bulk` (counts only: a bulk load is not echoed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BulkResult {
    pub added: usize,
    pub deleted: usize,
    /// Desired-state generation after the change.
    pub generation: u64,
}

/// A validated route, not yet stored (next hop reachability and the
/// tunnel's existence are checked by the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteDef {
    pub prefix: Cidr,
    pub next_hops: Vec<Ipv4Addr>,
    pub blackhole: bool,
    /// The WireGuard tunnel the route points into (then no next hops).
    pub tunnel: Option<String>,
}

impl RouteSpec {
    pub fn validate(&self) -> Result<RouteDef> {
        let prefix = Cidr::parse_prefix("prefix", &self.prefix)?;
        if let Some(tunnel) = &self.tunnel {
            crate::wg::model::validate_tunnel_name("tunnel", tunnel)?;
            if self.blackhole || !self.next_hops.is_empty() {
                return Err(Error::invalid(
                    "tunnel",
                    "a route into a tunnel has no next hops and is no blackhole",
                ));
            }
            return Ok(RouteDef {
                prefix,
                next_hops: Vec::new(),
                blackhole: false,
                tunnel: Some(tunnel.clone()),
            });
        }
        if self.blackhole && !self.next_hops.is_empty() {
            return Err(Error::invalid(
                "next_hops",
                "a blackhole route has no next hops",
            ));
        }
        if !self.blackhole && self.next_hops.is_empty() {
            return Err(Error::invalid(
                "next_hops",
                "a route needs at least one next hop (or \"blackhole\": true, or a \"tunnel\")",
            ));
        }
        if self.next_hops.len() > MAX_NEXT_HOPS {
            return Err(Error::invalid(
                "next_hops",
                format!("at most {MAX_NEXT_HOPS} next hops"),
            ));
        }
        let mut next_hops = Vec::with_capacity(self.next_hops.len());
        for (i, nh) in self.next_hops.iter().enumerate() {
            let field = format!("next_hops[{i}].via");
            let ip = parse_ip(&field, &nh.via)?;
            if ip.is_unspecified() || ip.is_multicast() || ip.is_broadcast() || ip.is_loopback() {
                return Err(Error::invalid(field, format!("{ip} cannot be a next hop")));
            }
            if next_hops.contains(&ip) {
                return Err(Error::invalid(
                    field,
                    format!("next hop {ip} is listed twice"),
                ));
            }
            next_hops.push(ip);
        }
        Ok(RouteDef {
            prefix,
            next_hops,
            blackhole: self.blackhole,
            tunnel: None,
        })
    }
}

/// Next hop as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NextHop {
    pub via: Ipv4Addr,
}

/// A stored route as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    pub id: i64,
    pub org: String,
    pub prefix: Cidr,
    pub next_hops: Vec<NextHop>,
    pub blackhole: bool,
    /// The WireGuard tunnel the route points into (absent: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<String>,
    /// The tunnel's stored id (what the engine's tables name it by).
    #[serde(skip)]
    pub tunnel_id: Option<i64>,
}

impl Route {
    /// The route's definition, as it would be submitted again.
    pub fn def(&self) -> RouteDef {
        RouteDef {
            prefix: self.prefix,
            next_hops: self.next_hops.iter().map(|n| n.via).collect(),
            blackhole: self.blackhole,
            tunnel: self.tunnel.clone(),
        }
    }
}

/// Checks that every next hop of `route` lies on one of `interfaces`' subnets
/// and is not one of their own addresses. Field names are relative to the route.
pub fn check_next_hops(route: &RouteDef, interfaces: &[Cidr]) -> Result<()> {
    for (i, via) in route.next_hops.iter().enumerate() {
        let field = format!("next_hops[{i}].via");
        if interfaces.iter().any(|c| c.addr == *via) {
            return Err(Error::invalid(
                field,
                format!("{via} is one of our own interface addresses"),
            ));
        }
        if !interfaces.iter().any(|c| c.contains(*via)) {
            return Err(Error::invalid(
                field,
                format!("{via} is not on the subnet of any interface of this organization"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(e: Error) -> String {
        match e {
            Error::Invalid { field, .. } => field,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn cidr_parse_and_contains() {
        let c = Cidr::parse("x", "10.1.0.1/24").unwrap();
        assert_eq!(c.network(), Ipv4Addr::new(10, 1, 0, 0));
        assert!(c.contains(Ipv4Addr::new(10, 1, 0, 254)));
        assert!(!c.contains(Ipv4Addr::new(10, 1, 1, 1)));
        let all = Cidr::parse("x", "0.0.0.0/0").unwrap();
        assert!(all.contains(Ipv4Addr::new(255, 1, 2, 3)));
        assert!(all.overlaps(c) && c.overlaps(all));
        let other = Cidr::parse("x", "10.1.1.1/24").unwrap();
        assert!(!c.overlaps(other));
        assert_eq!(c.to_string(), "10.1.0.1/24");
    }

    #[test]
    fn prefix_rejects_bad_text_with_field() {
        for bad in [
            "10.0.0.0",
            "10.0.0.0/33",
            "10.0.0.0/-1",
            "10.0.0.0/+8",
            "10.0.0/8",
            "10.0.0.1/8",
            "x/8",
            "10.0.0.0/",
        ] {
            assert_eq!(
                field_of(Cidr::parse_prefix("prefix", bad).unwrap_err()),
                "prefix",
                "{bad}"
            );
        }
        assert!(Cidr::parse_prefix("prefix", "10.0.0.0/8").is_ok());
        assert!(Cidr::parse_prefix("prefix", "0.0.0.0/0").is_ok());
        assert!(Cidr::parse_prefix("prefix", "10.1.2.3/32").is_ok());
    }

    #[test]
    fn interface_validation_names_fields() {
        let spec = |port: &str, address: &str, vlan| InterfaceSpec {
            port: port.into(),
            address: address.into(),
            vlan,
        };
        assert!(spec("lan0", "10.1.0.1/24", None).validate().is_ok());
        assert!(spec("lan0", "10.1.0.1/32", Some(4094)).validate().is_ok());
        assert_eq!(
            field_of(spec("", "10.1.0.1/24", None).validate().unwrap_err()),
            "port"
        );
        assert_eq!(
            field_of(spec("a b", "10.1.0.1/24", None).validate().unwrap_err()),
            "port"
        );
        assert_eq!(
            field_of(spec("lan0", "10.1.0.0/24", None).validate().unwrap_err()),
            "address"
        );
        assert_eq!(
            field_of(spec("lan0", "10.1.0.255/24", None).validate().unwrap_err()),
            "address"
        );
        assert_eq!(
            field_of(spec("lan0", "10.1.0.1/0", None).validate().unwrap_err()),
            "address"
        );
        assert_eq!(
            field_of(spec("lan0", "10.1.0.1/24", Some(0)).validate().unwrap_err()),
            "vlan"
        );
        assert_eq!(
            field_of(
                spec("lan0", "10.1.0.1/24", Some(4095))
                    .validate()
                    .unwrap_err()
            ),
            "vlan"
        );
    }

    #[test]
    fn route_validation_names_fields() {
        let spec = |prefix: &str, vias: &[&str], blackhole| RouteSpec {
            prefix: prefix.into(),
            next_hops: vias
                .iter()
                .map(|v| NextHopSpec { via: (*v).into() })
                .collect(),
            blackhole,
            tunnel: None,
        };
        assert!(spec("0.0.0.0/0", &["10.2.0.254"], false).validate().is_ok());
        let into = |tunnel: &str, vias: &[&str], blackhole| RouteSpec {
            tunnel: Some(tunnel.into()),
            ..spec("10.9.0.0/16", vias, blackhole)
        };
        let d = into("wg0", &[], false).validate().unwrap();
        assert_eq!(d.tunnel.as_deref(), Some("wg0"));
        assert!(d.next_hops.is_empty() && !d.blackhole);
        assert_eq!(
            field_of(into("wg0", &["1.1.1.1"], false).validate().unwrap_err()),
            "tunnel"
        );
        assert_eq!(
            field_of(into("wg0", &[], true).validate().unwrap_err()),
            "tunnel"
        );
        assert_eq!(
            field_of(into("wg 0", &[], false).validate().unwrap_err()),
            "tunnel"
        );
        assert!(spec("10.0.0.0/8", &[], true).validate().is_ok());
        assert_eq!(
            field_of(spec("10.0.0.0/8", &[], false).validate().unwrap_err()),
            "next_hops"
        );
        assert_eq!(
            field_of(
                spec("10.0.0.0/8", &["1.1.1.1"], true)
                    .validate()
                    .unwrap_err()
            ),
            "next_hops"
        );
        assert_eq!(
            field_of(
                spec("10.0.0.0/8", &["1.1.1.1", "nope"], false)
                    .validate()
                    .unwrap_err()
            ),
            "next_hops[1].via"
        );
        assert_eq!(
            field_of(
                spec("10.0.0.0/8", &["1.1.1.1", "1.1.1.1"], false)
                    .validate()
                    .unwrap_err()
            ),
            "next_hops[1].via"
        );
        let ifs = [Cidr::parse("x", "10.2.0.1/24").unwrap()];
        let ok = spec("0.0.0.0/0", &["10.2.0.254"], false)
            .validate()
            .unwrap();
        assert!(check_next_hops(&ok, &ifs).is_ok());
        let off = spec("0.0.0.0/0", &["10.3.0.254"], false)
            .validate()
            .unwrap();
        assert_eq!(
            field_of(check_next_hops(&off, &ifs).unwrap_err()),
            "next_hops[0].via"
        );
        let own = spec("0.0.0.0/0", &["10.2.0.1"], false).validate().unwrap();
        assert_eq!(
            field_of(check_next_hops(&own, &ifs).unwrap_err()),
            "next_hops[0].via"
        );
    }
}
