//! The control process's view of the engine's WAN paths: two engines
//! (sites A and B) joined by two uplinks (veth pairs), one WireGuard
//! tunnel per uplink, `[wan]` on both; the control process attached to
//! A's runtime directory reads A's `wan.` counters. Both paths come alive
//! in the API (`patronusctl wan paths`), in `/metrics` (checked by
//! promtool) and per policy; pings from a host behind A into the tunnel
//! are counted per path and under the default policy; taking B's end of
//! one uplink down makes that path dead in all three.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use patronus_e2e::control::Control;
use patronus_e2e::netns::veth;
use patronus_e2e::wg_topology::Keys;
use patronus_e2e::{Engine, Netns, TempDir};

/// How long a path may take to reach a state (far above the 800 ms
/// default dead-after and a handshake; a bound, not a measurement).
const SETTLE: Duration = Duration::from_secs(20);

/// One site's engine configuration: uplink x on 192.0.2.0/24 and uplink
/// y on 198.51.100.0/24 (A is .1, B is .2), a path per uplink.
fn site_config(me: u8, peer: u8, keys: &Keys, peer_keys: &Keys, extra: &str) -> String {
    format!(
        r#"[engine]
workers = 2
poll = "adaptive"

[[port]]
name = "wanx"
driver = "afpacket"
iface = "wanx"

[[port]]
name = "wany"
driver = "afpacket"
iface = "wany"

[[interface]]
port = "wanx"
address = "192.0.2.{me}/24"

[[interface]]
port = "wany"
address = "198.51.100.{me}/24"

[[wireguard]]
name = "wg-x"
private_key = "{private}"
listen_port = 51820
address = "192.0.2.{me}"

[[wireguard.peer]]
public_key = "{peer_public}"
endpoint = "192.0.2.{peer}:51820"
allowed_ips = ["10.{peer}0.0.0/16"]

[[wireguard]]
name = "wg-y"
private_key = "{private}"
listen_port = 51821
address = "198.51.100.{me}"

[[wireguard.peer]]
public_key = "{peer_public}"
endpoint = "198.51.100.{peer}:51821"
allowed_ips = ["10.{peer}0.0.0/16"]

[[route]]
prefix = "10.{peer}0.0.0/16"
tunnel = "wg-x"

[wan]
probe_interval_ms = 100
dead_after_ms = 800

[[wan.path]]
name = "fibre"
tunnel = "wg-x"
site = "far"
kind = "fibre"
cost = 1

[[wan.path]]
name = "lte"
tunnel = "wg-y"
site = "far"
kind = "lte"
cost = 10

[[wan.policy]]
name = "voice"
classes = ["webrtc"]
max_rtt_ms = 150
max_loss_pct = 1.0
prefer = ["any", "lte"]

[[wan.policy]]
name = "bulk"
classes = ["unknown"]
mode = "cheapest"
{extra}"#,
        private = keys.private,
        peer_public = peer_keys.public,
    )
}

fn json(c: &Control, args: &[&str]) -> Value {
    let out = c.ctl_ok(args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

fn path<'a>(paths: &'a Value, name: &str) -> &'a Value {
    paths["paths"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["name"] == name))
        .unwrap_or_else(|| panic!("no path {name} in {paths}"))
}

