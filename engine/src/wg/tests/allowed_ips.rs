//! The allowed-IPs trie against a brute-force longest-prefix match.

use std::net::Ipv4Addr;

use proptest::prelude::*;

use crate::wg::AllowedIps;

fn mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    }
}

/// Longest matching prefix by scanning; later inserts of the same prefix win.
fn brute(prefixes: &[(u32, u8, u32)], addr: u32) -> Option<u32> {
    let mut best: Option<(u8, u32)> = None;
    for &(p, len, v) in prefixes {
        if addr & mask(len) == p & mask(len) && best.is_none_or(|(l, _)| len >= l) {
            best = Some((len, v));
        }
    }
    best.map(|(_, v)| v)
}

#[test]
fn longest_prefix_wins() {
    let mut t = AllowedIps::new();
    assert_eq!(t.lookup(Ipv4Addr::new(1, 2, 3, 4)), None);
    t.insert(Ipv4Addr::new(10, 0, 0, 0), 8, 1);
    t.insert(Ipv4Addr::new(10, 1, 0, 0), 16, 2);
    t.insert(Ipv4Addr::new(10, 1, 2, 3), 32, 3);
    assert_eq!(
        t.insert(Ipv4Addr::new(10, 1, 99, 99), 16, 4),
        Some(2),
        "same /16"
    );
    assert_eq!(t.lookup(Ipv4Addr::new(10, 9, 9, 9)), Some(1));
    assert_eq!(t.lookup(Ipv4Addr::new(10, 1, 9, 9)), Some(4));
    assert_eq!(t.lookup(Ipv4Addr::new(10, 1, 2, 3)), Some(3));
    assert_eq!(t.lookup(Ipv4Addr::new(11, 0, 0, 0)), None);
    t.insert(Ipv4Addr::UNSPECIFIED, 0, 9);
    assert_eq!(t.lookup(Ipv4Addr::new(11, 0, 0, 0)), Some(9));
}

proptest! {
    #[test]
    fn matches_brute_force(
        prefixes in proptest::collection::vec((any::<u32>(), 0u8..=32, 0u32..1000), 0..40),
        probes in proptest::collection::vec(any::<u32>(), 1..40),
    ) {
        let mut t = AllowedIps::new();
        for &(p, len, v) in &prefixes {
            t.insert(Ipv4Addr::from(p), len, v);
        }
        // Probe random addresses and addresses inside each prefix.
        let inside = prefixes.iter().map(|&(p, len, _)| p & mask(len) | (!mask(len) & 0x5a5a_5a5a));
        for addr in probes.iter().copied().chain(inside) {
            prop_assert_eq!(t.lookup(Ipv4Addr::from(addr)), brute(&prefixes, addr));
        }
    }
}
