//! Golden layout: sizes, alignments and field offsets of every shared
//! struct, and the bytes of an encoded table (encode and decode).

use std::mem::{align_of, offset_of, size_of};

use patronus_shm::control::{ControlBlock, WorkerSlot};
use patronus_shm::counters::CounterFileHeader;
use patronus_shm::layout::{GenerationHeader, TableDirEntry};
use patronus_shm::{
    AlignedBuf, InterfaceEntry, Log2Histogram, NeighborEntry, RouteEntry, RouteKind, TableBuilder,
    TableHeader, TableView,
};

#[test]
fn table_header_layout() {
    assert_eq!(
        (size_of::<TableHeader>(), align_of::<TableHeader>()),
        (64, 8)
    );
    assert_eq!(offset_of!(TableHeader, magic), 0);
    assert_eq!(offset_of!(TableHeader, abi_version), 8);
    assert_eq!(offset_of!(TableHeader, kind), 12);
    assert_eq!(offset_of!(TableHeader, generation), 16);
    assert_eq!(offset_of!(TableHeader, len), 24);
    assert_eq!(offset_of!(TableHeader, count), 32);
    assert_eq!(offset_of!(TableHeader, entry_size), 40);
    assert_eq!(offset_of!(TableHeader, checksum), 48);
}

#[test]
fn generation_header_layout() {
    assert_eq!(size_of::<TableDirEntry>(), 24);
    assert_eq!(offset_of!(TableDirEntry, offset), 8);
    assert_eq!(offset_of!(TableDirEntry, len), 16);
    assert_eq!(
        (
            size_of::<GenerationHeader>(),
            align_of::<GenerationHeader>()
        ),
        (256, 8)
    );
    assert_eq!(offset_of!(GenerationHeader, table_count), 12);
    assert_eq!(offset_of!(GenerationHeader, generation), 16);
    assert_eq!(offset_of!(GenerationHeader, file_len), 24);
    assert_eq!(offset_of!(GenerationHeader, tables), 32);
}

#[test]
fn entry_layouts() {
    assert_eq!(
        (size_of::<RouteEntry>(), align_of::<RouteEntry>()),
        (112, 4)
    );
    assert_eq!(offset_of!(RouteEntry, prefix), 0);
    assert_eq!(offset_of!(RouteEntry, prefix_len), 4);
    assert_eq!(offset_of!(RouteEntry, kind), 5);
    assert_eq!(offset_of!(RouteEntry, nexthop_count), 6);
    assert_eq!(offset_of!(RouteEntry, metric), 8);
    assert_eq!(offset_of!(RouteEntry, nexthops), 16);
    assert_eq!(offset_of!(RouteEntry, iface), 80);

    assert_eq!(
        (size_of::<InterfaceEntry>(), align_of::<InterfaceEntry>()),
        (48, 4)
    );
    assert_eq!(offset_of!(InterfaceEntry, port_name), 0);
    assert_eq!(offset_of!(InterfaceEntry, addr), 32);
    assert_eq!(offset_of!(InterfaceEntry, vlan), 36);
    assert_eq!(offset_of!(InterfaceEntry, mtu), 38);
    assert_eq!(offset_of!(InterfaceEntry, prefix_len), 40);

    assert_eq!(
        (size_of::<NeighborEntry>(), align_of::<NeighborEntry>()),
        (48, 4)
    );
    assert_eq!(offset_of!(NeighborEntry, addr), 0);
    assert_eq!(offset_of!(NeighborEntry, vlan), 4);
    assert_eq!(offset_of!(NeighborEntry, flags), 6);
    assert_eq!(offset_of!(NeighborEntry, mac), 8);
    assert_eq!(offset_of!(NeighborEntry, port_name), 16);
}

