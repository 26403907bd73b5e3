//! The load balancer's direct server return (DSR) mode, end to end in
//! namespaces (`tests/src/lb_topology.rs`): the engine encapsulates the
//! client's packets IP-in-IP to a backend, which holds the VIP on `lo` and
//! answers the client directly from the VIP. The replies are routed back
//! through the engine as plain packets (the backends' default route; they
//! are not addressed to a VIP, so the engine only forwards them).
//!
//! Why a BPF program: a real backend decapsulates with the kernel's ipip
//! module (`ip link set tunl0 up`), but this kernel is built without
//! CONFIG_NET_IPIP, so the backends run `tests/bpf/decap.c` at tc ingress
//! of eth0, which strips the outer IPv4 header of protocol-4 packets and
//! lets the inner packet (to the VIP) up the stack. The first test checks
//! that stand-in without the engine.

use patronus_e2e::lb_topology::{
    LbTopology, Mode, Options, BACKENDS, CHECK_PORT, CLIENT, HTTP_PORT, R_BACK, UDP_PORT, VIP,
};
use patronus_e2e::scapy::PYTHON;
use patronus_e2e::Capture;
use serde_json::Value;

/// Sends, from R (holding `R_BACK` in the kernel, no engine), a UDP
/// datagram to VIP:UDP_PORT encapsulated IP-in-IP to `backend`, and an
/// ICMP echo likewise; prints the UDP answer and its source, and whether
/// an echo reply from the VIP came back.
const SEND_IPIP_PY: &str = r#"
import json, socket, sys
from scapy.all import IP, UDP, ICMP, send, sniff, AsyncSniffer
src, backend, vip, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((src, 0))
s.settimeout(3)
sport = s.getsockname()[1]
sn = AsyncSniffer(iface="wan0", filter="icmp and src host %s" % vip, count=1, timeout=3)
sn.start()
import time; time.sleep(0.3)
send(IP(src=src, dst=backend) / IP(src=src, dst=vip) / UDP(sport=sport, dport=port) / b"who", verbose=0)
data, frm = s.recvfrom(2048)
send(IP(src=src, dst=backend) / IP(src=src, dst=vip) / ICMP(id=7, seq=1) / b"ping", verbose=0)
sn.join()
echo = [p[ICMP].type for p in (sn.results or []) if ICMP in p]
print(json.dumps({"answer": data.decode().strip(), "from": "%s:%d" % frm, "echo": echo}))
"#;

#[test]
fn decap_program_turns_ipip_into_packets_to_the_vip() {
    let t = LbTopology::build(
        "lbdecap",
        Mode::Dsr,
        Options {
            no_engine: true,
            ..Options::default()
        },
    );
    // R's kernel stands in for the engine on the backends' link.
    t.r.addr_add("wan0", &format!("{R_BACK}/24"));
    t.r.sysctl("net.ipv4.conf.all.rp_filter", "0");
    t.r.sysctl("net.ipv4.conf.wan0.rp_filter", "0");
    for b in &t.backends {
        let out = t.r.exec(
            PYTHON,
            &[
                "-c",
                SEND_IPIP_PY,
                R_BACK,
                b.addr,
                VIP,
                &UDP_PORT.to_string(),
            ],
        );
        let v: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
        assert_eq!(v["answer"], b.name, "{v}");
        assert_eq!(
            v["from"],
            format!("{VIP}:{UDP_PORT}"),
            "answered from the VIP: {v}"
        );
        assert_eq!(
            v["echo"],
            serde_json::json!([0]),
            "echo reply from the VIP: {v}"
        );
    }
    // The backends do not answer ARP for the VIP they hold on lo: with the
    // VIP on-link, R cannot reach it unencapsulated.
    t.r.route_add(&[&format!("{VIP}/32"), "dev", "wan0"]);
    let out = t.r.exec_output("ping", &["-n", "-c", "2", "-W", "1", VIP]);
    assert!(!out.status.success(), "a backend answered ARP for the VIP");
    let neigh = t.r.ip(&["neigh", "show", VIP]);
    assert!(!neigh.contains("lladdr"), "{neigh}");
    t.r.ip(&["route", "del", &format!("{VIP}/32")]);
    // Plain traffic to the backend's own address passes the program.
    for b in &t.backends {
        let body = t.r.exec(
            "curl",
            &["-sS", "--max-time", "5", &format!("http://{}/", b.addr)],
        );
        assert_eq!(body.trim(), b.name);
    }
}

