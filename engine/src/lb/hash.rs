//! The stable, seeded 64-bit hash Maglev derives a backend's offset and skip
//! from. Defined here (never std's `DefaultHasher`, whose SipHash keys and
//! algorithm may change between Rust releases) so that a table depends only
//! on its backends: the same pool gives the same table after a restart, an
//! upgrade, or on the peer appliance of an HA pair, and flows not yet pinned
//! keep landing on the same backend.

/// Seed of `h1` (the offset hash): ASCII "maglev_1".
pub const SEED_OFFSET: u64 = 0x6d61_676c_6576_5f31;
/// Seed of `h2` (the skip hash): ASCII "maglev_2".
pub const SEED_SKIP: u64 = 0x6d61_676c_6576_5f32;

const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// The SplitMix64 finaliser (Stafford's "Mix13"): a bijection on `u64` in
/// which every input bit flips each output bit with probability ≈ 1/2.
#[inline]
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Hashes `bytes` under `seed`: the state starts as `mix(seed ^ len·γ)`,
/// then absorbs each 8-byte little-endian word (the last one zero-padded;
/// the length in the start state tells paddings apart) as
/// `state = mix(state ^ word)`. Every step is a bijection of the state for a
/// fixed word, and a different seed scrambles the start state completely, so
/// the two seeds give two independent hashes of the same key.
///
/// The output for a given input must never change: the golden values in the
/// tests (computed by an independent Python implementation) pin it.
pub fn hash64(seed: u64, bytes: &[u8]) -> u64 {
    let mut state = mix(seed ^ (bytes.len() as u64).wrapping_mul(GOLDEN_GAMMA));
    for chunk in bytes.chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        state = mix(state ^ u64::from_le_bytes(word));
    }
    state
}
