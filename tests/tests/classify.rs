//! Flow classification end to end: real clients in one namespace talk to
//! real servers in another through the engine (two workers, `[classify]`
//! with the repository's model): curl over HTTP and HTTPS to nginx, dig to
//! dnsmasq, ssh to sshd. The flows come back through the control process
//! (`GET /api/v1/flows`, `patronusctl flows`) with their class and app
//! name, and the classification counters through `/api/v1/flows/summary`
//! and `/metrics`.
//!
//! Needs release builds of the engine and the control process:
//! `cargo build --release -p patronus-engine -p patronus-control &&
//! cargo test --release -p patronus-e2e --test classify -- --test-threads=1`
//! (`PATRONUS_ENGINE=PATH` to test another engine build).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use patronus_e2e::classify_topology::{
    ClassifyTopology, CLIENT, DNS_ANSWER, DNS_NAME, HTTP_NAME, SERVER, TLS_NAME, WORKERS,
};
use patronus_e2e::control::Control;
use serde_json::Value;

/// Bounds a wait so a broken engine fails the test instead of hanging it.
const WAIT: Duration = Duration::from_secs(30);

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// Every flow `patronusctl` lists with these options (all pages), or the
/// error it printed.
fn listed(c: &Control, extra: &[&str]) -> Result<Vec<Value>, String> {
    let mut args = vec!["--json", "flows", "--all"];
    args.extend_from_slice(extra);
    let out = c.ctl(&args);
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(json(&String::from_utf8_lossy(&out.stdout))["items"]
        .as_array()
        .expect("items")
        .clone())
}

/// The client's flows to `SERVER:port` over `proto`.
fn to_port<'a>(flows: &'a [Value], proto: &str, port: u16) -> Vec<&'a Value> {
    let server = format!("{SERVER}:{port}");
    flows
        .iter()
        .filter(|f| f["proto"] == proto && f["server"] == server.as_str())
        .collect()
}

/// The four conversations, each classified (none still pending).
fn all_classified(flows: &[Value]) -> bool {
    [("tcp", 80), ("tcp", 443), ("udp", 53), ("tcp", 22)]
        .iter()
        .all(|(proto, port)| {
            let f = to_port(flows, proto, *port);
            !f.is_empty() && f.iter().all(|f| f["class"] != "pending")
        })
}

/// Checks one conversation's flows: the client's, classified by
/// signature as `class` with `app_name` (`None`: absent), traffic counted
/// both ways.
fn check(flows: &[Value], proto: &str, port: u16, class: &str, app_name: Option<&str>) {
    let mine = to_port(flows, proto, port);
    assert!(
        !mine.is_empty(),
        "no {proto} flow to port {port}: {flows:#?}"
    );
    for f in mine {
        let client = f["client"].as_str().unwrap();
        assert!(client.starts_with(&format!("{CLIENT}:")), "{f}");
        assert_eq!(f["class"], class, "{f}");
        assert_eq!(f["method"], "signature", "{f}");
        match app_name {
            Some(name) => assert_eq!(f["app_name"], name, "{f}"),
            None => assert!(f.get("app_name").is_none(), "{f}"),
        }
        let confidence = f["confidence"].as_f64().unwrap();
        assert!(confidence > 0.0 && confidence <= 1.0, "{f}");
        assert!(f["worker"].as_u64().unwrap() < WORKERS as u64, "{f}");
        for k in ["packets_orig", "packets_reply"] {
            assert!(f[k].as_u64().unwrap() >= 1, "{k}: {f}");
        }
        // At least an IPv4 header per packet.
        for (b, p) in [
            ("bytes_orig", "packets_orig"),
            ("bytes_reply", "packets_reply"),
        ] {
            assert!(
                f[b].as_u64().unwrap() >= 20 * f[p].as_u64().unwrap(),
                "{b}: {f}"
            );
        }
    }
}

