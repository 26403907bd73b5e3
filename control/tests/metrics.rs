//! Metrics tests: `/metrics` scraped through the router with a fixed engine
//! source, API request counting through the middleware, the exposition checked
//! by Prometheus' own `promtool`, and the Grafana dashboard's queries checked
//! against the families the control process really exports.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use prometheus::proto::MetricType;
use tower::ServiceExt;

use patronus_control::api::app_with_metrics;
use patronus_control::auth::ApiToken;
use patronus_control::lb::metrics::LbCollector;
use patronus_control::lb::model::{
    Backend, BackendDef, CheckDef, CheckType, Mode, Protocol, Vip, VipDef,
};
use patronus_control::lb::status::LbStatus;
use patronus_control::metrics::{
    self, Detached, EngineSnapshot, EngineSource, LatestSnapshot, Metrics, PortCounters,
    WorkerSnapshot,
};
use patronus_control::state::spawn_store;
use patronus_control::store::Store;
use patronus_control::AppState;
use patronus_shm::lb_query::{LbBackendStats, LbReply};
use patronus_shm::HistogramSnapshot;

const TOKEN: &str = "metrics-test-token-0123456789";

/// A test engine: fixed, distinct numbers for every counter.
struct FixedEngine;

/// Worker 0's poll latencies: 3 polls of 512..=1023 ns, 1 of 4096..=8191 ns.
fn poll_latency() -> HistogramSnapshot {
    let mut h = HistogramSnapshot::default();
    h.buckets[10] = 3;
    h.buckets[13] = 1;
    h.count = 4;
    h.sum = 3 * 600 + 5000;
    h.max = 5000;
    h
}

fn fixed_snapshot() -> EngineSnapshot {
    EngineSnapshot {
        ports: vec![
            PortCounters {
                name: "lan0".into(),
                rx_packets: 1000,
                rx_bytes: 64_000,
                tx_packets: 900,
                tx_bytes: 57_600,
                rx_missed: 3,
                rx_errors: 2,
                tx_errors: 1,
            },
            PortCounters {
                name: "wan0".into(),
                rx_packets: 800,
                rx_bytes: 1_200_000,
                tx_packets: 990,
                tx_bytes: 1_500_000,
                rx_missed: 0,
                rx_errors: 0,
                tx_errors: 7,
            },
        ],
        drops: vec![
            ("no_route".into(), 42),
            ("ipv4_bad_checksum".into(), 5),
            ("ttl_exceeded".into(), 0),
        ],
        workers: vec![
            WorkerSnapshot {
                index: 0,
                busy_polls: 300,
                idle_polls: 100,
                rx_packets: 1100,
                tx_packets: 1050,
                acked_generation: 16,
                live: true,
                poll_latency_ns: poll_latency(),
            },
            WorkerSnapshot {
                index: 1,
                busy_polls: 0,
                idle_polls: 500,
                rx_packets: 700,
                tx_packets: 840,
                acked_generation: 17,
                live: true,
                poll_latency_ns: HistogramSnapshot::default(),
            },
        ],
        table_generation: 17,
        table_generation_acked: 16,
        nat: vec![
            ("sessions_created".into(), 120),
            ("sessions_expired".into(), 20),
            ("sessions_active".into(), 100),
            ("refused_pool_exhausted".into(), 3),
            ("refused_host_limit".into(), 0),
            ("translated_out".into(), 5000),
            ("translated_in".into(), 4000),
            ("dropped_filtered".into(), 7),
            ("some_future_counter".into(), 1),
        ],
        wg: vec![
            ("wg0.hSDw+/v7.rx_bytes".into(), 1500),
            ("wg0.hSDw+/v7.tx_bytes".into(), 2500),
            ("wg0.hSDw+/v7.rx_packets".into(), 15),
            ("wg0.hSDw+/v7.tx_packets".into(), 25),
            ("wg0.hSDw+/v7.handshakes".into(), 2),
            ("wg0.hSDw+/v7.last_handshake_secs".into(), 1_700_000_000),
            ("wg0.hSDw+/v7.drop.replay".into(), 3),
            ("wg0.hSDw+/v7.drop.bad_mac".into(), 0),
            ("wg0.drop.no_peer".into(), 4),
            ("wg0.cookie_replies_sent".into(), 6),
            ("wg0.hSDw+/v7.some_future_counter".into(), 9),
        ],
        classify: vec![
            ("flows_created".into(), 40),
            ("flows_expired".into(), 12),
            ("flows_evicted".into(), 2),
            ("flows_untracked".into(), 1),
            ("dpi_slots_exhausted".into(), 3),
            ("inference_batches".into(), 5),
            ("inferred_flows".into(), 9),
            ("flows_active".into(), 26),
            ("model_generation".into(), 2),
            ("class.tls.flows".into(), 21),
            ("class.tls.packets".into(), 900),
            ("class.tls.bytes".into(), 640_000),
            ("class.dns.flows".into(), 8),
            ("class.some_future_counter".into(), 7),
        ],
        route6_generation: None,
        wan: [
            ("path.fibre.state", 1),
            ("path.fibre.rtt_us", 12_500),
            ("path.fibre.rtt_p95_us", 20_000),
            ("path.fibre.jitter_us", 800),
            ("path.fibre.loss_ppm", 2_500),
            ("path.fibre.probes_sent", 600),
            ("path.fibre.probes_replied", 598),
            ("path.fibre.probes_reflected", 601),
            ("path.fibre.transitions", 1),
            ("path.fibre.tx_packets", 9_000),
            ("path.fibre.tx_bytes", 4_500_000),
            ("path.fibre.fec_active", 0),
            ("path.fibre.fec_data_sent", 0),
            ("path.fibre.fec_parity_sent", 0),
            ("path.fibre.fec_recovered", 0),
            ("path.fibre.fec_unrecoverable", 0),
            ("path.lte.state", 2),
            ("path.lte.rtt_us", 80_000),
            ("path.lte.loss_ppm", 60_000),
            ("path.lte.fec_active", 1),
            ("path.lte.fec_data_sent", 100),
            ("path.lte.fec_parity_sent", 20),
            ("path.lte.fec_recovered", 6),
            ("path.lte.fec_unrecoverable", 1),
            ("path.lte.some_future_counter", 3),
            ("policy.voice.path.fibre.packets", 700),
            ("policy.voice.path.lte.packets", 50),
            ("policy.voice.moves", 2),
            ("policy.bulk.path.lte.packets", 300),
            ("policy.bulk.moves", 0),
            ("compress_in_bytes", 100_000),
            ("compress_out_bytes", 40_000),
            ("compress_skipped", 12),
            ("decompress_errors", 1),
            ("bad_packets", 4),
            ("some_future_counter", 5),
        ]
        .iter()
        .map(|(n, v)| ((*n).to_owned(), *v))
        .collect(),
    }
}

