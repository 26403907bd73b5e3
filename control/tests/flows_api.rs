//! The flows API: query validation (exact status, code and field, before
//! any engine is asked), the listing against a stand-in for the engine's
//! flow socket (filters passed through, pages, the engine's error codes
//! mapped), and the summary from the engine's classification counters.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::Arc;

use axum::http::StatusCode;
use common::{TempDir, TestApp};
use patronus_control::metrics::{EngineSnapshot, EngineSource, LatestSnapshot};
use patronus_shm::flow_query::{FlowErrorCode, FlowReply, FlowRequest};
use serde_json::{json, Value};

/// An engine view with fixed classification counters and a flow socket.
struct FakeEngine {
    classify: Option<Vec<(String, u64)>>,
    socket: Option<PathBuf>,
}

impl EngineSource for FakeEngine {
    fn snapshot(&self) -> Option<EngineSnapshot> {
        self.classify.as_ref().map(|c| EngineSnapshot {
            classify: c.clone(),
            ..Default::default()
        })
    }
    fn flows_socket(&self) -> Option<PathBuf> {
        self.socket.clone()
    }
}

#[tokio::test]
async fn bad_queries_are_refused_before_the_engine_is_asked() {
    // A socket nobody listens on: a query that got that far would be 503.
    let dir = TempDir::new("flows-bad");
    let t = TestApp::with_engine(Some(Arc::new(FakeEngine {
        classify: None,
        socket: Some(dir.path().join("flows.sock")),
    })));
    for (query, field) in [
        ("class=tcp", "class"),
        ("class=TLS", "class"),
        ("class=", "class"),
        ("host=10.1.0", "host"),
        ("host=::1", "host"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=-1", "limit"),
        ("limit=%2B5", "limit"),
        ("limit=ten", "limit"),
        ("cursor=abc", "cursor"),
        ("cursor=1", "cursor"),
        ("offset=3", "offset"),
    ] {
        let r = t.get(&format!("/api/v1/flows?{query}")).await;
        assert_eq!(
            (r.status, r.error()),
            (
                StatusCode::BAD_REQUEST,
                ("invalid_field".into(), Some(field.into()))
            ),
            "{query}: {}",
            r.body
        );
    }
    let r = t.get("/api/v1/flows?class=tls&host=10.1.0.2").await;
    assert_eq!(
        (r.status, r.error().0),
        (StatusCode::SERVICE_UNAVAILABLE, "engine_unavailable".into())
    );
    let msg = r.body["error"]["message"].as_str().unwrap();
    assert!(msg.contains("flows.sock"), "{msg}");

    // No engine link at all.
    let t = TestApp::in_memory();
    for path in ["/api/v1/flows", "/api/v1/flows/summary"] {
        let r = t.get(path).await;
        assert_eq!(
            (r.status, r.error().0),
            (StatusCode::SERVICE_UNAVAILABLE, "engine_unavailable".into()),
            "{path}"
        );
    }
}

/// Serves `replies` in order on a Unix socket, one connection each, and
/// returns the requests it saw.
fn fake_flow_socket(
    path: PathBuf,
    replies: Vec<FlowReply>,
) -> std::thread::JoinHandle<Vec<FlowRequest>> {
    let listener = UnixListener::bind(&path).unwrap();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        for reply in replies {
            let (s, _) = listener.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            seen.push(serde_json::from_str(&line).unwrap());
            let mut w = s;
            w.write_all(format!("{}\n", serde_json::to_string(&reply).unwrap()).as_bytes())
                .unwrap();
        }
        seen
    })
}

fn tls_flow() -> Value {
    json!({
        "worker": 1, "proto": "tcp", "client": "10.1.0.2:40000", "server": "10.2.0.2:443",
        "class": "tls", "app_name": "www.patronus.test", "method": "signature", "confidence": 1.0,
        "packets_orig": 12, "packets_reply": 10, "bytes_orig": 1500, "bytes_reply": 4200,
        "age_ms": 250, "idle_ms": 3
    })
}

