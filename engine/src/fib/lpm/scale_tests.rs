//! A table of one million routes shaped like the Internet's, checked against
//! a reference built independently in the test (sorted lists per length).
//! Also prints insert time and lookup rates (`--nocapture`; no thresholds).

use super::*;
use std::collections::HashSet;
use std::time::Instant;

const ROUTES: usize = 1_000_000;
const CHECKED_LOOKUPS: usize = 100_000;
const TBL8_GROUPS: u32 = 1 << 16;

/// splitmix64: small, seeded, good enough to shape test data.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    fn below(&mut self, n: u32) -> u32 {
        ((self.next_u32() as u64 * n as u64) >> 32) as u32
    }
}

/// Prefix lengths roughly as in a full BGP table: 60 % /24, most of the
/// rest /16–/23 (/22 and /23 the commonest), ~3 % /25–/32, a few shorter.
fn internet_len(rng: &mut Rng) -> u8 {
    const MID_WEIGHTS: [u32; 8] = [2, 1, 2, 3, 5, 6, 12, 10]; // /16../23
    let r = rng.below(1000);
    if r < 600 {
        24
    } else if r < 966 {
        let mut w = rng.below(MID_WEIGHTS.iter().sum());
        for (i, &m) in MID_WEIGHTS.iter().enumerate() {
            if w < m {
                return 16 + i as u8;
            }
            w -= m;
        }
        unreachable!()
    } else if r < 996 {
        25 + rng.below(8) as u8
    } else {
        8 + rng.below(8) as u8
    }
}

/// Longest match by binary search in one sorted `(network, next_hop)` list
/// per prefix length, longest length first.
struct Reference {
    by_len: Vec<Vec<(u32, u32)>>,
}

impl Reference {
    fn new(routes: &[(u32, u8, u32)]) -> Self {
        let mut by_len = vec![Vec::new(); 33];
        for &(p, l, nh) in routes {
            by_len[l as usize].push((p, nh));
        }
        for list in &mut by_len {
            list.sort_unstable();
        }
        Self { by_len }
    }

    fn lookup(&self, addr: u32) -> Option<u32> {
        (0..=32u8).rev().find_map(|l| {
            let list = &self.by_len[l as usize];
            let net = addr & mask(l);
            list.binary_search_by_key(&net, |e| e.0)
                .ok()
                .map(|i| list[i].1)
        })
    }
}

/// `count` addresses: half uniform, half inside randomly chosen routes.
fn probe_addrs(rng: &mut Rng, routes: &[(u32, u8, u32)], count: usize) -> Vec<u32> {
    (0..count)
        .map(|i| {
            if i % 2 == 0 {
                rng.next_u32()
            } else {
                let (p, l, _) = routes[rng.below(routes.len() as u32) as usize];
                p | (rng.next_u32() & !mask(l))
            }
        })
        .collect()
}

fn check(t: &Dir24_8, reference: &Reference, addrs: &[u32]) {
    let mut out = vec![0u32; addrs.len()];
    t.lookup_batch(addrs, &mut out);
    let mut hits = 0;
    for (&a, &o) in addrs.iter().zip(&out) {
        let want = reference.lookup(a);
        assert_eq!(t.lookup(a), want, "addr {a:#010x}");
        assert_eq!(o, want.unwrap_or(LPM_MISS), "batch addr {a:#010x}");
        hits += usize::from(want.is_some());
    }
    // Half the probes lie inside routes, so a table that misses everything
    // cannot pass by agreeing with an empty reference.
    assert!(hits >= addrs.len() / 2, "{hits} hits of {}", addrs.len());
}

fn distinct_blocks_over_24(routes: &[(u32, u8, u32)]) -> usize {
    routes
        .iter()
        .filter(|r| r.1 > 24)
        .map(|r| r.0 >> 8)
        .collect::<HashSet<_>>()
        .len()
}

/// Lookups per second through `lookup_batch` in batches of 256.
fn batch_rate(t: &Dir24_8, addrs: &[u32], rounds: usize) -> f64 {
    let mut out = [0u32; 256];
    let mut sink = 0u32;
    let start = Instant::now();
    for _ in 0..rounds {
        for chunk in addrs.chunks_exact(256) {
            t.lookup_batch(std::hint::black_box(chunk), &mut out);
            sink = sink.wrapping_add(out[0] ^ out[255]);
        }
    }
    std::hint::black_box(sink);
    (rounds * (addrs.len() / 256 * 256)) as f64 / start.elapsed().as_secs_f64()
}