impl EngineSource for FixedEngine {
    fn snapshot(&self) -> Option<EngineSnapshot> {
        Some(fixed_snapshot())
    }
}

/// One sample of a scrape: name and sorted labels.
type SampleKey = (String, BTreeMap<String, String>);

/// Parses text format 0.0.4 sample lines (enough for what we export:
/// quoted label values may hold `{`, `}`, `,`, `/` and escapes).
fn parse_exposition(text: &str) -> BTreeMap<SampleKey, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name_end = line
            .find(['{', ' '])
            .unwrap_or_else(|| panic!("bad sample line {line:?}"));
        let name = line[..name_end].to_owned();
        let mut labels = BTreeMap::new();
        let mut rest = &line[name_end..];
        if let Some(r) = rest.strip_prefix('{') {
            let mut chars = r.char_indices().peekable();
            let mut key = String::new();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '}' => {
                        end = Some(i + 1);
                        break;
                    }
                    ',' => {}
                    '=' => {
                        assert_eq!(chars.next().map(|(_, c)| c), Some('"'), "{line:?}");
                        let mut value = String::new();
                        loop {
                            match chars.next().map(|(_, c)| c) {
                                Some('\\') => match chars.next().map(|(_, c)| c) {
                                    Some('n') => value.push('\n'),
                                    Some(c) => value.push(c),
                                    None => panic!("bad escape in {line:?}"),
                                },
                                Some('"') => break,
                                Some(c) => value.push(c),
                                None => panic!("unterminated value in {line:?}"),
                            }
                        }
                        labels.insert(std::mem::take(&mut key), value);
                    }
                    c => key.push(c),
                }
            }
            rest = &r[end.unwrap_or_else(|| panic!("unterminated labels in {line:?}"))..];
        }
        let value: f64 = rest
            .trim()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap_or_else(|e| panic!("bad value in {line:?}: {e}"));
        assert!(
            out.insert((name, labels), value).is_none(),
            "duplicate sample {line:?}"
        );
    }
    out
}

fn key(name: &str, labels: &[(&str, &str)]) -> SampleKey {
    (
        name.to_owned(),
        labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    )
}

fn value(samples: &BTreeMap<SampleKey, f64>, name: &str, labels: &[(&str, &str)]) -> f64 {
    *samples
        .get(&key(name, labels))
        .unwrap_or_else(|| panic!("no sample {name}{labels:?} in {samples:#?}"))
}

/// GET /metrics through the metrics router; returns the body after checking
/// status and content type.
async fn scrape(metrics: &Metrics) -> String {
    let resp = metrics::router(metrics.clone())
        .oneshot(
            Request::builder()
                .uri("/metrics")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()[header::CONTENT_TYPE],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).expect("exposition is UTF-8")
}

fn api_app(metrics: &Metrics) -> Router {
    let store = spawn_store(Store::open_in_memory().unwrap()).unwrap();
    app_with_metrics(
        AppState {
            store,
            token: ApiToken::new(TOKEN).unwrap(),
            engine: None,
            bgp: std::sync::Arc::new(patronus_control::bgp::status::NoSpeaker),
        },
        metrics.clone(),
    )
}

async fn api_call(app: &Router, method: Method, path: &str, token: bool, body: &str) -> StatusCode {
    let mut req = Request::builder().method(method).uri(path);
    if token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
    }
    if !body.is_empty() {
        req = req.header(header::CONTENT_TYPE, "application/json");
    }
    app.clone()
        .oneshot(req.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap()
        .status()
}

/// Drives a fixed mix of API requests; returns the statuses seen.
async fn drive_api(app: &Router) -> Vec<StatusCode> {
    vec![
        api_call(app, Method::GET, "/api/v1/orgs", true, "").await,
        api_call(app, Method::GET, "/api/v1/orgs", true, "").await,
        api_call(app, Method::GET, "/api/v1/orgs", false, "").await,
        api_call(app, Method::GET, "/api/v1/orgs/default", true, "").await,
        api_call(app, Method::GET, "/api/v1/orgs/nosuch", true, "").await,
        api_call(
            app,
            Method::POST,
            "/api/v1/orgs",
            true,
            r#"{"name": "acme"}"#,
        )
        .await,
        api_call(app, Method::GET, "/api/v1/no/such/path/123", true, "").await,
    ]
}

