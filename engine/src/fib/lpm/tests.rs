//! Unit tests of the DIR-24-8 table, and a property test against a
//! brute-force model (a list of routes scanned for the longest match).

use super::*;
use proptest::prelude::*;

fn ip(a: u8, b: u8, c: u8, d: u8) -> u32 {
    u32::from_be_bytes([a, b, c, d])
}

/// Checks `lookup_batch` against `lookup` for `addrs`.
fn assert_batch_agrees(t: &Dir24_8, addrs: &[u32]) {
    let mut out = vec![0u32; addrs.len()];
    t.lookup_batch(addrs, &mut out);
    for (&a, &o) in addrs.iter().zip(&out) {
        assert_eq!(t.lookup(a).unwrap_or(LPM_MISS), o, "addr {a:#010x}");
    }
}

#[test]
fn empty_table_misses() {
    let t = Dir24_8::new(4);
    assert!(t.is_empty());
    assert_eq!(t.len(), 0);
    assert_eq!(t.lookup(0), None);
    assert_eq!(t.lookup(u32::MAX), None);
    let mut out = [0u32; 3];
    t.lookup_batch(&[0, ip(10, 0, 0, 1), u32::MAX], &mut out);
    assert_eq!(out, [LPM_MISS; 3]);
    assert_eq!(t.routes().count(), 0);
}

#[test]
fn default_route_matches_everything() {
    let mut t = Dir24_8::new(4);
    // Host bits of a /0 are all bits: they must be ignored.
    t.insert(ip(1, 2, 3, 4), 0, 7).unwrap();
    assert_eq!(t.len(), 1);
    for a in [0, ip(10, 1, 2, 3), ip(192, 168, 255, 255), u32::MAX] {
        assert_eq!(t.lookup(a), Some(7));
    }
    assert_eq!(t.routes().collect::<Vec<_>>(), vec![(0, 0, 7)]);
    // A /32 under the default: the rest of its /24 still uses the default.
    t.insert(ip(10, 0, 0, 5), 32, 9).unwrap();
    assert_eq!(t.lookup(ip(10, 0, 0, 5)), Some(9));
    assert_eq!(t.lookup(ip(10, 0, 0, 4)), Some(7));
    assert_eq!(t.remove(0, 0), Some(7));
    assert_eq!(t.lookup(ip(10, 0, 0, 4)), None);
    assert_eq!(t.lookup(ip(10, 0, 0, 5)), Some(9));
    assert_eq!(t.lookup(ip(8, 8, 8, 8)), None);
}

#[test]
fn host_routes() {
    let mut t = Dir24_8::new(4);
    t.insert(ip(192, 0, 2, 1), 32, 1).unwrap();
    t.insert(ip(192, 0, 2, 255), 32, 2).unwrap();
    t.insert(ip(198, 51, 100, 0), 32, 3).unwrap();
    assert_eq!(t.lookup(ip(192, 0, 2, 1)), Some(1));
    assert_eq!(t.lookup(ip(192, 0, 2, 255)), Some(2));
    assert_eq!(t.lookup(ip(198, 51, 100, 0)), Some(3));
    assert_eq!(t.lookup(ip(192, 0, 2, 0)), None);
    assert_eq!(t.lookup(ip(192, 0, 2, 2)), None);
    assert_eq!(t.lookup(ip(198, 51, 100, 1)), None);
    // Two /24 blocks hold host routes: two groups.
    assert_eq!(t.tbl8_groups_used(), 2);
    assert_eq!(t.len(), 3);
}

