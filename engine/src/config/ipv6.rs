//! IPv6 in the configuration, "configured like IPv4": `[[interface]]`
//! entries whose `address` is IPv6, `[[route]]` entries whose `prefix` is
//! IPv6 (`via` one address or a list = ECMP, a link-local gateway written
//! `fe80::1%PORT`; or `blackhole = true`) and `[[neighbor]]` entries with an
//! IPv6 address (permanent ND entries).
//!
//! They are validated in place (the keys name the entry's position in the
//! file) and then moved out of the IPv4 lists into [`Ipv6Config`], so the
//! IPv4 code never sees them. With any IPv6 interface configured, every
//! port also gets an IPv6 interface with a link-local address (EUI-64 of
//! its MAC); without one, IPv6 is off and its frames are dropped as before.

use std::net::Ipv6Addr;

use super::{invalid, parse_mac, ConfigError, EngineConfig, ViaConfig};

/// An IPv6 address of an interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface6Config {
    pub port: String,
    pub vlan: Option<u16>,
    pub address: Ipv6Addr,
    pub prefix_len: u8,
}

/// A gateway: an address and, for a link-local one, its port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gateway6 {
    pub addr: Ipv6Addr,
    pub port: Option<String>,
}

/// What a configured IPv6 route does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route6Action {
    Blackhole,
    /// Several = ECMP by flow hash.
    Via(Vec<Gateway6>),
}

/// A configured IPv6 route (network with host bits clear).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route6Config {
    pub prefix: Ipv6Addr,
    pub len: u8,
    pub action: Route6Action,
}

/// A permanent ND entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Neighbor6Config {
    pub port: String,
    pub vlan: Option<u16>,
    pub address: Ipv6Addr,
    pub mac: [u8; 6],
}

/// The IPv6 part of the configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ipv6Config {
    pub interfaces: Vec<Interface6Config>,
    pub routes: Vec<Route6Config>,
    pub neighbors: Vec<Neighbor6Config>,
}

impl Ipv6Config {
    /// True when the engine handles IPv6 at all.
    pub fn enabled(&self) -> bool {
        !self.interfaces.is_empty()
    }
}

/// One IPv6 interface of the engine: a port (and VLAN) with its addresses.
/// Index = position in [`ipv6_interfaces`]; the FIB's next hops and the
/// workers' interface tables agree on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Iface6Spec {
    pub port: u16,
    pub vlan: u16,
    /// Global (non-link-local) addresses and prefix lengths.
    pub addrs: Vec<(Ipv6Addr, u8)>,
}

/// The engine's IPv6 interfaces: first every port untagged (port order),
/// then each VLAN that carries an IPv6 address (file order). Empty when
/// IPv6 is off.
pub fn ipv6_interfaces(cfg: &EngineConfig) -> Vec<Iface6Spec> {
    if !cfg.ipv6.enabled() {
        return Vec::new();
    }
    let mut out: Vec<Iface6Spec> = (0..cfg.ports.len())
        .map(|p| Iface6Spec {
            port: p as u16,
            vlan: 0,
            addrs: Vec::new(),
        })
        .collect();
    for itf in &cfg.ipv6.interfaces {
        let Some(port) = cfg.port_index(&itf.port) else {
            continue;
        };
        let vlan = itf.vlan.unwrap_or(0);
        let i = match out
            .iter()
            .position(|s| s.port == port as u16 && s.vlan == vlan)
        {
            Some(i) => i,
            None => {
                out.push(Iface6Spec {
                    port: port as u16,
                    vlan,
                    addrs: Vec::new(),
                });
                out.len() - 1
            }
        };
        out[i].addrs.push((itf.address, itf.prefix_len));
    }
    out
}

/// The link-local address of a MAC (modified EUI-64, RFC 4291 App. A).
pub fn link_local(mac: [u8; 6]) -> Ipv6Addr {
    let mut o = [0u8; 16];
    o[0] = 0xfe;
    o[1] = 0x80;
    o[8] = mac[0] ^ 0x02;
    o[9] = mac[1];
    o[10] = mac[2];
    o[11] = 0xff;
    o[12] = 0xfe;
    o[13] = mac[3];
    o[14] = mac[4];
    o[15] = mac[5];
    Ipv6Addr::from(o)
}

