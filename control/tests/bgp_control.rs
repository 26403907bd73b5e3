//! The real `patronus-control --bgp` against BIRD 2, each in a network
//! namespace this test creates (a veth between them), configured through
//! the REST API: sessions come up (summary, `/metrics`); BIRD's routes
//! reach the pushed generations (IPv4, read back from shared memory) and
//! `route6.bin` (IPv6); a static route of the same prefix wins; an
//! originated network reaches BIRD; a neighbour added and removed live
//! leaves the other session alone; BIRD's withdrawals and disabling BGP
//! remove the routes. No engine runs: this test acks generations as a
//! worker would. Needs root and `bird`.

mod common;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use patronus_control::ctl::client::Client;
use patronus_shm::{catch_up, CatchUp, Generation, RouteEntry, Subscriber};
use serde_json::{json, Value};

use common::cli::{ctl, free_port};
use common::TOKEN;

/// Generous bound on each wait (sessions retry after 2 s here).
const WAIT: Duration = Duration::from_secs(60);

fn run(cmd: &[&str]) {
    let out = Command::new(cmd[0])
        .args(&cmd[1..])
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const BIRD_CONF: &str = r#"
log "DIR/bird.log" all;
router id 10.0.0.2;
protocol device {}
protocol static s4 {
  ipv4;
  route 203.0.113.0/24 unreachable;
  route 10.50.0.0/16 unreachable;
}
protocol static s4b {
  ipv4;
  route 198.18.0.0/24 unreachable;
}
protocol static s6 {
  ipv6;
  route 2001:db8:5::/48 unreachable;
}
protocol bgp p4 {
  local 10.0.0.2 as 65002;
  neighbor 10.0.0.1 as 65001;
  passive on;
  ipv4 { import all; export where proto = "s4"; };
}
protocol bgp p4b {
  local 10.0.0.3 as 65003;
  neighbor 10.0.0.4 as 65001;
  passive on;
  ipv4 { import all; export where proto = "s4b"; };
}
protocol bgp p6 {
  local fd00::2 as 65002;
  neighbor fd00::1 as 65001;
  passive on;
  ipv6 { import all; export all; };
}
"#;

/// Two namespaces and a veth; BIRD and the control process; all removed
/// (killed) on drop.
struct Lab {
    ours: String,
    bird_ns: String,
    dir: PathBuf,
    bird: Option<Child>,
    control: Option<Child>,
}

impl Lab {
    fn new() -> Lab {
        Lab::with_conf(BIRD_CONF, "")
    }

    /// `suffix` keeps two labs of one process apart.
    fn with_conf(conf: &str, suffix: &str) -> Lab {
        let tag = format!("{}{suffix}", std::process::id());
        let lab = Lab {
            ours: format!("bgc{tag}a"),
            bird_ns: format!("bgc{tag}b"),
            dir: std::env::temp_dir().join(format!("bgpctl-{tag}")),
            bird: None,
            control: None,
        };
        let _ = std::fs::remove_dir_all(&lab.dir);
        std::fs::create_dir_all(&lab.dir).unwrap();
        let (a, b) = (&lab.ours, &lab.bird_ns);
        let (va, vb) = (format!("bgc{tag}va"), format!("bgc{tag}vb"));
        run(&["ip", "netns", "add", a]);
        run(&["ip", "netns", "add", b]);
        run(&[
            "ip", "link", "add", &va, "netns", a, "type", "veth", "peer", "name", &vb, "netns", b,
        ]);
        run(&["ip", "-n", a, "addr", "add", "10.0.0.1/24", "dev", &va]);
        // BIRD tells sessions apart by the neighbour's address: the second
        // IPv4 session comes from a second address of ours.
        run(&["ip", "-n", a, "addr", "add", "10.0.0.4/24", "dev", &va]);
        run(&[
            "ip",
            "-n",
            a,
            "addr",
            "add",
            "fd00::1/64",
            "dev",
            &va,
            "nodad",
        ]);
        run(&["ip", "-n", b, "addr", "add", "10.0.0.2/24", "dev", &vb]);
        run(&["ip", "-n", b, "addr", "add", "10.0.0.3/24", "dev", &vb]);
        run(&[
            "ip",
            "-n",
            b,
            "addr",
            "add",
            "fd00::2/64",
            "dev",
            &vb,
            "nodad",
        ]);
        for (ns, dev) in [(a, &va), (b, &vb)] {
            run(&["ip", "-n", ns, "link", "set", "lo", "up"]);
            run(&["ip", "-n", ns, "link", "set", dev, "up"]);
        }
        std::fs::write(
            lab.dir.join("bird.conf"),
            conf.replace("DIR", lab.dir.to_str().unwrap()),
        )
        .unwrap();
        lab
    }

    fn start_bird(&mut self) {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.bird_ns, "bird", "-f", "-c"])
            .arg(self.dir.join("bird.conf"))
            .arg("-s")
            .arg(self.dir.join("bird.ctl"))
            .stdout(Stdio::null())
            .spawn()
            .expect("bird (package bird2) runs");
        self.bird = Some(child);
        self.birdc_until(&["show", "status"], |o| o.contains("Daemon is up"));
    }

    fn birdc(&self, args: &[&str]) -> String {
        let out = Command::new("birdc")
            .arg("-s")
            .arg(self.dir.join("bird.ctl"))
            .args(args)
            .output()
            .expect("birdc");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn birdc_until(&self, args: &[&str], ok: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let out = self.birdc(args);
            if ok(&out) {
                return out;
            }
            assert!(
                start.elapsed() < WAIT,
                "birdc {args:?} never satisfied:\n{out}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn shm(&self) -> PathBuf {
        self.dir.join("shm")
    }

    /// Starts `patronus-control --bgp` (from a thread inside our
    /// namespace: the child is in it too); returns (api, metrics) URLs.
    fn start_control(&mut self) -> (String, String) {
        let (api, metrics) = (free_port(), free_port());
        let log = self.dir.join("control.log");
        let child = Command::new(env!("CARGO_BIN_EXE_patronus-control"))
            .env("RUST_LOG", "info")
            .args(["--listen", &format!("127.0.0.1:{api}")])
            .args(["--metrics-listen", &format!("127.0.0.1:{metrics}")])
            .arg("--db")
            .arg(self.dir.join("control.db"))
            .arg("--runtime-dir")
            .arg(self.shm())
            .args(["--token", TOKEN, "--bgp"])
            .stdout(Stdio::null())
            .stderr(Stdio::from(File::create(&log).unwrap()))
            .spawn()
            .expect("start patronus-control");
        self.control = Some(child);
        (
            format!("http://127.0.0.1:{api}"),
            format!("127.0.0.1:{metrics}"),
        )
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in [self.control.take(), self.bird.take()]
            .into_iter()
            .flatten()
        {
            let mut c = c;
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.dir.join("control.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!(
                "control.log (last lines, newest first):\n{}",
                tail.join("\n")
            );
        }
        for ns in [&self.ours, &self.bird_ns] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Moves this thread into namespace `ns`.
fn enter(ns: &str) {
    let f = File::open(format!("/var/run/netns/{ns}")).expect("namespace file");
    // SAFETY: setns on a valid namespace fd changes only this thread's
    // network namespace; no memory is involved.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
}

type Table = BTreeMap<(u32, u8), RouteEntry>;

/// The newest generation's whole IPv4 table (no engine: replays from the
/// last self-contained generation), and its number.
fn pushed(dir: &Path) -> (u64, Table) {
    let sub = Subscriber::open(dir).unwrap();
    let rd = sub.dir();
    let mut last = None;
    for _ in 0..20 {
        let n = sub.current_generation();
        let r = Generation::load(&rd.generation(n), n).and_then(|g| catch_up(rd, 0, g));
        match r {
            Ok(CatchUp::Full { base, deltas }) => {
                let mut t: Table = base
                    .view()
                    .routes()
                    .iter()
                    .map(|e| ((e.prefix, e.prefix_len), *e))
                    .collect();
                for d in &deltas {
                    for c in d.view().route_changes() {
                        let k = (c.route.prefix, c.route.prefix_len);
                        if c.is_withdraw() {
                            t.remove(&k);
                        } else {
                            t.insert(k, c.route);
                        }
                    }
                }
                return (n, t);
            }
            Ok(CatchUp::Deltas(_)) => unreachable!("nothing held"),
            Err(e) => last = Some(e),
        }
    }
    panic!("no generation readable: {last:?}");
}

fn key(a: [u8; 4], len: u8) -> (u32, u8) {
    (u32::from_be_bytes(a), len)
}

fn gateways(e: &RouteEntry) -> Vec<[u8; 4]> {
    e.nexthops[..usize::from(e.nexthop_count)]
        .iter()
        .map(|g| g.to_be_bytes())
        .collect()
}

fn pushed_until(dir: &Path, what: &str, ok: impl Fn(&Table) -> bool) -> (u64, Table) {
    let start = Instant::now();
    loop {
        let (n, t) = pushed(dir);
        if ok(&t) {
            return (n, t);
        }
        assert!(start.elapsed() < WAIT, "pushed table never {what}: {t:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn until(what: &str, mut f: impl FnMut() -> Option<Value>) -> Value {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < WAIT, "never {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn scrape(addr: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("metrics listener");
    write!(s, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn established_transitions(c: &Client, address: &str) -> u64 {
    let v = c
        .get(&format!("/api/v1/bgp/neighbors/{address}/state"))
        .unwrap();
    assert_eq!(v["state"], "established", "{v}");
    v["counters"]["established_transitions"].as_u64().unwrap()
}

#[test]
fn control_bgp_with_bird() {
    let mut lab = Lab::new();
    let ns = lab.ours.clone();
    // The whole test runs inside our namespace (the control process's
    // loopback API is only reachable there).
    let body = std::thread::spawn(move || {
        enter(&ns);
        scenario(&mut lab);
    });
    if let Err(e) = body.join() {
        std::panic::resume_unwind(e);
    }
}

fn scenario(lab: &mut Lab) {
    lab.start_bird();
    let (api, metrics) = lab.start_control();
    let c = Client::new(&api, Some(TOKEN.into())).unwrap();
    until("the API answers", || c.get("/api/v1/status").ok());
    let shm = lab.shm();
    // A worker of the (absent) engine: acks what it read.
    let sub = Subscriber::open(&shm).unwrap();
    let worker = sub.worker(0).unwrap();

    // BGP runs only once the global settings exist.
    let s = c.get("/api/v1/bgp/summary").unwrap();
    assert_eq!(s["running"], false, "{s}");

    c.post(
        "/api/v1/interfaces",
        &json!({ "port": "wan0", "address": "10.0.0.1/24" }),
    )
    .unwrap();
    // A static route for a prefix BIRD also announces.
    c.post(
        "/api/v1/routes",
        &json!({ "prefix": "10.50.0.0/16", "next_hops": [{ "via": "10.0.0.9" }] }),
    )
    .unwrap();
    c.put(
        "/api/v1/bgp/policies/all",
        &json!({ "name": "all", "default": "accept" }),
    )
    .unwrap();
    let neighbor = |address: &str, asn: u32, family: &str| {
        json!({ "address": address, "remote_as": asn, "import_policy": "all",
                "export_policy": "all", "connect_retry_secs": 2, "families": [family] })
    };
    c.post(
        "/api/v1/bgp/neighbors",
        &neighbor("10.0.0.2", 65002, "ipv4-unicast"),
    )
    .unwrap();
    c.post(
        "/api/v1/bgp/neighbors",
        &neighbor("fd00::2", 65002, "ipv6-unicast"),
    )
    .unwrap();
    c.post("/api/v1/bgp/networks", &json!({ "prefix": "192.0.2.0/24" }))
        .unwrap();
    c.put(
        "/api/v1/bgp",
        &json!({ "asn": 65001, "router_id": "10.0.0.1" }),
    )
    .unwrap();

    // Both sessions up, BIRD's routes selected.
    let s = until("both sessions established and routes selected", || {
        let s = c.get("/api/v1/bgp/summary").ok()?;
        (s["neighbors"]["established"] == 2
            && s["selected_routes"]["ipv4"] == 2
            && s["selected_routes"]["ipv6"] == 1)
            .then_some(s)
    });
    assert_eq!(s["running"], true);
    assert_eq!(s["local_as"], 65001);
    assert_eq!(s["router_id"], "10.0.0.1");
    assert_eq!(s["neighbors"]["configured"], 2);
    let out = ctl(&api, &["bgp", "summary"]).ok().stdout;
    assert!(out.contains("AS 65001, router id 10.0.0.1"), "{out}");
    assert!(out.contains("2 configured, 2 established"), "{out}");
    let v = ctl(&api, &["--json", "bgp", "summary"]).ok().json();
    assert_eq!(v["neighbors"]["established"], 2, "{v}");

    // IPv4 in the pushed generation: BIRD's route via BIRD; the static
    // route keeps its prefix.
    let (g, t) = pushed_until(&shm, "holding BIRD's route", |t| {
        t.contains_key(&key([203, 0, 113, 0], 24))
    });
    assert_eq!(
        gateways(&t[&key([203, 0, 113, 0], 24)]),
        vec![[10, 0, 0, 2]]
    );
    assert_eq!(
        gateways(&t[&key([10, 50, 0, 0], 16)]),
        vec![[10, 0, 0, 9]],
        "static wins"
    );
    assert_eq!(t.len(), 2, "{t:?}");
    // IPv6 in route6.bin.
    let mut sub6 = Subscriber::open(&shm).unwrap();
    let r6 = until("route6.bin holding BIRD's route", || {
        let (_, t) = sub6.poll_route6().ok()??;
        let r = t.routes.iter().find(|r| {
            r.prefix_addr() == "2001:db8:5::".parse::<std::net::Ipv6Addr>().unwrap()
                && r.prefix_len == 48
        })?;
        Some(json!(r
            .nexthops()
            .map(|(g, _)| g.to_string())
            .collect::<Vec<_>>()))
    });
    assert_eq!(r6, json!(["fd00::2"]));

    // Installed = BGP routes in the generation every live worker acked.
    worker.ack(g);
    let s = until("installed routes counted", || {
        worker.ack(sub.current_generation());
        let s = c.get("/api/v1/bgp/summary").ok()?;
        (s["installed_routes"]["ipv4"] == 1).then_some(s)
    });
    assert!(s["installed_generation"].as_u64().unwrap() >= g, "{s}");

    // Metrics.
    let m = scrape(&metrics);
    for line in [
        "patronus_bgp_session_state{neighbor=\"10.0.0.2\"} 6",
        "patronus_bgp_session_established{neighbor=\"10.0.0.2\"} 1",
        "patronus_bgp_session_established{neighbor=\"fd00::2\"} 1",
        "patronus_bgp_prefixes_received{afi=\"ipv4\",neighbor=\"10.0.0.2\"} 2",
        "patronus_bgp_prefixes_accepted{afi=\"ipv6\",neighbor=\"fd00::2\"} 1",
        "patronus_bgp_selected_routes{afi=\"ipv4\"} 2",
        "patronus_bgp_installed_routes{afi=\"ipv4\"} 1",
    ] {
        assert!(m.contains(line), "{line} missing from:\n{m}");
    }
    assert!(m.contains("patronus_bgp_updates_received_total{neighbor=\"10.0.0.2\"}"));

    // Our originated network reached BIRD, via us.
    let out = lab.birdc_until(&["show", "route", "192.0.2.0/24"], |o| {
        o.contains("192.0.2.0/24")
    });
    assert!(out.contains("via 10.0.0.1"), "{out}");
    // Networks originated and withdrawn live.
    c.post(
        "/api/v1/bgp/networks",
        &json!({ "prefix": "198.51.100.0/24" }),
    )
    .unwrap();
    c.delete("/api/v1/bgp/networks/192.0.2.0%2F24").unwrap();
    lab.birdc_until(&["show", "route", "198.51.100.0/24"], |o| {
        o.contains("198.51.100.0/24")
    });
    lab.birdc_until(&["show", "route", "192.0.2.0/24"], |o| {
        !o.contains("192.0.2.0/24")
    });

    // A neighbour added live: its session and routes come; the other
    // session is not reset.
    let before = established_transitions(&c, "10.0.0.2");
    let mut third = neighbor("10.0.0.3", 65003, "ipv4-unicast");
    third["local_address"] = json!("10.0.0.4");
    c.post("/api/v1/bgp/neighbors", &third).unwrap();
    let st = until("the new session established", || {
        let v = c.get("/api/v1/bgp/neighbors/10.0.0.3/state").ok()?;
        (v["state"] == "established").then_some(v)
    });
    assert_eq!(st["remote_router_id"], "10.0.0.2", "{st}");
    pushed_until(&shm, "holding the new neighbour's route", |t| {
        t.get(&key([198, 18, 0, 0], 24))
            .is_some_and(|e| gateways(e) == vec![[10, 0, 0, 3]])
    });
    assert_eq!(
        c.get("/api/v1/bgp/summary").unwrap()["neighbors"]["configured"],
        3
    );
    // And removed live: its routes go, BIRD sees the session end.
    c.delete("/api/v1/bgp/neighbors/10.0.0.3").unwrap();
    pushed_until(&shm, "without the removed neighbour's route", |t| {
        !t.contains_key(&key([198, 18, 0, 0], 24)) && t.contains_key(&key([203, 0, 113, 0], 24))
    });
    lab.birdc_until(&["show", "protocols", "p4b"], |o| {
        !o.contains("Established")
    });
    assert_eq!(
        established_transitions(&c, "10.0.0.2"),
        before,
        "session kept"
    );

    // BIRD withdraws: the BGP route goes, the static route stays.
    lab.birdc(&["disable", "s4"]);
    let (_, t) = pushed_until(&shm, "without BIRD's withdrawn route", |t| {
        !t.contains_key(&key([203, 0, 113, 0], 24))
    });
    assert_eq!(gateways(&t[&key([10, 50, 0, 0], 16)]), vec![[10, 0, 0, 9]]);
    lab.birdc(&["enable", "s4"]);
    pushed_until(&shm, "holding BIRD's route again", |t| {
        t.contains_key(&key([203, 0, 113, 0], 24))
    });

    // A policy changed live: re-applied by a route refresh, no reset.
    c.put(
        "/api/v1/bgp/policies/all",
        &json!({ "name": "all", "default": "accept", "terms": [{
            "match": { "prefix_list": [{ "action": "permit", "prefix": "203.0.113.0/24" }] },
            "then": "reject" }] }),
    )
    .unwrap();
    pushed_until(&shm, "without the route the new policy rejects", |t| {
        !t.contains_key(&key([203, 0, 113, 0], 24))
    });
    c.put(
        "/api/v1/bgp/policies/all",
        &json!({ "name": "all", "default": "accept" }),
    )
    .unwrap();
    pushed_until(&shm, "holding the route the policy accepts again", |t| {
        t.contains_key(&key([203, 0, 113, 0], 24))
    });
    assert_eq!(
        established_transitions(&c, "10.0.0.2"),
        before,
        "session kept"
    );

    // A new router id restarts the speaker: the routes are learned again.
    c.put(
        "/api/v1/bgp",
        &json!({ "asn": 65001, "router_id": "10.0.0.11" }),
    )
    .unwrap();
    until("the restarted speaker's sessions", || {
        let s = c.get("/api/v1/bgp/summary").ok()?;
        (s["router_id"] == "10.0.0.11" && s["neighbors"]["established"] == 2).then_some(s)
    });
    pushed_until(&shm, "holding BIRD's route after the restart", |t| {
        t.contains_key(&key([203, 0, 113, 0], 24))
    });

    // BGP disabled: the speaker stops and its routes leave both tables.
    c.put(
        "/api/v1/bgp",
        &json!({ "asn": 65001, "router_id": "10.0.0.1", "enabled": false }),
    )
    .unwrap();
    let (_, t) = pushed_until(&shm, "without BGP routes", |t| t.len() == 1);
    assert!(t.contains_key(&key([10, 50, 0, 0], 16)));
    until("route6.bin emptied", || {
        let (_, t) = sub6.poll_route6().ok()??;
        t.routes.is_empty().then_some(Value::Null)
    });
    let s = c.get("/api/v1/bgp/summary").unwrap();
    assert_eq!(s["running"], false, "{s}");
    lab.birdc_until(&["show", "protocols", "p4"], |o| !o.contains("Established"));
}

/// Scale (ignored by default; run in release):
/// `cargo test -p patronus-control --release --test bgp_control -- --ignored --nocapture`
/// BIRD announces `PATRONUS_BGP_SCALE` (default 200000) IPv4 prefixes; prints
/// the time until all are selected and until all are in the pushed table.
/// Checks only that they all arrive (no timing thresholds).
#[test]
#[ignore]
fn control_bgp_scale() {
    let n: u32 = std::env::var("PATRONUS_BGP_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let mut routes = String::new();
    for i in 0..n {
        let a = 0x0b00_0000u32 + (i << 8);
        let [x, y, z, _] = a.to_be_bytes();
        routes.push_str(&format!("  route {x}.{y}.{z}.0/24 unreachable;\n"));
    }
    let conf = format!(
        r#"
log "DIR/bird.log" {{ error, fatal }};
router id 10.0.0.2;
protocol device {{}}
protocol static s4 {{
  ipv4;
{routes}}}
protocol bgp p4 {{
  local 10.0.0.2 as 65002;
  neighbor 10.0.0.1 as 65001;
  passive on;
  ipv4 {{ import none; export all; }};
}}
"#
    );
    let mut lab = Lab::with_conf(&conf, "s");
    let ns = lab.ours.clone();
    let body = std::thread::spawn(move || {
        enter(&ns);
        lab.start_bird();
        let (api, _) = lab.start_control();
        let c = Client::new(&api, Some(TOKEN.into())).unwrap();
        until("the API answers", || c.get("/api/v1/status").ok());
        c.post(
            "/api/v1/interfaces",
            &json!({ "port": "wan0", "address": "10.0.0.1/24" }),
        )
        .unwrap();
        c.put(
            "/api/v1/bgp/policies/all",
            &json!({ "name": "all", "default": "accept" }),
        )
        .unwrap();
        c.post(
            "/api/v1/bgp/neighbors",
            &json!({ "address": "10.0.0.2", "remote_as": 65002, "import_policy": "all",
                     "export_policy": "all", "connect_retry_secs": 2 }),
        )
        .unwrap();
        let start = Instant::now();
        c.put(
            "/api/v1/bgp",
            &json!({ "asn": 65001, "router_id": "10.0.0.1" }),
        )
        .unwrap();
        let shm = lab.shm();
        let mut selected_at = None;
        loop {
            let s = c.get("/api/v1/bgp/summary").unwrap();
            if selected_at.is_none() && s["selected_routes"]["ipv4"] == n {
                selected_at = Some(start.elapsed());
            }
            if selected_at.is_some() && pushed(&shm).1.len() == n as usize {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(600),
                "never converged: {s}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let pushed_at = start.elapsed();
        let rss = std::fs::read_to_string(format!(
            "/proc/{}/status",
            lab.control.as_ref().unwrap().id()
        ))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .unwrap_or("")
        .to_owned();
        println!(
            "{n} prefixes: all selected after {:.2} s, all in the pushed table after {:.2} s; control {rss}",
            selected_at.unwrap().as_secs_f64(),
            pushed_at.as_secs_f64()
        );
    });
    if let Err(e) = body.join() {
        std::panic::resume_unwind(e);
    }
}