/// A scrape where every family has samples: full engine, API traffic, a push.
async fn full_metrics() -> Metrics {
    let metrics = Metrics::new(Arc::new(FixedEngine)).unwrap();
    drive_api(&api_app(&metrics)).await;
    metrics.observe_push(0.003);
    metrics
}

#[tokio::test]
async fn scrape_reports_engine_snapshot_values_and_labels() {
    let metrics = Metrics::new(Arc::new(FixedEngine)).unwrap();
    let text = scrape(&metrics).await;
    assert!(text.contains("# TYPE patronus_port_packets_total counter"));
    assert!(text.contains("# TYPE patronus_drops_total counter"));
    assert!(text.contains("# TYPE patronus_worker_busy_ratio gauge"));
    assert!(text.contains("# TYPE patronus_table_push_latency_seconds histogram"));
    let s = parse_exposition(&text);

    assert_eq!(value(&s, "patronus_engine_attached", &[]), 1.0);
    let port =
        |name: &str, port: &str, dir: &str| value(&s, name, &[("port", port), ("direction", dir)]);
    assert_eq!(port("patronus_port_packets_total", "lan0", "rx"), 1000.0);
    assert_eq!(port("patronus_port_packets_total", "lan0", "tx"), 900.0);
    assert_eq!(port("patronus_port_packets_total", "wan0", "rx"), 800.0);
    assert_eq!(port("patronus_port_packets_total", "wan0", "tx"), 990.0);
    assert_eq!(port("patronus_port_bytes_total", "lan0", "rx"), 64_000.0);
    assert_eq!(port("patronus_port_bytes_total", "lan0", "tx"), 57_600.0);
    assert_eq!(port("patronus_port_bytes_total", "wan0", "rx"), 1_200_000.0);
    assert_eq!(port("patronus_port_bytes_total", "wan0", "tx"), 1_500_000.0);
    let err = |port: &str, kind: &str| {
        value(
            &s,
            "patronus_port_errors_total",
            &[("port", port), ("kind", kind)],
        )
    };
    assert_eq!(err("lan0", "rx_missed"), 3.0);
    assert_eq!(err("lan0", "rx_errors"), 2.0);
    assert_eq!(err("lan0", "tx_errors"), 1.0);
    assert_eq!(err("wan0", "tx_errors"), 7.0);

    assert_eq!(value(&s, "patronus_nat_sessions_active", &[]), 100.0);
    assert_eq!(value(&s, "patronus_nat_sessions_created_total", &[]), 120.0);
    assert_eq!(value(&s, "patronus_nat_sessions_expired_total", &[]), 20.0);
    let nat = |name: &str, l: (&str, &str)| value(&s, name, &[l]);
    assert_eq!(
        nat(
            "patronus_nat_sessions_refused_total",
            ("reason", "pool_exhausted")
        ),
        3.0
    );
    assert_eq!(
        nat(
            "patronus_nat_sessions_refused_total",
            ("reason", "host_limit")
        ),
        0.0
    );
    assert_eq!(
        nat("patronus_nat_packets_total", ("kind", "outbound")),
        5000.0
    );
    assert_eq!(
        nat("patronus_nat_packets_total", ("kind", "inbound")),
        4000.0
    );
    assert_eq!(nat("patronus_nat_drops_total", ("reason", "filtered")), 7.0);
    assert!(!text.contains("some_future_counter"));
    assert!(text.contains("# TYPE patronus_nat_sessions_active gauge"));
    let peer = [("tunnel", "wg0"), ("peer", "hSDw+/v7")];
    assert_eq!(value(&s, "patronus_wg_peer_rx_bytes_total", &peer), 1500.0);
    assert_eq!(value(&s, "patronus_wg_peer_tx_bytes_total", &peer), 2500.0);
    assert_eq!(value(&s, "patronus_wg_peer_rx_packets_total", &peer), 15.0);
    assert_eq!(value(&s, "patronus_wg_peer_tx_packets_total", &peer), 25.0);
    assert_eq!(value(&s, "patronus_wg_peer_handshakes_total", &peer), 2.0);
    assert_eq!(
        value(
            &s,
            "patronus_wg_cookie_replies_sent_total",
            &[("tunnel", "wg0")]
        ),
        6.0
    );
    assert_eq!(
        value(&s, "patronus_wg_peer_last_handshake_seconds", &peer),
        1_700_000_000.0
    );
    assert!(text.contains("# TYPE patronus_wg_peer_last_handshake_seconds gauge"));
    let peer_drop = |reason| {
        value(
            &s,
            "patronus_wg_peer_drops_total",
            &[("tunnel", "wg0"), ("peer", "hSDw+/v7"), ("reason", reason)],
        )
    };
    assert_eq!(peer_drop("replay"), 3.0);
    assert_eq!(peer_drop("bad_mac"), 0.0);
    assert_eq!(
        value(
            &s,
            "patronus_wg_drops_total",
            &[("tunnel", "wg0"), ("reason", "no_peer")]
        ),
        4.0
    );
    let class = |name: &str, c: &str| value(&s, name, &[("class", c)]);
    assert_eq!(class("patronus_classify_flows_total", "tls"), 21.0);
    assert_eq!(class("patronus_classify_packets_total", "tls"), 900.0);
    assert_eq!(class("patronus_classify_bytes_total", "tls"), 640_000.0);
    assert_eq!(class("patronus_classify_flows_total", "dns"), 8.0);
    assert_eq!(class("patronus_classify_flows_total", "quic"), 0.0);
    for (name, want) in [
        ("patronus_classify_flows_created_total", 40.0),
        ("patronus_classify_flows_expired_total", 12.0),
        ("patronus_classify_flows_evicted_total", 2.0),
        ("patronus_classify_flows_untracked_total", 1.0),
        ("patronus_classify_dpi_slots_exhausted_total", 3.0),
        ("patronus_classify_inference_batches_total", 5.0),
        ("patronus_classify_inferred_flows_total", 9.0),
        ("patronus_classify_flows_active", 26.0),
        ("patronus_classify_model_generation", 2.0),
    ] {
        assert_eq!(value(&s, name, &[]), want, "{name}");
    }
    assert!(text.contains("# TYPE patronus_classify_flows_active gauge"));
    assert!(text.contains("# TYPE patronus_classify_model_generation gauge"));
    assert!(text.contains("# TYPE patronus_classify_flows_total counter"));
    let drop = |reason: &str| value(&s, "patronus_drops_total", &[("reason", reason)]);
    assert_eq!(drop("no_route"), 42.0);
    assert_eq!(drop("ipv4_bad_checksum"), 5.0);
    assert_eq!(drop("ttl_exceeded"), 0.0, "zero reasons are exported too");

    assert_eq!(
        value(&s, "patronus_worker_busy_ratio", &[("worker", "0")]),
        0.75
    );
    assert_eq!(
        value(&s, "patronus_worker_busy_ratio", &[("worker", "1")]),
        0.0
    );
    let polls = |w: &str, r: &str| {
        value(
            &s,
            "patronus_worker_polls_total",
            &[("worker", w), ("result", r)],
        )
    };
    assert_eq!(polls("0", "busy"), 300.0);
    assert_eq!(polls("0", "idle"), 100.0);
    assert_eq!(polls("1", "idle"), 500.0);
    let wp = |w: &str, d: &str| {
        value(
            &s,
            "patronus_worker_packets_total",
            &[("worker", w), ("direction", d)],
        )
    };
    assert_eq!(wp("0", "rx"), 1100.0);
    assert_eq!(wp("0", "tx"), 1050.0);
    assert_eq!(wp("1", "rx"), 700.0);
    assert_eq!(wp("1", "tx"), 840.0);

    // Poll latency: log2 ns buckets as cumulative buckets in seconds.
    assert!(text.contains("# TYPE patronus_worker_poll_latency_seconds histogram"));
    let lat = |w: &str, suffix: &str, le: Option<&str>| {
        let name = format!("patronus_worker_poll_latency_seconds_{suffix}");
        match le {
            Some(le) => value(&s, &name, &[("worker", w), ("le", le)]),
            None => value(&s, &name, &[("worker", w)]),
        }
    };
    assert_eq!(lat("0", "bucket", Some("0.000000511")), 0.0);
    assert_eq!(lat("0", "bucket", Some("0.000001023")), 3.0);
    assert_eq!(lat("0", "bucket", Some("0.000008191")), 4.0);
    assert_eq!(lat("0", "bucket", Some("+Inf")), 4.0);
    assert_eq!(lat("0", "count", None), 4.0);
    assert!((lat("0", "sum", None) - 6.8e-6).abs() < 1e-15);
    assert_eq!(lat("1", "count", None), 0.0);

    assert_eq!(value(&s, "patronus_table_generation", &[]), 17.0);
    assert_eq!(value(&s, "patronus_table_generation_acked", &[]), 16.0);
    // The push histogram exists (empty) before the first push.
    assert_eq!(
        value(&s, "patronus_table_push_latency_seconds_count", &[]),
        0.0
    );

    // Exactly the expected series per engine family: nothing extra.
    let count = |name: &str| s.keys().filter(|(n, _)| n == name).count();
    assert_eq!(count("patronus_port_packets_total"), 4);
    assert_eq!(count("patronus_port_errors_total"), 6);
    assert_eq!(count("patronus_drops_total"), 3);
    assert_eq!(count("patronus_worker_polls_total"), 4);
    assert_eq!(count("patronus_worker_poll_latency_seconds_count"), 2);
    // 23 bounds (255 ns .. ~1.07 s) and +Inf per worker.
    assert_eq!(count("patronus_worker_poll_latency_seconds_bucket"), 2 * 24);
}

