//! IPv4 headers (RFC 791): the [`Ipv4Packet`] view, TTL decrement with an
//! incremental checksum update (RFC 1624), and [`emit_header`].

use std::net::Ipv4Addr;

use super::checksum;
use super::{get_ipv4, get_u16, set_ipv4, set_u16, Result, WireError};

pub const PROTO_ICMP: u8 = 1;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;

mod field {
    pub const VER_IHL: usize = 0;
    pub const TOS: usize = 1;
    pub const TOTAL_LEN: usize = 2;
    pub const IDENT: usize = 4;
    pub const FLAGS_FRAG: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC: usize = 12;
    pub const DST: usize = 16;
}

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const FRAG_OFFSET_MASK: u16 = 0x1fff;

/// A view over an IPv4 packet. After `new_checked`, the header (options
/// included) and `total_len` bytes are known to lie within the buffer; bytes
/// beyond `total_len` (Ethernet padding) are ignored by `payload()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv4Packet<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Header length without options.
    pub const MIN_HEADER_LEN: usize = 20;

    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps `buffer` after checking, in order: `Truncated` (< 20 bytes),
    /// `BadVersion` (not 4), `BadHeaderLen` (IHL < 5 or header beyond the
    /// buffer), `BadTotalLen` (total length below the header or beyond the
    /// buffer). The checksum is not verified; see [`Self::verify_checksum`].
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < Self::MIN_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if b[field::VER_IHL] >> 4 != 4 {
            return Err(WireError::BadVersion);
        }
        let header_len = usize::from(b[field::VER_IHL] & 0x0f) * 4;
        if header_len < Self::MIN_HEADER_LEN || header_len > b.len() {
            return Err(WireError::BadHeaderLen);
        }
        let total_len = usize::from(get_u16(b, field::TOTAL_LEN));
        if total_len < header_len || total_len > b.len() {
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
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL * 4), options included.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// The whole TOS byte (DSCP << 2 | ECN).
    #[inline]
    pub fn tos(&self) -> u8 {
        self.buffer.as_ref()[field::TOS]
    }

    #[inline]
    pub fn total_len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::TOTAL_LEN)
    }

    #[inline]
    pub fn ident(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::IDENT)
    }

    #[inline]
    pub fn dont_frag(&self) -> bool {
        get_u16(self.buffer.as_ref(), field::FLAGS_FRAG) & FLAG_DF != 0
    }

    #[inline]
    pub fn more_frags(&self) -> bool {
        get_u16(self.buffer.as_ref(), field::FLAGS_FRAG) & FLAG_MF != 0
    }

    /// Fragment offset in bytes (the field counts 8-byte units).
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (get_u16(self.buffer.as_ref(), field::FLAGS_FRAG) & FRAG_OFFSET_MASK) << 3
    }

    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    #[inline]
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    #[inline]
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    #[inline]
    pub fn src_addr(&self) -> Ipv4Addr {
        get_ipv4(self.buffer.as_ref(), field::SRC)
    }

    #[inline]
    pub fn dst_addr(&self) -> Ipv4Addr {
        get_ipv4(self.buffer.as_ref(), field::DST)
    }

    /// Option bytes between the fixed header and `header_len()`.
    #[inline]
    pub fn options(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        // Clamped so that even after careless setters this cannot panic.
        let end = self.header_len().min(b.len());
        &b[Self::MIN_HEADER_LEN.min(end)..end]
    }

    /// The payload: from `header_len()` up to `total_len()`.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        let (start, end) = self.payload_range(b.len());
        &b[start..end]
    }

    /// True if the header checksum verifies.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        let b = self.buffer.as_ref();
        let end = self.header_len().min(b.len());
        checksum::fold(checksum::sum(&b[..end])) == 0xffff
    }

    /// Payload bounds clamped to the buffer, so no setter order can make
    /// `payload()` panic.
    #[inline]
    fn payload_range(&self, buf_len: usize) -> (usize, usize) {
        let end = usize::from(self.total_len()).min(buf_len);
        (self.header_len().min(end), end)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Sets the version nibble, keeping IHL.
    #[inline]
    pub fn set_version(&mut self, version: u8) {
        let b = self.buffer.as_mut();
        b[field::VER_IHL] = (version << 4) | (b[field::VER_IHL] & 0x0f);
    }

    /// Sets IHL from a length in bytes (a multiple of 4, 20..=60), keeping
    /// the version.
    #[inline]
    pub fn set_header_len(&mut self, bytes: usize) {
        let b = self.buffer.as_mut();
        b[field::VER_IHL] = (b[field::VER_IHL] & 0xf0) | ((bytes / 4) as u8 & 0x0f);
    }

    #[inline]
    pub fn set_tos(&mut self, tos: u8) {
        self.buffer.as_mut()[field::TOS] = tos;
    }

    #[inline]
    pub fn set_total_len(&mut self, len: u16) {
        set_u16(self.buffer.as_mut(), field::TOTAL_LEN, len)
    }

    #[inline]
    pub fn set_ident(&mut self, ident: u16) {
        set_u16(self.buffer.as_mut(), field::IDENT, ident)
    }

    /// Sets DF, MF and the fragment offset in bytes (must be a multiple of
    /// 8; the low three bits are dropped).
    #[inline]
    pub fn set_flags_and_offset(&mut self, dont_frag: bool, more_frags: bool, offset_bytes: u16) {
        let mut v = offset_bytes >> 3;
        if dont_frag {
            v |= FLAG_DF;
        }
        if more_frags {
            v |= FLAG_MF;
        }
        set_u16(self.buffer.as_mut(), field::FLAGS_FRAG, v)
    }

    #[inline]
    pub fn set_ttl(&mut self, ttl: u8) {
        self.buffer.as_mut()[field::TTL] = ttl;
    }

    #[inline]
    pub fn set_protocol(&mut self, protocol: u8) {
        self.buffer.as_mut()[field::PROTOCOL] = protocol;
    }

    #[inline]
    pub fn set_checksum(&mut self, csum: u16) {
        set_u16(self.buffer.as_mut(), field::CHECKSUM, csum)
    }

    #[inline]
    pub fn set_src_addr(&mut self, addr: Ipv4Addr) {
        set_ipv4(self.buffer.as_mut(), field::SRC, addr)
    }

    #[inline]
    pub fn set_dst_addr(&mut self, addr: Ipv4Addr) {
        set_ipv4(self.buffer.as_mut(), field::DST, addr)
    }

    /// Recomputes the header checksum from scratch (options included).
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let end = self.header_len().min(self.buffer.as_ref().len());
        let csum = checksum::checksum(&self.buffer.as_ref()[..end]);
        self.set_checksum(csum);
    }

    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (start, end) = self.payload_range(self.buffer.as_ref().len());
        &mut self.buffer.as_mut()[start..end]
    }

    /// Decrements the TTL and patches the checksum incrementally (RFC 1624),
    /// without touching the rest of the header. A TTL of 0 is left as is:
    /// the forwarder must drop such packets before calling this.
    #[inline]
    pub fn decrement_ttl(&mut self) {
        let b = self.buffer.as_mut();
        if b[field::TTL] == 0 {
            return;
        }
        // TTL and protocol share one 16-bit checksum word.
        let old = get_u16(b, field::TTL);
        let new = old - 0x0100;
        b[field::TTL] -= 1;
        let csum = checksum::update16(get_u16(b, field::CHECKSUM), old, new);
        set_u16(b, field::CHECKSUM, csum);
    }
}

