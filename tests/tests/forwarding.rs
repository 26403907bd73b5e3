//! End-to-end forwarding through the engine: h1 — engine — h2 in network
//! namespaces, with real ping, iperf3 and scapy as peers. Every test builds
//! and removes its own topology; they must run as root.

use std::collections::BTreeMap;
use std::time::Duration;

use patronus_e2e::probe::{iperf_json, iperf_server, ping, reply_ttls};
use patronus_e2e::topology::{H1, H2, R_LAN, R_WAN};
use patronus_e2e::{Capture, EngineStats, Netns, Topology};

const READY: Duration = Duration::from_secs(15);

/// The kernel's UDP counters in a namespace (`RcvbufErrors` tells whether a
/// loss happened at the receiving socket rather than on the way).
fn udp_snmp(ns: &Netns) -> BTreeMap<String, u64> {
    let snmp = ns.exec("cat", &["/proc/net/snmp"]);
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(keys), Some(vals)) = (udp.next(), udp.next()) else {
        return BTreeMap::new();
    };
    keys.split_whitespace()
        .zip(vals.split_whitespace())
        .skip(1)
        .filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
        .collect()
}

fn delta(before: &EngineStats, after: &EngineStats, reason: &str) -> u64 {
    after.drop_count(reason) - before.drop_count(reason)
}

#[test]
fn ping_both_ways_decrements_ttl_and_resolves_arp() {
    let mut t = Topology::router("ping");
    let cap = Capture::start(&t.h2, "eth0", "arp", t.dir.path(), "h2-arp");
    t.wait_forwarding(READY);

    let (ok, out) = ping(&t.h1, H2, 3, &[]);
    assert!(ok, "h1 -> h2 ping failed:\n{out}");
    let ttls = reply_ttls(&out);
    assert_eq!(
        ttls,
        vec![63; 3],
        "h2's replies (TTL 64) cross one hop:\n{out}"
    );

    let (ok, out) = ping(&t.h2, H1, 3, &[]);
    assert!(ok, "h2 -> h1 ping failed:\n{out}");
    assert_eq!(
        reply_ttls(&out),
        vec![63; 3],
        "h1's replies cross one hop:\n{out}"
    );

    // The engine answered h1's ARP for its gateway with its own MAC.
    let neigh = t.h1.ip(&["neigh", "show", R_LAN, "dev", "eth0"]);
    assert!(
        neigh.contains(&format!("lladdr {}", t.lan_mac)),
        "h1's neighbour entry for {R_LAN} should hold the engine's MAC {}: {neigh:?}",
        t.lan_mac
    );
    let neigh = t.h2.ip(&["neigh", "show", R_WAN, "dev", "eth0"]);
    assert!(
        neigh.contains(&format!("lladdr {}", t.wan_mac)),
        "h2's neighbour entry for {R_WAN} should hold the engine's MAC {}: {neigh:?}",
        t.wan_mac
    );

    // The engine resolved h2 itself: a who-has 10.2.0.2 from its wan0 MAC.
    let arp = cap.finish();
    assert!(
        arp.iter().any(|f| f["op"] == 1
            && f["pdst"] == H2
            && f["psrc"] == R_WAN
            && f["hwsrc"] == t.wan_mac.as_str()),
        "no ARP request for {H2} from the engine seen on h2: {arp:?}"
    );

    let s = t.stats();
    assert!(s.counter("arp_requests_sent") >= 1, "{}", s.json);
    assert!(s.counter("arp_replies_sent") >= 1, "{}", s.json);
    for (port, key) in [
        ("lan0", "rx_packets"),
        ("lan0", "tx_packets"),
        ("wan0", "rx_packets"),
        ("wan0", "tx_packets"),
    ] {
        // Six echo requests and six replies crossed each port at least.
        assert!(s.port(port, key) >= 6, "{port}.{key}: {}", s.json);
    }
    let (status, _) = t.engine().stop();
    assert!(status.success(), "engine exit status {status}");
}

