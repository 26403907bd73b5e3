//! Tables and generation files: round trips for every kind, every parse
//! error, refusal of oversized tables, and random input never panicking.

mod common;

use common::{interface, neighbor, routes, sample_generation};
use patronus_shm::layout::{TableEntry, TableKind};
use patronus_shm::{
    AlignedBuf, GenerationBuilder, GenerationView, InterfaceEntry, NeighborEntry, RouteEntry,
    RouteKind, ShmError, TableBuilder, TableView,
};
use proptest::prelude::*;

fn round_trip<T: TableEntry + std::fmt::Debug + PartialEq>(entries: &[T]) {
    let mut b = TableBuilder::<T>::new();
    b.extend_from_slice(entries).unwrap();
    let buf = AlignedBuf::copy_from(&b.encode(9));
    let view = TableView::<T>::parse(buf.as_bytes()).unwrap();
    assert_eq!(view.entries(), entries);
    assert_eq!(view.generation(), 9);
    assert_eq!(view.header().count, entries.len() as u64);
}

#[test]
fn round_trip_every_kind() {
    round_trip(&routes(100));
    round_trip::<RouteEntry>(&[]);
    round_trip(&[
        interface("lan0", 0x0a01_0001, 24, 0),
        interface("wan0", 0x0a02_0001, 30, 4094),
    ]);
    round_trip(&[neighbor("lan0", 0x0a01_0002, [2, 1, 2, 3, 4, 5])]);
}

#[test]
fn round_trip_generation() {
    let buf = AlignedBuf::copy_from(&sample_generation(10).encode(5));
    let g = GenerationView::parse(buf.as_bytes()).unwrap();
    assert_eq!(g.generation(), 5);
    assert_eq!(g.routes(), routes(10).as_slice());
    assert_eq!(g.interfaces().len(), 2);
    assert_eq!(g.neighbors()[0].mac, [2, 0, 0, 0, 0, 1]);
    assert_eq!(g.table::<RouteEntry>().unwrap().generation(), 5);
}

#[test]
fn generation_without_a_table_has_none() {
    let mut r = TableBuilder::<RouteEntry>::new();
    r.extend_from_slice(&routes(3)).unwrap();
    let mut gb = GenerationBuilder::new();
    gb.add(r).unwrap();
    let buf = AlignedBuf::copy_from(&gb.encode(1));
    let g = GenerationView::parse(buf.as_bytes()).unwrap();
    assert!(g.table::<NeighborEntry>().is_none());
    assert!(g.neighbors().is_empty());
    assert_eq!(g.routes().len(), 3);
}

#[test]
fn duplicate_table_refused() {
    let mut gb = GenerationBuilder::new();
    gb.add(TableBuilder::<RouteEntry>::new()).unwrap();
    let err = gb.add(TableBuilder::<RouteEntry>::new()).unwrap_err();
    assert!(
        matches!(
            err,
            ShmError::DuplicateTable {
                kind: TableKind::Route
            }
        ),
        "{err}"
    );
}

fn encoded_routes(n: u32) -> AlignedBuf {
    let mut b = TableBuilder::<RouteEntry>::new();
    b.extend_from_slice(&routes(n)).unwrap();
    AlignedBuf::copy_from(&b.encode(3))
}

fn parse_routes(buf: &AlignedBuf) -> Result<usize, ShmError> {
    TableView::<RouteEntry>::parse(buf.as_bytes()).map(|v| v.len())
}

#[test]
fn bad_magic() {
    let mut buf = encoded_routes(2);
    buf.as_bytes_mut()[0] = b'X';
    assert!(matches!(parse_routes(&buf), Err(ShmError::BadMagic { .. })));
}

#[test]
fn wrong_abi_version() {
    let mut buf = encoded_routes(2);
    buf.as_bytes_mut()[8..12].copy_from_slice(&1u32.to_ne_bytes());
    assert!(matches!(
        parse_routes(&buf),
        Err(ShmError::AbiVersion {
            found: 1,
            expected: 2,
            ..
        })
    ));
}

#[test]
fn wrong_kind() {
    let buf = encoded_routes(2);
    let err = TableView::<InterfaceEntry>::parse(buf.as_bytes()).unwrap_err();
    assert!(
        matches!(
            err,
            ShmError::WrongKind {
                found: 1,
                expected: TableKind::Interface
            }
        ),
        "{err}"
    );
}

#[test]
fn wrong_entry_size() {
    let mut buf = encoded_routes(2);
    buf.as_bytes_mut()[40..44].copy_from_slice(&120u32.to_ne_bytes());
    assert!(matches!(
        parse_routes(&buf),
        Err(ShmError::EntrySize {
            found: 120,
            expected: 112,
            ..
        })
    ));
}

