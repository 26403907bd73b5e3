//! IPv6 headers (RFC 8200): the [`Ipv6Packet`] view, a bounded walk over the
//! extension headers to the upper-layer protocol ([`Ipv6Packet::upper_layer`]),
//! the upper-layer pseudo-header sum (RFC 8200 §8.1) and [`emit_header`].

use std::net::Ipv6Addr;

use super::{get_u16, get_u32, set_u16, set_u32, Result, WireError};

/// Next-header values (IANA "Assigned Internet Protocol Numbers").
pub const NH_HOP_BY_HOP: u8 = 0;
pub const NH_TCP: u8 = 6;
pub const NH_UDP: u8 = 17;
pub const NH_ROUTING: u8 = 43;
pub const NH_FRAGMENT: u8 = 44;
pub const NH_ESP: u8 = 50;
pub const NH_AUTH: u8 = 51;
pub const NH_ICMPV6: u8 = 58;
pub const NH_NO_NEXT: u8 = 59;
pub const NH_DEST_OPTS: u8 = 60;

/// Fixed header length.
pub const HEADER_LEN: usize = 40;
/// The minimum link MTU every IPv6 link must carry (RFC 8200 §5).
pub const MIN_MTU: usize = 1280;
/// Extension headers followed before giving up (`Unsupported`): real
/// packets carry two or three; the bound keeps the walk cheap on any input.
pub const MAX_EXT_HEADERS: usize = 8;

mod field {
    pub const VER_TC_FLOW: usize = 0;
    pub const PAYLOAD_LEN: usize = 4;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: usize = 8;
    pub const DST: usize = 24;
}

/// A fragment header's fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fragment {
    /// Offset of this fragment's data in bytes.
    pub offset: u16,
    pub more: bool,
    pub ident: u32,
}

/// Where the upper-layer header starts, found by [`Ipv6Packet::upper_layer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpperLayer {
    /// Protocol number of the first header that is not an extension header
    /// we walk (TCP, UDP, ICMPv6, ESP, No Next Header, anything unknown).
    pub protocol: u8,
    /// Its offset from the start of the IPv6 header.
    pub offset: usize,
    /// The fragment header, if one was passed. With a non-zero offset the
    /// bytes at `offset` are the middle of the upper-layer data, not a header.
    pub fragment: Option<Fragment>,
}

#[inline]
pub(crate) fn get_ipv6(buf: &[u8], at: usize) -> Ipv6Addr {
    let mut o = [0u8; 16];
    o.copy_from_slice(&buf[at..at + 16]);
    Ipv6Addr::from(o)
}

#[inline]
pub(crate) fn set_ipv6(buf: &mut [u8], at: usize, addr: Ipv6Addr) {
    buf[at..at + 16].copy_from_slice(&addr.octets());
}

/// Partial sum of the IPv6 upper-layer pseudo-header (RFC 8200 §8.1):
/// source, destination, upper-layer length (32 bits), three zero bytes and
/// the next header. Pass it to [`super::checksum::combine`].
#[inline]
pub fn pseudo_header_sum(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, len: u32) -> u32 {
    let words = |a: Ipv6Addr| -> u32 { a.segments().iter().map(|&w| u32::from(w)).sum() };
    // 16 words of at most 0xffff plus three small terms: no u32 overflow.
    words(src) + words(dst) + (len >> 16) + (len & 0xffff) + u32::from(next_header)
}

