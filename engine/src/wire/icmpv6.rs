//! ICMPv6 (RFC 4443) and Neighbor Discovery messages (RFC 4861): the
//! [`Icmpv6Packet`] view with its checksum over the IPv6 pseudo-header,
//! [`parse_nd`] for Neighbor Solicitation/Advertisement (with their
//! link-layer address options), and builders that write a whole IPv6 packet
//! (echo, NS, NA, destination unreachable, packet too big, time exceeded).

use std::net::Ipv6Addr;

use super::checksum;
use super::ipv6::{self, emit_header, Ipv6Packet, HEADER_LEN as IPV6_HEADER_LEN, NH_ICMPV6};
use super::{get_mac, get_u16, get_u32, set_mac, set_u16, set_u32, Result, WireError};

pub const TYPE_DEST_UNREACHABLE: u8 = 1;
pub const TYPE_PACKET_TOO_BIG: u8 = 2;
pub const TYPE_TIME_EXCEEDED: u8 = 3;
pub const TYPE_PARAMETER_PROBLEM: u8 = 4;
pub const TYPE_ECHO_REQUEST: u8 = 128;
pub const TYPE_ECHO_REPLY: u8 = 129;
pub const TYPE_ROUTER_SOLICIT: u8 = 133;
pub const TYPE_ROUTER_ADVERT: u8 = 134;
pub const TYPE_NEIGHBOR_SOLICIT: u8 = 135;
pub const TYPE_NEIGHBOR_ADVERT: u8 = 136;
pub const TYPE_REDIRECT: u8 = 137;

/// Codes of `TYPE_DEST_UNREACHABLE`.
pub const CODE_NO_ROUTE: u8 = 0;
pub const CODE_ADMIN_PROHIBITED: u8 = 1;
pub const CODE_BEYOND_SCOPE: u8 = 2;
pub const CODE_ADDR_UNREACHABLE: u8 = 3;
pub const CODE_PORT_UNREACHABLE: u8 = 4;
/// Codes of `TYPE_TIME_EXCEEDED`.
pub const CODE_HOP_LIMIT_EXCEEDED: u8 = 0;
pub const CODE_REASSEMBLY_TIMEOUT: u8 = 1;
/// Code of `TYPE_PARAMETER_PROBLEM` for an unrecognized IPv6 option (the
/// one error that may answer a multicast packet, RFC 4443 §2.4(e)).
pub const CODE_UNRECOGNIZED_OPTION: u8 = 2;

/// ND option types (RFC 4861 §4.6).
pub const OPT_SOURCE_LL_ADDR: u8 = 1;
pub const OPT_TARGET_LL_ADDR: u8 = 2;

/// Neighbor Advertisement flags (first byte after the checksum).
pub const NA_FLAG_ROUTER: u8 = 0x80;
pub const NA_FLAG_SOLICITED: u8 = 0x40;
pub const NA_FLAG_OVERRIDE: u8 = 0x20;

/// Type, code, checksum and the 4-byte rest of header.
pub const HEADER_LEN: usize = 8;
/// NS and NA: header plus the 16-byte target address.
pub const ND_LEN: usize = 24;
/// Hop limit of every ND message (RFC 4861 §7.1: receivers drop others).
pub const ND_HOP_LIMIT: u8 = 255;
/// Hop limit of the errors and echo replies we originate.
pub const DEFAULT_HOP_LIMIT: u8 = 64;
/// Bytes of ND option for one Ethernet address: type, length (1 = 8 bytes), MAC.
const LL_OPT_LEN: usize = 8;
/// Most of the invoking packet an error quotes: the error must fit in the
/// minimum MTU (RFC 4443 §2.4(c)).
pub const MAX_QUOTE: usize = ipv6::MIN_MTU - IPV6_HEADER_LEN - HEADER_LEN;

mod field {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: usize = 2;
    pub const IDENT: usize = 4;
    pub const SEQ_NO: usize = 6;
    pub const REST: usize = 4;
    pub const ND_FLAGS: usize = 4;
    pub const ND_TARGET: usize = 8;
}