#[tokio::test]
async fn wan_counters_become_labelled_samples_in_prometheus_units() {
    let metrics = Metrics::new(Arc::new(FixedEngine)).unwrap();
    let text = scrape(&metrics).await;
    assert!(text.contains("# TYPE patronus_wan_path_state gauge"));
    assert!(text.contains("# HELP patronus_wan_path_state WAN path state from the engine's probes: 0 unknown (not yet decided), 1 alive, 2 dead."));
    assert!(text.contains("# TYPE patronus_wan_path_rtt_seconds gauge"));
    assert!(text.contains("# TYPE patronus_wan_fec_recovered_total counter"));
    let s = parse_exposition(&text);
    let fibre = [("path", "fibre")];
    let lte = [("path", "lte")];
    assert_eq!(value(&s, "patronus_wan_path_state", &fibre), 1.0);
    assert_eq!(value(&s, "patronus_wan_path_state", &lte), 2.0);
    assert_eq!(value(&s, "patronus_wan_path_rtt_seconds", &fibre), 0.0125);
    assert_eq!(value(&s, "patronus_wan_path_rtt_p95_seconds", &fibre), 0.02);
    assert_eq!(
        value(&s, "patronus_wan_path_jitter_seconds", &fibre),
        0.0008
    );
    assert_eq!(value(&s, "patronus_wan_path_loss_ratio", &lte), 0.06);
    assert_eq!(
        value(&s, "patronus_wan_path_probes_sent_total", &fibre),
        600.0
    );
    assert_eq!(
        value(&s, "patronus_wan_path_probes_replied_total", &fibre),
        598.0
    );
    assert_eq!(
        value(&s, "patronus_wan_path_probes_reflected_total", &fibre),
        601.0
    );
    assert_eq!(
        value(&s, "patronus_wan_path_transitions_total", &fibre),
        1.0
    );
    assert_eq!(
        value(&s, "patronus_wan_path_tx_packets_total", &fibre),
        9000.0
    );
    assert_eq!(value(&s, "patronus_wan_path_tx_bytes_total", &fibre), 4.5e6);
    assert_eq!(value(&s, "patronus_wan_path_fec_active", &lte), 1.0);
    assert_eq!(value(&s, "patronus_wan_fec_data_sent_total", &lte), 100.0);
    assert_eq!(value(&s, "patronus_wan_fec_parity_sent_total", &lte), 20.0);
    assert_eq!(value(&s, "patronus_wan_fec_recovered_total", &lte), 6.0);
    assert_eq!(value(&s, "patronus_wan_fec_unrecoverable_total", &lte), 1.0);
    let policy_path = |q: &str, p: &str| {
        value(
            &s,
            "patronus_wan_policy_path_packets_total",
            &[("policy", q), ("path", p)],
        )
    };
    assert_eq!(policy_path("voice", "fibre"), 700.0);
    assert_eq!(policy_path("voice", "lte"), 50.0);
    assert_eq!(policy_path("bulk", "lte"), 300.0);
    assert_eq!(
        value(
            &s,
            "patronus_wan_policy_moves_total",
            &[("policy", "voice")]
        ),
        2.0
    );
    assert_eq!(value(&s, "patronus_wan_compress_in_bytes_total", &[]), 1e5);
    assert_eq!(value(&s, "patronus_wan_compress_out_bytes_total", &[]), 4e4);
    assert_eq!(value(&s, "patronus_wan_compress_skipped_total", &[]), 12.0);
    assert_eq!(value(&s, "patronus_wan_decompress_errors_total", &[]), 1.0);
    assert_eq!(value(&s, "patronus_wan_bad_packets_total", &[]), 4.0);
    // Exactly the contract's names, each once (unknown ones left out).
    let wan = s
        .keys()
        .filter(|(n, _)| n.starts_with("patronus_wan_"))
        .count();
    assert_eq!(wan, 16 + 8 + 5 + 5);
    promtool_check(&text);
}

