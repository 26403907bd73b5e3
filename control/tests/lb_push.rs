//! The balancer reaches the engine: every change publishes an `lb.bin`
//! that `Subscriber::poll_lb` reads back with the right entries (settings
//! present while a VIP exists, none once the last one is gone), and a
//! backend's health, checked against real loopback servers, re-publishes
//! it with `up` following the backend (TCP: the listener closes; HTTP: the
//! server answers 503), counted in the transitions metric.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use common::{TempDir, TestApp};
use patronus_control::lb::metrics::LbCollector;
use patronus_control::lb::model::{BackendDef, CheckDef, CheckType, Mode, Protocol, VipDef};
use patronus_control::lb::status::LbStatus;
use patronus_control::models::push::ModelInfoGauge;
use patronus_control::push::Pusher;
use patronus_control::state::{spawn_store_full, StoreHandle};
use patronus_control::store::Store;
use patronus_shm::lb::{LbTables, LB_MODE_DSR, LB_MODE_NAT, LB_PROTO_TCP, LB_PROTO_UDP};
use patronus_shm::Subscriber;
use prometheus::core::Collector;

/// Tries before a condition that must become true is declared never met
/// (a hang guard, not a timing assertion).
const TRIES: usize = 1000;
const TRY_EVERY: Duration = Duration::from_millis(10);

fn linked(shm: &std::path::Path) -> (StoreHandle, Subscriber, LbStatus) {
    let sub = Subscriber::open(shm).unwrap();
    let pusher = Pusher::open(shm).unwrap();
    let status = LbStatus::new();
    let h = spawn_store_full(
        Store::open_in_memory().unwrap(),
        Some(pusher),
        ModelInfoGauge::new().unwrap(),
        status.clone(),
    )
    .unwrap();
    (h, sub, status)
}

/// The next LB file, waiting for it.
async fn next_lb(sub: &mut Subscriber) -> (u64, LbTables) {
    for _ in 0..TRIES {
        if let Some(x) = sub.poll_lb().unwrap() {
            return x;
        }
        tokio::time::sleep(TRY_EVERY).await;
    }
    panic!("no LB file was published");
}

/// Reads LB files until `pred` holds for one; returns it.
async fn lb_until(sub: &mut Subscriber, what: &str, pred: impl Fn(&LbTables) -> bool) -> LbTables {
    for _ in 0..TRIES {
        if let Some((_, t)) = sub.poll_lb().unwrap() {
            if pred(&t) {
                return t;
            }
        }
        tokio::time::sleep(TRY_EVERY).await;
    }
    panic!("never published: {what}");
}

