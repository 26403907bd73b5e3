//! The load balancer's REST API: VIPs and backends created, listed, shown,
//! changed and deleted; bad bodies refused with the field named;
//! conflicts with stored state as 409; the engine's per-backend counters
//! (from a stand-in `lb.sock`) on a shown VIP.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;

use common::{TempDir, TestApp};
use patronus_control::metrics::{EngineSnapshot, EngineSource};
use patronus_shm::lb_query::{LbBackendStats, LbReply};

const VIPS: &str = "/api/v1/lb/vips";

fn web() -> Value {
    json!({
        "name": "web", "address": "10.9.0.100", "port": 80, "protocol": "tcp", "mode": "nat",
        "table_size": 65537,
        "health_check": { "type": "http", "path": "/", "port": null, "interval_ms": 500,
                          "timeout_ms": 400, "rise": 2, "fall": 2 },
        "backends": [{ "address": "10.2.0.11", "port": 80, "weight": 1 }]
    })
}

async fn expect_error(
    t: &TestApp,
    method: Method,
    path: &str,
    body: Value,
    status: StatusCode,
    code: &str,
    field: &str,
) {
    let r = t.call(method.clone(), path, Some(body.clone())).await;
    assert_eq!(r.status, status, "{method} {path} {body}: {}", r.body);
    assert_eq!(
        r.error(),
        (code.to_owned(), Some(field.to_owned())),
        "{method} {path} {body}: {}",
        r.body
    );
}

