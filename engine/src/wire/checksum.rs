//! The Internet checksum (RFC 1071): fast partial sums, folding, pseudo
//! headers, and incremental updates (RFC 1624).
//!
//! Byte order: [`sum`] reads the data as big-endian 16-bit words, so
//! [`checksum`] returns the value as a number whose big-endian bytes
//! (`to_be_bytes`) go into the packet; the views' `set_checksum` do that.
//! Partial sums of separate pieces may be [`combine`]d only if every piece
//! but the last starts and has a length at an even offset of the whole.

use std::net::Ipv4Addr;

/// Ones'-complement partial sum of `data` (any length; an odd last byte is
/// padded with zero), as a big-endian number folded to 16 bits; pass it to
/// [`fold`] or [`combine`] it with other sums.
///
/// The sum does not depend on byte order (RFC 1071 §2(B)): native-endian
/// 32-bit words are added into a 64-bit accumulator, which cannot overflow
/// below 2^34 bytes, so there is no carry chain; the folded result is then
/// swapped into big-endian order. On CPUs with AVX2, inputs of at least
/// [`checksum_avx2::MIN_LEN`] bytes add 64 bytes per step (segments and
/// superframes, WireGuard's outer datagrams); the rest, and short headers,
/// take the portable loop.
#[inline]
pub fn sum(data: &[u8]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    if data.len() >= super::checksum_avx2::MIN_LEN && super::checksum_avx2::available() {
        let whole = data.len() & !63;
        // SAFETY: the CPU has AVX2 (checked at run time just above).
        let acc = unsafe { super::checksum_avx2::sum_blocks(&data[..whole]) };
        return fold_be(add_words(acc, &data[whole..]));
    }
    fold_be(add_words(0, data))
}

/// Adds `data` to `acc` as native-endian 32-bit words, the last one
/// zero-padded. The compiler turns the loop into SIMD adds (an 8-byte
/// add-with-carry loop was 5 % of the WireGuard path).
#[inline]
fn add_words(mut acc: u64, data: &[u8]) -> u64 {
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        acc += u64::from(u32::from_ne_bytes([w[0], w[1], w[2], w[3]]));
    }
    // At most 3 bytes remain: one zero-padded word, built from fixed-size
    // loads (a variable-length copy into a stack word is a memcpy call
    // whose byte stores stall the load after it).
    let rest = words.remainder();
    let mut tail = [0u8; 4];
    if rest.len() & 2 != 0 {
        tail[0] = rest[0];
        tail[1] = rest[1];
    }
    if rest.len() & 1 != 0 {
        tail[rest.len() - 1] = rest[rest.len() - 1];
    }
    acc + u64::from(u32::from_ne_bytes(tail))
}

/// Folds a sum of native-endian words to 16 bits with end-around carries
/// (non-zero stays non-zero) and returns it as a big-endian number.
#[inline]
fn fold_be(acc: u64) -> u32 {
    let mut s = (acc >> 32) + (acc & 0xffff_ffff);
    s = (s >> 32) + (s & 0xffff_ffff);
    s = (s >> 16) + (s & 0xffff);
    s = (s >> 16) + (s & 0xffff);
    s = (s >> 16) + (s & 0xffff);
    u32::from(u16::from_be(s as u16))
}

/// True when a 20-byte IPv4 header (no options) has a valid checksum.
/// The ones'-complement sum does not depend on byte order (RFC 1071 §2(B)),
/// so the five words are added as native-endian `u32`s with no swaps: the
/// forwarding path checks every header, and this is a handful of adds.
#[inline]
pub fn ipv4_header20_ok(h: &[u8; 20]) -> bool {
    let w = |i: usize| u64::from(u32::from_ne_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]));
    let acc = w(0) + w(4) + w(8) + w(12) + w(16);
    // Folding with end-around carry keeps the value modulo 0xffff, so the
    // folded sum is 0xffff (valid) exactly when `acc` is a non-zero multiple
    // of 0xffff: one multiply instead of four folds.
    acc != 0 && acc % 0xffff == 0
}

/// The header checksum after the TTL drops by one (RFC 1624 eqn. 3 with
/// `m' = m - 0x0100`, so `~m + m'` is the constant 0xfeff). Needs TTL >= 1.
#[inline]
pub fn ttl_decrement_update(csum: u16) -> u16 {
    let s = u32::from(!csum) + 0xfeff;
    // At most 0x1fefe: one fold cannot carry again.
    !(((s & 0xffff) + (s >> 16)) as u16)
}

/// Folds a partial sum to 16 bits with end-around carry; not complemented.
/// Returns 0 only for a zero sum.
#[inline]
pub fn fold(sum: u32) -> u16 {
    let mut s = (sum & 0xffff) + (sum >> 16);
    s = (s & 0xffff) + (s >> 16);
    s as u16
}

/// The Internet checksum of `data`: `!fold(sum(data))`. Write it into the
/// packet with `to_be_bytes`.
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(data))
}

/// Ones'-complement addition of two partial sums.
#[inline]
pub fn combine(a: u32, b: u32) -> u32 {
    let (s, carry) = a.overflowing_add(b);
    s + u32::from(carry)
}

/// Partial sum of the IPv4 pseudo header used by TCP and UDP (RFC 793 /
/// RFC 768): source, destination, zero + protocol, and the L4 length.
#[inline]
pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: u16) -> u32 {
    let s = u32::from(src);
    let d = u32::from(dst);
    (s >> 16) + (s & 0xffff) + (d >> 16) + (d & 0xffff) + u32::from(proto) + u32::from(len)
}

