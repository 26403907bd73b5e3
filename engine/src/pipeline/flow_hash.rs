//! A symmetric flow hash: both directions of a 5-tuple hash alike, so ECMP
//! and any per-flow choice treat a connection as one thing.

/// Hashes (src, dst, protocol, ports) with the endpoints ordered first.
#[inline]
pub fn symmetric(src: u32, dst: u32, proto: u8, sport: u16, dport: u16) -> u32 {
    let (a, b) = if (src, sport) <= (dst, dport) {
        ((src, sport), (dst, dport))
    } else {
        ((dst, dport), (src, sport))
    };
    let x = ((a.0 as u64) << 32 | b.0 as u64)
        ^ ((a.1 as u64) << 48 | (b.1 as u64) << 32 | proto as u64);
    let x = (x ^ (x >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    let x = (x ^ (x >> 33)).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    (x ^ (x >> 33)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_directions_hash_alike_and_flows_differ() {
        assert_eq!(symmetric(1, 2, 6, 10, 20), symmetric(2, 1, 6, 20, 10));
        assert_ne!(symmetric(1, 2, 6, 10, 20), symmetric(1, 2, 6, 10, 21));
        assert_ne!(symmetric(1, 2, 6, 10, 20), symmetric(1, 2, 17, 10, 20));
    }
}
