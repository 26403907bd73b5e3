//! Tests of the IPv6 table: goldens at the /0, /64 and /128 boundaries, a
//! property test against a brute-force model, and a one-million-route table
//! whose memory is printed (`--nocapture`; nothing is timed).

use super::*;
use proptest::prelude::*;
use std::net::Ipv6Addr;

fn a(s: &str) -> u128 {
    u128::from(s.parse::<Ipv6Addr>().unwrap())
}

/// The model: every route scanned for the longest match.
#[derive(Default)]
struct Model(Vec<(u128, u8, u32)>);

impl Model {
    fn insert(&mut self, p: u128, l: u8, nh: u32) {
        let p = p & mask6(l);
        self.0.retain(|r| (r.0, r.1) != (p, l));
        self.0.push((p, l, nh));
    }
    fn remove(&mut self, p: u128, l: u8) -> Option<u32> {
        let p = p & mask6(l);
        let i = self.0.iter().position(|r| (r.0, r.1) == (p, l))?;
        Some(self.0.swap_remove(i).2)
    }
    fn lookup(&self, addr: u128) -> Option<u32> {
        self.0
            .iter()
            .filter(|r| addr & mask6(r.1) == r.0)
            .max_by_key(|r| r.1)
            .map(|r| r.2)
    }
}

fn assert_agrees(t: &Lpm6, m: &Model, addrs: &[u128]) {
    let mut out = vec![0u32; addrs.len()];
    t.lookup_batch(addrs, &mut out);
    for (&x, &o) in addrs.iter().zip(&out) {
        let want = m.lookup(x);
        assert_eq!(t.lookup(x), want, "addr {}", Ipv6Addr::from(x));
        assert_eq!(o, want.unwrap_or(LPM6_MISS), "batch {}", Ipv6Addr::from(x));
    }
}

#[test]
fn empty_table_misses() {
    let t = Lpm6::new();
    assert!(t.is_empty());
    assert_eq!(t.lookup(0), None);
    assert_eq!(t.lookup(u128::MAX), None);
    let mut out = [0u32; 2];
    t.lookup_batch(&[0, u128::MAX], &mut out);
    assert_eq!(out, [LPM6_MISS; 2]);
}

#[test]
fn golden_boundaries_0_64_128() {
    let mut t = Lpm6::new();
    // Host bits of a /0 are every bit: ignored.
    t.insert(a("2001:db8::1"), 0, 1).unwrap();
    t.insert(a("2001:db8:1:2::"), 64, 2).unwrap();
    t.insert(a("2001:db8:1:2::7"), 128, 3).unwrap();
    t.insert(a("2001:db8:1:2:8000::"), 65, 4).unwrap();
    assert_eq!(t.len(), 4);
    assert_eq!(t.get(0, 0), Some(1));
    assert_eq!(t.get(a("2001:db8:1:2:ffff::"), 64), Some(2));
    let cases = [
        ("::", Some(1)),
        ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some(1)),
        // The /64's first and last address, and one either side.
        ("2001:db8:1:2::", Some(2)),
        ("2001:db8:1:1:ffff:ffff:ffff:ffff", Some(1)),
        ("2001:db8:1:2:7fff:ffff:ffff:ffff", Some(2)),
        // The /65 is the upper half of the /64.
        ("2001:db8:1:2:8000::", Some(4)),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", Some(4)),
        ("2001:db8:1:3::", Some(1)),
        // The /128 and its neighbours.
        ("2001:db8:1:2::7", Some(3)),
        ("2001:db8:1:2::6", Some(2)),
        ("2001:db8:1:2::8", Some(2)),
    ];
    for (s, want) in cases {
        assert_eq!(t.lookup(a(s)), want, "{s}");
    }
    // Removing the /64 leaves the /128 and the /65 and falls back to /0.
    assert_eq!(t.remove(a("2001:db8:1:2::1"), 64), Some(2));
    assert_eq!(t.lookup(a("2001:db8:1:2::6")), Some(1));
    assert_eq!(t.lookup(a("2001:db8:1:2::7")), Some(3));
    assert_eq!(t.lookup(a("2001:db8:1:2:9000::")), Some(4));
    // Removing the /0 leaves the rest unmatched.
    assert_eq!(t.remove(0, 0), Some(1));
    assert_eq!(t.lookup(a("2001:db8:1:2::6")), None);
    assert_eq!(t.lookup(a("2001:db8:1:2::7")), Some(3));
    assert_eq!(t.remove(0, 0), None);
    assert_eq!(t.remove(a("2001:db8:1:2::7"), 128), Some(3));
    assert_eq!(t.remove(a("2001:db8:1:2:8000::"), 65), Some(4));
    assert!(t.is_empty());
    assert_eq!(t.entries(), 0, "markers left behind");
    assert_eq!(t.lookup_bytes(), 0);
}

#[test]
fn replace_keeps_one_route_and_updates_inheritors() {
    let mut t = Lpm6::new();
    t.insert(a("2001:db8::"), 32, 1).unwrap();
    t.insert(a("2001:db8:0:1::"), 64, 2).unwrap();
    t.insert(a("2001:db8::"), 32, 9).unwrap();
    assert_eq!(t.len(), 2);
    // An address that reaches the /64's markers but not the /64 itself.
    assert_eq!(t.lookup(a("2001:db8:0:1::1")), Some(2));
    assert_eq!(t.lookup(a("2001:db8:0:2::1")), Some(9));
    assert_eq!(t.lookup(a("2001:db8::1")), Some(9));
}

