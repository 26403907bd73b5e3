//! The control process drives the engine through shared memory: routes
//! added and removed through the REST API (with `patronusctl`) take effect
//! in the running engine; `kill -9` of the control process loses no traffic,
//! and after a restart the API shows the same state; `/metrics` sees the
//! engine and passes `promtool check metrics`.

use std::process::Command;
use std::time::{Duration, Instant};

use patronus_e2e::control::Control;
use patronus_e2e::topology::{RouterKind, H2, R_WAN};
use patronus_e2e::Topology;

const READY: Duration = Duration::from_secs(15);

fn ping_ok(t: &Topology, dst: &str) -> bool {
    t.h1.exec_output("ping", &["-n", "-c", "1", "-W", "1", dst])
        .status
        .success()
}

/// Waits until ping to `dst` succeeds (or fails, when `want` is false).
fn wait_ping(t: &Topology, dst: &str, want: bool) -> Duration {
    let start = Instant::now();
    while ping_ok(t, dst) != want {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "ping {dst} did not become {}",
            if want { "reachable" } else { "unreachable" }
        );
    }
    start.elapsed()
}

#[test]
fn api_routes_drive_the_engine_and_survive_kill_9() {
    let probe = patronus_e2e::TempDir::new("ctlrt");
    let runtime = probe.path().join("shm");
    let extra = format!("[control]\nruntime_dir = \"{}\"\n", runtime.display());
    let mut t = Topology::build_workers("ctl", RouterKind::from_env(), &extra, 1);
    t.wait_forwarding(READY);
    // A destination behind h2 that only a pushed route reaches.
    t.h2.ip(&["addr", "add", "10.9.0.1/32", "dev", "lo"]);
    let dir = t.dir.path().to_path_buf();
    let port = 20000 + (std::process::id() % 20000) as u16;
    let c = Control::start(&dir, &runtime, port, "control");

    c.ctl_ok(&["interface", "add", "wan0", "10.2.0.1/24"]);
    assert!(!ping_ok(&t, "10.9.0.1"), "no route yet");
    c.ctl_ok(&["route", "add", "10.9.0.0/24", "via", H2]);
    let took = wait_ping(&t, "10.9.0.1", true);
    eprintln!("route effective after {took:?}");

    // /metrics sees the engine and passes promtool.
    let scrape = Command::new("curl")
        .args(["-sf", &c.metrics])
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&scrape.stdout).into_owned();
    assert!(text.contains("patronus_engine_attached 1"), "{text}");
    assert!(
        text.contains("patronus_port_packets_total{port=\"wan0\",direction=\"tx\"}"),
        "{text}"
    );
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus) is required");
    use std::io::Write;
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );

    // kill -9 the control process under a stream of pings: nothing is lost.
    let mut pinger = t.h1.spawn(
        "ping",
        &["-n", "-q", "-i", "0.01", "-c", "300", "-W", "1", "10.9.0.1"],
        &dir,
        "ping-stream",
    );
    std::thread::sleep(Duration::from_secs(1));
    c.proc.signal(libc::SIGKILL);
    let status = pinger
        .wait_timeout(Duration::from_secs(30))
        .expect("ping ended");
    let out = pinger.stdout();
    assert!(status.success(), "ping stream: {}", pinger.report());
    assert!(
        out.contains("300 packets transmitted, 300 received"),
        "lost while control was killed: {out}"
    );

    // Restarted, it shows the same state and keeps driving the engine.
    let c = Control::start(&dir, &runtime, port, "control2");
    let list = c.ctl_ok(&["--json", "route", "list"]);
    assert!(list.contains("10.9.0.0"), "{list}");
    assert!(ping_ok(&t, "10.9.0.1"));
    c.ctl_ok(&["route", "del", "10.9.0.0/24"]);
    wait_ping(&t, "10.9.0.1", false);
    let (status, _) = t.engine().stop();
    assert!(status.success(), "engine exit status {status}");
}

