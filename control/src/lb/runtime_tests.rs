use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use patronus_shm::Publisher;

use super::{LbRuntime, ProbeSet};
use crate::lb::health::Health;
use crate::lb::model::{BackendDef, CheckDef, CheckType, Mode, Protocol, VipDef};
use crate::lb::push::compile;
use crate::lb::restore::published;
use crate::lb::status::LbStatus;
use crate::store::Store;

fn def(name: &str) -> VipDef {
    VipDef {
        name: name.to_owned(),
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
    }
}

fn backend(last: u8) -> BackendDef {
    BackendDef {
        address: Ipv4Addr::new(10, 2, 0, last),
        port: 80,
        weight: 1,
    }
}

fn target(last: u8) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::new(10, 2, 0, last), 80))
}

fn transitions(status: &LbStatus, to: &str) -> u64 {
    status
        .transitions()
        .into_iter()
        .filter(|((_, _, t), _)| *t == to)
        .map(|(_, n)| n)
        .sum()
}

/// The probe targets handed to the link, with their start states.
fn probed(rx: &tokio::sync::watch::Receiver<ProbeSet>) -> Vec<(SocketAddr, Health)> {
    rx.borrow().iter().flat_map(|p| p.targets.clone()).collect()
}

#[test]
fn a_change_seen_only_in_a_sync_is_counted_once() {
    let mut store = Store::open_in_memory().unwrap();
    let vip = store.create_vip(&def("web"), &[backend(11)]).unwrap();
    let status = LbStatus::new();
    let (mut lb, _rx) = LbRuntime::new(None, status.clone());
    lb.refresh(&mut store).unwrap();
    assert_eq!(status.health_syncs(), 0);

    lb.health_sync(vec![(vip.id, target(11), true)]);
    assert_eq!(status.health_syncs(), 1);
    assert_eq!(transitions(&status, "up"), 1, "down → up seen in the sync");
    // Its event, arriving after the sync, is not counted again.
    lb.health_event(vip.id, target(11), true, "2 consecutive successes");
    assert_eq!(transitions(&status, "up"), 1);
    // Nothing new in another sync.
    lb.health_sync(vec![(vip.id, target(11), true)]);
    assert_eq!(transitions(&status, "up"), 1);
    // An event first, then the sync that shows it: once.
    lb.health_event(vip.id, target(11), false, "2 consecutive failures");
    lb.health_sync(vec![(vip.id, target(11), false)]);
    assert_eq!(transitions(&status, "down"), 1);
    assert_eq!(transitions(&status, "up"), 1);
}

/// A runtime directory removed on drop.
struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn published_health_seeds_the_start_and_stays_while_probed() {
    let dir = Dir(std::env::temp_dir().join(format!("patronus-lb-seed-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&dir.0);
    let mut store = Store::open_in_memory().unwrap();
    let mut vip = store
        .create_vip(&def("web"), &[backend(11), backend(12)])
        .unwrap();
    // What the previous control process published: .11 up, .12 down.
    vip.backends[0].up = Some(true);
    vip.backends[1].up = Some(false);
    Publisher::open(&dir.0)
        .unwrap()
        .publish_lb(&compile(&[vip.clone()]).unwrap())
        .unwrap();

    let publisher = Arc::new(Mutex::new(Publisher::open(&dir.0).unwrap()));
    let (mut lb, rx) = LbRuntime::new(Some(publisher.clone()), LbStatus::new());
    let vips = lb.refresh(&mut store).unwrap();
    let ups: Vec<Option<bool>> = vips[0].backends.iter().map(|b| b.up).collect();
    assert_eq!(ups, [Some(true), Some(false)]);
    let first = published(&publisher.lock().unwrap()).unwrap().unwrap();
    let ups: Vec<u8> = first.backends.iter().map(|b| b.up).collect();
    assert_eq!(ups, [1, 0], "the first push keeps the engine's health");
    assert_eq!(
        probed(&rx),
        [(target(11), Health::Up), (target(12), Health::Down)]
    );

    // A later change hands the monitors the same start states (an equal
    // check: their state and rise/fall runs are kept).
    store.add_backend("web", &backend(13)).unwrap();
    lb.refresh(&mut store).unwrap();
    assert_eq!(
        probed(&rx),
        [
            (target(11), Health::Up),
            (target(12), Health::Down),
            (target(13), Health::Down)
        ]
    );

    // Removed and added again: it starts as the check says.
    store
        .remove_backend("web", SocketAddrV4::new(Ipv4Addr::new(10, 2, 0, 11), 80))
        .unwrap();
    lb.refresh(&mut store).unwrap();
    store.add_backend("web", &backend(11)).unwrap();
    lb.refresh(&mut store).unwrap();
    assert_eq!(
        probed(&rx),
        [
            (target(11), Health::Down),
            (target(12), Health::Down),
            (target(13), Health::Down)
        ]
    );
}
