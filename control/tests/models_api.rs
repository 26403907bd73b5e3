//! The model registry API with the shipped model file: upload, list,
//! show, promote (model.bin appears in the runtime directory with the
//! file's bytes and the control block's model number bumps), a second
//! model, rollback (the first model's bytes back), deactivate, delete
//! (refused while active), bad bodies (400 with the parser's message),
//! duplicates (409), the re-publication at start and the active-model
//! gauge.

mod common;

use axum::http::{Method, StatusCode};
use common::{Resp, TempDir, TestApp, TOKEN};
use patronus_control::models::push::ModelInfoGauge;
use patronus_control::push::Pusher;
use patronus_control::state::{spawn_store_with, spawn_store_with_model_info};
use patronus_control::store::Store;
use patronus_shm::Subscriber;
use serde_json::Value;

const OCTET: &str = "application/octet-stream";

fn shipped() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../models/flow-mlp.bin"
    ))
    .expect("models/flow-mlp.bin")
}

/// A second valid model: the shipped one with one bias changed.
fn variant(delta: f32) -> Vec<u8> {
    let mut m = patronus_ml::model::from_bytes(&shipped()).unwrap();
    m.layers[0].b[0] += delta;
    patronus_ml::model::to_bytes(&m)
}

async fn upload(t: &TestApp, query: &str, bytes: Vec<u8>) -> Resp {
    t.raw(
        Method::POST,
        &format!("/api/v1/models{query}"),
        Some(TOKEN),
        Some(OCTET),
        bytes,
    )
    .await
}

async fn upload_ok(t: &TestApp, query: &str, bytes: Vec<u8>) -> Value {
    let r = upload(t, query, bytes).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body
}

async fn post(t: &TestApp, path: &str) -> Resp {
    t.call(Method::POST, path, None).await
}

fn ids_active(list: &Value) -> Vec<(i64, bool)> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["id"].as_i64().unwrap(), m["active"].as_bool().unwrap()))
        .collect()
}

/// A store actor publishing into `shm`, and an engine-side subscriber.
fn linked(shm: &std::path::Path, store: Store) -> (TestApp, Subscriber) {
    let sub = Subscriber::open(shm).unwrap();
    let pusher = Pusher::open(shm).unwrap();
    let t = TestApp::with_handle(spawn_store_with(store, Some(pusher)).unwrap());
    (t, sub)
}

