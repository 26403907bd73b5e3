//! WireGuard site to site end to end: hosts behind two sites reach each
//! other only through the tunnel across a WAN namespace; a 10 s iperf3
//! goes through; a capture on the WAN shows only WireGuard UDP between the
//! two public addresses; either side can initiate; replayed and tampered
//! packets injected on the WAN are dropped and traffic continues. Written
//! once per router kind (`wg_test!`): today wireguard-go on both sites, the
//! reference (and the interoperability peer); the engine joins when its
//! WireGuard data path runs (issue 6). Root, one at a time.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use patronus_e2e::probe::{iperf_json, iperf_server};
use patronus_e2e::scapy::PYTHON;
use patronus_e2e::seqflow::{Receiver, Sender};
use patronus_e2e::wg_topology::{
    WgRouter, WgTopology, HA, HB, RA_LAN, RA_WAN, RB_LAN, RB_WAN, WG_PORT,
};
use patronus_e2e::Capture;

const UP: Duration = Duration::from_secs(15);

/// Builds the topology for `kind`, brings the tunnel up from site A, runs
/// `body`.
fn run(kind: WgRouter, body: fn(&mut WgTopology)) {
    let mut t = WgTopology::build(kind)
        .unwrap_or_else(|e| panic!("cannot build the WireGuard topology: {e:?}"));
    assert!(
        t.ping_until(&t.ha, HB, UP),
        "{HA} cannot reach {HB} through the {kind:?} tunnel"
    );
    body(&mut t);
}