#[test]
fn shared_block_layouts() {
    assert_eq!(
        (size_of::<WorkerSlot>(), align_of::<WorkerSlot>()),
        (64, 64)
    );
    assert_eq!(offset_of!(WorkerSlot, acked_generation), 8);
    assert_eq!(offset_of!(WorkerSlot, heartbeat_ms), 16);
    assert_eq!(size_of::<ControlBlock>(), 128 + 64 * 64);
    assert_eq!(offset_of!(ControlBlock, current_generation), 16);
    assert_eq!(offset_of!(ControlBlock, publisher_pid), 24);
    assert_eq!(offset_of!(ControlBlock, publisher_heartbeat_ms), 32);
    assert_eq!(offset_of!(ControlBlock, engine_pid), 40);
    assert_eq!(offset_of!(ControlBlock, workers), 128);
    assert_eq!(size_of::<CounterFileHeader>(), 128);
    assert_eq!(offset_of!(CounterFileHeader, epoch), 24);
    assert_eq!(
        (size_of::<Log2Histogram>(), align_of::<Log2Histogram>()),
        (576, 64)
    );
    assert_eq!(offset_of!(Log2Histogram, count), 512);
}

/// Reference FNV-1a over little-endian 64-bit words, written independently
/// of the crate's implementation (this machine is little-endian).
fn reference_checksum(header_and_payload: &[u8]) -> u64 {
    let mut bytes = header_and_payload.to_vec();
    bytes[48..56].fill(0);
    bytes
        .chunks(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .fold(0xcbf2_9ce4_8422_2325u64, |h, w| {
            (h ^ w).wrapping_mul(0x100_0000_01b3)
        })
}

#[test]
fn route_table_golden_bytes() {
    let mut r = RouteEntry::new(0x0a01_0200, 24, RouteKind::Via);
    r.metric = 7;
    assert!(r.push_nexthop(0xc0a8_0001, 3));
    let mut b = TableBuilder::<RouteEntry>::with_max(4);
    b.push(r).unwrap();
    let bytes = b.encode(42);

    let mut expected = Vec::new();
    expected.extend_from_slice(b"PTRNSTBL");
    expected.extend_from_slice(&2u32.to_le_bytes()); // abi
    expected.extend_from_slice(&1u32.to_le_bytes()); // kind = route
    expected.extend_from_slice(&42u64.to_le_bytes()); // generation
    expected.extend_from_slice(&112u64.to_le_bytes()); // len
    expected.extend_from_slice(&1u64.to_le_bytes()); // count
    expected.extend_from_slice(&112u32.to_le_bytes()); // entry size
    expected.extend_from_slice(&0u32.to_le_bytes());
    expected.extend_from_slice(&0u64.to_le_bytes()); // checksum, filled below
    expected.extend_from_slice(&0u64.to_le_bytes());
    // entry
    expected.extend_from_slice(&0x0a01_0200u32.to_le_bytes());
    expected.extend_from_slice(&[24, 2]);
    expected.extend_from_slice(&1u16.to_le_bytes());
    expected.extend_from_slice(&7u32.to_le_bytes());
    expected.extend_from_slice(&0u32.to_le_bytes());
    expected.extend_from_slice(&0xc0a8_0001u32.to_le_bytes());
    expected.extend_from_slice(&[0; 60]);
    expected.extend_from_slice(&3u16.to_le_bytes());
    for _ in 1..16 {
        expected.extend_from_slice(&0xffffu16.to_le_bytes());
    }
    let sum = reference_checksum(&expected);
    expected[48..56].copy_from_slice(&sum.to_le_bytes());
    assert_eq!(bytes, expected);

    let buf = AlignedBuf::copy_from(&expected);
    let view = TableView::<RouteEntry>::parse(buf.as_bytes()).unwrap();
    assert_eq!(view.generation(), 42);
    assert_eq!(view.entries(), &[r]);
    assert_eq!(
        view.entries()[0].nexthops().collect::<Vec<_>>(),
        vec![(0xc0a8_0001, 3)]
    );
}
