//! IPv6 entries in the configuration: parsed, split from the IPv4 lists,
//! and refused with the key named.

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
address = "10.1.0.1/24"
[[interface]]
port = "lan0"
address = "2001:db8:1::1/64"
[[interface]]
port = "wan0"
address = "2001:db8:2::1/64"
[[interface]]
port = "wan0"
address = "10.2.0.1/24"
"#;

fn err(extra: &str) -> String {
    EngineConfig::parse(&format!("{BASE}{extra}"))
        .unwrap_err()
        .to_string()
}

#[test]
fn ipv6_entries_are_split_from_the_ipv4_lists() {
    let c = EngineConfig::parse(&format!(
        "{BASE}[[route]]\nprefix = \"0.0.0.0/0\"\nvia = \"10.2.0.254\"\n\
         [[route]]\nprefix = \"::/0\"\nvia = [\"2001:db8:2::2\", \"fe80::1%wan0\"]\n\
         [[route]]\nprefix = \"2001:db8:dead::/48\"\nblackhole = true\n\
         [[neighbor]]\nport = \"wan0\"\naddress = \"2001:db8:2::2\"\nmac = \"02:00:00:00:00:02\"\n"
    ))
    .unwrap();
    assert_eq!(c.interfaces.len(), 2, "IPv4 only left");
    assert_eq!(c.routes.len(), 1);
    assert!(c.neighbors.is_empty());
    assert!(c.ipv6.enabled());
    assert_eq!(
        c.ipv6.interfaces[1].address,
        "2001:db8:2::1".parse::<Ipv6Addr>().unwrap()
    );
    assert_eq!(c.ipv6.interfaces[1].prefix_len, 64);
    assert_eq!(
        c.ipv6.routes[0].action,
        Route6Action::Via(vec![
            Gateway6 {
                addr: "2001:db8:2::2".parse().unwrap(),
                port: None
            },
            Gateway6 {
                addr: "fe80::1".parse().unwrap(),
                port: Some("wan0".into())
            },
        ])
    );
    assert_eq!(c.ipv6.routes[1].action, Route6Action::Blackhole);
    assert_eq!(c.ipv6.neighbors[0].mac, [2, 0, 0, 0, 0, 2]);
    // Every port gets an interface (link-local), in port order.
    let ifs = ipv6_interfaces(&c);
    assert_eq!(ifs.len(), 2);
    assert_eq!((ifs[1].port, ifs[1].vlan, ifs[1].addrs.len()), (1, 0, 1));
}

#[test]
fn link_local_is_the_modified_eui64_of_the_mac() {
    assert_eq!(
        link_local([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]),
        "fe80::5054:ff:fe12:3456".parse::<Ipv6Addr>().unwrap()
    );
}

#[test]
fn bad_entries_name_their_key() {
    for (extra, key, what) in [
        ("[[route]]\nprefix = \"10.9.0.0/16\"\nvia = \"2001:db8:2::2\"\n", "route[0].via", "IPv6 next hop for the IPv4 prefix"),
        ("[[route]]\nprefix = \"2001:db8:9::/48\"\nvia = \"10.2.0.254\"\n", "route[0].via", "IPv4 next hop for the IPv6 prefix"),
        ("[[route]]\nprefix = \"2001:db8:9::1/48\"\nvia = \"2001:db8:2::2\"\n", "route[0].prefix", "host bits"),
        ("[[route]]\nprefix = \"2001:db8:9::/48\"\nvia = \"2001:db8:7::2\"\n", "route[0].via", "not on any IPv6 interface"),
        ("[[route]]\nprefix = \"2001:db8:9::/48\"\nvia = \"fe80::1\"\n", "route[0].via", "needs its port"),
        ("[[route]]\nprefix = \"2001:db8:9::/48\"\nvia = \"fe80::1%nope\"\n", "route[0].via", "no [[port]]"),
        ("[[route]]\nprefix = \"2001:db8:9::/48\"\n", "route[0].via", "required"),
        ("[[interface]]\nport = \"lan0\"\naddress = \"fe80::1/64\"\n", "interface[4].address", "link-local"),
        ("[[interface]]\nport = \"lan0\"\naddress = \"2001:db8:1::1/64\"\n", "interface[4].address", "already assigned"),
        ("[[interface]]\nport = \"lan0\"\naddress = \"2001:db8:1::1/129\"\n", "interface[4].address", "0..=128"),
        ("[[neighbor]]\nport = \"lan0\"\naddress = \"2001:db8:5::1\"\nmac = \"02:00:00:00:00:01\"\n", "neighbor[0].address", "not on an IPv6 subnet"),
        ("[[neighbor]]\nport = \"lan0\"\naddress = \"2001:db8:1::5\"\nmac = \"zz\"\n", "neighbor[0].mac", "MAC"),
    ] {
        let e = err(extra);
        assert!(e.starts_with(key) && e.contains(what), "{extra}: {e}");
    }
}

#[test]
fn ipv4_only_configurations_leave_ipv6_off() {
    let c = EngineConfig::parse(
        "[[port]]\nname = \"a\"\ndriver = \"mem\"\n[[interface]]\nport = \"a\"\naddress = \"10.0.0.1/24\"\n",
    )
    .unwrap();
    assert!(!c.ipv6.enabled());
    assert!(ipv6_interfaces(&c).is_empty());
}
