//! NAT44 end to end: two inside hosts reach an outside server (nginx,
//! dnsmasq, iperf3) through a NAT router, a port forward is reached from the
//! outside, captures show only pool addresses, unsolicited traffic is
//! dropped and ICMP errors come back translated. Every test is written once
//! per router kind (`nat_test!`): nftables masquerade, the reference, and
//! the engine. They must run as root, one at a time.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use patronus_e2e::nat_topology::{
    path_str, sha256, wait_listening, Filtering, NatRouter, NatTopology, DNS_ANSWER, DNS_NAME,
    FILE_NAME, FILE_SIZE, FORWARD_PORT, IN1, IN2, INSIDE_HTTP_PORT, INSIDE_PREFIX, R_OUTSIDE,
    SERVER,
};
use patronus_e2e::probe::{iperf_json, iperf_server, reply_ttls};
use patronus_e2e::scapy::PYTHON;
use patronus_e2e::{Capture, Netns};

const READY: Duration = Duration::from_secs(15);

/// Builds the topology for `kind` (dependent filtering), waits until both
/// inside hosts reach the server, runs `body`.
fn run(kind: NatRouter, body: fn(&mut NatTopology)) {
    let mut t = NatTopology::build(kind, Filtering::AddressAndPortDependent)
        .unwrap_or_else(|e| panic!("cannot build the NAT topology: {e:?}"));
    t.wait_ready(READY);
    body(&mut t);
}