/// A view over an IPv6 packet. After `new_checked`, the fixed header and
/// `payload_len` bytes lie within the buffer; bytes beyond (Ethernet
/// padding) are ignored by `payload()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv6Packet<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps `buffer` after checking, in order: `Truncated` (< 40 bytes),
    /// `BadVersion` (not 6), `BadTotalLen` (payload length beyond the
    /// buffer). A payload length of 0 is taken as an empty payload (jumbo
    /// payloads, RFC 2675, are not supported).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if b[field::VER_TC_FLOW] >> 4 != 6 {
            return Err(WireError::BadVersion);
        }
        if HEADER_LEN + usize::from(get_u16(b, field::PAYLOAD_LEN)) > b.len() {
            return Err(WireError::BadTotalLen);
        }
        Ok(Self { buffer })
    }

    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TC_FLOW] >> 4
    }

    /// The traffic class byte (DSCP << 2 | ECN).
    #[inline]
    pub fn traffic_class(&self) -> u8 {
        (get_u16(self.buffer.as_ref(), field::VER_TC_FLOW) >> 4) as u8
    }

    /// The 20-bit flow label.
    #[inline]
    pub fn flow_label(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::VER_TC_FLOW) & 0x000f_ffff
    }

    #[inline]
    pub fn payload_len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::PAYLOAD_LEN)
    }

    /// Header length plus payload length.
    #[inline]
    pub fn total_len(&self) -> usize {
        HEADER_LEN + usize::from(self.payload_len())
    }

    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }

    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    #[inline]
    pub fn src_addr(&self) -> Ipv6Addr {
        get_ipv6(self.buffer.as_ref(), field::SRC)
    }

    #[inline]
    pub fn dst_addr(&self) -> Ipv6Addr {
        get_ipv6(self.buffer.as_ref(), field::DST)
    }

    /// The payload (extension headers included): `payload_len` bytes after
    /// the fixed header, clamped to the buffer.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        &b[HEADER_LEN.min(b.len())..self.total_len().min(b.len())]
    }

    /// The packet up to `total_len()` (without Ethernet padding), clamped.
    #[inline]
    pub fn packet(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        &b[..self.total_len().min(b.len())]
    }

    /// Walks the extension headers (hop-by-hop, routing, fragment,
    /// destination options, authentication) to the upper-layer protocol.
    /// Errors: `Truncated` when a header runs past the payload, `Malformed`
    /// for a hop-by-hop header anywhere but first (RFC 8200 §4.1),
    /// `Unsupported` after [`MAX_EXT_HEADERS`] headers.
    pub fn upper_layer(&self) -> Result<UpperLayer> {
        let pkt = self.packet();
        let mut nh = self.next_header();
        let mut at = HEADER_LEN;
        let mut fragment = None;
        for i in 0..=MAX_EXT_HEADERS {
            let len = match nh {
                NH_HOP_BY_HOP | NH_ROUTING | NH_DEST_OPTS => {
                    if nh == NH_HOP_BY_HOP && i != 0 {
                        return Err(WireError::Malformed);
                    }
                    let l = pkt.get(at + 1).ok_or(WireError::Truncated)?;
                    (usize::from(*l) + 1) * 8
                }
                NH_FRAGMENT => {
                    let h = pkt.get(at..at + 8).ok_or(WireError::Truncated)?;
                    let off_flags = get_u16(h, 2);
                    fragment = Some(Fragment {
                        offset: off_flags & 0xfff8,
                        more: off_flags & 1 != 0,
                        ident: get_u32(h, 4),
                    });
                    8
                }
                NH_AUTH => {
                    let l = pkt.get(at + 1).ok_or(WireError::Truncated)?;
                    (usize::from(*l) + 2) * 4
                }
                protocol => {
                    return Ok(UpperLayer {
                        protocol,
                        offset: at,
                        fragment,
                    })
                }
            };
            if i == MAX_EXT_HEADERS {
                break;
            }
            if at + len > pkt.len() {
                return Err(WireError::Truncated);
            }
            nh = pkt[at];
            at += len;
        }
        Err(WireError::Unsupported)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    /// Writes version 6, the traffic class and the flow label (20 bits).
    #[inline]
    pub fn set_version_tc_flow(&mut self, traffic_class: u8, flow_label: u32) {
        let v = (6 << 28) | (u32::from(traffic_class) << 20) | (flow_label & 0x000f_ffff);
        set_u32(self.buffer.as_mut(), field::VER_TC_FLOW, v)
    }

    #[inline]
    pub fn set_payload_len(&mut self, len: u16) {
        set_u16(self.buffer.as_mut(), field::PAYLOAD_LEN, len)
    }

    #[inline]
    pub fn set_next_header(&mut self, nh: u8) {
        self.buffer.as_mut()[field::NEXT_HEADER] = nh;
    }

    #[inline]
    pub fn set_hop_limit(&mut self, hop_limit: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = hop_limit;
    }

    #[inline]
    pub fn set_src_addr(&mut self, addr: Ipv6Addr) {
        set_ipv6(self.buffer.as_mut(), field::SRC, addr)
    }

    #[inline]
    pub fn set_dst_addr(&mut self, addr: Ipv6Addr) {
        set_ipv6(self.buffer.as_mut(), field::DST, addr)
    }

    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = self.total_len().min(self.buffer.as_ref().len());
        let b = self.buffer.as_mut();
        &mut b[HEADER_LEN.min(end)..end]
    }

    /// Decrements the hop limit (IPv6 has no header checksum). A hop limit
    /// of 0 is left as is: the forwarder drops such packets first.
    #[inline]
    pub fn decrement_hop_limit(&mut self) {
        let b = self.buffer.as_mut();
        b[field::HOP_LIMIT] = b[field::HOP_LIMIT].saturating_sub(1);
    }
}

/// Writes a 40-byte IPv6 header (traffic class 0, flow label 0) at the start
/// of `buf`. `Truncated` if `buf` is shorter than 40 bytes.
#[inline]
pub fn emit_header(
    buf: &mut [u8],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next_header: u8,
    hop_limit: u8,
    payload_len: u16,
) -> Result<()> {
    if buf.len() < HEADER_LEN {
        return Err(WireError::Truncated);
    }
    let mut p = Ipv6Packet::new_unchecked(&mut buf[..HEADER_LEN]);
    p.set_version_tc_flow(0, 0);
    p.set_payload_len(payload_len);
    p.set_next_header(next_header);
    p.set_hop_limit(hop_limit);
    p.set_src_addr(src);
    p.set_dst_addr(dst);
    Ok(())
}

#[cfg(test)]
pub(crate) mod golden;
#[cfg(test)]
mod tests;