#[tokio::test]
async fn flows_come_from_the_engine_socket() {
    let dir = TempDir::new("flows-list");
    let socket = dir.path().join("flows.sock");
    let mut dns = tls_flow();
    dns["proto"] = json!("udp");
    dns["class"] = json!("dns");
    dns["app_name"] = json!("name.patronus.test");
    dns["server"] = json!("10.2.0.2:53");
    let mut pending = tls_flow();
    pending["class"] = json!("pending");
    pending["method"] = json!("pending");
    pending.as_object_mut().unwrap().remove("app_name");
    let server = fake_flow_socket(
        socket.clone(),
        vec![
            FlowReply::Page {
                flows: vec![serde_json::from_value(tls_flow()).unwrap()],
                next_cursor: Some("1.17".into()),
                workers: 2,
            },
            FlowReply::Page {
                flows: vec![
                    serde_json::from_value(dns).unwrap(),
                    serde_json::from_value(pending).unwrap(),
                ],
                next_cursor: None,
                workers: 2,
            },
            FlowReply::Error {
                code: FlowErrorCode::ClassifyDisabled,
                message: "the engine runs no classification".into(),
            },
            FlowReply::Error {
                code: FlowErrorCode::WorkerTimeout,
                message: "worker 1 did not answer".into(),
            },
            FlowReply::Error {
                code: FlowErrorCode::BadRequest,
                message: "cursor 7.0: the engine runs 2 workers".into(),
            },
        ],
    );
    let t = TestApp::with_engine(Some(Arc::new(FakeEngine {
        classify: None,
        socket: Some(socket.clone()),
    })));
    let page = t
        .get_ok("/api/v1/flows?class=tls&host=10.1.0.2&limit=1")
        .await;
    assert_eq!(
        page,
        json!({ "items": [tls_flow()], "next_cursor": "1.17", "workers": 2 })
    );
    let page = t.get_ok("/api/v1/flows?cursor=1.17").await;
    assert!(page.get("next_cursor").is_none(), "{page}");
    let items = page["items"].as_array().unwrap();
    assert_eq!(items[0]["app_name"], "name.patronus.test");
    assert_eq!(items[1]["class"], "pending");
    assert!(items[1].get("app_name").is_none(), "absent, not null");
    let r = t.get("/api/v1/flows").await;
    assert_eq!(
        (r.status, r.error().0),
        (StatusCode::NOT_FOUND, "classify_disabled".into())
    );
    let r = t.get("/api/v1/flows").await;
    assert_eq!(
        (r.status, r.error().0),
        (StatusCode::SERVICE_UNAVAILABLE, "engine_unavailable".into())
    );
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("worker 1"));
    let r = t.get("/api/v1/flows?cursor=7.0").await;
    assert_eq!(
        (r.status, r.error()),
        (
            StatusCode::BAD_REQUEST,
            ("invalid_field".into(), Some("cursor".into()))
        )
    );
    let seen = server.join().unwrap();
    assert_eq!(
        seen[0],
        FlowRequest {
            class: Some("tls".into()),
            host: Some("10.1.0.2".parse().unwrap()),
            cursor: None,
            limit: 1,
        }
    );
    assert_eq!(
        seen[1],
        FlowRequest {
            class: None,
            host: None,
            cursor: Some("1.17".into()),
            limit: 100,
        }
    );
    // Nobody listens any more: the engine is not running.
    drop(std::fs::remove_file(&socket));
    let r = t.get("/api/v1/flows?class=pending").await;
    assert_eq!(
        (r.status, r.error().0),
        (StatusCode::SERVICE_UNAVAILABLE, "engine_unavailable".into())
    );
}

#[tokio::test]
async fn summary_reads_the_classification_counters() {
    let counters: Vec<(String, u64)> = vec![
        ("flows_created".into(), 40),
        ("flows_expired".into(), 12),
        ("flows_evicted".into(), 2),
        ("flows_untracked".into(), 1),
        ("dpi_slots_exhausted".into(), 3),
        ("inference_batches".into(), 5),
        ("inferred_flows".into(), 9),
        ("flows_active".into(), 26),
        ("model_generation".into(), 2),
        ("class.tls.flows".into(), 21),
        ("class.tls.packets".into(), 900),
        ("class.tls.bytes".into(), 640_000),
        ("class.dns.flows".into(), 8),
    ];
    let t = TestApp::with_engine(Some(Arc::new(FakeEngine {
        classify: Some(counters),
        socket: None,
    })));
    let s = t.get_ok("/api/v1/flows/summary").await;
    assert_eq!(
        s["classes"]["tls"],
        json!({ "flows": 21, "packets": 900, "bytes": 640_000 })
    );
    assert_eq!(
        s["classes"]["dns"],
        json!({ "flows": 8, "packets": 0, "bytes": 0 })
    );
    let classes = s["classes"].as_object().unwrap();
    assert_eq!(
        classes.len(),
        patronus_shm::flow_query::FLOW_CLASSES.len(),
        "every class, zeros included: {s}"
    );
    for (k, v) in [
        ("flows_created", 40),
        ("flows_expired", 12),
        ("flows_evicted", 2),
        ("flows_untracked", 1),
        ("dpi_slots_exhausted", 3),
        ("inference_batches", 5),
        ("inferred_flows", 9),
        ("flows_active", 26),
        ("model_generation", 2),
    ] {
        assert_eq!(s[k], v, "{k}: {s}");
    }
    // The engine's shared-memory view with the counters left out.
    let t = TestApp::with_engine(Some(Arc::new(FakeEngine {
        classify: Some(vec![]),
        socket: None,
    })));
    let r = t.get("/api/v1/flows/summary").await;
    assert_eq!(
        (r.status, r.error().0),
        (StatusCode::NOT_FOUND, "classify_disabled".into())
    );
    // Attached view, but no live worker.
    let t = TestApp::with_engine(Some(Arc::new(LatestSnapshot::new(None))));
    let r = t.get("/api/v1/flows/summary").await;
    assert_eq!(
        (r.status, r.error().0),
        (StatusCode::SERVICE_UNAVAILABLE, "engine_unavailable".into())
    );
}