#[tokio::test]
async fn detached_engine_exports_attached_zero_and_no_engine_counters() {
    let metrics = Metrics::new(Arc::new(Detached)).unwrap();
    let s = parse_exposition(&scrape(&metrics).await);
    assert_eq!(value(&s, "patronus_engine_attached", &[]), 0.0);
    for (name, _) in s.keys() {
        assert!(
            !name.starts_with("patronus_port_")
                && !name.starts_with("patronus_worker_")
                && !name.starts_with("patronus_drops")
                && !name.starts_with("patronus_wan_")
                && !name.starts_with("patronus_table_generation"),
            "{name} exported while detached"
        );
    }
}

#[tokio::test]
async fn engine_values_are_read_at_each_scrape() {
    let source = Arc::new(LatestSnapshot::new(None));
    let metrics = Metrics::new(source.clone()).unwrap();
    let s = parse_exposition(&scrape(&metrics).await);
    assert_eq!(value(&s, "patronus_engine_attached", &[]), 0.0);

    let mut snap = fixed_snapshot();
    source.set(Some(snap.clone()));
    let s = parse_exposition(&scrape(&metrics).await);
    assert_eq!(value(&s, "patronus_engine_attached", &[]), 1.0);
    assert_eq!(
        value(&s, "patronus_drops_total", &[("reason", "no_route")]),
        42.0
    );

    snap.drops[0].1 = 50;
    snap.ports[0].rx_packets = 2000;
    snap.table_generation_acked = 17;
    source.set(Some(snap));
    let s = parse_exposition(&scrape(&metrics).await);
    assert_eq!(
        value(&s, "patronus_drops_total", &[("reason", "no_route")]),
        50.0
    );
    assert_eq!(
        value(
            &s,
            "patronus_port_packets_total",
            &[("port", "lan0"), ("direction", "rx")]
        ),
        2000.0
    );
    assert_eq!(value(&s, "patronus_table_generation_acked", &[]), 17.0);

    source.set(None);
    let s = parse_exposition(&scrape(&metrics).await);
    assert_eq!(value(&s, "patronus_engine_attached", &[]), 0.0);
    assert!(!s.keys().any(|(n, _)| n == "patronus_drops_total"));
}

