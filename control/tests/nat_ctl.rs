//! `patronusctl nat ...` end to end: the built binary against the real API
//! (in-memory store) on an ephemeral port, with a stand-in for the
//! engine's session socket.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{mpsc, Arc};

use serde_json::{json, Value};

use common::{TempDir, TOKEN};
use patronus_control::auth::ApiToken;
use patronus_control::metrics::{EngineSnapshot, EngineSource};
use patronus_control::state::spawn_store;
use patronus_control::store::Store;
use patronus_control::{app, AppState};

/// No live engine, but a session socket.
struct SocketOnly(PathBuf);

impl EngineSource for SocketOnly {
    fn snapshot(&self) -> Option<EngineSnapshot> {
        None
    }
    fn nat_socket(&self) -> Option<PathBuf> {
        Some(self.0.clone())
    }
}

fn serve_api(socket: PathBuf) -> String {
    let (tx, rx) = mpsc::channel::<SocketAddr>();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let store = spawn_store(Store::open_in_memory().expect("store")).expect("actor");
            let router = app(AppState {
                store,
                token: ApiToken::new(TOKEN).unwrap(),
                engine: Some(Arc::new(SocketOnly(socket))),
                bgp: std::sync::Arc::new(patronus_control::bgp::status::NoSpeaker),
            });
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, router).await.expect("serve");
        });
    });
    format!("http://{}", rx.recv().expect("API address"))
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "stderr: {}\nstdout: {}",
            self.stderr, self.stdout
        );
        self
    }
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }
}

fn ctl(api: &str, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_patronusctl"))
        .args(["--api", api, "--token", TOKEN])
        .args(args)
        .env_remove("PATRONUS_API")
        .env_remove("PATRONUS_TOKEN")
        .output()
        .expect("run patronusctl");
    Run {
        code: out.status.code().expect("exited"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn session(n: u16) -> Value {
    json!({ "worker": 0, "proto": "udp", "inside": format!("10.1.0.2:{n}"),
        "outside": format!("198.51.100.1:{}", 20000 + n), "remote": "192.0.2.1:53",
        "state": "active", "static": false, "age_ms": 10, "expires_in_ms": 1000 })
}

/// Answers pages of `sessions` by the cursor "0.N" (N = index of the
/// first session), for as many connections as come.
fn fake_engine(path: PathBuf, sessions: Vec<Value>) {
    let listener = UnixListener::bind(&path).unwrap();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let s = s.unwrap();
            let mut line = String::new();
            BufReader::new(s.try_clone().unwrap())
                .read_line(&mut line)
                .unwrap();
            let req: Value = serde_json::from_str(&line).unwrap();
            let start: usize = req["cursor"]
                .as_str()
                .map_or(0, |c| c.split_once('.').unwrap().1.parse().unwrap());
            let limit = req["limit"].as_u64().unwrap() as usize;
            let end = (start + limit).min(sessions.len());
            let mut page = json!({ "page": { "sessions": sessions[start..end], "workers": 1 } });
            if end < sessions.len() {
                page["page"]["next_cursor"] = json!(format!("0.{end}"));
            }
            let mut w = s;
            w.write_all(format!("{page}\n").as_bytes()).unwrap();
        }
    });
}

