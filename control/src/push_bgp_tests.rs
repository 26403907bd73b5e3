//! The BGP layer of the pusher: static routes and connected subnets win,
//! next hops become the gateways they resolve to (recursively through
//! static routes), batches go out as deltas, withdrawals and a
//! replacement remove what they should and nothing else.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use patronus_shm::Generation;

use super::*;
use crate::model::{InterfaceDef, RouteDef};

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "patronus-pushbgp-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&p);
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn newest(dir: &Path, pusher: &Pusher) -> Generation {
    let g = pusher.publisher().lock().unwrap().current_generation();
    Generation::load(&patronus_shm::subscribe::generation_path(dir, g), g).unwrap()
}

fn k(a: [u8; 4], len: u8) -> RouteKey {
    (u32::from_be_bytes(a), len)
}

fn ip(a: [u8; 4]) -> Ipv4Addr {
    Ipv4Addr::from(a)
}

fn cidr(s: &str) -> Cidr {
    Cidr::parse_prefix("prefix", s).unwrap()
}

/// A store with wan0 10.2.0.1/24 and a static 10.50.0.0/16 via 10.2.0.9.
fn setup() -> Store {
    let mut store = Store::open_in_memory().unwrap();
    store
        .create_interface(
            PUSHED_ORG,
            &InterfaceDef {
                port: "wan0".into(),
                address: Cidr::parse("a", "10.2.0.1/24").unwrap(),
                vlan: None,
            },
        )
        .unwrap();
    store
        .create_route(
            PUSHED_ORG,
            &RouteDef {
                prefix: cidr("10.50.0.0/16"),
                next_hops: vec![[10, 2, 0, 9].into()],
                blackhole: false,
                tunnel: None,
            },
        )
        .unwrap();
    store
}

/// The table as last published, as key → gateways.
fn table(_dir: &Path, pusher: &Pusher) -> Vec<(RouteKey, Vec<u32>)> {
    let mut v: Vec<_> = pusher
        .table
        .values()
        .map(|r| {
            (
                (r.prefix, r.prefix_len),
                r.nexthops[..usize::from(r.nexthop_count)].to_vec(),
            )
        })
        .collect();
    v.sort();
    v
}

fn gw(a: [u8; 4]) -> u32 {
    u32::from_be_bytes(a)
}

#[test]
fn bgp_routes_merge_under_static_routes_and_connected_subnets() {
    let dir = TempDir::new("merge");
    let mut store = setup();
    let mut pusher = Pusher::open(&dir.0).unwrap();
    pusher
        .push_if_changed(&mut store, Touched::Nothing)
        .unwrap()
        .unwrap();
    let g0 = pusher.publisher().lock().unwrap().current_generation();

    let update = BgpUpdate {
        replace: false,
        routes: vec![
            // Directly reachable, two next hops (ECMP).
            (
                k([10, 9, 0, 0], 24),
                vec![ip([10, 2, 0, 7]), ip([10, 2, 0, 8])],
            ),
            // The static route's prefix: the static route stays.
            (k([10, 50, 0, 0], 16), vec![ip([10, 2, 0, 7])]),
            // The connected subnet: not installed.
            (k([10, 2, 0, 0], 24), vec![ip([10, 2, 0, 7])]),
            // Recursive: 10.50.1.1 resolves through the static route.
            (k([10, 60, 0, 0], 16), vec![ip([10, 50, 1, 1])]),
            // Unresolvable: not installed.
            (k([10, 70, 0, 0], 16), vec![ip([192, 0, 2, 1])]),
        ],
    };
    let g1 = pusher.push_bgp(&mut store, update).unwrap().unwrap();
    assert_eq!(g1, g0 + 1);
    assert_eq!(pusher.last_kind(), Some(PushKind::Delta));
    assert_eq!(newest(&dir.0, &pusher).view().route_changes().len(), 2);
    assert_eq!(
        table(&dir.0, &pusher),
        vec![
            (
                k([10, 9, 0, 0], 24),
                vec![gw([10, 2, 0, 7]), gw([10, 2, 0, 8])]
            ),
            (k([10, 50, 0, 0], 16), vec![gw([10, 2, 0, 9])]),
            (k([10, 60, 0, 0], 16), vec![gw([10, 2, 0, 9])]),
        ]
    );
    assert_eq!(pusher.bgp_routes_installed(), 2);
    assert_eq!(
        pusher.bgp_installed().lock().unwrap().back(),
        Some(&(g1, 2))
    );

    // The static route moves: the recursive BGP route follows (a delta).
    let r = store.list_routes(PUSHED_ORG).unwrap()[0].clone();
    store
        .replace_route(
            PUSHED_ORG,
            r.id,
            &RouteDef {
                prefix: cidr("10.50.0.0/16"),
                next_hops: vec![[10, 2, 0, 10].into()],
                blackhole: false,
                tunnel: None,
            },
        )
        .unwrap();
    pusher
        .push_if_changed(&mut store, Touched::Prefixes(vec![cidr("10.50.0.0/16")]))
        .unwrap()
        .unwrap();
    let g = newest(&dir.0, &pusher);
    assert_eq!(pusher.last_kind(), Some(PushKind::Delta));
    let mut ch: Vec<(RouteKey, u32)> = g
        .view()
        .route_changes()
        .iter()
        .map(|c| ((c.route.prefix, c.route.prefix_len), c.route.nexthops[0]))
        .collect();
    ch.sort();
    assert_eq!(
        ch,
        vec![
            (k([10, 50, 0, 0], 16), gw([10, 2, 0, 10])),
            (k([10, 60, 0, 0], 16), gw([10, 2, 0, 10])),
        ]
    );

    // BGP withdraws the static route's prefix: the static route is untouched
    // (nothing to publish); it withdraws 10.9.0.0/24: one withdrawal.
    let none = pusher
        .push_bgp(
            &mut store,
            BgpUpdate {
                replace: false,
                routes: vec![(k([10, 50, 0, 0], 16), vec![])],
            },
        )
        .unwrap();
    assert_eq!(none, None, "the static route stays as it was");
    pusher
        .push_bgp(
            &mut store,
            BgpUpdate {
                replace: false,
                routes: vec![(k([10, 9, 0, 0], 24), vec![])],
            },
        )
        .unwrap()
        .unwrap();
    let g = newest(&dir.0, &pusher);
    assert_eq!(pusher.last_kind(), Some(PushKind::Delta));
    let ch = g.view().route_changes();
    assert_eq!(ch.len(), 1);
    assert!(ch[0].is_withdraw());
    assert_eq!(
        (ch[0].route.prefix, ch[0].route.prefix_len),
        k([10, 9, 0, 0], 24)
    );

    // Deleting the static route: BGP's route of that prefix appears? No:
    // BGP withdrew it above; the recursive route loses its resolution.
    store.delete_route(PUSHED_ORG, r.id).unwrap();
    pusher
        .push_if_changed(&mut store, Touched::Prefixes(vec![cidr("10.50.0.0/16")]))
        .unwrap()
        .unwrap();
    assert_eq!(pusher.bgp_routes_installed(), 0);

    // A replacement with nothing leaves only static routes (none now).
    pusher
        .push_bgp(
            &mut store,
            BgpUpdate {
                replace: true,
                routes: vec![],
            },
        )
        .unwrap();
    pusher.checkpoint_if_due().unwrap();
    assert_eq!(pusher.routes(), 0);
}