/// One test module per behaviour with one `#[test]` per router kind.
macro_rules! nat_test {
    ($(#[doc = $doc:literal])* fn $name:ident($t:ident) $body:block) => {
        $(#[doc = $doc])*
        mod $name {
            use super::*;

            fn body($t: &mut NatTopology) $body

            #[test]
            fn nftables() {
                run(NatRouter::Nftables, body);
            }

            #[test]
            fn engine() {
                run(NatRouter::Engine, body);
            }
        }
    };
}

/// A tcpdump capture of `filter` on `iface` (Capture runs tcpdump in
/// immediate mode, so frames are not held back when it stops).
fn capture(ns: &Netns, iface: &str, filter: &str, t: &NatTopology, name: &str) -> Capture {
    Capture::start(ns, iface, filter, t.dir.path(), name)
}

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs a Python snippet inside `ns` and parses the JSON it prints.
fn py_json(ns: &Netns, script: &str, args: &[&str]) -> Value {
    let mut a = vec!["-c", script];
    a.extend_from_slice(args);
    let out = ns.exec(PYTHON, &a);
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("script printed {out:?}: {e}"))
}

fn assert_all_in_pool(t: &NatTopology, seen: &[String], what: &str) {
    let pool = t.pool();
    assert!(
        seen.iter().all(|a| pool.contains(&a.as_str())),
        "{what} should come only from the pool {pool:?}, saw {seen:?}"
    );
}

/// Downloads the server's file from an inside host; returns (size, sha256).
fn curl_payload(t: &NatTopology, ns: &Netns, tag: &str) -> (u64, String) {
    let file = t.dir.join(&format!("curl-{tag}.bin"));
    let url = format!("http://{SERVER}/{FILE_NAME}");
    let o = ns.exec_output(
        "curl",
        &[
            "-sS",
            "--fail",
            "--max-time",
            "30",
            "-o",
            path_str(&file),
            &url,
        ],
    );
    assert!(
        o.status.success(),
        "curl {url} from {tag} failed: {}",
        text(&o)
    );
    let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    (size, sha256(&file))
}

nat_test! {
    /// 1. curl from both inside hosts fetches the file intact; nginx saw
    ///    only pool addresses.
    fn curl_from_both_inside_hosts(t) {
        for (ns, addr) in t.inside() {
            let (size, sum) = curl_payload(t, ns, addr);
            assert_eq!(size, FILE_SIZE as u64, "size of the file fetched by {addr}");
            assert_eq!(sum, t.file_sha256, "sha256 of the file fetched by {addr}");
        }
        let clients = t.nginx_clients();
        assert_eq!(clients.len(), 2, "nginx should log two requests: {clients:?}");
        assert_all_in_pool(t, &clients, "nginx's clients");
    }
}

nat_test! {
    /// 2. dig resolves the test name through dnsmasq over UDP (in1) and TCP
    ///    (in2); dnsmasq saw the queries from pool addresses.
    fn dig_resolves_through_dnsmasq(t) {
        let at = format!("@{SERVER}");
        for (ns, addr, transport) in [(&t.in1, IN1, "+notcp"), (&t.in2, IN2, "+tcp")] {
            let o = ns.exec_output(
                "dig",
                &[&at, DNS_NAME, "A", "+short", "+time=2", "+tries=3", transport],
            );
            assert!(o.status.success(), "dig {transport} from {addr}: {}", text(&o));
            assert_eq!(
                String::from_utf8_lossy(&o.stdout).trim(),
                DNS_ANSWER,
                "dig {transport} from {addr}: {}",
                text(&o)
            );
        }
        let clients = t.dns_clients();
        assert!(clients.len() >= 2, "dnsmasq should log both queries: {clients:?}");
        assert_all_in_pool(t, &clients, "dnsmasq's queries");
    }
}

nat_test! {
    /// 3. Both inside hosts ping the server at once with the same ICMP
    ///    identifier, so the router must tell their sessions apart.
    fn ping_from_both_inside_hosts(t) {
        let outs = std::thread::scope(|s| {
            let hs: Vec<_> = t
                .inside()
                .map(|(ns, _)| {
                    s.spawn(move || {
                        ns.exec_output(
                            "ping",
                            &["-n", "-c", "5", "-i", "0.2", "-W", "2", "-e", "4242", SERVER],
                        )
                    })
                })
                .into_iter()
                .collect();
            hs.into_iter().map(|h| h.join().expect("ping thread")).collect::<Vec<_>>()
        });
        for ((_, addr), o) in t.inside().iter().zip(&outs) {
            let out = text(o);
            assert!(o.status.success(), "ping from {addr}:\n{out}");
            // The server's replies (TTL 64) cross one router; every request
            // got its own reply back to the right host. The kernel reference
            // may drop the very first echo: two new conntrack entries with
            // the same id race on two CPUs and the loser is dropped at
            // confirm time (seen once in CI). The engine must answer all.
            let ttls = reply_ttls(&out);
            assert!(ttls.iter().all(|&ttl| ttl == 63), "replies to {addr}:\n{out}");
            let want = match t.kind {
                NatRouter::Engine => 5,
                NatRouter::Nftables => 4,
            };
            assert!(ttls.len() >= want, "replies to {addr}:\n{out}");
        }
    }
}

nat_test! {
    /// 4. iperf3 TCP from in1 and UDP from in2 complete with data counted
    ///    by the server, which saw a pool address as its client.
    fn iperf3_tcp_and_udp(t) {
        let srv = iperf_server(t.dir.path(), &t.server);
        let o = t.in1.exec_output("iperf3", &["-c", SERVER, "-t", "2", "-J"]);
        let v = iperf_json(&String::from_utf8_lossy(&o.stdout));
        assert!(o.status.success(), "iperf3 TCP: {}", text(&o));
        let sent = v["end"]["sum_sent"]["bytes"].as_u64().unwrap_or(0);
        let received = v["end"]["sum_received"]["bytes"].as_u64().unwrap_or(0);
        assert!(sent > 0 && received > 0, "TCP bytes sent {sent}, received {received}: {v}");
        assert_iperf_client_in_pool(t, srv);

        let srv = iperf_server(t.dir.path(), &t.server);
        let o = t
            .in2
            .exec_output("iperf3", &["-c", SERVER, "-u", "-b", "20M", "-t", "2", "-J"]);
        let v = iperf_json(&String::from_utf8_lossy(&o.stdout));
        assert!(o.status.success(), "iperf3 UDP: {}", text(&o));
        let sum = &v["end"]["sum"];
        let packets = sum["packets"].as_u64().unwrap_or(0);
        let lost = sum["lost_packets"].as_u64().unwrap_or(u64::MAX);
        assert!(
            packets > 0 && lost < packets,
            "UDP: the server counted {packets} packets, {lost} lost: {sum}"
        );
        assert_iperf_client_in_pool(t, srv);
    }
}

/// Waits for a one-off iperf3 server to end; checks whom it accepted.
fn assert_iperf_client_in_pool(t: &NatTopology, mut srv: patronus_e2e::BgProcess) {
    srv.wait_timeout(Duration::from_secs(10));
    // "Accepted connection from 198.51.100.1, port 41234"
    let log = srv.stdout();
    let clients: Vec<String> = log
        .lines()
        .filter_map(|l| l.split("Accepted connection from ").nth(1))
        .filter_map(|s| s.split(',').next().map(str::to_string))
        .collect();
    assert!(!clients.is_empty(), "iperf3 server accepted nobody:\n{log}");
    assert_all_in_pool(t, &clients, "iperf3's clients");
}

nat_test! {
    /// 5. The port forward: the server fetches a file from an HTTP server on
    ///    in1 through the router's outside address, and in1 sees the real
    ///    client address.
    fn port_forward_reaches_inside_server(t) {
        let www = t.dir.join("inside-www");
        std::fs::create_dir_all(&www).expect("inside www");
        let body = patronus_e2e::nat_topology::pseudo_random(200_000, 7);
        std::fs::write(www.join("inside.bin"), &body).expect("inside file");
        let want = sha256(&www.join("inside.bin"));
        let port = INSIDE_HTTP_PORT.to_string();
        let p = t.in1.spawn(
            PYTHON,
            &["-m", "http.server", &port, "--bind", IN1, "--directory", path_str(&www)],
            t.dir.path(),
            "inside-http",
        );
        let mut p = wait_listening(&t.in1, p, "tcp", INSIDE_HTTP_PORT);

        let file = t.dir.join("forwarded.bin");
        let url = format!("http://{R_OUTSIDE}:{FORWARD_PORT}/inside.bin");
        let o = t.server.exec_output(
            "curl",
            &["-sS", "--fail", "--max-time", "20", "-o", path_str(&file), &url],
        );
        assert!(o.status.success(), "curl {url} from the server: {}", text(&o));
        assert_eq!(sha256(&file), want, "the file fetched through the forward");

        // http.server logs "198.51.100.2 - - [date] "GET /inside.bin ..." 200 -".
        let log = p.stderr();
        assert!(
            log.lines().any(|l| l.starts_with(&format!("{SERVER} ")) && l.contains("GET /inside.bin")),
            "the inside server should see the request from {SERVER}: {}",
            p.report()
        );
    }
}

nat_test! {
    /// 6. A capture on the outside link while both inside hosts use TCP,
    ///    UDP and ICMP shows pool addresses as the only sources from the
    ///    router, in outer and embedded (ICMP error) headers alike.
    fn outside_capture_shows_only_pool_addresses(t) {
        let cap = capture(&t.server, "eth0", "ip or arp", t, "outside");
        for (ns, addr) in t.inside() {
            let (size, _) = curl_payload(t, ns, addr);
            assert_eq!(size, FILE_SIZE as u64, "curl from {addr}");
            let o = ns.exec_output("dig", &[&format!("@{SERVER}"), DNS_NAME, "+short"]);
            assert!(o.status.success(), "dig from {addr}: {}", text(&o));
            let o = ns.exec_output("ping", &["-n", "-c", "2", "-i", "0.2", SERVER]);
            assert!(o.status.success(), "ping from {addr}: {}", text(&o));
            let r = py_json(ns, UDP_CLOSED_PORT_PY, &[SERVER, "9", "41000"]);
            assert_eq!(r["recv"], "refused", "UDP to a closed port from {addr}: {r}");
        }
        let frames = cap.finish();
        let pool = t.pool();
        let mut from_router = BTreeSet::new();
        for f in frames.iter().filter(|f| f["proto"] == "ipv4") {
            let (src, dst) = (f["src"].as_str().unwrap_or(""), f["dst"].as_str().unwrap_or(""));
            if src != SERVER {
                assert!(pool.contains(&src), "a frame from the router with source {src}: {f}");
                from_router.insert(f["ip_proto"].as_u64().unwrap_or(0));
            }
            if dst != SERVER {
                assert!(pool.contains(&dst), "a frame from the server to {dst}: {f}");
            }
        }
        assert_eq!(
            from_router,
            BTreeSet::from([1, 6, 17]),
            "ICMP, TCP and UDP from the router should all be captured: {} frames",
            frames.len()
        );
        // Every address in every header, embedded ones included.
        let out = t.server.exec(
            "tshark",
            &[
                "-n", "-r", path_str(&t.dir.join("outside.pcap")), "-T", "fields",
                "-E", "occurrence=a", "-E", "aggregator=,",
                "-e", "ip.src", "-e", "ip.dst", "-e", "arp.src.proto_ipv4", "-e", "arp.dst.proto_ipv4",
            ],
        );
        let addrs: BTreeSet<&str> =
            out.split(['\t', '\n', ',']).filter(|a| !a.is_empty()).collect();
        assert!(
            addrs.iter().all(|a| !a.starts_with(INSIDE_PREFIX)),
            "an inside address appeared on the outside link: {addrs:?}"
        );
        assert!(
            addrs.iter().all(|a| *a == SERVER || pool.contains(a)),
            "only the server and the pool belong on the outside link: {addrs:?}"
        );
    }
}

nat_test! {
    /// 7. Dependent filtering: connection attempts from the outside to
    ///    unmapped ports get no answer and reach nobody inside, and a mapped
    ///    UDP endpoint accepts the reply from the endpoint it sent to but not
    ///    a datagram from another port of the same server.
    fn unsolicited_inbound_is_dropped(t) {
        let cap = capture(&t.server, "eth0", "ip", t, "unsolicited");
        let mut listeners: Vec<_> = t
            .inside()
            .map(|(ns, addr)| {
                let p = ns.spawn(PYTHON, &["-c", LISTEN_PY, "9999", "6"], t.dir.path(), addr);
                wait_listening(ns, p, "udp", 9999)
            })
            .into();
        let r = py_json(&t.server, PROBE_PY, &[R_OUTSIDE, "9999"]);
        assert_eq!(r["tcp"], "timeout", "TCP SYN to an unmapped port: {r}");
        assert_eq!(r["udp"], "timeout", "UDP to an unmapped port: {r}");
        // A ping from in1 marks the end: the capture must hold its request
        // (so it saw everything before) and nothing else from the router.
        let o = t.in1.exec_output("ping", &["-n", "-c", "1", "-W", "2", SERVER]);
        assert!(o.status.success(), "marker ping: {}", text(&o));
        let frames = cap.finish();
        let from_router: Vec<_> = frames.iter().filter(|f| f["src"] != SERVER).collect();
        assert!(
            from_router.iter().any(|f| f["icmp_type"] == 8),
            "the capture misses the marker ping: {frames:?}"
        );
        let answers: Vec<_> = from_router.iter().filter(|f| f["icmp_type"] != 8).collect();
        assert!(answers.is_empty(), "the router answered unsolicited traffic: {answers:?}");
        for p in &mut listeners {
            let status = p.wait_timeout(Duration::from_secs(10));
            assert!(status.is_some_and(|s| s.success()), "listener: {}", p.report());
            assert_eq!(p.stdout().trim(), "[]", "an inside host received unsolicited traffic");
        }

        // A mapping in1:40000 -> pool:P towards server:7777.
        let peer = t.server.spawn(PYTHON, &["-c", PEER_PY, "7777", "7778"], t.dir.path(), "peer");
        let mut peer = wait_listening(&t.server, peer, "udp", 7777);
        let got = py_json(&t.in1, MAPPED_PY, &[SERVER, "7777", "40000"]);
        let status = peer.wait_timeout(Duration::from_secs(10));
        assert!(status.is_some_and(|s| s.success()), "UDP peer: {}", peer.report());
        let peer: Value = serde_json::from_str(peer.stdout().trim())
            .unwrap_or_else(|e| panic!("UDP peer printed {:?}: {e}", peer.stdout()));
        let mapped = peer["peer"][0].as_str().unwrap_or("").to_string();
        assert_all_in_pool(t, &[mapped], "the mapped UDP source");
        let got = got.as_array().cloned().unwrap_or_default();
        let payloads: Vec<&str> = got.iter().filter_map(|d| d[0].as_str()).collect();
        assert_eq!(
            payloads,
            vec!["reply"],
            "in1 should get the reply from {SERVER}:7777 and not the datagram from :7778: {got:?}"
        );
        assert_eq!(got[0][1], SERVER, "reply source: {got:?}");
        assert_eq!(got[0][2], 7777, "reply source port: {got:?}");
    }
}

nat_test! {
    /// 8. An ICMP port unreachable for a UDP packet from in1 reaches in1
    ///    translated: its connected socket gets ECONNREFUSED with the
    ///    server as offender, and the error's embedded header holds in1's
    ///    own address and port, with valid checksums.
    fn icmp_errors_are_translated(t) {
        let cap = capture(&t.in1, "eth0", "icmp", t, "inside-icmp");
        let r = py_json(&t.in1, UDP_CLOSED_PORT_PY, &[SERVER, "9", "41000"]);
        assert_eq!(r["recv"], "refused", "recv on the connected socket: {r}");
        assert_eq!(r["origin"], 2, "the error comes from ICMP (SO_EE_ORIGIN_ICMP): {r}");
        assert_eq!((r["type"].as_u64(), r["code"].as_u64()), (Some(3), Some(3)), "{r}");
        assert_eq!(r["offender"], SERVER, "the ICMP error's sender: {r}");
        assert_eq!(r["payload"], "probe", "the error queue returns the datagram: {r}");
        cap.finish();
        let errors = py_json(
            &t.in1,
            ICMP_ERRORS_PY,
            &[path_str(&t.dir.join("inside-icmp.pcap"))],
        );
        let errors = errors.as_array().cloned().unwrap_or_default();
        assert_eq!(errors.len(), 1, "one port unreachable on in1's link: {errors:?}");
        let e = &errors[0];
        assert_eq!(e["src"], SERVER, "{e}");
        assert_eq!(e["dst"], IN1, "{e}");
        assert_eq!((e["type"].as_u64(), e["code"].as_u64()), (Some(3), Some(3)), "{e}");
        assert_eq!(e["inner_src"], IN1, "embedded source address: {e}");
        assert_eq!(e["inner_dst"], SERVER, "embedded destination address: {e}");
        assert_eq!(e["inner_sport"], 41000, "embedded source port: {e}");
        assert_eq!(e["inner_dport"], 9, "embedded destination port: {e}");
        assert_eq!(e["ip_chksum_ok"], true, "outer IPv4 checksum: {e}");
        assert_eq!(e["icmp_chksum_ok"], true, "ICMP checksum: {e}");
        assert_eq!(e["inner_ip_chksum_ok"], true, "embedded IPv4 checksum: {e}");
    }
}

/// Engine only (nftables cannot): endpoint-independent filtering lets any
/// remote endpoint use an existing mapping — in1 gets the datagram from the
/// server's other port as well as the reply.
#[test]
fn engine_endpoint_independent_filtering_admits_other_endpoints() {
    let t = NatTopology::build(NatRouter::Engine, Filtering::EndpointIndependent)
        .unwrap_or_else(|e| panic!("cannot build the NAT topology: {e:?}"));
    t.wait_ready(READY);
    let peer = t.server.spawn(
        PYTHON,
        &["-c", PEER_PY, "7777", "7778"],
        t.dir.path(),
        "peer",
    );
    let mut peer = wait_listening(&t.server, peer, "udp", 7777);
    let got = py_json(&t.in1, MAPPED_PY, &[SERVER, "7777", "40000"]);
    let status = peer.wait_timeout(Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| s.success()),
        "UDP peer: {}",
        peer.report()
    );
    let got = got.as_array().cloned().unwrap_or_default();
    let mut from: Vec<(String, u64)> = got
        .iter()
        .map(|d| {
            (
                d[0].as_str().unwrap_or("").to_string(),
                d[2].as_u64().unwrap_or(0),
            )
        })
        .collect();
    from.sort();
    assert_eq!(
        from,
        vec![("reply".to_string(), 7777), ("stranger".to_string(), 7778)],
        "in1 should get both datagrams through its mapping: {got:?}"
    );
}

