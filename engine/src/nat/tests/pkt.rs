//! Test packets built field by field with full checksums, and checks that
//! recompute every checksum from scratch.

use std::net::Ipv4Addr;

use crate::nat::{NatConfig, Verdict};
use crate::wire::checksum::{checksum, combine, fold, pseudo_header_v4, sum};

pub const SEC: u64 = 1_000_000_000;
pub const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
pub const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 3);
pub const SRV: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 10);
pub const POOL1: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
pub const POOL2: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 2);
pub const R1: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
pub const R2: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 8);

pub const TCP: u8 = 6;
pub const UDP: u8 = 17;
pub const ICMP: u8 = 1;

/// One pool address, one worker, small tables.
pub fn cfg() -> NatConfig {
    NatConfig {
        pool: vec![POOL1],
        max_sessions: 1024,
        max_sessions_per_host: 512,
        ..NatConfig::default()
    }
}

fn ip_header(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, payload: usize, ident: u16) -> Vec<u8> {
    let mut p = vec![0u8; 20];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&((20 + payload) as u16).to_be_bytes());
    p[4..6].copy_from_slice(&ident.to_be_bytes());
    p[8] = 64;
    p[9] = proto;
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    let c = checksum(&p);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p
}

fn l4_fill(p: &mut [u8], proto: u8, csum_at: usize) {
    let src = Ipv4Addr::new(p[12], p[13], p[14], p[15]);
    let dst = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
    let l4 = &mut p[20..];
    l4[csum_at..csum_at + 2].copy_from_slice(&[0, 0]);
    let s = combine(pseudo_header_v4(src, dst, proto, l4.len() as u16), sum(l4));
    let mut c = !fold(s);
    if proto == UDP && c == 0 {
        c = 0xffff;
    }
    l4[csum_at..csum_at + 2].copy_from_slice(&c.to_be_bytes());
}

/// A TCP segment with `flags` and a 4-byte payload.
pub fn tcp(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), flags: u8) -> Vec<u8> {
    let mut seg = vec![0u8; 24];
    seg[0..2].copy_from_slice(&src.1.to_be_bytes());
    seg[2..4].copy_from_slice(&dst.1.to_be_bytes());
    seg[4..8].copy_from_slice(&0x0102_0304u32.to_be_bytes());
    seg[12] = 5 << 4;
    seg[13] = flags;
    seg[14..16].copy_from_slice(&64240u16.to_be_bytes());
    seg[20..24].copy_from_slice(b"data");
    let mut p = ip_header(src.0, dst.0, TCP, seg.len(), 0x1234);
    p.extend_from_slice(&seg);
    l4_fill(&mut p, TCP, 16);
    p
}

/// A UDP datagram carrying `payload`, with a checksum.
pub fn udp(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), payload: &[u8]) -> Vec<u8> {
    let mut p = udp_nocsum(src, dst, payload);
    l4_fill(&mut p, UDP, 6);
    p
}