#[tokio::test]
async fn api_requests_are_counted_by_route_template() {
    let metrics = Metrics::new(Arc::new(Detached)).unwrap();
    let statuses = drive_api(&api_app(&metrics)).await;
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::UNAUTHORIZED,
            StatusCode::OK,
            StatusCode::NOT_FOUND,
            StatusCode::CREATED,
            StatusCode::NOT_FOUND,
        ]
    );
    let s = parse_exposition(&scrape(&metrics).await);
    let req = |method: &str, route: &str, status: &str| {
        value(
            &s,
            "patronus_api_requests_total",
            &[("method", method), ("route", route), ("status", status)],
        )
    };
    assert_eq!(req("GET", "/api/v1/orgs", "200"), 2.0);
    assert_eq!(req("GET", "/api/v1/orgs", "401"), 1.0);
    assert_eq!(req("GET", "/api/v1/orgs/{org}", "200"), 1.0);
    assert_eq!(req("GET", "/api/v1/orgs/{org}", "404"), 1.0);
    assert_eq!(req("POST", "/api/v1/orgs", "201"), 1.0);
    assert_eq!(req("GET", "unmatched", "404"), 1.0);
    let total: f64 = s
        .iter()
        .filter(|((n, _), _)| n == "patronus_api_requests_total")
        .map(|(_, v)| v)
        .sum();
    assert_eq!(total, 7.0);

    // Raw paths never become labels.
    for (_, labels) in s.keys() {
        for v in labels.values() {
            assert!(
                !v.contains("default") && !v.contains("nosuch") && !v.contains("123"),
                "raw path in label {v:?}"
            );
        }
    }

    let dur_count = |method: &str, route: &str| {
        value(
            &s,
            "patronus_api_request_duration_seconds_count",
            &[("method", method), ("route", route)],
        )
    };
    assert_eq!(dur_count("GET", "/api/v1/orgs"), 3.0);
    assert_eq!(dur_count("GET", "/api/v1/orgs/{org}"), 2.0);
    assert_eq!(dur_count("POST", "/api/v1/orgs"), 1.0);
    assert_eq!(
        value(
            &s,
            "patronus_api_request_duration_seconds_bucket",
            &[("method", "GET"), ("route", "/api/v1/orgs"), ("le", "+Inf")]
        ),
        3.0
    );
}

#[tokio::test]
async fn push_latency_histogram_records_observations() {
    let metrics = Metrics::new(Arc::new(Detached)).unwrap();
    metrics.observe_push(0.002);
    metrics.observe_push(0.002);
    metrics.observe_push(0.2);
    metrics.observe_push(f64::NAN);
    metrics.observe_push(-1.0);
    let s = parse_exposition(&scrape(&metrics).await);
    let name = "patronus_table_push_latency_seconds";
    assert_eq!(value(&s, &format!("{name}_count"), &[]), 3.0);
    assert!((value(&s, &format!("{name}_sum"), &[]) - 0.204).abs() < 1e-12);
    assert_eq!(
        value(&s, &format!("{name}_bucket"), &[("le", "0.001")]),
        0.0
    );
    assert_eq!(
        value(&s, &format!("{name}_bucket"), &[("le", "0.0025")]),
        2.0
    );
    assert_eq!(value(&s, &format!("{name}_bucket"), &[("le", "0.1")]), 2.0);
    assert_eq!(value(&s, &format!("{name}_bucket"), &[("le", "0.25")]), 3.0);
    assert_eq!(value(&s, &format!("{name}_bucket"), &[("le", "+Inf")]), 3.0);
}

/// Runs `promtool check metrics` on an exposition; panics with its output on failure.
fn promtool_check(exposition: &str) {
    let mut child = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => panic!(
            "promtool is required for this test but could not be run ({e}); \
             install it with `apt-get install prometheus`"
        ),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics rejected the exposition ({}):\nstdout: {}\nstderr: {}\n---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        exposition
    );
}

#[tokio::test]
async fn promtool_accepts_the_exposition() {
    promtool_check(&scrape(&full_metrics().await).await);
    promtool_check(&scrape(&Metrics::new(Arc::new(Detached)).unwrap()).await);
}

#[test]
fn promtool_rejects_a_bad_exposition() {
    // Guards the check itself: a counter without `_total` is a lint error.
    let bad = "# HELP bad_counter x\n# TYPE bad_counter counter\nbad_counter 1\n";
    let out = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(bad.as_bytes())?;
            c.wait_with_output()
        })
        .expect("promtool is required: install it with `apt-get install prometheus`");
    assert!(!out.status.success(), "promtool accepted a bad exposition");
}

fn grafana_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../grafana")
}

fn collect_exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("expr", serde_json::Value::String(s)) => out.push(s.clone()),
                    _ => collect_exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}

/// Every `patronus_[a-z0-9_]+` identifier in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let bytes = expr.as_bytes();
    let mut names = Vec::new();
    let mut i = 0;
    while let Some(pos) = expr[i..].find("patronus_") {
        let start = i + pos;
        let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b':';
        let mut end = start + "patronus_".len();
        while end < bytes.len()
            && (bytes[end].is_ascii_lowercase()
                || bytes[end].is_ascii_digit()
                || bytes[end] == b'_')
        {
            end += 1;
        }
        if start == 0 || !ident(bytes[start - 1]) {
            names.push(expr[start..end].to_owned());
        }
        i = end;
    }
    names
}

/// A balancer with one checked VIP (a backend that went up once) and a
/// stand-in for the engine's `lb.sock`, so every `patronus_lb_*` family is
/// exported.
struct LbEngine {
    dir: PathBuf,
    status: LbStatus,
}

