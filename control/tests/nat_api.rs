//! The NAT API: the whole configuration, forwards and pool addresses one by
//! one, bad requests (exact status, code and field; nothing changes), the
//! outside-interface rule, durability, the push into shared memory, and
//! the session listing against a stand-in for the engine's socket.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::Arc;

use axum::http::{Method, StatusCode};
use common::{TempDir, TestApp};
use patronus_control::metrics::{EngineSnapshot, EngineSource, PortCounters};
use patronus_control::nat::push::compile;
use patronus_control::push::Pusher;
use patronus_control::state::spawn_store_with;
use patronus_control::store::Store;
use patronus_shm::nat_query::{SessionReply, SessionRequest};
use patronus_shm::Subscriber;
use serde_json::{json, Value};

fn full_spec() -> Value {
    json!({
        "outside": { "port": "wan0" },
        "pool": ["198.51.100.1", "198.51.100.2"],
        "filtering": "endpoint-independent",
        "timeouts": { "udp": 120, "tcp_established": 3600 },
        "max_sessions_per_host": 500,
        "inbound_refresh": false,
        "forwards": [
            { "proto": "tcp", "outside": "198.51.100.1:8080", "inside": "10.1.0.2:80" },
            { "proto": "udp", "outside": "198.51.100.1:5353", "inside": "10.1.0.3:53" }
        ],
        "one_to_one": [ { "outside": "198.51.100.10", "inside": "10.1.0.10" } ]
    })
}

async fn with_interfaces(t: &TestApp) {
    t.create(
        "/api/v1/interfaces",
        json!({ "port": "wan0", "address": "198.51.100.1/24" }),
    )
    .await;
    t.create(
        "/api/v1/interfaces",
        json!({ "port": "lan0", "address": "10.1.0.1/24" }),
    )
    .await;
}

