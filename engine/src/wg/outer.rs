//! The outer IPv4/UDP headers of WireGuard packets: parsing a received
//! datagram addressed to the tunnel, and writing headers in front of a
//! WireGuard message. Received checksums are verified in full (a
//! non-zero UDP checksum must be right); sent datagrams carry the IPv4
//! header checksum and no UDP checksum (see [`emit`]).

use std::net::{Ipv4Addr, SocketAddrV4};

use crate::wire::ipv4::{self, Ipv4Packet, PROTO_UDP};
use crate::wire::udp::{self, UdpPacket};

/// Outer IPv4 (no options) + UDP header bytes in front of a message.
pub const OUTER_HEADER_LEN: usize = 20 + udp::HEADER_LEN;
/// TTL of packets the tunnel sends.
pub const OUTER_TTL: u8 = 64;

/// Where a received WireGuard message sits in its packet and who sent it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OuterDatagram {
    /// Outer source (the peer's endpoint as seen by us).
    pub src: SocketAddrV4,
    /// Outer destination (our address and listen port).
    pub dst: SocketAddrV4,
    /// Offset of the WireGuard message from the packet start.
    pub offset: usize,
    /// Length of the WireGuard message.
    pub len: usize,
}

/// Parses an outer IPv4 packet (starting at its IP header) holding a UDP
/// datagram to `listen_port`. `None` when anything is off.
pub fn parse(pkt: &[u8], listen_port: u16) -> Option<OuterDatagram> {
    let ip = Ipv4Packet::new_checked(pkt).ok()?;
    if ip.protocol() != PROTO_UDP || ip.more_frags() || ip.frag_offset() != 0 {
        return None;
    }
    if !ip.verify_checksum() {
        return None;
    }
    let hl = ip.header_len();
    let total = usize::from(ip.total_len());
    let u = UdpPacket::new_checked(&pkt[hl..total]).ok()?;
    if u.dst_port() != listen_port {
        return None;
    }
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    if !u.verify_checksum(src, dst) {
        return None;
    }
    let len = usize::from(u.len()).checked_sub(udp::HEADER_LEN)?;
    Some(OuterDatagram {
        src: SocketAddrV4::new(src, u.src_port()),
        dst: SocketAddrV4::new(dst, listen_port),
        offset: hl + udp::HEADER_LEN,
        len,
    })
}

/// Writes IPv4 + UDP headers into `buf[..OUTER_HEADER_LEN]` for a message
/// already at `buf[OUTER_HEADER_LEN..][..msg_len]`. `buf` must hold both.
pub fn emit(buf: &mut [u8], src: SocketAddrV4, dst: SocketAddrV4, msg_len: usize, ident: u16) {
    let udp_len = udp::HEADER_LEN + msg_len;
    // Callers bound msg_len by the buffer size (< 64 KiB), so these fit.
    ipv4::emit_header(
        &mut buf[..20],
        *src.ip(),
        *dst.ip(),
        PROTO_UDP,
        OUTER_TTL,
        udp_len as u16,
        ident,
    )
    .expect("20-byte header in a sized buffer");
    let mut u = UdpPacket::new_unchecked(&mut buf[20..20 + udp_len]);
    u.set_src_port(src.port());
    u.set_dst_port(dst.port());
    u.set_len(udp_len as u16);
    // No UDP checksum (zero: "none", RFC 768; every IPv4 receiver accepts
    // it): WireGuard authenticates every byte of the message itself, so a
    // checksum pass over each 1.4 KB datagram would buy nothing — the Linux
    // stack and wireguard-go take such datagrams as they are.
    u.set_checksum(0);
}

/// The destination address of an outer packet built by [`emit`] (tests).
pub fn dst_of(pkt: &[u8]) -> Option<SocketAddrV4> {
    let ip = Ipv4Packet::new_checked(pkt).ok()?;
    let u = UdpPacket::new_checked(ip.payload()).ok()?;
    Some(SocketAddrV4::new(ip.dst_addr(), u.dst_port()))
}

/// Inner source address of an IPv4 packet, `None` if it is not IPv4.
#[inline]
pub fn inner_src(inner: &[u8]) -> Option<Ipv4Addr> {
    if inner.len() < 20 || inner[0] >> 4 != 4 {
        return None;
    }
    Some(Ipv4Addr::new(inner[12], inner[13], inner[14], inner[15]))
}
