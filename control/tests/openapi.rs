//! The OpenAPI document matches the router: every served path and method is
//! documented, every documented operation is served, and every `$ref` resolves.

mod common;

use axum::http::{Method, StatusCode};
use serde_json::Value;

use common::TestApp;
use patronus_control::api::{openapi, paths};

const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "PATCH"];

fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "$ref" {
                    out.push(x.as_str().unwrap().to_owned());
                } else {
                    refs(x, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

#[tokio::test]
async fn served_routes_and_document_agree() {
    let t = TestApp::in_memory();
    let served_doc = t.get_ok(paths::OPENAPI).await;
    assert_eq!(&served_doc, openapi::document());
    let doc_paths = served_doc["paths"].as_object().unwrap();

    for (path, methods) in paths::ALL {
        let entry = doc_paths
            .get(*path)
            .unwrap_or_else(|| panic!("{path} not documented"));
        for m in *methods {
            assert!(
                entry.get(m.to_lowercase()).is_some(),
                "{m} {path} not documented"
            );
        }
    }
    assert_eq!(
        doc_paths.len(),
        paths::ALL.len(),
        "documented paths that are not in paths::ALL"
    );

    // Probe the router: a method is served iff it is documented.
    for (path, entry) in doc_paths {
        let concrete = path.replace("{org}", "default").replace("{id}", "1");
        for m in METHODS {
            let body = matches!(*m, "POST" | "PUT" | "PATCH").then(|| serde_json::json!({}));
            let r = t
                .call(Method::from_bytes(m.as_bytes()).unwrap(), &concrete, body)
                .await;
            let served = r.status != StatusCode::METHOD_NOT_ALLOWED
                && !(r.status == StatusCode::NOT_FOUND && r.error().0 == "no_such_path");
            let documented = entry.get(m.to_lowercase()).is_some();
            assert_eq!(
                served, documented,
                "{m} {path}: served={served} documented={documented} ({})",
                r.status
            );
            if documented {
                let op = &entry[m.to_lowercase()];
                assert!(
                    op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                    "{m} {path} has no responses"
                );
                if *path != paths::OPENAPI {
                    assert!(
                        op["responses"].get("401").is_some(),
                        "{m} {path} does not document 401"
                    );
                }
            }
        }
    }

    let mut all = Vec::new();
    refs(&served_doc, &mut all);
    assert!(all.len() > 20);
    for r in all {
        let pointer = r.strip_prefix('#').expect("local ref");
        assert!(served_doc.pointer(pointer).is_some(), "dangling $ref {r}");
    }
}