/// Polls `wan paths` until `done` holds (bounded by [`SETTLE`]); returns
/// the last answer.
fn wait_paths(c: &Control, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        // 503 until the control sees the engine's workers beat.
        let out = c.ctl(&["--json", "wan", "paths"]);
        let paths = if out.status.success() {
            serde_json::from_slice(&out.stdout).expect("JSON")
        } else {
            Value::String(String::from_utf8_lossy(&out.stderr).into_owned())
        };
        if paths.is_object() && done(&paths) {
            return paths;
        }
        assert!(start.elapsed() < SETTLE, "{what}: still {paths}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn scrape(c: &Control) -> String {
    let out = c
        .command(std::path::Path::new("curl"))
        .args(["-sf", &c.metrics])
        .output()
        .expect("curl");
    assert!(out.status.success(), "scrape failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn promtool_check(text: &str) {
    use std::io::Write;
    let mut p = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus) is required");
    p.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = p.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The value of the one sample line starting with `series ` (exact
/// series, labels in the order the exposition prints them).
fn sample(text: &str, series: &str) -> f64 {
    let values: Vec<f64> = text
        .lines()
        .filter_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().expect("a number"))
        .collect();
    assert_eq!(values.len(), 1, "{series} in {text}");
    values[0]
}

#[test]
fn control_shows_the_engines_wan_paths_alive_then_one_dead() {
    let dir = TempDir::new("wanctl");
    let a = Netns::new("wa");
    let b = Netns::new("wb");
    for ifc in ["wanx", "wany"] {
        veth(&a, ifc, &b, ifc);
        a.disable_ipv6(ifc);
        b.disable_ipv6(ifc);
    }
    // A host behind A (10.10.0.2), the only source of data traffic.
    let h = Netns::new("wh");
    veth(&h, "eth0", &a, "lan0");
    a.disable_ipv6("lan0");
    h.addr_add("eth0", "10.10.0.2/24");
    h.route_add(&["default", "via", "10.10.0.1"]);
    let (ka, kb) = (Keys::generate(), Keys::generate());
    let runtime = dir.path().join("shm");
    let control_section = format!(
        r#"
[[port]]
name = "lan0"
driver = "afpacket"
iface = "lan0"

[[interface]]
port = "lan0"
address = "10.10.0.1/24"

[control]
runtime_dir = "{}"
"#,
        runtime.display()
    );
    let mut ea = Engine::start(
        Some(&a),
        &site_config(1, 2, &ka, &kb, &control_section),
        dir.path(),
        "site-a",
        &[],
    );
    let mut eb = Engine::start(
        Some(&b),
        &site_config(2, 1, &kb, &ka, ""),
        dir.path(),
        "site-b",
        &[],
    );
    ea.wait_ready();
    eb.wait_ready();
    let port = 20000 + ((std::process::id() * 2 + 4099) % 20000) as u16;
    let control_dir = dir.path().join("control");
    std::fs::create_dir_all(&control_dir).expect("control dir");
    let c = Control::start(&control_dir, &runtime, port, "control");

    // Both paths alive, their probes answered by B.
    let alive = |p: &Value| p["state"] == "alive" && p["probes_replied"].as_u64() > Some(0);
    let paths = wait_paths(&c, "both paths alive", |v| {
        alive(path(v, "fibre")) && alive(path(v, "lte"))
    });
    for name in ["fibre", "lte"] {
        let p = path(&paths, name);
        assert!(p["probes_sent"].as_u64() >= p["probes_replied"].as_u64());
        assert!(p["rtt_ms"].as_f64() > Some(0.0), "{p}");
        assert!(p["transitions"].as_u64() >= Some(1), "{p}");
    }
    assert_eq!(paths["paths"].as_array().unwrap().len(), 2, "{paths}");
    // B answered A's probes and A answered B's: A counts the ones it
    // reflected.
    let reflected = wait_paths(&c, "B's probes reflected", |v| {
        path(v, "fibre")["probes_reflected"].as_u64() > Some(0)
    });
    assert!(path(&reflected, "lte")["probes_reflected"].as_u64() > Some(0));

    // 20 pings into the tunnel (B has nothing at 10.20.0.1: no replies).
    let ping = h.exec_output(
        "ping",
        &["-n", "-q", "-c", "20", "-i", "0.05", "-W", "1", "10.20.0.1"],
    );
    assert!(
        String::from_utf8_lossy(&ping.stdout).contains("20 packets transmitted"),
        "{ping:?}"
    );
    let steered = |v: &Value| -> u64 {
        v["paths"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["tx_packets"].as_u64().unwrap())
            .sum()
    };
    let paths = wait_paths(&c, "20 pings steered", |v| steered(v) == 20);
    assert!(
        path(&paths, "fibre")["tx_bytes"].as_u64() >= path(&paths, "fibre")["tx_packets"].as_u64()
    );

    let table = c.ctl_ok(&["wan", "paths"]);
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().take(2).collect())
        .collect();
    assert_eq!(rows[1], ["fibre", "alive"], "{table}");
    assert_eq!(rows[2], ["lte", "alive"], "{table}");

    let policies = json(&c, &["--json", "wan", "policies"]);
    let names: Vec<&str> = policies["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for want in ["bulk", "voice"] {
        assert!(names.contains(&want), "{policies}");
    }
    for p in policies["policies"].as_array().unwrap() {
        let on: Vec<&str> = p["paths"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["path"].as_str().unwrap())
            .collect();
        assert_eq!(on, ["fibre", "lte"], "{policies}");
    }
    assert!(policies["compression"].is_object(), "{policies}");
    // Without [classify] every flow's class is unknown: policy bulk,
    // mode cheapest, so fibre (cost 1) takes all 20.
    let packets = |policy: &str, on: &str| -> u64 {
        policies["policies"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["name"] == policy)
            .flat_map(|p| p["paths"].as_array().unwrap())
            .filter(|x| x["path"] == on)
            .map(|x| x["packets"].as_u64().unwrap())
            .sum()
    };
    assert_eq!(packets("bulk", "fibre"), 20, "{policies}");
    assert_eq!(packets("bulk", "lte"), 0, "{policies}");
    assert_eq!(packets("voice", "fibre") + packets("voice", "lte"), 0);

    let text = scrape(&c);
    assert_eq!(
        sample(&text, r#"patronus_wan_path_state{path="fibre"}"#),
        1.0
    );
    assert_eq!(sample(&text, r#"patronus_wan_path_state{path="lte"}"#), 1.0);
    assert!(sample(&text, r#"patronus_wan_path_probes_sent_total{path="lte"}"#) > 0.0);
    assert_eq!(
        sample(
            &text,
            r#"patronus_wan_policy_path_packets_total{path="fibre",policy="bulk"}"#
        ),
        20.0
    );
    assert_eq!(
        sample(&text, r#"patronus_wan_path_tx_packets_total{path="fibre"}"#),
        20.0
    );
    promtool_check(&text);

    // B's end of uplink y goes down: lte dies, fibre stays.
    let before = path(&paths, "lte")["transitions"].as_u64().unwrap();
    b.ip(&["link", "set", "wany", "down"]);
    let paths = wait_paths(&c, "lte dead", |v| path(v, "lte")["state"] == "dead");
    assert_eq!(path(&paths, "fibre")["state"], "alive", "{paths}");
    let lte = path(&paths, "lte");
    assert!(lte["transitions"].as_u64() > Some(before), "{lte}");
    assert!(lte["loss_pct"].as_f64() > Some(0.0), "{lte}");
    let table = c.ctl_ok(&["wan", "paths"]);
    eprintln!("{table}{}", c.ctl_ok(&["wan", "policies"]));
    assert!(
        table
            .lines()
            .any(|l| l.split_whitespace().take(2).eq(["lte", "dead"])),
        "{table}"
    );
    let text = scrape(&c);
    assert_eq!(sample(&text, r#"patronus_wan_path_state{path="lte"}"#), 2.0);
    assert_eq!(
        sample(&text, r#"patronus_wan_path_state{path="fibre"}"#),
        1.0
    );
    promtool_check(&text);

    ea.assert_running();
    eb.assert_running();
    let (status, _) = ea.stop();
    assert!(status.success(), "site A exit status {status}");
    let (status, _) = eb.stop();
    assert!(status.success(), "site B exit status {status}");
}
