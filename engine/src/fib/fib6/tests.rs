//! The IPv6 FIB: connected subnets and our addresses, configured routes,
//! pushed routes over configured ones, ECMP, link-local gateways, routes
//! that cannot resolve.

use super::*;
use patronus_shm::route6::Route6Entry;

const CFG: &str = r#"
[[port]]
name = "lan0"
driver = "mem"
[[port]]
name = "wan0"
driver = "mem"
[[interface]]
port = "lan0"
address = "2001:db8:1::1/64"
[[interface]]
port = "wan0"
address = "2001:db8:2::1/64"
[[route]]
prefix = "2001:db8:9::/48"
via = "2001:db8:2::254"
[[route]]
prefix = "2001:db8:e::/48"
via = ["2001:db8:2::10", "2001:db8:2::11"]
"#;

fn a(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn cfg() -> EngineConfig {
    EngineConfig::parse(CFG).unwrap()
}

fn via(p: &str, len: u8, gws: &[(&str, u16)]) -> Route6Entry {
    let mut r = Route6Entry::new(a(p), len, RouteKind::Via);
    for (g, i) in gws {
        r.push_nexthop(a(g), *i);
    }
    r
}

#[test]
fn configured_table() {
    let f = Fib6::build(&cfg()).unwrap();
    assert_eq!(f.routes(), 2);
    assert_eq!(
        f.route(a("2001:db8:1::1"), 0),
        Some(NextHop6::Local { iface: 0 })
    );
    assert_eq!(
        f.route(a("2001:db8:1::77"), 0),
        Some(NextHop6::Connected { iface: 0 })
    );
    assert_eq!(
        f.route(a("2001:db8:2::1"), 0),
        Some(NextHop6::Local { iface: 1 })
    );
    assert_eq!(
        f.route(a("2001:db8:9:1::5"), 0),
        Some(NextHop6::Via {
            iface: 1,
            gw: u128::from(a("2001:db8:2::254"))
        })
    );
    assert_eq!(f.route(a("2001:db8:7::1"), 0), None);
    let idx = f.lookup(a("2001:db8:e::1")).unwrap();
    assert!(f.is_ecmp(idx));
    let members: std::collections::HashSet<NextHop6> = (0..64u32)
        .map(|h| f.next_hop(idx, h.wrapping_mul(0x0400_0000)))
        .collect();
    assert_eq!(members.len(), 2);
}

#[test]
fn pushed_routes_replace_configured_ones_and_add_their_own() {
    let pushed = vec![
        via("2001:db8:9::", 48, &[("2001:db8:1::99", IFACE_ANY)]),
        via("2001:db8:aa::", 48, &[("fe80::1", 1)]),
        Route6Entry::new(a("2001:db8:bb::"), 48, RouteKind::Blackhole),
        // No connected subnet holds this gateway: skipped.
        via("2001:db8:cc::", 48, &[("2001:db8:77::1", IFACE_ANY)]),
        // A port that does not exist: skipped.
        via("2001:db8:dd::", 48, &[("fe80::1", 7)]),
    ];
    let f = Fib6::build_with(&cfg(), &pushed, 5).unwrap();
    assert_eq!(f.pushed_generation(), 5);
    assert_eq!(f.skipped(), 2);
    assert_eq!(f.routes(), 4, "two configured (one replaced) + two pushed");
    assert_eq!(
        f.route(a("2001:db8:9::1"), 0),
        Some(NextHop6::Via {
            iface: 0,
            gw: u128::from(a("2001:db8:1::99"))
        })
    );
    assert_eq!(
        f.route(a("2001:db8:aa::1"), 0),
        Some(NextHop6::Via {
            iface: 1,
            gw: u128::from(a("fe80::1"))
        })
    );
    assert_eq!(f.route(a("2001:db8:bb::1"), 0), Some(NextHop6::Blackhole));
    assert_eq!(f.route(a("2001:db8:cc::1"), 0), None);
    // Without the push the configured route is back.
    let f = Fib6::build(&cfg()).unwrap();
    assert_eq!(
        f.route(a("2001:db8:9::1"), 0),
        Some(NextHop6::Via {
            iface: 1,
            gw: u128::from(a("2001:db8:2::254"))
        })
    );
}

#[test]
fn a_route_over_a_connected_prefix_does_not_hide_it() {
    let pushed = vec![via("2001:db8:1::", 64, &[("2001:db8:2::5", IFACE_ANY)])];
    let f = Fib6::build_with(&cfg(), &pushed, 1).unwrap();
    assert_eq!(
        f.route(a("2001:db8:1::5"), 0),
        Some(NextHop6::Connected { iface: 0 })
    );
}

#[test]
fn ipv6_off_means_an_empty_table() {
    let c = EngineConfig::parse("[[port]]\nname = \"a\"\ndriver = \"mem\"\n").unwrap();
    let f = Fib6::build(&c).unwrap();
    assert_eq!((f.routes(), f.prefixes()), (0, 0));
    assert_eq!(f.lookup(a("2001:db8::1")), None);
}
