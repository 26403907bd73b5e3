//! The IPv6 routes the control process pushes: `route6.bin` in the runtime
//! directory, in the generation-file format with one [`Route6Entry`] table,
//! numbered by the control block's `route6_generation` (its own sequence).
//! Replaced whole on every change (IPv6 tables are small next to IPv4 ones:
//! no deltas); written atomically (temp file, rename), then the number is
//! bumped; the engine notices the bump with one atomic load
//! ([`crate::Subscriber::poll_route6`]).
//!
//! The engine merges these routes over its configuration's IPv6 routes (a
//! pushed prefix replaces a configured one of the same length), like the
//! IPv4 routes of the main generation file.

use crate::error::ShmError;
use crate::generation::{GenerationBuilder, GenerationView};
use crate::layout::{RouteKind, TableEntry, TableKind, IFACE_ANY};
use crate::pod::Pod;
use crate::table::TableBuilder;

/// Name of the IPv6 route file in the runtime directory.
pub const ROUTE6_FILE: &str = "route6.bin";

/// Next hops per IPv6 route (ECMP width).
pub const MAX_NEXTHOPS6: usize = 8;

/// One IPv6 route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Route6Entry {
    /// Network address, network byte order (`Ipv6Addr::octets()`), host
    /// bits zero.
    pub prefix: [u8; 16],
    /// 0..=128.
    pub prefix_len: u8,
    /// A [`RouteKind`] as u8: `Via` or `Blackhole` (`Connected` and `Local`
    /// come from the engine's interfaces).
    pub kind: u8,
    /// Used slots of `nexthops`/`iface` (0 for blackhole).
    pub nexthop_count: u16,
    /// Lower wins among equal prefixes (informational for the engine).
    pub metric: u32,
    /// Gateway addresses, network byte order. A link-local gateway
    /// (fe80::/10) needs its interface in `iface`.
    pub nexthops: [[u8; 16]; MAX_NEXTHOPS6],
    /// Engine port index per next hop (the port's position in the engine's
    /// `[[port]]` list), or [`IFACE_ANY`] = resolve from the gateway's
    /// connected subnet.
    pub iface: [u16; MAX_NEXTHOPS6],
}

// SAFETY: repr(C), only integers and arrays of integers; 16 + 1 + 1 + 2 + 4
// + 128 + 16 = 168 = size_of (asserted below), so no padding; every bit
// pattern is valid.
unsafe impl Pod for Route6Entry {}

const _: () = assert!(std::mem::size_of::<Route6Entry>() == 168);

impl Route6Entry {
    /// A route with no next hops yet.
    pub fn new(prefix: std::net::Ipv6Addr, prefix_len: u8, kind: RouteKind) -> Self {
        Route6Entry {
            prefix: prefix.octets(),
            prefix_len,
            kind: kind as u8,
            nexthop_count: 0,
            metric: 0,
            nexthops: [[0; 16]; MAX_NEXTHOPS6],
            iface: [IFACE_ANY; MAX_NEXTHOPS6],
        }
    }

    /// Adds a next hop; false when all slots are used.
    pub fn push_nexthop(&mut self, gw: std::net::Ipv6Addr, iface: u16) -> bool {
        let i = usize::from(self.nexthop_count);
        if i >= MAX_NEXTHOPS6 {
            return false;
        }
        self.nexthops[i] = gw.octets();
        self.iface[i] = iface;
        self.nexthop_count += 1;
        true
    }

    /// The network address.
    pub fn prefix_addr(&self) -> std::net::Ipv6Addr {
        std::net::Ipv6Addr::from(self.prefix)
    }

    /// The used next hops (gateway, interface index).
    pub fn nexthops(&self) -> impl Iterator<Item = (std::net::Ipv6Addr, u16)> + '_ {
        let n = usize::from(self.nexthop_count).min(MAX_NEXTHOPS6);
        self.nexthops[..n]
            .iter()
            .zip(&self.iface[..n])
            .map(|(g, &i)| (std::net::Ipv6Addr::from(*g), i))
    }

    /// The route's kind, if known.
    pub fn route_kind(&self) -> Option<RouteKind> {
        RouteKind::from_u8(self.kind)
    }
}