#[tokio::test]
async fn every_change_publishes_the_tables() {
    let tmp = TempDir::new("lb-push");
    let (h, mut sub, _) = linked(tmp.path());
    let t = TestApp::with_handle(h);

    let web = t
        .create(
            "/api/v1/lb/vips",
            json!({ "name": "web", "address": "10.9.0.100", "port": 80, "table_size": 1009,
                    "backends": [{ "address": "10.2.0.11", "port": 8080, "weight": 2 },
                                 { "address": "10.2.0.12", "port": 8081 }] }),
        )
        .await;
    let (n1, tables) = next_lb(&mut sub).await;
    let settings = tables.settings.expect("managed: settings present");
    assert_eq!(settings.max_flows, 0, "the engine's defaults");
    assert_eq!(tables.vips.len(), 1);
    let v = tables.vips[0];
    assert_eq!(u64::from(v.id), web["id"].as_u64().unwrap());
    assert_eq!(Ipv4Addr::from(v.addr), Ipv4Addr::new(10, 9, 0, 100));
    assert_eq!(
        (v.port, v.proto, v.mode, v.table_size),
        (80, LB_PROTO_TCP, LB_MODE_NAT, 1009)
    );
    let got: Vec<(u32, Ipv4Addr, u16, u16, u8)> = tables
        .backends
        .iter()
        .map(|b| (b.vip_id, Ipv4Addr::from(b.addr), b.port, b.weight, b.up))
        .collect();
    assert_eq!(
        got,
        [
            (v.id, Ipv4Addr::new(10, 2, 0, 11), 8080, 2, 1),
            (v.id, Ipv4Addr::new(10, 2, 0, 12), 8081, 1, 1)
        ],
        "no health check: up"
    );
    let ids: Vec<u64> = web["backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_u64().unwrap())
        .collect();
    assert_eq!(
        tables
            .backends
            .iter()
            .map(|b| u64::from(b.id))
            .collect::<Vec<_>>(),
        ids
    );

    // Drain one: weight 0, same ids.
    let r = t
        .call(
            Method::PATCH,
            "/api/v1/lb/vips/web/backends/10.2.0.11:8080",
            Some(json!({ "weight": 0 })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let (n2, tables) = next_lb(&mut sub).await;
    assert!(n2 > n1);
    assert_eq!(tables.backends[0].weight, 0);
    assert_eq!(u64::from(tables.backends[0].id), ids[0]);

    // A second VIP in DSR mode over UDP.
    t.create(
        "/api/v1/lb/vips",
        json!({ "name": "dns", "address": "10.9.0.53", "port": 53, "protocol": "udp",
                "mode": "dsr", "backends": [{ "address": "10.2.0.21" }] }),
    )
    .await;
    let (_, tables) = next_lb(&mut sub).await;
    assert_eq!(tables.vips.len(), 2);
    let dns = tables.vips.iter().find(|v| v.port == 53).unwrap();
    assert_eq!(
        (dns.proto, dns.mode, dns.table_size),
        (LB_PROTO_UDP, LB_MODE_DSR, 65537)
    );
    assert_eq!(tables.backends_of(dns.id).count(), 1);
    assert_eq!(tables.backends_of(v.id).count(), 2);

    // A failed change publishes nothing.
    let r = t
        .call(
            Method::POST,
            "/api/v1/lb/vips/web/backends",
            Some(json!({ "address": "10.2.0.12", "port": 8081 })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);

    // Removing everything: settings None (the engine's own configuration again).
    for path in [
        "/api/v1/lb/vips/web/backends/10.2.0.12:8081",
        "/api/v1/lb/vips/web",
        "/api/v1/lb/vips/dns",
    ] {
        let r = t.call(Method::DELETE, path, None).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{path}");
    }
    let last = lb_until(&mut sub, "the unmanaged file", |t| t.settings.is_none()).await;
    assert_eq!(last, LbTables::default());
    assert_eq!(
        sub.poll_lb().unwrap(),
        None,
        "nothing more after the last change"
    );
}

/// A TCP listener on loopback accepting (and closing) connections until aborted.
async fn tcp_backend() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            drop(s);
        }
    });
    (addr, task)
}

/// An HTTP server on loopback answering 200, or 503 once `sick` is set.
async fn http_backend(sick: Arc<AtomicBool>) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let sick = sick.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let status = if sick.load(Ordering::SeqCst) {
                    "503 Service Unavailable"
                } else {
                    "200 OK"
                };
                let _ = s
                    .write_all(
                        format!(
                            "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        )
                        .as_bytes(),
                    )
                    .await;
            });
        }
    });
    (addr, task)
}

fn check(kind: CheckType) -> CheckDef {
    CheckDef {
        kind,
        path: (kind == CheckType::Http).then(|| "/healthz".to_owned()),
        port: None,
        interval_ms: 100,
        timeout_ms: 100,
        rise: 1,
        fall: 2,
    }
}

fn vip(name: &str, port: u16, kind: CheckType) -> VipDef {
    VipDef {
        name: name.to_owned(),
        address: Ipv4Addr::new(10, 9, 0, 100),
        port,
        protocol: Protocol::Tcp,
        mode: Mode::Nat,
        table_size: 1009,
        health_check: Some(check(kind)),
    }
}

fn backend(addr: SocketAddr) -> BackendDef {
    let SocketAddr::V4(a) = addr else {
        unreachable!()
    };
    BackendDef {
        address: *a.ip(),
        port: a.port(),
        weight: 1,
    }
}

fn up_of(t: &LbTables, port: u16) -> Option<u8> {
    t.backends.iter().find(|b| b.port == port).map(|b| b.up)
}