/// The engine's own `[lb]` config for DSR: a TCP VIP and a UDP VIP on the
/// same address, three backends each.
fn dsr_toml() -> String {
    let mut s = String::from("\n[lb]\n");
    for (port, proto) in [(HTTP_PORT, "tcp"), (UDP_PORT, "udp")] {
        s += &format!(
            "[[lb.vip]]\naddress = \"{VIP}\"\nport = {port}\nprotocol = \"{proto}\"\nmode = \"dsr\"\n"
        );
        for (_, addr) in BACKENDS {
            s += &format!("[[lb.vip.backend]]\naddress = \"{addr}\"\nport = {port}\nweight = 1\n");
        }
    }
    s
}

/// Every backend's name among `answers` (the `backend` of each result);
/// panics on a failed one.
fn names(answers: &[Value]) -> Vec<String> {
    answers
        .iter()
        .map(|a| {
            assert_eq!(a["ok"], true, "a request failed: {a}");
            a["backend"].as_str().unwrap().to_string()
        })
        .collect()
}

fn assert_all_backends(names: &[String], what: &str) {
    for (b, _) in BACKENDS {
        assert!(
            names.iter().any(|n| n == b),
            "{what}: {b} never answered: {names:?}"
        );
    }
    assert!(
        names.iter().all(|n| BACKENDS.iter().any(|(b, _)| b == n)),
        "{what}: {names:?}"
    );
}

/// DSR from the engine's TOML: TCP (HTTP) and UDP to the VIP reach all
/// three backends; on the wire toward the backends the engine sends only
/// IP-in-IP (outer source = its address, inner = the client's packet), and
/// the replies come from the VIP itself, never from a backend's address.
#[test]
fn engine_toml_dsr_tcp_and_udp_reach_every_backend_and_replies_come_from_the_vip() {
    let mut t = LbTopology::build(
        "lbdsr",
        Mode::Dsr,
        Options {
            engine_extra: dsr_toml(),
            ..Options::default()
        },
    );
    let cap = Capture::start(&t.sw, "up0", "ip", t.dir.path(), "up0");
    let http = t.http_requests(VIP, HTTP_PORT, 30.0, 150);
    assert_eq!(http.len(), 150);
    assert_all_backends(&names(&http), "HTTP");
    let udp = t.udp_requests(VIP, UDP_PORT, 60);
    assert_all_backends(&names(&udp), "UDP");
    for a in &udp {
        assert_eq!(a["from"], format!("{VIP}:{UDP_PORT}"), "{a}");
    }
    // curl too, as a user would.
    let body = t.client.exec(
        "curl",
        &["-sS", "--max-time", "5", &format!("http://{VIP}/")],
    );
    assert!(BACKENDS.iter().any(|(b, _)| body.trim() == *b), "{body}");

    let frames = frames_of(&t, cap);
    check_dsr_wire(&frames);

    let s = t.engine().stats();
    let encap = s.json["lb"]["dsr_encap"].as_u64().unwrap_or(0);
    assert!(encap >= 150 * 3 + 60, "lb.dsr_encap = {encap}: {}", s.json);
    assert_eq!(s.json["lb"]["nat_forward"].as_u64(), Some(0), "{}", s.json);
}

fn frames_of(t: &LbTopology, cap: Capture) -> Vec<Value> {
    // Capture::finish summarises with pcap_summary.py; the IP-in-IP view
    // needs the pcap itself.
    let pcap = t.dir.join("up0.pcap");
    drop(cap.finish());
    t.ipip_summary(&pcap)
}