/// One test module per behaviour with one `#[test]` per router kind.
macro_rules! wg_test {
    ($(#[doc = $doc:literal])* fn $name:ident($t:ident) $body:block) => {
        $(#[doc = $doc])*
        mod $name {
            use super::*;

            fn body($t: &mut WgTopology) $body

            #[test]
            fn wireguard_go() {
                run(WgRouter::WireguardGo, body);
            }

            #[test]
            fn engine() {
                run(WgRouter::Engine, body);
            }
        }
    };
}

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Every UDP datagram of a pcap: [src, sport, dst, dport, first payload
/// byte (the WireGuard message type), payload length]; non-UDP IPv4 frames
/// as [src, "", dst, "", -1, proto].
const WAN_FRAMES_PY: &str = r#"
import json, sys
from scapy.all import IP, UDP, rdpcap
out = []
for p in rdpcap(sys.argv[1]):
    if IP not in p:
        continue
    ip = p[IP]
    if UDP in p:
        pl = bytes(p[UDP].payload)
        out.append([ip.src, p[UDP].sport, ip.dst, p[UDP].dport, pl[0] if pl else -1, len(pl)])
    else:
        out.append([ip.src, "", ip.dst, "", -1, ip.proto])
print(json.dumps(out))
"#;

fn wan_frames(t: &WgTopology, pcap: &str) -> Vec<Value> {
    let path = t.dir.join(pcap);
    let out = t.wan.exec(
        PYTHON,
        &["-c", WAN_FRAMES_PY, path.to_str().expect("utf-8")],
    );
    serde_json::from_str::<Value>(out.trim())
        .unwrap_or_else(|e| panic!("script printed {out:?}: {e}"))
        .as_array()
        .cloned()
        .unwrap_or_default()
}

wg_test! {
    /// 1. Ping both ways through the tunnel, and the far router's inside
    ///    address (its reply goes back into the tunnel).
    fn ping_both_ways(t) {
        for (from, to) in [(&t.ha, HB), (&t.hb, HA), (&t.ha, RB_LAN), (&t.hb, RA_LAN)] {
            let o = from.exec_output("ping", &["-n", "-c", "3", "-i", "0.2", "-W", "2", to]);
            assert!(o.status.success(), "ping {to}: {}", text(&o));
        }
    }
}

wg_test! {
    /// 2. A 10 s iperf3 (TCP) from A's host to B's host through the tunnel.
    fn iperf3_through_the_tunnel(t) {
        let mut srv = iperf_server(t.dir.path(), &t.hb);
        let o = t.ha.exec_output("iperf3", &["-c", HB, "-t", "10", "-J"]);
        assert!(o.status.success(), "iperf3: {}", text(&o));
        let v = iperf_json(&String::from_utf8_lossy(&o.stdout));
        let received = v["end"]["sum_received"]["bytes"].as_u64().unwrap_or(0);
        assert!(received > 1_000_000, "iperf3 moved {received} bytes: {v}");
        srv.wait_timeout(Duration::from_secs(10));
    }
}

wg_test! {
    /// 3. On the WAN, only WireGuard: every frame is UDP between the two
    ///    public addresses' WireGuard ports, no inside address appears, and
    ///    transport data messages (type 4) carry the traffic.
    fn wan_sees_only_wireguard(t) {
        let cap = Capture::start(&t.wan, "a0", "ip", t.dir.path(), "wan");
        let o = t.ha.exec_output("ping", &["-n", "-c", "5", "-i", "0.2", HB]);
        assert!(o.status.success(), "ping: {}", text(&o));
        let mut srv = iperf_server(t.dir.path(), &t.hb);
        let o = t.ha.exec_output("iperf3", &["-c", HB, "-t", "1"]);
        assert!(o.status.success(), "iperf3: {}", text(&o));
        srv.wait_timeout(Duration::from_secs(10));
        cap.finish();
        let frames = wan_frames(t, "wan.pcap");
        assert!(frames.len() > 100, "too few frames captured: {}", frames.len());
        let ends = BTreeSet::from([RA_WAN.to_string(), RB_WAN.to_string()]);
        let mut types = BTreeSet::new();
        for f in &frames {
            let (src, sport, dst, dport) = (
                f[0].as_str().unwrap_or(""),
                f[1].as_u64(),
                f[2].as_str().unwrap_or(""),
                f[3].as_u64(),
            );
            assert!(
                ends.contains(src) && ends.contains(dst)
                    && sport == Some(u64::from(WG_PORT)) && dport == Some(u64::from(WG_PORT)),
                "a frame on the WAN that is not WireGuard between the sites: {f}"
            );
            types.insert(f[4].as_i64().unwrap_or(-1));
        }
        assert!(types.contains(&4), "no transport data messages: {types:?}");
        assert!(types.iter().all(|t| (1..=4).contains(t)), "message types {types:?}");
    }
}

/// 4. Either side initiates: on a fresh topology, the first packet from
///    `from` makes its site send the handshake initiation (type 1); with
///    different kinds at the two sites this is the interoperability test
///    (both directions of traffic, each side initiating).
fn first_initiation_comes_from(a: WgRouter, b: WgRouter, b_first: bool) {
    let t = WgTopology::build_sites(a, b)
        .unwrap_or_else(|e| panic!("cannot build the WireGuard topology: {e:?}"));
    let cap = Capture::start(&t.wan, "a0", "udp", t.dir.path(), "init");
    let (from, to, want) = if b_first {
        (&t.hb, HA, RB_WAN)
    } else {
        (&t.ha, HB, RA_WAN)
    };
    assert!(t.ping_until(from, to, UP), "no tunnel from the {want} side");
    cap.finish();
    let frames = wan_frames(&t, "init.pcap");
    let first = frames
        .iter()
        .find(|f| f[4] == 1)
        .unwrap_or_else(|| panic!("no handshake initiation captured: {frames:?}"));
    assert_eq!(first[0], want, "the first initiation's source: {first}");
    let responses = frames.iter().filter(|f| f[4] == 2).count();
    assert!(responses >= 1, "no handshake response: {frames:?}");
    // Traffic both ways on the session, and a TCP transfer.
    for (from, to) in [(&t.ha, HB), (&t.hb, HA)] {
        let o = from.exec_output("ping", &["-n", "-c", "3", "-i", "0.2", "-W", "2", to]);
        assert!(o.status.success(), "ping {to}: {}", text(&o));
    }
    let mut srv = iperf_server(t.dir.path(), &t.hb);
    let o = t.ha.exec_output("iperf3", &["-c", HB, "-t", "2", "-J"]);
    assert!(o.status.success(), "iperf3: {}", text(&o));
    let v = iperf_json(&String::from_utf8_lossy(&o.stdout));
    let received = v["end"]["sum_received"]["bytes"].as_u64().unwrap_or(0);
    assert!(received > 100_000, "iperf3 moved {received} bytes: {v}");
    srv.wait_timeout(Duration::from_secs(10));
}

mod each_side_initiates {
    use super::*;

    use WgRouter::{Engine, WireguardGo};

    #[test]
    fn wireguard_go_a() {
        first_initiation_comes_from(WireguardGo, WireguardGo, false);
    }

    #[test]
    fn wireguard_go_b() {
        first_initiation_comes_from(WireguardGo, WireguardGo, true);
    }

    #[test]
    fn engine_a() {
        first_initiation_comes_from(Engine, Engine, false);
    }

    #[test]
    fn engine_b() {
        first_initiation_comes_from(Engine, Engine, true);
    }

    /// Interoperability: the engine at A, wireguard-go at B.
    #[test]
    fn engine_initiates_to_wireguard_go() {
        first_initiation_comes_from(Engine, WireguardGo, false);
    }

    #[test]
    fn wireguard_go_initiates_to_engine() {
        first_initiation_comes_from(Engine, WireguardGo, true);
    }
}

/// Re-sends, from the WAN namespace, every captured transport message of
/// a pcap as it was (replay) and with a fresh counter and one ciphertext
/// byte flipped (tamper).
const INJECT_PY: &str = r#"
import json, sys
from scapy.all import IP, UDP, Raw, rdpcap, send
out = []
for p in rdpcap(sys.argv[1]):
    if UDP not in p:
        continue
    pl = bytearray(bytes(p[UDP].payload))
    if not pl or pl[0] != 4:
        continue
    ip, udp = p[IP], p[UDP]
    out.append(IP(src=ip.src, dst=ip.dst) / UDP(sport=udp.sport, dport=udp.dport) / Raw(bytes(pl)))
    # Tampered: a counter never used (so the replay check passes) and one
    # ciphertext byte flipped (so authentication fails).
    c = int.from_bytes(pl[8:16], "little") + 1000000
    pl[8:16] = c.to_bytes(8, "little")
    pl[len(pl) // 2] ^= 0x55
    out.append(IP(src=ip.src, dst=ip.dst) / UDP(sport=udp.sport, dport=udp.dport) / Raw(bytes(pl)))
send(out, verbose=False)
print(json.dumps({"sent": len(out)}))
"#;

wg_test! {
    /// 5. Replayed and tampered transport messages injected on the WAN are
    ///    dropped: a sequence-numbered UDP stream from A's host to B's host
    ///    sees no duplicate and no garbage, and keeps flowing afterwards.
    fn replayed_and_tampered_packets_are_dropped(t) {
        let cap = Capture::start(&t.wan, "b0", "udp", t.dir.path(), "toward-b");
        let rx = Receiver::start(&t.hb, 7000, t.dir.path());
        let tx = Sender::start(&t.ha, HB, 7000, 2, 200, t.dir.path());
        std::thread::sleep(Duration::from_millis(1500));
        cap.finish();
        let out = t.wan.exec(
            PYTHON,
            &["-c", INJECT_PY, t.dir.join("toward-b.pcap").to_str().expect("utf-8")],
        );
        let injected: Value = serde_json::from_str(out.trim())
            .unwrap_or_else(|e| panic!("inject printed {out:?}: {e}"));
        assert!(injected["sent"].as_u64().unwrap_or(0) >= 100, "injected {injected}");
        // The stream goes on after the injection.
        std::thread::sleep(Duration::from_millis(1500));
        let (sent, errors) = tx.finish();
        std::thread::sleep(Duration::from_millis(300));
        let (flows, bad) = rx.finish();
        assert_eq!(errors, 0, "sender errors");
        assert!(bad.is_null() || bad == Value::from(Vec::<Value>::new()), "garbage datagrams: {bad}");
        assert_eq!(flows.len(), sent.len(), "flows {flows:?}");
        for ((id, r), n) in flows.iter().zip(&sent) {
            assert_eq!(r.duplicates, 0, "flow {id}: a replayed packet got through: {r:?}");
            assert!(r.received + 5 >= *n && r.received > 0, "flow {id}: {} of {n} arrived: {r:?}", r.received);
        }
        let o = t.ha.exec_output("ping", &["-n", "-c", "2", "-W", "2", HB]);
        assert!(o.status.success(), "ping after the injection: {}", text(&o));
        // An engine at B counted them, charged to A's peer.
        if t.kinds.1 == WgRouter::Engine {
            let label = patronus_e2e::wg_topology::peer_label(&t.a.keys.public);
            let e = t.engines.last_mut().expect("B's engine");
            let wg = e.stats().json["wg"].clone();
            let n = |k: &str| wg[format!("wg0.{label}.{k}")].as_u64().unwrap_or(0);
            assert!(n("drop.replay") > 0, "replays not counted: {wg}");
            assert!(n("drop.bad_mac") > 0, "tampered packets not counted: {wg}");
            assert!(n("handshakes") >= 1 && n("rx_packets") > 0, "{wg}");
        }
    }
}

/// 7. The tunnel, its peer and the route into it configured through the
///    REST API (`patronusctl`) and pushed through shared memory, against
///    wireguard-go: traffic flows both ways; the API shows the peer's
///    engine counters; adding and removing another peer leaves the live
///    session alone (no new handshake, ping goes on); without the route the
///    traffic is dropped, never sent in clear; deleting the tunnel stops it.
mod api {
    use super::*;
    use patronus_e2e::control::Control;
    use patronus_e2e::wg_topology::{Keys, B_SUBNET};

    fn json(out: &str) -> Value {
        serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
    }

    /// The engine's counters of B's peer, as the API shows them.
    fn b_counters(c: &Control, b_key: &str) -> Option<Value> {
        let v = json(&c.ctl_ok(&["--json", "wg", "peer", "list", "wg0"]));
        v["items"]
            .as_array()?
            .iter()
            .find(|p| p["public_key"] == b_key)
            .map(|p| p["counters"].clone())
            .filter(|c| !c.is_null())
    }

    fn wait_counter(c: &Control, b_key: &str, what: &str, at_least: u64) -> Value {
        let deadline = std::time::Instant::now() + UP;
        loop {
            if let Some(v) = b_counters(c, b_key) {
                if v[what].as_u64().unwrap_or(0) >= at_least {
                    return v;
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{what} of B's peer never reached {at_least}: {:?}",
                b_counters(c, b_key)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn ping(from: &patronus_e2e::Netns, to: &str) -> bool {
        from.exec_output("ping", &["-n", "-c", "2", "-i", "0.2", "-W", "1", to])
            .status
            .success()
    }

    #[test]
    fn engine_configured_through_the_api_interoperates_with_wireguard_go() {
        let t = WgTopology::build_sites(WgRouter::EngineApi, WgRouter::WireguardGo)
            .unwrap_or_else(|e| panic!("cannot build the WireGuard topology: {e:?}"));
        assert!(t.ping_until(&t.ha, HB, UP), "A (API) cannot reach B");
        assert!(t.ping_until(&t.hb, HA, UP), "B cannot reach A (API)");
        let c = &t.controls[0];
        let b_key = t.b.keys.public.clone();
        // The engine's counters for the peer, through the API.
        let before = wait_counter(c, &b_key, "rx_bytes", 1);
        let handshakes = before["handshakes"].as_u64().unwrap_or(0);
        assert!(handshakes >= 1, "{before}");
        assert!(before["tx_bytes"].as_u64().unwrap_or(0) > 0, "{before}");
        let rx = before["rx_bytes"].as_u64().unwrap();

        // Another peer joins and leaves: B's session is untouched.
        let other = Keys::generate();
        c.ctl_ok(&[
            "wg",
            "peer",
            "add",
            "wg0",
            &other.public,
            "--endpoint",
            "203.0.113.9:51820",
            "--allowed-ip",
            "10.10.9.0/24",
        ]);
        for (from, to) in [(&t.ha, HB), (&t.hb, HA)] {
            assert!(ping(from, to), "ping {to} after a peer was added");
        }
        c.ctl_ok(&["wg", "peer", "del", "wg0", &other.public]);
        assert!(ping(&t.ha, HB), "ping after a peer was removed");
        let after = wait_counter(c, &b_key, "rx_bytes", rx + 1);
        assert_eq!(
            after["handshakes"].as_u64(),
            Some(handshakes),
            "the session with B was kept: {before} -> {after}"
        );

        // A 2 s TCP transfer through the API-made tunnel.
        let mut srv = iperf_server(t.dir.path(), &t.hb);
        let o = t.ha.exec_output("iperf3", &["-c", HB, "-t", "2", "-J"]);
        assert!(o.status.success(), "iperf3: {}", text(&o));
        let v = iperf_json(&String::from_utf8_lossy(&o.stdout));
        let received = v["end"]["sum_received"]["bytes"].as_u64().unwrap_or(0);
        assert!(received > 100_000, "iperf3 moved {received} bytes: {v}");
        srv.wait_timeout(Duration::from_secs(10));

        // B's peer removed: B's subnet is still routed into the tunnel, no
        // peer's allowed IPs hold it, and nothing crosses the WAN in clear.
        let cap = Capture::start(&t.wan, "a0", "icmp", t.dir.path(), "clear");
        c.ctl_ok(&["wg", "peer", "del", "wg0", &b_key]);
        std::thread::sleep(Duration::from_millis(500));
        assert!(!ping(&t.ha, HB), "B's peer is gone, yet {HB} answers");
        cap.finish();
        let pcap = t.dir.join("clear.pcap");
        let o = t.wan.exec_output(
            "tshark",
            &["-r", pcap.to_str().unwrap(), "-T", "fields", "-e", "ip.dst"],
        );
        assert!(o.status.success(), "tshark: {}", text(&o));
        let dsts = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(
            !dsts.lines().any(|l| l.trim() == HB),
            "ICMP to {HB} crossed the WAN in clear: {dsts}"
        );
        // A tunnel with a route into it cannot be deleted; without, it can.
        assert!(!c.ctl(&["wg", "tunnel", "del", "wg0"]).status.success());
        c.ctl_ok(&["route", "del", B_SUBNET]);
        c.ctl_ok(&["wg", "tunnel", "del", "wg0"]);
    }
}
