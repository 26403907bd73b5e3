//! In-place header rewrites with incremental checksum updates (RFC 1624):
//! the IPv4 header checksum, the TCP/UDP checksum (whose pseudo header
//! covers the addresses), and the ICMP checksum (query id only: ICMP has no
//! pseudo header). A UDP checksum of 0 (none) stays 0, and a computed 0 is
//! sent as 0xffff (RFC 768).

use crate::wire::checksum::{update16, update32};
use crate::wire::ipv4::{PROTO_ICMP, PROTO_TCP, PROTO_UDP};

/// Offsets in the IPv4 header.
pub const IP_CSUM: usize = 10;
pub const IP_SRC: usize = 12;
pub const IP_DST: usize = 16;

#[inline]
pub fn rd16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
pub fn wr16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

#[inline]
pub fn rd32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline]
pub fn wr32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

/// Which endpoint of a packet is rewritten.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Src,
    Dst,
}

impl Side {
    #[inline]
    fn addr_off(self) -> usize {
        match self {
            Side::Src => IP_SRC,
            Side::Dst => IP_DST,
        }
    }

    #[inline]
    fn port_off(self) -> usize {
        match self {
            Side::Src => 0,
            Side::Dst => 2,
        }
    }
}

/// Sets the IPv4 address of `side` to `addr`, updating the header checksum.
#[inline]
pub fn set_addr(ip: &mut [u8], side: Side, addr: u32) -> u32 {
    let at = side.addr_off();
    let old = rd32(ip, at);
    wr32(ip, at, addr);
    let c = rd16(ip, IP_CSUM);
    wr16(ip, IP_CSUM, update32(c, old, addr));
    old
}

/// Rewrites `side`'s address to `addr` and, when `port` is given, its TCP/UDP
/// port or ICMP query id; `l4` is the L4 header's offset, known to hold the
/// whole fixed L4 header. Other protocols get the address change only.
#[inline]
pub fn rewrite(ip: &mut [u8], l4: usize, proto: u8, side: Side, addr: u32, port: Option<u16>) {
    let old_addr = set_addr(ip, side, addr);
    match proto {
        PROTO_TCP | PROTO_UDP => {
            let p_off = l4 + side.port_off();
            let old_port = rd16(ip, p_off);
            let new_port = port.unwrap_or(old_port);
            wr16(ip, p_off, new_port);
            let udp = proto == PROTO_UDP;
            let c_off = l4 + if udp { 6 } else { 16 };
            let c = rd16(ip, c_off);
            if udp && c == 0 {
                return;
            }
            let mut n = update16(update32(c, old_addr, addr), old_port, new_port);
            if udp && n == 0 {
                n = 0xffff;
            }
            wr16(ip, c_off, n);
        }
        PROTO_ICMP => {
            if let Some(id) = port {
                let old = rd16(ip, l4 + 4);
                wr16(ip, l4 + 4, id);
                let c = rd16(ip, l4 + 2);
                wr16(ip, l4 + 2, update16(c, old, id));
            }
        }
        _ => {}
    }
}

/// Writes `v` at `at` and folds the change into checksum `csum` (for words
/// inside a checksummed region at an even offset of it).
#[inline]
fn set16_tracked(b: &mut [u8], at: usize, v: u16, csum: &mut u16) {
    let old = rd16(b, at);
    wr16(b, at, v);
    *csum = update16(*csum, old, v);
}

/// Rewrites the packet embedded in an ICMP error (at `inner`, header length
/// `inner_hl`, quoted bytes up to `end`): `side`'s address to `addr` and,
/// when given, its port or query id, fixing the embedded IP header checksum,
/// the embedded L4 checksum when it was quoted, and the outer ICMP checksum
/// (at `icmp + 2`) for every word changed.
#[allow(clippy::too_many_arguments)]
pub fn rewrite_embedded(
    ip: &mut [u8],
    icmp: usize,
    inner: usize,
    inner_hl: usize,
    end: usize,
    side: Side,
    addr: u32,
    port: Option<u16>,
) {
    let mut oc = rd16(ip, icmp + 2);
    let a_off = inner + side.addr_off();
    let old_addr = rd32(ip, a_off);
    set16_tracked(ip, a_off, (addr >> 16) as u16, &mut oc);
    set16_tracked(ip, a_off + 2, addr as u16, &mut oc);
    let ic = rd16(ip, inner + IP_CSUM);
    set16_tracked(ip, inner + IP_CSUM, update32(ic, old_addr, addr), &mut oc);
    let il4 = inner + inner_hl;
    match ip[inner + 9] {
        p @ (PROTO_TCP | PROTO_UDP) => {
            let p_off = il4 + side.port_off();
            let old_port = rd16(ip, p_off);
            let new_port = port.unwrap_or(old_port);
            set16_tracked(ip, p_off, new_port, &mut oc);
            let udp = p == PROTO_UDP;
            let c_off = il4 + if udp { 6 } else { 16 };
            if c_off + 2 <= end {
                let c = rd16(ip, c_off);
                if !(udp && c == 0) {
                    let mut n = update16(update32(c, old_addr, addr), old_port, new_port);
                    if udp && n == 0 {
                        n = 0xffff;
                    }
                    set16_tracked(ip, c_off, n, &mut oc);
                }
            }
        }
        PROTO_ICMP => {
            if let Some(id) = port {
                let old = rd16(ip, il4 + 4);
                set16_tracked(ip, il4 + 4, id, &mut oc);
                let c = rd16(ip, il4 + 2);
                set16_tracked(ip, il4 + 2, update16(c, old, id), &mut oc);
            }
        }
        _ => {}
    }
    wr16(ip, icmp + 2, oc);
}