#[test]
fn iperf3_tcp_with_offloads_on() {
    let mut t = Topology::router("tcp");
    t.wait_forwarding(READY);
    // The hosts' veths keep their default offloads (TSO, GSO, checksum).
    let feats = t.h1.exec("ethtool", &["-k", "eth0"]);
    assert!(
        feats.contains("tcp-segmentation-offload: on"),
        "expected TSO on h1's veth:\n{feats}"
    );

    let mut server = iperf_server(t.dir.path(), &t.h2);
    let out = t.h1.exec_output(
        "timeout",
        &["60", "iperf3", "-c", H2, "-p", "5201", "-t", "10", "-J"],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "iperf3 client failed ({}): {text}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let v = iperf_json(&text);
    let received = v["end"]["sum_received"]["bytes"].as_u64().unwrap_or(0);
    let bps = v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap_or(0.0);
    eprintln!(
        "iperf3 TCP through the engine: {received} bytes, {:.1} Mbit/s",
        bps / 1e6
    );
    assert!(received > 0, "no bytes received: {text}");
    assert!(server
        .wait_timeout(Duration::from_secs(10))
        .is_some_and(|s| s.success()));

    let s = t.stats();
    assert!(s.port("wan0", "tx_bytes") >= received, "{}", s.json);
    let (status, _) = t.engine().stop();
    assert!(status.success(), "engine exit status {status}");
}

#[test]
fn udp_stream_survives_malformed_frames() {
    let mut t = Topology::router("udp");
    t.wait_forwarding(READY);
    let _server = iperf_server(t.dir.path(), &t.h2);
    // Nothing malformed may come out on h2's side.
    let leak = Capture::start(&t.h2, "eth0", "udp port 9999", t.dir.path(), "h2-leak");
    let before = t.stats();
    let h2_udp_before = udp_snmp(&t.h2);

    let mut client = t.h1.spawn(
        "timeout",
        &[
            "60", "iperf3", "-c", H2, "-p", "5201", "-u", "-b", "20M", "-l", "1400", "-t", "10",
            "-w", "4M", "-J",
        ],
        t.dir.path(),
        "iperf3-udp",
    );
    std::thread::sleep(Duration::from_secs(2));
    let sent = patronus_e2e::scapy::send_malformed(&t.h1, "eth0", &t.lan_mac, H1, H2, 300);
    let status = client
        .wait_timeout(Duration::from_secs(70))
        .expect("iperf3 client did not end");
    assert!(status.success(), "iperf3 UDP failed: {}", client.report());
    let v = iperf_json(&client.stdout());
    let sum = &v["end"]["sum"];
    let packets = sum["packets"].as_u64().unwrap_or(0);
    let lost = sum["lost_packets"].as_u64();
    eprintln!("iperf3 UDP: {packets} datagrams, lost {lost:?}; malformed sent: {sent:?}");
    let after = t.stats();
    assert!(packets > 0, "no datagrams: {}", v["end"]);
    assert_eq!(
        lost,
        Some(0),
        "datagrams lost (engine lan0 rx_missed grew by {}: its RX ring overflowed if > 0): \
         {}\nh2's UDP counters before: {h2_udp_before:?}\nafter: {:?}\n\
         engine before: {}\nengine after: {}",
        after.port("lan0", "rx_missed") - before.port("lan0", "rx_missed"),
        v["end"]["sum"],
        udp_snmp(&t.h2),
        before.json,
        after.json
    );

    let leaked = leak.finish();
    assert!(
        leaked.is_empty(),
        "malformed frames were forwarded: {leaked:?}"
    );

    let n = |k: &str| {
        sent.get(k)
            .copied()
            .unwrap_or_else(|| panic!("no kind {k}: {sent:?}"))
    };
    let mut failures = BTreeMap::new();
    let mut expect = |what: &str, got: u64, want: u64| {
        if got < want {
            failures.insert(what.to_string(), (got, want));
        }
    };
    for reason in [
        "ipv4_truncated",
        "ipv4_bad_checksum",
        "ipv4_bad_ihl",
        "ipv4_bad_length",
        "ipv4_bad_version",
    ] {
        expect(reason, delta(&before, &after, reason), n(reason));
    }
    // IHL past the end also has a total length below the header: either
    // reason is right, but every such frame must be under one of them.
    expect(
        "ipv4_bad_ihl + ipv4_bad_length",
        delta(&before, &after, "ipv4_bad_ihl") + delta(&before, &after, "ipv4_bad_length"),
        n("ipv4_bad_ihl") + n("ipv4_bad_length") + n("ipv4_bad_ihl_or_length"),
    );
    let total: u64 = sent.values().sum();
    expect(
        "drops_total",
        after.counter("drops_total") - before.counter("drops_total"),
        total,
    );
    assert!(
        failures.is_empty(),
        "drop counters that grew less than the frames sent (got, want): {failures:?}\nbefore: {}\nafter: {}",
        before.json,
        after.json
    );
    let (status, _) = t.engine().stop();
    assert!(status.success(), "engine exit status {status}");
}

#[test]
fn icmp_errors_time_exceeded_and_unreachable() {
    let mut t = Topology::router("icmp");
    t.wait_forwarding(READY);
    let before = t.stats();

    let (ok, out) = ping(&t.h1, H2, 1, &["-t", "1"]);
    assert!(!ok, "a TTL 1 ping must not be answered:\n{out}");
    assert!(
        out.contains(&format!("From {R_LAN}")) && out.contains("Time to live exceeded"),
        "expected time exceeded from {R_LAN}:\n{out}"
    );

    // No default route is configured: 198.51.100.1 has no route.
    let (ok, out) = ping(&t.h1, "198.51.100.1", 1, &[]);
    assert!(!ok, "an unrouted address must not answer:\n{out}");
    assert!(
        out.contains(&format!("From {R_LAN}")) && out.contains("Unreachable"),
        "expected destination unreachable from {R_LAN}:\n{out}"
    );

    let after = t.stats();
    assert!(delta(&before, &after, "ttl_expired") >= 1, "{}", after.json);
    assert!(delta(&before, &after, "no_route") >= 1, "{}", after.json);
    assert!(
        after.counter("icmp_sent") - before.counter("icmp_sent") >= 2,
        "{}",
        after.json
    );
    let (status, _) = t.engine().stop();
    assert!(status.success(), "engine exit status {status}");
}

#[test]
fn engine_answers_ping_to_its_addresses() {
    let mut t = Topology::router("local");
    let before = t.stats();
    for (ns, dst) in [(&t.h1, R_LAN), (&t.h2, R_WAN), (&t.h1, R_WAN)] {
        let mut last = String::new();
        // The first attempt may wait for ARP; retry briefly.
        let answered = (0..5).any(|_| {
            let (ok, out) = ping(ns, dst, 3, &[]);
            last = out;
            ok && last.contains(" 0% packet loss")
        });
        assert!(
            answered,
            "ping {} -> {dst} not answered:\n{last}",
            ns.name()
        );
    }
    let after = t.stats();
    assert!(
        after.counter("icmp_sent") - before.counter("icmp_sent") >= 9,
        "{}",
        after.json
    );
    let (status, _) = t.engine().stop();
    assert!(status.success(), "engine exit status {status}");
}

/// Two workers: PACKET_FANOUT spreads flows over both, neighbors learnt by
/// one worker reach the other, and parallel TCP streams get through (16
/// flows: the chance that the hash puts all on one worker is 2^-15).
#[test]
fn two_workers_share_the_flows() {
    let mut t =
        Topology::build_workers("w2", patronus_e2e::topology::RouterKind::from_env(), "", 2);
    t.wait_forwarding(READY);
    let mut server = iperf_server(t.dir.path(), &t.h2);
    let out = t.h1.exec_output(
        "timeout",
        &[
            "60", "iperf3", "-c", H2, "-p", "5201", "-t", "5", "-P", "16", "-J",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "iperf3 client failed ({}): {text}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let v = iperf_json(&text);
    let received = v["end"]["sum_received"]["bytes"].as_u64().unwrap_or(0);
    assert!(received > 0, "no bytes received: {text}");
    assert!(server
        .wait_timeout(Duration::from_secs(10))
        .is_some_and(|s| s.success()));
    let s = t.stats();
    let workers = s.json["per_worker"].as_array().cloned().unwrap_or_default();
    assert_eq!(workers.len(), 2, "{}", s.json);
    for w in &workers {
        let rx = w["rx_packets"].as_u64().unwrap_or(0);
        assert!(rx > 1000, "every worker carries flows: {}", s.json);
    }
    assert!(s.port("wan0", "tx_bytes") >= received, "{}", s.json);
    let (status, _) = t.engine().stop();
    assert!(status.success(), "engine exit status {status}");
}

/// SIGHUP publishes the file's routes as a new FIB generation 50 times while
/// a UDP stream flows: the workers switch tables between batches and not a
/// datagram is lost or reordered.
#[test]
fn route_reloads_are_hitless() {
    let mut t = Topology::router("hup");
    t.wait_forwarding(READY);
    let cfg_path = t.dir.path().join("engine.toml");
    let base = std::fs::read_to_string(&cfg_path).expect("engine config");
    let _server = iperf_server(t.dir.path(), &t.h2);
    let mut client = t.h1.spawn(
        "timeout",
        &[
            "60", "iperf3", "-c", H2, "-p", "5201", "-u", "-b", "20M", "-l", "1400", "-t", "8",
            "-w", "4M", "-J",
        ],
        t.dir.path(),
        "iperf3-udp",
    );
    std::thread::sleep(Duration::from_secs(1));
    let before = t.stats().counter("table_generation");
    // Every other reload adds a blackhole and a host route to h2 over the
    // same next hop: the table really changes, the path does not.
    let extra = "[[route]]\nprefix = \"192.0.2.0/24\"\nblackhole = true\n\
                 [[route]]\nprefix = \"10.2.0.2/32\"\nvia = \"10.2.0.2\"\n";
    const RELOADS: u64 = 50;
    for i in 0..RELOADS {
        let text = if i % 2 == 0 {
            format!("{base}{extra}")
        } else {
            base.clone()
        };
        let tmp = cfg_path.with_extension("tmp");
        std::fs::write(&tmp, text).expect("write config");
        std::fs::rename(&tmp, &cfg_path).expect("replace config");
        t.engine().process().signal(libc::SIGHUP);
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = client
        .wait_timeout(Duration::from_secs(70))
        .expect("iperf3 client did not end");
    assert!(status.success(), "iperf3 UDP failed: {}", client.report());
    let v = iperf_json(&client.stdout());
    let sum = &v["end"]["sum"];
    let packets = sum["packets"].as_u64().unwrap_or(0);
    assert!(packets > 0, "no datagrams: {}", v["end"]);
    assert_eq!(
        sum["lost_packets"].as_u64(),
        Some(0),
        "datagrams lost: {sum}"
    );
    if let Some(ooo) = sum["out_of_order"].as_u64() {
        assert_eq!(ooo, 0, "datagrams reordered: {sum}");
    }
    let s = t.stats();
    assert_eq!(
        s.counter("table_generation"),
        before + RELOADS,
        "one generation per reload: {}",
        s.json
    );
    assert_eq!(
        s.counter("table_generation_min_acked"),
        s.counter("table_generation"),
        "every worker adopted the last generation: {}",
        s.json
    );
    // The last reload (odd) removed the extra routes again.
    assert_eq!(s.counter("routes"), 6, "{}", s.json);
    let (status, _) = t.engine().stop();
    assert!(status.success(), "engine exit status {status}");
}