/// An engine restarted while the control process runs picks up the current
/// table generation at once: the pushed route works again with no API call.
#[test]
fn restarted_engine_picks_up_the_current_generation() {
    let probe = patronus_e2e::TempDir::new("ctlrs");
    let runtime = probe.path().join("shm");
    let extra = format!("[control]\nruntime_dir = \"{}\"\n", runtime.display());
    let mut t = Topology::build_workers("rst", RouterKind::from_env(), &extra, 1);
    t.wait_forwarding(READY);
    t.h2.ip(&["addr", "add", "10.9.0.1/32", "dev", "lo"]);
    let dir = t.dir.path().to_path_buf();
    let port = 20000 + ((std::process::id() + 7919) % 20000) as u16;
    let c = Control::start(&dir, &runtime, port, "control");
    c.ctl_ok(&["interface", "add", "wan0", "10.2.0.1/24"]);
    c.ctl_ok(&["route", "add", "10.9.0.0/24", "via", H2]);
    wait_ping(&t, "10.9.0.1", true);

    let (status, _) = t.engine().stop();
    assert!(status.success(), "engine exit status {status}");
    t.engine = None;
    assert!(
        !ping_ok(&t, "10.9.0.1"),
        "nothing forwards without the engine"
    );

    let config = patronus_e2e::topology::router_config_workers(&extra, 1);
    let mut e = patronus_e2e::Engine::start(Some(&t.r), &config, &dir, "engine2", &[]);
    e.wait_ready();
    t.engine = Some(e);
    // No API call in between: the route comes from the current generation.
    let took = wait_ping(&t, "10.9.0.1", true);
    eprintln!("route back {took:?} after the engine was ready");
    let out = c.ctl_ok(&["--json", "status"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("status JSON");
    assert_eq!(v["engine"]["attached"], serde_json::json!(true), "{out}");
    let (status, _) = t.engine().stop();
    assert!(status.success(), "engine exit status {status}");
}

/// Interfaces are desired state too: an address put on a port through the
/// API replaces the configured one in the running engine (ARP, ping, the
/// connected subnet), and deleting it brings the configured one back.
#[test]
fn api_interfaces_readdress_the_engine() {
    let probe = patronus_e2e::TempDir::new("ctlif");
    let runtime = probe.path().join("shm");
    let extra = format!("[control]\nruntime_dir = \"{}\"\n", runtime.display());
    let mut t = Topology::build_workers("cif", RouterKind::from_env(), &extra, 1);
    t.wait_forwarding(READY);
    let dir = t.dir.path().to_path_buf();
    let port = 20000 + ((std::process::id() + 4441) % 20000) as u16;
    let c = Control::start(&dir, &runtime, port, "control");

    // h2 moves to 10.6.0.0/24 (keeping its old address for later).
    t.h2.ip(&["addr", "add", "10.6.0.2/24", "dev", "eth0"]);
    t.h2.ip(&["route", "replace", "default", "via", "10.6.0.1"]);
    assert!(
        !ping_ok(&t, "10.6.0.2"),
        "the engine has no 10.6.0.0/24 yet"
    );

    c.ctl_ok(&["interface", "add", "wan0", "10.6.0.1/24"]);
    let took = wait_ping(&t, "10.6.0.2", true);
    eprintln!("readdressed after {took:?}");
    assert!(
        ping_ok(&t, "10.6.0.1"),
        "the engine answers on its new address"
    );
    assert!(
        !ping_ok(&t, R_WAN),
        "the configured address of wan0 is replaced"
    );

    c.ctl_ok(&["interface", "del", "10.6.0.1/24"]);
    t.h2.ip(&["route", "replace", "default", "via", R_WAN]);
    wait_ping(&t, H2, true);
    assert!(!ping_ok(&t, "10.6.0.1"));
    let (status, _) = t.engine().stop();
    assert!(status.success(), "engine exit status {status}");
}
