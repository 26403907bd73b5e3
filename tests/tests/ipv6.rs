//! IPv6 through the engine end to end, over IPv6 only: h1 (2001:db8:1::2)
//! — engine (2001:db8:1::1 on lan0, 2001:db8:2::1 on wan0) — h2
//! (2001:db8:2::2). The hosts resolve the engine by neighbor discovery and
//! the engine resolves them; ping6 both ways, TCP (curl to an HTTP server
//! on h2), hop limit exceeded (`ping -t 1`), ping6 to the engine's global
//! and link-local addresses, a route pushed through `route6.bin` (with
//! `patronus_shm::Publisher`) taking effect and reported in counters.shm,
//! and TCP to the engine's IPv6 address reaching a server in the router
//! namespace through the punt TAP.
//!
//! Platform: the veth ends the engine owns have IPv6 disabled; the hosts'
//! ends have duplicate address detection and router advertisements off, so
//! their addresses are usable at once.

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use patronus_e2e::netns::veth;
use patronus_e2e::{Engine, Netns, TempDir};
use patronus_shm::layout::IFACE_ANY;
use patronus_shm::{CounterReader, Publisher, Route6Entry, Route6Tables, RouteKind};

const H1: &str = "2001:db8:1::2";
const H2: &str = "2001:db8:2::2";
const R_LAN: &str = "2001:db8:1::1";
const R_WAN: &str = "2001:db8:2::1";
/// Only on h2, reachable once a pushed route sends it there.
const FAR: &str = "2001:db8:99::2";

struct V6Topology {
    engine: Engine,
    h1: Netns,
    r: Netns,
    h2: Netns,
    lan_mac: String,
    runtime: std::path::PathBuf,
    dir: TempDir,
}

fn host(ns: &Netns, addr: &str, gw: &str) {
    for (k, v) in [
        ("accept_dad", "0"),
        ("accept_ra", "0"),
        ("disable_ipv6", "0"),
    ] {
        ns.sysctl(&format!("net.ipv6.conf.eth0.{k}"), v);
    }
    ns.ip(&[
        "-6",
        "addr",
        "add",
        &format!("{addr}/64"),
        "dev",
        "eth0",
        "nodad",
    ]);
    ns.ip(&["-6", "route", "add", "default", "via", gw, "dev", "eth0"]);
}

fn build() -> V6Topology {
    patronus_e2e::require_root();
    let dir = TempDir::new("ipv6");
    let h1 = Netns::new("h1");
    let r = Netns::new("r");
    let h2 = Netns::new("h2");
    // The engine's ends must not run the kernel's IPv6 (it would answer ND).
    for ns in [&h1, &r, &h2] {
        ns.sysctl("net.ipv6.conf.default.accept_dad", "0");
    }
    veth(&h1, "eth0", &r, "lan0");
    veth(&h2, "eth0", &r, "wan0");
    for i in ["lan0", "wan0"] {
        r.disable_ipv6(i);
    }
    host(&h1, H1, R_LAN);
    host(&h2, H2, R_WAN);
    let lan_mac = r.mac("lan0");
    let runtime = dir.path().join("shm");
    // The publisher first: the engine attaches to its directory.
    drop(Publisher::open(&runtime).expect("runtime dir"));
    let config = format!(
        r#"[engine]
workers = 1
poll = "adaptive"
[[port]]
name = "lan0"
driver = "afpacket"
iface = "lan0"
[[port]]
name = "wan0"
driver = "afpacket"
iface = "wan0"
[[interface]]
port = "lan0"
address = "{R_LAN}/64"
[[interface]]
port = "wan0"
address = "{R_WAN}/64"
[punt]
[control]
runtime_dir = "{}"
"#,
        runtime.display()
    );
    let mut engine = Engine::start(Some(&r), &config, dir.path(), "engine", &[]);
    engine.wait_ready();
    V6Topology {
        engine,
        h1,
        r,
        h2,
        lan_mac,
        runtime,
        dir,
    }
}