/// What crosses the engine's backend-side link in DSR mode.
fn check_dsr_wire(frames: &[Value]) {
    let backend_addrs: Vec<&str> = BACKENDS.iter().map(|(_, a)| *a).collect();
    let mut encap_to = std::collections::BTreeSet::new();
    let mut replies = 0;
    for f in frames {
        let (src, dst, proto) = (
            f["src"].as_str().unwrap(),
            f["dst"].as_str().unwrap(),
            f["proto"].as_u64().unwrap(),
        );
        if proto == 4 {
            assert_eq!(src, R_BACK, "outer source is the engine: {f}");
            assert!(
                backend_addrs.contains(&dst),
                "outer destination a backend: {f}"
            );
            assert_eq!(f["inner_src"], CLIENT, "{f}");
            assert_eq!(f["inner_dst"], VIP, "{f}");
            encap_to.insert(dst.to_string());
        }
        // Nothing plain goes to the VIP over this link.
        assert!(
            dst != VIP,
            "a plain packet to the VIP reached the backends' link: {f}"
        );
        // Service replies come from the VIP, never from a backend address.
        let sport = f["sport"].as_u64();
        if backend_addrs.contains(&src) && dst == CLIENT {
            assert!(
                sport != Some(u64::from(HTTP_PORT)) && sport != Some(u64::from(UDP_PORT)),
                "a reply from a backend's own address: {f}"
            );
        }
        if src == VIP && dst == CLIENT && proto != 4 {
            replies += 1;
        }
    }
    assert_eq!(
        encap_to.len(),
        BACKENDS.len(),
        "IP-in-IP toward every backend: {encap_to:?}"
    );
    assert!(replies > 0, "no reply from the VIP on the wire");
}

/// DSR through the control process: a TCP VIP with an HTTP health check
/// and a UDP VIP without one, created with `patronusctl`, reach every
/// backend; the wire shows IP-in-IP; the API counts the flows.
#[test]
fn api_dsr_vips_reach_every_backend() {
    let mut t = LbTopology::build(
        "lbdsrapi",
        Mode::Dsr,
        Options {
            control: true,
            ..Options::default()
        },
    );
    let c = t.control();
    c.ctl_ok(&[
        "lb",
        "vip",
        "add",
        "web",
        &format!("{VIP}:{HTTP_PORT}"),
        "--mode",
        "dsr",
        "--check",
        "http:/",
        // Not the service port: on the wire, a reply from a backend's own
        // address and port 80 is then always a DSR failure.
        "--check-port",
        &CHECK_PORT.to_string(),
        "--interval-ms",
        "400",
        "--timeout-ms",
        "300",
        "--rise",
        "2",
        "--fall",
        "2",
    ]);
    c.ctl_ok(&[
        "lb",
        "vip",
        "add",
        "dns",
        &format!("{VIP}:{UDP_PORT}"),
        "--proto",
        "udp",
        "--mode",
        "dsr",
    ]);
    let mut web = Vec::new();
    for (_, addr) in BACKENDS {
        let e = format!("{addr}:{HTTP_PORT}");
        c.ctl_ok(&["lb", "backend", "add", "web", &e, "--weight", "1"]);
        c.ctl_ok(&[
            "lb",
            "backend",
            "add",
            "dns",
            &format!("{addr}:{UDP_PORT}"),
            "--weight",
            "1",
        ]);
        web.push(e);
    }
    t.wait_health("web", &web, "up");
    t.wait_engine("both VIPs with every backend up", |bs| {
        bs.len() == 2 * BACKENDS.len() && bs.iter().all(|b| b["up"] == true)
    });
    let cap = Capture::start(&t.sw, "up0", "ip", t.dir.path(), "up0");
    let http = t.http_requests(VIP, HTTP_PORT, 30.0, 150);
    assert_all_backends(&names(&http), "HTTP");
    let udp = t.udp_requests(VIP, UDP_PORT, 60);
    assert_all_backends(&names(&udp), "UDP");
    for a in &udp {
        assert_eq!(a["from"], format!("{VIP}:{UDP_PORT}"), "{a}");
    }
    check_dsr_wire(&frames_of(&t, cap));
    // The API shows the engine's per-backend flow counts.
    let v = t.vip("web");
    assert_eq!(v["mode"], "dsr", "{v}");
    let flows: u64 = v["backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["flows"].as_u64().unwrap_or(0))
        .sum();
    assert!(flows >= 150, "flows {flows}: {v}");
    t.engine().assert_running();
}
