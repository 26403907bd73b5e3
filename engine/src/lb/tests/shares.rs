//! Shares against the weights (the paper's 1 % claim), equality with a
//! direct transcription of Pseudocode 1, order independence, determinism,
//! lookups and draining.

use proptest::prelude::*;

use super::super::hash::{hash64, SEED_OFFSET, SEED_SKIP};
use super::super::maglev::{smallest_size, MaglevBackend, MaglevTable, DEFAULT_TABLE_SIZE};
use super::{owners, pool};

/// Asserts each backend's entry count is within one entry of its exact
/// weighted share `M·wᵢ/W`, and returns the largest relative error.
fn check_shares(table: &MaglevTable, weights: &[u32]) -> f64 {
    let m = table.size() as f64;
    let total: u32 = weights.iter().sum();
    let mut worst: f64 = 0.0;
    for (i, (&count, &w)) in table.entry_counts().iter().zip(weights).enumerate() {
        let ideal = m * f64::from(w) / f64::from(total);
        assert!(
            (count as f64 - ideal).abs() < 1.0,
            "backend {i} (weight {w}) owns {count} entries, ideal {ideal}"
        );
        if w == 0 {
            assert_eq!(count, 0, "drained backend {i} owns entries");
        } else {
            worst = worst.max((count as f64 - ideal).abs() / ideal);
        }
    }
    worst
}

/// Pseudocode 1 as printed (explicit permutation arrays, `next[i]`,
/// round robin in key order), for equal weights.
fn paper_populate(keys: &[[u8; 6]], m: usize) -> Vec<[u8; 6]> {
    let mut sorted = keys.to_vec();
    sorted.sort();
    let permutation: Vec<Vec<usize>> = sorted
        .iter()
        .map(|key| {
            let offset = (hash64(SEED_OFFSET, key) % m as u64) as usize;
            let skip = (hash64(SEED_SKIP, key) % (m as u64 - 1) + 1) as usize;
            (0..m).map(|j| (offset + j * skip) % m).collect()
        })
        .collect();
    let mut next = vec![0; sorted.len()];
    let mut entry: Vec<Option<usize>> = vec![None; m];
    let mut n = 0;
    loop {
        for i in 0..sorted.len() {
            let mut c = permutation[i][next[i]];
            while entry[c].is_some() {
                next[i] += 1;
                c = permutation[i][next[i]];
            }
            entry[c] = Some(i);
            next[i] += 1;
            n += 1;
            if n == m {
                return entry.into_iter().map(|e| sorted[e.unwrap()]).collect();
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Equal weights, the smallest M the paper allows (M > 100 N): every
    /// backend within 1 % of M/N.
    #[test]
    fn equal_weights_within_one_percent_at_smallest_size(n in 1usize..=50, base: u32) {
        let weights = vec![1; n];
        let m = smallest_size(n);
        let table = MaglevTable::build(&pool(base, &weights), m).unwrap();
        let worst = check_shares(&table, &weights);
        prop_assert!(worst < 0.01, "worst relative share error {worst}");
    }

    /// Random weights 1..=10 with the default M: within one entry of the
    /// weighted share, so within W/(M·wᵢ) ≤ 500/65537 < 1 % (relative).
    #[test]
    fn weighted_within_one_percent(weights in prop::collection::vec(1u32..=10, 1..=50), base: u32) {
        let table = MaglevTable::with_default_size(&pool(base, &weights)).unwrap();
        let worst = check_shares(&table, &weights);
        prop_assert!(worst < 0.01, "worst relative share error {worst}");
    }

    /// With equal weights the table is exactly Pseudocode 1's.
    #[test]
    fn equal_weights_match_pseudocode_1(n in 1usize..=12, base: u32) {
        let backends = pool(base, &vec![5; n]);
        let m = smallest_size(n);
        let table = MaglevTable::build(&backends, m).unwrap();
        let keys: Vec<[u8; 6]> = backends.iter().map(|b| b.key).collect();
        prop_assert_eq!(owners(&table, &backends), paper_populate(&keys, m));
    }

    /// The same set in any order gives the same table (by backend
    /// identity), and building twice gives identical tables.
    #[test]
    fn order_independent_and_deterministic(
        weights in prop::collection::vec(0u32..=10, 2..=30),
        base: u32,
        seed: u64,
    ) {
        prop_assume!(weights.iter().any(|&w| w > 0));
        let backends = pool(base, &weights);
        let m = smallest_size(backends.len());
        let table = MaglevTable::build(&backends, m).unwrap();
        prop_assert_eq!(&MaglevTable::build(&backends, m).unwrap(), &table);
        let mut shuffled = backends.clone();
        // Fisher-Yates driven by the seed.
        let mut state = seed;
        for i in (1..shuffled.len()).rev() {
            state = hash64(state, &(i as u64).to_le_bytes());
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let reordered = MaglevTable::build(&shuffled, m).unwrap();
        prop_assert_eq!(owners(&reordered, &shuffled), owners(&table, &backends));
        check_shares(&table, &weights);
    }

    /// A drained backend (weight 0) owns nothing, and the table is the same
    /// as without it: it only stops taking new flows.
    #[test]
    fn drained_equals_removed(weights in prop::collection::vec(1u32..=10, 2..=20), pick: prop::sample::Index, base: u32) {
        let backends = pool(base, &weights);
        let drained_index = pick.index(backends.len());
        let mut drained = backends.clone();
        drained[drained_index].weight = 0;
        let removed: Vec<MaglevBackend<[u8; 6]>> = backends
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != drained_index)
            .map(|(_, b)| *b)
            .collect();
        let m = smallest_size(backends.len());
        let with_drained = MaglevTable::build(&drained, m).unwrap();
        let without = MaglevTable::build(&removed, m).unwrap();
        prop_assert_eq!(with_drained.entry_counts()[drained_index], 0);
        prop_assert_eq!(owners(&with_drained, &drained), owners(&without, &removed));
    }
}

#[test]
fn get_reads_entry_hash_mod_m() {
    let backends = pool(0x0a00_0001, &[1, 2, 3]);
    let table = MaglevTable::with_default_size(&backends).unwrap();
    let entries: Vec<usize> = table.entries().collect();
    assert_eq!(entries.len(), DEFAULT_TABLE_SIZE);
    for hash in [
        0,
        1,
        65_536,
        65_537,
        65_538,
        u64::MAX,
        0x9e37_79b9_7f4a_7c15,
    ] {
        assert_eq!(
            table.get(hash),
            entries[(hash % DEFAULT_TABLE_SIZE as u64) as usize]
        );
    }
    assert_eq!(table.backend_count(), 3);
    assert_eq!(
        table.entry_counts().iter().sum::<usize>(),
        DEFAULT_TABLE_SIZE
    );
}

/// Flow hashes spread over the backends by weight through `get` too.
#[test]
fn lookups_follow_the_weights() {
    let weights = [1, 2, 3, 4];
    let table = MaglevTable::with_default_size(&pool(0x0a00_0001, &weights)).unwrap();
    let mut hits = [0u32; 4];
    let flows = 100_000u64;
    for flow in 0..flows {
        hits[table.get(hash64(0x1234, &flow.to_le_bytes()))] += 1;
    }
    for (i, &w) in weights.iter().enumerate() {
        let expected = flows as f64 * f64::from(w) / 10.0;
        let error = (f64::from(hits[i]) - expected).abs() / expected;
        assert!(
            error < 0.03,
            "backend {i}: {} hits, expected {expected}",
            hits[i]
        );
    }
}
