//! Delta generations: a `RouteChange` table against the generation before,
//! checkpoints, how a reader catches up, and what reclamation keeps.

mod common;

use common::{routes, TestDir};
use patronus_shm::layout::TableKind;
use patronus_shm::{
    catch_up, AlignedBuf, CatchUp, GenerationBuilder, GenerationView, Publisher, PublisherOptions,
    RouteChange, RouteEntry, RouteKind, ShmError, Subscriber, TableBuilder,
};

fn full(n: u32) -> GenerationBuilder {
    let mut t = TableBuilder::<RouteEntry>::new();
    t.extend_from_slice(&routes(n)).unwrap();
    let mut g = GenerationBuilder::new();
    g.add(t).unwrap();
    g
}

fn delta(base: u64, changes: &[RouteChange]) -> GenerationBuilder {
    let mut t = TableBuilder::<RouteChange>::new();
    t.extend_from_slice(changes).unwrap();
    let mut g = GenerationBuilder::new();
    g.add(t).unwrap();
    g.set_delta_of(base);
    g
}

fn blackhole(prefix: u32, len: u8) -> RouteChange {
    RouteChange::upsert(RouteEntry::new(prefix, len, RouteKind::Blackhole))
}

fn numbers(gens: &[patronus_shm::Generation]) -> Vec<u64> {
    gens.iter().map(|g| g.number()).collect()
}

#[test]
fn delta_round_trip_and_consistency_checks() {
    let changes = [
        blackhole(0x0a00_0000, 8),
        RouteChange::withdraw(0xc000_0200, 24),
    ];
    let buf = AlignedBuf::copy_from(&delta(4, &changes).encode(5));
    let g = GenerationView::parse(buf.as_bytes()).unwrap();
    assert_eq!(g.delta_of(), Some(4));
    assert!(!g.has_full_routes());
    assert_eq!(g.route_changes(), &changes);
    assert!(g.route_changes()[1].is_withdraw());

    // A delta must be of an older generation.
    let buf = AlignedBuf::copy_from(&delta(5, &changes).encode(5));
    assert!(matches!(
        GenerationView::parse(buf.as_bytes()),
        Err(ShmError::BadDirectory { .. })
    ));
    // Changes without a base, and a base without changes, are refused.
    let mut t = TableBuilder::<RouteChange>::new();
    t.push(changes[0]).unwrap();
    let mut g = GenerationBuilder::new();
    g.add(t).unwrap();
    let buf = AlignedBuf::copy_from(&g.encode(5));
    assert!(GenerationView::parse(buf.as_bytes()).is_err());
    let mut g = full(2);
    g.set_delta_of(3);
    let buf = AlignedBuf::copy_from(&g.encode(5));
    assert!(GenerationView::parse(buf.as_bytes()).is_err());
    // An unknown op is refused by validation.
    let mut bad = changes[0];
    bad.op = 9;
    let mut t = TableBuilder::<RouteChange>::new();
    assert!(matches!(
        t.push(bad),
        Err(ShmError::BadEntry {
            kind: TableKind::RouteChange,
            ..
        })
    ));
}

#[test]
fn publisher_refuses_a_delta_of_anything_but_the_current_generation() {
    let t = TestDir::new("delta-base");
    let mut p = Publisher::open(t.path()).unwrap();
    assert_eq!(p.publish(&full(3)).unwrap(), 1);
    let err = p.publish(&delta(7, &[blackhole(0, 0)])).unwrap_err();
    assert!(
        matches!(
            err,
            ShmError::DeltaBase {
                delta_of: 7,
                current: 1
            }
        ),
        "{err}"
    );
    assert_eq!(p.publish(&delta(1, &[blackhole(0, 0)])).unwrap(), 2);
}

#[test]
fn readers_catch_up_by_deltas_or_from_the_newest_full_generation() {
    let t = TestDir::new("catch-up");
    let mut p = Publisher::open(t.path()).unwrap();
    let mut sub = Subscriber::open(t.path()).unwrap();
    assert_eq!(p.publish(&full(3)).unwrap(), 1);
    for g in 2..=4 {
        p.publish(&delta(g - 1, &[blackhole(g as u32 * 256, 24)]))
            .unwrap();
    }
    let newest = sub.poll().unwrap().unwrap();
    assert_eq!(newest.number(), 4);
    // Holding 2: the two deltas after it.
    match catch_up(sub.dir(), 2, newest).unwrap() {
        CatchUp::Deltas(d) => assert_eq!(numbers(&d), vec![3, 4]),
        other => panic!("{other:?}"),
    }
    // Holding nothing: the full generation 1 and every delta after it.
    let newest = patronus_shm::Generation::load(&sub.dir().generation(4), 4).unwrap();
    match catch_up(sub.dir(), 0, newest).unwrap() {
        CatchUp::Full { base, deltas } => {
            assert_eq!(base.number(), 1);
            assert_eq!(base.view().routes().len(), 3);
            assert_eq!(numbers(&deltas), vec![2, 3, 4]);
        }
        other => panic!("{other:?}"),
    }

    // A checkpoint (delta plus the full table): a reader at its base takes
    // the delta, a fresh reader the full table alone.
    let mut cp = full(5);
    let mut ch = TableBuilder::<RouteChange>::new();
    ch.push(blackhole(0x0b00_0000, 8)).unwrap();
    cp.add(ch).unwrap();
    cp.set_delta_of(4);
    assert_eq!(p.publish(&cp).unwrap(), 5);
    let newest = sub.poll().unwrap().unwrap();
    match catch_up(sub.dir(), 4, newest).unwrap() {
        CatchUp::Deltas(d) => assert_eq!(numbers(&d), vec![5]),
        other => panic!("{other:?}"),
    }
    let newest = patronus_shm::Generation::load(&sub.dir().generation(5), 5).unwrap();
    match catch_up(sub.dir(), 0, newest).unwrap() {
        CatchUp::Full { base, deltas } => {
            assert_eq!(base.number(), 5);
            assert!(deltas.is_empty());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn reclamation_keeps_the_newest_full_generation_and_the_deltas_after_it() {
    let t = TestDir::new("delta-gc");
    let mut p = Publisher::open_with(
        t.path(),
        PublisherOptions {
            stale_worker_ms: 60_000,
        },
    )
    .unwrap();
    let sub = Subscriber::open(t.path()).unwrap();
    let w = sub.worker(0).unwrap();
    p.publish(&full(2)).unwrap(); // 1
    p.publish(&full(2)).unwrap(); // 2
    for g in 3..=5 {
        p.publish(&delta(g - 1, &[blackhole(0, 0)])).unwrap();
    }
    w.ack(5);
    // Only 1 goes: 2 is the newest full one, 3..=5 its deltas.
    assert_eq!(p.gc().unwrap(), vec![1]);
    assert_eq!(p.dir().list_generations().unwrap(), vec![2, 3, 4, 5]);

    // A restarted publisher finds the newest full generation from the
    // files' headers and keeps the same rule.
    drop(p);
    let p = Publisher::open(t.path()).unwrap();
    assert!(p.gc().unwrap().is_empty());
    assert_eq!(p.dir().list_generations().unwrap(), vec![2, 3, 4, 5]);
}
