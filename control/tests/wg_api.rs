//! The WireGuard API: tunnels and peers CRUD, bad requests (exact status,
//! code and field; nothing changes), conflicts with stored state, routes
//! into tunnels, keys never returned, the push of wg.bin and of tunnel
//! routes into shared memory, per-peer counters from the engine view, and
//! the database files' modes.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use axum::http::{Method, StatusCode};
use common::{TempDir, TestApp};
use patronus_control::metrics::{EngineSnapshot, EngineSource, LatestSnapshot};
use patronus_control::push::Pusher;
use patronus_control::state::spawn_store_with;
use patronus_control::store::Store;
use patronus_shm::Subscriber;
use serde_json::{json, Value};

// RFC 7748 6.1 keys: Alice's private key, its public key, Bob's public key.
const PRIVATE: &str = "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=";
const PUBLIC: &str = "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=";
const BOB: &str = "3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08=";
const CAROL: &str = "CAROLCAROLCAROLCAROLCAROLCAROLCAROLCAROLCA0=";
const PSK: &str = "c2VjcmV0LXByZXNoYXJlZC1rZXktMzItYnl0ZXMhISE=";

async fn tunnel(t: &TestApp, name: &str, port: u16) -> Value {
    t.create(
        "/api/v1/wg/tunnels",
        json!({ "name": name, "listen_port": port }),
    )
    .await
}

fn peer(key: &str, allowed: &[&str]) -> Value {
    json!({ "public_key": key, "endpoint": "192.0.2.2:51820",
        "allowed_ips": allowed, "persistent_keepalive": 25 })
}

