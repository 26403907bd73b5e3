//! End-to-end forwarding over `afxdp` ports: h1 — engine — h2 in network
//! namespaces, the engine's ports being AF_XDP sockets on its veth ends
//! (native XDP on veth, sockets in copy mode). Real ping and iperf3 as
//! peers, the hosts' veths with their default offloads. Every test builds
//! and removes its own topology; they must run as root.

use std::time::{Duration, Instant};

use patronus_e2e::probe::{iperf_json, iperf_server, ping, reply_ttls};
use patronus_e2e::topology::{H1, H2, R_LAN, R_WAN};
use patronus_e2e::{Engine, Netns, TempDir};
use serde_json::Value;

const READY: Duration = Duration::from_secs(15);

/// An engine config with `afxdp` ports `lan0`/`wan0`; `extra` ends each
/// `[[port]]` (e.g. a `[port.afxdp]` table).
fn config(workers: usize, extra: &str) -> String {
    format!(
        r#"[engine]
workers = {workers}
poll = "adaptive"

[[interface]]
port = "lan0"
address = "{R_LAN}/24"

[[interface]]
port = "wan0"
address = "{R_WAN}/24"

[[port]]
name = "lan0"
driver = "afxdp"
iface = "lan0"
{extra}
[[port]]
name = "wan0"
driver = "afxdp"
iface = "wan0"
{extra}"#
    )
}

/// h1 (eth0 10.1.0.2) — R (lan0 | wan0, the engine's) — h2 (eth0 10.2.0.2),
/// veth pairs with `queues` queues each. Drops the engine first, then the
/// namespaces, then the scratch directory.
struct XdpTopology {
    engine: Option<Engine>,
    h1: Netns,
    r: Netns,
    h2: Netns,
    lan_mac: String,
    dir: TempDir,
}

fn veth_q(a: &Netns, a_if: &str, b: &Netns, b_if: &str, queues: usize) {
    let q = queues.to_string();
    a.ip(&[
        "link",
        "add",
        a_if,
        "numrxqueues",
        &q,
        "numtxqueues",
        &q,
        "type",
        "veth",
        "peer",
        "name",
        b_if,
        "numrxqueues",
        &q,
        "numtxqueues",
        &q,
        "netns",
        b.name(),
    ]);
    a.link_up(a_if);
    b.link_up(b_if);
}

impl XdpTopology {
    fn build(tag: &str, workers: usize, extra: &str) -> Self {
        patronus_e2e::require_root();
        let dir = TempDir::new(tag);
        let h1 = Netns::new("h1");
        let r = Netns::new("r");
        let h2 = Netns::new("h2");
        veth_q(&r, "lan0", &h1, "eth0", workers);
        veth_q(&r, "wan0", &h2, "eth0", workers);
        h1.addr_add("eth0", &format!("{H1}/24"));
        h1.route_add(&["default", "via", R_LAN]);
        h2.addr_add("eth0", &format!("{H2}/24"));
        h2.route_add(&["default", "via", R_WAN]);
        for i in ["lan0", "wan0"] {
            r.disable_ipv6(i);
        }
        let lan_mac = r.mac("lan0");
        let mut t = XdpTopology {
            engine: None,
            h1,
            r,
            h2,
            lan_mac,
            dir,
        };
        t.start_engine(workers, extra, "engine");
        t
    }

    fn start_engine(&mut self, workers: usize, extra: &str, name: &str) {
        let mut e = Engine::start(
            Some(&self.r),
            &config(workers, extra),
            self.dir.path(),
            name,
            &[],
        );
        e.wait_ready();
        self.engine = Some(e);
    }

    fn engine(&mut self) -> &mut Engine {
        self.engine.as_mut().expect("engine running")
    }

    /// Whether `iface` in R carries an XDP program.
    fn xdp_on(&self, iface: &str) -> bool {
        self.r
            .ip(&["link", "show", "dev", iface])
            .contains("prog/xdp")
    }