#[test]
fn overlapping_prefixes_pick_the_longest() {
    let mut t = Dir24_8::new(4);
    // Inserted in an order that makes shorter routes land after longer ones.
    t.insert(ip(10, 1, 2, 128), 25, 25).unwrap();
    t.insert(ip(10, 1, 2, 0), 24, 24).unwrap();
    t.insert(ip(10, 0, 0, 0), 8, 8).unwrap();
    t.insert(ip(10, 1, 0, 0), 16, 16).unwrap();
    t.insert(ip(10, 1, 2, 192), 26, 26).unwrap();
    t.insert(ip(10, 1, 2, 200), 32, 32).unwrap();
    let cases = [
        (ip(10, 1, 2, 200), 32),
        (ip(10, 1, 2, 201), 26),
        (ip(10, 1, 2, 130), 25),
        (ip(10, 1, 2, 1), 24),
        (ip(10, 1, 3, 1), 16),
        (ip(10, 2, 0, 0), 8),
        (ip(10, 255, 255, 255), 8),
    ];
    for (a, nh) in cases {
        assert_eq!(t.lookup(a), Some(nh), "{a:#010x}");
    }
    assert_eq!(t.lookup(ip(11, 0, 0, 0)), None);
    assert_batch_agrees(&t, &cases.map(|c| c.0));
}

#[test]
fn host_bits_are_masked() {
    let mut t = Dir24_8::new(4);
    t.insert(ip(10, 1, 2, 3), 16, 5).unwrap();
    assert_eq!(
        t.routes().collect::<Vec<_>>(),
        vec![(ip(10, 1, 0, 0), 16, 5)]
    );
    assert_eq!(t.lookup(ip(10, 1, 200, 9)), Some(5));
    // Removing with other host bits names the same route.
    assert_eq!(t.remove(ip(10, 1, 99, 99), 16), Some(5));
    assert!(t.is_empty());
}

#[test]
fn insert_same_prefix_replaces() {
    let mut t = Dir24_8::new(4);
    t.insert(ip(10, 0, 0, 0), 8, 1).unwrap();
    t.insert(ip(10, 0, 0, 0), 30, 2).unwrap();
    t.insert(ip(10, 0, 0, 0), 8, 3).unwrap();
    t.insert(ip(10, 0, 0, 0), 30, 4).unwrap();
    assert_eq!(t.len(), 2);
    assert_eq!(t.lookup(ip(10, 9, 9, 9)), Some(3));
    assert_eq!(t.lookup(ip(10, 0, 0, 3)), Some(4));
    assert_eq!(t.lookup(ip(10, 0, 0, 4)), Some(3));
    assert_eq!(t.tbl8_groups_used(), 1);
    assert_eq!(t.remove(ip(10, 0, 0, 0), 8), Some(3));
    assert_eq!(t.remove(ip(10, 0, 0, 0), 8), None);
}

#[test]
fn remove_restores_covering_route() {
    let mut t = Dir24_8::new(4);
    t.insert(ip(10, 0, 0, 0), 8, 8).unwrap();
    t.insert(ip(10, 1, 0, 0), 16, 16).unwrap();
    t.insert(ip(10, 1, 2, 0), 24, 24).unwrap();
    t.insert(ip(10, 1, 2, 0), 28, 28).unwrap();
    t.insert(ip(10, 1, 2, 0), 30, 30).unwrap();

    // Removing a route > /24 falls back to the next one inside the group.
    assert_eq!(t.remove(ip(10, 1, 2, 0), 30), Some(30));
    assert_eq!(t.lookup(ip(10, 1, 2, 1)), Some(28));
    // Removing a /24 under routes > /24 rewrites the group's other entries.
    assert_eq!(t.remove(ip(10, 1, 2, 0), 24), Some(24));
    assert_eq!(t.lookup(ip(10, 1, 2, 1)), Some(28));
    assert_eq!(t.lookup(ip(10, 1, 2, 100)), Some(16));
    assert_eq!(t.remove(ip(10, 1, 2, 0), 28), Some(28));
    assert_eq!(t.lookup(ip(10, 1, 2, 1)), Some(16));
    assert_eq!(t.tbl8_groups_used(), 0);
    // Removing the /16 exposes the /8 again, but not beyond it.
    assert_eq!(t.remove(ip(10, 1, 0, 0), 16), Some(16));
    assert_eq!(t.lookup(ip(10, 1, 2, 1)), Some(8));
    assert_eq!(t.lookup(ip(11, 1, 2, 1)), None);
    assert_eq!(t.remove(ip(10, 0, 0, 0), 8), Some(8));
    assert_eq!(t.lookup(ip(10, 1, 2, 1)), None);
    assert!(t.is_empty());
    // Removing what is not there changes nothing.
    assert_eq!(t.remove(ip(10, 0, 0, 0), 8), None);
    assert_eq!(t.remove(0, 33), None);
}

