//! BGP's REST API: global settings, neighbors, policies and networks
//! created, listed, shown, changed and deleted; bad bodies refused with
//! the field named; conflicts with stored state as 409; RFC 8212 warnings;
//! the speaker's answers (state, RIB) through `BgpStatus` (503 without a
//! speaker); the desired state the speaker follows; a restart keeps it.

mod common;

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use common::{TempDir, TestApp, TOKEN};
use patronus_bgp::types::Prefix;
use patronus_control::auth::ApiToken;
use patronus_control::bgp::model::Family;
use patronus_control::bgp::status::{
    BgpStatus, BoxFuture, NeighborCounters, NeighborStatus, RibPage, RibQuery, RibRoute,
    SessionState, StatusError,
};
use patronus_control::state::spawn_store;
use patronus_control::store::Store;
use patronus_control::{app, AppState};

const BGP: &str = "/api/v1/bgp";
const NEIGHBORS: &str = "/api/v1/bgp/neighbors";
const NETWORKS: &str = "/api/v1/bgp/networks";

fn policy(name: &str) -> Value {
    json!({ "name": name, "terms": [{ "name": "ours",
        "match": { "prefix_list": [{ "action": "permit", "prefix": "10.0.0.0/8", "le": 24 }] },
        "actions": [{ "set_local_pref": 200 }], "then": "accept" }] })
}

async fn expect_error(
    t: &TestApp,
    method: Method,
    path: &str,
    body: Option<Value>,
    status: StatusCode,
    code: &str,
    field: &str,
) {
    let r = t.call(method.clone(), path, body.clone()).await;
    assert_eq!(r.status, status, "{method} {path} {body:?}: {}", r.body);
    assert_eq!(
        r.error(),
        (code.to_owned(), Some(field.to_owned())),
        "{method} {path} {body:?}: {}",
        r.body
    );
}

async fn put(t: &TestApp, path: &str, body: Value) -> (StatusCode, Value) {
    let r = t.call(Method::PUT, path, Some(body)).await;
    (r.status, r.body)
}