    /// Waits (bounded) until neither port carries a program; returns false
    /// if one is still there after READY.
    fn xdp_gone(&self) -> bool {
        let deadline = Instant::now() + READY;
        while self.xdp_on("lan0") || self.xdp_on("wan0") {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        true
    }

    /// Pings `dst` from h1 once a second until a reply comes (up to READY).
    fn wait_ping(&mut self, dst: &str) {
        let deadline = Instant::now() + READY;
        loop {
            let out = self
                .h1
                .exec_output("ping", &["-n", "-c", "1", "-W", "1", dst]);
            if out.status.success() {
                return;
            }
            if let Some(e) = self.engine.as_mut() {
                e.assert_running();
            }
            if Instant::now() >= deadline {
                let log = self
                    .engine
                    .as_mut()
                    .map(|e| e.process().report())
                    .unwrap_or_default();
                panic!(
                    "h1 cannot ping {dst} after {READY:?}: {}\n{log}",
                    String::from_utf8_lossy(&out.stdout)
                );
            }
        }
    }
}

/// Runs an iperf3 client from h1 to h2 and returns its JSON report.
fn iperf(t: &XdpTopology, args: &[&str]) -> Value {
    let mut server = iperf_server(t.dir.path(), &t.h2);
    let mut a = vec!["60", "iperf3", "-c", H2, "-p", "5201", "-J"];
    a.extend_from_slice(args);
    let out = t.h1.exec_output("timeout", &a);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "iperf3 client failed ({}): {text}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let v = iperf_json(&text);
    assert!(server
        .wait_timeout(Duration::from_secs(10))
        .is_some_and(|s| s.success()));
    v
}

#[test]
fn afxdp_ping_tcp_udp_and_the_program_leaves_with_the_engine() {
    let mut t = XdpTopology::build("xdp-fwd", 1, "");
    // Forwarding works once the workers have opened their ports.
    t.wait_ping(H2);
    assert!(
        t.xdp_on("lan0") && t.xdp_on("wan0"),
        "no XDP program while the engine runs"
    );
    let log = t.engine().process().stderr();
    assert!(
        log.contains("AF_XDP on lan0 queue 0: XDP native mode, socket in copy mode"),
        "the engine should report native XDP / copy mode on veth: {log}"
    );

    let (ok, out) = ping(&t.h1, H2, 3, &[]);
    assert!(ok, "h1 -> h2 ping failed:\n{out}");
    assert_eq!(reply_ttls(&out), vec![63; 3], "one hop:\n{out}");
    let (ok, out) = ping(&t.h2, H1, 3, &[]);
    assert!(ok, "h2 -> h1 ping failed:\n{out}");
    assert_eq!(reply_ttls(&out), vec![63; 3], "one hop:\n{out}");
    let (ok, out) = ping(&t.h1, R_LAN, 2, &[]);
    assert!(ok, "the engine answers ping to its own address:\n{out}");
    let neigh = t.h1.ip(&["neigh", "show", R_LAN, "dev", "eth0"]);
    assert!(
        neigh.contains(&format!("lladdr {}", t.lan_mac)),
        "the engine answered ARP with lan0's MAC {}: {neigh:?}",
        t.lan_mac
    );

    // TCP with the hosts' offloads on: their frames carry partial checksums
    // that the driver completes (the kernel turns GSO off on a veth whose
    // peer runs native XDP).
    let feats = t.h1.exec("ethtool", &["-k", "eth0"]);
    assert!(feats.contains("tx-checksumming: on"), "{feats}");
    let v = iperf(&t, &["-t", "5"]);
    let received = v["end"]["sum_received"]["bytes"].as_u64().unwrap_or(0);
    let bps = v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap_or(0.0);
    eprintln!(
        "iperf3 TCP over afxdp: {received} bytes, {:.1} Mbit/s",
        bps / 1e6
    );
    assert!(received > 0, "no TCP bytes received: {}", v["end"]);

    let v = iperf(
        &t,
        &["-u", "-b", "20M", "-l", "1400", "-t", "3", "-w", "4M"],
    );
    let sum = &v["end"]["sum"];
    let packets = sum["packets"].as_u64().unwrap_or(0);
    eprintln!("iperf3 UDP over afxdp: {}", sum);
    assert!(packets > 0, "no datagrams: {sum}");
    assert_eq!(
        sum["lost_packets"].as_u64(),
        Some(0),
        "UDP datagrams lost: {sum}"
    );

    let s = t.engine().stats();
    assert!(s.port("wan0", "tx_bytes") >= received, "{}", s.json);
    for port in ["lan0", "wan0"] {
        for key in ["rx_errors", "tx_errors"] {
            assert_eq!(s.port(port, key), 0, "{port}.{key}: {}", s.json);
        }
    }
    let (status, _) = t.engine().stop();
    assert!(status.success(), "engine exit status {status}");
    assert!(
        t.xdp_gone(),
        "XDP program left attached after the engine stopped"
    );
}

#[test]
fn afxdp_crashed_engine_leaves_no_program_and_a_new_one_starts() {
    let mut t = XdpTopology::build("xdp-crash", 1, "");
    t.wait_ping(H2);
    let e = t.engine.as_mut().unwrap();
    e.process().signal(libc::SIGKILL);
    assert!(
        e.process().wait_timeout(READY).is_some(),
        "the engine survived SIGKILL"
    );
    // The program was attached as a BPF link: it died with the process.
    assert!(
        t.xdp_gone(),
        "a killed engine left its XDP program attached"
    );
    t.start_engine(1, "", "engine2");
    t.wait_ping(H2);
    let (ok, out) = ping(&t.h1, H2, 2, &[]);
    assert!(ok, "forwarding after restart:\n{out}");
}

#[test]
fn afxdp_two_workers_two_queues() {
    let mut t = XdpTopology::build("xdp-2w", 2, "");
    t.wait_ping(H2);
    let log = t.engine().process().stderr();
    for q in 0..2 {
        assert!(
            log.contains(&format!("AF_XDP on wan0 queue {q}")),
            "queue {q} of wan0 not opened: {log}"
        );
    }
    let v = iperf(&t, &["-t", "3", "-P", "4"]);
    let received = v["end"]["sum_received"]["bytes"].as_u64().unwrap_or(0);
    assert!(received > 0, "no TCP bytes received: {}", v["end"]);
    let s = t.engine().stats();
    assert_eq!(s.counter("workers"), 2, "{}", s.json);
    let (status, _) = t.engine().stop();
    assert!(status.success(), "engine exit status {status}");
    assert!(
        t.xdp_gone(),
        "XDP program left attached after the engine stopped"
    );
}

#[test]
fn afxdp_kernel_ip_protocols_go_to_the_kernel() {
    // ICMP is handed to R's kernel, which holds 10.1.0.50 on lan0; the
    // engine keeps everything else (ARP, TCP).
    let mut t = XdpTopology::build("xdp-pass", 1, "[port.afxdp]\nkernel_ip_protocols = [1]\n");
    const KERNEL_ADDR: &str = "10.1.0.50";
    t.r.addr_add("lan0", &format!("{KERNEL_ADDR}/24"));
    // ARP is the engine's, so each side learns the other's MAC statically.
    let h1_mac = t.h1.mac("eth0");
    t.h1.ip(&[
        "neigh",
        "replace",
        KERNEL_ADDR,
        "lladdr",
        &t.lan_mac,
        "dev",
        "eth0",
    ]);
    t.r.ip(&["neigh", "replace", H1, "lladdr", &h1_mac, "dev", "lan0"]);

    let (ok, out) = ping(&t.h1, KERNEL_ADDR, 3, &[]);
    assert!(ok, "R's kernel did not get (or answer) ICMP:\n{out}");
    assert_eq!(
        reply_ttls(&out),
        vec![64; 3],
        "the kernel answers itself:\n{out}"
    );
    // The engine never sees ICMP now, so its own address stays silent ...
    let (ok, out) = ping(&t.h1, R_LAN, 2, &[]);
    assert!(
        !ok,
        "ICMP reached the engine although it is the kernel's:\n{out}"
    );
    // ... while TCP still crosses the engine.
    let v = iperf(&t, &["-t", "2"]);
    let received = v["end"]["sum_received"]["bytes"].as_u64().unwrap_or(0);
    assert!(
        received > 0,
        "no TCP bytes through the engine: {}",
        v["end"]
    );
    let (status, _) = t.engine().stop();
    assert!(status.success(), "engine exit status {status}");
}
