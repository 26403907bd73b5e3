//! Every way a build can be refused, and the limits that are accepted.

use super::super::maglev::{
    is_prime, smallest_size, MaglevBackend, MaglevError, MaglevTable, DEFAULT_TABLE_SIZE,
    MAX_TABLE_SIZE,
};
use super::pool;

#[test]
fn size_must_be_prime() {
    let backends = pool(1, &[1, 1]);
    assert_eq!(
        MaglevTable::build(&backends, 65_536),
        Err(MaglevError::SizeNotPrime { size: 65_536 })
    );
    assert_eq!(
        MaglevTable::build(&backends, 1001),
        Err(MaglevError::SizeNotPrime { size: 1001 })
    );
    assert_eq!(
        MaglevTable::from_permutations(9, &[(0, 1, 1)]),
        Err(MaglevError::SizeNotPrime { size: 9 })
    );
}

#[test]
fn size_must_exceed_100_per_backend() {
    let three = pool(1, &[1, 1, 1]);
    // 293 is prime but not above 300; 307 is the smallest prime that is.
    assert_eq!(
        MaglevTable::build(&three, 293),
        Err(MaglevError::SizeTooSmall {
            size: 293,
            backends: 3,
            smallest: 307
        })
    );
    assert!(MaglevTable::build(&three, 307).is_ok());
    // Drained backends count: draining must never make a size invalid.
    let drained = pool(1, &[1, 1, 0]);
    assert!(matches!(
        MaglevTable::build(&drained, 293),
        Err(MaglevError::SizeTooSmall { .. })
    ));
    // The default size fits 655 backends and no more.
    assert!(MaglevTable::with_default_size(&pool(1, &[1; 655])).is_ok());
    assert_eq!(
        MaglevTable::with_default_size(&pool(1, &[1; 656])),
        Err(MaglevError::SizeTooSmall {
            size: DEFAULT_TABLE_SIZE,
            backends: 656,
            smallest: smallest_size(656)
        })
    );
    let message = MaglevError::SizeTooSmall {
        size: 293,
        backends: 3,
        smallest: 307,
    }
    .to_string();
    assert!(
        message.contains("293") && message.contains("307"),
        "{message}"
    );
}

#[test]
fn size_has_an_upper_limit() {
    // 16 777 259 is the smallest prime above 2^24.
    assert!(is_prime(16_777_259));
    assert_eq!(
        MaglevTable::build(&pool(1, &[1]), 16_777_259),
        Err(MaglevError::SizeTooLarge {
            size: 16_777_259,
            max: MAX_TABLE_SIZE
        })
    );
}

#[test]
fn needs_backends_with_weight() {
    let none: [MaglevBackend<[u8; 6]>; 0] = [];
    assert_eq!(
        MaglevTable::build(&none, DEFAULT_TABLE_SIZE),
        Err(MaglevError::NoBackends)
    );
    assert_eq!(
        MaglevTable::build(&pool(1, &[0, 0, 0]), DEFAULT_TABLE_SIZE),
        Err(MaglevError::AllWeightsZero)
    );
    assert_eq!(
        MaglevTable::from_permutations(7, &[(0, 1, 0)]),
        Err(MaglevError::AllWeightsZero)
    );
}

#[test]
fn keys_must_be_distinct() {
    let mut backends = pool(1, &[1, 2, 3, 4]);
    backends[3].key = backends[1].key;
    assert_eq!(
        MaglevTable::build(&backends, DEFAULT_TABLE_SIZE),
        Err(MaglevError::DuplicateKey {
            first: 1,
            second: 3
        })
    );
}

#[test]
fn test_constructor_checks_permutations() {
    for bad in [(7, 1), (0, 0), (0, 7)] {
        assert!(matches!(
            MaglevTable::from_permutations(7, &[(bad.0, bad.1, 1)]),
            Err(MaglevError::BadPermutation { index: 0, .. })
        ));
    }
}

#[test]
fn primes() {
    let small: Vec<usize> = (0..50).filter(|&n| is_prime(n)).collect();
    assert_eq!(
        small,
        [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47]
    );
    assert!(is_prime(65_537));
    assert!(!is_prime(65_535));
    assert!(!is_prime(65_539 * 3));
    assert_eq!(smallest_size(1), 101);
    assert_eq!(smallest_size(3), 307);
    assert_eq!(smallest_size(655), 65_519);
}

#[test]
fn one_backend_owns_everything() {
    let table = MaglevTable::build(&pool(7, &[3]), 101).unwrap();
    assert_eq!(table.entry_counts(), [101]);
    assert_eq!(table.get(u64::MAX), 0);
}