#[test]
fn truncated_everywhere() {
    let buf = encoded_routes(3);
    let full = buf.as_bytes();
    for cut in 0..full.len() {
        let short = AlignedBuf::copy_from(&full[..cut]);
        let err = parse_routes(&short).unwrap_err();
        assert!(
            matches!(err, ShmError::Truncated { .. }),
            "cut at {cut}: {err}"
        );
    }
    // Trailing bytes are refused too.
    let mut long = full.to_vec();
    long.extend_from_slice(&[0; 8]);
    let err = parse_routes(&AlignedBuf::copy_from(&long)).unwrap_err();
    assert!(matches!(err, ShmError::Truncated { .. }), "{err}");
}

#[test]
fn count_len_mismatch() {
    let mut buf = encoded_routes(3);
    buf.as_bytes_mut()[32..40].copy_from_slice(&2u64.to_ne_bytes());
    assert!(matches!(
        parse_routes(&buf),
        Err(ShmError::CountMismatch {
            count: 2,
            len: 336,
            ..
        })
    ));
    // A count so large that count * size overflows.
    buf.as_bytes_mut()[32..40].copy_from_slice(&u64::MAX.to_ne_bytes());
    assert!(matches!(
        parse_routes(&buf),
        Err(ShmError::CountMismatch { .. })
    ));
}

#[test]
fn checksum_mismatch() {
    let mut buf = encoded_routes(3);
    let last = buf.as_bytes().len() - 1;
    buf.as_bytes_mut()[last] ^= 1;
    assert!(matches!(
        parse_routes(&buf),
        Err(ShmError::Checksum {
            kind: TableKind::Route,
            ..
        })
    ));
    // The generation number is covered too.
    let mut buf = encoded_routes(3);
    buf.as_bytes_mut()[16] ^= 1;
    assert!(matches!(parse_routes(&buf), Err(ShmError::Checksum { .. })));
}

#[test]
fn misaligned_buffer() {
    let buf = encoded_routes(1);
    let mut shifted = vec![0u8; buf.as_bytes().len() + 8];
    let start = (0..8)
        .find(|i| !(shifted.as_ptr() as usize + i).is_multiple_of(8))
        .unwrap();
    shifted[start..start + buf.as_bytes().len()].copy_from_slice(buf.as_bytes());
    let err =
        TableView::<RouteEntry>::parse(&shifted[start..start + buf.as_bytes().len()]).unwrap_err();
    assert!(
        matches!(err, ShmError::Misaligned { align: 8, .. }),
        "{err}"
    );
}