/// Network mask of an IPv6 prefix length.
pub fn mask6(len: u8) -> u128 {
    crate::fib::lpm6::mask6(len)
}

/// True when a configured address string is IPv6 (decides which list an
/// entry belongs to).
pub fn is_v6(s: &str) -> bool {
    s.contains(':')
}

/// Parses "ADDR/LEN" (IPv6); host bits must be zero when `strict`.
pub fn parse_prefix6(s: &str, strict: bool) -> Result<(Ipv6Addr, u8), String> {
    let (a, l) = s
        .split_once('/')
        .ok_or_else(|| format!("{s:?} is not ADDR/LEN"))?;
    let addr: Ipv6Addr = a
        .parse()
        .map_err(|_| format!("{a:?} is not an IPv6 address"))?;
    let len: u8 = l
        .parse()
        .ok()
        .filter(|l| *l <= 128)
        .ok_or_else(|| format!("prefix length {l:?} is not 0..=128"))?;
    let bits = u128::from(addr);
    if strict && bits & !mask6(len) != 0 {
        return Err(format!(
            "{s} has host bits set (did you mean {}/{len}?)",
            Ipv6Addr::from(bits & mask6(len))
        ));
    }
    Ok((addr, len))
}

fn parse_gateway(s: &str) -> Result<Gateway6, String> {
    let (a, port) = match s.split_once('%') {
        Some((a, p)) => (a, Some(p.to_string())),
        None => (s, None),
    };
    let addr: Ipv6Addr = a
        .parse()
        .map_err(|_| format!("{a:?} is not an IPv6 address"))?;
    Ok(Gateway6 { addr, port })
}

