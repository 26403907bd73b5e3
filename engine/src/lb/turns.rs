//! Weighted turns for Maglev's populate loop: how many table entries each
//! backend gets (its quota) and the order in which backends take their
//! turns.
//!
//! Method: every turn of the populate loop places exactly one entry, so a
//! backend's share of the table is exactly the number of turns it takes.
//! We fix the turn counts first — the largest-remainder apportionment of the
//! table size by weight, so each backend owns `M·wᵢ/W` entries rounded up or
//! down, never more than one entry off — and then interleave the turns as
//! evenly as possible: backend `i`'s `k`-th turn happens at virtual time
//! `(k + ½) / tᵢ` (ties by position). A backend with twice the weight takes
//! its turns twice as often all the way through, so the table fills the
//! same gradual, interleaved way as in the paper, which is what keeps
//! disruption low.
//!
//! Why this and not the alternatives: letting a weight-`w` backend take `w`
//! turns per round leaves the last, partial round to chance (up to `wᵢ`
//! entries off, 10 % of a small backend's share); replicating a backend `w`
//! times under different keys multiplies the permutations to walk and still
//! only approximates the weights. With equal weights the order above is
//! exactly the paper's round robin in key order (the backends that get the
//! extra entry of `M mod N` come first in each round), so Pseudocode 1 is
//! the special case.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

/// Entries per backend: the largest-remainder apportionment of `size` by
/// `weights` (remainder ties go to the earlier position). Sums to `size`
/// when some weight is non-zero; all zero when every weight is.
pub(super) fn quotas(size: u64, weights: &[u32]) -> Vec<u64> {
    let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
    if total == 0 {
        return vec![0; weights.len()];
    }
    // size < 2^25 and weight < 2^32: the product fits in u64.
    let mut quota: Vec<u64> = weights
        .iter()
        .map(|&w| size * u64::from(w) / total)
        .collect();
    let given: u64 = quota.iter().sum();
    let mut by_remainder: Vec<usize> = (0..weights.len()).collect();
    by_remainder.sort_by_key(|&i| (Reverse(size * u64::from(weights[i]) % total), i));
    // `size - given` < number of non-zero remainders, so only backends with
    // a non-zero weight receive an extra entry.
    for &i in by_remainder.iter().take((size - given) as usize) {
        quota[i] += 1;
    }
    quota
}

/// One backend's next turn, at virtual time `numer / denom`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Turn {
    numer: u64,
    denom: u64,
    position: usize,
}

impl Ord for Turn {
    fn cmp(&self, other: &Self) -> Ordering {
        // Fractions compared by cross-multiplication (both sides < 2^50).
        (self.numer * other.denom)
            .cmp(&(other.numer * self.denom))
            .then(self.position.cmp(&other.position))
    }
}

impl PartialOrd for Turn {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The turn sequence for the given quotas: yields backend positions, each
/// position `i` exactly `quotas[i]` times, in virtual-time order.
pub(super) struct Turns {
    pending: BinaryHeap<Reverse<Turn>>,
}

impl Turns {
    pub(super) fn new(quotas: &[u64]) -> Self {
        let pending = quotas
            .iter()
            .enumerate()
            .filter(|&(_, &t)| t > 0)
            .map(|(position, &t)| {
                Reverse(Turn {
                    numer: 1,
                    denom: 2 * t,
                    position,
                })
            })
            .collect();
        Turns { pending }
    }
}

impl Iterator for Turns {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        let Reverse(turn) = self.pending.pop()?;
        // numer = 2k + 1 and denom = 2t: the last turn is k = t - 1.
        if turn.numer + 2 < turn.denom {
            self.pending.push(Reverse(Turn {
                numer: turn.numer + 2,
                ..turn
            }));
        }
        Some(turn.position)
    }
}