#[test]
fn bad_entries_refused_on_parse_and_build() {
    let mut bad = RouteEntry::new(0x0a01_0201, 24, RouteKind::Connected); // host bits
    let err = TableBuilder::<RouteEntry>::new().push(bad).unwrap_err();
    assert!(
        matches!(
            err,
            ShmError::BadEntry {
                reason: "host bits set in prefix",
                ..
            }
        ),
        "{err}"
    );
    bad.prefix = 0x0a01_0200;
    bad.kind = 99;
    assert!(matches!(
        TableBuilder::<RouteEntry>::new().push(bad),
        Err(ShmError::BadEntry {
            reason: "unknown route kind",
            ..
        })
    ));
    let via = RouteEntry::new(0, 0, RouteKind::Via);
    assert!(matches!(
        TableBuilder::<RouteEntry>::new().push(via),
        Err(ShmError::BadEntry {
            reason: "via route without next hop",
            ..
        })
    ));
    // A bad entry written by hand (kind byte at payload offset 5 of entry 1)
    // with a fixed-up checksum is still refused by parse.
    let mut b = TableBuilder::<RouteEntry>::new();
    b.extend_from_slice(&routes(2)).unwrap();
    let mut bytes = b.encode(1);
    bytes[64 + 112 + 5] = 77;
    // Recompute the checksum with the crate's function over the new bytes.
    let header: patronus_shm::TableHeader =
        patronus_shm::pod::read_prefix(&bytes, "header").unwrap();
    let sum = patronus_shm::checksum(&header, &bytes[64..]);
    bytes[48..56].copy_from_slice(&sum.to_ne_bytes());
    let err = parse_routes(&AlignedBuf::copy_from(&bytes)).unwrap_err();
    assert!(
        matches!(
            err,
            ShmError::BadEntry {
                index: 1,
                reason: "unknown route kind",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn too_large_refused_not_truncated() {
    let mut b = TableBuilder::<RouteEntry>::with_max(2);
    b.extend_from_slice(&routes(2)).unwrap();
    let err = b.push(routes(3)[2]).unwrap_err();
    assert!(
        matches!(
            err,
            ShmError::TooLarge {
                kind: TableKind::Route,
                entries: 3,
                max: 2
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("refused"), "{err}");
    let mut b = TableBuilder::<NeighborEntry>::with_max(1);
    let n = neighbor("lan0", 1, [0; 6]);
    let err = b.extend_from_slice(&[n, n]).unwrap_err();
    assert!(matches!(
        err,
        ShmError::TooLarge {
            kind: TableKind::Neighbor,
            entries: 2,
            max: 1
        }
    ));
    assert!(b.is_empty(), "nothing of a refused batch is kept");
}

#[test]
fn generation_errors() {
    let good = sample_generation(4).encode(8);
    let parse = |b: &[u8]| {
        GenerationView::parse(AlignedBuf::copy_from(b).as_bytes()).map(|g| g.generation())
    };
    assert_eq!(parse(&good).unwrap(), 8);

    let mut b = good.clone();
    b[0] ^= 1;
    assert!(matches!(parse(&b), Err(ShmError::BadMagic { .. })));
    let mut b = good.clone();
    b[8..12].copy_from_slice(&7u32.to_ne_bytes());
    assert!(matches!(
        parse(&b),
        Err(ShmError::AbiVersion { found: 7, .. })
    ));
    for cut in [0, 10, 255, 256, good.len() - 1] {
        assert!(
            matches!(parse(&good[..cut]), Err(ShmError::Truncated { .. })),
            "cut {cut}"
        );
    }
    let mut b = good.clone();
    b[12..16].copy_from_slice(&9u32.to_ne_bytes());
    assert!(matches!(parse(&b), Err(ShmError::BadDirectory { .. })));
    // Directory slot 0's offset pointing past the end.
    let mut b = good.clone();
    b[40..48].copy_from_slice(&(1u64 << 40).to_ne_bytes());
    assert!(matches!(parse(&b), Err(ShmError::BadDirectory { .. })));
    // Unknown table kind in the directory.
    let mut b = good.clone();
    b[32..36].copy_from_slice(&77u32.to_ne_bytes());
    assert!(matches!(parse(&b), Err(ShmError::UnknownKind(77))));
    // Corruption inside a table is caught by its checksum.
    let mut b = good.clone();
    let last_route_byte = 256 + 64 + 4 * 112 - 1;
    b[last_route_byte] ^= 0x80;
    assert!(matches!(
        parse(&b),
        Err(ShmError::Checksum {
            kind: TableKind::Route,
            ..
        })
    ));
    // A table whose generation differs from the file's.
    let mut b = good.clone();
    b[16..24].copy_from_slice(&9u64.to_ne_bytes());
    b[24..32].copy_from_slice(&(good.len() as u64).to_ne_bytes());
    assert!(matches!(parse(&b), Err(ShmError::BadDirectory { .. })));
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let buf = AlignedBuf::copy_from(&bytes);
        let _ = TableView::<RouteEntry>::parse(buf.as_bytes());
        let _ = TableView::<InterfaceEntry>::parse(buf.as_bytes());
        let _ = TableView::<NeighborEntry>::parse(buf.as_bytes());
        let _ = GenerationView::parse(buf.as_bytes());
        let _ = TableView::<RouteEntry>::parse(&bytes);
    }

    #[test]
    fn random_header_with_valid_magic_never_panics(
        fields in proptest::collection::vec(any::<u64>(), 8),
        payload in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let mut bytes = b"PTRNSTBL".to_vec();
        bytes.extend_from_slice(&1u32.to_ne_bytes());
        bytes.extend_from_slice(&1u32.to_ne_bytes());
        for f in &fields[2..] {
            bytes.extend_from_slice(&f.to_ne_bytes());
        }
        bytes.extend_from_slice(&payload);
        let buf = AlignedBuf::copy_from(&bytes);
        let _ = TableView::<RouteEntry>::parse(buf.as_bytes());
    }

    /// Any single corrupted payload byte is detected by the checksum.
    #[test]
    fn any_payload_corruption_detected(n in 1u32..20, pos in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let mut buf = encoded_routes(n);
        let len = buf.as_bytes().len();
        let at = 64 + pos.index(len - 64);
        buf.as_bytes_mut()[at] ^= flip;
        let is_checksum_error = matches!(parse_routes(&buf), Err(ShmError::Checksum { .. }));
        prop_assert!(is_checksum_error);
    }

    /// Any corrupted byte anywhere in a generation file is refused (or, in
    /// reserved fields, harmless), never a panic.
    #[test]
    fn generation_corruption_never_panics(pos in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let mut good = sample_generation(5).encode(2);
        let at = pos.index(good.len());
        good[at] ^= flip;
        let buf = AlignedBuf::copy_from(&good);
        if let Ok(g) = GenerationView::parse(buf.as_bytes()) {
            let _ = (g.routes().len(), g.interfaces().len(), g.neighbors().len());
        }
    }
}
