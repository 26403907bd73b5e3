//! `/api/v1/status` and `/api/v1/counters` with an engine attached (a fake
//! engine source with fixed numbers) and detached (a source that reports
//! none), driven through the router with `oneshot`.

mod common;

use std::sync::Arc;

use serde_json::json;

use common::TestApp;
use patronus_control::metrics::{
    EngineSnapshot, EngineSource, LatestSnapshot, PortCounters, WorkerSnapshot,
};

fn snapshot() -> EngineSnapshot {
    EngineSnapshot {
        ports: vec![PortCounters {
            name: "lan0".into(),
            rx_packets: 10,
            rx_bytes: 640,
            tx_packets: 9,
            tx_bytes: 576,
            rx_missed: 1,
            rx_errors: 2,
            tx_errors: 3,
        }],
        drops: vec![("no_route".into(), 4), ("ttl_expired".into(), 0)],
        workers: vec![
            WorkerSnapshot {
                index: 0,
                busy_polls: 5,
                idle_polls: 6,
                rx_packets: 7,
                tx_packets: 8,
                acked_generation: 12,
                live: true,
                ..Default::default()
            },
            WorkerSnapshot {
                index: 1,
                acked_generation: 11,
                live: false,
                ..Default::default()
            },
        ],
        table_generation: 12,
        table_generation_acked: 12,
        nat: Vec::new(),
        wg: Vec::new(),
        classify: Vec::new(),
        ..Default::default()
    }
}

fn app(source: Arc<LatestSnapshot>) -> TestApp {
    let engine: Arc<dyn EngineSource> = source;
    TestApp::with_engine(Some(engine))
}

#[tokio::test]
async fn status_reports_the_attached_engine() {
    let t = app(Arc::new(LatestSnapshot::new(Some(snapshot()))));
    let s = t.get_ok("/api/v1/status").await;
    assert_eq!(
        s,
        json!({
            "engine": {
                "attached": true,
                "workers": [
                    { "index": 0, "acked_generation": 12, "live": true, "busy_polls": 5,
                      "idle_polls": 6, "rx_packets": 7, "tx_packets": 8 },
                    { "index": 1, "acked_generation": 11, "live": false, "busy_polls": 0,
                      "idle_polls": 0, "rx_packets": 0, "tx_packets": 0 },
                ],
                "ports": [
                    { "name": "lan0", "rx_packets": 10, "rx_bytes": 640, "tx_packets": 9,
                      "tx_bytes": 576, "rx_missed": 1, "rx_errors": 2, "tx_errors": 3 },
                ],
                "table_generation": 12,
                "table_generation_acked": 12,
            },
            "generation": 0,
        })
    );
}

#[tokio::test]
async fn counters_report_ports_drops_and_workers() {
    let t = app(Arc::new(LatestSnapshot::new(Some(snapshot()))));
    let c = t.get_ok("/api/v1/counters").await;
    assert_eq!(c["attached"], true);
    assert_eq!(c["drops"], json!({ "no_route": 4, "ttl_expired": 0 }));
    assert_eq!(c["ports"][0]["name"], "lan0");
    assert_eq!(c["ports"][0]["tx_errors"], 3);
    assert_eq!(c["workers"].as_array().unwrap().len(), 2);
    assert_eq!(c["workers"][0]["busy_polls"], 5);
    assert_eq!(c["workers"][1]["live"], false);
}

#[tokio::test]
async fn engine_going_away_and_coming_back_is_followed() {
    let source = Arc::new(LatestSnapshot::new(None));
    let t = app(source.clone());
    let detached = t.get_ok("/api/v1/status").await;
    assert_eq!(
        detached["engine"],
        json!({ "attached": false, "workers": null, "ports": [],
                "table_generation": null, "table_generation_acked": null })
    );
    assert_eq!(
        t.get_ok("/api/v1/counters").await,
        json!({ "attached": false })
    );

    source.set(Some(snapshot()));
    t.create(
        "/api/v1/interfaces",
        json!({ "port": "lan0", "address": "10.1.0.1/24" }),
    )
    .await;
    let s = t.get_ok("/api/v1/status").await;
    assert_eq!(s["engine"]["attached"], true);
    assert_eq!(s["engine"]["table_generation"], 12);
    assert_eq!(s["generation"], 1, "desired generation from the store");

    source.set(None);
    assert_eq!(
        t.get_ok("/api/v1/counters").await,
        json!({ "attached": false })
    );
}
