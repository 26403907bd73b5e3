//! pcap in -> pcap out: a capture crafted with scapy goes through the engine
//! with pcap ports (no namespaces needed); what comes out of each port is
//! read back and checked frame by frame, and the drops are counted.

use std::time::Duration;

use patronus_e2e::scapy::{pcap_summary, python};
use patronus_e2e::{Engine, TempDir};
use serde_json::Value;

const LAN_MAC: &str = "02:00:00:00:00:01";
const WAN_MAC: &str = "02:00:00:00:00:02";
const HOST_MAC: &str = "02:00:00:00:01:02";
const NEXT_HOP_MAC: &str = "02:00:00:00:02:53";

fn config(dir: &TempDir) -> String {
    let p = |n: &str| dir.join(n).display().to_string();
    format!(
        r#"[engine]
workers = 1

[[port]]
name = "lan0"
driver = "pcap"
mac = "{LAN_MAC}"
input = "{input}"
output = "{lan_out}"

[[port]]
name = "wan0"
driver = "pcap"
mac = "{WAN_MAC}"
output = "{wan_out}"

[[interface]]
port = "lan0"
address = "10.1.0.1/24"

[[interface]]
port = "wan0"
address = "10.2.0.1/24"

# Resolved statically: forwarded.
[[route]]
prefix = "203.0.113.0/24"
via = "10.2.0.253"

# Nobody answers ARP in a capture: held, and an ARP request goes out.
[[route]]
prefix = "198.51.100.7/32"
via = "10.2.0.254"

[[neighbor]]
port = "wan0"
address = "10.2.0.253"
mac = "{NEXT_HOP_MAC}"

[[neighbor]]
port = "lan0"
address = "10.1.0.2"
mac = "{HOST_MAC}"
"#,
        input = p("in.pcap"),
        lan_out = p("lan-out.pcap"),
        wan_out = p("wan-out.pcap"),
    )
}

fn count(frames: &[Value], pred: impl Fn(&Value) -> bool) -> usize {
    frames.iter().filter(|f| pred(f)).count()
}

#[test]
fn pcap_in_pcap_out() {
    let dir = TempDir::new("pcap");
    let made = python(
        include_str!("../py/make_pcap.py"),
        &[dir.join("in.pcap").to_str().unwrap(), LAN_MAC, HOST_MAC],
    );
    let sent: Value = serde_json::from_str(made.trim()).expect("make_pcap.py output");
    let n = |k: &str| {
        sent[k]
            .as_u64()
            .unwrap_or_else(|| panic!("no {k} in {sent}"))
    };
    let total: u64 = sent
        .as_object()
        .unwrap()
        .values()
        .filter_map(Value::as_u64)
        .sum();

    let mut engine = Engine::start(None, &config(&dir), dir.path(), "engine", &[]);
    // The input is finite: the engine stops by itself once it is read.
    let (status, s) = engine.wait_exit(Duration::from_secs(60));
    let report = engine.process().report();
    assert!(status.success(), "engine failed: {report}");

    let lan = pcap_summary(&dir.join("lan-out.pcap"));
    let wan = pcap_summary(&dir.join("wan-out.pcap"));
    let ctx = format!(
        "lan out: {lan:?}\nwan out: {wan:?}\nstats: {}\n{report}",
        s.json
    );

    // Forwarded: TTL decremented, checksum redone, MACs rewritten.
    let fwd = count(&wan, |f| {
        f["proto"] == "ipv4"
            && f["dst"] == "203.0.113.7"
            && f["ttl"] == 63
            && f["chksum_ok"] == true
            && f["eth_src"] == WAN_MAC
            && f["eth_dst"] == NEXT_HOP_MAC
    });
    assert_eq!(fwd as u64, n("udp_resolved"), "forwarded UDP frames\n{ctx}");
    // Nothing malformed, expired or unresolved went out of wan0.
    let wan_ipv4 = count(&wan, |f| f["proto"] == "ipv4");
    assert_eq!(wan_ipv4, fwd, "unexpected IPv4 out of wan0\n{ctx}");
    // The unresolved next hop was asked for.
    assert!(
        count(&wan, |f| f["proto"] == "arp"
            && f["op"] == 1
            && f["pdst"] == "10.2.0.254"
            && f["psrc"] == "10.2.0.1"
            && f["hwsrc"] == WAN_MAC
            && f["eth_dst"] == "ff:ff:ff:ff:ff:ff")
            >= 1,
        "no ARP request for 10.2.0.254\n{ctx}"
    );

    // lan0: the ARP reply, the echo reply, time exceeded, unreachable.
    assert_eq!(
        count(&lan, |f| f["proto"] == "arp"
            && f["op"] == 2
            && f["psrc"] == "10.1.0.1"
            && f["hwsrc"] == LAN_MAC
            && f["pdst"] == "10.1.0.2"
            && f["eth_dst"] == HOST_MAC),
        1,
        "ARP reply\n{ctx}"
    );
    let icmp_from_us = |ty: u64| {
        count(&lan, |f| {
            f["proto"] == "ipv4"
                && f["src"] == "10.1.0.1"
                && f["dst"] == "10.1.0.2"
                && f["icmp_type"] == ty
                && f["chksum_ok"] == true
                && f["eth_dst"] == HOST_MAC
                && f["eth_src"] == LAN_MAC
        })
    };
    assert_eq!(icmp_from_us(0), 1, "echo reply\n{ctx}");
    assert_eq!(icmp_from_us(11), 1, "time exceeded\n{ctx}");
    // Net unreachable for the unrouted packet; host unreachable for each
    // packet held for 10.2.0.254 once ARP gave up (the engine waits for
    // that before it stops).
    let unreachable = |code: u64| {
        count(&lan, |f| {
            f["proto"] == "ipv4"
                && f["src"] == "10.1.0.1"
                && f["dst"] == "10.1.0.2"
                && f["icmp_type"] == 3
                && f["icmp_code"] == code
                && f["chksum_ok"] == true
        }) as u64
    };
    assert_eq!(unreachable(0), n("udp_no_route"), "net unreachable\n{ctx}");
    assert_eq!(
        unreachable(1),
        n("udp_unresolved"),
        "host unreachable\n{ctx}"
    );
    assert!(
        s.drop_count("arp_unresolved") >= n("udp_unresolved"),
        "{ctx}"
    );

    assert_eq!(s.port("lan0", "rx_packets"), total, "{ctx}");
    assert_eq!(s.port("wan0", "tx_packets"), wan.len() as u64, "{ctx}");
    assert_eq!(s.port("lan0", "tx_packets"), lan.len() as u64, "{ctx}");
    for reason in [
        "ipv4_bad_checksum",
        "ipv4_bad_version",
        "ipv4_truncated",
        "ipv4_bad_ihl",
        "eth_truncated",
    ] {
        assert!(s.drop_count(reason) >= n(reason), "{reason}\n{ctx}");
    }
    assert!(s.drop_count("ttl_expired") >= 1, "{ctx}");
    assert!(s.drop_count("no_route") >= 1, "{ctx}");
    assert!(s.counter("arp_requests_sent") >= 1, "{ctx}");
    assert!(s.counter("arp_replies_sent") >= 1, "{ctx}");
}
