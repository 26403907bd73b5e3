//! The WAN API: paths and policies built from the engine's `wan.`
//! counters (a snapshot set in the test), 503 without an engine, 401
//! without the token, and the answers' fields exactly as the OpenAPI
//! document describes them.

mod common;

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use common::TestApp;
use patronus_control::api::openapi;
use patronus_control::metrics::{EngineSnapshot, LatestSnapshot};

const PATHS: &str = "/api/v1/wan/paths";
const POLICIES: &str = "/api/v1/wan/policies";

fn wan_snapshot() -> EngineSnapshot {
    let wan = [
        ("path.fibre.state", 1),
        ("path.fibre.rtt_us", 12_500),
        ("path.fibre.rtt_p95_us", 20_000),
        ("path.fibre.jitter_us", 750),
        ("path.fibre.loss_ppm", 0),
        ("path.fibre.probes_sent", 600),
        ("path.fibre.probes_replied", 600),
        ("path.fibre.probes_reflected", 598),
        ("path.fibre.transitions", 1),
        ("path.fibre.tx_packets", 9_000),
        ("path.fibre.tx_bytes", 4_500_000),
        ("path.fibre.fec_active", 0),
        ("path.lte.state", 2),
        ("path.lte.rtt_us", 80_000),
        ("path.lte.loss_ppm", 1_000_000),
        ("path.lte.fec_active", 1),
        ("path.lte.fec_recovered", 6),
        ("path.lte.fec_unrecoverable", 1),
        ("policy.voice.path.lte.packets", 50),
        ("policy.voice.path.fibre.packets", 700),
        ("policy.voice.moves", 2),
        ("policy.bulk.path.lte.packets", 300),
        ("compress_in_bytes", 100_000),
        ("compress_out_bytes", 40_000),
        ("compress_skipped", 12),
        ("decompress_errors", 1),
        ("bad_packets", 4),
    ]
    .iter()
    .map(|(n, v)| ((*n).to_owned(), *v))
    .collect();
    EngineSnapshot {
        wan,
        ..Default::default()
    }
}

/// Resolves `{"$ref": "#/components/schemas/X"}`.
fn resolve(schema: &Value) -> &Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.rsplit('/').next().unwrap();
            &openapi::document()["components"]["schemas"][name]
        }
        None => schema,
    }
}

/// Every object in `v` has exactly its schema's required properties (all
/// of them are required here) and nothing else, recursively.
fn conforms(v: &Value, schema: &Value, at: &str) {
    let schema = resolve(schema);
    match v {
        Value::Object(m) => {
            let props = schema["properties"]
                .as_object()
                .unwrap_or_else(|| panic!("{at}: schema has no properties: {schema}"));
            let mut required: Vec<&str> = schema["required"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap())
                .collect();
            required.sort_unstable();
            let mut keys: Vec<&str> = m.keys().map(String::as_str).collect();
            keys.sort_unstable();
            assert_eq!(keys, required, "{at}");
            for (k, x) in m {
                conforms(x, &props[k], &format!("{at}.{k}"));
            }
        }
        Value::Array(items) => {
            for (i, x) in items.iter().enumerate() {
                conforms(x, &schema["items"], &format!("{at}[{i}]"));
            }
        }
        Value::String(s) => {
            if let Some(e) = schema["enum"].as_array() {
                assert!(e.contains(&json!(s)), "{at}: {s} not in {e:?}");
            }
        }
        Value::Bool(_) => assert_eq!(schema["type"], "boolean", "{at}"),
        Value::Number(n) => {
            let t = schema["type"].as_str().unwrap();
            assert!(
                t == "number" || (t == "integer" && n.is_u64()),
                "{at}: {n} as {t}"
            );
        }
        Value::Null => assert_eq!(schema["nullable"], true, "{at}"),
    }
}

fn response_schema(path: &str) -> &'static Value {
    &openapi::document()["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
        ["schema"]
}

#[tokio::test]
async fn paths_and_policies_come_from_the_engine_counters() {
    let t = TestApp::with_engine(Some(Arc::new(LatestSnapshot::new(Some(wan_snapshot())))));
    let paths = t.get_ok(PATHS).await;
    conforms(&paths, response_schema(PATHS), "paths");
    assert_eq!(paths["bad_packets"], 4);
    let names: Vec<&str> = paths["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["fibre", "lte"]);
    assert_eq!(
        paths["paths"][0],
        json!({ "name": "fibre", "state": "alive", "rtt_ms": 12.5, "rtt_p95_ms": 20.0,
            "jitter_ms": 0.75, "loss_pct": 0.0, "probes_sent": 600, "probes_replied": 600,
            "probes_reflected": 598, "transitions": 1, "tx_packets": 9000, "tx_bytes": 4_500_000,
            "fec_active": false, "fec_data_sent": 0, "fec_parity_sent": 0, "fec_recovered": 0,
            "fec_unrecoverable": 0 })
    );
    let lte = &paths["paths"][1];
    assert_eq!(lte["state"], "dead");
    assert_eq!(lte["loss_pct"], 100.0);
    assert_eq!(lte["fec_active"], true);
    assert_eq!(lte["fec_recovered"], 6);

    let policies = t.get_ok(POLICIES).await;
    conforms(&policies, response_schema(POLICIES), "policies");
    assert_eq!(
        policies,
        json!({
            "policies": [
                { "name": "bulk", "moves": 0, "paths": [{ "path": "lte", "packets": 300 }] },
                { "name": "voice", "moves": 2, "paths": [
                    { "path": "fibre", "packets": 700 }, { "path": "lte", "packets": 50 } ] }
            ],
            "compression": { "in_bytes": 100_000, "out_bytes": 40_000, "skipped": 12,
                "ratio": 0.4, "saved_bytes": 60_000, "decompress_errors": 1 },
            "duplication": { "sent": 0, "dropped": 0 }
        })
    );
}

#[tokio::test]
async fn an_engine_without_wan_has_empty_lists() {
    let t = TestApp::with_engine(Some(Arc::new(LatestSnapshot::new(Some(
        EngineSnapshot::default(),
    )))));
    let paths = t.get_ok(PATHS).await;
    conforms(&paths, response_schema(PATHS), "paths");
    assert_eq!(paths, json!({ "paths": [], "bad_packets": 0 }));
    let policies = t.get_ok(POLICIES).await;
    conforms(&policies, response_schema(POLICIES), "policies");
    assert_eq!(policies["policies"], json!([]));
    assert!(policies["compression"]["ratio"].is_null());
}

#[tokio::test]
async fn no_engine_is_503_and_no_token_is_401() {
    // No engine link, and a link with no live engine behind it.
    for t in [
        TestApp::in_memory(),
        TestApp::with_engine(Some(Arc::new(LatestSnapshot::new(None)))),
    ] {
        for path in [PATHS, POLICIES] {
            let r = t.get(path).await;
            assert_eq!(
                (r.status, r.error().0),
                (StatusCode::SERVICE_UNAVAILABLE, "engine_unavailable".into()),
                "{path}: {}",
                r.body
            );
            assert!(r.body["error"]["message"].is_string());
        }
    }
    let t = TestApp::with_engine(Some(Arc::new(LatestSnapshot::new(Some(wan_snapshot())))));
    for path in [PATHS, POLICIES] {
        let r = t.raw(Method::GET, path, None, None, Vec::new()).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}");
        assert!(r.body.get("paths").is_none() && r.body.get("policies").is_none());
        let r = t
            .raw(Method::GET, path, Some("wrong"), None, Vec::new())
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}");
        // Read-only.
        let r = t.call(Method::POST, path, Some(json!({}))).await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{path}");
    }
}