/// True for error messages (types below 128, RFC 4443 §2.1).
#[inline]
pub fn is_error(msg_type: u8) -> bool {
    msg_type < 128
}

/// The solicited-node multicast address of `addr`: ff02::1:ff00:0/104 plus
/// its low 24 bits (RFC 4291 §2.7.1).
#[inline]
pub fn solicited_node(addr: Ipv6Addr) -> Ipv6Addr {
    let o = addr.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    )
}

/// True for a solicited-node multicast address.
#[inline]
pub fn is_solicited_node(addr: Ipv6Addr) -> bool {
    let o = addr.octets();
    o[..13] == [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff]
}

/// The Ethernet address of an IPv6 multicast group: 33:33 plus its low 32
/// bits (RFC 2464 §7); for a solicited-node group that is 33:33:ff:xx:xx:xx.
#[inline]
pub fn multicast_mac(group: Ipv6Addr) -> [u8; 6] {
    let o = group.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

/// A view over an ICMPv6 message (the IPv6 upper-layer payload, which the
/// checksum covers together with the pseudo-header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Icmpv6Packet<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv6Packet<T> {
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps `buffer`; `Truncated` below 8 bytes.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Self { buffer })
    }

    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    #[inline]
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    #[inline]
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Echo identifier.
    #[inline]
    pub fn ident(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::IDENT)
    }

    /// Echo sequence number.
    #[inline]
    pub fn seq_no(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::SEQ_NO)
    }

    /// Bytes 4..8: the MTU of a packet too big, the pointer of a parameter
    /// problem, the flags of a neighbor advertisement.
    #[inline]
    pub fn rest_of_header(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::REST)
    }

    /// Everything after the 8-byte header.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }

    /// True if the checksum over the pseudo-header and the whole buffer
    /// verifies.
    #[inline]
    pub fn verify_checksum(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        let b = self.buffer.as_ref();
        let pseudo = ipv6::pseudo_header_sum(src, dst, NH_ICMPV6, b.len() as u32);
        checksum::fold(checksum::combine(pseudo, checksum::sum(b))) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv6Packet<T> {
    #[inline]
    pub fn set_msg_type(&mut self, msg_type: u8) {
        self.buffer.as_mut()[field::TYPE] = msg_type;
    }

    #[inline]
    pub fn set_code(&mut self, code: u8) {
        self.buffer.as_mut()[field::CODE] = code;
    }

    #[inline]
    pub fn set_checksum(&mut self, csum: u16) {
        set_u16(self.buffer.as_mut(), field::CHECKSUM, csum)
    }

    #[inline]
    pub fn set_ident(&mut self, ident: u16) {
        set_u16(self.buffer.as_mut(), field::IDENT, ident)
    }

    #[inline]
    pub fn set_seq_no(&mut self, seq_no: u16) {
        set_u16(self.buffer.as_mut(), field::SEQ_NO, seq_no)
    }

    #[inline]
    pub fn set_rest_of_header(&mut self, rest: u32) {
        set_u32(self.buffer.as_mut(), field::REST, rest)
    }

    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }

    /// Computes the checksum (pseudo-header included) and writes it.
    #[inline]
    pub fn fill_checksum(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        self.set_checksum(0);
        let b = self.buffer.as_ref();
        let pseudo = ipv6::pseudo_header_sum(src, dst, NH_ICMPV6, b.len() as u32);
        let csum = !checksum::fold(checksum::combine(pseudo, checksum::sum(b)));
        self.set_checksum(csum);
    }
}

/// A validated Neighbor Solicitation or Advertisement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NdMessage {
    Solicit {
        target: Ipv6Addr,
        /// From the source link-layer address option.
        source_ll: Option<[u8; 6]>,
    },
    Advert {
        target: Ipv6Addr,
        router: bool,
        solicited: bool,
        override_flag: bool,
        /// From the target link-layer address option.
        target_ll: Option<[u8; 6]>,
    },
}

