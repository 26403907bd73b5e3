//! The FIB follows delta generations incrementally: after any sequence of
//! pushed route changes it forwards exactly like a table built whole from
//! the resulting route set, and it does so without copying the table once
//! the workers let go of the previous one.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use patronus_engine::config::EngineConfig;
use patronus_engine::fib::{Fib, RouteAction, StaticRoute};
use patronus_engine::fib_sync::{FibSync, Update};
use patronus_shm::{
    GenerationBuilder, Publisher, RouteChange, RouteEntry, RouteKind, Subscriber, TableBuilder,
};
use proptest::prelude::*;

const ENGINE: &str = r#"
[[port]]
name = "lan0"
driver = "mem"
[[port]]
name = "wan0"
driver = "mem"
[[interface]]
port = "lan0"
address = "10.1.0.1/24"
[[interface]]
port = "wan0"
address = "10.2.0.1/24"
[[route]]
prefix = "172.16.0.0/12"
via = "10.1.0.9"
"#;

struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p =
            std::env::temp_dir().join(format!("patronus-fibsync-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

type Desired = BTreeMap<(u32, u8), RouteAction>;

fn entry(prefix: u32, len: u8, action: &RouteAction) -> RouteEntry {
    match action {
        RouteAction::Blackhole => RouteEntry::new(prefix, len, RouteKind::Blackhole),
        RouteAction::Tunnel(t) => RouteEntry::tunnel(prefix, len, *t),
        RouteAction::Via(gws) => {
            let mut e = RouteEntry::new(prefix, len, RouteKind::Via);
            for gw in gws {
                assert!(e.push_nexthop(*gw, u16::MAX));
            }
            e
        }
    }
}

fn publish_full(p: &mut Publisher, desired: &Desired) -> u64 {
    let mut t = TableBuilder::<RouteEntry>::new();
    for ((prefix, len), a) in desired {
        t.push(entry(*prefix, *len, a)).unwrap();
    }
    let mut g = GenerationBuilder::new();
    g.add(t).unwrap();
    p.publish(&g).unwrap()
}

fn publish_delta(p: &mut Publisher, changes: &[RouteChange]) -> u64 {
    let mut t = TableBuilder::<RouteChange>::new();
    t.extend_from_slice(changes).unwrap();
    let mut g = GenerationBuilder::new();
    g.add(t).unwrap();
    g.set_delta_of(p.current_generation());
    p.publish(&g).unwrap()
}

/// The engine's link thread, one round: poll and update.
fn step(sync: &mut FibSync, sub: &mut Subscriber) -> Update {
    let g = sub.poll().unwrap().expect("a new generation");
    sync.update(sub.dir(), g).unwrap()
}

fn whole(cfg: &EngineConfig, desired: &Desired) -> Fib {
    let routes: Vec<StaticRoute> = desired
        .iter()
        .map(|((prefix, len), action)| StaticRoute {
            prefix: *prefix,
            len: *len,
            action: action.clone(),
        })
        .collect();
    Fib::build_with(cfg, &routes).unwrap().0
}

/// Every address the generated prefixes can distinguish, plus neighbours.
fn probes() -> Vec<u32> {
    let mut out = Vec::new();
    for base in [
        Ipv4Addr::new(172, 16, 0, 0),
        Ipv4Addr::new(10, 2, 0, 0),
        Ipv4Addr::new(10, 1, 0, 0),
        Ipv4Addr::new(192, 0, 2, 0),
    ] {
        let b = u32::from(base);
        for off in [
            0u32,
            1,
            127,
            128,
            255,
            256,
            4095,
            4096,
            65535,
            65536,
            1 << 20,
        ] {
            out.push(b.wrapping_add(off));
            out.push(b.wrapping_sub(1).wrapping_add(off));
        }
    }
    out
}

fn assert_same(a: &Fib, b: &Fib) -> Result<(), TestCaseError> {
    prop_assert_eq!(a.len(), b.len());
    for addr in probes() {
        for hash in [0u32, 0x8000_0000, u32::MAX] {
            prop_assert_eq!(
                a.route(addr, hash),
                b.route(addr, hash),
                "address {}",
                Ipv4Addr::from(addr)
            );
        }
    }
    Ok(())
}

#[derive(Clone, Debug)]
enum Op {
    Upsert { net: u8, len: u8, gws: Vec<u8> },
    Blackhole { net: u8, len: u8 },
    Withdraw { net: u8, len: u8 },
}

/// Overlapping prefixes: 172.16/12 (also configured), /16, /20, /24, /28
/// inside it, the connected 10.2.0.0/24 and 192.0.2.0/24.
fn prefix(net: u8, len: u8) -> (u32, u8) {
    let (base, l) = match len % 7 {
        5 => (u32::from(Ipv4Addr::new(10, 2, 0, 0)), 24),
        6 => (u32::from(Ipv4Addr::new(192, 0, 2, 0)), 24),
        k => (
            u32::from(Ipv4Addr::new(172, 16, 0, 0)) + ((net as u32) << 4),
            12 + 4 * k,
        ),
    };
    (base & (u32::MAX << (32 - l as u32)), l)
}

fn op() -> impl Strategy<Value = Op> {
    let gws = proptest::collection::vec(0u8..8, 1..4);
    prop_oneof![
        4 => (0u8..16, 0u8..7, gws).prop_map(|(net, len, gws)| Op::Upsert { net, len, gws }),
        1 => (0u8..16, 0u8..7).prop_map(|(net, len)| Op::Blackhole { net, len }),
        3 => (0u8..16, 0u8..7).prop_map(|(net, len)| Op::Withdraw { net, len }),
    ]
}

/// Gateways on wan0's subnet, on lan0's, and one on no subnet (skipped).
fn gateway(g: u8) -> u32 {
    match g {
        0..=4 => u32::from(Ipv4Addr::new(10, 2, 0, 2 + g)),
        5 | 6 => u32::from(Ipv4Addr::new(10, 1, 0, 2 + g)),
        _ => u32::from(Ipv4Addr::new(198, 51, 100, 1)),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn deltas_give_the_table_a_whole_build_gives(
        initial in proptest::collection::vec(op(), 0..10),
        batches in proptest::collection::vec(proptest::collection::vec(op(), 1..6), 1..12),
        skip in proptest::collection::vec(any::<bool>(), 12),
    ) {
        let dir = TempDir::new("prop");
        let cfg = Arc::new(EngineConfig::parse(ENGINE).unwrap());
        let mut publisher = Publisher::open(&dir.0).unwrap();
        let mut sub = Subscriber::open(&dir.0).unwrap();
        let mut sync = FibSync::new(cfg.clone(), Arc::new(Fib::build(&cfg).unwrap()));
        let mut desired = Desired::new();
        let apply = |desired: &mut Desired, op: &Op| -> RouteChange {
            match op {
                Op::Upsert { net, len, gws } => {
                    let (p, l) = prefix(*net, *len);
                    let a = RouteAction::Via(gws.iter().map(|g| gateway(*g)).collect());
                    desired.insert((p, l), a.clone());
                    RouteChange::upsert(entry(p, l, &a))
                }
                Op::Blackhole { net, len } => {
                    let (p, l) = prefix(*net, *len);
                    desired.insert((p, l), RouteAction::Blackhole);
                    RouteChange::upsert(entry(p, l, &RouteAction::Blackhole))
                }
                Op::Withdraw { net, len } => {
                    let (p, l) = prefix(*net, *len);
                    desired.remove(&(p, l));
                    RouteChange::withdraw(p, l)
                }
            }
        };
        for op in &initial {
            apply(&mut desired, op);
        }
        publish_full(&mut publisher, &desired);
        let up = step(&mut sync, &mut sub);
        prop_assert!(up.full);
        let mut held = up.fib;
        assert_same(&held, &whole(&cfg, &desired))?;
        for (i, batch) in batches.iter().enumerate() {
            let changes: Vec<RouteChange> = batch.iter().map(|op| apply(&mut desired, op)).collect();
            publish_delta(&mut publisher, &changes);
            // Sometimes the engine misses a generation and catches up over two.
            if skip[i] && i + 1 < batches.len() {
                continue;
            }
            // Workers let go of the old table; the link thread is idle once.
            sync.prepare();
            let up = step(&mut sync, &mut sub);
            prop_assert!(!up.full);
            held = up.fib;
            assert_same(&held, &whole(&cfg, &desired))?;
        }
        // One copy for the first spare after the full build; after that the
        // previous table is always free and catches up instead.
        prop_assert_eq!(sync.copies(), 1);
        drop(held);
    }
}

#[test]
fn a_held_previous_table_is_copied_not_written() {
    let dir = TempDir::new("held");
    let cfg = Arc::new(EngineConfig::parse(ENGINE).unwrap());
    let mut publisher = Publisher::open(&dir.0).unwrap();
    let mut sub = Subscriber::open(&dir.0).unwrap();
    let mut sync = FibSync::new(cfg.clone(), Arc::new(Fib::build(&cfg).unwrap()));
    let mut desired = Desired::new();
    desired.insert(
        (u32::from(Ipv4Addr::new(192, 0, 2, 0)), 24),
        RouteAction::Blackhole,
    );
    publish_full(&mut publisher, &desired);
    let first = step(&mut sync, &mut sub).fib;
    let probe = u32::from(Ipv4Addr::new(192, 0, 2, 7));
    let before = first.route(probe, 0);
    publish_delta(
        &mut publisher,
        &[RouteChange::withdraw(
            u32::from(Ipv4Addr::new(192, 0, 2, 0)),
            24,
        )],
    );
    let second = step(&mut sync, &mut sub).fib;
    // A worker still holds `first` while the next change comes.
    publish_delta(
        &mut publisher,
        &[RouteChange::upsert(RouteEntry::new(
            u32::from(Ipv4Addr::new(192, 0, 2, 0)),
            25,
            RouteKind::Blackhole,
        ))],
    );
    let third = step(&mut sync, &mut sub).fib;
    assert_eq!(first.route(probe, 0), before, "a held table never changes");
    assert_eq!(second.route(probe, 0), None);
    assert_eq!(
        third.route(probe, 0),
        Some(patronus_engine::fib::NextHop::Blackhole)
    );
    assert_eq!(sync.copies(), 2, "the held table was copied, not written");
}

fn wan_iface(addr: [u8; 4]) -> patronus_shm::InterfaceEntry {
    patronus_shm::InterfaceEntry {
        port_name: patronus_shm::layout::encode_name("wan0").unwrap(),
        addr: u32::from(Ipv4Addr::from(addr)),
        vlan: 0,
        mtu: 0,
        prefix_len: 24,
        reserved: [0; 7],
    }
}

#[test]
fn pushed_interfaces_rebuild_the_table_on_them_and_deltas_keep_them() {
    let dir = TempDir::new("ifaces");
    let cfg = Arc::new(EngineConfig::parse(ENGINE).unwrap());
    let mut publisher = Publisher::open(&dir.0).unwrap();
    let mut sub = Subscriber::open(&dir.0).unwrap();
    let mut sync = FibSync::new(cfg.clone(), Arc::new(Fib::build(&cfg).unwrap()));
    let gw = u32::from(Ipv4Addr::new(10, 3, 0, 2));
    let dst = u32::from(Ipv4Addr::new(192, 0, 2, 9));
    let ifaces = |g: &mut GenerationBuilder| {
        let mut t = TableBuilder::<patronus_shm::InterfaceEntry>::new();
        t.push(wan_iface([10, 3, 0, 1])).unwrap();
        g.add(t).unwrap();
    };

    // Full generation: wan0 moves to 10.3.0.1/24, a route via 10.3.0.2.
    let mut t = TableBuilder::<RouteEntry>::new();
    t.push(entry(
        u32::from(Ipv4Addr::new(192, 0, 2, 0)),
        24,
        &RouteAction::Via(vec![gw]),
    ))
    .unwrap();
    let mut g = GenerationBuilder::new();
    g.add(t).unwrap();
    ifaces(&mut g);
    publisher.publish(&g).unwrap();
    let up = step(&mut sync, &mut sub);
    assert!(up.full && up.interfaces_changed);
    let wan = up
        .fib
        .interfaces()
        .iter()
        .position(|i| i.address == "10.3.0.1/24")
        .unwrap() as u16;
    assert_eq!(
        up.fib.route(dst, 0),
        Some(patronus_engine::fib::NextHop::Via { iface: wan, gw })
    );
    // The configured 10.2.0.0/24 of wan0 is gone, and with it the
    // configured route via 10.1.0.9 stays (lan0 is untouched).
    assert_eq!(up.fib.route(u32::from(Ipv4Addr::new(10, 2, 0, 5)), 0), None);
    let first_ifaces = up.fib.interfaces().clone();

    // A delta with the same interfaces: applied in place, same list.
    let mut t = TableBuilder::<RouteChange>::new();
    t.push(RouteChange::withdraw(
        u32::from(Ipv4Addr::new(192, 0, 2, 0)),
        24,
    ))
    .unwrap();
    let mut g = GenerationBuilder::new();
    g.add(t).unwrap();
    ifaces(&mut g);
    g.set_delta_of(publisher.current_generation());
    publisher.publish(&g).unwrap();
    let up = step(&mut sync, &mut sub);
    assert!(!up.full && !up.interfaces_changed);
    assert!(Arc::ptr_eq(up.fib.interfaces(), &first_ifaces));
    assert_eq!(up.fib.route(dst, 0), None);

    // No pushed interfaces any more: back to the configured ones, whole.
    let mut g = GenerationBuilder::new();
    g.add(TableBuilder::<RouteEntry>::new()).unwrap();
    publisher.publish(&g).unwrap();
    let up = step(&mut sync, &mut sub);
    assert!(up.full && up.interfaces_changed);
    assert_eq!(**up.fib.interfaces(), cfg.interfaces);
    assert_eq!(
        up.fib.route(u32::from(Ipv4Addr::new(10, 2, 0, 5)), 0),
        Some(patronus_engine::fib::NextHop::Connected { iface: 1 })
    );
}