#[tokio::test]
async fn nat_configuration_crud() {
    let t = TestApp::in_memory();
    with_interfaces(&t).await;
    let r = t.get("/api/v1/nat").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.error(), ("not_found".into(), Some("nat".into())));

    let r = t.call(Method::PUT, "/api/v1/nat", Some(full_spec())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let got = t.get_ok("/api/v1/nat").await;
    assert_eq!(got, r.body);
    assert_eq!(got["enabled"], true);
    assert_eq!(got["outside"], json!({ "port": "wan0", "vlan": null }));
    assert_eq!(got["filtering"], "endpoint-independent");
    assert_eq!(
        got["timeouts"],
        json!({ "udp": 120, "tcp_established": 3600 })
    );
    assert_eq!(got["max_sessions_per_host"], 500);
    assert_eq!(got["inbound_refresh"], false);
    assert_eq!(got["forwards"][1]["outside"], "198.51.100.1:5353");
    assert_eq!(got["forwards"][1]["proto"], "udp");
    assert_eq!(
        got["one_to_one"],
        json!([{ "outside": "198.51.100.10", "inside": "10.1.0.10" }])
    );

    // Forwards listed again keep their ids; a changed one gets a new id.
    let mut spec = full_spec();
    let r = t.call(Method::PUT, "/api/v1/nat", Some(spec.clone())).await;
    assert_eq!(r.body["forwards"], got["forwards"]);
    spec["forwards"][0]["inside"] = json!("10.1.0.2:8080");
    let r = t.call(Method::PUT, "/api/v1/nat", Some(spec)).await;
    assert_eq!(r.body["forwards"][0], got["forwards"][1]);
    assert_eq!(r.body["forwards"][1]["id"], 3);
    assert_eq!(r.body["forwards"][1]["inside"], "10.1.0.2:8080");
    let r = t.call(Method::PUT, "/api/v1/nat", Some(full_spec())).await;
    assert_eq!(r.body["forwards"][1]["id"], 4);
    let got = r.body;

    // Forwards one by one.
    let f = t
        .create(
            "/api/v1/nat/forwards",
            json!({ "proto": "tcp", "outside": "198.51.100.2:2222", "inside": "10.1.0.4:22" }),
        )
        .await;
    let id = f["id"].as_i64().unwrap();
    let list = t.get_ok("/api/v1/nat/forwards").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 3);
    let r = t
        .call(Method::DELETE, &format!("/api/v1/nat/forwards/{id}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let list = t.get_ok("/api/v1/nat/forwards").await;
    assert_eq!(list["items"], got["forwards"]);

    // Pool addresses one by one.
    let r = t
        .create("/api/v1/nat/pool", json!({ "address": "198.51.100.3" }))
        .await;
    assert_eq!(
        r["pool"],
        json!(["198.51.100.1", "198.51.100.2", "198.51.100.3"])
    );
    let r = t
        .call(Method::DELETE, "/api/v1/nat/pool/198.51.100.1", None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["pool"], json!(["198.51.100.2", "198.51.100.3"]));

    // A minimal body takes defaults (and drops the forwards).
    let r = t
        .call(
            Method::PUT,
            "/api/v1/nat",
            Some(json!({ "outside": { "port": "wan0" }, "pool": ["198.51.100.1"], "enabled": false })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["filtering"], "address-and-port-dependent");
    assert_eq!(r.body["enabled"], false);
    assert_eq!(r.body["timeouts"], json!({}));
    assert_eq!(r.body["forwards"], json!([]));

    let r = t.call(Method::DELETE, "/api/v1/nat", None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(t.get("/api/v1/nat").await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        t.get("/api/v1/nat/forwards").await.status,
        StatusCode::NOT_FOUND
    );
}

struct Bad {
    method: Method,
    path: &'static str,
    body: Option<Value>,
    status: u16,
    code: &'static str,
    field: Option<&'static str>,
}

fn bad(
    method: Method,
    path: &'static str,
    body: Option<Value>,
    status: u16,
    code: &'static str,
    field: Option<&'static str>,
) -> Bad {
    Bad {
        method,
        path,
        body,
        status,
        code,
        field,
    }
}

/// `full_spec()` with `key` set to `v`.
fn spec_with(key: &str, v: Value) -> Option<Value> {
    let mut s = full_spec();
    s[key] = v;
    Some(s)
}

#[tokio::test]
async fn bad_requests_get_exact_statuses_and_fields_and_change_nothing() {
    use Method as M;
    let t = TestApp::in_memory();
    with_interfaces(&t).await;
    let r = t.call(M::PUT, "/api/v1/nat", Some(full_spec())).await;
    assert_eq!(r.status, StatusCode::OK);
    let before = t.get_ok("/api/v1/nat").await;
    let generation = t.generation().await;
    let fwd =
        |proto: &str, o: &str, i: &str| Some(json!({ "proto": proto, "outside": o, "inside": i }));
    let cases = vec![
        bad(
            M::PUT,
            "/api/v1/nat",
            Some(json!({ "pool": ["1.2.3.4"] })),
            400,
            "missing_field",
            Some("outside"),
        ),
        bad(
            M::PUT,
            "/api/v1/nat",
            spec_with("colour", json!("red")),
            400,
            "unknown_field",
            Some("colour"),
        ),
        bad(
            M::PUT,
            "/api/v1/nat",
            spec_with("outside", json!({ "port": "wan0", "mtu": 1 })),
            400,
            "unknown_field",
            Some("outside.mtu"),
        ),
        bad(
            M::PUT,
            "/api/v1/nat",
            spec_with("outside", json!({ "port": "" })),
            400,
            "invalid_field",
            Some("outside.port"),
        ),
        bad(
            M::PUT,
            "/api/v1/nat",
            spec_with("outside", json!({ "port": "wan0", "vlan": 4095 })),
            400,
            "invalid_field",
            Some("outside.vlan"),
        ),
        bad(
            M::PUT,
            "/api/v1/nat",
            spec_with("outside", json!({ "port": "wan9" })),
            400,
            "invalid_field",
            Some("outside.port"),
        ),
        bad(
            M::PUT,
            "/api/v1/nat",
            spec_with("outside", json!({ "port": "wan0", "vlan": 7 })),
            400,
            "invalid_field",
            Some("outside.port"),
        ),
        bad(
            M::PUT,
            "/api/v1/nat",
            spec_with("pool", json!([])),
            400,
            "invalid_field",
            Some("pool"),
        ),
        bad(
            M::PUT,
            "/api/v1/nat",
            spec_with("pool", json!(["198.51.100.1", "x"])),
            400,
            "invalid_field",
            Some("pool[1]"),
        ),
        bad(
            M::PUT,
            "/api/v1/nat",
            spec_with("pool", json!(["224.0.0.1"])),
            400,
            "invalid_field",
            Some("pool[0]"),
        ),
        bad(
            M::PUT,
            "/api/v1/nat",
            spec_with("pool", json!(["198.51.100.1", "198.51.100.1"])),
            400,
            "invalid_field",
            Some("pool[1]"),
        ),
        bad(
            M::PUT,
            "/api/v1/nat",
            spec_with("pool", json!(["198.51.100.10"])),
            400,
            "invalid_field",
            Some("pool[0]"),
        ),
        bad(
            M::PUT,
            "/api/v1/nat",
            spec_with("pool", json!("198.51.100.1")),
            400,
            "invalid_field",
            Some("pool"),
        ),
        bad(
            M::PUT,
            "/api/v1/nat",
            spec_with("filtering", json!("cone")),
            400,
            "invalid_field",
            Some("filtering"),
        ),
        bad(
            M::PUT,
            "/api/v1/nat",
            spec_with("timeouts", json!({ "udp": 0 })),
            400,
            "invalid_field",
            Some("timeouts.udp"),
        ),
        bad(
            M::PUT,
            "/api/v1/nat",
            spec_with("timeouts", json!({ "udp": -1 })),
            400,
            "invalid_field",
            Some("timeouts.udp"),
        ),
        bad(
            M::PUT,
            "/api/v1/nat",
            spec_with("timeouts", json!({ "tcp": 5 })),
            400,
            "unknown_field",
            Some("timeouts.tcp"),
        ),
        bad(
            M::PUT,
            "/api/v1/nat",
            spec_with("max_sessions_per_host", json!(0)),
            400,
            "invalid_field",
            Some("max_sessions_per_host"),
        ),
        bad(
            M::PUT,
            "/api/v1/nat",
            spec_with("inbound_refresh", json!("yes")),
            400,
            "invalid_field",
            Some("inbound_refresh"),
        ),
        bad(
            M::PUT,
            "/api/v1/nat",
            spec_with(
                "forwards",
                json!([{ "proto": "icmp", "outside": "198.51.100.1:1", "inside": "10.1.0.2:1" }]),
            ),
            400,
            "invalid_field",
            Some("forwards[0].proto"),
        ),
        bad(
            M::PUT,
            "/api/v1/nat",
            spec_with(
                "forwards",
                json!([{ "proto": "tcp", "outside": "198.51.100.1", "inside": "10.1.0.2:1" }]),
            ),
            400,
            "invalid_field",
            Some("forwards[0].outside"),
        ),
        bad(
            M::PUT,
            "/api/v1/nat",
            spec_with(
                "forwards",
                json!([{ "proto": "tcp", "outside": "198.51.100.1:0", "inside": "10.1.0.2:1" }]),
            ),
            400,
            "invalid_field",
            Some("forwards[0].outside"),
        ),
        bad(
            M::PUT,
            "/api/v1/nat",
            spec_with(
                "forwards",
                json!([{ "proto": "tcp", "outside": "198.51.100.1:1", "inside": "10.1.0.2:70000" }]),
            ),
            400,
            "invalid_field",
            Some("forwards[0].inside"),
        ),
        bad(
            M::PUT,
            "/api/v1/nat",
            spec_with(
                "forwards",
                json!([
            { "proto": "tcp", "outside": "198.51.100.1:1", "inside": "10.1.0.2:1" },
            { "proto": "tcp", "outside": "198.51.100.1:1", "inside": "10.1.0.3:1" }]),
            ),
            400,
            "invalid_field",
            Some("forwards[1].outside"),
        ),
        bad(
            M::PUT,
            "/api/v1/nat",
            spec_with(
                "forwards",
                json!([
            { "proto": "tcp", "outside": "198.51.100.1:1", "inside": "10.1.0.2:1" },
            { "proto": "tcp", "outside": "198.51.100.1:2", "inside": "10.1.0.2:1" }]),
            ),
            400,
            "invalid_field",
            Some("forwards[1].inside"),
        ),
        bad(
            M::PUT,
            "/api/v1/nat",
            spec_with(
                "forwards",
                json!([{ "proto": "tcp", "outside": "198.51.100.10:1", "inside": "10.1.0.2:1" }]),
            ),
            400,
            "invalid_field",
            Some("forwards[0].outside"),
        ),
        bad(
            M::PUT,
            "/api/v1/nat",
            spec_with(
                "one_to_one",
                json!([{ "outside": "198.51.100.1", "inside": "10.1.0.9" }]),
            ),
            400,
            "invalid_field",
            Some("pool[0]"),
        ),
        bad(
            M::PUT,
            "/api/v1/nat",
            spec_with(
                "one_to_one",
                json!([
            { "outside": "198.51.100.20", "inside": "10.1.0.9" },
            { "outside": "198.51.100.21", "inside": "10.1.0.9" }]),
            ),
            400,
            "invalid_field",
            Some("one_to_one[1].inside"),
        ),
        bad(
            M::PUT,
            "/api/v1/nat",
            spec_with(
                "one_to_one",
                json!([{ "outside": "nope", "inside": "10.1.0.9" }]),
            ),
            400,
            "invalid_field",
            Some("one_to_one[0].outside"),
        ),
        bad(
            M::PUT,
            "/api/v1/nat",
            Some(json!([1])),
            400,
            "invalid_field",
            None,
        ),
        // Forwards one by one.
        bad(
            M::POST,
            "/api/v1/nat/forwards",
            fwd("sctp", "198.51.100.1:1", "10.1.0.2:1"),
            400,
            "invalid_field",
            Some("proto"),
        ),
        bad(
            M::POST,
            "/api/v1/nat/forwards",
            fwd("tcp", "198.51.100.1:8080", "10.1.0.9:1"),
            409,
            "conflict",
            Some("outside"),
        ),
        bad(
            M::POST,
            "/api/v1/nat/forwards",
            fwd("tcp", "198.51.100.1:9", "10.1.0.2:80"),
            409,
            "conflict",
            Some("inside"),
        ),
        bad(
            M::POST,
            "/api/v1/nat/forwards",
            fwd("tcp", "198.51.100.10:9", "10.1.0.9:80"),
            409,
            "conflict",
            Some("outside"),
        ),
        bad(
            M::POST,
            "/api/v1/nat/forwards",
            Some(json!({ "proto": "tcp" })),
            400,
            "missing_field",
            Some("outside"),
        ),
        bad(
            M::DELETE,
            "/api/v1/nat/forwards/999",
            None,
            404,
            "not_found",
            Some("id"),
        ),
        bad(
            M::DELETE,
            "/api/v1/nat/forwards/x",
            None,
            400,
            "invalid_field",
            Some("id"),
        ),
        bad(
            M::GET,
            "/api/v1/nat/forwards/1",
            None,
            405,
            "method_not_allowed",
            None,
        ),
        // Pool addresses.
        bad(
            M::POST,
            "/api/v1/nat/pool",
            Some(json!({ "address": "198.51.100.2" })),
            409,
            "conflict",
            Some("address"),
        ),
        bad(
            M::POST,
            "/api/v1/nat/pool",
            Some(json!({ "address": "198.51.100.10" })),
            409,
            "conflict",
            Some("address"),
        ),
        bad(
            M::POST,
            "/api/v1/nat/pool",
            Some(json!({ "address": "0.0.0.0" })),
            400,
            "invalid_field",
            Some("address"),
        ),
        bad(
            M::DELETE,
            "/api/v1/nat/pool/198.51.100.9",
            None,
            404,
            "not_found",
            Some("address"),
        ),
        bad(
            M::DELETE,
            "/api/v1/nat/pool/bogus",
            None,
            400,
            "invalid_field",
            Some("address"),
        ),
        // Interfaces NAT stands on.
        bad(
            M::DELETE,
            "/api/v1/interfaces/1",
            None,
            409,
            "conflict",
            Some("id"),
        ),
        bad(
            M::PUT,
            "/api/v1/interfaces/1",
            Some(json!({ "port": "wan1", "address": "198.51.100.1/24" })),
            409,
            "conflict",
            Some("port"),
        ),
        // Sessions: checked before any engine is asked.
        bad(
            M::GET,
            "/api/v1/nat/sessions?limit=0",
            None,
            400,
            "invalid_field",
            Some("limit"),
        ),
        bad(
            M::GET,
            "/api/v1/nat/sessions?limit=1001",
            None,
            400,
            "invalid_field",
            Some("limit"),
        ),
        bad(
            M::GET,
            "/api/v1/nat/sessions?inside=10.1.0",
            None,
            400,
            "invalid_field",
            Some("inside"),
        ),
        bad(
            M::GET,
            "/api/v1/nat/sessions?cursor=abc",
            None,
            400,
            "invalid_field",
            Some("cursor"),
        ),
        bad(
            M::GET,
            "/api/v1/nat/sessions?offset=3",
            None,
            400,
            "invalid_field",
            Some("offset"),
        ),
        bad(
            M::GET,
            "/api/v1/nat/sessions",
            None,
            503,
            "engine_unavailable",
            None,
        ),
    ];
    for c in cases {
        let r = t.call(c.method.clone(), c.path, c.body.clone()).await;
        assert_eq!(
            (r.status.as_u16(), r.error()),
            (c.status, (c.code.to_string(), c.field.map(str::to_string))),
            "{} {} {:?}: {}",
            c.method,
            c.path,
            c.body,
            r.body
        );
    }
    // A pool of one cannot lose it.
    let t2 = TestApp::in_memory();
    with_interfaces(&t2).await;
    t2.call(
        M::PUT,
        "/api/v1/nat",
        Some(json!({ "outside": { "port": "wan0" }, "pool": ["198.51.100.1"] })),
    )
    .await;
    let r = t2
        .call(M::DELETE, "/api/v1/nat/pool/198.51.100.1", None)
        .await;
    assert_eq!(r.error(), ("conflict".into(), Some("address".into())));

    assert_eq!(t.get_ok("/api/v1/nat").await, before);
    assert_eq!(t.generation().await, generation);
}

/// An engine view reporting some ports and a session socket.
struct FakeEngine {
    ports: Vec<&'static str>,
    socket: Option<PathBuf>,
}

impl EngineSource for FakeEngine {
    fn snapshot(&self) -> Option<EngineSnapshot> {
        Some(EngineSnapshot {
            ports: self
                .ports
                .iter()
                .map(|p| PortCounters {
                    name: p.to_string(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
    }
    fn nat_socket(&self) -> Option<PathBuf> {
        self.socket.clone()
    }
}

#[tokio::test]
async fn an_outside_port_the_engine_runs_needs_no_api_interface() {
    let t = TestApp::with_engine(Some(Arc::new(FakeEngine {
        ports: vec!["lan0", "wan0"],
        socket: None,
    })));
    let spec = json!({ "outside": { "port": "wan0", "vlan": 12 }, "pool": ["198.51.100.1"] });
    let r = t.call(Method::PUT, "/api/v1/nat", Some(spec)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let spec = json!({ "outside": { "port": "wan7" }, "pool": ["198.51.100.1"] });
    let r = t.call(Method::PUT, "/api/v1/nat", Some(spec)).await;
    assert_eq!(
        r.error(),
        ("invalid_field".into(), Some("outside.port".into()))
    );
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("lan0, wan0"),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn nat_survives_a_restart() {
    let dir = TempDir::new("nat-restart");
    let db = dir.path().join("control.db");
    let before = {
        let t = TestApp::with_store(Store::open(&db).unwrap());
        with_interfaces(&t).await;
        let r = t.call(Method::PUT, "/api/v1/nat", Some(full_spec())).await;
        assert_eq!(r.status, StatusCode::OK);
        t.create(
            "/api/v1/nat/forwards",
            json!({ "proto": "udp", "outside": "198.51.100.2:4500", "inside": "10.1.0.5:4500" }),
        )
        .await;
        let v = t.get_ok("/api/v1/nat").await;
        t.store.close().await;
        v
    };
    let t = TestApp::with_store(Store::open(&db).unwrap());
    assert_eq!(t.get_ok("/api/v1/nat").await, before);
    // Ids are never reused.
    let f = t
        .create(
            "/api/v1/nat/forwards",
            json!({ "proto": "udp", "outside": "198.51.100.2:4501", "inside": "10.1.0.5:4501" }),
        )
        .await;
    assert_eq!(f["id"], 4);
}

/// Polls the NAT file once the store actor has finished the previous
/// request (it publishes after replying; one more request waits for that).
async fn settled(
    t: &TestApp,
    sub: &mut Subscriber,
) -> Result<Option<(u64, patronus_shm::NatTables)>, patronus_shm::ShmError> {
    t.generation().await;
    sub.poll_nat()
}

#[tokio::test]
async fn every_nat_change_is_published_to_shared_memory() {
    let dir = TempDir::new("nat-push");
    let shm = dir.path().join("shm");
    let mut sub = Subscriber::open(&shm).unwrap();
    let pusher = Pusher::open(&shm).unwrap();
    let store = Store::open_in_memory().unwrap();
    let t = TestApp::with_handle(spawn_store_with(store, Some(pusher)).unwrap());
    with_interfaces(&t).await;
    // At start: "not managed".
    let (n0, tables) = settled(&t, &mut sub)
        .await
        .unwrap()
        .expect("published at start");
    assert_eq!(tables, compile(None).unwrap());
    // Route and interface changes publish no NAT file.
    assert_eq!(settled(&t, &mut sub).await.unwrap(), None);

    let r = t.call(Method::PUT, "/api/v1/nat", Some(full_spec())).await;
    assert_eq!(r.status, StatusCode::OK);
    let cfg = t.store.get_nat().await.unwrap();
    let (n1, tables) = settled(&t, &mut sub).await.unwrap().expect("published");
    assert!(n1 > n0);
    assert_eq!(tables, compile(Some(&cfg)).unwrap());
    let s = tables.settings.unwrap();
    assert_eq!(
        (s.port(), s.enabled, s.max_sessions_per_host),
        ("wan0", 1, 500)
    );
    assert_eq!(s.timeouts_secs, [3600, 0, 0, 120, 0, 0]);
    assert_eq!(tables.pool.len(), 2);
    assert_eq!(tables.forwards.len(), 2);
    assert_eq!(tables.forwards[0].outside_port, 8080);
    assert_eq!(tables.one_to_one.len(), 1);

    // The same configuration again publishes nothing.
    let r = t.call(Method::PUT, "/api/v1/nat", Some(full_spec())).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(settled(&t, &mut sub).await.unwrap(), None);
    // A refused change publishes nothing.
    let r = t
        .call(Method::PUT, "/api/v1/nat", spec_with("pool", json!([])))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(settled(&t, &mut sub).await.unwrap(), None);

    t.create(
        "/api/v1/nat/forwards",
        json!({ "proto": "tcp", "outside": "198.51.100.2:443", "inside": "10.1.0.6:443" }),
    )
    .await;
    let (_, tables) = settled(&t, &mut sub).await.unwrap().expect("forward added");
    assert_eq!(tables.forwards.len(), 3);
    t.create("/api/v1/nat/pool", json!({ "address": "198.51.100.3" }))
        .await;
    let (_, tables) = settled(&t, &mut sub)
        .await
        .unwrap()
        .expect("pool address added");
    assert_eq!(tables.pool.len(), 3);

    let r = t.call(Method::DELETE, "/api/v1/nat", None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let (_, tables) = settled(&t, &mut sub).await.unwrap().expect("removed");
    assert_eq!(tables.settings, None);
}

/// Serves `replies` in order on a Unix socket, one connection each, and
/// returns the requests it saw.
fn fake_session_socket(
    path: PathBuf,
    replies: Vec<SessionReply>,
) -> std::thread::JoinHandle<Vec<SessionRequest>> {
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

#[tokio::test]
async fn sessions_come_from_the_engine_socket() {
    let dir = TempDir::new("nat-sessions");
    let socket = dir.path().join("nat.sock");
    let session = serde_json::from_value(json!({
        "worker": 1, "proto": "tcp", "inside": "10.1.0.2:40000", "outside": "198.51.100.1:1024",
        "remote": "192.0.2.7:443", "state": "established", "static": false, "age_ms": 5, "expires_in_ms": 7000
    }))
    .unwrap();
    let server = fake_session_socket(
        socket.clone(),
        vec![
            SessionReply::Page {
                sessions: vec![session],
                next_cursor: Some("1.17".into()),
                workers: 2,
            },
            SessionReply::Page {
                sessions: vec![],
                next_cursor: None,
                workers: 2,
            },
            SessionReply::Error {
                code: patronus_shm::nat_query::QueryErrorCode::NatDisabled,
                message: "the engine runs no NAT".into(),
            },
            SessionReply::Error {
                code: patronus_shm::nat_query::QueryErrorCode::WorkerTimeout,
                message: "worker 1 did not answer".into(),
            },
        ],
    );
    let t = TestApp::with_engine(Some(Arc::new(FakeEngine {
        ports: vec![],
        socket: Some(socket.clone()),
    })));
    let page = t
        .get_ok("/api/v1/nat/sessions?inside=10.1.0.2&limit=1")
        .await;
    assert_eq!(page["items"][0]["state"], "established");
    assert_eq!(page["items"][0]["static"], false);
    assert_eq!(page["items"][0]["remote"], "192.0.2.7:443");
    assert_eq!(page["next_cursor"], "1.17");
    let page = t.get_ok("/api/v1/nat/sessions?cursor=1.17").await;
    assert_eq!(page, json!({ "items": [] }));
    let r = t.get("/api/v1/nat/sessions").await;
    assert_eq!(
        (r.status, r.error().0),
        (StatusCode::NOT_FOUND, "nat_disabled".into())
    );
    let r = t.get("/api/v1/nat/sessions").await;
    assert_eq!(
        (r.status, r.error().0),
        (StatusCode::SERVICE_UNAVAILABLE, "engine_unavailable".into())
    );
    let seen = server.join().unwrap();
    assert_eq!(seen[0].inside, Some("10.1.0.2".parse().unwrap()));
    assert_eq!((seen[0].limit, seen[0].cursor.as_deref()), (1, None));
    assert_eq!(
        (seen[1].limit, seen[1].cursor.as_deref()),
        (100, Some("1.17"))
    );
    // Nobody listens any more: the engine is not running.
    drop(std::fs::remove_file(&socket));
    let r = t.get("/api/v1/nat/sessions").await;
    assert_eq!(
        (r.status, r.error().0),
        (StatusCode::SERVICE_UNAVAILABLE, "engine_unavailable".into())
    );
}