fn transitions(status: &LbStatus, vip: &str, backend: SocketAddr, to: &str) -> u64 {
    status
        .transitions()
        .into_iter()
        .find(|((v, b, t), _)| v == vip && *b == backend.to_string() && *t == to)
        .map_or(0, |(_, n)| n)
}

#[tokio::test]
async fn health_transitions_republish_with_up_following_the_backend() {
    let tmp = TempDir::new("lb-health");
    let (h, mut sub, status) = linked(tmp.path());
    // Loopback backends cannot be given through the API (the engine cannot
    // reach them): the store actor gets them directly.
    let (tcp_addr, tcp_task) = tcp_backend().await;
    let sick = Arc::new(AtomicBool::new(false));
    let (http_addr, http_task) = http_backend(sick.clone()).await;
    let closed_addr = {
        // A port that nothing listens on: bound, then closed.
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    h.create_vip(
        vip("tcp", 80, CheckType::Tcp),
        vec![backend(tcp_addr), backend(closed_addr)],
    )
    .await
    .unwrap();
    h.create_vip(vip("web", 81, CheckType::Http), vec![backend(http_addr)])
        .await
        .unwrap();

    // First published with the checks' initial state (down), then up as
    // the probes succeed; the backend nothing listens on stays down.
    let (_, first) = next_lb(&mut sub).await;
    assert_eq!(up_of(&first, tcp_addr.port()), Some(0), "starts down");
    let t = lb_until(&mut sub, "both live backends up", |t| {
        up_of(t, tcp_addr.port()) == Some(1) && up_of(t, http_addr.port()) == Some(1)
    })
    .await;
    assert_eq!(up_of(&t, closed_addr.port()), Some(0));
    // At least one each (a probe timing out on a loaded machine may make
    // a backend flap before this point).
    assert!(transitions(&status, "tcp", tcp_addr, "up") >= 1);
    assert!(transitions(&status, "web", http_addr, "up") >= 1);
    assert_eq!(transitions(&status, "tcp", closed_addr, "up"), 0);
    let shown = h.get_vip("tcp".into()).await.unwrap();
    let closed_up = shown
        .backends
        .iter()
        .find(|b| b.def.port == closed_addr.port())
        .map(|b| b.up);
    assert_eq!(closed_up, Some(Some(false)));

    // The TCP backend stops listening: down; the other VIP stays up.
    tcp_task.abort();
    let t = lb_until(&mut sub, "the TCP backend down", |t| {
        up_of(t, tcp_addr.port()) == Some(0)
    })
    .await;
    assert_eq!(up_of(&t, http_addr.port()), Some(1));
    assert!(transitions(&status, "tcp", tcp_addr, "down") >= 1);

    // The HTTP backend answers 503 while still listening: down.
    sick.store(true, Ordering::SeqCst);
    lb_until(&mut sub, "the HTTP backend down", |t| {
        up_of(t, http_addr.port()) == Some(0)
    })
    .await;
    assert!(transitions(&status, "web", http_addr, "down") >= 1);

    // The metrics show it.
    let fams = LbCollector::new(status.clone(), None).unwrap().collect();
    let up = fams
        .iter()
        .find(|f| f.get_name() == "patronus_lb_backend_up")
        .expect("backend_up family");
    assert_eq!(up.get_metric().len(), 3);
    assert!(up
        .get_metric()
        .iter()
        .all(|m| m.get_gauge().get_value() == 0.0));
    let tr = fams
        .iter()
        .find(|f| f.get_name() == "patronus_lb_health_transitions_total")
        .expect("transitions family");
    assert_eq!(tr.get_metric().len(), 4, "two backends, up and down each");
    assert!(
        fams.iter()
            .all(|f| f.get_name() != "patronus_lb_backend_flows_total"),
        "no engine: no counters"
    );

    // Removing the check: backends are unchecked, taken as up again.
    let mut plain = vip("web", 81, CheckType::Http);
    plain.health_check = None;
    let v = h.update_vip("web".into(), plain).await.unwrap();
    assert_eq!(v.backends[0].up, None);
    lb_until(&mut sub, "the HTTP backend unchecked", |t| {
        up_of(t, http_addr.port()) == Some(1)
    })
    .await;
    http_task.abort();
}