#[test]
fn nat_show_set_forwards_pool_sessions_delete() {
    let dir = TempDir::new("nat-ctl");
    let socket = dir.path().join("nat.sock");
    fake_engine(socket.clone(), (1..=3).map(session).collect());
    let api = serve_api(socket);

    let r = ctl(&api, &["nat", "show"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("not_found"), "{}", r.stderr);
    let r = ctl(&api, &["nat", "set", "--outside", "wan0"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--pool"), "{}", r.stderr);

    ctl(&api, &["interface", "add", "wan0", "198.51.100.1/24"]).ok();
    let r = ctl(
        &api,
        &[
            "nat",
            "set",
            "--outside",
            "wan0",
            "--pool",
            "198.51.100.1,198.51.100.2",
            "--timeout",
            "udp=60",
        ],
    )
    .ok();
    assert!(r.stdout.contains("wan0"), "{}", r.stdout);
    // Options not given keep their values.
    let v = ctl(
        &api,
        &[
            "--json",
            "nat",
            "set",
            "--filtering",
            "endpoint-independent",
            "--timeout",
            "udp=default",
            "--timeout",
            "icmp_query=30",
            "--inbound-refresh",
            "false",
        ],
    )
    .ok()
    .json();
    assert_eq!(v["filtering"], "endpoint-independent");
    assert_eq!(v["pool"], json!(["198.51.100.1", "198.51.100.2"]));
    assert_eq!(v["timeouts"], json!({ "icmp_query": 30 }));
    assert_eq!(v["inbound_refresh"], false);
    assert_eq!(v["outside"]["port"], "wan0");
    let r = ctl(&api, &["nat", "set", "--timeout", "bogus=1"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let r = ctl(&api, &["nat", "set", "--filtering", "cone"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("(filtering)"), "{}", r.stderr);

    ctl(
        &api,
        &[
            "nat",
            "forward",
            "add",
            "tcp",
            "198.51.100.1:8080",
            "10.1.0.2:80",
        ],
    )
    .ok();
    ctl(
        &api,
        &[
            "nat",
            "forward",
            "add",
            "udp",
            "198.51.100.1:53",
            "10.1.0.3:53",
        ],
    )
    .ok();
    let table = ctl(&api, &["nat", "forward", "list"]).ok().stdout;
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("PROTO"),
        "{table}"
    );
    // The set above kept the forwards.
    ctl(&api, &["nat", "set", "--max-sessions-per-host", "50"]).ok();
    let r = ctl(&api, &["nat", "forward", "del", "tcp", "198.51.100.1:8080"]).ok();
    assert!(r.stdout.contains("deleted forward 1"), "{}", r.stdout);
    let r = ctl(&api, &["nat", "forward", "del", "tcp", "198.51.100.1:8080"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    ctl(&api, &["nat", "forward", "del", "2"]).ok();
    let v = ctl(&api, &["--json", "nat", "forward", "list"]).ok().json();
    assert_eq!(v["items"], json!([]));

    ctl(&api, &["nat", "pool", "add", "198.51.100.3"]).ok();
    let v = ctl(&api, &["--json", "nat", "pool", "del", "198.51.100.1"])
        .ok()
        .json();
    assert_eq!(v["pool"], json!(["198.51.100.2", "198.51.100.3"]));
    assert_eq!(v["max_sessions_per_host"], 50);

    // Sessions: one page with a cursor hint, or all pages.
    let r = ctl(&api, &["nat", "sessions", "--limit", "2"]).ok();
    assert!(r.stdout.contains("more: --cursor 0.2"), "{}", r.stdout);
    assert_eq!(r.stdout.lines().count(), 4, "{}", r.stdout);
    let r = ctl(
        &api,
        &["nat", "sessions", "--limit", "2", "--cursor", "0.2"],
    )
    .ok();
    assert!(
        r.stdout.contains("10.1.0.2:3") && !r.stdout.contains("more:"),
        "{}",
        r.stdout
    );
    let r = ctl(
        &api,
        &[
            "nat", "sessions", "--limit", "2", "--all", "--inside", "10.1.0.2",
        ],
    )
    .ok();
    assert!(r.stdout.ends_with("3 sessions\n"), "{}", r.stdout);
    assert!(r.stdout.starts_with("WORKER"), "{}", r.stdout);
    let v = ctl(
        &api,
        &["--json", "nat", "sessions", "--all", "--limit", "1"],
    )
    .ok()
    .json();
    assert_eq!(v["items"].as_array().unwrap().len(), 3);
    let r = ctl(&api, &["nat", "sessions", "--limit", "0"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("(limit)"), "{}", r.stderr);

    ctl(&api, &["nat", "delete"]).ok();
    assert_eq!(ctl(&api, &["nat", "show"]).code, 1);
}