/// The flow's identity (client, server, proto).
fn key(f: &Value) -> (String, String, String) {
    (
        f["client"].as_str().unwrap().to_owned(),
        f["server"].as_str().unwrap().to_owned(),
        f["proto"].as_str().unwrap().to_owned(),
    )
}

/// The value of a sample line `name{labels} value` in an exposition.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn real_http_tls_dns_and_ssh_flows_are_classified_and_listed() {
    let port = 20000 + ((std::process::id() + 9151) % 20000) as u16;
    let mut topo = ClassifyTopology::build(port);

    // The conversations, from real clients to real servers.
    let (ok, out, err) = topo.client(
        "curl",
        &[
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--resolve",
            &format!("{HTTP_NAME}:80:{SERVER}"),
            &format!("http://{HTTP_NAME}/"),
        ],
    );
    assert!(ok && out == "200", "curl http: {out} {err}");
    let (ok, out, err) = topo.client(
        "curl",
        &[
            "-sS",
            "-k",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--resolve",
            &format!("{TLS_NAME}:443:{SERVER}"),
            &format!("https://{TLS_NAME}/"),
        ],
    );
    assert!(ok && out == "200", "curl https: {out} {err}");
    let (ok, out, err) = topo.client(
        "dig",
        &[
            "+short",
            "+time=2",
            "+tries=3",
            &format!("@{SERVER}"),
            DNS_NAME,
            "A",
        ],
    );
    assert!(ok && out.trim() == DNS_ANSWER, "dig: {out} {err}");
    assert!(topo.dns_queries() >= 1, "dnsmasq saw no query");
    // Nobody may log in, but the banners and keys are exchanged first.
    let (ok, _, err) = topo.client(
        "ssh",
        &[
            "-F",
            "/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "ConnectTimeout=10",
            &format!("patronus@{SERVER}"),
            "true",
        ],
    );
    assert!(!ok, "ssh logged in?");
    assert!(err.contains("Permission denied"), "ssh: {err}");

    // The flows, once each conversation is classified.
    let c = &topo.control;
    let host = ["--host", CLIENT];
    let deadline = Instant::now() + WAIT;
    let flows = loop {
        match listed(c, &host) {
            Ok(f) if all_classified(&f) => break f,
            other => {
                if let Some(e) = topo.t.engine.as_mut() {
                    e.assert_running();
                }
                assert!(
                    Instant::now() < deadline,
                    "the flows never were all classified: {other:#?}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    };
    check(&flows, "tcp", 80, "http", Some(HTTP_NAME));
    check(&flows, "tcp", 443, "tls", Some(TLS_NAME));
    check(&flows, "udp", 53, "dns", Some(DNS_NAME));
    check(&flows, "tcp", 22, "ssh", None);
    assert_eq!(to_port(&flows, "tcp", 80).len(), 1, "one curl, one flow");
    assert_eq!(to_port(&flows, "tcp", 443).len(), 1, "one curl, one flow");
    assert_eq!(to_port(&flows, "tcp", 22).len(), 1, "one ssh, one flow");

    // Paged one by one: the same flows, none twice (no traffic now).
    let one_by_one = listed(c, &["--host", CLIENT, "--limit", "1"]).expect("paged");
    let keys: Vec<_> = one_by_one.iter().map(key).collect();
    let unique: BTreeSet<_> = keys.iter().cloned().collect();
    assert_eq!(keys.len(), unique.len(), "a flow twice: {one_by_one:#?}");
    assert_eq!(
        unique,
        flows.iter().map(key).collect::<BTreeSet<_>>(),
        "paging changed the set"
    );

    // The API itself, with a class filter.
    let page = c.request("GET", &format!("flows?class=tls&host={CLIENT}"), None);
    assert_eq!(page["workers"], WORKERS as u64, "{page}");
    let tls = page["items"].as_array().unwrap();
    assert!(tls.iter().all(|f| f["class"] == "tls"), "{page}");
    assert!(
        tls.iter()
            .any(|f| f["app_name"] == TLS_NAME && f["server"] == format!("{SERVER}:443")),
        "{page}"
    );
    let none = c.request("GET", "flows?host=10.9.9.9", None);
    assert_eq!(none["items"], Value::Array(vec![]), "{none}");
    let table = c.ctl_ok(&["flows", "--class", "dns", "--host", CLIENT]);
    assert!(table.contains(DNS_NAME), "{table}");
    assert!(!table.contains(TLS_NAME), "{table}");

    // The summary and /metrics count them (the counters are copied every
    // 100 ms: wait for the copy).
    let deadline = Instant::now() + WAIT;
    let summary = loop {
        let s = c.request("GET", "flows/summary", None);
        let counted = ["http", "tls", "dns", "ssh"]
            .iter()
            .all(|class| s["classes"][class]["flows"].as_u64().unwrap_or(0) >= 1);
        if counted {
            break s;
        }
        assert!(Instant::now() < deadline, "never counted: {s}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        summary["flows_created"].as_u64().unwrap() >= flows.len() as u64,
        "{summary}"
    );
    assert!(
        summary["model_generation"].as_u64().unwrap() >= 1,
        "the configured model runs: {summary}"
    );
    let tls_counts = &summary["classes"]["tls"];
    assert!(tls_counts["packets"].as_u64().unwrap() >= 1, "{summary}");
    assert!(
        tls_counts["bytes"].as_u64().unwrap() >= 20 * tls_counts["packets"].as_u64().unwrap(),
        "{summary}"
    );
    let text = c.ctl_ok(&["flows", "summary"]);
    assert!(text.contains("flows_created"), "{text}");

    let scrape = std::process::Command::new("curl")
        .args(["-sSf", &c.metrics])
        .output()
        .expect("curl /metrics");
    let text = String::from_utf8_lossy(&scrape.stdout).into_owned();
    let tls_flows = sample(&text, "patronus_classify_flows_total{class=\"tls\"}")
        .unwrap_or_else(|| panic!("no TLS flow count in:\n{text}"));
    assert!(tls_flows >= 1.0, "{tls_flows}");
    assert!(
        sample(&text, "patronus_classify_model_generation").unwrap_or(0.0) >= 1.0,
        "{text}"
    );
    assert!(
        sample(&text, "patronus_classify_flows_created_total").unwrap_or(0.0) >= 4.0,
        "{text}"
    );

    // Model swaps through the registry reach the running engine: the
    // workers report the model push they run.
    let generation = |c: &Control| {
        c.request("GET", "flows/summary", None)["model_generation"]
            .as_u64()
            .unwrap()
    };
    let wait_past = |c: &Control, g: u64, what: &str| {
        let deadline = Instant::now() + WAIT;
        loop {
            let now = generation(c);
            if now > g {
                return now;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: the engine stayed at push {now}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let start = generation(c);
    let model = patronus_e2e::classify_topology::model_path();
    let up = json(&c.ctl_ok(&[
        "--json",
        "model",
        "upload",
        model.to_str().unwrap(),
        "--name",
        "e2e",
    ]));
    let id = up["id"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| up["id"].to_string());
    c.ctl_ok(&["model", "promote", &id]);
    let promoted = wait_past(c, start, "promote");
    // Still classifying, with the pushed model.
    let (ok, out, err) = topo.client(
        "dig",
        &[
            "+short",
            "+time=2",
            "+tries=3",
            &format!("@{SERVER}"),
            DNS_NAME,
            "A",
        ],
    );
    assert!(
        ok && out.trim() == DNS_ANSWER,
        "dig after the swap: {out} {err}"
    );
    // No model in the registry: the engine goes back to its configured one.
    c.ctl_ok(&["model", "deactivate"]);
    wait_past(c, promoted, "deactivate");
    if let Some(e) = topo.t.engine.as_mut() {
        e.assert_running();
    }
}
