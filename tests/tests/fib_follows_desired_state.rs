//! Property: any sequence of route changes applied to the control process's
//! store, compiled and published through shared memory (full generations,
//! deltas and checkpoints, as the control process chooses), gives the
//! engine a FIB that forwards exactly as the desired state says (checked by
//! lookups against a longest-prefix model of the store's routes) — both
//! the engine following every generation incrementally and one that
//! starts afresh at the end.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use patronus_control::model::{Cidr, InterfaceDef, RouteDef};
use patronus_control::push::{Pusher, Touched, PUSHED_ORG};
use patronus_control::store::Store;
use patronus_engine::config::EngineConfig;
use patronus_engine::fib::{Fib, NextHop};
use patronus_engine::fib_sync::FibSync;
use patronus_shm::Subscriber;
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
"#;

/// What the desired state says for a prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Via(u32),
    Blackhole,
}

#[derive(Clone, Debug)]
enum Op {
    Add { net: u8, len: u8, via: u8 },
    Blackhole { net: u8, len: u8 },
    Delete { pick: u8 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..8, 0u8..4, 2u8..6).prop_map(|(net, len, via)| Op::Add { net, len, via }),
        1 => (0u8..8, 0u8..4).prop_map(|(net, len)| Op::Blackhole { net, len }),
        2 => any::<u8>().prop_map(|pick| Op::Delete { pick }),
    ]
}

/// Overlapping prefixes inside 172.16.0.0/12: lengths 12, 16, 20, 24.
fn prefix(net: u8, len: u8) -> (u32, u8) {
    let len = 12 + 4 * len;
    let base = u32::from(Ipv4Addr::new(172, 16, 0, 0)) + ((net as u32) << 12);
    let mask = u32::MAX << (32 - len);
    (base & mask, len)
}

fn model_lookup(model: &BTreeMap<(u32, u8), (i64, Action)>, addr: u32) -> Option<Action> {
    model
        .iter()
        .filter(|((p, l), _)| addr & (u32::MAX << (32 - *l)) == *p)
        .max_by_key(|((_, l), _)| *l)
        .map(|(_, (_, a))| *a)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn engine_fib_matches_the_store(ops in proptest::collection::vec(op(), 1..25)) {
        let dir = patronus_e2e::TempDir::new("fibprop");
        let runtime = dir.path().join("shm");
        let cfg = std::sync::Arc::new(EngineConfig::parse(ENGINE).unwrap());
        let mut sync = FibSync::new(cfg.clone(), std::sync::Arc::new(Fib::build(&cfg).unwrap()));
        let mut store = Store::open_in_memory().unwrap();
        store
            .create_interface(PUSHED_ORG, &InterfaceDef {
                port: "wan0".into(),
                address: Cidr { addr: Ipv4Addr::new(10, 2, 0, 1), len: 24 },
                vlan: None,
            })
            .unwrap();
        let mut pusher = Pusher::open(&runtime).unwrap();
        let mut sub = Subscriber::open(&runtime).unwrap();
        let mut model: BTreeMap<(u32, u8), (i64, Action)> = BTreeMap::new();
        for op in ops {
            let mut touched = Touched::Nothing;
            let def = match op {
                Op::Add { net, len, via } => {
                    let (p, l) = prefix(net, len);
                    Some((p, l, Action::Via(u32::from(Ipv4Addr::new(10, 2, 0, via)))))
                }
                Op::Blackhole { net, len } => {
                    let (p, l) = prefix(net, len);
                    Some((p, l, Action::Blackhole))
                }
                Op::Delete { pick } => {
                    if !model.is_empty() {
                        let key = *model.keys().nth(pick as usize % model.len()).unwrap();
                        let (id, _) = model[&key];
                        store.delete_route(PUSHED_ORG, id).unwrap();
                        model.remove(&key);
                        touched = Touched::Prefixes(vec![Cidr { addr: Ipv4Addr::from(key.0), len: key.1 }]);
                    }
                    None
                }
            };
            if let Some((p, l, action)) = def {
                let rd = RouteDef {
                    prefix: Cidr { addr: Ipv4Addr::from(p), len: l },
                    next_hops: match action {
                        Action::Via(gw) => vec![Ipv4Addr::from(gw)],
                        Action::Blackhole => vec![],
                    },
                    blackhole: action == Action::Blackhole,
                    tunnel: None,
                };
                // A duplicate prefix is refused by the store (409): the model
                // only follows what the store accepted.
                if let Ok(r) = store.create_route(PUSHED_ORG, &rd) {
                    model.insert((p, l), (r.id, action));
                    touched = Touched::Prefixes(vec![rd.prefix]);
                }
            }
            pusher.push_if_changed(&mut store, touched).unwrap();
            let generation = sub.poll().unwrap();
            let fib = match generation {
                Some(g) => {
                    let up = sync.update(sub.dir(), g).unwrap();
                    prop_assert_eq!(up.skipped, 0);
                    up.fib
                }
                None => continue,
            };
            check(&fib, &model)?;
        }
        // An engine starting now, from the newest full generation and the
        // deltas after it.
        let mut fresh_sub = Subscriber::open(&runtime).unwrap();
        if let Some(g) = fresh_sub.poll().unwrap() {
            let mut fresh = FibSync::new(cfg.clone(), std::sync::Arc::new(Fib::build(&cfg).unwrap()));
            let up = fresh.update(fresh_sub.dir(), g).unwrap();
            check(&up.fib, &model)?;
        }
    }
}

/// Probes the start, middle and end of every prefix the ops can make.
fn check(fib: &Fib, model: &BTreeMap<(u32, u8), (i64, Action)>) -> Result<(), TestCaseError> {
    for net in 0..8u8 {
        for len in 0..4u8 {
            let (p, l) = prefix(net, len);
            let size = 1u32 << (32 - l);
            for addr in [p, p + size / 2 + 1, p + size - 1] {
                let want = model_lookup(model, addr);
                let got = match fib.route(addr, 0) {
                    Some(NextHop::Via { gw, .. }) => Some(Action::Via(gw)),
                    Some(NextHop::Blackhole) => Some(Action::Blackhole),
                    Some(other) => {
                        panic!("unexpected next hop {other:?} for {}", Ipv4Addr::from(addr))
                    }
                    None => None,
                };
                prop_assert_eq!(got, want, "address {}", Ipv4Addr::from(addr));
            }
        }
    }
    Ok(())
}
