//! The BGP speaker against BIRD 2 and FRR in network namespaces: eBGP
//! over IPv4 and over IPv6, routes both ways, withdrawals, an import
//! policy that keeps a prefix out, route refresh, iBGP, the
//! graceful-restart helper, AS-path loop check, connection collisions.
//! The speaker runs in this process on a thread that entered its
//! namespace (setns) before creating its tokio runtime; the peer daemon
//! runs in the other namespace. Needs root, `bird` and `bgpd`.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use patronus_bgp::fsm::State;
use patronus_bgp::policy::Policy;
use patronus_bgp::types::Prefix;
use patronus_control::bgp::speaker::{
    spawn, Families, NeighborConfig, NeighborStatus, RouteTable, SpeakerConfig, SpeakerHandle,
};

/// Generous bound on each wait: sessions retry after a back-off of 5 s.
const WAIT: Duration = Duration::from_secs(60);

static SEQ: AtomicU32 = AtomicU32::new(0);

fn run(cmd: &[&str]) -> String {
    let out = Command::new(cmd[0])
        .args(&cmd[1..])
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Two namespaces joined by a veth pair, BIRD in the second; all removed
/// on drop.
struct Lab {
    ours: String,
    bird_ns: String,
    dir: PathBuf,
    bird: Option<Child>,
}

impl Lab {
    fn new(bird_conf: &str) -> Lab {
        let tag = format!(
            "{}x{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let lab = Lab {
            ours: format!("bgs{tag}a"),
            bird_ns: format!("bgs{tag}b"),
            dir: std::env::temp_dir().join(format!("bgpspk-{tag}")),
            bird: None,
        };
        std::fs::create_dir_all(&lab.dir).unwrap();
        let (a, b) = (&lab.ours, &lab.bird_ns);
        let (va, vb) = (format!("bgs{tag}va"), format!("bgs{tag}vb"));
        run(&["ip", "netns", "add", a]);
        run(&["ip", "netns", "add", b]);
        run(&[
            "ip", "link", "add", &va, "netns", a, "type", "veth", "peer", "name", &vb, "netns", b,
        ]);
        for (ns, dev, v4, v6) in [
            (a, &va, "10.0.0.1/24", "fd00::1/64"),
            (b, &vb, "10.0.0.2/24", "fd00::2/64"),
        ] {
            run(&["ip", "-n", ns, "link", "set", "lo", "up"]);
            run(&["ip", "-n", ns, "addr", "add", v4, "dev", dev]);
            run(&["ip", "-n", ns, "addr", "add", v6, "dev", dev, "nodad"]);
            run(&["ip", "-n", ns, "link", "set", dev, "up"]);
        }
        std::fs::write(
            lab.dir.join("bird.conf"),
            bird_conf.replace("DIR", lab.dir.to_str().unwrap()),
        )
        .unwrap();
        lab
    }

    fn start_bird(&mut self) {
        self.start_bird_with("bird.conf", &[]);
    }

    /// Starts BIRD with a config file of the lab's directory (written by
    /// [`Lab::write_conf`]) and extra options.
    fn start_bird_with(&mut self, conf: &str, opts: &[&str]) {
        let conf = self.dir.join(conf);
        let child = Command::new("ip")
            .args(["netns", "exec", &self.bird_ns, "bird", "-f"])
            .args(opts)
            .arg("-c")
            .arg(&conf)
            .arg("-s")
            .arg(self.sock())
            .stdout(Stdio::null())
            .spawn()
            .expect("bird (package bird2) runs");
        self.bird = Some(child);
    }

    fn write_conf(&self, name: &str, conf: &str) {
        let text = conf.replace("DIR", self.dir.to_str().unwrap());
        std::fs::write(self.dir.join(name), text).unwrap();
    }

    /// Kills BIRD at once (as a crash would).
    fn kill_bird(&mut self) {
        if let Some(mut c) = self.bird.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// Starts FRR's bgpd (without zebra) with `conf` in the peer namespace.
    fn start_frr(&mut self, conf: &str) {
        self.write_conf("frr.conf", conf);
        let d = &self.dir;
        let child = Command::new("ip")
            .args(["netns", "exec", &self.bird_ns, "/usr/lib/frr/bgpd", "-f"])
            .arg(d.join("frr.conf"))
            .arg("-i")
            .arg(d.join("bgpd.pid"))
            .arg("-z")
            .arg(d.join("zserv.api"))
            .arg("--vty_socket")
            .arg(d)
            .args(["-S", "-Z", "-n"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("bgpd (package frr) runs");
        self.bird = Some(child);
    }

    fn vtysh(&self, cmds: &[&str]) -> String {
        let mut c = Command::new("vtysh");
        c.arg("--vty_socket").arg(&self.dir);
        for cmd in cmds {
            c.args(["-c", cmd]);
        }
        let out = c.output().expect("vtysh");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn vtysh_until(&self, cmd: &str, ok: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let out = self.vtysh(&[cmd]);
            if ok(&out) {
                return out;
            }
            assert!(
                start.elapsed() < WAIT,
                "vtysh {cmd:?} never satisfied:\n{out}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn sock(&self) -> PathBuf {
        self.dir.join("bird.ctl")
    }

    fn birdc(&self, args: &[&str]) -> String {
        let out = Command::new("birdc")
            .arg("-s")
            .arg(self.sock())
            .args(args)
            .output()
            .expect("birdc");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Polls `birdc` until `ok` holds for its output.
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
}

impl Drop for Lab {
    fn drop(&mut self) {
        // A failed test shows what the peer saw (BIRD's log, when it has
        // one); BGP_TEST_LOGS=1 shows it always.
        if std::thread::panicking() || std::env::var_os("BGP_TEST_LOGS").is_some() {
            if let Ok(log) = std::fs::read_to_string(self.dir.join("bird.log")) {
                eprintln!("--- {}/bird.log ---\n{log}", self.dir.display());
            }
        }
        if let Some(mut c) = self.bird.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in [&self.ours, &self.bird_ns] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The speaker running on its own thread inside namespace `ns`.
struct Speaker {
    handle: SpeakerHandle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Speaker {
    fn start(ns: &str, cfg: SpeakerConfig) -> Speaker {
        // The speaker's session log goes to the test's captured output,
        // shown when the test fails.
        let _ = tracing_subscriber::fmt()
            .with_env_filter("info")
            .with_ansi(false)
            .with_test_writer()
            .try_init();
        let path = format!("/var/run/netns/{ns}");
        let (htx, hrx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let f = File::open(&path).expect("namespace file");
            // SAFETY: setns on a valid namespace fd only changes this
            // thread's network namespace; no memory is involved.
            let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let h = spawn(cfg).await.expect("speaker starts");
                htx.send(h.clone()).unwrap();
                let _ = stop_rx.await;
                h.shutdown().await;
            });
        });
        let handle = hrx.recv_timeout(WAIT).expect("speaker started");
        Speaker {
            handle,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }
}

impl Drop for Speaker {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn pfx(s: &str) -> Prefix {
    let (a, l) = s.split_once('/').unwrap();
    Prefix::new(a.parse().unwrap(), l.parse().unwrap()).unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn routes_until(h: &SpeakerHandle, what: &str, ok: impl Fn(&RouteTable) -> bool) -> RouteTable {
    let mut rx = h.routes();
    block_on(async {
        tokio::time::timeout(WAIT, async {
            loop {
                let t = rx.borrow_and_update().clone();
                if ok(&t) {
                    return (*t).clone();
                }
                rx.changed().await.expect("speaker alive");
            }
        })
        .await
        .unwrap_or_else(|_| panic!("routes never {what}: {:?}", rx.borrow()))
    })
}

fn neighbors_until(
    h: &SpeakerHandle,
    what: &str,
    ok: impl Fn(&[NeighborStatus]) -> bool,
) -> Vec<NeighborStatus> {
    let start = Instant::now();
    loop {
        let n = block_on(h.neighbors()).expect("speaker alive");
        if ok(&n) {
            return n;
        }
        assert!(start.elapsed() < WAIT, "neighbours never {what}: {n:#?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

const BIRD_CONF: &str = r#"
log "DIR/bird.log" all;
router id 10.0.0.2;
protocol device {}
protocol static s4 {
  ipv4;
  route 203.0.113.0/24 unreachable;
  route 198.51.100.0/24 unreachable;
}
protocol static s6 {
  ipv6;
  route 2001:db8:5::/48 unreachable;
}
protocol bgp p4 {
  local 10.0.0.2 as 65002;
  neighbor 10.0.0.1 as 65001;
  passive on;
  ipv4 { import all; export all; };
}
protocol bgp p6 {
  local fd00::2 as 65002;
  neighbor fd00::1 as 65001;
  connect delay time 1;
  ipv6 { import all; export all; };
}
"#;

fn speaker_config() -> SpeakerConfig {
    let accept = Policy::from_json(r#"{"name":"all","default":"accept"}"#).unwrap();
    let no_198 = Policy::from_json(
        r#"{"name":"no-198","terms":[{"match":{"prefix_list":[{"action":"permit","prefix":"198.51.100.0/24"}]},"then":"reject"}],"default":"accept"}"#,
    )
    .unwrap();
    let mut cfg = SpeakerConfig::new(65001, Ipv4Addr::new(10, 0, 0, 1));
    cfg.networks = vec![pfx("192.0.2.0/24"), pfx("2001:db8:99::/48")];
    cfg.connected = vec![pfx("10.0.0.0/24"), pfx("fd00::/64")];
    // IPv4: we connect (BIRD is passive) and keep 198.51.100.0/24 out.
    let mut v4 = NeighborConfig::new(ip("10.0.0.2"), 65002);
    v4.families = Families::IPV4;
    v4.import = Some(no_198);
    v4.export = Some(accept.clone());
    // IPv6: BIRD connects to our listener.
    let mut v6 = NeighborConfig::new(ip("fd00::2"), 65002);
    v6.passive = true;
    v6.families = Families::IPV6;
    v6.import = Some(accept.clone());
    v6.export = Some(accept);
    cfg.neighbors = vec![v4, v6];
    cfg
}

#[test]
fn bgp_bird_ebgp_ipv4_and_ipv6() {
    let mut lab = Lab::new(BIRD_CONF);
    let speaker = Speaker::start(&lab.ours, speaker_config());
    lab.start_bird();
    let h = &speaker.handle;

    let n = neighbors_until(h, "Established", |n| {
        n.iter().all(|s| s.state == State::Established)
    });
    assert_eq!(n[0].router_id, Some(Ipv4Addr::new(10, 0, 0, 2)));

    // BIRD's routes, both families, next hop = BIRD; the policy kept one out.
    let t = routes_until(h, "learned from BIRD", |t| {
        t.contains_key(&pfx("203.0.113.0/24")) && t.contains_key(&pfx("2001:db8:5::/48"))
    });
    assert_eq!(t[&pfx("203.0.113.0/24")], vec![ip("10.0.0.2")]);
    assert_eq!(t[&pfx("2001:db8:5::/48")], vec![ip("fd00::2")]);
    assert!(!t.contains_key(&pfx("198.51.100.0/24")), "{t:?}");
    let n = neighbors_until(h, "counting BIRD's v4 prefixes", |n| {
        n[0].counters.prefixes_received == 2
    });
    assert_eq!(n[0].counters.prefixes_accepted, 1);
    assert_eq!(n[1].counters.prefixes_accepted, 1);
    assert_eq!(n[0].counters.prefixes_advertised, 1);
    assert_eq!(n[1].counters.prefixes_advertised, 1);

    // Our networks in BIRD, via us, with our AS.
    let out = lab.birdc_until(&["show", "route", "192.0.2.0/24", "all"], |o| {
        o.contains("192.0.2.0/24")
    });
    assert!(out.contains("via 10.0.0.1"), "{out}");
    assert!(out.contains("BGP.as_path: 65001"), "{out}");
    let out = lab.birdc_until(&["show", "route", "2001:db8:99::/48"], |o| {
        o.contains("2001:db8:99::/48")
    });
    assert!(out.contains("via fd00::1"), "{out}");

    // Route refresh: BIRD asks, we send our Adj-RIB-Out again.
    let before = n[0].counters.updates_out;
    lab.birdc(&["reload", "in", "p4"]);
    neighbors_until(h, "answering the route refresh", |n| {
        n[0].counters.updates_out > before
    });

    // Withdrawals: BIRD stops announcing its static routes.
    lab.birdc(&["disable", "s4"]);
    lab.birdc(&["disable", "s6"]);
    routes_until(h, "emptied by BIRD's withdrawals", |t| t.is_empty());
    let n = block_on(h.neighbors()).unwrap();
    assert_eq!(n[0].counters.prefixes_received, 0);
    assert!(n.iter().all(|s| s.state == State::Established));

    // And back.
    lab.birdc(&["enable", "s4"]);
    routes_until(h, "refilled", |t| t.contains_key(&pfx("203.0.113.0/24")));

    drop(speaker);
    // Our shutdown reached BIRD as a Cease.
    lab.birdc_until(&["show", "protocols", "p4"], |o| !o.contains("Established"));
}

const BIRD_IBGP_CONF: &str = r#"
log "DIR/bird.log" all;
router id 10.0.0.2;
protocol device {}
# iBGP next hops resolve recursively: through the connected subnet.
protocol direct { ipv4; }
protocol static s4 {
  ipv4;
  route 203.0.113.0/24 unreachable;
  ROUTE198
}
protocol bgp p4 {
  local 10.0.0.2 as 65001;
  neighbor 10.0.0.1 as 65001;
  connect delay time 1;
  graceful restart on;
  debug { states, events };
  ipv4 { import all; export filter { bgp_local_pref = 200; accept; }; };
}
"#;

/// iBGP (no policies: RFC 8212 accepts), both sides connecting (a
/// collision when they meet), and the graceful-restart helper: BIRD's
/// routes survive its crash and are swept after its return.
#[test]
fn bgp_bird_ibgp_graceful_restart() {
    let mut lab = Lab::new("");
    lab.write_conf(
        "bird.conf",
        &BIRD_IBGP_CONF.replace("ROUTE198", "route 198.51.100.0/24 unreachable;"),
    );
    lab.write_conf("bird-after.conf", &BIRD_IBGP_CONF.replace("ROUTE198", ""));
    let mut cfg = SpeakerConfig::new(65001, Ipv4Addr::new(10, 0, 0, 1));
    cfg.networks = vec![pfx("192.0.2.0/24")];
    cfg.connected = vec![pfx("10.0.0.0/24")];
    let mut n = NeighborConfig::new(ip("10.0.0.2"), 65001);
    n.graceful_restart = true;
    n.hold_time = 30;
    cfg.neighbors = vec![n];
    let speaker = Speaker::start(&lab.ours, cfg);
    lab.start_bird();
    let h = &speaker.handle;

    neighbors_until(h, "Established", |n| n[0].state == State::Established);
    let both = |t: &RouteTable| {
        t.get(&pfx("203.0.113.0/24")) == Some(&vec![ip("10.0.0.2")])
            && t.contains_key(&pfx("198.51.100.0/24"))
    };
    routes_until(h, "learned over iBGP", both);
    // iBGP: our AS not prepended, LOCAL_PREF sent, next hop ours.
    let out = lab.birdc_until(&["show", "route", "192.0.2.0/24", "all"], |o| {
        o.contains("192.0.2.0/24")
    });
    assert!(out.contains("via 10.0.0.1"), "{out}");
    assert!(out.contains("BGP.local_pref: 100"), "{out}");
    assert!(
        out.contains("BGP.as_path: \n") || out.contains("BGP.as_path:\n"),
        "{out}"
    );

    // BIRD crashes: the session drops, its routes stay (stale).
    // Changes are streamed before the instance answers a later query, so
    // a withdrawal at session down would be in the stream by then.
    let mut changes = h.changes();
    lab.kill_bird();
    neighbors_until(h, "down", |n| n[0].state != State::Established);
    while let Ok(c) = changes.try_recv() {
        assert!(
            !c.next_hops.is_empty(),
            "route removed at session down: {c:?}"
        );
    }
    assert!(both(&h.routes().borrow()), "routes kept across the restart");

    // BIRD returns without 198.51.100.0/24: after its End-of-RIB the stale
    // route is swept, the other one stays.
    lab.start_bird_with("bird-after.conf", &["-R"]);
    let t = routes_until(h, "swept after the restart", |t| {
        !t.contains_key(&pfx("198.51.100.0/24"))
    });
    assert_eq!(t[&pfx("203.0.113.0/24")], vec![ip("10.0.0.2")]);
    let n = neighbors_until(h, "Established again", |n| n[0].state == State::Established);
    assert!(n[0].counters.established_transitions >= 2);
    // 203.0.113.0/24 was never removed on the way.
    while let Ok(c) = changes.try_recv() {
        assert!(
            c.prefix != pfx("203.0.113.0/24") || !c.next_hops.is_empty(),
            "{c:?}"
        );
    }
}

const FRR_CONF: &str = r#"
hostname frrpeer
router bgp 65002
 bgp router-id 10.0.0.2
 no bgp ebgp-requires-policy
 no bgp network import-check
 timers bgp 3 9
 neighbor 10.0.0.1 remote-as 65001
 neighbor 10.0.0.1 timers connect 1
 neighbor fd00::1 remote-as 65001
 neighbor fd00::1 timers connect 1
 address-family ipv4 unicast
  network 203.0.113.0/24
  network 198.51.100.0/24
  no neighbor fd00::1 activate
 exit-address-family
 address-family ipv6 unicast
  network 2001:db8:5::/48
  neighbor fd00::1 activate
 exit-address-family
"#;

/// The same eBGP exchange with FRR's bgpd; FRR connects out on both
/// sessions, and so do we on IPv4 (connection collision handling).
#[test]
fn bgp_frr_ebgp_ipv4_and_ipv6() {
    let mut lab = Lab::new("");
    let speaker = Speaker::start(&lab.ours, speaker_config());
    lab.start_frr(FRR_CONF);
    let h = &speaker.handle;

    neighbors_until(h, "Established", |n| {
        n.iter().all(|s| s.state == State::Established)
    });
    let t = routes_until(h, "learned from FRR", |t| {
        t.contains_key(&pfx("203.0.113.0/24")) && t.contains_key(&pfx("2001:db8:5::/48"))
    });
    assert_eq!(t[&pfx("203.0.113.0/24")], vec![ip("10.0.0.2")]);
    assert_eq!(t[&pfx("2001:db8:5::/48")], vec![ip("fd00::2")]);
    assert!(!t.contains_key(&pfx("198.51.100.0/24")), "{t:?}");

    let out = lab.vtysh_until("show bgp ipv4 unicast 192.0.2.0/24", |o| {
        o.contains("65001")
    });
    assert!(out.contains("10.0.0.1"), "{out}");
    let out = lab.vtysh_until("show bgp ipv6 unicast 2001:db8:99::/48", |o| {
        o.contains("65001")
    });
    assert!(out.contains("fd00::1"), "{out}");

    lab.vtysh(&[
        "configure terminal",
        "router bgp 65002",
        "address-family ipv4 unicast",
        "no network 203.0.113.0/24",
    ]);
    let t = routes_until(h, "without FRR's withdrawn route", |t| {
        !t.contains_key(&pfx("203.0.113.0/24"))
    });
    assert!(t.contains_key(&pfx("2001:db8:5::/48")));
    let n = block_on(h.neighbors()).unwrap();
    assert!(n.iter().all(|s| s.state == State::Established), "{n:#?}");
    // FRR sends our own network back (path 65002 65001): refused by the
    // AS-path loop check, like 198.51.100.0/24 by the import policy.
    let adv = lab.vtysh(&["show bgp ipv4 unicast neighbors 10.0.0.1 advertised-routes"]);
    assert!(adv.contains("65001"), "{adv}");
    assert_eq!(n[0].counters.prefixes_received, 2, "{adv}");
    assert_eq!(n[0].counters.prefixes_accepted, 0, "{adv}");
}
