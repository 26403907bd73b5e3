//! The paper's Table 1 example and the stable hash's golden values.

use std::net::{Ipv4Addr, SocketAddrV4};

use super::super::hash::{hash64, SEED_OFFSET, SEED_SKIP};
use super::super::maglev::{backend_key, MaglevTable};

/// NSDI 2016, Table 1: M = 7, B0 (offset 3, skip 4), B1 (0, 2), B2 (3, 1).
const PAPER: [(u64, u64, u32); 3] = [(3, 4, 1), (0, 2, 1), (3, 1, 1)];

#[test]
fn paper_table_1_before() {
    let table = MaglevTable::from_permutations(7, &PAPER).unwrap();
    // The paper's "Before" column: B1 B0 B1 B0 B2 B2 B0.
    assert_eq!(table.entries().collect::<Vec<_>>(), [1, 0, 1, 0, 2, 2, 0]);
}

#[test]
fn paper_table_1_after_b1_removed() {
    let table = MaglevTable::from_permutations(7, &[PAPER[0], PAPER[2]]).unwrap();
    // The paper's "After" column: B0 B0 B0 B0 B2 B2 B2 (positions 0 and 1
    // here are B0 and B2).
    assert_eq!(table.entries().collect::<Vec<_>>(), [0, 0, 0, 0, 1, 1, 1]);
}

#[test]
fn paper_table_1_b1_drained_equals_removed() {
    let drained = [PAPER[0], (0, 2, 0), PAPER[2]];
    let table = MaglevTable::from_permutations(7, &drained).unwrap();
    assert_eq!(table.entries().collect::<Vec<_>>(), [0, 0, 0, 0, 2, 2, 2]);
}

/// Weighted variants of the paper's example, traced by hand.
#[test]
fn paper_example_weighted() {
    // Weights 2 : 1 : 1. Ideal shares 3.5, 1.75, 1.75; floors 3, 1, 1 and
    // the two spare entries go to the largest remainders (B1, B2): quotas
    // 3, 2, 2. Turn times (k+½)/t: B0 1/6 3/6 5/6, B1 and B2 1/4 3/4, so the
    // turns are B0 B1 B2 B0 B1 B2 B0, as unweighted: the same table.
    let weighted = [(3, 4, 2), (0, 2, 1), (3, 1, 1)];
    let table = MaglevTable::from_permutations(7, &weighted).unwrap();
    assert_eq!(table.entries().collect::<Vec<_>>(), [1, 0, 1, 0, 2, 2, 0]);
    assert_eq!(table.entry_counts(), [3, 2, 2]);

    // Weights 5 : 1 : 1: quotas 5, 1, 1. Turns B0 at 1/10 3/10 5/10 7/10
    // 9/10, B1 and B2 at 1/2 (ties to the earlier position): B0 B0 B0 B1 B2
    // B0 B0. B0 takes 3, 0, 4; B1 finds 0 taken and takes 2; B2 finds 3 and
    // 4 taken and takes 5; B0 takes 1, then finds 5 and 2 taken and takes 6.
    let heavy = [(3, 4, 5), (0, 2, 1), (3, 1, 1)];
    let table = MaglevTable::from_permutations(7, &heavy).unwrap();
    assert_eq!(table.entries().collect::<Vec<_>>(), [0, 0, 1, 0, 0, 2, 0]);
}

/// Values from an independent Python implementation of the same
/// definition (`hash.rs`): a change of the hash would reshuffle every
/// deployed table, so it must be deliberate.
#[test]
fn hash_golden_values() {
    let cases: [(&[u8], u64, u64); 5] = [
        (b"", 0xeb40_8519_2826_d089, 0x1570_5aad_a988_0433),
        (b"a", 0x79f1_c321_216a_39e8, 0x1b94_e3a3_6f13_5d16),
        (b"\0", 0x7bfd_a0cc_4316_39d7, 0x893d_a941_9b4a_2a41),
        (b"backend-0", 0x4572_0f9d_8812_c830, 0xc5f8_f3d4_c0ca_3bc1),
        (
            &[10, 0, 0, 1, 0, 80],
            0x8cc6_b976_6330_f4fe,
            0xd76f_0c46_946d_b110,
        ),
    ];
    for (bytes, h1, h2) in cases {
        assert_eq!(hash64(SEED_OFFSET, bytes), h1, "h1 of {bytes:?}");
        assert_eq!(hash64(SEED_SKIP, bytes), h2, "h2 of {bytes:?}");
    }
    let twenty: Vec<u8> = (0..20).collect();
    assert_eq!(hash64(SEED_OFFSET, &twenty), 0x27b8_8276_3568_6f49);
    assert_eq!(hash64(SEED_SKIP, &twenty), 0x6661_a9fc_862c_1c1a);
}

#[test]
fn backend_key_is_address_then_port_in_network_order() {
    let key = backend_key(SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 80));
    assert_eq!(key, [10, 0, 0, 1, 0, 80]);
    let key = backend_key(SocketAddrV4::new(Ipv4Addr::new(192, 168, 7, 9), 0x1f90));
    assert_eq!(key, [192, 168, 7, 9, 0x1f, 0x90]);
}
