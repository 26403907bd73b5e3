//! The punt path ("linux-cp") end to end: the engine mirrors its ports as
//! kernel TAPs in the router namespace (`lcp-lan0`, `lcp-wan0`, with the
//! ports' MACs and the engine's addresses). A real TCP server on the host
//! (Python's http.server bound to the engine's address) answers curl from
//! h1 through the engine; the host's own ping reaches both hosts (the
//! kernel resolves them by ARP through its TAP); and the counters show
//! both directions.

use std::time::{Duration, Instant};

use patronus_e2e::probe::ping;
use patronus_e2e::topology::{RouterKind, H1, H2, R_LAN};
use patronus_e2e::Topology;

const READY: Duration = Duration::from_secs(15);

#[test]
fn host_services_and_host_traffic_go_through_the_punt_path() {
    let mut t = Topology::build("punt", RouterKind::Engine, "[punt]\nrate_pps = 5000\n");
    t.wait_forwarding(READY);
    // The TAPs mirror the ports.
    // The engine configures them right after its workers start (its SIGUSR1
    // handler, which the harness waits for, comes earlier). A TAP's
    // operational state reads UNKNOWN: it has no carrier to report.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let links = t.r.ip(&["-br", "addr", "show"]);
        if links.contains("10.1.0.1/24") && links.contains("10.2.0.1/24") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{links}\n{}",
            t.engine().process().stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mac = t.r.mac("lcp-lan0");
    assert_eq!(mac, t.lan_mac, "the TAP has the port's MAC");

    // A TCP service on the host, on the engine's address.
    let www = t.dir.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "hello from the appliance\n").unwrap();
    let mut server = t.r.spawn(
        "python3",
        &[
            "-m",
            "http.server",
            "8080",
            "--bind",
            R_LAN,
            "--directory",
            www.to_str().unwrap(),
        ],
        t.dir.path(),
        "http",
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        let out = t.h1.exec_output(
            "curl",
            &["-sS", "--max-time", "2", &format!("http://{R_LAN}:8080/")],
        );
        if out.status.success() {
            break String::from_utf8_lossy(&out.stdout).to_string();
        }
        assert!(
            Instant::now() < deadline,
            "curl to the host's server through the punt path failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(body, "hello from the appliance\n");
    assert!(server.try_wait().is_none(), "the server kept running");

    // The host's own traffic: ping both hosts (ARP and ICMP through the TAPs).
    let (ok, out) = ping(&t.r, H1, 3, &[]);
    assert!(ok, "host -> h1 through lcp-lan0:\n{out}");
    let (ok, out) = ping(&t.r, H2, 3, &[]);
    assert!(ok, "host -> h2 through lcp-wan0:\n{out}");
    // The host learnt h1 with its real MAC.
    let neigh = t.r.ip(&["neigh", "show", H1, "dev", "lcp-lan0"]);
    assert!(neigh.contains(&t.h1.mac("eth0")), "{neigh}");

    // Pings to the engine's address are still the engine's.
    let before = t.stats();
    let (ok, out) = ping(&t.h1, R_LAN, 3, &[]);
    assert!(ok, "{out}");
    let after = t.stats();
    assert!(after.counter("icmp_sent") >= before.counter("icmp_sent") + 3);
    assert!(after.counter("punt_to_host") > 0);
    assert!(after.counter("punt_from_host") > 0);
    assert_eq!(after.drop_count("punt_failed"), 0);
}

#[test]
fn without_punt_tcp_to_the_engine_is_dropped_and_counted() {
    let mut t = Topology::build("nopunt", RouterKind::Engine, "");
    t.wait_forwarding(READY);
    let before = t.stats();
    let out = t.h1.exec_output(
        "curl",
        &["-sS", "--max-time", "1", &format!("http://{R_LAN}:8080/")],
    );
    assert!(!out.status.success());
    let after = t.stats();
    assert!(after.drop_count("local_unsupported") > before.drop_count("local_unsupported"));
    let tap = t.r.exec_output("ip", &["link", "show", "lcp-lan0"]);
    assert!(!tap.status.success(), "no TAP without [punt]");
}

/// Interfaces pushed by the control process replace the port's TOML ones
/// on the TAP too (a port's pushed interfaces replace its `[[interface]]`s).
#[test]
fn pushed_interfaces_move_the_tap_addresses() {
    let probe = patronus_e2e::TempDir::new("puntctl");
    let runtime = probe.path().join("shm");
    let extra = format!(
        "[punt]\n[control]\nruntime_dir = \"{}\"\n",
        runtime.display()
    );
    let mut t = Topology::build("puntctl", RouterKind::Engine, &extra);
    t.wait_forwarding(READY);
    let tap_addrs = |t: &Topology| t.r.ip(&["-br", "-4", "addr", "show", "dev", "lcp-lan0"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !tap_addrs(&t).contains("10.1.0.1/24") {
        assert!(Instant::now() < deadline, "{}", tap_addrs(&t));
        std::thread::sleep(Duration::from_millis(50));
    }
    let dir = t.dir.path().to_path_buf();
    let port = 20000 + (std::process::id() % 20000) as u16;
    let c = patronus_e2e::control::Control::start(&dir, &runtime, port, "control");
    c.ctl_ok(&["interface", "add", "lan0", "10.1.0.9/24"]);
    c.ctl_ok(&["interface", "add", "wan0", "10.2.0.1/24"]);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let a = tap_addrs(&t);
        if a.contains("10.1.0.9/24") && !a.contains("10.1.0.1/24") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the TAP did not follow the pushed interface: {a}\n{}",
            t.engine().process().stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The new address is live (the engine answers echo for its addresses).
    let (ok, out) = ping(&t.h1, "10.1.0.9", 2, &[]);
    assert!(ok, "{out}");
}
