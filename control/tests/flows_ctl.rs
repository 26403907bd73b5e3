//! `patronusctl flows ...` end to end: the built binary against the real
//! API (in-memory store) on an ephemeral port, with a stand-in for the
//! engine's flow socket and fixed classification counters.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{mpsc, Arc, Mutex};

use serde_json::{json, Value};

use common::{TempDir, TOKEN};
use patronus_control::auth::ApiToken;
use patronus_control::metrics::{EngineSnapshot, EngineSource};
use patronus_control::state::spawn_store;
use patronus_control::store::Store;
use patronus_control::{app, AppState};

/// A live engine with a few classification counters and a flow socket.
struct FakeEngine(PathBuf);

impl EngineSource for FakeEngine {
    fn snapshot(&self) -> Option<EngineSnapshot> {
        Some(EngineSnapshot {
            classify: vec![
                ("flows_created".into(), 4),
                ("flows_active".into(), 3),
                ("model_generation".into(), 1),
                ("class.tls.flows".into(), 2),
                ("class.tls.packets".into(), 30),
                ("class.dns.flows".into(), 1),
            ],
            ..Default::default()
        })
    }
    fn flows_socket(&self) -> Option<PathBuf> {
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
                engine: Some(Arc::new(FakeEngine(socket))),
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

fn flow(n: u16, class: &str) -> Value {
    json!({ "worker": 0, "proto": "tcp", "client": format!("10.1.0.2:{}", 40000 + n),
        "server": "10.2.0.2:443", "class": class, "app_name": format!("host{n}.patronus.test"),
        "method": "signature", "confidence": 1.0, "packets_orig": n, "packets_reply": 2 * n,
        "bytes_orig": 100 * n, "bytes_reply": 200 * n, "age_ms": 1500, "idle_ms": 1 })
}

/// Answers pages of `flows` by the cursor "0.N" (N = index of the first
/// flow), for as many connections as come; records the requests.
fn fake_engine(path: PathBuf, flows: Vec<Value>) -> Arc<Mutex<Vec<Value>>> {
    let listener = UnixListener::bind(&path).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let s = s.unwrap();
            let mut line = String::new();
            BufReader::new(s.try_clone().unwrap())
                .read_line(&mut line)
                .unwrap();
            let req: Value = serde_json::from_str(&line).unwrap();
            log.lock().unwrap().push(req.clone());
            let start: usize = req["cursor"]
                .as_str()
                .map_or(0, |c| c.split_once('.').unwrap().1.parse().unwrap());
            let limit = req["limit"].as_u64().unwrap() as usize;
            let end = (start + limit).min(flows.len());
            let mut page = json!({ "page": { "flows": flows[start..end], "workers": 1 } });
            if end < flows.len() {
                page["page"]["next_cursor"] = json!(format!("0.{end}"));
            }
            let mut w = s;
            w.write_all(format!("{page}\n").as_bytes()).unwrap();
        }
    });
    seen
}

#[test]
fn flows_list_pages_filters_and_summary() {
    let dir = TempDir::new("flows-ctl");
    let socket = dir.path().join("flows.sock");
    let seen = fake_engine(socket.clone(), (1..=3).map(|n| flow(n, "tls")).collect());
    let api = serve_api(socket);

    // One page: a table and the cursor of the next.
    let r = ctl(&api, &["flows", "--limit", "2", "--class", "tls"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(lines[0].starts_with("WORKER"), "{}", r.stdout);
    assert!(lines[0].contains("PACKETS (C/S)"), "{}", r.stdout);
    assert!(lines[1].contains("host1.patronus.test"), "{}", r.stdout);
    assert!(lines[1].contains("1/2"), "{}", r.stdout);
    assert!(lines[1].contains("100/200"), "{}", r.stdout);
    assert!(lines[1].contains("1.5s"), "{}", r.stdout);
    assert_eq!(lines[3], "more: --cursor 0.2", "{}", r.stdout);
    // Every page, as JSON.
    let r = ctl(
        &api,
        &[
            "--json", "flows", "--all", "--limit", "1", "--host", "10.1.0.2",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let all: Value = serde_json::from_str(&r.stdout).unwrap();
    let clients: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["client"].as_str().unwrap())
        .collect();
    assert_eq!(
        clients,
        ["10.1.0.2:40001", "10.1.0.2:40002", "10.1.0.2:40003"]
    );
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen[0]["class"], "tls");
        assert_eq!(seen[0]["limit"], 2);
        assert_eq!(seen[1]["host"], "10.1.0.2");
        assert_eq!(seen[2]["cursor"], "0.1");
        assert_eq!(seen.len(), 4);
    }
    // Refused by the API: exit 1, the field named.
    let r = ctl(&api, &["flows", "--class", "gopher"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stderr.contains("class"), "{}", r.stderr);
    // --cursor and --all exclude each other; summary takes no list options.
    assert_eq!(ctl(&api, &["flows", "--all", "--cursor", "0.1"]).code, 2);
    assert_eq!(ctl(&api, &["flows", "--class", "tls", "summary"]).code, 2);

    let r = ctl(&api, &["flows", "summary"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["CLASS", "FLOWS", "PACKETS", "BYTES"]
    );
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["tls", "2", "30", "0"],
        "most flows first"
    );
    assert_eq!(lines[2].split_whitespace().next(), Some("dns"));
    assert!(r.stdout.contains("flows_created"), "{}", r.stdout);
    let r = ctl(&api, &["--json", "flows", "summary"]);
    let s: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(s["flows_active"], 3);
    assert_eq!(s["model_generation"], 1);
    assert_eq!(s["classes"]["tls"]["packets"], 30);
}