/// Engine only: with two workers, packets the ports spread to the worker
/// that does not own their session are handed to the owner — many TCP
/// streams from both hosts complete, the handoff carried frames, none was
/// lost to a full ring or bounced, and every stream got a session.
#[test]
fn engine_workers_hand_packets_to_session_owners() {
    let mut t = NatTopology::build(NatRouter::Engine, Filtering::AddressAndPortDependent)
        .unwrap_or_else(|e| panic!("cannot build the NAT topology: {e:?}"));
    t.wait_ready(READY);
    for (i, (ns, addr)) in t.inside().into_iter().enumerate() {
        let srv = iperf_server(t.dir.path(), &t.server);
        let cport = (42000 + 100 * i).to_string();
        let o = ns.exec_output(
            "iperf3",
            &["-c", SERVER, "-P", "8", "-t", "2", "--cport", &cport, "-J"],
        );
        assert!(o.status.success(), "iperf3 -P 8 from {addr}: {}", text(&o));
        let v = iperf_json(&String::from_utf8_lossy(&o.stdout));
        let received = v["end"]["sum_received"]["bytes"].as_u64().unwrap_or(0);
        assert!(received > 0, "iperf3 from {addr} moved no data: {v}");
        assert_iperf_client_in_pool(&t, srv);
    }
    let stats = t.engine.as_mut().expect("engine").stats().json;
    let nat = &stats["nat"];
    let workers = stats["per_worker"].as_array().cloned().unwrap_or_default();
    let handed: u64 = workers
        .iter()
        .map(|w| w["handoff_received"].as_u64().unwrap_or(0))
        .sum();
    assert!(handed > 0, "no frame crossed between workers: {workers:?}");
    assert_eq!(stats["drops"]["handoff_full"], 0, "{stats}");
    assert_eq!(stats["drops"]["handoff_loop"], 0, "{stats}");
    // 2 x (8 data streams + 1 control connection), plus the pings.
    assert!(nat["sessions_created"].as_u64().unwrap_or(0) >= 18, "{nat}");
    assert!(nat["translated_out"].as_u64().unwrap_or(0) > 0, "{nat}");
    assert!(nat["translated_in"].as_u64().unwrap_or(0) > 0, "{nat}");
}

