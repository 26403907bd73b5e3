//! The control process drives the engine through shared memory: routes
//! added and removed through the REST API (with `patronusctl`) take effect
//! in the running engine; `kill -9` of the control process loses no traffic,
//! and after a restart the API shows the same state; `/metrics` sees the
//! engine and passes `promtool check metrics`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use patronus_e2e::engine::workspace_root;
use patronus_e2e::topology::{RouterKind, H2};
use patronus_e2e::{BgProcess, Topology};

const READY: Duration = Duration::from_secs(15);

fn release_bin(name: &str) -> PathBuf {
    let p = workspace_root().join("target/release").join(name);
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --release` first",
        p.display()
    );
    p
}

struct Control {
    proc: BgProcess,
    api: String,
    metrics: String,
    token: String,
}

fn start_control(dir: &Path, runtime: &Path, port: u16, name: &str) -> Control {
    let mut cmd = Command::new(release_bin("patronus-control"));
    let api = format!("127.0.0.1:{port}");
    let metrics = format!("127.0.0.1:{}", port + 1);
    cmd.args([
        "--listen",
        &api,
        "--metrics-listen",
        &metrics,
        "--db",
        dir.join("control.db").to_str().unwrap(),
        "--runtime-dir",
        runtime.to_str().unwrap(),
    ]);
    let mut proc = BgProcess::spawn(cmd, dir, name);
    let token_file = dir.join("api-token");
    let deadline = Instant::now() + READY;
    // Ready when the token exists and the API answers.
    loop {
        assert!(proc.try_wait().is_none(), "control died: {}", proc.report());
        if let Ok(token) = std::fs::read_to_string(&token_file) {
            let c = Control {
                api: format!("http://{api}"),
                metrics: format!("http://{metrics}/metrics"),
                token: token.trim().to_string(),
                proc,
            };
            if ctl(&c, &["status"]).status.success() {
                return c;
            }
            proc = c.proc;
        }
        assert!(
            Instant::now() < deadline,
            "control not ready: {}",
            proc.report()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn ctl(c: &Control, args: &[&str]) -> Output {
    Command::new(release_bin("patronusctl"))
        .args(["--api", &c.api, "--token", &c.token])
        .args(args)
        .output()
        .expect("run patronusctl")
}

fn ctl_ok(c: &Control, args: &[&str]) -> String {
    let out = ctl(c, args);
    assert!(
        out.status.success(),
        "patronusctl {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

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
    let c = start_control(&dir, &runtime, port, "control");

    ctl_ok(&c, &["interface", "add", "wan0", "10.2.0.1/24"]);
    assert!(!ping_ok(&t, "10.9.0.1"), "no route yet");
    ctl_ok(&c, &["route", "add", "10.9.0.0/24", "via", H2]);
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
    let c = start_control(&dir, &runtime, port, "control2");
    let list = ctl_ok(&c, &["--json", "route", "list"]);
    assert!(list.contains("10.9.0.0"), "{list}");
    assert!(ping_ok(&t, "10.9.0.1"));
    ctl_ok(&c, &["route", "del", "10.9.0.0/24"]);
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
    let c = start_control(&dir, &runtime, port, "control");
    ctl_ok(&c, &["interface", "add", "wan0", "10.2.0.1/24"]);
    ctl_ok(&c, &["route", "add", "10.9.0.0/24", "via", H2]);
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
    let out = ctl_ok(&c, &["--json", "status"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("status JSON");
    assert_eq!(v["engine"]["attached"], serde_json::json!(true), "{out}");
    let (status, _) = t.engine().stop();
    assert!(status.success(), "engine exit status {status}");
}