/// Incrementally updates checksum `csum` after a 16-bit word changed from
/// `old` to `new` (RFC 1624 eqn. 3: `HC' = ~(~HC + ~m + m')`). All values are
/// numbers read/written big-endian, like the checksum itself.
#[inline]
pub fn update16(csum: u16, old: u16, new: u16) -> u16 {
    let s = u32::from(!csum) + u32::from(!old) + u32::from(new);
    !fold(s)
}

/// Like [`update16`] for a 32-bit field (an address, a sequence number),
/// treated as two 16-bit words.
#[inline]
pub fn update32(csum: u16, old: u32, new: u32) -> u16 {
    let s = u32::from(!csum)
        + u32::from(!(old >> 16) as u16)
        + u32::from(!(old as u16))
        + (new >> 16)
        + (new & 0xffff);
    !fold(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Plain RFC 1071 reference: 16-bit big-endian words into a u32.
    fn reference_sum(data: &[u8]) -> u16 {
        let mut s: u32 = 0;
        for pair in data.chunks(2) {
            let hi = u32::from(pair[0]) << 8;
            let lo = pair.get(1).copied().map_or(0, u32::from);
            s += hi | lo;
            s = (s & 0xffff) + (s >> 16);
        }
        s as u16
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3 example: bytes 00 01 f2 03 f4 f5 f6 f7 sum to 0xddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&data)), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn odd_length_pads_last_byte_high() {
        assert_eq!(fold(sum(&[0xab])), 0xab00);
        assert_eq!(fold(sum(&[0x12, 0x34, 0xab])), 0x1234 + 0xab00);
        assert_eq!(fold(sum(&[])), 0);
    }

    #[test]
    fn ipv4_header_checksum_matches_known_header() {
        // Header of a scapy-built packet (see ipv4.rs goldens), checksum 0x7c61.
        let mut h = crate::wire::hex("450000211234000040117c61c0000201c6336402");
        assert_eq!(fold(sum(&h)), 0xffff);
        h[10] = 0;
        h[11] = 0;
        assert_eq!(checksum(&h), 0x7c61);
    }

    #[test]
    fn pseudo_header_sum() {
        let s = pseudo_header_v4(
            Ipv4Addr::new(192, 0, 2, 1),
            Ipv4Addr::new(198, 51, 100, 2),
            17,
            13,
        );
        let bytes = [192, 0, 2, 1, 198, 51, 100, 2, 0, 17, 0, 13];
        assert_eq!(fold(s), reference_sum(&bytes));
    }

    proptest! {
        #[test]
        fn header20_check_matches_fold_of_sum(h in proptest::array::uniform20(any::<u8>()), fix in any::<bool>()) {
            let mut h = h;
            if fix {
                h[10] = 0;
                h[11] = 0;
                let c = checksum(&h).to_be_bytes();
                h[10] = c[0];
                h[11] = c[1];
            }
            prop_assert_eq!(ipv4_header20_ok(&h), fold(sum(&h)) == 0xffff);
        }

        #[test]
        fn ttl_decrement_update_matches_update16(csum in any::<u16>(), ttl in 1u8..=255, proto in any::<u8>()) {
            let old = u16::from_be_bytes([ttl, proto]);
            prop_assert_eq!(ttl_decrement_update(csum), update16(csum, old, old - 0x0100));
        }

        #[test]
        fn sum_matches_reference(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            prop_assert_eq!(fold(sum(&data)), reference_sum(&data));
        }

        /// Long inputs (the AVX2 blocks where the CPU has them, then the
        /// portable tail) at every alignment.
        #[test]
        fn long_sum_matches_reference(
            data in proptest::collection::vec(any::<u8>(), 0..10_000),
            skip in 0usize..64,
        ) {
            let d = &data[skip.min(data.len())..];
            prop_assert_eq!(fold(sum(d)), reference_sum(d));
        }

        #[test]
        fn combine_of_even_split_matches_whole(
            data in proptest::collection::vec(any::<u8>(), 0..300),
            split in 0usize..150,
        ) {
            let at = (split * 2).min(data.len() & !1);
            let whole = fold(sum(&data));
            let parts = fold(combine(sum(&data[..at]), sum(&data[at..])));
            prop_assert_eq!(whole, parts);
        }

        /// Changing one aligned 16-bit word and updating incrementally gives
        /// the same checksum as recomputing it. The first word is kept
        /// non-zero (as in every real header) so the data is never all zero,
        /// the one case where ones'-complement 0x0000 and 0xffff differ.
        #[test]
        fn update16_matches_recompute(
            mut data in proptest::collection::vec(any::<u8>(), 4..64),
            word in 1usize..32,
            new in any::<u16>(),
        ) {
            data[0] |= 0x40;
            let at = (word * 2) % (data.len() & !1);
            prop_assume!(at >= 2);
            let before = checksum(&data);
            let old = u16::from_be_bytes([data[at], data[at + 1]]);
            data[at..at + 2].copy_from_slice(&new.to_be_bytes());
            prop_assert_eq!(update16(before, old, new), checksum(&data));
        }

        #[test]
        fn update32_matches_recompute(
            mut data in proptest::collection::vec(any::<u8>(), 8..64),
            word in 1usize..16,
            new in any::<u32>(),
        ) {
            data[0] |= 0x40;
            let at = (word * 2) % ((data.len() - 2) & !1);
            prop_assume!(at >= 2 && at + 4 <= data.len());
            let before = checksum(&data);
            let old = u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]);
            data[at..at + 4].copy_from_slice(&new.to_be_bytes());
            prop_assert_eq!(update32(before, old, new), checksum(&data));
        }
    }
}
