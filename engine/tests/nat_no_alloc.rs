//! The NAT per-packet path and expiry allocate nothing after `Nat::new`:
//! a counting global allocator watches sessions being created, translated
//! both ways, refused (pool exhausted), hairpinned, ICMP errors, fragments
//! and expiry.

use std::net::Ipv4Addr;

use patronus_engine::nat::{Nat, NatConfig, PortForward, Proto, Verdict};
use patronus_engine::wire::checksum::{checksum, combine, fold, pseudo_header_v4, sum};

mod common;

#[global_allocator]
static GLOBAL: common::Counting = common::Counting;

const SEC: u64 = 1_000_000_000;

/// UDP datagram into a fixed buffer; returns its length.
fn udp(buf: &mut [u8; 64], src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16)) -> usize {
    buf.fill(0);
    buf[0] = 0x45;
    buf[2..4].copy_from_slice(&36u16.to_be_bytes());
    buf[8] = 64;
    buf[9] = 17;
    buf[12..16].copy_from_slice(&src.0.octets());
    buf[16..20].copy_from_slice(&dst.0.octets());
    let c = checksum(&buf[..20]);
    buf[10..12].copy_from_slice(&c.to_be_bytes());
    buf[20..22].copy_from_slice(&src.1.to_be_bytes());
    buf[22..24].copy_from_slice(&dst.1.to_be_bytes());
    buf[24..26].copy_from_slice(&16u16.to_be_bytes());
    buf[28..36].copy_from_slice(b"payload!");
    let s = combine(pseudo_header_v4(src.0, dst.0, 17, 16), sum(&buf[20..36]));
    buf[26..28].copy_from_slice(&(!fold(s)).to_be_bytes());
    36
}

#[test]
fn nat_packet_path_does_not_allocate() {
    let pool = Ipv4Addr::new(203, 0, 113, 1);
    let srv = Ipv4Addr::new(10, 0, 0, 10);
    let remote = Ipv4Addr::new(198, 51, 100, 7);
    let cfg = NatConfig {
        pool: vec![pool],
        max_sessions: 4096,
        workers: 64,
        forwards: vec![PortForward {
            proto: Proto::Udp,
            outside_addr: pool,
            outside_port: 5353,
            inside_addr: srv,
            inside_port: 53,
        }],
        ..NatConfig::default()
    };
    let mut nat = Nat::new(cfg).unwrap();
    let mut buf = [0u8; 64];
    let mut err = [0u8; 128];
    common::self_check();
    common::start();
    let mut translated = 0u64;
    for round in 0..5u64 {
        let now = round * 400 * SEC;
        for i in 0..2000u32 {
            let host = Ipv4Addr::from(0x0a00_0000 + i);
            let n = udp(&mut buf, (host, 40000), (remote, 53));
            if nat.outbound(&mut buf[..n], now) == Verdict::Translated {
                translated += 1;
                let out = (
                    Ipv4Addr::new(buf[12], buf[13], buf[14], buf[15]),
                    u16::from_be_bytes([buf[20], buf[21]]),
                );
                // ICMP port unreachable about it, from the remote.
                err.fill(0);
                err[0] = 0x45;
                err[2..4].copy_from_slice(&((28 + n) as u16).to_be_bytes());
                err[8] = 64;
                err[9] = 1;
                err[12..16].copy_from_slice(&remote.octets());
                err[16..20].copy_from_slice(&pool.octets());
                let c = checksum(&err[..20]);
                err[10..12].copy_from_slice(&c.to_be_bytes());
                err[20] = 3;
                err[21] = 3;
                err[28..28 + n].copy_from_slice(&buf[..n]);
                let c = checksum(&err[20..28 + n]);
                err[22..24].copy_from_slice(&c.to_be_bytes());
                assert_eq!(nat.inbound(&mut err[..28 + n], now), Verdict::Translated);
                let m = udp(&mut buf, (remote, 53), out);
                assert_eq!(nat.inbound(&mut buf[..m], now), Verdict::Translated);
            }
            // Hairpin to the forward.
            let n = udp(&mut buf, (host, 40001), (pool, 5353));
            nat.outbound(&mut buf[..n], now);
        }
        while nat.expire(now + 399 * SEC, 64) > 0 {}
    }
    let allocs = common::stop();
    assert!(translated > 1000);
    assert!(
        nat.counters().refused_pool_exhausted > 0,
        "exhaustion exercised"
    );
    assert!(nat.counters().sessions_expired > 0);
    assert_eq!(allocs, 0, "allocations on the NAT packet path");
}
