//! API tests through `app(state).oneshot(request)`: auth, CRUD, a table of bad
//! requests with exact statuses and error fields, atomicity, generation
//! counting, restart durability and the token file.

mod common;

use axum::http::{header, Method, StatusCode};
use serde_json::{json, Value};

use common::{TempDir, TestApp, TOKEN};
use patronus_control::auth::{load_or_create_token, TokenSource};
use patronus_control::store::Store;

#[tokio::test]
async fn calls_need_the_bearer_token() {
    let t = TestApp::in_memory();
    for path in [
        "/api/v1/status",
        "/api/v1/routes",
        "/api/v1/orgs/default/interfaces",
        "/api/v1/no-such",
    ] {
        let r = t.raw(Method::GET, path, None, None, vec![]).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path} without token");
        assert_eq!(r.error(), ("unauthorized".into(), None));
        assert_eq!(r.headers[header::WWW_AUTHENTICATE], "Bearer");
        let r = t
            .raw(
                Method::GET,
                path,
                Some("wrong-token-0123456789"),
                None,
                vec![],
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{path} with wrong token"
        );
        // Same length as the real one, differing in the last byte.
        let near = format!("{}X", &TOKEN[..TOKEN.len() - 1]);
        let r = t.raw(Method::GET, path, Some(&near), None, vec![]).await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{path} with near-miss token"
        );
    }
    // A write without a token must not happen.
    let r = t
        .raw(
            Method::POST,
            "/api/v1/interfaces",
            None,
            Some("application/json"),
            br#"{"port":"lan0","address":"10.1.0.1/24"}"#.to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(t.get_ok("/api/v1/interfaces").await["items"], json!([]));
    // Basic auth with the token as password is not bearer auth.
    let mut req = axum::http::Request::builder().uri("/api/v1/status");
    req = req.header(header::AUTHORIZATION, format!("Basic {TOKEN}"));
    let resp = tower::ServiceExt::oneshot(
        t.router.clone(),
        req.body(axum::body::Body::empty()).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // The right token works; the OpenAPI document needs none.
    assert_eq!(t.get("/api/v1/status").await.status, StatusCode::OK);
    let r = t
        .raw(Method::GET, "/api/v1/openapi.json", None, None, vec![])
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["openapi"], "3.0.3");
}

#[tokio::test]
async fn status_and_counters_before_the_engine_attaches() {
    let t = TestApp::in_memory();
    let s = t.get_ok("/api/v1/status").await;
    assert_eq!(s["engine"]["attached"], false);
    assert_eq!(s["engine"]["ports"], json!([]));
    assert_eq!(s["generation"], 0);
    assert_eq!(
        t.get_ok("/api/v1/counters").await,
        json!({ "attached": false })
    );
    assert_eq!(
        t.get_ok("/api/v1/orgs").await,
        json!({ "items": [{ "name": "default" }] })
    );
}

