//! The Maglev lookup table (Eisenbud et al., "Maglev: A Fast and Reliable
//! Software Network Load Balancer", NSDI 2016, §3.4 and Pseudocode 1), with
//! weights. Built off the packet path (it allocates); a lookup is one
//! modulo and one array read.

use std::net::SocketAddrV4;

use super::hash::{hash64, SEED_OFFSET, SEED_SKIP};
use super::turns::{quotas, Turns};

/// The paper's default table size: prime, and > 100 × backends for up to
/// 655 backends.
pub const DEFAULT_TABLE_SIZE: usize = 65_537;

/// Largest table size accepted (2^24 entries, 32 MiB): keeps the weight and
/// turn arithmetic inside `u64` and the primality check trivial.
pub const MAX_TABLE_SIZE: usize = 1 << 24;

/// Most backends one table can hold: entries are `u16` indices and
/// `u16::MAX` marks an empty slot while the table is being filled.
pub const MAX_BACKENDS: usize = u16::MAX as usize;

/// The paper's rule for an even spread: M > 100 × N keeps every backend's
/// share within 1 % of the ideal (without weights; see [`MaglevTable`]).
pub const SIZE_PER_BACKEND: usize = 100;

const EMPTY: u16 = u16::MAX;

/// One backend of a pool: a stable identity and a weight.
///
/// The table depends only on the set of keys and weights, never on the order
/// of the slice, so the key must identify the backend across rebuilds —
/// e.g. [`backend_key`] of its address and port. Weight 0 drains the
/// backend: it owns no entries (takes no new flows) and the table is then
/// the same as without it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaglevBackend<K> {
    pub key: K,
    pub weight: u32,
}

/// Why a table could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MaglevError {
    #[error("a Maglev table needs at least one backend")]
    NoBackends,
    #[error("{backends} backends: a Maglev table holds at most {max}")]
    TooManyBackends { backends: usize, max: usize },
    #[error("Maglev table size {size} is not prime")]
    SizeNotPrime { size: usize },
    #[error("Maglev table size {size} exceeds the maximum {max}")]
    SizeTooLarge { size: usize, max: usize },
    #[error(
        "Maglev table size {size} is too small for {backends} backends: it must exceed \
         100 × backends (the smallest prime that does is {smallest})"
    )]
    SizeTooSmall {
        size: usize,
        backends: usize,
        smallest: usize,
    },
    #[error("backends {first} and {second} have the same key")]
    DuplicateKey { first: usize, second: usize },
    #[error("every backend has weight 0: nothing can take a flow")]
    AllWeightsZero,
    #[error("backend {index}: offset {offset} / skip {skip} invalid for table size {size}")]
    BadPermutation {
        index: usize,
        offset: u64,
        skip: u64,
        size: usize,
    },
}

/// A built Maglev table: `size` entries (prime), each the index (into the
/// slice given to [`MaglevTable::build`]) of the backend that owns it.
///
/// Weights: backend `i` owns `M·wᵢ/W` entries rounded up or down (never an
/// entry more or less), and takes its turns in the populate loop evenly
/// spread by weight (see `turns.rs` for the method and why). So its share is
/// within `W / (M·wᵢ)` of ideal (relative): below 1 % whenever
/// `M > 100 · W/wᵢ`, which with equal weights is the paper's `M > 100 N`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaglevTable {
    entries: Box<[u16]>,
    /// `entries.len()` as the modulus of a lookup.
    modulus: u64,
    backends: usize,
}

impl MaglevTable {
    /// Builds the table for `backends` with `size` entries. `size` must be
    /// prime, at most [`MAX_TABLE_SIZE`] and greater than 100 × the number
    /// of backends (drained ones included, so draining never invalidates a
    /// size); keys must be distinct and some weight non-zero.
    ///
    /// Allocates and takes O(M log M) steps: control-side or link-thread
    /// work, never on a worker's packet path.
    pub fn build<K: AsRef<[u8]>>(
        backends: &[MaglevBackend<K>],
        size: usize,
    ) -> Result<Self, MaglevError> {
        validate_count(backends.len())?;
        validate_size(size)?;
        if size <= SIZE_PER_BACKEND * backends.len() {
            return Err(MaglevError::SizeTooSmall {
                size,
                backends: backends.len(),
                smallest: smallest_size(backends.len()),
            });
        }
        // Canonical order: by key bytes, so the slice's order does not matter.
        let mut order: Vec<usize> = (0..backends.len()).collect();
        order.sort_by(|&a, &b| backends[a].key.as_ref().cmp(backends[b].key.as_ref()));
        for pair in order.windows(2) {
            if backends[pair[0]].key.as_ref() == backends[pair[1]].key.as_ref() {
                return Err(MaglevError::DuplicateKey {
                    first: pair[0].min(pair[1]),
                    second: pair[0].max(pair[1]),
                });
            }
        }
        let m = size as u64;
        let permutations: Vec<(u64, u64)> = order
            .iter()
            .map(|&i| {
                let key = backends[i].key.as_ref();
                let offset = hash64(SEED_OFFSET, key) % m;
                let skip = hash64(SEED_SKIP, key) % (m - 1) + 1;
                (offset, skip)
            })
            .collect();
        let weights: Vec<u32> = order.iter().map(|&i| backends[i].weight).collect();
        let mut entries = populate(size, &permutations, &weights)?;
        // Positions in canonical order back to the caller's indices.
        for entry in entries.iter_mut() {
            *entry = order[usize::from(*entry)] as u16;
        }
        Ok(MaglevTable {
            entries,
            modulus: m,
            backends: backends.len(),
        })
    }

