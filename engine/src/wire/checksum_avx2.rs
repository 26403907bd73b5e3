//! The bulk of [`super::checksum::sum`] on x86-64 CPUs with AVX2: 64 bytes
//! per step into four vectors of 64-bit lanes (each 32-bit word zero-extended
//! by an unpack with zero), where the baseline x86-64 build's loop adds 8
//! bytes per step (nat-veth A/B in perf/RESULTS.md: −18 % engine CPU per
//! byte). Chosen at run time, so the build stays baseline x86-64.

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::{
    __m256i, _mm256_add_epi64, _mm256_loadu_si256, _mm256_setzero_si256, _mm256_storeu_si256,
    _mm256_unpackhi_epi32, _mm256_unpacklo_epi32,
};

/// Shorter inputs take the portable loop (as fast there, and headers are
/// 20–60 bytes).
pub const MIN_LEN: usize = 128;

/// True when the CPU has AVX2 (std caches the CPUID answer).
#[inline]
pub fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
}

/// Sum of `data`'s native-endian 32-bit words in a 64-bit accumulator, the
/// same value the portable loop computes. `data.len()` must be a multiple of
/// 64 (the caller sums the rest).
///
/// # Safety
/// The CPU must support AVX2 ([`available`]).
#[target_feature(enable = "avx2")]
pub unsafe fn sum_blocks(data: &[u8]) -> u64 {
    debug_assert!(data.len().is_multiple_of(64));
    let zero = _mm256_setzero_si256();
    let mut acc = [zero; 4];
    for b in data.chunks_exact(64) {
        // SAFETY: `b` holds 64 readable bytes; unaligned loads.
        let (v0, v1) = unsafe {
            (
                _mm256_loadu_si256(b.as_ptr().cast::<__m256i>()),
                _mm256_loadu_si256(b.as_ptr().add(32).cast::<__m256i>()),
            )
        };
        acc[0] = _mm256_add_epi64(acc[0], _mm256_unpacklo_epi32(v0, zero));
        acc[1] = _mm256_add_epi64(acc[1], _mm256_unpackhi_epi32(v0, zero));
        acc[2] = _mm256_add_epi64(acc[2], _mm256_unpacklo_epi32(v1, zero));
        acc[3] = _mm256_add_epi64(acc[3], _mm256_unpackhi_epi32(v1, zero));
    }
    let all = _mm256_add_epi64(
        _mm256_add_epi64(acc[0], acc[1]),
        _mm256_add_epi64(acc[2], acc[3]),
    );
    let mut lanes = [0u64; 4];
    // SAFETY: `lanes` is 32 writable bytes; unaligned store.
    unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast::<__m256i>(), all) };
    lanes.iter().sum()
}