#[tokio::test]
async fn tunnel_and_peer_crud() {
    let t = TestApp::in_memory();
    let made = t
        .create(
            "/api/v1/wg/tunnels",
            json!({ "name": "wg0", "listen_port": 51820, "private_key": PRIVATE,
                "address": "10.99.0.1/24" }),
        )
        .await;
    assert_eq!(
        made,
        json!({ "name": "wg0", "listen_port": 51820, "public_key": PUBLIC,
            "address": "10.99.0.1/24", "peers": 0 })
    );
    // Generated key: a public key of the right form, different each time.
    let gen = tunnel(&t, "wg1", 51821).await;
    let gen_key = gen["public_key"].as_str().unwrap().to_owned();
    assert_eq!(gen_key.len(), 44);
    assert_ne!(gen_key, PUBLIC);
    assert!(gen.get("private_key").is_none());

    let list = t.get_ok("/api/v1/wg/tunnels").await;
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["wg0", "wg1"]);

    let p = t
        .create(
            "/api/v1/wg/tunnels/wg0/peers",
            json!({ "public_key": BOB, "endpoint": "192.0.2.2:51820",
                "allowed_ips": ["10.2.0.0/16", "192.168.7.1/32"],
                "persistent_keepalive": 25, "preshared_key": PSK }),
        )
        .await;
    let id = p["id"].as_i64().unwrap();
    assert_eq!(
        p,
        json!({ "id": id, "tunnel": "wg0", "public_key": BOB, "endpoint": "192.0.2.2:51820",
            "allowed_ips": ["10.2.0.0/16", "192.168.7.1/32"], "persistent_keepalive": 25,
            "preshared_key": true })
    );
    let path = format!("/api/v1/wg/tunnels/wg0/peers/{id}");
    assert_eq!(t.get_ok(&path).await, p);
    assert_eq!(t.get_ok("/api/v1/wg/tunnels/wg0").await["peers"], 1);

    // Replace: no endpoint, no keepalive, no PSK any more.
    let r = t
        .call(
            Method::PUT,
            &path,
            Some(json!({ "public_key": BOB, "allowed_ips": ["10.3.0.0/16"] })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body,
        json!({ "id": id, "tunnel": "wg0", "public_key": BOB,
            "allowed_ips": ["10.3.0.0/16"], "preshared_key": false })
    );

    // Tunnel update: port, and key rotation.
    let r = t
        .call(
            Method::PUT,
            "/api/v1/wg/tunnels/wg0",
            Some(json!({ "listen_port": 51830 })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["public_key"], PUBLIC, "key kept");
    assert!(r.body.get("address").is_none(), "address dropped");
    let r = t
        .call(
            Method::PUT,
            "/api/v1/wg/tunnels/wg0",
            Some(json!({ "listen_port": 51830, "private_key": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_ne!(r.body["public_key"], PUBLIC, "rotated");

    let r = t.call(Method::DELETE, &path, None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(t.get(&path).await.status, StatusCode::NOT_FOUND);
    let r = t.call(Method::DELETE, "/api/v1/wg/tunnels/wg1", None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = t.get("/api/v1/wg/tunnels/wg1").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.error(), ("not_found".into(), Some("tunnel".into())));
}

#[tokio::test]
async fn bad_requests_name_the_field_and_change_nothing() {
    let t = TestApp::in_memory();
    tunnel(&t, "wg0", 51820).await;
    t.create("/api/v1/wg/tunnels/wg0/peers", peer(BOB, &["10.2.0.0/16"]))
        .await;
    let g = t.generation().await;
    let tunnels = "/api/v1/wg/tunnels";
    let peers = "/api/v1/wg/tunnels/wg0/peers";
    let cases: Vec<(&str, Value, StatusCode, &str, &str)> = vec![
        // Tunnels.
        (
            tunnels,
            json!({ "name": "wg 9", "listen_port": 1 }),
            StatusCode::BAD_REQUEST,
            "invalid_field",
            "name",
        ),
        (
            tunnels,
            json!({ "name": "wg.9", "listen_port": 1 }),
            StatusCode::BAD_REQUEST,
            "invalid_field",
            "name",
        ),
        (
            tunnels,
            json!({ "name": "wg9", "listen_port": 0 }),
            StatusCode::BAD_REQUEST,
            "invalid_field",
            "listen_port",
        ),
        (
            tunnels,
            json!({ "name": "wg9", "listen_port": 70000 }),
            StatusCode::BAD_REQUEST,
            "invalid_field",
            "listen_port",
        ),
        (
            tunnels,
            json!({ "name": "wg9" }),
            StatusCode::BAD_REQUEST,
            "missing_field",
            "listen_port",
        ),
        (
            tunnels,
            json!({ "name": "wg9", "listen_port": 1, "private_key": "not base64 at all!" }),
            StatusCode::BAD_REQUEST,
            "invalid_field",
            "private_key",
        ),
        (
            tunnels,
            json!({ "name": "wg9", "listen_port": 1, "private_key": "AAAA" }),
            StatusCode::BAD_REQUEST,
            "invalid_field",
            "private_key",
        ),
        (
            tunnels,
            json!({ "name": "wg9", "listen_port": 1, "private_key": "!AECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" }),
            StatusCode::BAD_REQUEST,
            "invalid_field",
            "private_key",
        ),
        (
            tunnels,
            json!({ "name": "wg9", "listen_port": 1, "public_key": PUBLIC }),
            StatusCode::BAD_REQUEST,
            "unknown_field",
            "public_key",
        ),
        (
            tunnels,
            json!({ "name": "wg9", "listen_port": 1, "address": "10.0.0.1" }),
            StatusCode::BAD_REQUEST,
            "invalid_field",
            "address",
        ),
        (
            tunnels,
            json!({ "name": "wg0", "listen_port": 1 }),
            StatusCode::CONFLICT,
            "conflict",
            "name",
        ),
        (
            tunnels,
            json!({ "name": "wg9", "listen_port": 51820 }),
            StatusCode::CONFLICT,
            "conflict",
            "listen_port",
        ),
        // Peers.
        (
            peers,
            json!({ "allowed_ips": [] }),
            StatusCode::BAD_REQUEST,
            "missing_field",
            "public_key",
        ),
        (
            peers,
            peer("short", &[]),
            StatusCode::BAD_REQUEST,
            "invalid_field",
            "public_key",
        ),
        (
            peers,
            peer("hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo", &[]),
            StatusCode::BAD_REQUEST,
            "invalid_field",
            "public_key",
        ),
        (
            peers,
            peer("hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTm==", &[]),
            StatusCode::BAD_REQUEST,
            "invalid_field",
            "public_key",
        ),
        (
            peers,
            peer("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", &[]),
            StatusCode::BAD_REQUEST,
            "invalid_field",
            "public_key",
        ),
        (
            peers,
            json!({ "public_key": CAROL, "endpoint": "192.0.2.2" }),
            StatusCode::BAD_REQUEST,
            "invalid_field",
            "endpoint",
        ),
        (
            peers,
            json!({ "public_key": CAROL, "endpoint": "192.0.2.2:0" }),
            StatusCode::BAD_REQUEST,
            "invalid_field",
            "endpoint",
        ),
        (
            peers,
            json!({ "public_key": CAROL, "endpoint": "[::1]:51820" }),
            StatusCode::BAD_REQUEST,
            "invalid_field",
            "endpoint",
        ),
        (
            peers,
            peer(CAROL, &["10.5.0.1/16"]),
            StatusCode::BAD_REQUEST,
            "invalid_field",
            "allowed_ips[0]",
        ),
        (
            peers,
            peer(CAROL, &["10.5.0.0/16", "10.5.1.0/24"]),
            StatusCode::BAD_REQUEST,
            "invalid_field",
            "allowed_ips[1]",
        ),
        (
            peers,
            json!({ "public_key": CAROL, "persistent_keepalive": 70000 }),
            StatusCode::BAD_REQUEST,
            "invalid_field",
            "persistent_keepalive",
        ),
        (
            peers,
            json!({ "public_key": CAROL, "preshared_key": "c2VjcmV0" }),
            StatusCode::BAD_REQUEST,
            "invalid_field",
            "preshared_key",
        ),
        (
            peers,
            json!({ "public_key": CAROL, "private_key": PRIVATE }),
            StatusCode::BAD_REQUEST,
            "unknown_field",
            "private_key",
        ),
        (
            peers,
            peer(BOB, &["10.9.0.0/16"]),
            StatusCode::CONFLICT,
            "conflict",
            "public_key",
        ),
        (
            peers,
            peer(CAROL, &["10.9.0.0/16", "10.2.3.0/24"]),
            StatusCode::CONFLICT,
            "conflict",
            "allowed_ips[1]",
        ),
        (
            peers,
            peer(CAROL, &["0.0.0.0/0"]),
            StatusCode::CONFLICT,
            "conflict",
            "allowed_ips[0]",
        ),
        (
            "/api/v1/wg/tunnels/nope/peers",
            peer(CAROL, &[]),
            StatusCode::NOT_FOUND,
            "not_found",
            "tunnel",
        ),
        (
            "/api/v1/wg/tunnels/no%20pe/peers",
            peer(CAROL, &[]),
            StatusCode::NOT_FOUND,
            "not_found",
            "tunnel",
        ),
    ];
    for (path, body, status, code, field) in cases {
        let r = t.call(Method::POST, path, Some(body.clone())).await;
        assert_eq!(r.status, status, "{path} {body}: {}", r.body);
        assert_eq!(
            r.error(),
            (code.to_owned(), Some(field.to_owned())),
            "{path} {body}: {}",
            r.body
        );
        // An error message never quotes a key it was given.
        let text = r.body.to_string();
        for secret in [PRIVATE, PSK, "not base64 at all!"] {
            assert!(!text.contains(secret), "{text}");
        }
    }
    // The tunnel's own public key cannot be a peer's.
    let own = t.get_ok("/api/v1/wg/tunnels/wg0").await["public_key"].clone();
    let r = t
        .call(Method::POST, peers, Some(peer(own.as_str().unwrap(), &[])))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error().1.as_deref(), Some("public_key"));
    // Peer ids and tunnel names in paths.
    for (m, path, status, field) in [
        (
            Method::GET,
            "/api/v1/wg/tunnels/wg0/peers/0",
            StatusCode::BAD_REQUEST,
            "id",
        ),
        (
            Method::GET,
            "/api/v1/wg/tunnels/wg0/peers/x",
            StatusCode::BAD_REQUEST,
            "id",
        ),
        (
            Method::GET,
            "/api/v1/wg/tunnels/wg0/peers/999",
            StatusCode::NOT_FOUND,
            "id",
        ),
        (
            Method::DELETE,
            "/api/v1/wg/tunnels/wg0/peers/999",
            StatusCode::NOT_FOUND,
            "id",
        ),
        (
            Method::DELETE,
            "/api/v1/wg/tunnels/nope",
            StatusCode::NOT_FOUND,
            "tunnel",
        ),
    ] {
        let r = t.call(m.clone(), path, None).await;
        assert_eq!(r.status, status, "{m} {path}");
        assert_eq!(r.error().1.as_deref(), Some(field), "{m} {path}");
    }
    assert_eq!(
        t.generation().await,
        g,
        "no failed request changed anything"
    );
    assert_eq!(t.get_ok("/api/v1/wg/tunnels/wg0").await["peers"], 1);
}

#[tokio::test]
async fn routes_point_into_tunnels_and_hold_them() {
    let t = TestApp::in_memory();
    tunnel(&t, "wg0", 51820).await;
    let r = t
        .create(
            "/api/v1/routes",
            json!({ "prefix": "10.9.0.0/16", "tunnel": "wg0" }),
        )
        .await;
    let id = r["id"].as_i64().unwrap();
    assert_eq!(
        r,
        json!({ "id": id, "org": "default", "prefix": "10.9.0.0/16", "next_hops": [],
            "blackhole": false, "tunnel": "wg0" })
    );
    // Plain routes keep their exact shape (no tunnel field).
    let b = t
        .create(
            "/api/v1/routes",
            json!({ "prefix": "10.8.0.0/16", "blackhole": true }),
        )
        .await;
    assert!(b.get("tunnel").is_none(), "{b}");
    for (body, field) in [
        (
            json!({ "prefix": "10.7.0.0/16", "tunnel": "nope" }),
            "tunnel",
        ),
        (
            json!({ "prefix": "10.7.0.0/16", "tunnel": "wg0", "blackhole": true }),
            "tunnel",
        ),
        (
            json!({ "prefix": "10.7.0.0/16", "tunnel": "wg0", "next_hops": [{ "via": "10.2.0.2" }] }),
            "tunnel",
        ),
    ] {
        let r = t.call(Method::POST, "/api/v1/routes", Some(body)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
        assert_eq!(r.error().1.as_deref(), Some(field));
    }
    // Bulk and replace-all resolve tunnels too, naming the entry.
    let r = t
        .call(
            Method::POST,
            "/api/v1/routes/bulk",
            Some(
                json!({ "add": [{ "prefix": "10.6.0.0/16", "tunnel": "wg0" },
                { "prefix": "10.5.0.0/16", "tunnel": "nope" }] }),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error().1.as_deref(), Some("add[1].tunnel"));
    let r = t
        .call(
            Method::PUT,
            "/api/v1/routes",
            Some(
                json!({ "routes": [{ "prefix": "10.9.0.0/16", "tunnel": "wg0" },
                { "prefix": "10.4.0.0/16", "tunnel": "nope" }] }),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error().1.as_deref(), Some("routes[1].tunnel"));

    // A tunnel a route points into cannot go.
    let r = t.call(Method::DELETE, "/api/v1/wg/tunnels/wg0", None).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.body.to_string().contains("10.9.0.0/16"), "{}", r.body);
    let r = t
        .call(Method::DELETE, &format!("/api/v1/routes/{id}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = t.call(Method::DELETE, "/api/v1/wg/tunnels/wg0", None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn listen_ports_and_udp_forwards_exclude_each_other() {
    let t = TestApp::in_memory();
    t.create(
        "/api/v1/interfaces",
        json!({ "port": "wan0", "address": "198.51.100.1/24" }),
    )
    .await;
    let nat = json!({ "outside": { "port": "wan0" }, "pool": ["198.51.100.1"],
        "forwards": [{ "proto": "udp", "outside": "198.51.100.1:5000", "inside": "10.1.0.2:53" }] });
    let r = t.call(Method::PUT, "/api/v1/nat", Some(nat)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = t
        .call(
            Method::POST,
            "/api/v1/wg/tunnels",
            Some(json!({ "name": "wg0", "listen_port": 5000 })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.error().1.as_deref(), Some("listen_port"));
    tunnel(&t, "wg0", 51820).await;
    let r = t
        .call(
            Method::POST,
            "/api/v1/nat/forwards",
            Some(
                json!({ "proto": "udp", "outside": "198.51.100.1:51820", "inside": "10.1.0.3:53" }),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.error().1.as_deref(), Some("outside"));
    // TCP on that port is no clash.
    let r = t
        .call(
            Method::POST,
            "/api/v1/nat/forwards",
            Some(
                json!({ "proto": "tcp", "outside": "198.51.100.1:51820", "inside": "10.1.0.4:80" }),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}

#[tokio::test]
async fn tunnels_peers_and_tunnel_routes_are_pushed_to_shared_memory() {
    let dir = TempDir::new("wg-push");
    let shm = dir.path().join("shm");
    let mut sub = Subscriber::open(&shm).unwrap();
    let pusher = Pusher::open(&shm).unwrap();
    let store = Store::open_in_memory().unwrap();
    let t = TestApp::with_handle(spawn_store_with(store, Some(pusher)).unwrap());
    t.generation().await;
    let (n0, tables) = sub.poll_wg().unwrap().expect("published at start");
    assert!(tables.tunnels.is_empty() && tables.peers.is_empty());

    t.create(
        "/api/v1/wg/tunnels",
        json!({ "name": "wg0", "listen_port": 51820, "private_key": PRIVATE,
            "address": "10.99.0.1/24" }),
    )
    .await;
    let p = t
        .create(
            "/api/v1/wg/tunnels/wg0/peers",
            json!({ "public_key": BOB, "endpoint": "192.0.2.2:51821",
                "allowed_ips": ["10.2.0.0/16"], "persistent_keepalive": 25, "preshared_key": PSK }),
        )
        .await;
    t.create(
        "/api/v1/routes",
        json!({ "prefix": "10.2.0.0/16", "tunnel": "wg0" }),
    )
    .await;
    t.generation().await;
    let (n1, tables) = sub.poll_wg().unwrap().expect("published");
    assert!(n1 > n0);
    assert_eq!(tables.tunnels.len(), 1);
    let tun = tables.tunnels[0];
    assert_eq!(tun.name(), "wg0");
    assert_eq!(tun.listen_port, 51820);
    assert_eq!(
        tun.address,
        u32::from(std::net::Ipv4Addr::new(10, 99, 0, 1))
    );
    assert_eq!(tun.address_len, 24);
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    assert_eq!(tun.private_key.as_slice(), b64.decode(PRIVATE).unwrap());
    assert_eq!(tun.public_key.as_slice(), b64.decode(PUBLIC).unwrap());
    let peer = tables.peers[0];
    assert_eq!(peer.tunnel_id, tun.id);
    assert_eq!(i64::from(peer.peer_id), p["id"].as_i64().unwrap());
    assert_eq!(peer.public_key.as_slice(), b64.decode(BOB).unwrap());
    assert_eq!(peer.psk().unwrap().as_slice(), b64.decode(PSK).unwrap());
    assert_eq!(
        (
            peer.endpoint_addr,
            peer.endpoint_port,
            peer.persistent_keepalive_secs
        ),
        (u32::from(std::net::Ipv4Addr::new(192, 0, 2, 2)), 51821, 25)
    );
    assert_eq!(tables.allowed_ips.len(), 1);
    assert_eq!(
        (
            tables.allowed_ips[0].prefix,
            tables.allowed_ips[0].prefix_len
        ),
        (0x0a02_0000, 16)
    );
    // The route into the tunnel names its id in the route generation.
    // The newest generation may be a delta: look for the change or the route.
    let current = sub.current_generation();
    let g = patronus_shm::Generation::load(
        &patronus_shm::subscribe::generation_path(&shm, current),
        current,
    )
    .unwrap();
    let v = g.view();
    let found = v
        .routes()
        .iter()
        .chain(v.route_changes().iter().map(|c| &c.route))
        .find(|r| r.prefix == 0x0a02_0000 && r.prefix_len == 16)
        .copied()
        .expect("tunnel route pushed");
    assert_eq!(found.tunnel_id(), Some(tun.id));

    // Unchanged state publishes no new file; a peer deletion does.
    t.generation().await;
    assert_eq!(sub.poll_wg().unwrap(), None);
    let r = t
        .call(
            Method::DELETE,
            &format!("/api/v1/wg/tunnels/wg0/peers/{}", p["id"]),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    t.generation().await;
    let (_, tables) = sub.poll_wg().unwrap().expect("published");
    assert!(tables.peers.is_empty() && tables.allowed_ips.is_empty());
    let mode = std::fs::metadata(shm.join("wg.bin"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[tokio::test]
async fn peers_carry_the_engines_counters() {
    let view = Arc::new(LatestSnapshot::new(None));
    let t = TestApp::with_engine(Some(view.clone() as Arc<dyn EngineSource>));
    tunnel(&t, "wg0", 51820).await;
    let p = t
        .create("/api/v1/wg/tunnels/wg0/peers", peer(BOB, &["10.2.0.0/16"]))
        .await;
    assert!(p.get("counters").is_none(), "no engine: no counters");
    let label = &BOB[..8];
    view.set(Some(EngineSnapshot {
        wg: vec![
            (format!("wg0.{label}.rx_bytes"), 1000),
            (format!("wg0.{label}.tx_bytes"), 2000),
            (format!("wg0.{label}.rx_packets"), 10),
            (format!("wg0.{label}.tx_packets"), 20),
            (format!("wg0.{label}.handshakes"), 3),
            (format!("wg0.{label}.last_handshake_secs"), 1_700_000_000),
            (format!("wg0.{label}.drop.replay"), 4),
            (format!("wg0.{label}.drop.not_allowed_ip"), 5),
            ("wg0.drop.no_peer".into(), 6),
            ("wg0.drop.hs_failed".into(), 8),
            ("wg0.cookie_replies_sent".into(), 7),
        ],
        ..Default::default()
    }));
    let list = t.get_ok("/api/v1/wg/tunnels/wg0/peers").await;
    let c = &list["items"][0]["counters"];
    for (k, v) in [
        ("rx_bytes", 1000u64),
        ("tx_bytes", 2000),
        ("rx_packets", 10),
        ("tx_packets", 20),
        ("handshakes", 3),
        ("last_handshake_secs", 1_700_000_000),
    ] {
        assert_eq!(c[k], json!(v), "{k} in {c}");
    }
    let drops = c["drops"].as_object().unwrap();
    assert_eq!(drops["not_allowed_ip"], json!(5));
    assert_eq!(drops["replay"], json!(4));
    assert_eq!(drops["bad_mac"], json!(0), "every reason, zeros included");
    assert_eq!(
        drops.len(),
        patronus_shm::wg_counters::WG_DROP_REASONS.len()
    );
    assert_eq!(
        drops["no_peer"],
        json!(0),
        "the tunnel's drops are not the peer's"
    );

    // The tunnel carries what no peer can be blamed for.
    let tun = t.get_ok("/api/v1/wg/tunnels/wg0").await;
    assert_eq!(tun["counters"]["cookie_replies_sent"], json!(7));
    assert_eq!(tun["counters"]["drops"]["no_peer"], json!(6));
    assert_eq!(tun["counters"]["drops"]["hs_failed"], json!(8));
    assert_eq!(tun["peers"], json!(1), "the stored tunnel's fields stay");
    let tunnels = t.get_ok("/api/v1/wg/tunnels").await;
    assert_eq!(tunnels["items"][0]["counters"], tun["counters"]);
    view.set(None);
    let tun = t.get_ok("/api/v1/wg/tunnels/wg0").await;
    assert!(tun.get("counters").is_none(), "no engine: no counters");
}

#[test]
fn database_files_holding_keys_are_private() {
    let dir = TempDir::new("wg-db");
    let db = dir.path().join("control.db");
    // A database left world-readable by someone is narrowed at start.
    {
        let s = Store::open(&db).unwrap();
        drop(s);
    }
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut s = Store::open(&db).unwrap();
    let def = patronus_control::wg::model::TunnelSpec {
        name: "wg0".into(),
        listen_port: 51820,
        private_key: Some(PRIVATE.into()),
        address: None,
    }
    .validate()
    .unwrap();
    s.create_tunnel(&def).unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let p = dir.path().join(format!("control.db{suffix}"));
        let mode = std::fs::metadata(&p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{} is {mode:o}", p.display());
    }
    // And the key survives a restart.
    drop(s);
    let mut s = Store::open(&db).unwrap();
    assert_eq!(s.get_tunnel("wg0").unwrap().public_key.to_base64(), PUBLIC);
}