#[tokio::test]
async fn upload_list_show_and_the_entry_describes_the_file() {
    let t = TestApp::in_memory();
    let bytes = shipped();
    let r = upload(&t, "?name=flow-v1", bytes.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let m = r.body;
    let id = m["id"].as_i64().unwrap();
    assert_eq!(
        r.headers["location"].to_str().unwrap(),
        format!("/api/v1/models/{id}")
    );
    let sha = patronus_ml::model::sha256_hex(&bytes).unwrap();
    let mlp = patronus_ml::model::from_bytes(&bytes).unwrap();
    assert_eq!(m["name"], "flow-v1");
    assert_eq!(m["version"], 1);
    assert_eq!(m["sha256"], sha.as_str());
    assert_eq!(m["size_bytes"], bytes.len() as u64);
    assert_eq!(m["active"], false);
    let dims: Vec<u64> = mlp.dims().iter().map(|&d| d as u64).collect();
    assert_eq!(m["dims"], serde_json::json!(dims));
    let classes: Vec<&str> = mlp.classes.iter().map(|c| c.label()).collect();
    assert_eq!(m["classes"], serde_json::json!(classes));
    assert!(m["uploaded_at"].as_u64().unwrap() > 1_600_000_000);
    assert!(m.get("bytes").is_none());

    assert_eq!(t.get_ok(&format!("/api/v1/models/{id}")).await, m);
    let second = upload_ok(&t, "", variant(0.5)).await;
    assert_eq!(second["version"], 2);
    assert!(second.get("name").is_none());
    let list = t.get_ok("/api/v1/models").await;
    assert_eq!(
        ids_active(&list),
        vec![(id, false), (second["id"].as_i64().unwrap(), false)]
    );
    // Versions are never reused, even after a delete.
    let r = t
        .call(
            Method::DELETE,
            &format!("/api/v1/models/{}", second["id"]),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(upload_ok(&t, "", variant(0.25)).await["version"], 3);
}

#[tokio::test]
async fn bad_bodies_are_400_with_the_parsers_message_and_change_nothing() {
    let t = TestApp::in_memory();
    let good = shipped();
    let g0 = t.generation().await;
    let mut wrong_magic = good.clone();
    wrong_magic[0] = b'X';
    let mut flipped = good.clone();
    flipped[100] ^= 0x01;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", Vec::new(), "empty body"),
        (
            "garbage",
            b"definitely not a model".to_vec(),
            "not a valid model file",
        ),
        (
            "truncated",
            good[..good.len() / 3].to_vec(),
            "not a valid model file",
        ),
        ("wrong magic", wrong_magic, "SHA-256 does not match"),
        ("flipped bit", flipped, "SHA-256 does not match"),
    ];
    for (what, body, message) in cases {
        let r = upload(&t, "", body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}: {}", r.body);
        assert_eq!(
            r.error(),
            ("invalid_field".into(), Some("body".into())),
            "{what}"
        );
        let text = r.body["error"]["message"].as_str().unwrap();
        assert!(text.contains(message), "{what}: {text}");
    }
    // A wrong magic with a matching digest: the parser's magic check.
    let mut body = good[..good.len() - 32].to_vec();
    body[..8].copy_from_slice(b"NOTMODEL");
    let digest = ring::digest::digest(&ring::digest::SHA256, &body);
    body.extend_from_slice(digest.as_ref());
    let r = upload(&t, "", body).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("magic"),
        "{}",
        r.body
    );
    let r = upload(&t, "?name=bad%20name", good.clone()).await;
    assert_eq!(r.error(), ("invalid_field".into(), Some("name".into())));
    let r = upload(&t, "?nmae=x", good.clone()).await;
    assert_eq!(r.error(), ("unknown_field".into(), Some("nmae".into())));
    let r = t
        .raw(
            Method::POST,
            "/api/v1/models",
            Some(TOKEN),
            Some("application/json"),
            good.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = t
        .raw(Method::POST, "/api/v1/models", None, Some(OCTET), good)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        t.get_ok("/api/v1/models").await["items"],
        serde_json::json!([])
    );
    assert_eq!(t.generation().await, g0, "nothing changed");
}