#[tokio::test]
async fn desired_state_through_its_lifecycle() {
    let t = TestApp::in_memory();
    let mut desired = t.store.subscribe_bgp();
    assert!(desired.borrow_and_update().global.is_none());

    // Global settings: none until set.
    let r = t.get(BGP).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.error(), ("not_found".into(), Some("bgp".into())));
    let (s, g) = put(&t, BGP, json!({ "asn": 65000, "router_id": "10.0.0.1" })).await;
    assert_eq!(s, StatusCode::OK, "{g}");
    assert_eq!(
        g,
        json!({ "asn": 65000, "router_id": "10.0.0.1", "listen_port": 179, "enabled": true })
    );
    assert_eq!(t.get_ok(BGP).await, g);

    // Policies: created (201), replaced (200), listed, shown canonical.
    let (s, p) = put(&t, "/api/v1/bgp/policies/in", policy("in")).await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    assert_eq!(p["name"], "in");
    assert_eq!(p["default"], "reject", "the default filled in");
    let mut nameless = policy("ignored");
    nameless.as_object_mut().unwrap().remove("name");
    let (s, p2) = put(&t, "/api/v1/bgp/policies/out", nameless).await;
    assert_eq!(s, StatusCode::CREATED, "{p2}");
    assert_eq!(p2["name"], "out", "the name comes from the path");
    let (s, _) = put(&t, "/api/v1/bgp/policies/in", policy("in")).await;
    assert_eq!(s, StatusCode::OK, "replaced");
    assert_eq!(t.get_ok("/api/v1/bgp/policies/in").await, p);
    let names: Vec<Value> = t.get_ok("/api/v1/bgp/policies").await["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].clone())
        .collect();
    assert_eq!(names, [json!("in"), json!("out")]);

    // An eBGP neighbor without policies: created, with RFC 8212 warnings.
    let r = t
        .call(
            Method::POST,
            NEIGHBORS,
            Some(json!({ "address": "192.0.2.1", "remote_as": 65001, "description": "transit" })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.headers["location"], "/api/v1/bgp/neighbors/192.0.2.1");
    let n = r.body;
    assert_eq!(n["ebgp"], true);
    assert_eq!(n["hold_time_secs"], 90);
    assert_eq!(n["connect_retry_secs"], 120);
    assert_eq!(n["families"], json!(["ipv4-unicast"]));
    assert_eq!(n["import_policy"], Value::Null);
    let w = n["warnings"].as_array().unwrap();
    assert_eq!(w.len(), 2, "{n}");
    assert!(w.iter().all(|m| m.as_str().unwrap().contains("RFC 8212")));

    // An iBGP neighbor over IPv6 with every option: no warnings.
    let v6 = t
        .create(
            NEIGHBORS,
            json!({ "address": "2001:db8::2", "remote_as": 65000, "local_address": "2001:db8::1",
                    "hold_time_secs": 30, "connect_retry_secs": 5, "passive": true,
                    "families": ["ipv6-unicast", "ipv4-unicast"], "graceful_restart": true,
                    "restart_time_secs": 60, "import_policy": "in", "export_policy": "out",
                    "enabled": false }),
        )
        .await;
    assert_eq!(v6["ebgp"], false);
    assert_eq!(v6["warnings"], json!([]));
    assert_eq!(v6["families"], json!(["ipv4-unicast", "ipv6-unicast"]));
    assert_eq!(
        (&v6["passive"], &v6["graceful_restart"], &v6["enabled"]),
        (&json!(true), &json!(true), &json!(false))
    );

    // PATCH: policies set, description cleared; warnings go.
    let r = t
        .call(
            Method::PATCH,
            "/api/v1/bgp/neighbors/192.0.2.1",
            Some(
                json!({ "import_policy": "in", "export_policy": "out", "description": null,
                         "enabled": false }),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["warnings"], json!([]));
    assert_eq!(r.body["description"], Value::Null);
    assert_eq!(r.body["enabled"], false);
    assert_eq!(r.body["remote_as"], 65001, "absent fields stay");
    let shown = t.get_ok("/api/v1/bgp/neighbors/192.0.2.1").await;
    assert_eq!(shown, r.body);
    // IPv6 addresses in the path, in any spelling.
    let shown6 = t
        .get_ok("/api/v1/bgp/neighbors/2001:0db8:0:0:0:0:0:2")
        .await;
    assert_eq!(shown6, v6);
    let list = t.get_ok(NEIGHBORS).await;
    let addrs: Vec<&str> = list["neighbors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["address"].as_str().unwrap())
        .collect();
    assert_eq!(addrs, ["192.0.2.1", "2001:db8::2"]);

    // Changing the local AS turns the IPv6 neighbor into eBGP.
    put(&t, BGP, json!({ "asn": 65009, "router_id": "10.0.0.1" })).await;
    let shown6 = t.get_ok("/api/v1/bgp/neighbors/2001:db8::2").await;
    assert_eq!(shown6["ebgp"], true);

    // Networks, IPv4 and IPv6, deleted by URL-encoded prefix.
    let r = t
        .call(
            Method::POST,
            NETWORKS,
            Some(json!({ "prefix": "10.1.0.0/24" })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.headers["location"], "/api/v1/bgp/networks/10.1.0.0%2F24");
    assert_eq!(r.body, json!({ "prefix": "10.1.0.0/24" }));
    t.create(NETWORKS, json!({ "prefix": "2001:db8:1::/48" }))
        .await;
    t.create(NETWORKS, json!({ "prefix": "9.0.0.0/8" })).await;
    assert_eq!(
        t.get_ok(NETWORKS).await,
        json!({ "networks": [{ "prefix": "9.0.0.0/8" }, { "prefix": "10.1.0.0/24" },
                             { "prefix": "2001:db8:1::/48" }] })
    );
    let r = t
        .call(Method::DELETE, "/api/v1/bgp/networks/9.0.0.0%2F8", None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let r = t
        .call(Method::DELETE, "/api/v1/bgp/networks/9.0.0.0%2F8", None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.error(), ("not_found".into(), Some("prefix".into())));

    // The speaker's view follows every change.
    desired.changed().await.unwrap();
    let d = desired.borrow_and_update().clone();
    assert_eq!(d.global.unwrap().asn, 65009);
    assert_eq!(d.neighbors.len(), 2);
    assert_eq!(
        d.neighbors[1].families,
        [Family::Ipv4Unicast, Family::Ipv6Unicast]
    );
    assert!(d.policy("in").is_some() && d.policy("out").is_some());
    let nets: Vec<String> = d.networks.iter().map(Prefix::to_string).collect();
    assert_eq!(nets, ["10.1.0.0/24", "2001:db8:1::/48"]);
    d.policy("in")
        .unwrap()
        .validate()
        .expect("stored policies compile");

    // Deletes.
    let r = t
        .call(Method::DELETE, "/api/v1/bgp/neighbors/192.0.2.1", None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = t.get("/api/v1/bgp/neighbors/192.0.2.1").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.error(), ("not_found".into(), Some("address".into())));
    let r = t
        .call(Method::DELETE, "/api/v1/bgp/policies/nope", None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    desired.changed().await.unwrap();
    assert_eq!(desired.borrow_and_update().neighbors.len(), 1);
}

#[tokio::test]
async fn bad_bodies_name_the_field() {
    let t = TestApp::in_memory();
    let bad = StatusCode::BAD_REQUEST;
    for (body, field) in [
        (json!({ "asn": 0, "router_id": "10.0.0.1" }), "asn"),
        (json!({ "asn": 23456, "router_id": "10.0.0.1" }), "asn"),
        (
            json!({ "asn": 4294967296u64, "router_id": "10.0.0.1" }),
            "asn",
        ),
        (json!({ "asn": 65000, "router_id": "0.0.0.0" }), "router_id"),
        (
            json!({ "asn": 65000, "router_id": "10.0.0.1", "listen_port": 0 }),
            "listen_port",
        ),
    ] {
        let r = t.call(Method::PUT, BGP, Some(body.clone())).await;
        assert_eq!(r.status, bad, "{body}: {}", r.body);
        assert_eq!(r.error().1.as_deref(), Some(field), "{body}: {}", r.body);
    }
    expect_error(
        &t,
        Method::PUT,
        BGP,
        Some(json!({ "asn": 65000, "router_id": "10.0.0.1", "port": 179 })),
        bad,
        "unknown_field",
        "port",
    )
    .await;
    expect_error(
        &t,
        Method::PUT,
        BGP,
        Some(json!({ "asn": 65000 })),
        bad,
        "missing_field",
        "router_id",
    )
    .await;

    let n = |extra: Value| {
        let mut b = json!({ "address": "192.0.2.1", "remote_as": 65001 });
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    for (body, field) in [
        (n(json!({ "address": "192.0.2.300" })), "address"),
        (n(json!({ "address": "ff02::5" })), "address"),
        (n(json!({ "remote_as": 0 })), "remote_as"),
        (n(json!({ "hold_time_secs": 2 })), "hold_time_secs"),
        (n(json!({ "connect_retry_secs": 0 })), "connect_retry_secs"),
        (n(json!({ "restart_time_secs": 5000 })), "restart_time_secs"),
        (
            n(json!({ "local_address": "2001:db8::1" })),
            "local_address",
        ),
        (n(json!({ "families": [] })), "families"),
        (
            n(json!({ "families": ["ipv4-unicast", "ipv4-unicast"] })),
            "families[1]",
        ),
        (n(json!({ "families": ["vpnv4"] })), "families[0]"),
        (n(json!({ "description": "x".repeat(81) })), "description"),
        (
            n(json!({ "import_policy": "no such/name" })),
            "import_policy",
        ),
        // A well-formed name of a policy that does not exist.
        (n(json!({ "import_policy": "missing" })), "import_policy"),
        (n(json!({ "export_policy": "missing" })), "export_policy"),
    ] {
        let r = t.call(Method::POST, NEIGHBORS, Some(body.clone())).await;
        assert_eq!(r.status, bad, "{body}: {}", r.body);
        assert_eq!(r.error().1.as_deref(), Some(field), "{body}: {}", r.body);
    }
    expect_error(
        &t,
        Method::POST,
        NEIGHBORS,
        Some(n(json!({ "hold": 90 }))),
        bad,
        "unknown_field",
        "hold",
    )
    .await;
    assert_eq!(
        t.get_ok(NEIGHBORS).await,
        json!({ "neighbors": [] }),
        "nothing was stored"
    );

    // PATCH: the result is checked as a whole; the address is not a field.
    t.create(NEIGHBORS, n(json!({}))).await;
    let path = "/api/v1/bgp/neighbors/192.0.2.1";
    expect_error(
        &t,
        Method::PATCH,
        path,
        Some(json!({ "hold_time_secs": 1 })),
        bad,
        "invalid_field",
        "hold_time_secs",
    )
    .await;
    expect_error(
        &t,
        Method::PATCH,
        path,
        Some(json!({ "address": "192.0.2.2" })),
        bad,
        "unknown_field",
        "address",
    )
    .await;
    expect_error(
        &t,
        Method::PATCH,
        path,
        Some(json!({ "export_policy": "missing" })),
        bad,
        "invalid_field",
        "export_policy",
    )
    .await;
    expect_error(
        &t,
        Method::GET,
        "/api/v1/bgp/neighbors/not-an-ip",
        None,
        bad,
        "invalid_field",
        "address",
    )
    .await;

    // Policies: compiled, errors name the field inside the document.
    let p = "/api/v1/bgp/policies/in";
    let mut bad_prefix = policy("in");
    bad_prefix["terms"][0]["match"]["prefix_list"][0]["prefix"] = json!("10.0.0.1/8");
    expect_error(
        &t,
        Method::PUT,
        p,
        Some(bad_prefix),
        bad,
        "invalid_field",
        "terms[0].match.prefix_list[0].prefix",
    )
    .await;
    let mut bad_le = policy("in");
    bad_le["terms"][0]["match"]["prefix_list"][0]["le"] = json!(4);
    expect_error(
        &t,
        Method::PUT,
        p,
        Some(bad_le),
        bad,
        "invalid_field",
        "terms[0].match.prefix_list[0].le",
    )
    .await;
    let mut unknown = policy("in");
    unknown["terms"][0]["then"] = json!("maybe");
    let r = t.call(Method::PUT, p, Some(unknown)).await;
    assert_eq!(r.status, bad, "{}", r.body);
    assert_eq!(r.error().1.as_deref(), Some("terms[0].then"), "{}", r.body);
    expect_error(
        &t,
        Method::PUT,
        p,
        Some(policy("other")),
        bad,
        "invalid_field",
        "name",
    )
    .await;
    let r = t
        .call(
            Method::PUT,
            "/api/v1/bgp/policies/bad%20name",
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, bad, "{}", r.body);
    assert_eq!(r.error().1.as_deref(), Some("name"));
    assert_eq!(
        t.get_ok("/api/v1/bgp/policies").await,
        json!({ "policies": [] })
    );

    // Networks.
    for (body, code, field) in [
        (
            json!({ "prefix": "10.0.0.1/24" }),
            "invalid_field",
            "prefix",
        ),
        (
            json!({ "prefix": "10.0.0.0/33" }),
            "invalid_field",
            "prefix",
        ),
        (json!({ "prefix": "10.0.0.0" }), "invalid_field", "prefix"),
        (
            json!({ "prefix": "10.0.0.0/8", "med": 5 }),
            "unknown_field",
            "med",
        ),
    ] {
        expect_error(&t, Method::POST, NETWORKS, Some(body), bad, code, field).await;
    }
    expect_error(
        &t,
        Method::DELETE,
        "/api/v1/bgp/networks/10.0.0.1%2F8",
        None,
        bad,
        "invalid_field",
        "prefix",
    )
    .await;

    // RIB query parameters, checked before the speaker is asked.
    for (q, field) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=x", "limit"),
        ("prefix=10.0.0.1/8", "prefix"),
        ("cursor=", "cursor"),
        ("page=2", "page"),
    ] {
        let r = t.get(&format!("/api/v1/bgp/rib?{q}")).await;
        assert_eq!(r.status, bad, "{q}: {}", r.body);
        assert_eq!(r.error().1.as_deref(), Some(field), "{q}: {}", r.body);
    }
}

#[tokio::test]
async fn conflicts_with_stored_state_are_409() {
    let t = TestApp::in_memory();
    let conflict = StatusCode::CONFLICT;
    put(&t, "/api/v1/bgp/policies/in", policy("in")).await;
    t.create(
        NEIGHBORS,
        json!({ "address": "192.0.2.1", "remote_as": 65001, "import_policy": "in" }),
    )
    .await;
    expect_error(
        &t,
        Method::POST,
        NEIGHBORS,
        Some(json!({ "address": "192.0.2.1", "remote_as": 65002 })),
        conflict,
        "conflict",
        "address",
    )
    .await;
    // The policy is in use: not deleted, the message names the neighbor.
    let r = t
        .call(Method::DELETE, "/api/v1/bgp/policies/in", None)
        .await;
    assert_eq!(r.status, conflict, "{}", r.body);
    assert_eq!(r.error(), ("conflict".into(), Some("name".into())));
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("192.0.2.1"),
        "{}",
        r.body
    );
    t.get_ok("/api/v1/bgp/policies/in").await;
    // Once no neighbor uses it, it goes.
    let r = t
        .call(
            Method::PATCH,
            "/api/v1/bgp/neighbors/192.0.2.1",
            Some(json!({ "import_policy": null })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = t
        .call(Method::DELETE, "/api/v1/bgp/policies/in", None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);

    t.create(NETWORKS, json!({ "prefix": "10.1.0.0/24" })).await;
    expect_error(
        &t,
        Method::POST,
        NETWORKS,
        Some(json!({ "prefix": "10.1.0.0/24" })),
        conflict,
        "conflict",
        "prefix",
    )
    .await;
}

#[tokio::test]
async fn without_a_speaker_state_and_rib_are_503() {
    let t = TestApp::in_memory();
    t.create(
        NEIGHBORS,
        json!({ "address": "192.0.2.1", "remote_as": 65001 }),
    )
    .await;
    for path in [
        "/api/v1/bgp/neighbors/192.0.2.1/state",
        "/api/v1/bgp/rib",
        "/api/v1/bgp/rib?prefix=10.0.0.0/8&limit=10",
        "/api/v1/bgp/summary",
    ] {
        let r = t.get(path).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert_eq!(r.error(), ("bgp_unavailable".into(), None), "{path}");
        assert_eq!(r.body["error"]["message"], "BGP speaker not running");
    }
    // A neighbor that is not configured is 404 whatever the speaker.
    let r = t.get("/api/v1/bgp/neighbors/192.0.2.9/state").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.error(), ("not_found".into(), Some("address".into())));
}

/// A speaker stand-in: one established session, a RIB of two routes paged
/// one at a time; records the queries it got.
#[derive(Default)]
struct FakeSpeaker {
    queries: Mutex<Vec<RibQuery>>,
}

fn route(prefix: &str, best: bool) -> RibRoute {
    let (a, l) = prefix.split_once('/').unwrap();
    RibRoute {
        prefix: Prefix::new(a.parse().unwrap(), l.parse().unwrap()).unwrap(),
        peer: Some("192.0.2.1".parse().unwrap()),
        best,
        multipath: false,
        next_hop: Some("192.0.2.1".parse().unwrap()),
        as_path: "65001 65010".into(),
        origin: "igp".into(),
        local_pref: Some(200),
        med: None,
        communities: vec!["65001:100".into()],
        stale: false,
    }
}

impl BgpStatus for FakeSpeaker {
    fn neighbor(&self, address: IpAddr) -> BoxFuture<'_, Result<NeighborStatus, StatusError>> {
        Box::pin(async move {
            Ok(NeighborStatus {
                address,
                state: SessionState::Established,
                uptime_secs: Some(42),
                remote_router_id: Some("192.0.2.1".parse().unwrap()),
                hold_time_secs: Some(90),
                families: vec![Family::Ipv4Unicast],
                graceful_restart_active: false,
                last_error: None,
                counters: NeighborCounters {
                    messages_received: 10,
                    updates_received: 3,
                    prefixes_received: 2,
                    prefixes_accepted: 1,
                    ..NeighborCounters::default()
                },
            })
        })
    }
    fn rib(&self, query: RibQuery) -> BoxFuture<'_, Result<RibPage, StatusError>> {
        self.queries.lock().unwrap().push(query.clone());
        Box::pin(async move {
            match query.cursor.as_deref() {
                None => Ok(RibPage {
                    routes: vec![route("10.1.0.0/24", true)],
                    next_cursor: Some("p2".into()),
                }),
                Some("p2") => Ok(RibPage {
                    routes: vec![route("10.2.0.0/24", false)],
                    next_cursor: None,
                }),
                Some(other) => Err(StatusError::BadCursor(other.into())),
            }
        })
    }
}

#[tokio::test]
async fn state_and_rib_come_from_the_speaker() {
    let store = spawn_store(Store::open_in_memory().unwrap()).unwrap();
    let speaker = Arc::new(FakeSpeaker::default());
    let router = app(AppState {
        store: store.clone(),
        token: ApiToken::new(TOKEN).unwrap(),
        engine: None,
        bgp: speaker.clone(),
    });
    let t = TestApp { router, store };
    t.create(
        NEIGHBORS,
        json!({ "address": "192.0.2.1", "remote_as": 65001 }),
    )
    .await;
    let s = t.get_ok("/api/v1/bgp/neighbors/192.0.2.1/state").await;
    assert_eq!(s["state"], "established");
    assert_eq!(s["uptime_secs"], 42);
    assert_eq!(s["families"], json!(["ipv4-unicast"]));
    assert_eq!(s["counters"]["prefixes_accepted"], 1);
    assert_eq!(s["counters"]["messages_sent"], 0);

    let p1 = t.get_ok("/api/v1/bgp/rib?prefix=10.0.0.0/8&limit=1").await;
    assert_eq!(p1["next_cursor"], "p2");
    let r = &p1["routes"][0];
    assert_eq!(r["prefix"], "10.1.0.0/24");
    assert_eq!(r["best"], true);
    assert_eq!(r["as_path"], "65001 65010");
    assert_eq!(r["communities"], json!(["65001:100"]));
    let p2 = t
        .get_ok("/api/v1/bgp/rib?prefix=10.0.0.0%2F8&limit=1&cursor=p2")
        .await;
    assert_eq!(p2["routes"][0]["prefix"], "10.2.0.0/24");
    assert!(p2.get("next_cursor").is_none(), "{p2}");
    let r = t.get("/api/v1/bgp/rib?cursor=stale").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error(), ("invalid_field".into(), Some("cursor".into())));

    let q = speaker.queries.lock().unwrap().clone();
    assert_eq!(q.len(), 3);
    assert_eq!(q[0].prefix.unwrap().to_string(), "10.0.0.0/8");
    assert_eq!((q[0].limit, q[0].cursor.as_deref()), (1, None));
    assert_eq!((q[1].limit, q[1].cursor.as_deref()), (1, Some("p2")));
    assert_eq!((q[2].limit, q[2].prefix), (100, None), "the default limit");
}

#[tokio::test]
async fn a_restart_keeps_the_bgp_state() {
    let tmp = TempDir::new("bgp-restart");
    let db = tmp.path().join("control.db");
    let t = TestApp::with_store(Store::open(&db).unwrap());
    put(
        &t,
        BGP,
        json!({ "asn": 4200000000u32, "router_id": "10.0.0.1", "listen_port": 1179 }),
    )
    .await;
    put(&t, "/api/v1/bgp/policies/in", policy("in")).await;
    t.create(
        NEIGHBORS,
        json!({ "address": "2001:db8::2", "remote_as": 65001, "import_policy": "in",
                "graceful_restart": true }),
    )
    .await;
    t.create(NETWORKS, json!({ "prefix": "10.1.0.0/24" })).await;
    let before = (
        t.get_ok(BGP).await,
        t.get_ok(NEIGHBORS).await,
        t.get_ok("/api/v1/bgp/policies").await,
        t.get_ok(NETWORKS).await,
    );
    let desired = t.store.subscribe_bgp().borrow().clone();
    t.store.close().await;
    drop(t);

    let t = TestApp::with_store(Store::open(&db).unwrap());
    let after = (
        t.get_ok(BGP).await,
        t.get_ok(NEIGHBORS).await,
        t.get_ok("/api/v1/bgp/policies").await,
        t.get_ok(NETWORKS).await,
    );
    assert_eq!(before, after);
    assert_eq!(after.0["asn"], 4200000000u32);
    // The speaker gets the stored state at start, before any change.
    let mut rx = t.store.subscribe_bgp();
    // The actor publishes before serving requests; one GET above proves it ran.
    assert_eq!(*rx.borrow_and_update(), desired);
}