#[test]
fn errors() {
    let mut t = Lpm6::new();
    assert_eq!(t.insert(0, 129, 1), Err(Lpm6Error::BadPrefixLen(129)));
    assert_eq!(
        t.insert(0, 8, MAX_NEXT_HOP6 + 1),
        Err(Lpm6Error::NextHopTooLarge(MAX_NEXT_HOP6 + 1))
    );
    assert!(t.is_empty());
    assert_eq!(t.remove(0, 200), None);
    assert_eq!(t.get(0, 200), None);
}

#[test]
fn markers_stay_at_most_seven_per_route() {
    for len in 0..=128u8 {
        let mut n = 0;
        marker_lens(len, |m| {
            assert!(m < len);
            n += 1;
        });
        assert!(n <= 7, "/{len}: {n} markers");
    }
}

#[derive(Clone, Debug)]
enum Op {
    Insert(u128, u8, u32),
    Remove(u128, u8),
}

/// Prefixes near a few bases, so that routes nest and share markers.
fn prefix() -> impl Strategy<Value = (u128, u8)> {
    let bases = prop::sample::select(vec![
        0u128,
        a("2001:db8::"),
        a("2001:db8:0:1::"),
        a("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"),
        u128::MAX,
    ]);
    (bases, any::<u128>(), 0u8..=128, 0u32..8).prop_map(|(b, noise, len, shift)| {
        // Flip a few low-ish bits so prefixes differ below their base.
        let flip = (noise & 0xff) << (shift * 16);
        (b ^ flip, len)
    })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (prefix(), 0u32..1000).prop_map(|((p, l), nh)| Op::Insert(p, l, nh)),
        2 => prefix().prop_map(|(p, l)| Op::Remove(p, l)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn agrees_with_brute_force(ops in prop::collection::vec(op(), 1..60), probes in prop::collection::vec(any::<u128>(), 8)) {
        let mut t = Lpm6::new();
        let mut m = Model::default();
        for op in &ops {
            match *op {
                Op::Insert(p, l, nh) => {
                    t.insert(p, l, nh).unwrap();
                    m.insert(p, l, nh);
                }
                Op::Remove(p, l) => prop_assert_eq!(t.remove(p, l), m.remove(p, l)),
            }
            prop_assert_eq!(t.len(), m.0.len());
        }
        // Random addresses, and each route's first and last address and
        // the addresses just outside it.
        let mut addrs = probes;
        for &(p, l, _) in &m.0 {
            let last = p | !mask6(l);
            addrs.extend([p, last, p.wrapping_sub(1), last.wrapping_add(1)]);
        }
        for op in &ops {
            let (Op::Insert(p, _, _) | Op::Remove(p, _)) = *op;
            addrs.push(p);
        }
        assert_agrees(&t, &m, &addrs);
        let mut routes: Vec<_> = t.routes().collect();
        let mut want = m.0.clone();
        routes.sort_unstable();
        want.sort_unstable();
        prop_assert_eq!(routes, want);
        // Removing everything leaves no marker behind.
        for (p, l, _) in m.0.clone() {
            prop_assert!(t.remove(p, l).is_some());
        }
        prop_assert_eq!(t.entries(), 0);
    }
}

/// splitmix64, seeded.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn rss_bytes() -> Option<usize> {
    let s = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = s.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[test]
fn one_million_random_48_to_64_prefixes_memory() {
    const ROUTES: usize = 1_000_000;
    let mut rng = Rng(0x1f6_0000_0001);
    let rss_before = rss_bytes();
    let mut t = Lpm6::new();
    let mut routes = Vec::with_capacity(ROUTES);
    while t.len() < ROUTES {
        let len = 48 + (rng.next_u64() % 17) as u8;
        // Global unicast 2000::/3, random below.
        let p = ((u128::from(rng.next_u64()) << 64) >> 3 | (1u128 << 125)) & mask6(len);
        let nh = (rng.next_u64() % 1000) as u32;
        if t.get(p, len).is_none() {
            routes.push((p, len, nh));
        }
        t.insert(p, len, nh).unwrap();
    }
    let rss_after = rss_bytes();
    println!(
        "lpm6: {} routes, {} hash entries ({:.2} per route), lookup tables {:.1} MiB, \
         with route map ~{:.1} MiB; process RSS grew {:?} MiB",
        t.len(),
        t.entries(),
        t.entries() as f64 / t.len() as f64,
        t.lookup_bytes() as f64 / (1 << 20) as f64,
        t.memory_bytes() as f64 / (1 << 20) as f64,
        rss_before
            .zip(rss_after)
            .map(|(b, a)| a.saturating_sub(b) / (1 << 20)),
    );
    // Every route finds itself at its first and last address (routes are
    // distinct random prefixes; a more specific one may cover a last address).
    let mut out = vec![0u32; 4096];
    let firsts: Vec<u128> = routes.iter().take(4096).map(|r| r.0).collect();
    t.lookup_batch(&firsts, &mut out);
    for (r, &o) in routes.iter().zip(&out) {
        let best = (r.1..=128).rev().find_map(|l| t.get(r.0, l)).unwrap();
        assert_eq!(o, best, "route {:?}", r);
        assert_eq!(t.lookup(r.0), Some(best));
    }
    // Outside 2000::/3 nothing matches.
    assert_eq!(t.lookup(a("fe80::1")), None);
    assert!(t.entries() <= 8 * ROUTES);
}