#[test]
fn a_static_route_deleted_uncovers_the_bgp_route_of_its_prefix() {
    let dir = TempDir::new("uncover");
    let mut store = setup();
    let mut pusher = Pusher::open(&dir.0).unwrap();
    pusher
        .push_if_changed(&mut store, Touched::Nothing)
        .unwrap()
        .unwrap();
    pusher
        .push_bgp(
            &mut store,
            BgpUpdate {
                replace: false,
                routes: vec![(k([10, 50, 0, 0], 16), vec![ip([10, 2, 0, 7])])],
            },
        )
        .unwrap();
    assert_eq!(
        table(&dir.0, &pusher)[0].1,
        vec![gw([10, 2, 0, 9])],
        "static"
    );
    let id = store.list_routes(PUSHED_ORG).unwrap()[0].id;
    store.delete_route(PUSHED_ORG, id).unwrap();
    pusher
        .push_if_changed(&mut store, Touched::Prefixes(vec![cidr("10.50.0.0/16")]))
        .unwrap()
        .unwrap();
    let g = newest(&dir.0, &pusher);
    let ch = g.view().route_changes();
    assert_eq!(ch.len(), 1);
    assert!(!ch[0].is_withdraw());
    assert_eq!(
        ch[0].route.nexthops[0],
        gw([10, 2, 0, 7]),
        "BGP's route now"
    );
}

#[test]
fn large_batches_are_deltas_against_a_large_table() {
    let dir = TempDir::new("delta");
    let mut store = setup();
    let mut pusher = Pusher::open(&dir.0).unwrap();
    pusher.set_checkpoint_policy(1000, 64);
    pusher
        .push_if_changed(&mut store, Touched::Nothing)
        .unwrap()
        .unwrap();
    let batch = |from: u32, n: u32| BgpUpdate {
        replace: false,
        routes: (from..from + n)
            .map(|i| ((0x0b00_0000 + (i << 8), 24), vec![ip([10, 2, 0, 7])]))
            .collect(),
    };
    // The first batch is the whole table: a full generation.
    pusher
        .push_bgp(&mut store, batch(0, 1000))
        .unwrap()
        .unwrap();
    assert_eq!(pusher.last_kind(), Some(PushKind::Full));
    // Then smaller than a quarter of the table: deltas.
    for round in 0..3 {
        pusher
            .push_bgp(&mut store, batch(1000 + round * 100, 100))
            .unwrap()
            .unwrap();
        assert_eq!(pusher.last_kind(), Some(PushKind::Delta));
        assert_eq!(newest(&dir.0, &pusher).view().route_changes().len(), 100);
    }
    assert_eq!(pusher.bgp_routes_installed(), 1300);
}
