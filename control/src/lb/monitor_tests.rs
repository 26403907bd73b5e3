//! HealthMonitor tests against real servers on loopback. Intervals are short
//! to keep the tests fast; waits are bounded only by the hang guard.

use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::*;
use crate::lb::health::HttpCheck;
use crate::lb::test_util::{free_addr, guard, PyHttp, WebRoot};

fn fast(mut check: HealthCheck, rise: u32, fall: u32, initial: Health) -> HealthCheck {
    check.interval = Duration::from_millis(100);
    check.timeout = Duration::from_millis(100);
    check.rise = rise;
    check.fall = fall;
    check.initial = initial;
    check.validate().unwrap();
    check
}

async fn next(rx: &mut mpsc::Receiver<HealthEvent>) -> HealthEvent {
    guard("next health event", rx.recv())
        .await
        .expect("monitor closed its event channel")
}

/// A TCP listener that keeps accepting (and dropping) connections.
async fn tcp_backend() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move { while listener.accept().await.is_ok() {} });
    (addr, task)
}

#[tokio::test]
async fn http_backend_goes_down_and_comes_back() {
    let root = WebRoot::new();
    let server = PyHttp::start(&root, free_addr()).await;
    let addr = server.addr;
    let mut check = HealthCheck::http(HttpCheck::get("/health"));
    // Loopback python answers in about a millisecond; a wide timeout keeps a
    // loaded machine from producing spurious failures.
    check.interval = Duration::from_millis(150);
    check.timeout = Duration::from_millis(150);
    check.rise = 2;
    check.fall = 3;
    check.validate().unwrap();
    let (tx, mut rx) = mpsc::channel(8);
    let monitor = HealthMonitor::spawn(vec![(addr, check)], tx);

    let up = next(&mut rx).await;
    assert_eq!(up.backend, addr);
    assert!(up.up, "{up:?}");
    assert_eq!(up.reason, "2 consecutive successes, last: http status 200");
    assert_eq!(monitor.snapshot().await.unwrap(), vec![(addr, Health::Up)]);

    server.stop();
    let down = next(&mut rx).await;
    assert_eq!(down.backend, addr);
    assert!(!down.up, "{down:?}");
    assert_eq!(
        down.reason,
        "3 consecutive failures, last: connection refused"
    );

    let server = PyHttp::start(&root, addr).await;
    let up = next(&mut rx).await;
    assert!(up.up, "{up:?}");
    assert_eq!(up.reason, "2 consecutive successes, last: http status 200");

    guard("shutdown", monitor.shutdown()).await;
    // The task is gone: its event sender too.
    assert_eq!(guard("closed channel", rx.recv()).await, None);
    drop(server);
}

#[tokio::test]
async fn initially_up_backend_with_nothing_listening_goes_down() {
    let addr = free_addr();
    let (tx, mut rx) = mpsc::channel(8);
    let check = fast(HealthCheck::tcp(), 1, 2, Health::Up);
    let monitor = HealthMonitor::spawn(vec![(addr, check)], tx);
    assert_eq!(monitor.snapshot().await.unwrap(), vec![(addr, Health::Up)]);
    let ev = next(&mut rx).await;
    assert_eq!(
        ev,
        HealthEvent {
            backend: addr,
            up: false,
            reason: "2 consecutive failures, last: connection refused".into()
        }
    );
    guard("shutdown", monitor.shutdown()).await;
}

#[tokio::test]
async fn update_keeps_unchanged_backends_and_forgets_removed_ones() {
    let (a, _a_task) = tcp_backend().await;
    let (b, b_task) = tcp_backend().await;
    let check = fast(HealthCheck::tcp(), 1, 1, Health::Down);
    let (tx, mut rx) = mpsc::channel(8);
    let monitor = HealthMonitor::spawn(vec![(a, check.clone()), (b, check.clone())], tx);
    let mut ups = [next(&mut rx).await, next(&mut rx).await];
    ups.sort_by_key(|e| e.backend);
    let mut want = vec![a, b];
    want.sort();
    assert_eq!(ups.iter().map(|e| e.backend).collect::<Vec<_>>(), want);
    assert!(ups.iter().all(|e| e.up));

    // Remove b (and kill it: were it still probed, fall 1 would report it at
    // once), add c with nothing listening, keep a unchanged.
    let c = free_addr();
    // c's fall of 5 gives b, were it still probed, time to report first.
    let c_check = fast(HealthCheck::tcp(), 1, 5, Health::Up);
    monitor
        .update(vec![(a, check.clone()), (c, c_check)])
        .await
        .unwrap();
    b_task.abort();
    let _ = b_task.await;
    let mut snap = vec![(a, Health::Up), (c, Health::Up)];
    snap.sort_by_key(|(addr, _)| *addr);
    // a kept its Up state: a reset would have put it back to its initial Down.
    assert_eq!(monitor.snapshot().await.unwrap(), snap);
    let ev = next(&mut rx).await;
    assert_eq!((ev.backend, ev.up), (c, false), "{ev:?}");

    // A changed check on a keeps its state too.
    let mut slower = check.clone();
    slower.interval = Duration::from_millis(200);
    monitor.update(vec![(a, slower)]).await.unwrap();
    assert_eq!(monitor.snapshot().await.unwrap(), vec![(a, Health::Up)]);

    guard("shutdown", monitor.shutdown()).await;
    assert_eq!(guard("closed channel", rx.recv()).await, None);
}

#[tokio::test]
async fn shutdown_cancels_probes_in_flight() {
    // A server that never answers and a probe timeout far beyond the hang
    // guard: shutdown must cancel the probe, not wait for it.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (accepted_tx, mut accepted) = mpsc::channel(1);
    let (closed_tx, mut closed) = mpsc::channel(1);
    let _server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        accepted_tx.send(()).await.unwrap();
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink).await; // ends when the prober hangs up
        closed_tx.send(()).await.unwrap();
    });
    let mut check = HealthCheck::http(HttpCheck::get("/"));
    check.interval = Duration::from_secs(3600);
    check.timeout = Duration::from_secs(3600);
    check.validate().unwrap();
    let (tx, mut rx) = mpsc::channel(8);
    let no_jitter = MonitorConfig { jitter: false };
    let monitor = HealthMonitor::spawn_with(vec![(addr, check)], tx, no_jitter);
    guard("probe connects", accepted.recv()).await.unwrap();
    guard("shutdown", monitor.shutdown()).await;
    guard("probe connection closed", closed.recv())
        .await
        .unwrap();
    assert_eq!(guard("closed channel", rx.recv()).await, None);
}

#[test]
fn first_probes_spread_over_the_interval() {
    let random = RandomState::new();
    let interval = Duration::from_secs(2);
    let offsets: Vec<Duration> = (0..64u16)
        .map(|i| {
            let addr = SocketAddr::from(([127, 0, 0, 1], 8000 + i));
            first_probe_offset(&random, (addr, u64::from(i)), interval)
        })
        .collect();
    assert!(offsets.iter().all(|o| *o < interval), "{offsets:?}");
    let mut distinct = offsets.clone();
    distinct.sort();
    distinct.dedup();
    // 64 draws from 2e9 values: all equal only if the spreading is broken.
    assert!(distinct.len() > 32, "{offsets:?}");
    let tiny = first_probe_offset(
        &random,
        (SocketAddr::from(([127, 0, 0, 1], 1)), 0),
        Duration::from_nanos(1),
    );
    assert_eq!(tiny, Duration::ZERO);
}