#[tokio::test]
async fn duplicates_are_409_naming_the_existing_model() {
    let t = TestApp::in_memory();
    let first = upload_ok(&t, "?name=a", shipped()).await;
    let r = upload(&t, "?name=b", shipped()).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    let text = r.body["error"]["message"].as_str().unwrap();
    assert!(text.contains(&format!("model {}", first["id"])), "{text}");
    assert_eq!(
        t.get_ok("/api/v1/models").await["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn unknown_ids_and_bad_ids() {
    let t = TestApp::in_memory();
    for path in ["/api/v1/models/7", "/api/v1/models/7/promote"] {
        let r = if path.ends_with("promote") {
            post(&t, path).await
        } else {
            t.get(path).await
        };
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(r.error(), ("not_found".into(), Some("id".into())));
    }
    let r = t.get("/api/v1/models/x").await;
    assert_eq!(r.error(), ("invalid_field".into(), Some("id".into())));
    let r = t.call(Method::DELETE, "/api/v1/models/0", None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = post(&t, "/api/v1/models/rollback").await;
    assert_eq!(r.status, StatusCode::CONFLICT, "nothing was ever promoted");
}

/// What model.bin holds: its number and the payload's SHA-256 (`none`
/// for the empty payload).
fn model_file(shm: &std::path::Path) -> (u64, String) {
    let bytes = std::fs::read(shm.join(patronus_shm::MODEL_FILE)).expect("model.bin");
    let f = patronus_shm::decode_model_file(&bytes).expect("a valid model.bin");
    (f.generation, digest(f.payload))
}

/// A payload named by its SHA-256 (short failure messages).
fn digest(payload: &[u8]) -> String {
    if payload.is_empty() {
        return "none".into();
    }
    patronus_ml::model::sha256_hex(payload).unwrap()
}

/// The engine's poll after the actor finished the previous request (it
/// answers before it publishes; a status call queues behind the push).
async fn poll(t: &TestApp, sub: &mut Subscriber) -> Option<(u64, String)> {
    t.generation().await;
    sub.poll_model()
        .unwrap()
        .map(|(n, payload)| (n, digest(&payload)))
}

#[tokio::test]
async fn promote_rollback_and_deactivate_push_model_bin() {
    let dir = TempDir::new("models-push");
    let shm = dir.path().join("shm");
    let (t, mut sub) = linked(&shm, Store::open_in_memory().unwrap());
    t.generation().await;
    // At start: "no model" is published.
    let (n0, none) = poll(&t, &mut sub).await.expect("published at start");
    assert_eq!(none, "none");
    assert_eq!(poll(&t, &mut sub).await, None);

    let one = shipped();
    let two = variant(1.0);
    let a = upload_ok(&t, "?name=one", one.clone()).await["id"]
        .as_i64()
        .unwrap();
    let b = upload_ok(&t, "?name=two", two.clone()).await["id"]
        .as_i64()
        .unwrap();
    assert_eq!(poll(&t, &mut sub).await, None, "uploads push nothing");

    let r = post(&t, &format!("/api/v1/models/{a}/promote")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["active"], true);
    let (n1, got) = poll(&t, &mut sub).await.expect("promotion pushed");
    assert!(n1 > n0);
    // model.bin carries the file's bytes exactly (its own SHA-256 trailer
    // matches the registry's and the bytes parse as the same model).
    assert_eq!(got, digest(&one), "model.bin carries the file's bytes");
    let raw = std::fs::read(shm.join(patronus_shm::MODEL_FILE)).unwrap();
    assert!(patronus_shm::decode_model_file(&raw).unwrap().payload == &one[..]);
    assert_eq!(model_file(&shm), (n1, digest(&one)));
    assert_eq!(sub.model_generation(), n1);
    // Promoting the active model again changes nothing.
    post(&t, &format!("/api/v1/models/{a}/promote")).await;
    assert_eq!(poll(&t, &mut sub).await, None);

    post(&t, &format!("/api/v1/models/{b}/promote")).await;
    let (n2, got) = poll(&t, &mut sub).await.expect("second promotion");
    assert!(n2 > n1);
    assert_eq!(got, digest(&two));
    assert_eq!(
        ids_active(&t.get_ok("/api/v1/models").await),
        vec![(a, false), (b, true)]
    );

    // The active model cannot be deleted.
    let r = t
        .call(Method::DELETE, &format!("/api/v1/models/{b}"), None)
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.error(), ("conflict".into(), Some("id".into())));

    let r = post(&t, "/api/v1/models/rollback").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["active"]["id"], a);
    let (n3, got) = poll(&t, &mut sub).await.expect("rollback pushed");
    assert!(n3 > n2);
    assert_eq!(got, digest(&one), "the first model's bytes are back");
    // Nothing before the first promotion.
    let r = post(&t, "/api/v1/models/rollback").await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(poll(&t, &mut sub).await, None);

    // Deactivate: no model; a rollback undoes it.
    let r = post(&t, "/api/v1/models/deactivate").await;
    assert_eq!(r.body, serde_json::json!({ "active": null }));
    let (n4, got) = poll(&t, &mut sub).await.expect("deactivation pushed");
    assert!(n4 > n3);
    assert_eq!(got, "none");
    let r = post(&t, "/api/v1/models/rollback").await;
    assert_eq!(r.body["active"]["id"], a);
    assert_eq!(poll(&t, &mut sub).await.map(|(_, p)| p), Some(digest(&one)));
    // Not active any more: b can go.
    let r = t
        .call(Method::DELETE, &format!("/api/v1/models/{b}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn repeated_rollbacks_walk_back_through_the_history() {
    let dir = TempDir::new("models-walk");
    let shm = dir.path().join("shm");
    let (t, mut sub) = linked(&shm, Store::open_in_memory().unwrap());
    let files = [shipped(), variant(1.0), variant(2.0)];
    let mut ids = Vec::new();
    for f in &files {
        let id = upload_ok(&t, "", f.clone()).await["id"].as_i64().unwrap();
        post(&t, &format!("/api/v1/models/{id}/promote")).await;
        ids.push(id);
    }
    for back in [1, 0] {
        let r = post(&t, "/api/v1/models/rollback").await;
        assert_eq!(r.body["active"]["id"], ids[back], "{}", r.body);
    }
    let mut last = None;
    while let Some((_, p)) = poll(&t, &mut sub).await {
        last = Some(p);
    }
    assert_eq!(last, Some(digest(&files[0])));
    assert_eq!(
        post(&t, "/api/v1/models/rollback").await.status,
        StatusCode::CONFLICT
    );
}

#[tokio::test]
async fn a_restarted_control_republishes_the_active_model() {
    let dir = TempDir::new("models-restart");
    let shm = dir.path().join("shm");
    let db = dir.path().join("control.db");
    let two = variant(3.0);
    {
        let (t, _sub) = linked(&shm, Store::open(&db).unwrap());
        let id = upload_ok(&t, "", two.clone()).await["id"].as_i64().unwrap();
        post(&t, &format!("/api/v1/models/{id}/promote")).await;
        t.store.close().await;
    }
    // The engine's view is lost (model.bin removed): a restart writes it
    // again from the store.
    std::fs::remove_file(shm.join(patronus_shm::MODEL_FILE)).unwrap();
    let (t, mut sub) = linked(&shm, Store::open(&db).unwrap());
    t.generation().await;
    let (n, got) = poll(&t, &mut sub).await.expect("re-published at start");
    assert_eq!(got, digest(&two));
    assert_eq!(model_file(&shm), (n, digest(&two)));
}

#[tokio::test]
async fn the_gauge_names_the_active_model() {
    let info = ModelInfoGauge::new().unwrap();
    let registry = prometheus::Registry::new();
    registry.register(info.collector()).unwrap();
    let store = Store::open_in_memory().unwrap();
    let t = TestApp::with_handle(spawn_store_with_model_info(store, None, info).unwrap());
    let text = || {
        let mut buf = Vec::new();
        prometheus::Encoder::encode(
            &prometheus::TextEncoder::new(),
            &registry.gather(),
            &mut buf,
        )
        .unwrap();
        String::from_utf8(buf).unwrap()
    };
    t.generation().await;
    assert!(
        !text().contains("patronus_model_active_info{"),
        "{}",
        text()
    );
    let m = upload_ok(&t, "", shipped()).await;
    post(&t, &format!("/api/v1/models/{}/promote", m["id"])).await;
    // The actor answers, then pushes: a later request queues behind it.
    t.generation().await;
    let want = format!(
        "patronus_model_active_info{{sha256=\"{}\",version=\"1\"}} 1",
        m["sha256"].as_str().unwrap()
    );
    assert!(text().contains(&want), "{}", text());
    post(&t, "/api/v1/models/deactivate").await;
    t.generation().await;
    assert!(
        !text().contains("patronus_model_active_info{"),
        "{}",
        text()
    );
}