/// Engine only (the nftables reference DNATs only what arrives on `wan0`):
/// hairpinning — in2 fetches in1's file through the router's outside
/// address and the port forward, and in1 sees the request coming from the
/// outside address, not from in2.
#[test]
fn engine_hairpin_reaches_the_forward_from_inside() {
    let t = NatTopology::build(NatRouter::Engine, Filtering::AddressAndPortDependent)
        .unwrap_or_else(|e| panic!("cannot build the NAT topology: {e:?}"));
    t.wait_ready(READY);
    let www = t.dir.join("hairpin-www");
    std::fs::create_dir_all(&www).expect("inside www");
    let body = patronus_e2e::nat_topology::pseudo_random(100_000, 11);
    std::fs::write(www.join("h.bin"), &body).expect("inside file");
    let want = sha256(&www.join("h.bin"));
    let port = INSIDE_HTTP_PORT.to_string();
    let p = t.in1.spawn(
        PYTHON,
        &[
            "-m",
            "http.server",
            &port,
            "--bind",
            IN1,
            "--directory",
            path_str(&www),
        ],
        t.dir.path(),
        "hairpin-http",
    );
    let mut p = wait_listening(&t.in1, p, "tcp", INSIDE_HTTP_PORT);
    let file = t.dir.join("hairpin.bin");
    let url = format!("http://{R_OUTSIDE}:{FORWARD_PORT}/h.bin");
    let o = t.in2.exec_output(
        "curl",
        &[
            "-sS",
            "--fail",
            "--max-time",
            "20",
            "-o",
            path_str(&file),
            &url,
        ],
    );
    assert!(o.status.success(), "curl {url} from in2: {}", text(&o));
    assert_eq!(sha256(&file), want, "the file fetched through the hairpin");
    let log = p.stderr();
    assert!(
        log.lines()
            .any(|l| l.starts_with(&format!("{R_OUTSIDE} ")) && l.contains("GET /h.bin")),
        "in1 should see the request from {R_OUTSIDE} (translated both ways): {}",
        p.report()
    );
}