impl LbEngine {
    fn new() -> LbEngine {
        let dir = std::env::temp_dir().join(format!("patronus-metrics-lb-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let backend = Backend {
            id: 2,
            def: BackendDef {
                address: Ipv4Addr::new(10, 2, 0, 11),
                port: 80,
                weight: 1,
            },
            up: Some(true),
        };
        let status = LbStatus::new();
        status.set_vips(vec![Vip {
            id: 1,
            def: VipDef {
                name: "web".into(),
                address: Ipv4Addr::new(10, 9, 0, 100),
                port: 80,
                protocol: Protocol::Tcp,
                mode: Mode::Nat,
                table_size: 1009,
                health_check: Some(CheckDef {
                    kind: CheckType::Tcp,
                    path: None,
                    port: None,
                    interval_ms: 1000,
                    timeout_ms: 500,
                    rise: 2,
                    fall: 2,
                }),
            },
            backends: vec![backend],
        }]);
        status.count_transition("web", "10.2.0.11:80".into(), true);
        let reply = serde_json::to_string(&LbReply::Backends {
            backends: vec![LbBackendStats {
                id: 2,
                vip_id: 1,
                addr: Ipv4Addr::new(10, 2, 0, 11),
                port: 80,
                weight: 1,
                up: true,
                flows: 5,
                active_flows: 1,
                packets: 50,
                bytes: 5000,
            }],
            active_flows: 1,
            generation: 1,
            workers: 1,
        })
        .unwrap();
        let listener = UnixListener::bind(dir.join("lb.sock")).unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let Ok(mut w) = stream.try_clone() else {
                    return;
                };
                for line in BufReader::new(stream).lines() {
                    if line.is_err() || writeln!(w, "{reply}").is_err() {
                        break;
                    }
                }
            }
        });
        LbEngine { dir, status }
    }

    fn collector(&self) -> LbCollector {
        LbCollector::new(self.status.clone(), Some(self.dir.join("lb.sock"))).unwrap()
    }
}

