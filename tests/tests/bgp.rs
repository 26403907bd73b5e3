//! BGP end to end through the engine (issue 9): the control process runs
//! its speaker (`patronus-control --bgp`) in the router namespace and its
//! sessions reach the peers through the engine's punt path (TAPs
//! `lcp-lan0`/`lcp-wan0`); the routes it selects are pushed into the
//! engine's FIB and carry h1's traffic to addresses behind the peer.
//!
//! h1 (10.1.0.2) — engine (10.1.0.1 | 10.2.0.1) — h2 (10.2.0.2): h2 runs
//! the peer (BIRD 2, FRR's bgpd, or a raw Python peer) and holds the
//! announced networks on its loopback (10.99.0.1/24, 10.98.0.1/24,
//! 10.97.0.1/24, 2001:db8:99::1/64), so a ping from h1 to them succeeds
//! exactly when the engine has a route; h2's default route points back at
//! the engine. We originate 10.1.0.0/24 (and 2001:db8:1::/64) to the peer.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Stdio};
use std::time::{Duration, Instant};

use patronus_e2e::control::Control;
use patronus_e2e::probe::ping;
use patronus_e2e::routing_daemons::{Bird, Frr, PEER_WAIT};
use patronus_e2e::topology::{RouterKind, H2, R_WAN};
use patronus_e2e::{TempDir, Topology};
use serde_json::{json, Value};

const READY: Duration = Duration::from_secs(15);

/// IPv6 addressing of the same topology.
const H1_6: &str = "2001:db8:1::2";
const R_LAN_6: &str = "2001:db8:1::1";
const H2_6: &str = "2001:db8:2::2";
const R_WAN_6: &str = "2001:db8:2::1";

/// The lab: topology with the engine (punt path on, attached to the
/// control's shared memory), the control process with `--bgp` in the
/// router namespace, the announced networks on h2.
struct Lab {
    control: Control,
    t: Topology,
    _scratch: TempDir,
}

impl Lab {
    fn new(tag: &str, ipv6: bool) -> Lab {
        let scratch = TempDir::new(tag);
        let runtime = scratch.path().join("shm");
        let mut extra = format!(
            "[punt]\nrate_pps = 20000\n[control]\nruntime_dir = \"{}\"\n",
            runtime.display()
        );
        if ipv6 {
            extra.push_str(&format!(
                "[[interface]]\nport = \"lan0\"\naddress = \"{R_LAN_6}/64\"\n\
                 [[interface]]\nport = \"wan0\"\naddress = \"{R_WAN_6}/64\"\n"
            ));
        }
        let mut t = Topology::build(tag, RouterKind::Engine, &extra);
        t.wait_forwarding(READY);
        // The networks behind the peer (on its loopback: this kernel has no
        // dummy interfaces).
        for a in ["10.99.0.1/24", "10.98.0.1/24", "10.97.0.1/24"] {
            t.h2.addr_add("lo", a);
        }
        if ipv6 {
            for (ns, a, gw) in [(&t.h1, H1_6, R_LAN_6), (&t.h2, H2_6, R_WAN_6)] {
                ns.ip(&["addr", "add", &format!("{a}/64"), "dev", "eth0", "nodad"]);
                ns.ip(&["-6", "route", "add", "default", "via", gw]);
            }
            t.h2.ip(&["addr", "add", "2001:db8:99::1/64", "dev", "lo"]);
        }
        let port = 21000 + (std::process::id() % 20000) as u16;
        let control = Control::start_in_args(
            Some(&t.r),
            scratch.path(),
            &runtime,
            port,
            "control",
            &["--bgp"],
        );
        // The control's interfaces (its next-hop resolution uses them).
        control.ctl_ok(&["interface", "add", "lan0", "10.1.0.1/24"]);
        control.ctl_ok(&["interface", "add", "wan0", "10.2.0.1/24"]);
        control.request(
            "PUT",
            "bgp/policies/all",
            Some(&json!({"name": "all", "default": "accept"})),
        );
        Lab {
            control,
            t,
            _scratch: scratch,
        }
    }

    fn global(&self, asn: u32) {
        self.control
            .request("PUT", "bgp", Some(&json!({"asn": asn, "router_id": R_WAN})));
    }

    fn neighbor(&self, body: Value) {
        self.control.request("POST", "bgp/neighbors", Some(&body));
    }

    fn network(&self, prefix: &str) {
        self.control
            .request("POST", "bgp/networks", Some(&json!({ "prefix": prefix })));
    }