/// A connected UDP socket (bound to argv[3]) sends to argv[1]:argv[2] and
/// reports how recv ends and the error queue's ICMP details.
const UDP_CLOSED_PORT_PY: &str = r#"
import json, socket, struct, sys
IP_RECVERR = 11
dst, dport, sport = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_IP, IP_RECVERR, 1)
s.bind(("0.0.0.0", sport))
s.connect((dst, dport))
s.settimeout(5)
s.send(b"probe")
r = {}
try:
    s.recv(2048)
    r["recv"] = "data"
except ConnectionRefusedError:
    r["recv"] = "refused"
except socket.timeout:
    r["recv"] = "timeout"
s.setblocking(False)
try:
    data, anc, _flags, _addr = s.recvmsg(2048, 512, socket.MSG_ERRQUEUE)
    r["payload"] = data.decode(errors="replace")
    for level, kind, c in anc:
        if level == socket.SOL_IP and kind == IP_RECVERR:
            err, origin, typ, code, _pad, _info, _data = struct.unpack_from("=IBBBBII", c)
            r.update(errno=err, origin=origin, type=typ, code=code,
                     offender=socket.inet_ntoa(c[20:24]))
except BlockingIOError:
    r["errqueue"] = "empty"
print(json.dumps(r))
"#;