#[test]
fn one_million_internet_like_routes() {
    let mut rng = Rng(0x5eed_1a7e_0000_0001);
    let mut seen = HashSet::with_capacity(ROUTES);
    let mut routes = Vec::with_capacity(ROUTES);
    while routes.len() < ROUTES {
        let len = internet_len(&mut rng);
        let prefix = rng.next_u32() & mask(len);
        if seen.insert((prefix, len)) {
            routes.push((prefix, len, rng.below(MAX_NEXT_HOP + 1)));
        }
    }
    drop(seen);

    let mut t = Dir24_8::new(TBL8_GROUPS);
    let start = Instant::now();
    for &(p, l, nh) in &routes {
        t.insert(p, l, nh).unwrap();
    }
    let insert_time = start.elapsed();
    assert_eq!(t.len(), ROUTES);
    assert_eq!(
        t.tbl8_groups_used() as usize,
        distinct_blocks_over_24(&routes)
    );

    let reference = Reference::new(&routes);
    let addrs = probe_addrs(&mut rng, &routes, CHECKED_LOOKUPS);
    check(&t, &reference, &addrs);

    // Remove every tenth route; covered addresses fall back to shorter routes.
    let (removed, kept): (Vec<_>, Vec<_>) =
        routes.iter().enumerate().partition(|(i, _)| i % 10 == 0);
    let kept: Vec<_> = kept.into_iter().map(|(_, &r)| r).collect();
    let start = Instant::now();
    for &(_, &(p, l, nh)) in &removed {
        assert_eq!(t.remove(p, l), Some(nh));
    }
    let remove_time = start.elapsed();
    assert_eq!(t.len(), kept.len());
    assert_eq!(
        t.tbl8_groups_used() as usize,
        distinct_blocks_over_24(&kept)
    );
    let reference = Reference::new(&kept);
    let addrs_after = probe_addrs(&mut rng, &kept, CHECKED_LOOKUPS / 4);
    check(&t, &reference, &addrs_after);
    // Addresses of the removed routes specifically.
    let gone: Vec<u32> = removed
        .iter()
        .take(CHECKED_LOOKUPS / 4)
        .map(|(_, r)| r.0)
        .collect();
    let mut out = vec![0u32; gone.len()];
    t.lookup_batch(&gone, &mut out);
    for (&a, &o) in gone.iter().zip(&out) {
        assert_eq!(o, reference.lookup(a).unwrap_or(LPM_MISS), "addr {a:#010x}");
    }

    // Rates (informative only). Fewer rounds in debug builds.
    let rounds = if cfg!(debug_assertions) { 1 } else { 100 };
    let uniform: Vec<u32> = (0..CHECKED_LOOKUPS).map(|_| rng.next_u32()).collect();
    let inside = probe_addrs(&mut rng, &kept, CHECKED_LOOKUPS);
    let uniform_rate = batch_rate(&t, &uniform, rounds);
    let mixed_rate = batch_rate(&t, &inside, rounds);
    let start = Instant::now();
    let mut sink = 0u32;
    for _ in 0..rounds {
        for &a in &uniform {
            sink = sink.wrapping_add(t.lookup(std::hint::black_box(a)).unwrap_or(0));
        }
    }
    std::hint::black_box(sink);
    let single_rate = (rounds * uniform.len()) as f64 / start.elapsed().as_secs_f64();
    println!(
        "lpm: {ROUTES} routes inserted in {insert_time:.2?}, {} removed in {remove_time:.2?}; \
         {} tbl8 groups used; memory {} MiB",
        removed.len(),
        t.tbl8_groups_used(),
        t.memory_bytes() >> 20
    );
    println!(
        "lpm: lookup_batch {:.1} M/s (uniform addrs), {:.1} M/s (half inside routes); \
         lookup {:.1} M/s (uniform)",
        uniform_rate / 1e6,
        mixed_rate / 1e6,
        single_rate / 1e6
    );
}