impl TableEntry for Route6Entry {
    const KIND: TableKind = TableKind::Route6;
    const DEFAULT_MAX: u64 = 1 << 20;
    fn validate(&self) -> Result<(), &'static str> {
        if self.prefix_len > 128 {
            return Err("IPv6 prefix length above 128");
        }
        let bits = u128::from_be_bytes(self.prefix);
        let host = if self.prefix_len == 0 {
            u128::MAX
        } else {
            u128::MAX >> self.prefix_len
        };
        if self.prefix_len < 128 && bits & host != 0 {
            return Err("IPv6 prefix has host bits set");
        }
        match self.route_kind() {
            Some(RouteKind::Via) => {
                if self.nexthop_count == 0 || usize::from(self.nexthop_count) > MAX_NEXTHOPS6 {
                    return Err("IPv6 via route needs 1..=8 next hops");
                }
                for (gw, iface) in self.nexthops() {
                    if gw.is_unspecified() || gw.is_multicast() {
                        return Err("IPv6 next hop unspecified or multicast");
                    }
                    if gw.is_unicast_link_local() && iface == IFACE_ANY {
                        return Err("link-local IPv6 next hop without an interface");
                    }
                }
                Ok(())
            }
            Some(RouteKind::Blackhole) => Ok(()),
            _ => Err("IPv6 route kind is neither via nor blackhole"),
        }
    }
}

/// The IPv6 routes as pushed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Route6Tables {
    pub routes: Vec<Route6Entry>,
}

impl Route6Tables {
    /// The file's table (every entry validated, prefixes unique).
    pub fn builder(&self) -> Result<GenerationBuilder, ShmError> {
        self.check_unique()?;
        let mut g = GenerationBuilder::new();
        let mut t = TableBuilder::<Route6Entry>::new();
        t.extend_from_slice(&self.routes)?;
        g.add(t)?;
        Ok(g)
    }

    /// The routes of a parsed file.
    pub fn from_view(v: &GenerationView<'_>) -> Result<Route6Tables, ShmError> {
        let t = Route6Tables {
            routes: v
                .table::<Route6Entry>()
                .map_or_else(Vec::new, |t| t.entries().to_vec()),
        };
        t.check_unique()?;
        Ok(t)
    }

    fn check_unique(&self) -> Result<(), ShmError> {
        let mut keys: Vec<([u8; 16], u8)> = self
            .routes
            .iter()
            .map(|r| (r.prefix, r.prefix_len))
            .collect();
        keys.sort_unstable();
        if keys.windows(2).any(|w| w[0] == w[1]) {
            return Err(ShmError::BadDirectory {
                reason: "two IPv6 routes for one prefix",
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    fn via(p: &str, len: u8, gw: &str) -> Route6Entry {
        let mut r = Route6Entry::new(p.parse().unwrap(), len, RouteKind::Via);
        assert!(r.push_nexthop(gw.parse().unwrap(), IFACE_ANY));
        r
    }

    #[test]
    fn routes_round_trip_through_the_file_format() {
        let t = Route6Tables {
            routes: vec![
                via("2001:db8:1::", 48, "2001:db8:ff::2"),
                Route6Entry::new(Ipv6Addr::UNSPECIFIED, 0, RouteKind::Blackhole),
            ],
        };
        let bytes = crate::AlignedBuf::copy_from(&t.builder().unwrap().encode(3));
        let v = GenerationView::parse(bytes.as_bytes()).unwrap();
        assert_eq!(v.generation(), 3);
        let back = Route6Tables::from_view(&v).unwrap();
        assert_eq!(back, t);
        assert_eq!(
            back.routes[0].nexthops().next(),
            Some(("2001:db8:ff::2".parse().unwrap(), IFACE_ANY))
        );
    }

    #[test]
    fn bad_entries_are_refused_with_a_reason() {
        assert!(via("2001:db8:1::1", 48, "2001:db8::2").validate().is_err());
        assert!(via("2001:db8::", 129, "2001:db8::2").validate().is_err());
        assert!(via("2001:db8::", 32, "fe80::1").validate().is_err());
        assert!(via("2001:db8::", 32, "ff02::1").validate().is_err());
        let mut ll = Route6Entry::new("2001:db8::".parse().unwrap(), 32, RouteKind::Via);
        ll.push_nexthop("fe80::1".parse().unwrap(), 1);
        assert!(ll.validate().is_ok());
        let none = Route6Entry::new("2001:db8::".parse().unwrap(), 32, RouteKind::Via);
        assert!(none.validate().is_err());
        let dup = Route6Tables {
            routes: vec![via("2001:db8::", 32, "2001:db8::2"); 2],
        };
        assert!(dup.builder().is_err());
    }
}