/// Reads a pcap and prints every ICMP destination-unreachable with its
/// embedded IPv4/UDP header and checksum checks.
const ICMP_ERRORS_PY: &str = r#"
import json, sys
from scapy.all import ICMP, IP, IPerror, UDPerror, rdpcap
from scapy.utils import checksum
out = []
for p in rdpcap(sys.argv[1]):
    if ICMP not in p or p[ICMP].type != 3:
        continue
    ip, icmp = p[IP], p[ICMP]
    raw_ip = bytes(ip)
    icmp_bytes = raw_ip[ip.ihl * 4 : ip.len]
    d = dict(src=ip.src, dst=ip.dst, type=icmp.type, code=icmp.code,
             ip_chksum_ok=checksum(raw_ip[: ip.ihl * 4]) == 0,
             icmp_chksum_ok=checksum(icmp_bytes) == 0)
    if IPerror in p:
        inner = p[IPerror]
        d.update(inner_src=inner.src, inner_dst=inner.dst,
                 inner_ip_chksum_ok=checksum(bytes(inner)[: inner.ihl * 4]) == 0)
    if UDPerror in p:
        d.update(inner_sport=p[UDPerror].sport, inner_dport=p[UDPerror].dport)
    out.append(d)
print(json.dumps(out))
"#;