/// Validates the IPv6 entries of the (unsplit) lists, naming keys by their
/// position in the file, and returns them parsed.
pub fn validate(cfg: &EngineConfig) -> Result<Ipv6Config, ConfigError> {
    let mut out = Ipv6Config::default();
    for (i, itf) in cfg.interfaces.iter().enumerate() {
        if !is_v6(&itf.address) {
            continue;
        }
        let key = |k: &str| format!("interface[{i}].{k}");
        if cfg.port_index(&itf.port).is_none() {
            return Err(invalid(
                key("port"),
                format!("no [[port]] named {:?}", itf.port),
            ));
        }
        let (addr, len) =
            parse_prefix6(&itf.address, false).map_err(|m| invalid(key("address"), m))?;
        if len == 0 {
            return Err(invalid(key("address"), "prefix length must be 1..=128"));
        }
        if addr.is_unspecified()
            || addr.is_multicast()
            || addr.is_loopback()
            || addr.is_unicast_link_local()
        {
            return Err(invalid(
                key("address"),
                format!(
                    "{addr} cannot be an interface address (link-local ones come from the port's MAC)"
                ),
            ));
        }
        if let Some(v) = itf.vlan {
            if !(1..=4094).contains(&v) {
                return Err(invalid(key("vlan"), "must be 1..=4094"));
            }
        }
        if out.interfaces.iter().any(|o| o.address == addr) {
            return Err(invalid(
                key("address"),
                format!("{addr} is already assigned"),
            ));
        }
        out.interfaces.push(Interface6Config {
            port: itf.port.clone(),
            vlan: itf.vlan,
            address: addr,
            prefix_len: len,
        });
    }
    for (i, r) in cfg.routes.iter().enumerate() {
        let vias: Vec<&String> = match &r.via {
            None => Vec::new(),
            Some(ViaConfig::One(v)) => vec![v],
            Some(ViaConfig::Many(v)) => v.iter().collect(),
        };
        let key = |k: &str| format!("route[{i}].{k}");
        if !is_v6(&r.prefix) {
            if let Some(v) = vias.iter().find(|v| is_v6(v)) {
                return Err(invalid(
                    key("via"),
                    format!("{v:?} is an IPv6 next hop for the IPv4 prefix {}", r.prefix),
                ));
            }
            continue;
        }
        let (prefix, len) =
            parse_prefix6(&r.prefix, true).map_err(|m| invalid(key("prefix"), m))?;
        if r.tunnel.is_some() {
            return Err(invalid(key("tunnel"), "tunnels carry IPv4 routes only"));
        }
        match (r.blackhole, vias.is_empty()) {
            (true, false) => return Err(invalid(key("via"), "a blackhole route has no next hop")),
            (false, true) => return Err(invalid(key("via"), "required unless blackhole = true")),
            _ => {}
        }
        if vias.len() > 16 {
            return Err(invalid(key("via"), "at most 16 ECMP next hops"));
        }
        let mut gws = Vec::new();
        for v in vias {
            if !is_v6(v) {
                return Err(invalid(
                    key("via"),
                    format!("{v:?} is an IPv4 next hop for the IPv6 prefix {}", r.prefix),
                ));
            }
            let gw = parse_gateway(v).map_err(|m| invalid(key("via"), m))?;
            if gw.addr.is_unspecified() || gw.addr.is_multicast() {
                return Err(invalid(
                    key("via"),
                    format!("{} cannot be a next hop", gw.addr),
                ));
            }
            match &gw.port {
                Some(p) if cfg.port_index(p).is_none() => {
                    return Err(invalid(key("via"), format!("no [[port]] named {p:?}")))
                }
                None if gw.addr.is_unicast_link_local() => {
                    return Err(invalid(
                        key("via"),
                        format!(
                            "link-local next hop {} needs its port: \"{}%PORT\"",
                            gw.addr, gw.addr
                        ),
                    ))
                }
                Some(_) if !gw.addr.is_unicast_link_local() => {
                    return Err(invalid(
                        key("via"),
                        "only link-local next hops take a %PORT",
                    ))
                }
                None => {
                    let connected = out.interfaces.iter().any(|itf| {
                        u128::from(itf.address) & mask6(itf.prefix_len)
                            == u128::from(gw.addr) & mask6(itf.prefix_len)
                    });
                    if !connected {
                        return Err(invalid(
                            key("via"),
                            format!("next hop {} is not on any IPv6 interface's subnet", gw.addr),
                        ));
                    }
                }
                Some(_) => {}
            }
            gws.push(gw);
        }
        if out.interfaces.is_empty() {
            return Err(invalid(
                key("prefix"),
                "IPv6 routes need an [[interface]] with an IPv6 address",
            ));
        }
        out.routes.push(Route6Config {
            prefix,
            len,
            action: if r.blackhole {
                Route6Action::Blackhole
            } else {
                Route6Action::Via(gws)
            },
        });
    }
    for (i, n) in cfg.neighbors.iter().enumerate() {
        if !is_v6(&n.address) {
            continue;
        }
        let key = |k: &str| format!("neighbor[{i}].{k}");
        if cfg.port_index(&n.port).is_none() {
            return Err(invalid(
                key("port"),
                format!("no [[port]] named {:?}", n.port),
            ));
        }
        let address: Ipv6Addr = n.address.parse().map_err(|_| {
            invalid(
                key("address"),
                format!("{:?} is not an IPv6 address", n.address),
            )
        })?;
        if address.is_unspecified() || address.is_multicast() {
            return Err(invalid(
                key("address"),
                format!("{address} cannot be a neighbor"),
            ));
        }
        let mac = parse_mac(&n.mac).map_err(|m| invalid(key("mac"), m))?;
        let on_link = address.is_unicast_link_local()
            || out.interfaces.iter().any(|itf| {
                itf.port == n.port
                    && itf.vlan == n.vlan
                    && u128::from(itf.address) & mask6(itf.prefix_len)
                        == u128::from(address) & mask6(itf.prefix_len)
            });
        if !on_link {
            return Err(invalid(
                key("address"),
                format!("{address} is not on an IPv6 subnet of port {:?}", n.port),
            ));
        }
        out.neighbors.push(Neighbor6Config {
            port: n.port.clone(),
            vlan: n.vlan,
            address,
            mac,
        });
    }
    if !out.neighbors.is_empty() && out.interfaces.is_empty() {
        return Err(invalid(
            "neighbor",
            "IPv6 neighbors need an [[interface]] with an IPv6 address",
        ));
    }
    Ok(out)
}

/// Moves the IPv6 entries out of the IPv4 lists (after validation).
pub fn split(cfg: &mut EngineConfig, v6: Ipv6Config) {
    cfg.interfaces.retain(|i| !is_v6(&i.address));
    cfg.routes.retain(|r| !is_v6(&r.prefix));
    cfg.neighbors.retain(|n| !is_v6(&n.address));
    cfg.ipv6 = v6;
}

#[cfg(test)]
mod tests;
