//! A control restart does not drop the balancer's flows: checked backends
//! start as the `lb.bin` already in the runtime directory had them, so the
//! first push after the restart keeps a healthy backend up (and one that
//! was down, down), and the health monitors, started in that state, do not
//! take it back.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use common::TempDir;
use patronus_control::lb::model::{BackendDef, CheckDef, CheckType, Mode, Protocol, VipDef};
use patronus_control::lb::status::LbStatus;
use patronus_control::models::push::ModelInfoGauge;
use patronus_control::push::Pusher;
use patronus_control::state::{spawn_store_full, StoreHandle};
use patronus_control::store::Store;
use patronus_shm::lb::LbTables;
use patronus_shm::Subscriber;

/// Tries before a condition that must become true is declared never met
/// (a hang guard, not a timing assertion).
const TRIES: usize = 3000;
const TRY_EVERY: Duration = Duration::from_millis(10);

/// The store actor with its health link and publisher, as `main` starts it.
fn start(shm: &Path, db: &Path) -> (StoreHandle, LbStatus) {
    let status = LbStatus::new();
    let h = spawn_store_full(
        Store::open(db).unwrap(),
        Some(Pusher::open(shm).unwrap()),
        ModelInfoGauge::new().unwrap(),
        status.clone(),
    )
    .unwrap();
    (h, status)
}

/// A TCP listener on loopback counting the connections it accepts.
async fn tcp_backend() -> (SocketAddr, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let n = accepted.clone();
    let task = tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            n.fetch_add(1, Ordering::SeqCst);
            drop(s);
        }
    });
    (addr, accepted, task)
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

fn vip() -> VipDef {
    VipDef {
        name: "web".to_owned(),
        address: Ipv4Addr::new(10, 9, 0, 100),
        port: 80,
        protocol: Protocol::Tcp,
        mode: Mode::Nat,
        table_size: 1009,
        health_check: Some(CheckDef {
            kind: CheckType::Tcp,
            path: None,
            port: None,
            interval_ms: 200,
            timeout_ms: 200,
            rise: 2,
            fall: 2,
        }),
    }
}

fn up_of(t: &LbTables, addr: SocketAddr) -> Option<u8> {
    t.backends
        .iter()
        .find(|b| b.port == addr.port())
        .map(|b| b.up)
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..TRIES {
        if cond() {
            return;
        }
        tokio::time::sleep(TRY_EVERY).await;
    }
    panic!("never happened: {what}");
}

#[tokio::test]
async fn a_restart_starts_checked_backends_as_the_engine_had_them() {
    let tmp = TempDir::new("lb-restart");
    let shm = tmp.path().join("shm");
    std::fs::create_dir_all(&shm).unwrap();
    let db = tmp.path().join("control.db");
    let mut sub = Subscriber::open(&shm).unwrap();
    let (live, accepted, live_task) = tcp_backend().await;
    let dead = {
        // A port that nothing listens on: bound, then closed.
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };

    // First life: the live backend rises, the dead one stays down.
    let (h, _) = start(&shm, &db);
    h.create_vip(vip(), vec![backend(live), backend(dead)])
        .await
        .unwrap();
    let mut last = None;
    wait_for("the live backend up in lb.bin", || {
        if let Some((_, t)) = sub.poll_lb().unwrap() {
            last = Some(t);
        }
        last.as_ref().and_then(|t| up_of(t, live)) == Some(1)
    })
    .await;
    assert_eq!(last.as_ref().and_then(|t| up_of(t, dead)), Some(0));
    h.close().await;
    let before = sub.lb_generation();

    // Second life, same database and runtime directory.
    let (h, status) = start(&shm, &db);
    wait_for("the monitors' first state applied", || {
        status.health_syncs() >= 1
    })
    .await;
    // Probes keep going in the start state (a round trip to the store
    // actor after them: whatever they caused is applied).
    let seen = accepted.load(Ordering::SeqCst);
    wait_for("three more probes of the live backend", || {
        accepted.load(Ordering::SeqCst) >= seen + 3
    })
    .await;
    let shown = h.get_vip("web".into()).await.unwrap();

    assert_eq!(
        sub.lb_generation(),
        before + 1,
        "one push after the restart: no backend's health changed"
    );
    let (n, first) = sub.poll_lb().unwrap().expect("the restart's push");
    assert_eq!(n, before + 1);
    assert_eq!(up_of(&first, live), Some(1), "kept up: its flows go on");
    assert_eq!(
        up_of(&first, dead),
        Some(0),
        "down in the file: starts down"
    );
    let health: Vec<(u16, Option<bool>)> =
        shown.backends.iter().map(|b| (b.def.port, b.up)).collect();
    assert_eq!(
        health,
        [(live.port(), Some(true)), (dead.port(), Some(false))]
    );
    assert!(
        status.transitions().is_empty(),
        "no transition after the restart: {:?}",
        status.transitions()
    );
    h.close().await;
    live_task.abort();
}
