//! End-to-end forwarding over the `dpdk` port driver: h1 — engine — h2 in
//! network namespaces, the engine's ports being DPDK virtual devices bound
//! to the router's veth ends (`net_af_packet`, then `net_af_xdp`), with EAL
//! running without hugepages. Built only with `--features dpdk` and run
//! against an engine binary built with `--features dpdk` (see
//! [`dpdk_engine_binary`]); must run as root.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Once;
use std::time::{Duration, Instant};

use patronus_e2e::netns::veth;
use patronus_e2e::probe;
use patronus_e2e::topology::{H1, H2, R_LAN, R_WAN};
use patronus_e2e::{engine_binary, require_root, Engine, EngineStats, Netns, TempDir};

const READY: Duration = Duration::from_secs(20);

/// The engine binary with DPDK support: `$PATRONUS_ENGINE_DPDK`, else the
/// usual one (`$PATRONUS_ENGINE` or target/{release,debug}); it must have
/// been built with `cargo build --release -p patronus-engine --features dpdk`.
fn dpdk_engine_binary() -> PathBuf {
    std::env::var_os("PATRONUS_ENGINE_DPDK")
        .map(PathBuf::from)
        .unwrap_or_else(engine_binary)
}

/// Which DPDK virtual device drives the router's veth ends: `net_af_packet`
/// (one queue, or one per worker) or `net_af_xdp`.
#[derive(Clone, Copy, Debug)]
enum Vdev {
    Packet,
    /// net_af_packet with this many queue pairs (one per worker), spread by
    /// the kernel's PACKET_FANOUT hash.
    PacketQueues(usize),
    /// net_af_packet with one queue pair for this many workers: the engine
    /// dispatches flows to workers in software and they share the TX queue.
    PacketSoftDispatch(usize),
    Xdp,
}

impl Vdev {
    fn arg(self, n: usize, iface: &str) -> String {
        match self {
            Vdev::Packet => format!("net_af_packet{n},iface={iface}"),
            Vdev::PacketQueues(q) => format!("net_af_packet{n},iface={iface},qpairs={q}"),
            Vdev::PacketSoftDispatch(_) => format!("net_af_packet{n},iface={iface},qpairs=1"),
            Vdev::Xdp => format!("net_af_xdp{n},iface={iface},start_queue=0,queue_count=1"),
        }
    }
    fn name(self, n: usize) -> String {
        match self {
            Vdev::Packet | Vdev::PacketQueues(_) | Vdev::PacketSoftDispatch(_) => {
                format!("net_af_packet{n}")
            }
            Vdev::Xdp => format!("net_af_xdp{n}"),
        }
    }
}

fn router_config(vdev: Vdev) -> String {
    let workers = match vdev {
        Vdev::PacketQueues(q) | Vdev::PacketSoftDispatch(q) => q,
        _ => 1,
    };
    format!(
        r#"[engine]
workers = {workers}
poll = "adaptive"

[dpdk]
no_huge = true
memory_mb = 256
vdevs = ["{lan_vdev}", "{wan_vdev}"]

[[port]]
name = "lan0"
driver = "dpdk"
device = "{lan}"

[[port]]
name = "wan0"
driver = "dpdk"
device = "{wan}"

[[interface]]
port = "lan0"
address = "{R_LAN}/24"

[[interface]]
port = "wan0"
address = "{R_WAN}/24"
"#,
        lan_vdev = vdev.arg(0, "lan0"),
        wan_vdev = vdev.arg(1, "wan0"),
        lan = vdev.name(0),
        wan = vdev.name(1),
    )
}

/// h1 — r — h2 with the engine in r on DPDK ports. Drops the engine first,
/// then the namespaces (veths go with them), then the scratch directory.
struct DpdkTopology {
    engine: Engine,
    h1: Netns,
    _r: Netns,
    h2: Netns,
    lan_mac: String,
    _dir: TempDir,
}

