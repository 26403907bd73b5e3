//! Property test, the control side of incremental pushes: random route
//! creates, replaces, deletes, bulk requests and whole-set replacements go
//! through the store actor, which publishes full, delta and checkpoint
//! generations. After each request the published generations are replayed
//! with `patronus_shm::catch_up` like an engine would (from the generation
//! it holds, and afresh from nothing) and must equal the store's routes.

use std::collections::BTreeMap;
use std::path::PathBuf;

use proptest::prelude::*;

use patronus_control::model::{Cidr, InterfaceDef, RouteDef};
use patronus_control::push::{compile, Pusher, PUSHED_ORG};
use patronus_control::state::{spawn_store_with, StoreHandle};
use patronus_control::store::{BulkRoutes, Store};
use patronus_shm::{catch_up, CatchUp, Generation, RouteEntry, RuntimeDir, Subscriber};

type Table = BTreeMap<(u32, u8), RouteEntry>;

/// A runtime directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "patronus-push-deltas-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
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

/// Prefixes the generator picks from; some nest.
fn prefix(i: usize) -> Cidr {
    let len = [8u8, 16, 24, 32][i % 4];
    let addr = u32::from_be_bytes([10, (i / 4) as u8, (i % 3) as u8, 0]);
    let mask = if len == 32 {
        u32::MAX
    } else {
        !(u32::MAX >> len)
    };
    Cidr {
        addr: (addr & mask).into(),
        len,
    }
}
const PREFIXES: usize = 40;
/// Next hops: on wan0's subnet, or none (blackhole).
const VIAS: &[[u8; 4]] = &[[10, 2, 0, 7], [10, 2, 0, 8], [10, 2, 0, 254]];

fn def(p: usize, via: Option<usize>) -> RouteDef {
    RouteDef {
        prefix: prefix(p),
        next_hops: via.map(|v| VIAS[v].into()).into_iter().collect(),
        blackhole: via.is_none(),
        tunnel: None,
    }
}

#[derive(Debug, Clone)]
enum Op {
    Create(usize, Option<usize>),
    /// Replace the n-th route (by id order) with this definition.
    Replace(usize, usize, Option<usize>),
    Delete(usize),
    /// Add these, delete the n-th routes (some by id, some by prefix).
    Bulk(Vec<(usize, Option<usize>)>, Vec<usize>),
    ReplaceAll(Vec<(usize, Option<usize>)>),
}

fn op() -> impl Strategy<Value = Op> {
    let via = proptest::option::of(0..VIAS.len());
    let route = (0..PREFIXES, via.clone());
    prop_oneof![
        5 => route.clone().prop_map(|(p, v)| Op::Create(p, v)),
        3 => (0usize..12, 0..PREFIXES, via).prop_map(|(n, p, v)| Op::Replace(n, p, v)),
        3 => (0usize..12).prop_map(Op::Delete),
        2 => (proptest::collection::vec(route.clone(), 0..12), proptest::collection::vec(0usize..12, 0..4))
            .prop_map(|(a, d)| Op::Bulk(a, d)),
        1 => proptest::collection::vec(route, 0..10).prop_map(Op::ReplaceAll),
    ]
}

async fn store_table(h: &StoreHandle) -> Table {
    h.list_routes(PUSHED_ORG.into())
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let e = compile(r).unwrap();
            ((e.prefix, e.prefix_len), e)
        })
        .collect()
}

fn apply(table: &mut Table, g: &Generation) {
    for c in g.view().route_changes() {
        let k = (c.route.prefix, c.route.prefix_len);
        if c.is_withdraw() {
            assert!(table.remove(&k).is_some(), "withdrawal of an absent route");
        } else {
            table.insert(k, c.route);
        }
    }
}

fn full(g: &Generation) -> Table {
    g.view()
        .routes()
        .iter()
        .map(|e| ((e.prefix, e.prefix_len), *e))
        .collect()
}