/// The Ethernet address in the first option of type `opt_type`, walking
/// every option to check its length (`Malformed`: a zero length or one past
/// the end, or a link-layer option that is not 8 bytes).
pub fn link_layer_option(options: &[u8], opt_type: u8) -> Result<Option<[u8; 6]>> {
    let mut found = None;
    let mut rest = options;
    while !rest.is_empty() {
        if rest.len() < 2 {
            return Err(WireError::Malformed);
        }
        let len = usize::from(rest[1]) * 8;
        if len == 0 || len > rest.len() {
            return Err(WireError::Malformed);
        }
        if rest[0] == opt_type && found.is_none() {
            if len != LL_OPT_LEN {
                // Only Ethernet (6-byte) link-layer addresses.
                return Err(WireError::Malformed);
            }
            found = Some(get_mac(rest, 2));
        }
        rest = &rest[len..];
    }
    Ok(found)
}

/// Validates an NS or NA per RFC 4861 §7.1.1 and §7.1.2: ICMPv6 directly
/// after the IPv6 header, hop limit 255, valid checksum (`BadChecksum`),
/// code 0, at least 24 bytes, well-formed options, a target that is not
/// multicast; an NS from the unspecified address goes to a solicited-node
/// address and has no source link-layer option; an NA to a multicast address
/// is not flagged solicited. Other messages are `Unsupported`; violations
/// are `Malformed`.
pub fn parse_nd<T: AsRef<[u8]>>(ip: &Ipv6Packet<T>) -> Result<NdMessage> {
    if ip.next_header() != NH_ICMPV6 {
        return Err(WireError::Unsupported);
    }
    let icmp = Icmpv6Packet::new_checked(ip.payload())?;
    let msg_type = icmp.msg_type();
    if msg_type != TYPE_NEIGHBOR_SOLICIT && msg_type != TYPE_NEIGHBOR_ADVERT {
        return Err(WireError::Unsupported);
    }
    let b = ip.payload();
    if ip.hop_limit() != ND_HOP_LIMIT || icmp.code() != 0 || b.len() < ND_LEN {
        return Err(WireError::Malformed);
    }
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    if !icmp.verify_checksum(src, dst) {
        return Err(WireError::BadChecksum);
    }
    let target = ipv6::get_ipv6(b, field::ND_TARGET);
    if target.is_multicast() {
        return Err(WireError::Malformed);
    }
    let options = &b[ND_LEN..];
    if msg_type == TYPE_NEIGHBOR_SOLICIT {
        let source_ll = link_layer_option(options, OPT_SOURCE_LL_ADDR)?;
        if src.is_unspecified() && (!is_solicited_node(dst) || source_ll.is_some()) {
            return Err(WireError::Malformed);
        }
        Ok(NdMessage::Solicit { target, source_ll })
    } else {
        let flags = b[field::ND_FLAGS];
        let solicited = flags & NA_FLAG_SOLICITED != 0;
        if solicited && dst.is_multicast() {
            return Err(WireError::Malformed);
        }
        Ok(NdMessage::Advert {
            target,
            router: flags & NA_FLAG_ROUTER != 0,
            solicited,
            override_flag: flags & NA_FLAG_OVERRIDE != 0,
            target_ll: link_layer_option(options, OPT_TARGET_LL_ADDR)?,
        })
    }
}

/// Writes the IPv6 header for an ICMPv6 message of `icmp_len` bytes already
/// in place after it, and fills the checksum. Returns the packet length.
fn finish(buf: &mut [u8], src: Ipv6Addr, dst: Ipv6Addr, hop: u8, icmp_len: usize) -> Result<usize> {
    let total = IPV6_HEADER_LEN + icmp_len;
    let payload_len = u16::try_from(icmp_len).map_err(|_| WireError::BadTotalLen)?;
    emit_header(buf, src, dst, NH_ICMPV6, hop, payload_len)?;
    Icmpv6Packet::new_unchecked(&mut buf[IPV6_HEADER_LEN..total]).fill_checksum(src, dst);
    Ok(total)
}