    /// [`MaglevTable::build`] with [`DEFAULT_TABLE_SIZE`].
    pub fn with_default_size<K: AsRef<[u8]>>(
        backends: &[MaglevBackend<K>],
    ) -> Result<Self, MaglevError> {
        Self::build(backends, DEFAULT_TABLE_SIZE)
    }

    /// Test-only: the table for backends given directly as `(offset, skip,
    /// weight)` in populate order, as in the paper's Table 1 example. Only
    /// primality of `size` is checked (not the 100 × N rule).
    #[cfg(test)]
    pub(crate) fn from_permutations(
        size: usize,
        backends: &[(u64, u64, u32)],
    ) -> Result<Self, MaglevError> {
        validate_count(backends.len())?;
        validate_size(size)?;
        let m = size as u64;
        for (index, &(offset, skip, _)) in backends.iter().enumerate() {
            if offset >= m || skip == 0 || skip >= m {
                return Err(MaglevError::BadPermutation {
                    index,
                    offset,
                    skip,
                    size,
                });
            }
        }
        let permutations: Vec<(u64, u64)> = backends.iter().map(|&(o, s, _)| (o, s)).collect();
        let weights: Vec<u32> = backends.iter().map(|&(_, _, w)| w).collect();
        Ok(MaglevTable {
            entries: populate(size, &permutations, &weights)?,
            modulus: m,
            backends: backends.len(),
        })
    }

    /// The backend (index into the built-from slice) for a flow hash: entry
    /// `hash mod M`. O(1), no allocation, cannot fail.
    #[inline]
    pub fn get(&self, hash: u64) -> usize {
        usize::from(self.entries[(hash % self.modulus) as usize])
    }

    /// Number of entries, M.
    pub fn size(&self) -> usize {
        self.entries.len()
    }

    /// Number of backends the table was built from (drained ones included).
    pub fn backend_count(&self) -> usize {
        self.backends
    }

    /// Entry `j`'s backend index, for every `j` in `0..M`.
    pub fn entries(&self) -> impl ExactSizeIterator<Item = usize> + '_ {
        self.entries.iter().map(|&e| usize::from(e))
    }

    /// How many entries each backend owns (its share of new flows × M).
    pub fn entry_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.backends];
        for &e in self.entries.iter() {
            counts[usize::from(e)] += 1;
        }
        counts
    }
}

/// A backend's key from its IPv4 address and port: the 6 bytes
/// `address ‖ port`, both in network order.
pub fn backend_key(addr: SocketAddrV4) -> [u8; 6] {
    let mut key = [0u8; 6];
    key[..4].copy_from_slice(&addr.ip().octets());
    key[4..].copy_from_slice(&addr.port().to_be_bytes());
    key
}

/// Whether `n` is prime (trial division; `n` ≤ [`MAX_TABLE_SIZE`] in use).
pub fn is_prime(n: usize) -> bool {
    if n < 4 {
        return n >= 2;
    }
    if n.is_multiple_of(2) {
        return false;
    }
    let mut d = 3;
    while d * d <= n {
        if n.is_multiple_of(d) {
            return false;
        }
        d += 2;
    }
    true
}

/// The smallest valid table size for `backends` backends: the smallest
/// prime greater than 100 × `backends`.
pub fn smallest_size(backends: usize) -> usize {
    let mut n = SIZE_PER_BACKEND * backends + 1;
    while !is_prime(n) {
        n += 1;
    }
    n
}

fn validate_count(backends: usize) -> Result<(), MaglevError> {
    if backends == 0 {
        return Err(MaglevError::NoBackends);
    }
    if backends > MAX_BACKENDS {
        return Err(MaglevError::TooManyBackends {
            backends,
            max: MAX_BACKENDS,
        });
    }
    Ok(())
}

fn validate_size(size: usize) -> Result<(), MaglevError> {
    if size > MAX_TABLE_SIZE {
        return Err(MaglevError::SizeTooLarge {
            size,
            max: MAX_TABLE_SIZE,
        });
    }
    if !is_prime(size) {
        return Err(MaglevError::SizeNotPrime { size });
    }
    Ok(())
}

/// Pseudocode 1 with weighted turns: backend `i` prefers entries
/// `(offsetᵢ + j·skipᵢ) mod M` for j = 0, 1, …; at each of its turns it takes
/// its most preferred entry still empty. Returns entries as positions into
/// `permutations`. Each permutation is a full cycle (M prime, 0 < skip < M),
/// and the entries a backend passed over were already taken, so its next
/// empty preference always exists while the table is not full.
fn populate(
    size: usize,
    permutations: &[(u64, u64)],
    weights: &[u32],
) -> Result<Box<[u16]>, MaglevError> {
    let quota = quotas(size as u64, weights);
    if quota.iter().all(|&q| q == 0) {
        return Err(MaglevError::AllWeightsZero);
    }
    let m = size as u64;
    // The entry each backend will try next (its permutation's current j).
    let mut next: Vec<u64> = permutations.iter().map(|&(offset, _)| offset).collect();
    let mut entries = vec![EMPTY; size].into_boxed_slice();
    // The quotas sum to M, so the turns fill the table exactly.
    for position in Turns::new(&quota) {
        let skip = permutations[position].1;
        loop {
            let candidate = next[position];
            let advanced = candidate + skip;
            next[position] = if advanced >= m {
                advanced - m
            } else {
                advanced
            };
            let slot = &mut entries[candidate as usize];
            if *slot == EMPTY {
                *slot = position as u16;
                break;
            }
        }
    }
    Ok(entries)
}
