//! `patronusctl lb ...` end to end against the real `patronus-control`
//! binary (file database, runtime directory): VIPs and backends added,
//! listed, shown, drained and removed; errors exit non-zero naming the
//! field; the binary publishes `lb.bin` and exports the `patronus_lb_*`
//! metrics.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::{Command, Stdio};

use common::cli::{ctl, start};
use common::TempDir;
use patronus_shm::lb_query::{LbBackendStats, LbReply};
use patronus_shm::Subscriber;

/// A stand-in for the engine's `lb.sock`: answers `reply` to every line.
fn serve_lb(socket: &Path, reply: LbReply) {
    let listener = UnixListener::bind(socket).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let mut w = stream.try_clone().unwrap();
            let reply = serde_json::to_string(&reply).unwrap();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    if line.is_err() || writeln!(w, "{reply}").is_err() {
                        return;
                    }
                }
            });
        }
    });
}

/// `promtool check metrics` accepts `text`.
fn promtool_check(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is required: apt-get install prometheus");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool: {}{}\n---\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn lb_vips_and_backends_from_the_command_line() {
    let tmp = TempDir::new("lb-ctl");
    let c = start(tmp.path());
    let api = c.api.as_str();
    let mut sub = Subscriber::open(tmp.path().join("shm")).unwrap();

    let v = ctl(
        api,
        &[
            "--json",
            "lb",
            "vip",
            "add",
            "web",
            "10.9.0.100:80",
            "--check",
            "http:/healthz",
            "--interval-ms",
            "500",
            "--timeout-ms",
            "400",
            "--rise",
            "2",
            "--fall",
            "3",
            "--table-size",
            "1009",
        ],
    )
    .ok()
    .json();
    assert_eq!(v["name"], "web");
    assert_eq!(v["table_size"], 1009);
    assert_eq!(v["health_check"]["path"], "/healthz");
    assert_eq!(v["health_check"]["fall"], 3);
    ctl(
        api,
        &[
            "lb",
            "vip",
            "add",
            "dns",
            "10.9.0.53:53",
            "--proto",
            "udp",
            "--mode",
            "dsr",
        ],
    )
    .ok();

    let out = ctl(
        api,
        &[
            "lb",
            "backend",
            "add",
            "web",
            "10.2.0.11:80",
            "--weight",
            "2",
        ],
    )
    .ok()
    .stdout;
    let head: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        head,
        [
            "ADDRESS",
            "PORT",
            "WEIGHT",
            "HEALTH",
            "FLOWS",
            "ACTIVE_FLOWS",
            "PACKETS",
            "BYTES"
        ]
    );
    assert!(out.contains("10.2.0.11") && out.contains("down"), "{out}");
    ctl(api, &["lb", "backend", "add", "web", "10.2.0.12:8080"]).ok();
    ctl(api, &["lb", "backend", "add", "dns", "10.2.0.21:53"]).ok();

    let list = ctl(api, &["lb", "vip", "list"]).ok().stdout;
    let rows: Vec<Vec<&str>> = list
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0][0], "NAME");
    assert_eq!(
        rows[1][..6],
        ["dns", "10.9.0.53", "53", "udp", "dsr", "65537"]
    );
    assert_eq!(
        rows[1][rows[1].len() - 2..],
        ["1", "1"],
        "unchecked counts as up"
    );
    assert_eq!(rows[2][..3], ["web", "10.9.0.100", "80"]);
    assert_eq!(
        rows[2][rows[2].len() - 2..],
        ["2", "0"],
        "nothing answers the checks"
    );

    let shown = ctl(api, &["lb", "vip", "show", "web"]).ok().stdout;
    assert!(shown.contains("http:/healthz every 500ms"), "{shown}");
    assert!(shown.contains("backends:"), "{shown}");
    assert!(
        shown.contains("10.2.0.12") && shown.contains("8080"),
        "{shown}"
    );

    // Drain, then remove.
    let set = ctl(
        api,
        &[
            "--json",
            "lb",
            "backend",
            "set",
            "web",
            "10.2.0.11:80",
            "--weight",
            "0",
        ],
    )
    .ok()
    .json();
    assert_eq!(set["weight"], 0);
    let out = ctl(api, &["lb", "backend", "remove", "web", "10.2.0.12:8080"])
        .ok()
        .stdout;
    assert_eq!(out, "deleted backend 10.2.0.12:8080 of VIP web\n");

    // Errors: exit 1 with the field named; bad endpoints are usage errors.
    let r = ctl(api, &["lb", "backend", "add", "dns", "10.2.0.22:54"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("port"), "{}", r.stderr);
    let r = ctl(api, &["lb", "vip", "add", "web", "10.9.0.101:80"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("name"), "{}", r.stderr);
    let r = ctl(
        api,
        &[
            "lb",
            "vip",
            "add",
            "x",
            "10.9.0.101:80",
            "--table-size",
            "1000",
        ],
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("table_size"), "{}", r.stderr);
    assert_eq!(
        ctl(api, &["lb", "backend", "add", "web", "10.2.0.13"]).code,
        2
    );
    assert_eq!(
        ctl(
            api,
            &["lb", "vip", "add", "x", "10.9.0.1:80", "--check", "ping"]
        )
        .code,
        2
    );

    // The binary published the balancer and exports its metrics.
    let mut last = None;
    for _ in 0..400 {
        if let Some((_, t)) = sub.poll_lb().unwrap() {
            last = Some(t);
        }
        if last.as_ref().is_some_and(|t| t.backends.len() == 2) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    let t = last.expect("an lb.bin was published");
    assert!(t.settings.is_some());
    assert_eq!(t.vips.len(), 2);
    let weights: Vec<(u16, u16, u8)> = t
        .backends
        .iter()
        .map(|b| (b.port, b.weight, b.up))
        .collect();
    assert_eq!(weights, [(53, 1, 1), (80, 0, 0)], "VIPs by name, dns first");

    let text = ureq::get(&c.metrics).call().unwrap().into_string().unwrap();
    for line in [
        r#"patronus_lb_backend_up{backend="10.2.0.11:80",vip="web"} 0"#,
        r#"patronus_lb_backend_up{backend="10.2.0.21:53",vip="dns"} 1"#,
        r#"patronus_lb_backend_weight{backend="10.2.0.11:80",vip="web"} 0"#,
    ] {
        assert!(text.lines().any(|l| l == line), "no {line} in:\n{text}");
    }
    assert!(
        !text.contains("patronus_lb_backend_flows_total"),
        "no engine, no counters"
    );
    promtool_check(&text);

    // An engine answering on lb.sock: its counters on the backends and in
    // the metrics.
    let web = ctl(api, &["--json", "lb", "vip", "show", "web"])
        .ok()
        .json();
    let b = &web["backends"][0];
    serve_lb(
        &tmp.path().join("shm").join("lb.sock"),
        LbReply::Backends {
            backends: vec![LbBackendStats {
                id: b["id"].as_u64().unwrap() as u32,
                vip_id: web["id"].as_u64().unwrap() as u32,
                addr: "10.2.0.11".parse().unwrap(),
                port: 80,
                weight: 0,
                up: false,
                flows: 12,
                active_flows: 3,
                packets: 345,
                bytes: 67890,
            }],
            active_flows: 3,
            generation: 7,
            workers: 2,
        },
    );
    let shown = ctl(api, &["--json", "lb", "vip", "show", "web"])
        .ok()
        .json();
    assert_eq!(shown["backends"][0]["packets"], 345);
    let table = ctl(api, &["lb", "vip", "show", "web"]).ok().stdout;
    assert!(table.contains("67890"), "{table}");
    let text = ureq::get(&c.metrics).call().unwrap().into_string().unwrap();
    for line in [
        r#"patronus_lb_backend_flows_total{backend="10.2.0.11:80",vip="web"} 12"#,
        r#"patronus_lb_backend_active_flows{backend="10.2.0.11:80",vip="web"} 3"#,
        r#"patronus_lb_backend_packets_total{backend="10.2.0.11:80",vip="web"} 345"#,
        r#"patronus_lb_backend_bytes_total{backend="10.2.0.11:80",vip="web"} 67890"#,
        r#"patronus_lb_backend_bytes_total{backend="10.2.0.21:53",vip="dns"} 0"#,
        "patronus_lb_flows_active 3",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line} in:\n{text}");
    }
    promtool_check(&text);

    let out = ctl(api, &["lb", "vip", "delete", "dns"]).ok().stdout;
    assert_eq!(out, "deleted VIP dns\n");
    let list = ctl(api, &["--json", "lb", "vip", "list"]).ok().json();
    assert_eq!(list["vips"].as_array().unwrap().len(), 1);
}