/// The ICMPv6 part of `buf` for a message of `len` bytes, zeroed; `Truncated`
/// if the whole packet does not fit.
fn icmp_area(buf: &mut [u8], len: usize) -> Result<&mut [u8]> {
    let area = buf
        .get_mut(IPV6_HEADER_LEN..IPV6_HEADER_LEN + len)
        .ok_or(WireError::Truncated)?;
    area.fill(0);
    Ok(area)
}

/// Writes a Neighbor Solicitation for `target` (IPv6 header included; hop
/// limit 255) and returns its length. `dst` is the target's solicited-node
/// address ([`solicited_node`]) to resolve, or the target itself to probe.
/// Pass `source_ll` unless `src` is the unspecified address (RFC 4861 §4.3).
pub fn emit_neighbor_solicit(
    buf: &mut [u8],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    target: Ipv6Addr,
    source_ll: Option<[u8; 6]>,
) -> Result<usize> {
    let len = ND_LEN + if source_ll.is_some() { LL_OPT_LEN } else { 0 };
    let area = icmp_area(buf, len)?;
    area[field::TYPE] = TYPE_NEIGHBOR_SOLICIT;
    ipv6::set_ipv6(area, field::ND_TARGET, target);
    if let Some(mac) = source_ll {
        area[ND_LEN] = OPT_SOURCE_LL_ADDR;
        area[ND_LEN + 1] = 1;
        set_mac(area, ND_LEN + 2, mac);
    }
    finish(buf, src, dst, ND_HOP_LIMIT, len)
}

/// Writes a Neighbor Advertisement for `target` with `flags`
/// (`NA_FLAG_*`) and, if given, the target link-layer address option.
pub fn emit_neighbor_advert(
    buf: &mut [u8],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    target: Ipv6Addr,
    flags: u8,
    target_ll: Option<[u8; 6]>,
) -> Result<usize> {
    let len = ND_LEN + if target_ll.is_some() { LL_OPT_LEN } else { 0 };
    let area = icmp_area(buf, len)?;
    area[field::TYPE] = TYPE_NEIGHBOR_ADVERT;
    area[field::ND_FLAGS] = flags & (NA_FLAG_ROUTER | NA_FLAG_SOLICITED | NA_FLAG_OVERRIDE);
    ipv6::set_ipv6(area, field::ND_TARGET, target);
    if let Some(mac) = target_ll {
        area[ND_LEN] = OPT_TARGET_LL_ADDR;
        area[ND_LEN + 1] = 1;
        set_mac(area, ND_LEN + 2, mac);
    }
    finish(buf, src, dst, ND_HOP_LIMIT, len)
}

/// Writes an echo request or reply (`msg_type`) carrying `data`, hop limit
/// `hop_limit`.
#[allow(clippy::too_many_arguments)]
pub fn emit_echo(
    buf: &mut [u8],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
    msg_type: u8,
    ident: u16,
    seq_no: u16,
    data: &[u8],
) -> Result<usize> {
    let len = HEADER_LEN + data.len();
    let area = icmp_area(buf, len)?;
    let mut icmp = Icmpv6Packet::new_unchecked(&mut area[..]);
    icmp.set_msg_type(msg_type);
    icmp.set_ident(ident);
    icmp.set_seq_no(seq_no);
    icmp.data_mut().copy_from_slice(data);
    finish(buf, src, dst, hop_limit, len)
}

/// Turns the echo request in `buf` (an IPv6 packet with ICMPv6 right after
/// the header, as checked by the caller) into its reply in place: from
/// `our_addr` to the request's source, hop limit `hop_limit`, type 129, new
/// checksum. `Malformed` if it is not such an echo request.
pub fn echo_reply_in_place(buf: &mut [u8], our_addr: Ipv6Addr, hop_limit: u8) -> Result<()> {
    let ip = Ipv6Packet::new_checked(&*buf)?;
    let total = ip.total_len();
    let peer = ip.src_addr();
    if ip.next_header() != NH_ICMPV6
        || Icmpv6Packet::new_checked(ip.payload())?.msg_type() != TYPE_ECHO_REQUEST
    {
        return Err(WireError::Malformed);
    }
    let mut ip = Ipv6Packet::new_unchecked(&mut buf[..total]);
    ip.set_src_addr(our_addr);
    ip.set_dst_addr(peer);
    ip.set_hop_limit(hop_limit);
    let mut icmp = Icmpv6Packet::new_unchecked(ip.payload_mut());
    icmp.set_msg_type(TYPE_ECHO_REPLY);
    icmp.fill_checksum(our_addr, peer);
    Ok(())
}