    fn summary(&self) -> Value {
        self.control.request("GET", "bgp/summary", None)
    }

    /// Polls the summary until `pred` holds; returns it.
    fn summary_until(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + PEER_WAIT;
        loop {
            let s = self.summary();
            if pred(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "summary never {what}: {s:#}\n{}\n{}",
                self.control.proc.report(),
                self.t.engine().process().stderr()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Pings `dst` from h1 until the outcome is `reachable` (a route came
    /// or went); panics after the peer wait.
    fn ping_until(&mut self, dst: &str, reachable: bool) {
        let deadline = Instant::now() + PEER_WAIT;
        loop {
            let (ok, out) = ping(&self.t.h1, dst, 1, &[]);
            if ok == reachable {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{dst} never became {}: {out}\nsummary: {:#}",
                if reachable {
                    "reachable"
                } else {
                    "unreachable"
                },
                self.summary()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

const BIRD_EBGP: &str = r#"
log "LOG" all;
router id 10.2.0.2;
protocol device {}
protocol static s4 {
  ipv4;
  route 10.99.0.0/24 blackhole;
  ROUTE98
}
protocol bgp p4 {
  local 10.2.0.2 as 65002;
  neighbor 10.2.0.1 as 65001;
  connect delay time 1;
  ipv4 { import all; export where proto = "s4"; };
}
"#;

fn bird_conf(template: &str, dir: &std::path::Path, name: &str, with98: bool) -> String {
    template
        .replace("LOG", dir.join(format!("{name}.log")).to_str().unwrap())
        .replace(
            "ROUTE98",
            if with98 {
                "route 10.98.0.0/24 blackhole;"
            } else {
                ""
            },
        )
}

/// eBGP with BIRD over IPv4: the session runs through the punt path, BIRD's
/// routes forward h1's traffic, our originated network reaches BIRD, a
/// route BIRD withdraws stops forwarding while the other stays.
#[test]
fn ebgp_with_bird_installs_forwards_and_withdraws() {
    let mut lab = Lab::new("bgpbird", false);
    // No route yet: the engine drops h1's pings to the networks behind h2.
    let (ok, _) = ping(&lab.t.h1, "10.99.0.1", 1, &[]);
    assert!(!ok, "10.99.0.1 reachable before any BGP route");
    let no_route_before = lab.t.stats().drop_count("no_route");
    assert!(no_route_before > 0);

    let dir = lab.t.dir.path().to_path_buf();
    let bird = Bird::start(
        &lab.t.h2,
        &dir,
        "bird",
        &bird_conf(BIRD_EBGP, &dir, "bird", true),
    );
    lab.global(65001);
    lab.network("10.1.0.0/24");
    lab.neighbor(json!({
        "address": H2, "remote_as": 65002, "import_policy": "all",
        "export_policy": "all", "connect_retry_secs": 2, "hold_time_secs": 9
    }));
    let s = lab.summary_until("established with two routes installed", |s| {
        n(&s["neighbors"]["established"]) == 1 && n(&s["installed_routes"]["ipv4"]) >= 2
    });
    assert_eq!(s["running"], true, "{s:#}");
    assert_eq!(n(&s["local_as"]), 65001, "{s:#}");

    lab.ping_until("10.99.0.1", true);
    lab.ping_until("10.98.0.1", true);
    // Our network reached BIRD with our AS and next hop.
    let out = bird.birdc_until(
        &["show", "route", "10.1.0.0/24", "all"],
        "learnt 10.1.0.0/24",
        |o| o.contains("10.1.0.0/24"),
    );
    assert!(out.contains("via 10.2.0.1"), "{out}");
    assert!(out.contains("BGP.as_path: 65001"), "{out}");
    // The session ran through the punt path.
    let st = lab.t.stats();
    assert!(st.counter("punt_to_host") > 0 && st.counter("punt_from_host") > 0);
    // Neighbor state and counters through the API.
    let nb = lab
        .control
        .request("GET", &format!("bgp/neighbors/{H2}/state"), None);
    assert_eq!(nb["state"], "established", "{nb:#}");
    // The RIB through the API.
    let rib = lab
        .control
        .request("GET", "bgp/rib?prefix=10.99.0.0/24", None);
    assert!(rib.to_string().contains("10.99.0.0/24"), "{rib:#}");
    // Metrics.
    let metrics = lab
        .control
        .command(std::path::Path::new("curl"))
        .args(["-sS", &lab.control.metrics])
        .output()
        .unwrap();
    let metrics = String::from_utf8_lossy(&metrics.stdout);
    assert!(
        metrics.contains("patronus_bgp_session_established"),
        "{metrics}"
    );
    assert!(
        metrics.contains("patronus_bgp_installed_routes"),
        "{metrics}"
    );

    // BIRD withdraws 10.98.0.0/24: it stops forwarding, 10.99.0.0/24 stays.
    bird.write_conf(&bird_conf(BIRD_EBGP, &dir, "bird", false));
    bird.reconfigure();
    lab.ping_until("10.98.0.1", false);
    let (ok, out) = ping(&lab.t.h1, "10.99.0.1", 2, &[]);
    assert!(ok, "10.99.0.1 lost with the other withdrawal: {out}");
    assert!(lab.t.stats().drop_count("no_route") > no_route_before);
    lab.summary_until("one route fewer", |s| {
        n(&s["installed_routes"]["ipv4"]) == n(&s["selected_routes"]["ipv4"])
    });
}

const BIRD_IBGP_GR: &str = r#"
log "LOG" all;
router id 10.2.0.2;
protocol device {}
protocol static s4 {
  ipv4;
  route 10.99.0.0/24 blackhole;
  ROUTE98
}
protocol bgp p4 {
  local 10.2.0.2 as 65001;
  neighbor 10.2.0.1 as 65001;
  connect delay time 1;
  graceful restart on;
  ipv4 { next hop self; import all; export where proto = "s4"; };
}
"#;

/// iBGP with BIRD and graceful restart: BIRD crashes (SIGKILL) and comes
/// back in recovery; h1's traffic to BIRD's routes is not interrupted (the
/// routes stay in the engine, stale), and a route BIRD no longer has after
/// its return is swept.
#[test]
fn ibgp_graceful_restart_of_bird_keeps_forwarding() {
    let mut lab = Lab::new("bgpgr", false);
    let dir = lab.t.dir.path().to_path_buf();
    let mut bird = Bird::start(
        &lab.t.h2,
        &dir,
        "bird",
        &bird_conf(BIRD_IBGP_GR, &dir, "bird", true),
    );
    lab.global(65001);
    lab.neighbor(json!({
        "address": H2, "remote_as": 65001, "graceful_restart": true,
        "restart_time_secs": 60, "connect_retry_secs": 2, "hold_time_secs": 9
    }));
    lab.summary_until("established with BIRD's routes installed", |s| {
        n(&s["neighbors"]["established"]) == 1 && n(&s["installed_routes"]["ipv4"]) >= 2
    });
    lab.ping_until("10.99.0.1", true);
    lab.ping_until("10.98.0.1", true);

    // A steady flow across the crash: 40 pings, 0.1 s apart.
    let pinger = lab
        .t
        .h1
        .command(
            "ping",
            &["-n", "-c", "40", "-i", "0.1", "-W", "1", "10.99.0.1"],
        )
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    bird.kill();
    lab.summary_until("the session is down", |s| {
        n(&s["neighbors"]["established"]) == 0
    });
    // BIRD returns without 10.98.0.0/24.
    bird.write_conf(&bird_conf(BIRD_IBGP_GR, &dir, "bird", false));
    bird.restart(&lab.t.h2, true);
    let out = pinger.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("40 received"),
        "pings lost while BIRD restarted (routes must stay during graceful restart):\n{text}"
    );
    lab.summary_until("established again", |s| {
        n(&s["neighbors"]["established"]) == 1
    });
    // The stale route BIRD did not re-announce is swept after its End-of-RIB.
    lab.ping_until("10.98.0.1", false);
    let (ok, out) = ping(&lab.t.h1, "10.99.0.1", 2, &[]);
    assert!(ok, "{out}");
}

const FRR_CONF: &str = r#"
hostname frrpeer
router bgp 65002
 bgp router-id 10.2.0.2
 no bgp ebgp-requires-policy
 no bgp network import-check
 timers bgp 3 9
 neighbor 10.2.0.1 remote-as 65001
 neighbor 10.2.0.1 timers connect 1
 neighbor 2001:db8:2::1 remote-as 65001
 neighbor 2001:db8:2::1 timers connect 1
 address-family ipv4 unicast
  network 10.99.0.0/24
  network 10.98.0.0/24
  no neighbor 2001:db8:2::1 activate
 exit-address-family
 address-family ipv6 unicast
  network 2001:db8:99::/64
  neighbor 2001:db8:2::1 activate
 exit-address-family
"#;

/// eBGP with FRR over IPv4 and IPv6 (a session each, both through the
/// punt path): routes in both directions, forwarding of both families, and
/// a withdrawal.
#[test]
fn ebgp_with_frr_over_ipv4_and_ipv6_installs_forwards_and_withdraws() {
    let mut lab = Lab::new("bgpfrr", true);
    let dir = lab.t.dir.path().to_path_buf();
    let frr = Frr::start(&lab.t.h2, &dir, FRR_CONF);
    lab.global(65001);
    lab.network("10.1.0.0/24");
    lab.network("2001:db8:1::/64");
    for (addr, fam) in [(H2, "ipv4-unicast"), (H2_6, "ipv6-unicast")] {
        lab.neighbor(json!({
            "address": addr, "remote_as": 65002, "import_policy": "all",
            "export_policy": "all", "connect_retry_secs": 2, "hold_time_secs": 9,
            "families": [fam]
        }));
    }
    lab.summary_until("both sessions up, FRR's routes installed", |s| {
        n(&s["neighbors"]["established"]) == 2
            && n(&s["installed_routes"]["ipv4"]) >= 2
            && n(&s["installed_routes"]["ipv6"]) >= 1
    });
    lab.ping_until("10.99.0.1", true);
    lab.ping_until("10.98.0.1", true);
    lab.ping_until("2001:db8:99::1", true);
    let out = frr.vtysh_until(
        "show bgp ipv4 unicast 10.1.0.0/24",
        "learnt 10.1.0.0/24",
        |o| o.contains("65001"),
    );
    assert!(out.contains("10.2.0.1"), "{out}");
    let out = frr.vtysh_until(
        "show bgp ipv6 unicast 2001:db8:1::/64",
        "learnt 2001:db8:1::/64",
        |o| o.contains("65001"),
    );
    assert!(out.contains("2001:db8:2::1"), "{out}");
    frr.vtysh(&[
        "configure terminal",
        "router bgp 65002",
        "address-family ipv4 unicast",
        "no network 10.98.0.0/24",
    ]);
    lab.ping_until("10.98.0.1", false);
    let (ok, out) = ping(&lab.t.h1, "10.99.0.1", 2, &[]);
    assert!(ok, "{out}");
    let (ok, out) = ping(&lab.t.h1, "2001:db8:99::1", 2, &[]);
    assert!(ok, "{out}");
}

const FRR_IBGP_CONF: &str = r#"
hostname frrpeer
router bgp 65001
 bgp router-id 10.2.0.2
 no bgp network import-check
 timers bgp 3 9
 neighbor 10.2.0.1 remote-as 65001
 neighbor 10.2.0.1 timers connect 1
 address-family ipv4 unicast
  network 10.99.0.0/24
 exit-address-family
"#;

/// iBGP with FRR (no policies: RFC 8212 concerns eBGP only): FRR's route
/// forwards, ours reaches FRR with LOCAL_PREF and an empty AS path.
#[test]
fn ibgp_with_frr_installs_and_forwards() {
    let mut lab = Lab::new("bgpfrri", false);
    let dir = lab.t.dir.path().to_path_buf();
    let frr = Frr::start(&lab.t.h2, &dir, FRR_IBGP_CONF);
    lab.global(65001);
    lab.network("10.1.0.0/24");
    lab.neighbor(json!({
        "address": H2, "remote_as": 65001, "connect_retry_secs": 2, "hold_time_secs": 9
    }));
    lab.summary_until("established with FRR's route installed", |s| {
        n(&s["neighbors"]["established"]) == 1 && n(&s["installed_routes"]["ipv4"]) >= 1
    });
    lab.ping_until("10.99.0.1", true);
    let out = frr.vtysh_until(
        "show bgp ipv4 unicast 10.1.0.0/24",
        "learnt 10.1.0.0/24",
        |o| o.contains("10.1.0.0/24") && o.contains("10.2.0.1"),
    );
    assert!(
        out.contains("Local"),
        "iBGP: empty AS path shown as Local: {out}"
    );
    assert!(out.contains("localpref 100"), "{out}");
}

const BIRD_EBGP6: &str = r#"
log "LOG" all;
router id 10.2.0.2;
protocol device {}
protocol static s6 {
  ipv6;
  route 2001:db8:99::/64 blackhole;
}
protocol static s4 {
  ipv4;
  route 10.99.0.0/24 blackhole;
}
protocol bgp p6 {
  local 2001:db8:2::2 as 65002;
  neighbor 2001:db8:2::1 as 65001;
  connect delay time 1;
  ipv6 { import all; export where proto = "s6"; };
}
protocol bgp p4 {
  local 10.2.0.2 as 65002;
  neighbor 10.2.0.1 as 65001;
  connect delay time 1;
  ipv4 { import all; export where proto = "s4"; };
}
"#;

/// eBGP with BIRD over IPv6 and IPv4 at once: the IPv6 session also runs
/// through the punt path (ND and TCP through the TAP), BIRD's IPv6 route
/// is installed in the engine's IPv6 FIB and forwards h1's IPv6 traffic.
#[test]
fn ebgp_with_bird_over_ipv6_forwards_ipv6() {
    let mut lab = Lab::new("bgpv6", true);
    let dir = lab.t.dir.path().to_path_buf();
    let (ok, _) = ping(&lab.t.h1, "2001:db8:99::1", 1, &[]);
    assert!(!ok, "reachable before any BGP route");
    let bird = Bird::start(
        &lab.t.h2,
        &dir,
        "bird",
        &BIRD_EBGP6.replace("LOG", dir.join("bird.log").to_str().unwrap()),
    );
    lab.global(65001);
    lab.network("10.1.0.0/24");
    lab.network("2001:db8:1::/64");
    lab.neighbor(json!({
        "address": H2_6, "remote_as": 65002, "import_policy": "all",
        "export_policy": "all", "connect_retry_secs": 2, "hold_time_secs": 9
    }));
    lab.neighbor(json!({
        "address": H2, "remote_as": 65002, "import_policy": "all",
        "export_policy": "all", "connect_retry_secs": 2, "hold_time_secs": 9
    }));
    lab.summary_until("both sessions established, IPv6 route installed", |s| {
        n(&s["neighbors"]["established"]) == 2
            && n(&s["installed_routes"]["ipv6"]) >= 1
            && n(&s["installed_routes"]["ipv4"]) >= 1
    });
    lab.ping_until("2001:db8:99::1", true);
    lab.ping_until("10.99.0.1", true);
    let out = bird.birdc_until(
        &["show", "route", "2001:db8:1::/64", "all"],
        "learnt 2001:db8:1::/64",
        |o| o.contains("2001:db8:1::/64"),
    );
    assert!(out.contains("BGP.as_path: 65001"), "{out}");
    // The IPv6 session goes away with its neighbor: its route leaves the
    // engine, the IPv4 session and route stay.
    lab.control
        .request("DELETE", &format!("bgp/neighbors/{H2_6}"), None);
    lab.ping_until("2001:db8:99::1", false);
    let (ok, out) = ping(&lab.t.h1, "10.99.0.1", 2, &[]);
    assert!(ok, "{out}");
}

/// A raw BGP peer (Python on h2) that speaks exactly the bytes we choose:
/// OPEN, KEEPALIVE, then UPDATEs on command.
struct RawPeer {
    child: Child,
    stdin: ChildStdin,
    out: BufReader<ChildStdout>,
}

const RAW_PEER: &str = r#"
import socket, struct, sys, select, time

def msg(t, body):
    return b"\xff" * 16 + struct.pack("!HB", 19 + len(body), t) + body

def open_msg():
    caps = bytes([1, 4, 0, 1, 0, 1]) + bytes([65, 4]) + struct.pack("!I", 65002)
    opt = bytes([2, len(caps)]) + caps
    return msg(1, struct.pack("!BHH4sB", 4, 65002, 30, socket.inet_aton("10.2.0.2"), len(opt)) + opt)

def update(origin_value, prefix):
    attrs = bytes([0x40, 1, 1, origin_value])
    attrs += bytes([0x40, 2, 6, 2, 1]) + struct.pack("!I", 65002)
    attrs += bytes([0x40, 3, 4]) + socket.inet_aton("10.2.0.2")
    addr, plen = prefix.split("/")
    plen = int(plen)
    nlri = bytes([plen]) + socket.inet_aton(addr)[: (plen + 7) // 8]
    return msg(2, struct.pack("!H", 0) + struct.pack("!H", len(attrs)) + attrs + nlri)

def say(s):
    print(s, flush=True)

s = None
deadline = time.time() + 60
while s is None:
    try:
        s = socket.create_connection(("10.2.0.1", 179), timeout=2)
    except OSError:
        if time.time() > deadline:
            raise
        time.sleep(0.5)
s.sendall(open_msg())
buf = b""
def read_msgs(timeout):
    global buf
    out = []
    end = time.time() + timeout
    while time.time() < end:
        r, _, _ = select.select([s], [], [], max(0, end - time.time()))
        if not r:
            break
        data = s.recv(4096)
        if not data:
            out.append(("closed", b""))
            return out
        buf += data
        while len(buf) >= 19:
            ln, t = struct.unpack("!HB", buf[16:19])
            if len(buf) < ln:
                break
            out.append((t, buf[19:ln]))
            buf = buf[ln:]
    return out

got = read_msgs(5)
if not any(t == 1 for t, _ in got):
    say("NO-OPEN %r" % got); sys.exit(1)
s.sendall(msg(4, b""))
say("OPEN-OK")
for line in sys.stdin:
    cmd = line.split()
    if cmd[0] == "announce":
        s.sendall(update(0, cmd[1]))
    elif cmd[0] == "bad-origin":
        s.sendall(update(7, cmd[1]))
    elif cmd[0] == "bad-marker":
        s.sendall(b"\x00" * 16 + struct.pack("!HB", 19, 4))
    elif cmd[0] == "keepalive":
        s.sendall(msg(4, b""))
    got = read_msgs(float(cmd[-1]) if cmd[0] == "wait" else 1.0)
    notes = [b for t, b in got if t == 3]
    closed = any(t == "closed" for t, _ in got)
    if notes:
        say("NOTIFICATION %d %d" % (notes[0][0], notes[0][1]))
    elif closed:
        say("CLOSED")
    else:
        say("OK")
"#;

impl RawPeer {
    fn start(lab: &Lab) -> RawPeer {
        let script = lab.t.dir.path().join("rawpeer.py");
        std::fs::write(&script, RAW_PEER).unwrap();
        let mut child = lab
            .t
            .h2
            .command("python3", &["-u", script.to_str().unwrap()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        let mut p = RawPeer { child, stdin, out };
        assert_eq!(p.line(), "OPEN-OK");
        p
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        self.out.read_line(&mut l).unwrap();
        l.trim().to_string()
    }

    fn send(&mut self, cmd: &str) -> String {
        writeln!(self.stdin, "{cmd}").unwrap();
        self.line()
    }
}

impl Drop for RawPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// RFC 7606 through the whole stack: a raw peer's UPDATE with a malformed
/// ORIGIN is treated as a withdrawal (route leaves the engine, session
/// stays up, no NOTIFICATION); a message with a broken header gets a
/// NOTIFICATION (message header error, connection not synchronised) and
/// the session closes; the control process keeps running and answers.
#[test]
fn malformed_update_from_a_raw_peer_is_handled_per_rfc7606() {
    let mut lab = Lab::new("bgpraw", false);
    lab.global(65001);
    lab.neighbor(json!({
        "address": H2, "remote_as": 65002, "import_policy": "all",
        "passive": true, "hold_time_secs": 30
    }));
    let mut peer = RawPeer::start(&lab);
    assert_eq!(peer.send("announce 10.97.0.0/24"), "OK");
    lab.ping_until("10.97.0.1", true);
    // Malformed ORIGIN (7): treat-as-withdraw.
    assert_eq!(
        peer.send("bad-origin 10.97.0.0/24"),
        "OK",
        "no NOTIFICATION for treat-as-withdraw"
    );
    lab.ping_until("10.97.0.1", false);
    let s = lab.summary();
    assert_eq!(n(&s["neighbors"]["established"]), 1, "session kept: {s:#}");
    assert_eq!(peer.send("keepalive"), "OK");
    // Announced again, it comes back: the session is healthy.
    assert_eq!(peer.send("announce 10.97.0.0/24"), "OK");
    lab.ping_until("10.97.0.1", true);
    // A broken header: NOTIFICATION 1/1 and the session closes.
    let answer = peer.send("bad-marker");
    assert!(answer == "NOTIFICATION 1 1", "{answer}");
    lab.summary_until("the session is down", |s| {
        n(&s["neighbors"]["established"]) == 0
    });
    // Its routes are gone (no graceful restart negotiated) and the
    // process kept running.
    lab.ping_until("10.97.0.1", false);
    assert!(
        lab.control.proc.try_wait().is_none(),
        "{}",
        lab.control.proc.report()
    );
    lab.control.ctl_ok(&["status"]);
}