/// A UDP datagram without checksum (0).
pub fn udp_nocsum(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), payload: &[u8]) -> Vec<u8> {
    let len = 8 + payload.len();
    let mut p = ip_header(src.0, dst.0, UDP, len, 0x1234);
    p.extend_from_slice(&src.1.to_be_bytes());
    p.extend_from_slice(&dst.1.to_be_bytes());
    p.extend_from_slice(&(len as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    p
}

/// An ICMP echo request (8) or reply (0).
pub fn echo(src: Ipv4Addr, dst: Ipv4Addr, ty: u8, id: u16, seq: u16) -> Vec<u8> {
    let mut m = vec![ty, 0, 0, 0];
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(b"pingpong");
    let c = checksum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    let mut p = ip_header(src, dst, ICMP, m.len(), 0x4321);
    p.extend_from_slice(&m);
    p
}

/// An ICMP error of type/code from `src` to `dst` quoting `quoted`.
pub fn icmp_error(src: Ipv4Addr, dst: Ipv4Addr, ty: u8, code: u8, quoted: &[u8]) -> Vec<u8> {
    let mut m = vec![ty, code, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(quoted);
    let c = checksum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    let mut p = ip_header(src, dst, ICMP, m.len(), 0x7777);
    p.extend_from_slice(&m);
    p
}

/// Any protocol with an opaque payload (e.g. GRE = 47).
pub fn raw(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = ip_header(src, dst, proto, payload.len(), 0x1111);
    p.extend_from_slice(payload);
    p
}

/// Splits `p` into a first fragment with `first_len` payload bytes (a
/// multiple of 8) and one later fragment with the rest.
pub fn fragment(p: &[u8], first_len: usize) -> (Vec<u8>, Vec<u8>) {
    let src = Ipv4Addr::new(p[12], p[13], p[14], p[15]);
    let dst = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
    let ident = u16::from_be_bytes([p[4], p[5]]);
    let payload = &p[20..];
    let mut f1 = ip_header(src, dst, p[9], first_len, ident);
    f1[6] = 0x20; // MF
    f1.extend_from_slice(&payload[..first_len]);
    let mut f2 = ip_header(src, dst, p[9], payload.len() - first_len, ident);
    f2[6..8].copy_from_slice(&((first_len / 8) as u16).to_be_bytes());
    f1[10..12].copy_from_slice(&[0, 0]);
    let c = checksum(&f1[..20]);
    f1[10..12].copy_from_slice(&c.to_be_bytes());
    f2[10..12].copy_from_slice(&[0, 0]);
    let c = checksum(&f2[..20]);
    f2[10..12].copy_from_slice(&c.to_be_bytes());
    f2.extend_from_slice(&payload[first_len..]);
    (f1, f2)
}

pub fn addr(p: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(p[at], p[at + 1], p[at + 2], p[at + 3])
}

fn u16_at(p: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([p[at], p[at + 1]])
}

/// (source address, source port or echo id).
pub fn src(p: &[u8]) -> (Ipv4Addr, u16) {
    let port = if p[9] == ICMP {
        u16_at(p, 24)
    } else {
        u16_at(p, 20)
    };
    (addr(p, 12), port)
}

/// (destination address, destination port or echo id).
pub fn dst(p: &[u8]) -> (Ipv4Addr, u16) {
    let port = if p[9] == ICMP {
        u16_at(p, 24)
    } else {
        u16_at(p, 22)
    };
    (addr(p, 16), port)
}

pub fn ip_ok(h: &[u8]) -> bool {
    let hl = usize::from(h[0] & 0x0f) * 4;
    fold(sum(&h[..hl])) == 0xffff
}

/// TCP/UDP checksum of a complete datagram at `l4..end` verified from
/// scratch with the pseudo header of `ip` (UDP 0 = none is accepted).
fn l4_ok(ip: &[u8], l4: usize, end: usize) -> bool {
    let proto = ip[9];
    let seg = &ip[l4..end];
    if proto == UDP && u16_at(seg, 6) == 0 {
        return true;
    }
    let s = combine(
        pseudo_header_v4(addr(ip, 12), addr(ip, 16), proto, seg.len() as u16),
        sum(seg),
    );
    fold(s) == 0xffff
}

/// Every checksum of a complete (unfragmented) packet, recomputed: IP
/// header; TCP/UDP with pseudo header; ICMP message; and for an ICMP error
/// the embedded IP header and, when the embedded datagram is quoted whole,
/// its TCP/UDP/ICMP checksum.
pub fn checksums_ok(p: &[u8]) -> bool {
    if !ip_ok(p) {
        return false;
    }
    let end = usize::from(u16_at(p, 2));
    match p[9] {
        TCP | UDP => l4_ok(p, 20, end),
        ICMP => {
            if fold(sum(&p[20..end])) != 0xffff {
                return false;
            }
            if !crate::wire::icmpv4::is_error(p[20]) {
                return true;
            }
            let inner = &p[28..end];
            if !ip_ok(inner) {
                return false;
            }
            let ihl = usize::from(inner[0] & 0x0f) * 4;
            let iend = usize::from(u16_at(inner, 2));
            if iend > inner.len() {
                return true; // truncated quote: its L4 checksum cannot be checked
            }
            match inner[9] {
                TCP | UDP => l4_ok(inner, ihl, iend),
                ICMP => fold(sum(&inner[ihl..iend])) == 0xffff,
                _ => true,
            }
        }
        _ => true,
    }
}

/// Asserts a translated verdict and valid checksums.
#[track_caller]
pub fn assert_translated(v: Verdict, p: &[u8]) {
    assert_eq!(v, Verdict::Translated);
    assert!(checksums_ok(p), "bad checksum after translation: {p:02x?}");
}