#[tokio::test]
async fn interface_crud() {
    let t = TestApp::in_memory();
    let lan = t
        .create(
            "/api/v1/orgs/default/interfaces",
            json!({ "port": "lan0", "address": "10.1.0.1/24" }),
        )
        .await;
    assert_eq!(
        lan,
        json!({ "id": 1, "org": "default", "port": "lan0", "address": "10.1.0.1/24", "vlan": null })
    );
    let r = t
        .call(
            Method::POST,
            "/api/v1/interfaces",
            Some(json!({ "port": "lan0", "address": "10.9.0.1/24", "vlan": 100 })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(
        r.headers[header::LOCATION],
        "/api/v1/orgs/default/interfaces/2"
    );
    assert_eq!(r.body["vlan"], 100);
    assert_eq!(t.get_ok("/api/v1/interfaces/2").await, r.body);
    assert_eq!(t.get_ok("/api/v1/orgs/default/interfaces/1").await, lan);
    let list = t.get_ok("/api/v1/interfaces").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 2);

    let r = t
        .call(
            Method::PUT,
            "/api/v1/interfaces/1",
            Some(json!({ "port": "lan1", "address": "10.1.0.2/16" })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body,
        json!({ "id": 1, "org": "default", "port": "lan1", "address": "10.1.0.2/16", "vlan": null })
    );
    assert_eq!(t.get_ok("/api/v1/interfaces/1").await, r.body);

    let r = t
        .call(Method::DELETE, "/api/v1/orgs/default/interfaces/1", None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(r.body, Value::Null);
    assert_eq!(
        t.get("/api/v1/interfaces/1").await.status,
        StatusCode::NOT_FOUND
    );
    // Ids are never reused.
    let again = t
        .create(
            "/api/v1/interfaces",
            json!({ "port": "lan0", "address": "10.1.0.1/24" }),
        )
        .await;
    assert_eq!(again["id"], 3);
}

#[tokio::test]
async fn route_crud() {
    let t = TestApp::in_memory();
    t.create(
        "/api/v1/interfaces",
        json!({ "port": "wan0", "address": "10.2.0.1/24" }),
    )
    .await;
    t.create(
        "/api/v1/interfaces",
        json!({ "port": "wan1", "address": "10.3.0.1/24" }),
    )
    .await;
    let dflt = t
        .create("/api/v1/routes", json!({ "prefix": "0.0.0.0/0", "next_hops": [{ "via": "10.2.0.254" }, { "via": "10.3.0.254" }] }))
        .await;
    assert_eq!(
        dflt,
        json!({ "id": 1, "org": "default", "prefix": "0.0.0.0/0",
                "next_hops": [{ "via": "10.2.0.254" }, { "via": "10.3.0.254" }], "blackhole": false })
    );
    let bh = t
        .create(
            "/api/v1/orgs/default/routes",
            json!({ "prefix": "192.168.0.0/16", "blackhole": true }),
        )
        .await;
    assert_eq!(bh["next_hops"], json!([]));
    assert_eq!(bh["blackhole"], true);
    assert_eq!(t.get_ok("/api/v1/routes/1").await, dflt);
    assert_eq!(t.get_ok("/api/v1/routes").await["items"], json!([dflt, bh]));

    let r = t
        .call(
            Method::PUT,
            "/api/v1/routes/1",
            Some(json!({ "prefix": "0.0.0.0/0", "next_hops": [{ "via": "10.3.0.9" }] })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["next_hops"], json!([{ "via": "10.3.0.9" }]));
    assert_eq!(t.get_ok("/api/v1/routes/1").await, r.body);

    // Replace the whole set: 0.0.0.0/0 keeps its id, the blackhole goes, 10/8 is new.
    let r = t
        .call(
            Method::PUT,
            "/api/v1/routes",
            Some(json!({ "routes": [
            { "prefix": "10.0.0.0/8", "next_hops": [{ "via": "10.2.0.7" }] },
            { "prefix": "0.0.0.0/0", "next_hops": [{ "via": "10.2.0.254" }] },
        ] })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let items = t.get_ok("/api/v1/routes").await["items"].clone();
    assert_eq!(r.body["items"], items);
    let pairs: Vec<(i64, String)> = items
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_i64().unwrap(),
                r["prefix"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        pairs,
        vec![(1, "0.0.0.0/0".into()), (3, "10.0.0.0/8".into())]
    );

    assert_eq!(
        t.call(Method::DELETE, "/api/v1/routes/3", None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        t.get("/api/v1/routes/3").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        t.get_ok("/api/v1/routes").await["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn organizations_separate_state() {
    let t = TestApp::in_memory();
    let r = t
        .call(
            Method::POST,
            "/api/v1/orgs",
            Some(json!({ "name": "acme" })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.headers[header::LOCATION], "/api/v1/orgs/acme");
    assert_eq!(
        t.get_ok("/api/v1/orgs/acme").await,
        json!({ "name": "acme" })
    );
    // The same subnet in two organizations is fine (on different VLANs).
    t.create(
        "/api/v1/orgs/acme/interfaces",
        json!({ "port": "lan0", "vlan": 10, "address": "10.1.0.1/24" }),
    )
    .await;
    t.create(
        "/api/v1/interfaces",
        json!({ "port": "lan0", "address": "10.1.0.1/24" }),
    )
    .await;
    let acme_route = t
        .create(
            "/api/v1/orgs/acme/routes",
            json!({ "prefix": "10.8.0.0/16", "next_hops": [{ "via": "10.1.0.5" }] }),
        )
        .await;
    assert_eq!(acme_route["org"], "acme");
    assert_eq!(t.get_ok("/api/v1/routes").await["items"], json!([]));
    // A route id of another organization is not visible here.
    let id = acme_route["id"].as_i64().unwrap();
    let r = t.get(&format!("/api/v1/routes/{id}")).await;
    assert_eq!(
        (r.status, r.error()),
        (
            StatusCode::NOT_FOUND,
            ("not_found".into(), Some("id".into()))
        )
    );
    let r = t.call(Method::DELETE, "/api/v1/orgs/acme", None).await;
    assert_eq!(
        (r.status, r.error().1),
        (StatusCode::CONFLICT, Some("org".into()))
    );
    assert_eq!(
        t.call(
            Method::DELETE,
            &format!("/api/v1/orgs/acme/routes/{id}"),
            None
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        t.call(Method::DELETE, "/api/v1/orgs/acme/interfaces/1", None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        t.call(Method::DELETE, "/api/v1/orgs/acme", None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        t.get("/api/v1/orgs/acme").await.status,
        StatusCode::NOT_FOUND
    );
}

/// One bad request and what it must produce.
struct Bad {
    method: Method,
    path: &'static str,
    content_type: Option<&'static str>,
    body: String,
    status: StatusCode,
    code: &'static str,
    field: Option<&'static str>,
}

fn bad(
    method: Method,
    path: &'static str,
    body: &str,
    status: u16,
    code: &'static str,
    field: Option<&'static str>,
) -> Bad {
    Bad {
        method,
        path,
        content_type: Some("application/json"),
        body: body.to_owned(),
        status: StatusCode::from_u16(status).unwrap(),
        code,
        field,
    }
}

#[tokio::test]
async fn bad_requests_get_exact_statuses_and_fields_and_change_nothing() {
    use Method as M;
    let t = TestApp::in_memory();
    t.create(
        "/api/v1/interfaces",
        json!({ "port": "wan0", "address": "10.2.0.1/24" }),
    )
    .await;
    t.create(
        "/api/v1/interfaces",
        json!({ "port": "lan0", "address": "10.1.0.1/24" }),
    )
    .await;
    t.create(
        "/api/v1/routes",
        json!({ "prefix": "0.0.0.0/0", "next_hops": [{ "via": "10.2.0.254" }] }),
    )
    .await;
    let before = t.snapshot().await;
    let generation = t.generation().await;

    let big = format!(r#"{{"prefix": "{}"}}"#, "x".repeat(2 << 20));
    let mut cases = vec![
        // Body syntax and shape.
        bad(
            M::POST,
            "/api/v1/routes",
            r#"{"prefix": "10.0.0.0/8""#,
            400,
            "invalid_json",
            None,
        ),
        bad(M::POST, "/api/v1/routes", "", 400, "invalid_json", None),
        bad(
            M::POST,
            "/api/v1/routes",
            r#"{"prefix": "10.0.0.0/8", "blackhole": true} x"#,
            400,
            "invalid_json",
            None,
        ),
        bad(
            M::POST,
            "/api/v1/routes",
            r#"{"prefix": "10.0.0.0/8", "blackhole": true, "colour": "red"}"#,
            400,
            "unknown_field",
            Some("colour"),
        ),
        bad(
            M::POST,
            "/api/v1/routes",
            r#"{"prefix": "10.0.0.0/8", "next_hops": [{"via": "10.2.0.9", "weight": 2}]}"#,
            400,
            "unknown_field",
            Some("next_hops[0].weight"),
        ),
        bad(
            M::POST,
            "/api/v1/routes",
            r#"{"next_hops": [{"via": "10.2.0.9"}]}"#,
            400,
            "missing_field",
            Some("prefix"),
        ),
        bad(
            M::POST,
            "/api/v1/routes",
            r#"{"prefix": 10}"#,
            400,
            "invalid_field",
            Some("prefix"),
        ),
        bad(
            M::POST,
            "/api/v1/routes",
            r#"{"prefix": "10.0.0.0/8", "blackhole": "yes"}"#,
            400,
            "invalid_field",
            Some("blackhole"),
        ),
        bad(
            M::POST,
            "/api/v1/routes",
            r#"["10.0.0.0/8"]"#,
            400,
            "invalid_field",
            None,
        ),
        // Route rules.
        bad(
            M::POST,
            "/api/v1/routes",
            r#"{"prefix": "10.0.0.1/8", "blackhole": true}"#,
            400,
            "invalid_field",
            Some("prefix"),
        ),
        bad(
            M::POST,
            "/api/v1/routes",
            r#"{"prefix": "10.0.0.0/33", "blackhole": true}"#,
            400,
            "invalid_field",
            Some("prefix"),
        ),
        bad(
            M::POST,
            "/api/v1/routes",
            r#"{"prefix": "10.0.0.0", "blackhole": true}"#,
            400,
            "invalid_field",
            Some("prefix"),
        ),
        bad(
            M::POST,
            "/api/v1/routes",
            r#"{"prefix": "300.0.0.0/8", "blackhole": true}"#,
            400,
            "invalid_field",
            Some("prefix"),
        ),
        bad(
            M::POST,
            "/api/v1/routes",
            r#"{"prefix": "10.0.0.0/8"}"#,
            400,
            "invalid_field",
            Some("next_hops"),
        ),
        bad(
            M::POST,
            "/api/v1/routes",
            r#"{"prefix": "10.0.0.0/8", "blackhole": true, "next_hops": [{"via": "10.2.0.9"}]}"#,
            400,
            "invalid_field",
            Some("next_hops"),
        ),
        bad(
            M::POST,
            "/api/v1/routes",
            r#"{"prefix": "10.0.0.0/8", "next_hops": [{"via": "10.7.0.9"}]}"#,
            400,
            "invalid_field",
            Some("next_hops[0].via"),
        ),
        bad(
            M::POST,
            "/api/v1/routes",
            r#"{"prefix": "10.0.0.0/8", "next_hops": [{"via": "10.2.0.9"}, {"via": "10.7.0.9"}]}"#,
            400,
            "invalid_field",
            Some("next_hops[1].via"),
        ),
        bad(
            M::POST,
            "/api/v1/routes",
            r#"{"prefix": "10.0.0.0/8", "next_hops": [{"via": "gateway"}]}"#,
            400,
            "invalid_field",
            Some("next_hops[0].via"),
        ),
        bad(
            M::POST,
            "/api/v1/routes",
            r#"{"prefix": "10.0.0.0/8", "next_hops": [{"via": "10.2.0.1"}]}"#,
            400,
            "invalid_field",
            Some("next_hops[0].via"),
        ),
        bad(
            M::POST,
            "/api/v1/routes",
            r#"{"prefix": "0.0.0.0/0", "next_hops": [{"via": "10.1.0.9"}]}"#,
            409,
            "conflict",
            Some("prefix"),
        ),
        bad(
            M::PUT,
            "/api/v1/routes/1",
            r#"{"prefix": "0.0.0.0/0", "next_hops": [{"via": "10.9.0.9"}]}"#,
            400,
            "invalid_field",
            Some("next_hops[0].via"),
        ),
        bad(
            M::PUT,
            "/api/v1/routes/99",
            r#"{"prefix": "0.0.0.0/0", "blackhole": true}"#,
            404,
            "not_found",
            Some("id"),
        ),
        // Whole-set replacement: the first bad entry is named, nothing applied.
        bad(
            M::PUT,
            "/api/v1/routes",
            r#"{"routes": [{"prefix": "10.0.0.0/8", "blackhole": true}, {"prefix": "10.0.0.1/8", "blackhole": true}]}"#,
            400,
            "invalid_field",
            Some("routes[1].prefix"),
        ),
        bad(
            M::PUT,
            "/api/v1/routes",
            r#"{"routes": [{"prefix": "10.0.0.0/8", "blackhole": true}, {"prefix": "10.0.0.0/8", "blackhole": true}]}"#,
            409,
            "conflict",
            Some("routes[1].prefix"),
        ),
        bad(
            M::PUT,
            "/api/v1/routes",
            r#"{"routes": [{"prefix": "10.0.0.0/8", "blackhole": true}, {"prefix": "0.0.0.0/0", "next_hops": [{"via": "10.9.9.9"}]}]}"#,
            400,
            "invalid_field",
            Some("routes[1].next_hops[0].via"),
        ),
        bad(
            M::PUT,
            "/api/v1/routes",
            r#"{"routes": [{"prefix": "10.0.0.0/8", "blackhole": true, "metric": 5}]}"#,
            400,
            "unknown_field",
            Some("routes[0].metric"),
        ),
        bad(
            M::PUT,
            "/api/v1/routes",
            r#"{"route": []}"#,
            400,
            "unknown_field",
            Some("route"),
        ),
        // Ids and organizations.
        bad(
            M::DELETE,
            "/api/v1/routes/99",
            "",
            404,
            "not_found",
            Some("id"),
        ),
        bad(
            M::DELETE,
            "/api/v1/routes/abc",
            "",
            400,
            "invalid_field",
            Some("id"),
        ),
        bad(
            M::DELETE,
            "/api/v1/routes/0",
            "",
            400,
            "invalid_field",
            Some("id"),
        ),
        bad(
            M::GET,
            "/api/v1/routes/-1",
            "",
            400,
            "invalid_field",
            Some("id"),
        ),
        bad(
            M::GET,
            "/api/v1/orgs/nope/routes",
            "",
            404,
            "not_found",
            Some("org"),
        ),
        bad(
            M::POST,
            "/api/v1/orgs/nope/routes",
            r#"{"prefix": "10.0.0.0/8", "blackhole": true}"#,
            404,
            "not_found",
            Some("org"),
        ),
        bad(
            M::DELETE,
            "/api/v1/orgs/nope/interfaces/1",
            "",
            404,
            "not_found",
            Some("org"),
        ),
        bad(
            M::GET,
            "/api/v1/orgs/nope",
            "",
            404,
            "not_found",
            Some("org"),
        ),
        bad(
            M::DELETE,
            "/api/v1/orgs/default",
            "",
            409,
            "conflict",
            Some("org"),
        ),
        bad(
            M::POST,
            "/api/v1/orgs",
            r#"{"name": "Not A Label"}"#,
            400,
            "invalid_field",
            Some("name"),
        ),
        bad(
            M::POST,
            "/api/v1/orgs",
            r#"{"name": "default"}"#,
            409,
            "conflict",
            Some("name"),
        ),
        // Interface rules.
        bad(
            M::POST,
            "/api/v1/interfaces",
            r#"{"port": "lan9", "address": "10.5.0.1/24", "vlan": 4095}"#,
            400,
            "invalid_field",
            Some("vlan"),
        ),
        bad(
            M::POST,
            "/api/v1/interfaces",
            r#"{"port": "lan9", "address": "10.5.0.1/24", "vlan": 0}"#,
            400,
            "invalid_field",
            Some("vlan"),
        ),
        bad(
            M::POST,
            "/api/v1/interfaces",
            r#"{"port": "lan9", "address": "10.5.0.1/24", "vlan": -1}"#,
            400,
            "invalid_field",
            Some("vlan"),
        ),
        bad(
            M::POST,
            "/api/v1/interfaces",
            r#"{"port": "lan9", "address": "10.5.0.0/24"}"#,
            400,
            "invalid_field",
            Some("address"),
        ),
        bad(
            M::POST,
            "/api/v1/interfaces",
            r#"{"port": "lan9", "address": "10.5.0.1/33"}"#,
            400,
            "invalid_field",
            Some("address"),
        ),
        bad(
            M::POST,
            "/api/v1/interfaces",
            r#"{"port": "a-port-name-that-is-too-long", "address": "10.5.0.1/24"}"#,
            400,
            "invalid_field",
            Some("port"),
        ),
        bad(
            M::POST,
            "/api/v1/interfaces",
            r#"{"port": "lan9"}"#,
            400,
            "missing_field",
            Some("address"),
        ),
        bad(
            M::POST,
            "/api/v1/interfaces",
            r#"{"port": "wan0", "address": "10.5.0.1/24"}"#,
            409,
            "conflict",
            Some("port"),
        ),
        bad(
            M::POST,
            "/api/v1/interfaces",
            r#"{"port": "lan9", "address": "10.2.0.77/16"}"#,
            409,
            "conflict",
            Some("address"),
        ),
        bad(
            M::PUT,
            "/api/v1/interfaces/1",
            r#"{"port": "wan0", "address": "10.6.0.1/24"}"#,
            409,
            "conflict",
            Some("address"),
        ),
        bad(
            M::DELETE,
            "/api/v1/interfaces/1",
            "",
            409,
            "conflict",
            Some("id"),
        ),
        bad(
            M::PUT,
            "/api/v1/interfaces/99",
            r#"{"port": "lan9", "address": "10.5.0.1/24"}"#,
            404,
            "not_found",
            Some("id"),
        ),
        // Transport.
        bad(
            M::PATCH,
            "/api/v1/routes/1",
            "{}",
            405,
            "method_not_allowed",
            None,
        ),
        bad(
            M::DELETE,
            "/api/v1/routes",
            "",
            405,
            "method_not_allowed",
            None,
        ),
        bad(
            M::GET,
            "/api/v1/nothing-here",
            "",
            404,
            "no_such_path",
            None,
        ),
        bad(
            M::POST,
            "/api/v1/routes",
            &big,
            413,
            "payload_too_large",
            None,
        ),
        // Bulk route requests: errors name the entry; nothing is applied.
        bad(
            M::POST,
            "/api/v1/routes/bulk",
            r#"{"add": [{"prefix": "10.5.0.0/16", "blackhole": true}, {"prefix": "10.6.0.1/16", "blackhole": true}]}"#,
            400,
            "invalid_field",
            Some("add[1].prefix"),
        ),
        bad(
            M::POST,
            "/api/v1/routes/bulk",
            r#"{"add": [{"prefix": "10.5.0.0/16", "next_hops": [{"via": "10.9.0.1"}]}]}"#,
            400,
            "invalid_field",
            Some("add[0].next_hops[0].via"),
        ),
        bad(
            M::POST,
            "/api/v1/routes/bulk",
            r#"{"add": [{"prefix": "10.5.0.0/16", "blackhole": true}, {"prefix": "10.5.0.0/16", "blackhole": true}]}"#,
            409,
            "conflict",
            Some("add[1].prefix"),
        ),
        bad(
            M::POST,
            "/api/v1/routes/bulk",
            r#"{"add": [{"prefix": "10.5.0.0/16", "blackhole": true}, {"prefix": "0.0.0.0/0", "blackhole": true}]}"#,
            409,
            "conflict",
            Some("add[1].prefix"),
        ),
        bad(
            M::POST,
            "/api/v1/routes/bulk",
            r#"{"add": [{"prefix": "10.5.0.0/16"}]}"#,
            400,
            "invalid_field",
            Some("add[0].next_hops"),
        ),
        bad(
            M::POST,
            "/api/v1/routes/bulk",
            r#"{"add": [{"prefix": "10.5.0.0/16", "blackhole": true}], "delete": [999]}"#,
            404,
            "not_found",
            Some("delete[0]"),
        ),
        bad(
            M::POST,
            "/api/v1/routes/bulk",
            r#"{"delete": [1, 1]}"#,
            409,
            "conflict",
            Some("delete[1]"),
        ),
        bad(
            M::POST,
            "/api/v1/routes/bulk",
            r#"{"delete": [0]}"#,
            400,
            "invalid_field",
            Some("delete[0]"),
        ),
        bad(
            M::POST,
            "/api/v1/routes/bulk",
            r#"{"delete": ["x"]}"#,
            400,
            "invalid_field",
            Some("delete[0]"),
        ),
        bad(
            M::POST,
            "/api/v1/routes/bulk",
            r#"{"delete_prefixes": ["0.0.0.0/0", "10.77.0.0/16"]}"#,
            404,
            "not_found",
            Some("delete_prefixes[1]"),
        ),
        bad(
            M::POST,
            "/api/v1/routes/bulk",
            r#"{"delete_prefixes": ["10.77.0.1/16"]}"#,
            400,
            "invalid_field",
            Some("delete_prefixes[0]"),
        ),
        bad(
            M::POST,
            "/api/v1/routes/bulk",
            r#"{"adds": []}"#,
            400,
            "unknown_field",
            Some("adds"),
        ),
        bad(
            M::POST,
            "/api/v1/orgs/nope/routes/bulk",
            r#"{}"#,
            404,
            "not_found",
            Some("org"),
        ),
        bad(
            M::GET,
            "/api/v1/routes/bulk",
            "",
            405,
            "method_not_allowed",
            None,
        ),
        // Paging parameters.
        bad(
            M::GET,
            "/api/v1/routes?limit=0",
            "",
            400,
            "invalid_field",
            Some("limit"),
        ),
        bad(
            M::GET,
            "/api/v1/routes?limit=10&offset=-1",
            "",
            400,
            "invalid_field",
            Some("offset"),
        ),
        bad(
            M::GET,
            "/api/v1/orgs/default/routes?colour=red",
            "",
            400,
            "invalid_field",
            Some("colour"),
        ),
    ];
    // Content type: 415 when missing or not JSON (documented choice).
    for ct in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let mut c = bad(
            M::POST,
            "/api/v1/routes",
            r#"{"prefix": "10.0.0.0/8", "blackhole": true}"#,
            415,
            "unsupported_media_type",
            None,
        );
        c.content_type = ct;
        cases.push(c);
    }

    for c in &cases {
        let r = t
            .raw(
                c.method.clone(),
                c.path,
                Some(TOKEN),
                c.content_type,
                c.body.clone().into_bytes(),
            )
            .await;
        let label = format!("{} {} {:.80}", c.method, c.path, c.body);
        assert_eq!(r.status, c.status, "{label}: {}", r.body);
        assert_eq!(
            r.error(),
            (c.code.to_owned(), c.field.map(str::to_owned)),
            "{label}: {}",
            r.body
        );
        assert!(
            r.body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{label}"
        );
    }
    assert_eq!(
        t.snapshot().await,
        before,
        "a failed request changed the state"
    );
    assert_eq!(
        t.generation().await,
        generation,
        "a failed request bumped the generation"
    );
}

#[tokio::test]
async fn failing_multi_part_requests_leave_the_store_unchanged() {
    let t = TestApp::in_memory();
    t.create(
        "/api/v1/interfaces",
        json!({ "port": "wan0", "address": "10.2.0.1/24" }),
    )
    .await;
    t.create(
        "/api/v1/routes",
        json!({ "prefix": "0.0.0.0/0", "next_hops": [{ "via": "10.2.0.254" }] }),
    )
    .await;
    t.create(
        "/api/v1/routes",
        json!({ "prefix": "172.16.0.0/12", "blackhole": true }),
    )
    .await;
    let before = t.snapshot().await;
    // Replacing the set: the deletions and updates before the bad last entry
    // would have run already in a naive implementation.
    let r = t
        .call(
            Method::PUT,
            "/api/v1/routes",
            Some(json!({ "routes": [
            { "prefix": "0.0.0.0/0", "next_hops": [{ "via": "10.2.0.9" }] },
            { "prefix": "10.0.0.0/8", "blackhole": true },
            { "prefix": "10.1.0.0/16", "next_hops": [{ "via": "10.99.0.1" }] },
        ] })),
        )
        .await;
    assert_eq!(
        (r.status, r.error().1),
        (
            StatusCode::BAD_REQUEST,
            Some("routes[2].next_hops[0].via".into())
        )
    );
    // A route whose second next hop is bad: the first is not stored either.
    let r = t
        .call(
            Method::PUT,
            "/api/v1/routes/1",
            Some(json!({ "prefix": "0.0.0.0/0",
            "next_hops": [{ "via": "10.2.0.8" }, { "via": "10.99.0.1" }] })),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // Moving the interface would strand the default route.
    let r = t
        .call(
            Method::PUT,
            "/api/v1/interfaces/1",
            Some(json!({ "port": "wan1", "address": "10.3.0.1/24" })),
        )
        .await;
    assert_eq!(
        (r.status, r.error().1),
        (StatusCode::CONFLICT, Some("address".into()))
    );
    assert_eq!(t.snapshot().await, before);
}

#[tokio::test]
async fn generation_counts_successful_changes_only() {
    let t = TestApp::in_memory();
    assert_eq!(t.generation().await, 0);
    t.create(
        "/api/v1/interfaces",
        json!({ "port": "wan0", "address": "10.2.0.1/24" }),
    )
    .await;
    assert_eq!(t.generation().await, 1);
    t.get_ok("/api/v1/interfaces").await;
    assert_eq!(t.generation().await, 1, "reads are not changes");
    let r = t
        .call(
            Method::POST,
            "/api/v1/routes",
            Some(json!({ "prefix": "10.0.0.1/8", "blackhole": true })),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = t
        .call(
            Method::POST,
            "/api/v1/routes",
            Some(json!({ "prefix": "10.0.0.0/8", "next_hops": [{ "via": "9.9.9.9" }] })),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(t.generation().await, 1, "failures are not changes");
    t.create(
        "/api/v1/routes",
        json!({ "prefix": "10.0.0.0/8", "next_hops": [{ "via": "10.2.0.9" }] }),
    )
    .await;
    assert_eq!(t.generation().await, 2);
    let r = t.call(Method::PUT, "/api/v1/routes", Some(json!({ "routes": [
        { "prefix": "10.0.0.0/8", "blackhole": true }, { "prefix": "10.1.0.0/16", "blackhole": true }] }))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        t.generation().await,
        3,
        "a whole-set replacement is one change"
    );
    assert_eq!(
        t.call(Method::DELETE, "/api/v1/routes/1", None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(t.generation().await, 4);
    assert_eq!(
        t.call(Method::DELETE, "/api/v1/routes/1", None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(t.generation().await, 4);
    assert_eq!(
        t.call(
            Method::POST,
            "/api/v1/orgs",
            Some(json!({ "name": "acme" }))
        )
        .await
        .status,
        StatusCode::CREATED
    );
    assert_eq!(t.generation().await, 5);
}

#[tokio::test]
async fn state_survives_a_restart() {
    let dir = TempDir::new("restart");
    let db = dir.path().join("sub").join("control.db");
    let before;
    {
        let t = TestApp::with_store(Store::open(&db).unwrap());
        t.call(
            Method::POST,
            "/api/v1/orgs",
            Some(json!({ "name": "acme" })),
        )
        .await;
        t.create(
            "/api/v1/interfaces",
            json!({ "port": "wan0", "address": "10.2.0.1/24", "vlan": 7 }),
        )
        .await;
        t.create(
            "/api/v1/orgs/acme/interfaces",
            json!({ "port": "lan0", "address": "10.1.0.1/24" }),
        )
        .await;
        t.create(
            "/api/v1/routes",
            json!({ "prefix": "0.0.0.0/0", "next_hops": [{ "via": "10.2.0.254" }] }),
        )
        .await;
        t.create(
            "/api/v1/orgs/acme/routes",
            json!({ "prefix": "10.0.0.0/8", "blackhole": true }),
        )
        .await;
        before = (t.snapshot().await, t.generation().await);
        t.store.close().await;
    }
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&db).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "the database is private");
    let t = TestApp::with_store(Store::open(&db).unwrap());
    assert_eq!((t.snapshot().await, t.generation().await), before);
    assert_eq!(before.1, 5);
    // And it keeps counting, without reusing ids.
    let r = t
        .create(
            "/api/v1/routes",
            json!({ "prefix": "10.0.0.0/8", "blackhole": true }),
        )
        .await;
    assert_eq!(r["id"], 3);
    assert_eq!(t.generation().await, 6);
}

#[tokio::test]
async fn closed_store_gives_503_not_a_panic() {
    let t = TestApp::in_memory();
    t.store.close().await;
    let r = t.get("/api/v1/routes").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.error(), ("unavailable".into(), None));
}

#[test]
fn token_file_is_created_0600_and_reused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("token");
    let path = dir.path().join("etc").join("api-token");
    let (token, source) = load_or_create_token(&path).unwrap();
    assert_eq!(source, TokenSource::Generated);
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap().trim(),
        token.as_str()
    );
    let (again, source) = load_or_create_token(&path).unwrap();
    assert_eq!(
        (again.as_str(), source),
        (token.as_str(), TokenSource::File)
    );
    // A token file others can read is tightened on load.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    load_or_create_token(&path).unwrap();
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // A file holding garbage is an error, not an empty token.
    std::fs::write(&path, "short\n").unwrap();
    assert!(load_or_create_token(&path).is_err());
}

#[tokio::test]
async fn bulk_routes_load_delete_and_page() {
    let t = TestApp::in_memory();
    t.create(
        "/api/v1/interfaces",
        json!({ "port": "wan0", "address": "10.2.0.1/24" }),
    )
    .await;
    // 20,000 routes: a body well over the 1 MiB limit of other endpoints.
    let n = 20_000u32;
    let add: Vec<Value> = (0..n)
        .map(|i| {
            let [_, b, c, _] = (i << 8).to_be_bytes();
            json!({ "prefix": format!("11.{b}.{c}.0/24"), "next_hops": [{ "via": "10.2.0.254" }] })
        })
        .collect();
    let body = json!({ "add": add });
    assert!(body.to_string().len() > 1 << 20);
    let g0 = t.generation().await;
    let r = t
        .call(Method::POST, "/api/v1/routes/bulk", Some(body))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body,
        json!({ "added": n, "deleted": 0, "generation": g0 + 1 })
    );
    assert_eq!(
        t.generation().await,
        g0 + 1,
        "one change for the whole bulk"
    );

    // Pages of 7,000 in id order; a full page names the next offset.
    let mut seen = Vec::new();
    let mut offset = 0u64;
    loop {
        let page = t
            .get_ok(&format!("/api/v1/routes?limit=7000&offset={offset}"))
            .await;
        let items = page["items"].as_array().unwrap();
        seen.extend(items.iter().map(|r| r["id"].as_i64().unwrap()));
        match page.get("next_offset") {
            Some(next) => {
                assert_eq!(items.len(), 7000);
                offset = next.as_u64().unwrap();
            }
            None => {
                assert!(items.len() < 7000);
                break;
            }
        }
    }
    assert_eq!(seen.len(), n as usize);
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "ids ascending, no repeats"
    );
    // Without paging: everything, no next_offset.
    let all = t.get_ok("/api/v1/routes").await;
    assert_eq!(all["items"].as_array().unwrap().len(), n as usize);
    assert!(all.get("next_offset").is_none());
    let tail = t.get_ok("/api/v1/routes?offset=19998").await;
    assert_eq!(tail["items"].as_array().unwrap().len(), 2);

    // Delete by id and by prefix; a deleted prefix may be added again.
    let first = all["items"][0].clone();
    let second = all["items"][1].clone();
    let r = t
        .call(
            Method::POST,
            "/api/v1/orgs/default/routes/bulk",
            Some(json!({
                "delete": [first["id"]],
                "delete_prefixes": [second["prefix"]],
                "add": [{ "prefix": first["prefix"], "blackhole": true }],
            })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        (r.body["added"].as_u64(), r.body["deleted"].as_u64()),
        (Some(1), Some(2))
    );
    let page = t.get_ok("/api/v1/routes?limit=1").await;
    assert_eq!(page["items"][0]["prefix"], all["items"][2]["prefix"]);
    let re_added = t.get_ok(&format!("/api/v1/routes?offset={}", n - 2)).await;
    let last = re_added["items"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        (last["prefix"].clone(), last["blackhole"].clone()),
        (first["prefix"].clone(), json!(true))
    );
    assert_eq!(
        t.get_ok("/api/v1/routes").await["items"]
            .as_array()
            .unwrap()
            .len(),
        n as usize - 1
    );
}