/// May we answer `invoking` (an IPv6 packet) with an error of `msg_type` /
/// `code`? Not (RFC 4443 §2.4(e)) when it is itself an ICMPv6 error or a
/// redirect, when it went to a multicast address (except packet too big
/// and an unrecognized-option parameter problem), or came from an
/// unspecified or multicast source; nor when it does not parse.
pub fn error_allowed(invoking: &[u8], msg_type: u8, code: u8) -> bool {
    let Ok(ip) = Ipv6Packet::new_checked(invoking) else {
        return false;
    };
    let src = ip.src_addr();
    if src.is_unspecified() || src.is_multicast() {
        return false;
    }
    let multicast_ok = msg_type == TYPE_PACKET_TOO_BIG
        || (msg_type == TYPE_PARAMETER_PROBLEM && code == CODE_UNRECOGNIZED_OPTION);
    if ip.dst_addr().is_multicast() && !multicast_ok {
        return false;
    }
    match ip.upper_layer() {
        Ok(ul) if ul.protocol == NH_ICMPV6 && ul.fragment.is_none_or(|f| f.offset == 0) => {
            match ip.packet().get(ul.offset) {
                Some(&t) => !is_error(t) && t != TYPE_REDIRECT,
                None => true,
            }
        }
        Ok(_) => true,
        Err(_) => false,
    }
}

/// Writes an error message of `msg_type`/`code` with the 4-byte `param`
/// (MTU, pointer, or 0) quoting as much of `invoking` as fits in 1280 bytes
/// and in `buf`. Returns the packet length. Check [`error_allowed`] first.
pub fn emit_error(
    buf: &mut [u8],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    msg_type: u8,
    code: u8,
    param: u32,
    invoking: &[u8],
) -> Result<usize> {
    let room = buf
        .len()
        .checked_sub(IPV6_HEADER_LEN + HEADER_LEN)
        .ok_or(WireError::Truncated)?;
    let quote = &invoking[..invoking.len().min(MAX_QUOTE).min(room)];
    let len = HEADER_LEN + quote.len();
    let area = icmp_area(buf, len)?;
    let mut icmp = Icmpv6Packet::new_unchecked(&mut area[..]);
    icmp.set_msg_type(msg_type);
    icmp.set_code(code);
    icmp.set_rest_of_header(param);
    icmp.data_mut().copy_from_slice(quote);
    finish(buf, src, dst, DEFAULT_HOP_LIMIT, len)
}

/// Destination unreachable (`CODE_NO_ROUTE`, `CODE_ADDR_UNREACHABLE`, ...).
pub fn emit_dest_unreachable(
    buf: &mut [u8],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    code: u8,
    invoking: &[u8],
) -> Result<usize> {
    emit_error(buf, src, dst, TYPE_DEST_UNREACHABLE, code, 0, invoking)
}

/// Packet too big, announcing the next hop's `mtu`.
pub fn emit_packet_too_big(
    buf: &mut [u8],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    mtu: u32,
    invoking: &[u8],
) -> Result<usize> {
    emit_error(buf, src, dst, TYPE_PACKET_TOO_BIG, 0, mtu, invoking)
}

/// Time exceeded (`CODE_HOP_LIMIT_EXCEEDED` in transit).
pub fn emit_time_exceeded(
    buf: &mut [u8],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    code: u8,
    invoking: &[u8],
) -> Result<usize> {
    emit_error(buf, src, dst, TYPE_TIME_EXCEEDED, code, 0, invoking)
}

#[cfg(test)]
mod tests;