#[tokio::test]
async fn vips_and_backends_through_their_lifecycle() {
    let t = TestApp::in_memory();
    assert_eq!(t.get_ok(VIPS).await, json!({ "vips": [] }));

    let r = t.call(Method::POST, VIPS, Some(web())).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.headers["location"], "/api/v1/lb/vips/web");
    let v = r.body;
    assert_eq!(v["name"], "web");
    assert_eq!(v["address"], "10.9.0.100");
    assert_eq!(v["protocol"], "tcp");
    assert_eq!(v["mode"], "nat");
    assert_eq!(v["table_size"], 65537);
    assert_eq!(v["health_check"]["type"], "http");
    assert_eq!(v["health_check"]["interval_ms"], 500);
    let b = &v["backends"][0];
    assert_eq!(
        (&b["address"], &b["port"], &b["weight"]),
        (&json!("10.2.0.11"), &json!(80), &json!(1))
    );
    // Checked, and no probe succeeded yet (nothing listens there).
    assert_eq!(b["health"], "down");
    assert_eq!(
        (&b["flows"], &b["active_flows"], &b["packets"], &b["bytes"]),
        (&json!(0), &json!(0), &json!(0), &json!(0))
    );

    // A second VIP without a check: backends are unchecked (taken as up).
    let dns = t
        .create(
            VIPS,
            json!({ "name": "dns", "address": "10.9.0.53", "port": 53, "protocol": "udp",
                    "mode": "dsr", "table_size": 211,
                    "backends": [{ "address": "10.2.0.21" }, { "address": "10.2.0.22", "weight": 3 }] }),
        )
        .await;
    assert_eq!(
        dns["backends"][0]["port"], 53,
        "DSR backends default to the VIP's port"
    );
    assert_eq!(dns["backends"][1]["weight"], 3);
    assert_eq!(dns["backends"][0]["health"], "unchecked");
    assert_eq!(dns["health_check"], Value::Null);

    let list = t.get_ok(VIPS).await;
    let names: Vec<&str> = list["vips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["dns", "web"]);
    assert_eq!(t.get_ok("/api/v1/lb/vips/web").await, v);

    // Backends: add, drain, remove.
    let path = "/api/v1/lb/vips/web/backends";
    let r = t
        .call(
            Method::POST,
            path,
            Some(json!({ "address": "10.2.0.12", "port": 8080, "weight": 2 })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(
        r.headers["location"],
        "/api/v1/lb/vips/web/backends/10.2.0.12:8080"
    );
    assert_eq!(r.body["weight"], 2);
    assert_eq!(r.body["health"], "down");
    let r = t
        .call(
            Method::PATCH,
            "/api/v1/lb/vips/web/backends/10.2.0.12:8080",
            Some(json!({ "weight": 0 })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["weight"], 0);
    let shown = t.get_ok("/api/v1/lb/vips/web").await;
    let weights: Vec<(String, u64)> = shown["backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                format!("{}:{}", b["address"].as_str().unwrap(), b["port"]),
                b["weight"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        weights,
        [
            ("10.2.0.11:80".to_owned(), 1),
            ("10.2.0.12:8080".to_owned(), 0)
        ]
    );
    let r = t
        .call(
            Method::DELETE,
            "/api/v1/lb/vips/web/backends/10.2.0.11:80",
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let shown = t.get_ok("/api/v1/lb/vips/web").await;
    assert_eq!(shown["backends"].as_array().unwrap().len(), 1);
    assert_eq!(shown["backends"][0]["port"], 8080);

    // Update: new settings, backends kept; drop the check; rename.
    let r = t
        .call(
            Method::PUT,
            "/api/v1/lb/vips/web",
            Some(
                json!({ "name": "www", "address": "10.9.0.100", "port": 443, "table_size": 1009 }),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["name"], "www");
    assert_eq!(r.body["port"], 443);
    assert_eq!(r.body["table_size"], 1009);
    assert_eq!(r.body["health_check"], Value::Null);
    assert_eq!(r.body["backends"][0]["health"], "unchecked");
    assert_eq!(r.body["id"], v["id"], "same VIP, same id");
    assert_eq!(r.body["backends"][0]["port"], 8080);
    assert_eq!(
        t.get("/api/v1/lb/vips/web").await.status,
        StatusCode::NOT_FOUND
    );

    let r = t.call(Method::DELETE, "/api/v1/lb/vips/www", None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = t.call(Method::DELETE, "/api/v1/lb/vips/www", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.error(), ("not_found".into(), Some("vip".into())));
    let list = t.get_ok(VIPS).await;
    assert_eq!(list["vips"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn bad_bodies_name_the_field() {
    let t = TestApp::in_memory();
    let bad = StatusCode::BAD_REQUEST;
    let with = |k: &str, v: Value| {
        let mut b = web();
        b[k] = v;
        b
    };
    for (body, code, field) in [
        (with("name", json!("no spaces")), "invalid_field", "name"),
        (with("address", json!("10.9.0")), "invalid_field", "address"),
        (
            with("address", json!("0.0.0.0")),
            "invalid_field",
            "address",
        ),
        (with("port", json!(0)), "invalid_field", "port"),
        (with("port", json!(65536)), "invalid_field", "port"),
        (with("protocol", json!("sctp")), "invalid_field", "protocol"),
        (with("mode", json!("tunnel")), "invalid_field", "mode"),
        (
            with("table_size", json!(65536)),
            "invalid_field",
            "table_size",
        ),
        (
            with("table_size", json!(8_388_617)),
            "invalid_field",
            "table_size",
        ),
        (with("bogus", json!(1)), "unknown_field", "bogus"),
        (
            with(
                "health_check",
                json!({ "type": "http", "interval_ms": 100, "timeout_ms": 200 }),
            ),
            "invalid_field",
            "health_check.timeout_ms",
        ),
        (
            with("health_check", json!({ "type": "tcp", "path": "/" })),
            "invalid_field",
            "health_check.path",
        ),
        (
            with("health_check", json!({ "type": "icmp" })),
            "invalid_field",
            "health_check.type",
        ),
        (
            with("health_check", json!({ "type": "tcp", "rise": 0 })),
            "invalid_field",
            "health_check.rise",
        ),
        (
            with(
                "backends",
                json!([{ "address": "10.2.0.11", "weight": 70000 }]),
            ),
            "invalid_field",
            "backends[0].weight",
        ),
        (
            with(
                "backends",
                json!([{ "address": "10.2.0.11" }, { "address": "10.2.0.11", "port": 80 }]),
            ),
            "invalid_field",
            "backends[1]",
        ),
        (
            with(
                "backends",
                json!([{ "address": "10.2.0.11", "port": 80, "extra": 1 }]),
            ),
            "unknown_field",
            "backends[0].extra",
        ),
    ] {
        expect_error(&t, Method::POST, VIPS, body, bad, code, field).await;
    }
    let mut dsr = web();
    dsr["mode"] = json!("dsr");
    dsr["backends"] = json!([{ "address": "10.2.0.11", "port": 8080 }]);
    expect_error(
        &t,
        Method::POST,
        VIPS,
        dsr,
        bad,
        "invalid_field",
        "backends[0].port",
    )
    .await;
    let mut small = web();
    small["table_size"] = json!(101);
    small["backends"] = json!([{ "address": "10.2.0.11" }, { "address": "10.2.0.12" }]);
    expect_error(
        &t,
        Method::POST,
        VIPS,
        small,
        bad,
        "invalid_field",
        "table_size",
    )
    .await;
    let mut no_name = web();
    no_name.as_object_mut().unwrap().remove("name");
    expect_error(
        &t,
        Method::POST,
        VIPS,
        no_name,
        bad,
        "missing_field",
        "name",
    )
    .await;
    assert_eq!(
        t.get_ok(VIPS).await,
        json!({ "vips": [] }),
        "nothing was created"
    );

    t.create(VIPS, web()).await;
    let vip = "/api/v1/lb/vips/web";
    // PUT takes no backends; PATCH only a weight; keys are ADDRESS:PORT.
    let mut put = web();
    put.as_object_mut().unwrap().remove("health_check");
    expect_error(&t, Method::PUT, vip, put, bad, "unknown_field", "backends").await;
    expect_error(
        &t,
        Method::PATCH,
        "/api/v1/lb/vips/web/backends/10.2.0.11:80",
        json!({ "weight": 1, "port": 81 }),
        bad,
        "unknown_field",
        "port",
    )
    .await;
    expect_error(
        &t,
        Method::PATCH,
        "/api/v1/lb/vips/web/backends/10.2.0.11",
        json!({ "weight": 1 }),
        bad,
        "invalid_field",
        "backend",
    )
    .await;
    expect_error(
        &t,
        Method::POST,
        "/api/v1/lb/vips/web/backends",
        json!({ "address": "255.255.255.255" }),
        bad,
        "invalid_field",
        "address",
    )
    .await;
    let r = t
        .call(
            Method::PATCH,
            "/api/v1/lb/vips/web/backends/10.2.0.99:80",
            Some(json!({ "weight": 1 })),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.error(), ("not_found".into(), Some("backend".into())));
    let r = t
        .call(
            Method::POST,
            "/api/v1/lb/vips/nope/backends",
            Some(json!({ "address": "10.2.0.1" })),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn conflicts_with_stored_state_are_409() {
    let t = TestApp::in_memory();
    let conflict = StatusCode::CONFLICT;
    t.create(VIPS, web()).await;
    // Same name; same address, port and protocol.
    expect_error(&t, Method::POST, VIPS, web(), conflict, "conflict", "name").await;
    let mut same_endpoint = web();
    same_endpoint["name"] = json!("web2");
    expect_error(
        &t,
        Method::POST,
        VIPS,
        same_endpoint.clone(),
        conflict,
        "conflict",
        "address",
    )
    .await;
    // Another protocol on the same address and port is another VIP.
    same_endpoint["protocol"] = json!("udp");
    same_endpoint["health_check"] = Value::Null;
    t.create(VIPS, same_endpoint).await;

    let backends = "/api/v1/lb/vips/web/backends";
    expect_error(
        &t,
        Method::POST,
        backends,
        json!({ "address": "10.2.0.11", "port": 80 }),
        conflict,
        "conflict",
        "address",
    )
    .await;
    // DSR with a backend on another port: the mode change is refused.
    t.create(backends, json!({ "address": "10.2.0.12", "port": 8080 }))
        .await;
    expect_error(
        &t,
        Method::PUT,
        "/api/v1/lb/vips/web",
        json!({ "address": "10.9.0.100", "port": 80, "mode": "dsr" }),
        conflict,
        "conflict",
        "mode",
    )
    .await;
    // A table too small for the backends it has; one backend too many.
    expect_error(
        &t,
        Method::PUT,
        "/api/v1/lb/vips/web",
        json!({ "address": "10.9.0.100", "port": 80, "table_size": 101 }),
        conflict,
        "conflict",
        "table_size",
    )
    .await;
    t.create(
        VIPS,
        json!({ "name": "tiny", "address": "10.9.0.7", "port": 7, "table_size": 101,
                "backends": [{ "address": "10.2.0.1" }] }),
    )
    .await;
    expect_error(
        &t,
        Method::POST,
        "/api/v1/lb/vips/tiny/backends",
        json!({ "address": "10.2.0.2" }),
        conflict,
        "conflict",
        "backends",
    )
    .await;
    // Renaming onto another VIP's name.
    expect_error(
        &t,
        Method::PUT,
        "/api/v1/lb/vips/tiny",
        json!({ "name": "web", "address": "10.9.0.7", "port": 7, "table_size": 101 }),
        conflict,
        "conflict",
        "name",
    )
    .await;
}

/// An engine view whose `lb.sock` is a stand-in answering `reply`.
struct FakeEngine {
    socket: PathBuf,
}

impl EngineSource for FakeEngine {
    fn snapshot(&self) -> Option<EngineSnapshot> {
        None
    }
    fn lb_socket(&self) -> Option<PathBuf> {
        Some(self.socket.clone())
    }
}

/// Serves `reply` to every request line on `socket`; returns the request lines seen.
fn serve_lb(socket: &std::path::Path, reply: LbReply) -> tokio::task::JoinHandle<()> {
    let listener = UnixListener::bind(socket).unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let reply = reply.clone();
            tokio::spawn(async move {
                let (r, mut w) = stream.into_split();
                let mut lines = BufReader::new(r).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    assert_eq!(line, "{}", "the request is an empty object");
                    let mut text = serde_json::to_string(&reply).unwrap();
                    text.push('\n');
                    if w.write_all(text.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    })
}

#[tokio::test]
async fn shown_backends_carry_the_engine_counters() {
    let dir = TempDir::new("lb-counters");
    let socket = dir.path().join("lb.sock");
    let engine: Arc<dyn EngineSource> = Arc::new(FakeEngine {
        socket: socket.clone(),
    });
    let t = TestApp::with_engine(Some(engine));
    let v = t.create(VIPS, web()).await;
    t.create(
        "/api/v1/lb/vips/web/backends",
        json!({ "address": "10.2.0.12", "port": 80 }),
    )
    .await;
    // No engine yet: zeros.
    let shown = t.get_ok("/api/v1/lb/vips/web").await;
    assert_eq!(shown["backends"][0]["flows"], 0);

    let vip_id = v["id"].as_u64().unwrap() as u32;
    let ids: Vec<u32> = shown["backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_u64().unwrap() as u32)
        .collect();
    let stats = |id: u32, vip_id: u32, last: u8, n: u64| LbBackendStats {
        id,
        vip_id,
        addr: std::net::Ipv4Addr::new(10, 2, 0, last),
        port: 80,
        weight: 1,
        up: true,
        flows: n,
        active_flows: n / 2,
        packets: n * 10,
        bytes: n * 1000,
    };
    let server = serve_lb(
        &socket,
        LbReply::Backends {
            backends: vec![
                stats(ids[0], vip_id, 11, 8),
                // Another id's counters never land on a backend.
                stats(ids[1] + 100, vip_id, 12, 5),
            ],
            active_flows: 4,
            generation: 3,
            workers: 1,
        },
    );
    let shown = t.get_ok("/api/v1/lb/vips/web").await;
    let b0 = &shown["backends"][0];
    assert_eq!(
        (
            &b0["flows"],
            &b0["active_flows"],
            &b0["packets"],
            &b0["bytes"]
        ),
        (&json!(8), &json!(4), &json!(80), &json!(8000))
    );
    assert_eq!(shown["backends"][1]["flows"], 0);
    let list = t.get_ok(VIPS).await;
    assert_eq!(list["vips"][0]["backends"][0]["packets"], 80);
    server.abort();
}
