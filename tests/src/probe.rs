//! Traffic probes shared by the forwarding tests: ping with its reply TTLs,
//! an iperf3 server that is listening before it is returned, iperf3's JSON.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::netns::Netns;
use crate::process::BgProcess;

/// Pings `dst` `count` times from `ns` (`extra` before the address);
/// returns whether it exited 0, and its output (stdout then stderr).
pub fn ping(ns: &Netns, dst: &str, count: u32, extra: &[&str]) -> (bool, String) {
    let c = count.to_string();
    let mut args = vec!["-n", "-c", &c, "-i", "0.2", "-W", "2"];
    args.extend_from_slice(extra);
    args.push(dst);
    let out = ns.exec_output("ping", &args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The TTLs of the echo replies in ping's output.
pub fn reply_ttls(out: &str) -> Vec<u8> {
    out.lines()
        .filter(|l| l.contains("bytes from"))
        .filter_map(|l| l.split("ttl=").nth(1))
        .filter_map(|t| t.split_whitespace().next()?.parse().ok())
        .collect()
}

/// Starts `iperf3 -s -1 -p 5201` in `ns` (output under `dir`) and waits
/// until it listens.
pub fn iperf_server(dir: &Path, ns: &Netns) -> BgProcess {
    let mut s = ns.spawn("iperf3", &["-s", "-1", "-p", "5201"], dir, "iperf3-server");
    for _ in 0..250 {
        let ss = ns.exec("ss", &["-Hltn", "sport = :5201"]);
        if !ss.trim().is_empty() {
            return s;
        }
        assert!(s.try_wait().is_none(), "iperf3 server died: {}", s.report());
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("iperf3 server does not listen: {}", s.report());
}

/// Parses iperf3's `-J` output; fails on an `error` key.
pub fn iperf_json(out: &str) -> Value {
    let v: Value =
        serde_json::from_str(out).unwrap_or_else(|e| panic!("iperf3 -J output: {e}: {out}"));
    assert!(
        v.get("error").is_none(),
        "iperf3 reported an error: {}",
        v["error"]
    );
    v
}
