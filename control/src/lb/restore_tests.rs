use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use patronus_shm::lb::{LbBackendEntry, LbSettingsEntry, LbTables, LbVipEntry};
use patronus_shm::Publisher;

use super::{published, seeds};
use crate::lb::health::Health;
use crate::lb::model::{Backend, BackendDef, CheckDef, CheckType, Mode, Protocol, Vip, VipDef};

fn check(port: Option<u16>) -> CheckDef {
    CheckDef {
        kind: CheckType::Tcp,
        path: None,
        port,
        interval_ms: 1000,
        timeout_ms: 500,
        rise: 2,
        fall: 2,
    }
}

fn backend(id: i64, last: u8, port: u16) -> Backend {
    Backend {
        id,
        def: BackendDef {
            address: Ipv4Addr::new(10, 2, 0, last),
            port,
            weight: 1,
        },
        up: None,
    }
}

fn vip(id: i64, check: Option<CheckDef>, backends: Vec<Backend>) -> Vip {
    Vip {
        id,
        def: VipDef {
            name: format!("v{id}"),
            address: Ipv4Addr::new(10, 9, 0, 100),
            port: 80,
            protocol: Protocol::Tcp,
            mode: Mode::Nat,
            table_size: 1009,
            health_check: check,
        },
        backends,
    }
}

fn entry(id: u32, vip_id: u32, last: u8, port: u16, up: u8) -> LbBackendEntry {
    LbBackendEntry {
        id,
        vip_id,
        addr: Ipv4Addr::new(10, 2, 0, last).into(),
        port,
        weight: 1,
        up,
        reserved: [0; 3],
    }
}

fn tables(backends: Vec<LbBackendEntry>) -> LbTables {
    let mut vip_ids: Vec<u32> = backends.iter().map(|b| b.vip_id).collect();
    vip_ids.sort_unstable();
    vip_ids.dedup();
    LbTables {
        settings: Some(LbSettingsEntry {
            max_flows: 0,
            tcp_timeout_secs: 0,
            tcp_closing_timeout_secs: 0,
            udp_timeout_secs: 0,
        }),
        vips: vip_ids
            .into_iter()
            .map(|id| LbVipEntry {
                id,
                addr: Ipv4Addr::new(10, 9, 0, 100).into(),
                port: 80,
                proto: patronus_shm::lb::LB_PROTO_TCP,
                mode: patronus_shm::lb::LB_MODE_NAT,
                table_size: 1009,
            })
            .collect(),
        backends,
    }
}

fn target(last: u8, port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::new(10, 2, 0, last), port))
}

#[test]
fn checked_backends_take_the_published_state_by_id() {
    let vips = [
        vip(
            1,
            Some(check(None)),
            vec![
                backend(10, 11, 80),
                backend(11, 12, 80),
                backend(12, 13, 80),
            ],
        ),
        // Not checked: nothing to seed.
        vip(2, None, vec![backend(20, 21, 80)]),
    ];
    let published = tables(vec![
        entry(10, 1, 11, 80, 1),
        entry(11, 1, 12, 80, 0),
        // 12 is not in the file (added while the control was down).
        entry(20, 2, 21, 80, 1),
    ]);
    let got = seeds(&vips, &published);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got.get(&(1, target(11, 80))), Some(&Health::Up));
    assert_eq!(got.get(&(1, target(12, 80))), Some(&Health::Down));
    assert_eq!(got.get(&(1, target(13, 80))), None);
}

#[test]
fn an_entry_that_is_not_the_stored_backend_lends_nothing() {
    let vips = [vip(1, Some(check(None)), vec![backend(10, 11, 80)])];
    for wrong in [
        entry(10, 2, 11, 80, 1), // another VIP
        entry(10, 1, 99, 80, 1), // another address
        entry(10, 1, 11, 81, 1), // another port
        entry(11, 1, 11, 80, 1), // another id
    ] {
        let got = seeds(&vips, &tables(vec![wrong]));
        assert!(got.is_empty(), "{wrong:?} gave {got:?}");
    }
}

#[test]
fn backends_sharing_a_probe_target_are_up_if_any_was() {
    // The check's port: both backends of 10.2.0.11 are probed at :9000.
    let vips = [vip(
        1,
        Some(check(Some(9000))),
        vec![backend(10, 11, 80), backend(11, 11, 81)],
    )];
    for order in [[0u8, 1], [1, 0]] {
        let published = tables(vec![
            entry(10, 1, 11, 80, order[0]),
            entry(11, 1, 11, 81, order[1]),
        ]);
        let got = seeds(&vips, &published);
        assert_eq!(got.len(), 1);
        assert_eq!(got.get(&(1, target(11, 9000))), Some(&Health::Up));
    }
}

/// A runtime directory removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let p = std::env::temp_dir().join(format!("patronus-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn the_last_published_file_is_read_back() {
    let dir = Dir::new("lb-restore");
    let mut p = Publisher::open(&dir.0).unwrap();
    assert_eq!(published(&p).unwrap(), None, "nothing published yet");
    let first = tables(vec![entry(10, 1, 11, 80, 0)]);
    let second = tables(vec![entry(10, 1, 11, 80, 1)]);
    p.publish_lb(&first).unwrap();
    p.publish_lb(&second).unwrap();
    assert_eq!(published(&p).unwrap(), Some(second.clone()));
    // What a restarted control process sees.
    drop(p);
    let p = Publisher::open(&dir.0).unwrap();
    assert_eq!(published(&p).unwrap(), Some(second));

    // A damaged file is an error (the caller starts as if there were none).
    std::fs::write(p.dir().lb(), b"not an lb file").unwrap();
    assert!(published(&p).is_err());
}
