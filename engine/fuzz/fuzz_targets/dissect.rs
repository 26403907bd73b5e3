//! Fuzzes the classifier's dissectors (patronus-classify): arbitrary bytes
//! cut into up to 24 packets of one flow (the first byte picks TCP or UDP,
//! the ports and the directions) go through `Dpi::inspect` as the engine
//! would call it, and the same bytes through the capture-side IP parser;
//! nothing may panic, and a verdict once given never changes.
#![no_main]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use libfuzzer_sys::fuzz_target;
use patronus_classify::flows::parse_ip;
use patronus_classify::{Dir, Dpi, FlowDpi, PacketView, L4};

/// Ports worth steering to: each dissector's own and some others.
const PORTS: [u16; 16] = [
    80, 443, 22, 21, 53, 25, 3478, 6881, 5353, 8080, 993, 137, 19302, 1935, 40000, 0,
];

fuzz_target!(|data: &[u8]| {
    black_box(parse_ip(data));
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    let l4 = if head & 1 == 0 { L4::Tcp } else { L4::Udp };
    let port = PORTS[usize::from(head >> 1) & 15];
    let (client, server) = (
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
    );
    let mut dpi = Dpi::new();
    let mut flow = FlowDpi::default();
    let mut seq = [1000u32, 5000u32];
    let mut first = None;
    // Packets are separated by 0xff 0xfe; the byte after a separator picks
    // the direction.
    for (i, chunk) in rest.split(|&b| b == 0xfe).take(24).enumerate() {
        let (dir, payload) = match chunk.split_first() {
            Some((&d, p)) if d & 1 == 1 => (Dir::Reply, p),
            Some((_, p)) => (Dir::Orig, p),
            None => (Dir::Orig, chunk),
        };
        let d = usize::from(dir == Dir::Reply);
        let (src, dst, sport, dport) = match dir {
            Dir::Orig => (client, server, 40000, port),
            Dir::Reply => (server, client, port, 40000),
        };
        let p = PacketView {
            l4,
            dir,
            src,
            dst,
            sport,
            dport,
            payload,
            tcp_seq: if l4 == L4::Tcp { seq[d] } else { 0 },
            tcp_flags: if l4 == L4::Tcp { 0x18 } else { 0 },
        };
        seq[d] = seq[d].wrapping_add(payload.len() as u32);
        let v = dpi.inspect(&mut flow, &p, i as u64 * 1_000_000);
        if let Some(f) = first {
            assert_eq!(v, Some(f), "a verdict changed");
        }
        if v.is_some() {
            first = v;
        }
    }
});