#[test]
fn remove_leaves_more_specific_routes() {
    let mut t = Dir24_8::new(4);
    t.insert(ip(10, 1, 2, 0), 24, 24).unwrap();
    t.insert(ip(10, 1, 2, 64), 26, 26).unwrap();
    t.insert(ip(10, 1, 3, 0), 24, 99).unwrap();
    t.insert(ip(10, 0, 0, 0), 14, 14).unwrap();
    assert_eq!(t.remove(ip(10, 0, 0, 0), 14), Some(14));
    assert_eq!(t.lookup(ip(10, 1, 2, 70)), Some(26));
    assert_eq!(t.lookup(ip(10, 1, 2, 7)), Some(24));
    assert_eq!(t.lookup(ip(10, 1, 3, 7)), Some(99));
    assert_eq!(t.lookup(ip(10, 1, 4, 7)), None);
}

#[test]
fn tbl8_groups_are_freed_and_reused() {
    let mut t = Dir24_8::new(2);
    t.insert(ip(10, 0, 0, 0), 16, 1).unwrap();
    t.insert(ip(10, 0, 1, 1), 32, 2).unwrap();
    t.insert(ip(10, 0, 1, 128), 25, 3).unwrap();
    t.insert(ip(10, 0, 2, 1), 32, 4).unwrap();
    assert_eq!(t.tbl8_groups_used(), 2);
    assert_eq!(
        t.insert(ip(10, 0, 3, 1), 32, 5),
        Err(LpmError::Tbl8Exhausted)
    );
    // The group stays while any route > /24 is left in its /24.
    assert_eq!(t.remove(ip(10, 0, 1, 1), 32), Some(2));
    assert_eq!(t.tbl8_groups_used(), 2);
    assert_eq!(t.remove(ip(10, 0, 1, 128), 25), Some(3));
    assert_eq!(t.tbl8_groups_used(), 1);
    // The /24 folded back into tbl24 still resolves through the /16.
    assert_eq!(t.lookup(ip(10, 0, 1, 1)), Some(1));
    assert_eq!(t.lookup(ip(10, 0, 1, 200)), Some(1));
    // The freed group serves another /24, filled from that /24's route.
    t.insert(ip(10, 0, 3, 1), 32, 5).unwrap();
    assert_eq!(t.tbl8_groups_used(), 2);
    assert_eq!(t.lookup(ip(10, 0, 3, 1)), Some(5));
    assert_eq!(t.lookup(ip(10, 0, 3, 2)), Some(1));
    assert_eq!(t.lookup(ip(10, 0, 2, 1)), Some(4));
    assert_eq!(t.lookup(ip(10, 0, 2, 2)), Some(1));
    assert_eq!(t.len(), 3);
}

#[test]
fn tbl8_exhausted_leaves_table_unchanged() {
    let mut t = Dir24_8::new(1);
    t.insert(ip(1, 1, 1, 1), 32, 1).unwrap();
    t.insert(ip(1, 1, 1, 2), 31, 2).unwrap(); // same /24: no new group
    let before: Vec<_> = t.routes().collect();
    assert_eq!(
        t.insert(ip(1, 1, 2, 1), 32, 3),
        Err(LpmError::Tbl8Exhausted)
    );
    assert_eq!(
        t.insert(ip(1, 1, 2, 1), 25, 3),
        Err(LpmError::Tbl8Exhausted)
    );
    assert_eq!(t.routes().collect::<Vec<_>>(), before);
    assert_eq!(t.len(), 2);
    assert_eq!(t.lookup(ip(1, 1, 2, 1)), None);
    // Routes of /24 and shorter never need a group.
    t.insert(ip(1, 1, 2, 0), 24, 4).unwrap();
    assert_eq!(t.lookup(ip(1, 1, 2, 1)), Some(4));

    let mut none = Dir24_8::new(0);
    assert_eq!(
        none.insert(ip(1, 1, 1, 1), 25, 1),
        Err(LpmError::Tbl8Exhausted)
    );
    none.insert(0, 0, 1).unwrap();
    assert_eq!(none.lookup(ip(1, 1, 1, 1)), Some(1));
}

