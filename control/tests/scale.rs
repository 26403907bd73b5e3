//! Scale measurement (ignored by default; run in release):
//! `cargo test -p patronus-control --release --test scale -- --ignored --nocapture`
//! Loads a million routes through the API (`POST /routes/bulk` in chunks
//! of 100k, as `patronusctl route load` sends them) into a file-backed
//! store with an engine runtime directory, then times single-route changes
//! with the delta push. Prints the times; checks only correctness (no
//! timing thresholds).

mod common;

use std::time::Instant;

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use common::{TempDir, TestApp};
use patronus_control::push::Pusher;
use patronus_control::state::spawn_store_with;
use patronus_control::store::Store;
use patronus_shm::{catch_up, CatchUp, Generation, Subscriber};

const ROUTES: u32 = 1_000_000;
/// Routes per bulk request (`PATRONUS_SCALE_CHUNK` overrides; 1000000 sends
/// the whole table in one 63 MB request).
fn chunk_size() -> u32 {
    std::env::var("PATRONUS_SCALE_CHUNK")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&c| c > 0 && ROUTES.is_multiple_of(c))
        .unwrap_or(100_000)
}

fn route(i: u32) -> Value {
    // 1M distinct /24s from 20.0.0.0 up (to 35.255.255.0).
    let [a, b, c, _] = ((20u32 << 24) + (i << 8)).to_be_bytes();
    json!({ "prefix": format!("{a}.{b}.{c}.0/24"), "next_hops": [{ "via": "10.2.0.254" }] })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "scale measurement: a million routes (run in release)"]
async fn million_routes_load_and_single_route_delta_push() {
    let tmp = TempDir::new("scale");
    let db = tmp.path().join("control.db");
    let shm = tmp.path().join("shm");
    let store = Store::open(&db).unwrap();
    let pusher = Pusher::open(&shm).unwrap();
    let handle = spawn_store_with(store, Some(pusher)).unwrap();
    let t = TestApp::with_handle(handle);
    let sub = Subscriber::open(&shm).unwrap();
    t.create(
        "/api/v1/interfaces",
        json!({ "port": "wan0", "address": "10.2.0.1/24" }),
    )
    .await;

    let start = Instant::now();
    let mut body_bytes = 0;
    let mut in_requests = 0.0;
    let size = chunk_size();
    for chunk in 0..ROUTES / size {
        let add: Vec<Value> = (chunk * size..(chunk + 1) * size).map(route).collect();
        let body = json!({ "add": add }).to_string().into_bytes();
        body_bytes += body.len();
        let t0 = Instant::now();
        let r = t
            .raw(
                Method::POST,
                "/api/v1/routes/bulk",
                Some(common::TOKEN),
                Some("application/json"),
                body,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        in_requests += t0.elapsed().as_secs_f64();
        println!(
            "chunk {chunk}: {size} routes in {:.2} s",
            t0.elapsed().as_secs_f64()
        );
    }
    let loaded = start.elapsed();
    // Every push behind the bulk requests is done once this answers.
    t.generation().await;
    let pushed = start.elapsed();
    println!(
        "bulk load of {ROUTES} routes ({:.0} MB of JSON): {in_requests:.2} s in requests, {:.2} s with building the JSON here, {:.2} s until published",
        body_bytes as f64 / 1e6,
        loaded.as_secs_f64(),
        pushed.as_secs_f64()
    );
    // What a fresh engine would load: the newest self-contained generation
    // and the deltas after it.
    let n = sub.current_generation();
    let newest = Generation::load(&sub.dir().generation(n), n).unwrap();
    let mut table = std::collections::HashSet::new();
    match catch_up(sub.dir(), 0, newest).unwrap() {
        CatchUp::Full { base, deltas } => {
            table.extend(
                base.view()
                    .routes()
                    .iter()
                    .map(|e| (e.prefix, e.prefix_len)),
            );
            println!(
                "published: full or checkpoint generation {} + {} deltas",
                base.number(),
                deltas.len()
            );
            for d in &deltas {
                for c in d.view().route_changes() {
                    let k = (c.route.prefix, c.route.prefix_len);
                    if c.is_withdraw() {
                        table.remove(&k);
                    } else {
                        table.insert(k);
                    }
                }
            }
        }
        CatchUp::Deltas(_) => panic!("nothing held, so not deltas only"),
    }
    assert_eq!(table.len(), ROUTES as usize);
    drop(table);

    // The checkpoint due after the load goes out when the actor is idle:
    // wait for it, so the changes below are deltas on top of it.
    let mut n = sub.current_generation();
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        t.generation().await;
        let now = sub.current_generation();
        if now == n {
            break;
        }
        n = now;
    }

    // Single-route changes: request answered, then the delta published.
    let mut times = Vec::new();
    for i in 0..20u32 {
        let before = sub.current_generation();
        let t0 = Instant::now();
        let r = t
            .call(
                Method::POST,
                "/api/v1/routes",
                Some(json!({ "prefix": format!("40.0.{i}.0/24"), "blackhole": true })),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
        let answered = t0.elapsed();
        t.generation().await;
        let published = t0.elapsed();
        let now = sub.current_generation();
        assert_eq!(now, before + 1, "one generation per change");
        let g = Generation::load(&sub.dir().generation(now), now).unwrap();
        assert_eq!(g.view().delta_of(), Some(before));
        assert_eq!(g.view().route_changes().len(), 1);
        assert!(!g.view().has_full_routes());
        times.push((answered.as_secs_f64() * 1e3, published.as_secs_f64() * 1e3));
    }
    times.sort_by(|a, b| a.1.total_cmp(&b.1));
    let (a, p) = times[times.len() / 2];
    println!(
        "single-route create with {ROUTES} routes: median {a:.2} ms answered, {p:.2} ms until the delta was published (max {:.2} ms)",
        times.last().unwrap().1
    );

    // A page of the big table.
    let t0 = Instant::now();
    let page = t.get_ok("/api/v1/routes?limit=1000&offset=500000").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1000);
    println!(
        "GET one page of 1000 at offset 500000: {:.1} ms",
        t0.elapsed().as_secs_f64() * 1e3
    );
    t.store.close().await;
}