/// Writes a 20-byte IPv4 header (no options, TOS 0, DF clear, offset 0) with
/// `total_len = 20 + payload_len` and a valid checksum at the start of
/// `buf`. Errors: `Truncated` if `buf` is shorter than 20 bytes,
/// `BadTotalLen` if the total length would exceed 65535.
#[inline]
pub fn emit_header(
    buf: &mut [u8],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: u8,
    ttl: u8,
    payload_len: u16,
    ident: u16,
) -> Result<()> {
    const HEADER_LEN: usize = Ipv4Packet::<&[u8]>::MIN_HEADER_LEN;
    if buf.len() < HEADER_LEN {
        return Err(WireError::Truncated);
    }
    let total_len = payload_len
        .checked_add(HEADER_LEN as u16)
        .ok_or(WireError::BadTotalLen)?;
    let mut p = Ipv4Packet::new_unchecked(&mut buf[..HEADER_LEN]);
    p.set_version(4);
    p.set_header_len(HEADER_LEN);
    p.set_tos(0);
    p.set_total_len(total_len);
    p.set_ident(ident);
    p.set_flags_and_offset(false, false, 0);
    p.set_ttl(ttl);
    p.set_protocol(protocol);
    p.set_src_addr(src);
    p.set_dst_addr(dst);
    p.fill_checksum();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::hex;
    use proptest::prelude::*;

    // Goldens made with scapy (/usr/bin/python3), bytes(...).hex():
    // UDP_PKT: IP(src="192.0.2.1", dst="198.51.100.2", ttl=64, id=0x1234)/
    //          UDP(sport=1234, dport=53)/b"hello"
    const UDP_PKT: &str = "450000211234000040117c61c0000201c633640204d20035000dcac368656c6c6f";
    // OPTS: IP(src="10.0.0.1", dst="10.0.0.2", ttl=17, id=0xbeef, tos=0xb8,
    //          flags="DF", proto=253, options=[IPOption_NOP(), IPOption_NOP(),
    //          IPOption_NOP(), IPOption_EOL()])/b"xyz"
    const OPTS: &str = "46b8001bbeef400011fd923b0a0000010a0000020101010078797a";
    // FRAG: IP(src="10.1.2.3", dst="10.4.5.6", ttl=255, id=7, flags="MF",
    //          frag=185, proto=17)/(b"\xaa"*8)
    const FRAG: &str = "4500001c000720b9ff1180030a0102030a040506aaaaaaaaaaaaaaaa";
    // EMIT: IP(src="192.168.1.10", dst="172.16.0.1", ttl=64, id=0xabcd, proto=6,
    //          len=20+100)  (header only)
    const EMIT: &str = "45000078abcd0000400660efc0a8010aac100001";

    #[test]
    fn decode_golden_udp_packet() {
        let b = hex(UDP_PKT);
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.tos(), 0);
        assert_eq!(p.total_len(), 33);
        assert_eq!(p.ident(), 0x1234);
        assert!(!p.dont_frag());
        assert!(!p.more_frags());
        assert_eq!(p.frag_offset(), 0);
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), PROTO_UDP);
        assert_eq!(p.checksum(), 0x7c61);
        assert_eq!(p.src_addr(), Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(p.dst_addr(), Ipv4Addr::new(198, 51, 100, 2));
        assert_eq!(p.options(), &[] as &[u8]);
        assert_eq!(p.payload(), &b[20..]);
        assert!(p.verify_checksum());
    }

    #[test]
    fn decode_golden_options_and_fragment() {
        let b = hex(OPTS);
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.tos(), 0xb8);
        assert!(p.dont_frag());
        assert!(!p.more_frags());
        assert_eq!(p.ttl(), 17);
        assert_eq!(p.protocol(), 253);
        assert_eq!(p.options(), &[1, 1, 1, 0]);
        assert_eq!(p.payload(), b"xyz");
        assert!(p.verify_checksum());

        let b = hex(FRAG);
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert!(!p.dont_frag());
        assert!(p.more_frags());
        assert_eq!(p.frag_offset(), 185 * 8);
        assert_eq!(p.ident(), 7);
        assert_eq!(p.ttl(), 255);
        assert_eq!(p.payload(), &[0xaa; 8]);
        assert!(p.verify_checksum());
    }

    #[test]
    fn payload_ignores_ethernet_padding() {
        let mut b = hex(UDP_PKT);
        b.extend_from_slice(&[0; 13]);
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.payload().len(), 13);
    }

    #[test]
    fn encode_golden_with_setters() {
        for golden in [OPTS, FRAG] {
            let g = hex(golden);
            let src = Ipv4Packet::new_checked(&g[..]).unwrap();
            let mut buf = vec![0u8; g.len()];
            let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
            p.set_version(4);
            p.set_header_len(src.header_len());
            p.set_tos(src.tos());
            p.set_total_len(src.total_len());
            p.set_ident(src.ident());
            p.set_flags_and_offset(src.dont_frag(), src.more_frags(), src.frag_offset());
            p.set_ttl(src.ttl());
            p.set_protocol(src.protocol());
            p.set_src_addr(src.src_addr());
            p.set_dst_addr(src.dst_addr());
            buf[20..src.header_len()].copy_from_slice(src.options());
            let mut p = Ipv4Packet::new_checked(&mut buf[..]).unwrap();
            p.payload_mut().copy_from_slice(src.payload());
            p.fill_checksum();
            assert_eq!(buf, g, "{golden}");
        }
    }

    #[test]
    fn emit_header_matches_golden() {
        let mut buf = [0x55u8; 24];
        emit_header(
            &mut buf,
            Ipv4Addr::new(192, 168, 1, 10),
            Ipv4Addr::new(172, 16, 0, 1),
            PROTO_TCP,
            64,
            100,
            0xabcd,
        )
        .unwrap();
        assert_eq!(&buf[..20], &hex(EMIT)[..]);
        assert_eq!(&buf[20..], &[0x55; 4], "wrote past the header");

        let mut buf = [0u8; 20];
        emit_header(
            &mut buf,
            Ipv4Addr::new(192, 0, 2, 1),
            Ipv4Addr::new(198, 51, 100, 2),
            PROTO_UDP,
            64,
            13,
            0x1234,
        )
        .unwrap();
        assert_eq!(&buf[..], &hex(UDP_PKT)[..20]);
    }

    #[test]
    fn emit_header_errors() {
        let a = Ipv4Addr::new(10, 0, 0, 1);
        let mut short = [0u8; 19];
        assert_eq!(
            emit_header(&mut short, a, a, PROTO_UDP, 64, 0, 0),
            Err(WireError::Truncated)
        );
        let mut buf = [0u8; 20];
        assert_eq!(
            emit_header(&mut buf, a, a, PROTO_UDP, 64, 65516, 0),
            Err(WireError::BadTotalLen)
        );
        assert!(emit_header(&mut buf, a, a, PROTO_UDP, 64, 65515, 0).is_ok());
    }

    #[test]
    fn new_checked_errors() {
        let good = hex(UDP_PKT);
        let check = |b: &[u8]| Ipv4Packet::new_checked(b).map(|_| ());
        assert_eq!(check(&good), Ok(()));
        assert_eq!(check(&good[..19]), Err(WireError::Truncated));
        assert_eq!(check(&[]), Err(WireError::Truncated));

        let mut v6 = good.clone();
        v6[0] = 0x65;
        assert_eq!(check(&v6), Err(WireError::BadVersion));

        let mut ihl4 = good.clone();
        ihl4[0] = 0x44;
        assert_eq!(check(&ihl4), Err(WireError::BadHeaderLen));
        // IHL 15 = 60 bytes > 33-byte buffer.
        let mut ihl15 = good.clone();
        ihl15[0] = 0x4f;
        assert_eq!(check(&ihl15), Err(WireError::BadHeaderLen));

        // total_len below the header.
        let mut small = good.clone();
        small[2..4].copy_from_slice(&19u16.to_be_bytes());
        assert_eq!(check(&small), Err(WireError::BadTotalLen));
        // total_len beyond the buffer.
        assert_eq!(check(&good[..32]), Err(WireError::BadTotalLen));
        // total_len == header_len is a valid empty payload.
        let mut empty = good.clone();
        empty[2..4].copy_from_slice(&20u16.to_be_bytes());
        assert_eq!(
            Ipv4Packet::new_checked(&empty[..]).unwrap().payload(),
            &[] as &[u8]
        );
    }

    #[test]
    fn verify_checksum_detects_corruption() {
        let mut b = hex(UDP_PKT);
        b[8] ^= 1;
        assert!(!Ipv4Packet::new_checked(&b[..]).unwrap().verify_checksum());
    }

    #[test]
    fn decrement_ttl_golden() {
        let mut b = hex(UDP_PKT);
        let mut p = Ipv4Packet::new_checked(&mut b[..]).unwrap();
        p.decrement_ttl();
        assert_eq!(p.ttl(), 63);
        assert!(p.verify_checksum());
        // Independent: scapy's IP(..., ttl=63, ...) has checksum 0x7d61.
        assert_eq!(p.checksum(), 0x7d61);
    }

    #[test]
    fn decrement_ttl_zero_is_noop() {
        let mut b = hex(UDP_PKT);
        b[8] = 0;
        let mut p = Ipv4Packet::new_checked(&mut b[..]).unwrap();
        p.fill_checksum();
        let before = p.checksum();
        p.decrement_ttl();
        assert_eq!((p.ttl(), p.checksum()), (0, before));
    }

    #[test]
    fn setters_beyond_buffer_do_not_make_getters_panic() {
        let mut b = hex(UDP_PKT);
        let mut p = Ipv4Packet::new_checked(&mut b[..]).unwrap();
        p.set_total_len(60000);
        p.set_header_len(60);
        assert_eq!(p.payload(), &[] as &[u8]);
        assert_eq!(p.options().len(), 13);
        assert!(p.payload_mut().is_empty());
        let _ = p.verify_checksum();
        p.fill_checksum();
    }

    fn header_strategy() -> impl Strategy<Value = [u8; 20]> {
        any::<[u8; 20]>().prop_map(|mut h| {
            h[0] = 0x45;
            h[2..4].copy_from_slice(&20u16.to_be_bytes());
            h
        })
    }

    proptest! {
        #[test]
        fn decrement_ttl_keeps_checksum_valid(mut h in header_strategy(), ttl in 1u8..=255) {
            h[8] = ttl;
            let mut p = Ipv4Packet::new_checked(&mut h[..]).unwrap();
            p.fill_checksum();
            p.decrement_ttl();
            prop_assert_eq!(p.ttl(), ttl - 1);
            prop_assert!(p.verify_checksum());
            let incremental = p.checksum();
            p.fill_checksum();
            prop_assert_eq!(incremental, p.checksum());
        }

        #[test]
        fn incremental_address_rewrite_matches_recompute(
            mut h in header_strategy(),
            new_src in any::<u32>(),
            new_ident in any::<u16>(),
        ) {
            let mut p = Ipv4Packet::new_checked(&mut h[..]).unwrap();
            p.fill_checksum();
            let old_src = u32::from(p.src_addr());
            let old_ident = p.ident();
            let mut csum = checksum::update32(p.checksum(), old_src, new_src);
            csum = checksum::update16(csum, old_ident, new_ident);
            p.set_src_addr(Ipv4Addr::from(new_src));
            p.set_ident(new_ident);
            p.set_checksum(csum);
            prop_assert!(p.verify_checksum());
            p.fill_checksum();
            prop_assert_eq!(csum, p.checksum());
        }
    }
}