#[test]
fn bad_arguments_are_rejected() {
    let mut t = Dir24_8::new(1);
    assert_eq!(t.insert(0, 33, 1), Err(LpmError::BadPrefixLen(33)));
    assert_eq!(
        t.insert(0, 8, MAX_NEXT_HOP + 1),
        Err(LpmError::NextHopTooLarge(MAX_NEXT_HOP + 1))
    );
    assert_eq!(
        t.insert(0, 8, LPM_MISS),
        Err(LpmError::NextHopTooLarge(LPM_MISS))
    );
    assert!(t.is_empty());
    t.insert(0, 8, MAX_NEXT_HOP).unwrap();
    assert_eq!(t.lookup(ip(0, 1, 2, 3)), Some(MAX_NEXT_HOP));
}

#[test]
fn len_32_at_both_ends_of_the_space() {
    let mut t = Dir24_8::new(2);
    t.insert(0, 32, 1).unwrap();
    t.insert(u32::MAX, 32, 2).unwrap();
    t.insert(u32::MAX, 1, 3).unwrap();
    assert_eq!(t.lookup(0), Some(1));
    assert_eq!(t.lookup(1), None);
    assert_eq!(t.lookup(u32::MAX), Some(2));
    assert_eq!(t.lookup(u32::MAX - 1), Some(3));
    assert_eq!(t.lookup(ip(128, 0, 0, 0)), Some(3));
    assert_eq!(t.lookup(ip(127, 255, 255, 255)), None);
    assert_batch_agrees(&t, &[0, 1, u32::MAX, u32::MAX - 1, ip(128, 0, 0, 0)]);
}

#[test]
fn lookup_batch_handles_empty_input() {
    let t = Dir24_8::new(0);
    t.lookup_batch(&[], &mut []);
}

#[test]
fn memory_and_debug_report_the_tables() {
    let mut t = Dir24_8::new(10);
    let empty = t.memory_bytes();
    assert!(empty >= (4 << 24) + 10 * 1024, "{empty}");
    t.insert(ip(10, 0, 0, 0), 8, 1).unwrap();
    assert!(t.memory_bytes() > empty);
    let shown = format!("{t:?}");
    assert!(shown.contains("routes: 1"), "{shown}");
}

#[test]
fn table_is_send_and_sync() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Dir24_8>();
}

// ---- property test against a brute-force model ----

#[derive(Debug, Clone)]
enum Op {
    Insert(u32, u8, u32),
    Remove(u32, u8),
}

/// The obvious implementation: a list of `(network, len, next_hop)`.
#[derive(Default)]
struct Model {
    routes: Vec<(u32, u8, u32)>,
}

impl Model {
    fn lookup(&self, addr: u32) -> Option<u32> {
        self.routes
            .iter()
            .filter(|&&(p, l, _)| addr & mask(l) == p)
            .max_by_key(|&&(_, l, _)| l)
            .map(|&(_, _, nh)| nh)
    }

    fn position(&self, prefix: u32, len: u8) -> Option<usize> {
        self.routes
            .iter()
            .position(|&(p, l, _)| p == prefix & mask(len) && l == len)
    }

    /// Distinct /24 blocks holding a route longer than /24.
    fn blocks_needing_groups(&self) -> Vec<u32> {
        let mut blocks: Vec<u32> = self
            .routes
            .iter()
            .filter(|r| r.1 > 24)
            .map(|r| r.0 >> 8)
            .collect();
        blocks.sort_unstable();
        blocks.dedup();
        blocks
    }
}

/// Addresses near a few anchors, so that random prefixes overlap often,
/// plus fully random ones.
fn address() -> impl Strategy<Value = u32> {
    const ANCHORS: [u32; 4] = [0x0a01_0200, 0xc0a8_0000, 0xffff_ff00, 0];
    prop_oneof![
        any::<u32>(),
        (0..ANCHORS.len(), 0u32..0x1_0000).prop_map(|(i, low)| ANCHORS[i] ^ low),
        (0..ANCHORS.len(), any::<u8>()).prop_map(|(i, low)| ANCHORS[i] | low as u32),
    ]
}