impl DpdkTopology {
    fn build(tag: &str, vdev: Vdev) -> Self {
        require_root();
        let dir = TempDir::new(tag);
        let h1 = Netns::new("h1");
        let r = Netns::new("r");
        let h2 = Netns::new("h2");
        veth(&h1, "eth0", &r, "lan0");
        veth(&h2, "eth0", &r, "wan0");
        h1.addr_add("eth0", &format!("{H1}/24"));
        h1.route_add(&["default", "via", R_LAN]);
        h2.addr_add("eth0", &format!("{H2}/24"));
        h2.route_add(&["default", "via", R_WAN]);
        for i in ["lan0", "wan0"] {
            r.disable_ipv6(i);
        }
        let lan_mac = r.mac("lan0");
        let config = router_config(vdev);
        // Fail clearly when the binary lacks the driver (and check the config).
        let cfg_path = dir.join("check.toml");
        std::fs::write(&cfg_path, &config).expect("write config");
        let bin = dpdk_engine_binary();
        let out = Command::new(&bin)
            .arg("--config")
            .arg(&cfg_path)
            .arg("--check")
            .output()
            .expect("run the engine");
        assert!(
            out.status.success(),
            "{} cannot run a dpdk config (build it with `cargo build --release -p \
             patronus-engine --features dpdk`, or point PATRONUS_ENGINE_DPDK at such a \
             binary): {}{}",
            bin.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // Engine::start runs the usual binary; point it at ours (once, before
        // any engine starts: the e2e suite runs with --test-threads=1).
        static POINT_AT_DPDK_ENGINE: Once = Once::new();
        POINT_AT_DPDK_ENGINE.call_once(|| std::env::set_var("PATRONUS_ENGINE", &bin));
        let mut engine = Engine::start(Some(&r), &config, dir.path(), "engine", &[]);
        engine.wait_ready();
        DpdkTopology {
            engine,
            h1,
            _r: r,
            h2,
            lan_mac,
            _dir: dir,
        }
    }

    fn wait_forwarding(&mut self) {
        let deadline = Instant::now() + READY;
        loop {
            let out = self
                .h1
                .exec_output("ping", &["-n", "-c", "1", "-W", "1", H2]);
            if out.status.success() {
                return;
            }
            self.engine.assert_running();
            assert!(
                Instant::now() < deadline,
                "h1 cannot ping h2 through the dpdk engine after {READY:?}:\n{}",
                self.engine.process().report()
            );
        }
    }
}

/// Pings `dst` from `ns`; returns success and the TTLs of the replies.
/// Pings and the replies' TTLs.
fn ping(ns: &Netns, dst: &str, count: u32) -> (bool, Vec<u8>, String) {
    let (ok, text) = probe::ping(ns, dst, count, &[]);
    (ok, probe::reply_ttls(&text), text)
}

fn forwards_both_ways(tag: &str, vdev: Vdev) {
    let mut t = DpdkTopology::build(tag, vdev);
    t.wait_forwarding();
    let (ok, ttls, out) = ping(&t.h1, H2, 5);
    assert!(ok, "h1 -> h2 over dpdk:\n{out}");
    assert_eq!(ttls, vec![63; 5], "h2's replies cross one hop:\n{out}");
    let (ok, ttls, out) = ping(&t.h2, H1, 5);
    assert!(ok, "h2 -> h1 over dpdk:\n{out}");
    assert_eq!(ttls, vec![63; 5], "h1's replies cross one hop:\n{out}");

    // The engine answered h1's ARP with the MAC DPDK reports for lan0's vdev.
    let neigh = t.h1.ip(&["neigh", "show", R_LAN, "dev", "eth0"]);
    assert!(
        neigh.contains(&format!("lladdr {}", t.lan_mac)),
        "h1's entry for {R_LAN} should hold lan0's MAC {}: {neigh:?}",
        t.lan_mac
    );

    let s = t.engine.stats();
    for port in ["lan0", "wan0"] {
        for key in ["rx_packets", "tx_packets"] {
            // Ten echo requests and ten replies crossed each port at least.
            assert!(s.port(port, key) >= 10, "{port}.{key}: {}", s.json);
        }
        for key in ["rx_errors", "rx_missed", "tx_errors"] {
            assert_eq!(s.port(port, key), 0, "{port}.{key}: {}", s.json);
        }
    }
    let (status, _) = t.engine.stop();
    // EAL's and the driver's notes (queues, RSS), shown with --nocapture.
    eprintln!("{}", t.engine.process().stderr());
    assert!(status.success(), "engine exit status {status}");
}

#[test]
fn forwards_over_net_af_packet() {
    forwards_both_ways("dpdk-afp", Vdev::Packet);
}

#[test]
fn forwards_over_net_af_packet_with_two_workers() {
    forwards_both_ways("dpdk-afp2", Vdev::PacketQueues(2));
}

/// Two workers over single-queue `net_af_packet` devices: worker 0 reads
/// each device's one RX queue and hands frames to their flow's worker by
/// the symmetric hash; both send on the one TX queue. Pings go both ways, a
/// 16-stream iperf3 passes, and both workers forward (per-worker counters).
#[test]
fn software_dispatch_over_single_queue_net_af_packet() {
    forwards_both_ways("dpdk-swd", Vdev::PacketSoftDispatch(2));
    let mut t = DpdkTopology::build("dpdk-swd-tcp", Vdev::PacketSoftDispatch(2));
    let before = t.engine.stats();
    // Fixed client ports (iperf3 gives stream i port CPORT + i), so which
    // worker owns which stream is the same on every run.
    let received = iperf3_through(&mut t, 16, Some(41000));
    assert!(received > 0, "{}", t.engine.process().report());
    let s = t.engine.stats();
    let workers = s.json["per_worker"]
        .as_array()
        .unwrap_or_else(|| panic!("no per_worker: {}", s.json));
    assert_eq!(workers.len(), 2, "{}", s.json);
    let tx =
        |st: &EngineStats, w: usize| st.json["per_worker"][w]["tx_packets"].as_u64().unwrap_or(0);
    for w in 0..2 {
        let forwarded = tx(&s, w) - tx(&before, w);
        // 16 TCP streams from ports 41000..41015: the symmetric flow hash
        // gives each worker some of them.
        assert!(
            forwarded > 100,
            "worker {w} forwarded {forwarded} packets during iperf3: {}",
            s.json
        );
    }
    eprintln!(
        "software dispatch: rx_missed (full inboxes) lan0 {} wan0 {}",
        s.port("lan0", "rx_missed"),
        s.port("wan0", "rx_missed")
    );
    let (status, _) = t.engine.stop();
    assert!(status.success(), "engine exit status {status}");
    // Each port's mode is logged at start.
    let stderr = t.engine.process().stderr();
    for port in ["lan0", "wan0"] {
        assert!(
            stderr.contains(&format!(
                "port {port}: net_af_packet{}: software dispatch with 1 RX queue(s)",
                if port == "lan0" { 0 } else { 1 }
            )),
            "{port}'s mode is logged: {stderr}"
        );
    }
}

/// Runs a 3-second iperf3 TCP test with `streams` streams from h1 to h2
/// (offloads off on the hosts, see [`iperf3_tcp_over_net_af_packet`]);
/// returns the bytes received and fails when iperf3 does.
fn iperf3_through(t: &mut DpdkTopology, streams: usize, cport: Option<u16>) -> u64 {
    for h in [&t.h1, &t.h2] {
        h.exec(
            "ethtool",
            &["-K", "eth0", "tx", "off", "tso", "off", "gso", "off"],
        );
    }
    t.wait_forwarding();
    let _server = probe::iperf_server(t._dir.path(), &t.h2);
    let streams_arg = streams.to_string();
    let mut args = vec![
        "30",
        "iperf3",
        "-c",
        H2,
        "-p",
        "5201",
        "-t",
        "3",
        "-P",
        &streams_arg,
        "-J",
    ];
    let cport_arg = cport.map(|p| p.to_string());
    if let Some(p) = &cport_arg {
        args.extend(["--cport", p.as_str()]);
    }
    let out = t.h1.exec_output("timeout", &args);
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let received = v["end"]["sum_received"]["bytes"].as_u64().unwrap_or(0);
    eprintln!(
        "iperf3 TCP ({streams} streams) over dpdk net_af_packet: {received} bytes, {:.1} Mbit/s",
        v["end"]["sum_received"]["bits_per_second"]
            .as_f64()
            .unwrap_or(0.0)
            / 1e6
    );
    assert!(
        out.status.success() && received > 0,
        "iperf3 failed: {text}\n{}",
        t.engine.process().report()
    );
    received
}

#[test]
fn forwards_over_net_af_xdp() {
    forwards_both_ways("dpdk-afxdp", Vdev::Xdp);
}

/// TCP through the engine over `net_af_packet`. The hosts' veths send with
/// checksum offload and TSO off: DPDK's af_packet PMD reads its socket
/// without PACKET_VNET_HDR, so a partial checksum or a GSO super-frame from
/// the peer reaches the engine with nothing saying so, and no driver above
/// it can complete them (the engine's own afpacket driver can, and its
/// tests keep offloads on). A NIC under DPDK only ever hands over wire frames.
#[test]
fn iperf3_tcp_over_net_af_packet() {
    let mut t = DpdkTopology::build("dpdk-tcp", Vdev::Packet);
    iperf3_through(&mut t, 1, None);
    let (status, _) = t.engine.stop();
    assert!(status.success(), "engine exit status {status}");
}

/// Runs the engine on `config` (no namespace: nothing is sent) and returns
/// its exit status and stderr.
fn engine_fails(config: &str, tag: &str) -> (std::process::ExitStatus, String) {
    let dir = TempDir::new(tag);
    let path = dir.join("engine.toml");
    std::fs::write(&path, config).expect("write config");
    let out = Command::new(dpdk_engine_binary())
        .arg("--config")
        .arg(&path)
        .args(["--duration", "5"])
        .output()
        .expect("run the engine");
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// EAL failures end the engine with an error naming the key to change.
#[test]
fn eal_failures_name_the_config_key() {
    require_root();
    let port = "[[port]]\nname = \"p0\"\ndriver = \"dpdk\"\n";
    // A driver EAL does not know.
    let (status, err) = engine_fails(
        &format!(
            "[dpdk]\nno_huge = true\nvdevs = [\"net_nosuch0\"]\n{port}device = \"net_nosuch0\"\n"
        ),
        "dpdk-nodriver",
    );
    assert!(!status.success(), "{err}");
    assert!(
        err.contains("dpdk.vdevs") && err.contains("PMD is not installed"),
        "{err}"
    );
    // A device whose probe fails (its interface does not exist).
    let iface = format!("nosuch{}", std::process::id() % 100_000);
    let (status, err) = engine_fails(
        &format!(
            "[dpdk]\nno_huge = true\nvdevs = [\"net_af_packet0,iface={iface}\"]\n{port}device = \"net_af_packet0\"\n"
        ),
        "dpdk-noprobe",
    );
    assert!(!status.success(), "{err}");
    assert!(
        err.contains("port[0].device: DPDK has no device \"net_af_packet0\""),
        "{err}"
    );
}