/// Catches up from `have` (with `held` its table) to the newest generation.
/// Retries when a checkpoint published meanwhile let the publisher reclaim
/// a file the plan needed.
fn replay(dir: &RuntimeDir, sub: &Subscriber, have: u64, held: &Table) -> (u64, Table) {
    let mut last_err = None;
    for _ in 0..20 {
        let n = sub.current_generation();
        let attempt = Generation::load(&dir.generation(n), n).and_then(|newest| {
            let plan = catch_up(dir, have, newest)?;
            Ok(match plan {
                CatchUp::Deltas(ds) => {
                    let mut t = held.clone();
                    ds.iter().for_each(|d| apply(&mut t, d));
                    t
                }
                CatchUp::Full { base, deltas } => {
                    let mut t = full(&base);
                    deltas.iter().for_each(|d| apply(&mut t, d));
                    t
                }
            })
        });
        match attempt {
            Ok(t) => return (n, t),
            Err(e) => last_err = Some(e),
        }
    }
    panic!("catch-up kept failing: {last_err:?}");
}

async fn run(ops: Vec<Op>, checkpoint_deltas: u32) -> Result<(), TestCaseError> {
    let tmp = TempDir::new("prop");
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
    let mut pusher = Pusher::open(&tmp.0).unwrap();
    pusher.set_checkpoint_policy(checkpoint_deltas, 6);
    let h = spawn_store_with(store, Some(pusher)).unwrap();
    let sub = Subscriber::open(&tmp.0).unwrap();
    let dir = RuntimeDir::create(&tmp.0).unwrap();
    // An engine worker: holds `have` (so its deltas are kept) and acks it.
    let worker = sub.worker(0).unwrap();
    let (mut have, mut held) = (0u64, Table::new());
    // A slow worker: holds the first generation to the end.
    let slow = sub.worker(1).unwrap();
    let mut first: Option<(u64, Table)> = None;

    for op in &ops {
        let ids: Vec<i64> = h
            .list_routes(PUSHED_ORG.into())
            .await
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect();
        let nth = |n: usize| ids.get(n).copied().unwrap_or(1_000_000 + n as i64);
        // Failures (duplicates, missing ids) are part of the sequence: they
        // must publish nothing wrong.
        let _ = match op {
            Op::Create(p, v) => h
                .create_route(PUSHED_ORG.into(), def(*p, *v))
                .await
                .map(drop),
            Op::Replace(n, p, v) => h
                .replace_route(PUSHED_ORG.into(), nth(*n), def(*p, *v))
                .await
                .map(drop),
            Op::Delete(n) => h.delete_route(PUSHED_ORG.into(), nth(*n)).await,
            Op::Bulk(add, del) => {
                let mut req = BulkRoutes {
                    add: add.iter().map(|(p, v)| def(*p, *v)).collect(),
                    ..Default::default()
                };
                for (i, n) in del.iter().enumerate() {
                    match ids.get(*n) {
                        Some(id) if i % 2 == 0 => req.delete.push(*id),
                        Some(_) => {
                            let r = h.get_route(PUSHED_ORG.into(), ids[*n]).await.unwrap();
                            req.delete_prefixes.push(r.prefix);
                        }
                        None => req.delete.push(nth(*n)),
                    }
                }
                h.bulk_routes(PUSHED_ORG.into(), req).await.map(drop)
            }
            Op::ReplaceAll(routes) => h
                .replace_all_routes(
                    PUSHED_ORG.into(),
                    routes.iter().map(|(p, v)| def(*p, *v)).collect(),
                )
                .await
                .map(drop),
        };
        // A request behind the change: the push for it is done.
        h.generation().await.unwrap();
        let want = store_table(&h).await;

        // Like the engine: from what it holds.
        let (n, t) = replay(&dir, &sub, have, &held);
        prop_assert_eq!(&t, &want, "incremental catch-up after {:?}", op);
        (have, held) = (n, t);
        worker.ack(have);
        if first.is_none() {
            slow.ack(have);
            first = Some((have, held.clone()));
        }

        // Like a restarted engine: from nothing.
        let (_, t) = replay(&dir, &sub, 0, &Table::new());
        prop_assert_eq!(&t, &want, "fresh catch-up after {:?}", op);
    }
    // The slow worker's old generation catches up too (its deltas were
    // kept for it).
    if let Some((old, old_table)) = first {
        let (_, t) = replay(&dir, &sub, old, &old_table);
        prop_assert_eq!(
            &t,
            &store_table(&h).await,
            "catch-up from generation {}",
            old
        );
    }
    h.close().await;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn published_generations_replay_to_the_store(
        ops in proptest::collection::vec(op(), 1..40),
        checkpoint_deltas in 1u32..6,
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(run(ops, checkpoint_deltas))?;
    }
}