/// Mostly long prefixes: short ones rewrite up to 2^24 entries each, which
/// is slow in debug builds, and long ones exercise the tbl8 groups.
fn prefix_len() -> impl Strategy<Value = u8> {
    prop_oneof![
        1 => 0u8..=8,
        3 => 9u8..=20,
        4 => 21u8..=24,
        8 => 25u8..=32,
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (address(), prefix_len(), 0..=MAX_NEXT_HOP).prop_map(|(p, l, nh)| Op::Insert(p, l, nh)),
        2 => (address(), prefix_len()).prop_map(|(p, l)| Op::Remove(p, l)),
    ]
}

fn check_against_model(t: &Dir24_8, model: &Model, probes: &[u32]) -> Result<(), TestCaseError> {
    // Probe random addresses and the edges of every route the model holds.
    let mut addrs: Vec<u32> = probes.to_vec();
    for &(p, l, _) in &model.routes {
        addrs.extend([
            p,
            p | !mask(l),
            p.wrapping_sub(1),
            (p | !mask(l)).wrapping_add(1),
        ]);
    }
    let mut out = vec![0u32; addrs.len()];
    t.lookup_batch(&addrs, &mut out);
    for (&a, &o) in addrs.iter().zip(&out) {
        let want = model.lookup(a);
        prop_assert_eq!(t.lookup(a), want, "addr {:#010x}", a);
        prop_assert_eq!(o, want.unwrap_or(LPM_MISS), "batch addr {:#010x}", a);
    }
    prop_assert_eq!(t.len(), model.routes.len());
    let mut got: Vec<_> = t.routes().collect();
    let mut want = model.routes.clone();
    got.sort_unstable();
    want.sort_unstable();
    prop_assert_eq!(got, want);
    prop_assert_eq!(
        t.tbl8_groups_used() as usize,
        model.blocks_needing_groups().len()
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn matches_brute_force_model(
        groups in 0u32..6,
        ops in prop::collection::vec(op(), 1..40),
        probes in prop::collection::vec(address(), 16),
    ) {
        let mut t = Dir24_8::new(groups);
        let mut model = Model::default();
        for op in ops {
            match op {
                Op::Insert(p, l, nh) => {
                    let block = p >> 8;
                    let needs_new_group = l > 24
                        && !model.blocks_needing_groups().contains(&block);
                    let full = model.blocks_needing_groups().len() as u32 >= groups;
                    let res = t.insert(p, l, nh);
                    if needs_new_group && full {
                        prop_assert_eq!(res, Err(LpmError::Tbl8Exhausted));
                    } else {
                        prop_assert_eq!(res, Ok(()));
                        match model.position(p, l) {
                            Some(i) => model.routes[i].2 = nh,
                            None => model.routes.push((p & mask(l), l, nh)),
                        }
                    }
                }
                Op::Remove(p, l) => {
                    let want = model.position(p, l).map(|i| model.routes.swap_remove(i).2);
                    prop_assert_eq!(t.remove(p, l), want);
                }
            }
            check_against_model(&t, &model, &probes)?;
        }
        // Removing every route leaves an empty table with every group free.
        for (p, l, nh) in model.routes.drain(..) {
            prop_assert_eq!(t.remove(p, l), Some(nh));
        }
        check_against_model(&t, &model, &probes)?;
        prop_assert!(t.is_empty());
    }

    #[test]
    fn remove_after_insert_hits_the_same_route(
        base in address(),
        len in prefix_len(),
        host in any::<u32>(),
    ) {
        // Routes to addresses inside the prefix, whatever the host bits.
        let mut t = Dir24_8::new(1);
        t.insert(base, len, 42).unwrap();
        let inside = (base & mask(len)) | (host & !mask(len));
        prop_assert_eq!(t.lookup(inside), Some(42));
        prop_assert_eq!(t.remove(inside, len), Some(42));
        prop_assert_eq!(t.lookup(inside), None);
        prop_assert_eq!(t.tbl8_groups_used(), 0);
    }
}