/// `ping -6` from `ns`; (success, output).
fn ping6(ns: &Netns, dst: &str, extra: &[&str]) -> (bool, String) {
    let mut args = vec!["-6", "-n", "-c", "2", "-i", "0.2", "-W", "2"];
    args.extend_from_slice(extra);
    args.push(dst);
    let out = ns.exec_output("ping", &args);
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Pings until it works (up to `timeout`): ND on both sides settles first.
fn wait_ping6(engine: &mut Engine, from: &Netns, dst: &str, extra: &[&str], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let (ok, out) = ping6(from, dst, extra);
        if ok {
            return;
        }
        engine.assert_running();
        assert!(
            Instant::now() < deadline,
            "ping -6 {dst} from {} failed for {timeout:?}:\n{out}\n{}",
            from.name(),
            engine.process().report()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// curl's body from `url` in `ns`, retried until it answers (up to 15 s).
fn curl_until(engine: &mut Engine, ns: &Netns, url: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let out = ns.exec_output("curl", &["-sS", "-g", "--max-time", "3", url]);
        if out.status.success() {
            return String::from_utf8_lossy(&out.stdout).to_string();
        }
        engine.assert_running();
        assert!(
            Instant::now() < deadline,
            "curl {url}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            engine.process().report()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The link-local address of a MAC ("aa:bb:…").
fn link_local(mac: &str) -> Ipv6Addr {
    let m: Vec<u8> = mac
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect();
    Ipv6Addr::new(
        0xfe80,
        0,
        0,
        0,
        u16::from_be_bytes([m[0] ^ 2, m[1]]),
        u16::from_be_bytes([m[2], 0xff]),
        u16::from_be_bytes([0xfe, m[3]]),
        u16::from_be_bytes([m[4], m[5]]),
    )
}

/// A gauge of counters.shm, smallest over workers (what every worker runs).
fn shm_gauge(runtime: &std::path::Path, name: &str) -> Option<u64> {
    let r = CounterReader::open(runtime).ok()?;
    let i = r.counter_names().iter().position(|n| n == name)?;
    (0..r.workers()).map(|w| r.get(w, i)).min().flatten()
}

/// An HTTP server in `ns` bound to `addr`:8080 serving `body`.
fn http_server(
    ns: &Netns,
    dir: &std::path::Path,
    name: &str,
    addr: &str,
    body: &str,
) -> patronus_e2e::BgProcess {
    let www = dir.join(name);
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), body).unwrap();
    ns.spawn(
        "python3",
        &[
            "-m",
            "http.server",
            "8080",
            "--bind",
            addr,
            "--directory",
            www.to_str().unwrap(),
        ],
        dir,
        name,
    )
}

#[test]
fn ipv6_forwarding_errors_pushed_routes_and_the_punt_path() {
    let V6Topology {
        mut engine,
        h1,
        r,
        h2,
        lan_mac,
        runtime,
        dir,
    } = build();
    let ready = Duration::from_secs(15);
    // Forwarding both ways (ND resolves each side).
    wait_ping6(&mut engine, &h1, H2, &[], ready);
    wait_ping6(&mut engine, &h2, H1, &[], ready);
    let (ok, out) = ping6(&h1, H2, &[]);
    assert!(ok, "{out}");
    assert!(
        out.contains("ttl=63") || out.contains("hlim=63"),
        "hop limit decremented once:\n{out}"
    );

    // The engine's own addresses answer, its link-local one too.
    wait_ping6(&mut engine, &h1, R_LAN, &[], ready);
    wait_ping6(&mut engine, &h1, R_WAN, &[], ready);
    let ll = format!("{}%eth0", link_local(&lan_mac));
    wait_ping6(&mut engine, &h1, &ll, &[], ready);

    // Hop limit 1: time exceeded from the engine's address on h1's side.
    let (ok, out) = ping6(&h1, H2, &["-t", "1"]);
    assert!(!ok, "no reply can come with hop limit 1:\n{out}");
    assert!(
        out.contains(&format!("From {R_LAN}")) && out.contains("Time exceeded"),
        "time exceeded from the engine:\n{out}"
    );

    // TCP over IPv6 through the engine (checksum offload and GSO from the veth).
    let mut www = http_server(&h2, dir.path(), "www-h2", "::", "hello over IPv6\n");
    let body = curl_until(&mut engine, &h1, &format!("http://[{H2}]:8080/"));
    assert_eq!(body, "hello over IPv6\n");
    // A bigger transfer: many full-size segments each way.
    let big = "x".repeat(3_000_000);
    std::fs::write(dir.path().join("www-h2").join("big"), &big).unwrap();
    let got = curl_until(&mut engine, &h1, &format!("http://[{H2}]:8080/big"));
    assert_eq!(got.len(), big.len(), "3 MB over IPv6 TCP");
    assert!(www.try_wait().is_none());

    // No route yet to FAR: h1 hears "unreachable" from the engine.
    h2.ip(&["-6", "addr", "add", &format!("{FAR}/64"), "dev", "lo"]);
    let (ok, out) = ping6(&h1, FAR, &[]);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!("From {R_LAN}")),
        "unreachable from the engine:\n{out}"
    );
    // A route pushed through route6.bin takes effect.
    let mut publisher = Publisher::open(&runtime).unwrap();
    let mut route = Route6Entry::new("2001:db8:99::".parse().unwrap(), 64, RouteKind::Via);
    assert!(route.push_nexthop(H2.parse().unwrap(), IFACE_ANY));
    let n = publisher
        .publish_route6(&Route6Tables {
            routes: vec![route],
        })
        .unwrap();
    wait_ping6(&mut engine, &h1, FAR, &[], ready);
    // counters.shm says every worker runs that file, with its route.
    let deadline = Instant::now() + Duration::from_secs(5);
    while shm_gauge(&runtime, "route6.generation") != Some(n) {
        assert!(
            Instant::now() < deadline,
            "route6.generation never reached {n}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(shm_gauge(&runtime, "fib6.routes"), Some(1));

    // TCP to the engine's address reaches a server in the router namespace
    // through the punt TAP (the kernel answers ND for it via lcp-lan0 too).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let a = r.ip(&["-6", "addr", "show", "dev", "lcp-lan0"]);
        if a.contains(R_LAN) {
            break;
        }
        assert!(Instant::now() < deadline, "lcp-lan0 never got {R_LAN}: {a}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut host_www = http_server(&r, dir.path(), "www-r", R_LAN, "the appliance over IPv6\n");
    let body = curl_until(&mut engine, &h1, &format!("http://[{R_LAN}]:8080/"));
    assert_eq!(body, "the appliance over IPv6\n");
    assert!(host_www.try_wait().is_none());

    let stats = engine.stats();
    assert!(stats.counter("punt_to_host") > 0 && stats.counter("punt_from_host") > 0);
    assert!(
        stats.json["ipv6"]["nd_adverts_sent"].as_u64().unwrap() > 0,
        "{}",
        stats.json
    );
    assert!(
        stats.json["ipv6"]["icmpv6_errors_sent"].as_u64().unwrap() >= 2,
        "{}",
        stats.json
    );
    assert!(stats.drop_count("ipv6_hop_limit") >= 1);
    assert!(stats.drop_count("ipv6_no_route") >= 1);
    drop(engine);
}
