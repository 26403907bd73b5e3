//! Test helpers: an app on an in-memory (or file) store driven with `oneshot`,
//! and a temporary directory removed on drop.
#![allow(dead_code)]

pub mod cli;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use patronus_control::auth::ApiToken;
use patronus_control::metrics::EngineSource;
use patronus_control::state::{spawn_store, StoreHandle};
use patronus_control::store::Store;
use patronus_control::{app, AppState};

pub const TOKEN: &str = "test-token-0123456789abcdef";

pub struct TestApp {
    pub router: Router,
    pub store: StoreHandle,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
}

impl Resp {
    /// `(code, field)` of an error body.
    pub fn error(&self) -> (String, Option<String>) {
        let e = &self.body["error"];
        (
            e["code"].as_str().unwrap_or("<none>").to_owned(),
            e["field"].as_str().map(str::to_owned),
        )
    }
}

impl TestApp {
    pub fn in_memory() -> TestApp {
        Self::with_store(Store::open_in_memory().expect("in-memory store"))
    }

    pub fn with_store(store: Store) -> TestApp {
        Self::with_store_and_engine(store, None)
    }

    /// An in-memory store and the given engine view.
    pub fn with_engine(engine: Option<Arc<dyn EngineSource>>) -> TestApp {
        Self::with_store_and_engine(Store::open_in_memory().expect("in-memory store"), engine)
    }

    /// An app over an actor already running (e.g. one with a pusher).
    pub fn with_handle(store: StoreHandle) -> TestApp {
        let router = app(AppState {
            store: store.clone(),
            token: ApiToken::new(TOKEN).unwrap(),
            engine: None,
            bgp: std::sync::Arc::new(patronus_control::bgp::status::NoSpeaker),
        });
        TestApp { router, store }
    }

    pub fn with_store_and_engine(store: Store, engine: Option<Arc<dyn EngineSource>>) -> TestApp {
        let store = spawn_store(store).expect("store actor");
        let router = app(AppState {
            store: store.clone(),
            token: ApiToken::new(TOKEN).unwrap(),
            engine,
            bgp: std::sync::Arc::new(patronus_control::bgp::status::NoSpeaker),
        });
        TestApp { router, store }
    }

    /// Sends a request with the given bearer token (if any), content type and body.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Resp {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        let resp = self
            .router
            .clone()
            .oneshot(req.body(Body::from(body)).unwrap())
            .await
            .expect("router is infallible");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("response to {path} is not JSON ({e}): {bytes:?}"))
        };
        Resp {
            status,
            headers,
            body,
        }
    }

    /// An authenticated JSON request.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        let (ct, bytes) = match body {
            Some(v) => (Some("application/json"), serde_json::to_vec(&v).unwrap()),
            None => (None, Vec::new()),
        };
        self.raw(method, path, Some(TOKEN), ct, bytes).await
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.call(Method::GET, path, None).await
    }

    /// GET that must succeed; returns the body.
    pub async fn get_ok(&self, path: &str) -> Value {
        let r = self.get(path).await;
        assert_eq!(r.status, StatusCode::OK, "GET {path}: {}", r.body);
        r.body
    }

    /// POST that must return 201; returns the body.
    pub async fn create(&self, path: &str, body: Value) -> Value {
        let r = self.call(Method::POST, path, Some(body.clone())).await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "POST {path} {body}: {}",
            r.body
        );
        r.body
    }

    pub async fn generation(&self) -> u64 {
        self.get_ok("/api/v1/status").await["generation"]
            .as_u64()
            .expect("generation is a number")
    }

    /// Everything the API shows of the desired state, for before/after comparisons.
    pub async fn snapshot(&self) -> Value {
        let orgs = self.get_ok("/api/v1/orgs").await;
        let mut all = serde_json::Map::new();
        for o in orgs["items"].as_array().unwrap() {
            let name = o["name"].as_str().unwrap();
            let ifs = self
                .get_ok(&format!("/api/v1/orgs/{name}/interfaces"))
                .await;
            let routes = self.get_ok(&format!("/api/v1/orgs/{name}/routes")).await;
            all.insert(
                name.into(),
                serde_json::json!({ "interfaces": ifs, "routes": routes }),
            );
        }
        Value::Object(all)
    }
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "patronus-control-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