impl Drop for LbEngine {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A BGP collector over an in-process speaker with one (passive, never
/// connected) neighbor; keep the sender alive while scraping.
async fn bgp_collector() -> (
    tokio::sync::watch::Sender<Option<patronus_control::bgp::supervisor::Running>>,
    patronus_control::bgp::metrics::BgpCollector,
) {
    use patronus_control::bgp::runtime::SpeakerStatus;
    use patronus_control::bgp::speaker::{self, NeighborConfig, SpeakerConfig};
    use patronus_control::bgp::supervisor::Running;
    let router_id = std::net::Ipv4Addr::new(10, 0, 0, 1);
    let mut cfg = SpeakerConfig::new(65001, router_id);
    cfg.listen = None;
    let mut n = NeighborConfig::new("192.0.2.1".parse().unwrap(), 65002);
    n.passive = true;
    cfg.neighbors = vec![n];
    let handle = speaker::spawn(cfg).await.unwrap();
    let (tx, running) = tokio::sync::watch::channel(Some(Running {
        handle,
        local_as: 65001,
        router_id,
        configured: 1,
    }));
    let status = SpeakerStatus {
        running,
        publisher: None,
        engine: None,
        installed: Default::default(),
        route6: Default::default(),
    };
    (
        tx,
        patronus_control::bgp::metrics::BgpCollector::new(status).unwrap(),
    )
}

#[tokio::test]
async fn bgp_families_are_exported_while_a_speaker_runs() {
    let (_running, bgp) = bgp_collector().await;
    let metrics = full_metrics().await.with_bgp(bgp).unwrap();
    let text = scrape(&metrics).await;
    let samples = parse_exposition(&text);
    let nb = [("neighbor", "192.0.2.1")];
    assert_eq!(
        value(&samples, "patronus_bgp_session_established", &nb),
        0.0
    );
    let state = value(&samples, "patronus_bgp_session_state", &nb);
    assert!(
        (1.0..=3.0).contains(&state),
        "Idle, Connect or Active: {state}"
    );
    assert_eq!(
        value(
            &samples,
            "patronus_bgp_prefixes_received",
            &[("neighbor", "192.0.2.1"), ("afi", "ipv4")]
        ),
        0.0
    );
    assert_eq!(
        value(&samples, "patronus_bgp_selected_routes", &[("afi", "ipv6")]),
        0.0
    );
    promtool_check(&text);
}

#[tokio::test]
async fn dashboard_queries_name_exported_metrics() {
    let path = grafana_dir().join("dashboards/patronus.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let dashboard: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
    assert!(dashboard["title"].is_string(), "dashboard has a title");
    assert!(dashboard["uid"].is_string(), "dashboard has a uid");
    let panels = dashboard["panels"]
        .as_array()
        .expect("dashboard has panels");
    assert!(panels.len() >= 8, "dashboard has its panels");
    // Unique ids, and no two panels on the same grid cells (24 columns).
    let mut ids = BTreeSet::new();
    let mut boxes: Vec<(u64, u64, u64, u64, &str)> = Vec::new();
    for p in panels {
        let id = p["id"].as_u64().expect("panel id");
        assert!(ids.insert(id), "panel id {id} used twice");
        let g = &p["gridPos"];
        let n = |k: &str| {
            g[k].as_u64()
                .unwrap_or_else(|| panic!("panel {id}: gridPos.{k}"))
        };
        let (x, y, w, h) = (n("x"), n("y"), n("w"), n("h"));
        assert!(w > 0 && h > 0 && x + w <= 24, "panel {id}: gridPos {g}");
        let title = p["title"].as_str().unwrap_or("");
        for &(x2, y2, w2, h2, t2) in &boxes {
            let apart = x + w <= x2 || x2 + w2 <= x || y + h <= y2 || y2 + h2 <= y;
            assert!(apart, "panels {title:?} and {t2:?} overlap");
        }
        boxes.push((x, y, w, h, title));
    }

    let mut exprs = Vec::new();
    collect_exprs(&dashboard, &mut exprs);
    assert!(exprs.len() >= 10, "found only {} queries", exprs.len());

    let lb = LbEngine::new();
    let (_running, bgp) = bgp_collector().await;
    let metrics = full_metrics()
        .await
        .with_lb(lb.collector())
        .unwrap()
        .with_bgp(bgp)
        .unwrap();
    metrics.refresh().await;
    let families: BTreeMap<String, MetricType> = metrics
        .gather()
        .into_iter()
        .map(|f| (f.get_name().to_owned(), f.get_field_type()))
        .collect();
    let exported = |name: &str| -> bool {
        if families.contains_key(name) {
            return true;
        }
        ["_bucket", "_sum", "_count"].iter().any(|suffix| {
            name.strip_suffix(suffix)
                .is_some_and(|base| families.get(base) == Some(&MetricType::HISTOGRAM))
        })
    };
    let mut used = BTreeSet::new();
    for expr in &exprs {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "query names no patronus metric: {expr}");
        for name in names {
            assert!(
                exported(&name),
                "dashboard query uses {name}, which the control process does not export: {expr}\nexported: {:?}",
                families.keys().collect::<Vec<_>>()
            );
            used.insert(name);
        }
    }
    // The issue's required views are all on the dashboard.
    for needed in [
        "patronus_port_packets_total",
        "patronus_port_bytes_total",
        "patronus_drops_total",
        "patronus_worker_polls_total",
        "patronus_worker_poll_latency_seconds_bucket",
        "patronus_table_generation",
        "patronus_table_push_latency_seconds_bucket",
        "patronus_api_requests_total",
        "patronus_api_request_duration_seconds_bucket",
        "patronus_engine_attached",
        "patronus_lb_backend_flows_total",
        "patronus_lb_backend_active_flows",
        "patronus_lb_backend_packets_total",
        "patronus_lb_backend_bytes_total",
        "patronus_lb_backend_up",
        "patronus_lb_backend_weight",
        "patronus_lb_health_transitions_total",
        "patronus_bgp_session_state",
        "patronus_bgp_session_established",
        "patronus_bgp_prefixes_received",
        "patronus_bgp_prefixes_accepted",
        "patronus_bgp_prefixes_advertised",
        "patronus_bgp_updates_received_total",
        "patronus_bgp_updates_sent_total",
        "patronus_bgp_selected_routes",
        "patronus_bgp_installed_routes",
        "patronus_wan_path_state",
        "patronus_wan_path_rtt_seconds",
        "patronus_wan_path_rtt_p95_seconds",
        "patronus_wan_path_jitter_seconds",
        "patronus_wan_path_loss_ratio",
        "patronus_wan_path_fec_active",
        "patronus_wan_path_tx_bytes_total",
        "patronus_wan_policy_path_packets_total",
        "patronus_wan_policy_moves_total",
        "patronus_wan_fec_recovered_total",
        "patronus_wan_fec_unrecoverable_total",
        "patronus_wan_compress_in_bytes_total",
        "patronus_wan_compress_out_bytes_total",
        "patronus_wan_compress_skipped_total",
    ] {
        assert!(used.contains(needed), "no dashboard query uses {needed}");
    }

    // Panels refer to the provisioned data source by its uid.
    let ds_yaml =
        std::fs::read_to_string(grafana_dir().join("provisioning/datasources/prometheus.yaml"))
            .expect("datasource provisioning file");
    let mut uids = BTreeSet::new();
    for p in panels {
        if let Some(uid) = p["datasource"]["uid"].as_str() {
            uids.insert(uid.to_owned());
        }
    }
    assert_eq!(uids.len(), 1, "one data source uid across panels: {uids:?}");
    let uid = uids.into_iter().next().unwrap();
    assert!(
        ds_yaml.lines().any(|l| l.trim() == format!("uid: {uid}")),
        "datasource provisioning does not define uid {uid}"
    );
    assert!(ds_yaml.contains("type: prometheus"));
}

#[test]
fn provisioning_points_at_the_dashboards_dir() {
    let yaml = std::fs::read_to_string(grafana_dir().join("provisioning/dashboards/patronus.yaml"))
        .expect("dashboard provider file");
    assert!(yaml.contains("type: file"), "a file provider");
    let path = yaml
        .lines()
        .find_map(|l| l.trim().strip_prefix("path:"))
        .expect("provider names a path")
        .trim()
        .trim_matches('"');
    assert!(
        path.trim_end_matches('/').ends_with("/dashboards"),
        "provider path {path} is not a dashboards directory"
    );
    assert!(grafana_dir().join("dashboards/patronus.json").is_file());

    let scrape = std::fs::read_to_string(grafana_dir().join("prometheus.yml"))
        .expect("prometheus scrape config example");
    assert!(
        scrape.contains("127.0.0.1:9108"),
        "scrapes the default metrics listener"
    );
    assert!(scrape.contains("/metrics") || !scrape.contains("metrics_path"));
}