/// Listens on UDP and TCP port argv[1] for argv[2] seconds; prints what
/// arrived as a JSON list.
const LISTEN_PY: &str = r#"
import json, select, socket, sys, time
port, secs = int(sys.argv[1]), float(sys.argv[2])
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("0.0.0.0", port))
t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("0.0.0.0", port))
t.listen(4)
got = []
end = time.time() + secs
while time.time() < end:
    r, _, _ = select.select([u, t], [], [], max(0.0, end - time.time()))
    if u in r:
        data, src = u.recvfrom(2048)
        got.append(["udp", src[0], src[1]])
    if t in r:
        c, src = t.accept()
        got.append(["tcp", src[0], src[1]])
        c.close()
print(json.dumps(got), flush=True)
"#;

/// From the outside: a TCP connect and a connected UDP exchange to
/// argv[1]:argv[2]; each ends "timeout" when nothing answers.
const PROBE_PY: &str = r#"
import json, socket, sys
dst, port = sys.argv[1], int(sys.argv[2])
r = {}
t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
t.settimeout(2)
try:
    t.connect((dst, port))
    r["tcp"] = "connected"
except ConnectionRefusedError:
    r["tcp"] = "refused"
except socket.timeout:
    r["tcp"] = "timeout"
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.connect((dst, port))
u.settimeout(2)
try:
    u.send(b"unsolicited")
    u.recv(2048)
    r["udp"] = "answered"
except ConnectionRefusedError:
    r["udp"] = "refused"
except socket.timeout:
    r["udp"] = "timeout"
print(json.dumps(r))
"#;

/// The outside peer: waits for a datagram on port argv[1], then sends
/// "stranger" to its source from port argv[2], then "reply" from argv[1].
const PEER_PY: &str = r#"
import json, socket, sys, time
port, other = int(sys.argv[1]), int(sys.argv[2])
a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
a.bind(("0.0.0.0", port))
b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
b.bind(("0.0.0.0", other))
a.settimeout(10)
data, peer = a.recvfrom(2048)
b.sendto(b"stranger", peer)
time.sleep(0.3)
a.sendto(b"reply", peer)
print(json.dumps({"peer": list(peer), "data": data.decode()}), flush=True)
"#;

/// The inside endpoint: from port argv[3] sends to argv[1]:argv[2], then
/// prints every datagram that comes back (until 1 s after "reply").
const MAPPED_PY: &str = r#"
import json, socket, sys, time
dst, dport, sport = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", sport))
s.sendto(b"hello", (dst, dport))
got = []
end = time.time() + 5
while time.time() < end:
    s.settimeout(max(0.01, end - time.time()))
    try:
        data, src = s.recvfrom(2048)
    except socket.timeout:
        break
    got.append([data.decode(), src[0], src[1]])
    if data == b"reply":
        end = min(end, time.time() + 1.0)
print(json.dumps(got))
"#;
