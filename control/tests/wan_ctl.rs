//! `patronusctl wan ...` end to end: the built binary against the real API
//! (in-memory store) on an ephemeral port, with an engine view holding
//! fixed WAN counters, and against one with no engine (503: exit 1).

mod common;

use std::net::SocketAddr;
use std::sync::{mpsc, Arc};

use serde_json::Value;

use common::cli::ctl;
use common::TOKEN;
use patronus_control::auth::ApiToken;
use patronus_control::metrics::{EngineSnapshot, EngineSource, LatestSnapshot};
use patronus_control::state::spawn_store;
use patronus_control::store::Store;
use patronus_control::{app, AppState};

fn serve_api(engine: Option<Arc<dyn EngineSource>>) -> String {
    let (tx, rx) = mpsc::channel::<SocketAddr>();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let store = spawn_store(Store::open_in_memory().expect("store")).expect("actor");
            let router = app(AppState {
                store,
                token: ApiToken::new(TOKEN).unwrap(),
                engine,
                bgp: Arc::new(patronus_control::bgp::status::NoSpeaker),
            });
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, router).await.expect("serve");
        });
    });
    format!("http://{}", rx.recv().expect("API address"))
}

fn engine() -> Arc<dyn EngineSource> {
    let wan = [
        ("path.fibre.state", 1),
        ("path.fibre.rtt_us", 12_340),
        ("path.fibre.rtt_p95_us", 20_000),
        ("path.fibre.jitter_us", 750),
        ("path.fibre.probes_sent", 600),
        ("path.fibre.probes_replied", 600),
        ("path.fibre.tx_packets", 900),
        ("path.fibre.tx_bytes", 450_000),
        ("path.lte.state", 2),
        ("path.lte.loss_ppm", 52_500),
        ("path.lte.transitions", 2),
        ("path.lte.fec_active", 1),
        ("path.lte.fec_recovered", 6),
        ("path.lte.fec_unrecoverable", 1),
        ("policy.voice.path.fibre.packets", 300),
        ("policy.voice.path.lte.packets", 100),
        ("policy.voice.moves", 3),
        ("policy.bulk.moves", 0),
        ("compress_in_bytes", 1_000),
        ("compress_out_bytes", 250),
        ("bad_packets", 7),
    ]
    .iter()
    .map(|(n, v)| ((*n).to_owned(), *v))
    .collect();
    Arc::new(LatestSnapshot::new(Some(EngineSnapshot {
        wan,
        ..Default::default()
    })))
}

fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

#[test]
fn wan_paths_and_policies_as_tables_and_json() {
    let api = serve_api(Some(engine()));

    let r = ctl(&api, &["wan", "paths"]).ok();
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(lines[0].starts_with("PATH"), "{}", r.stdout);
    assert!(lines[0].contains("RTT MS") && lines[0].contains("LOSS %"));
    assert_eq!(
        words(lines[1]),
        [
            "fibre", "alive", "12.34", "20.00", "0.75", "0.00", "600", "600", "0", "900", "450000",
            "off", "0", "0"
        ]
    );
    assert_eq!(
        words(lines[2]),
        ["lte", "dead", "0.00", "0.00", "0.00", "5.25", "0", "0", "2", "0", "0", "on", "6", "1"]
    );
    assert_eq!(lines[3], "bad packets: 7");

    let r = ctl(&api, &["wan", "policies"]).ok();
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(
        words(lines[0]),
        ["POLICY", "MOVES", "PATH", "PACKETS", "SHARE", "%"]
    );
    assert_eq!(words(lines[1]), ["bulk", "0", "-"]);
    assert_eq!(words(lines[2]), ["voice", "3", "fibre", "300", "75.0"]);
    assert_eq!(words(lines[3]), ["voice", "3", "lte", "100", "25.0"]);
    assert!(
        lines.iter().any(|l| words(l) == ["ratio", "0.25"]),
        "{}",
        r.stdout
    );
    assert!(
        lines.iter().any(|l| words(l) == ["saved_bytes", "750"]),
        "{}",
        r.stdout
    );

    let v: Value = ctl(&api, &["--json", "wan", "paths"]).ok().json();
    assert_eq!(v["paths"][1]["name"], "lte");
    assert_eq!(v["paths"][1]["loss_pct"], 5.25);
    let v: Value = ctl(&api, &["wan", "policies", "--json"]).ok().json();
    assert_eq!(v["policies"][1]["paths"][0]["packets"], 300);
    assert_eq!(v["compression"]["ratio"], 0.25);

    // Usage errors: exit 2.
    assert_eq!(ctl(&api, &["wan"]).code, 2);
    assert_eq!(ctl(&api, &["wan", "tunnels"]).code, 2);
}

#[test]
fn wan_without_an_engine_fails_with_the_api_error() {
    let api = serve_api(None);
    for cmd in ["paths", "policies"] {
        let r = ctl(&api, &["wan", cmd]);
        assert_eq!(r.code, 1, "{cmd}: {}", r.stdout);
        assert!(r.stderr.contains("engine_unavailable"), "{}", r.stderr);
        assert!(r.stdout.is_empty());
    }
}
