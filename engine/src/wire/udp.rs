//! UDP (RFC 768): the [`UdpPacket`] view, with checksums over the IPv4
//! pseudo header.

use std::net::Ipv4Addr;

use super::checksum;
use super::ipv4::PROTO_UDP;
use super::{get_u16, set_u16, Result, WireError};

/// The UDP header length.
pub const HEADER_LEN: usize = 8;

mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const LENGTH: usize = 4;
    pub const CHECKSUM: usize = 6;
}

/// A view over a UDP datagram. After `new_checked`, the length field is
/// within `8..=buffer.len()`; bytes past it are ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpPacket<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps `buffer`: `Truncated` below 8 bytes, `BadTotalLen` if the
    /// length field is below 8 or beyond the buffer.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let len = usize::from(get_u16(b, field::LENGTH));
        if len < HEADER_LEN || len > b.len() {
            return Err(WireError::BadTotalLen);
        }
        Ok(Self { buffer })
    }

    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn src_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::SRC_PORT)
    }

    #[inline]
    pub fn dst_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::DST_PORT)
    }

    /// The length field: header plus payload, in bytes.
    #[inline]
    pub fn len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// True if the length field says there is no payload.
    #[inline]
    pub fn is_empty(&self) -> bool {
        usize::from(self.len()) <= HEADER_LEN
    }

    /// The checksum field; 0 means the sender computed none.
    #[inline]
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// The payload, up to the length field.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        let end = self.datagram_end(b.len());
        &b[HEADER_LEN.min(end)..end]
    }

    /// True if the checksum verifies against the pseudo header, or if it
    /// is 0 (no checksum, allowed over IPv4).
    #[inline]
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        if self.checksum() == 0 {
            return true;
        }
        checksum::fold(self.datagram_sum(src, dst)) == 0xffff
    }

    /// Length field clamped to the buffer (cannot panic after any setter).
    #[inline]
    fn datagram_end(&self, buf_len: usize) -> usize {
        usize::from(self.len()).min(buf_len)
    }

    #[inline]
    fn datagram_sum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> u32 {
        let b = self.buffer.as_ref();
        let end = self.datagram_end(b.len());
        checksum::combine(
            checksum::pseudo_header_v4(src, dst, PROTO_UDP, end as u16),
            checksum::sum(&b[..end]),
        )
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    #[inline]
    pub fn set_src_port(&mut self, port: u16) {
        set_u16(self.buffer.as_mut(), field::SRC_PORT, port)
    }

    #[inline]
    pub fn set_dst_port(&mut self, port: u16) {
        set_u16(self.buffer.as_mut(), field::DST_PORT, port)
    }

    #[inline]
    pub fn set_len(&mut self, len: u16) {
        set_u16(self.buffer.as_mut(), field::LENGTH, len)
    }

    #[inline]
    pub fn set_checksum(&mut self, csum: u16) {
        set_u16(self.buffer.as_mut(), field::CHECKSUM, csum)
    }

    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = self.datagram_end(self.buffer.as_ref().len());
        &mut self.buffer.as_mut()[HEADER_LEN.min(end)..end]
    }

    /// Computes and writes the checksum over pseudo header, header and
    /// payload; a computed 0 is sent as 0xffff (0 means "none").
    #[inline]
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let csum = !checksum::fold(self.datagram_sum(src, dst));
        self.set_checksum(if csum == 0 { 0xffff } else { csum });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::hex;

    const SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
    // Made with scapy (/usr/bin/python3): the UDP part of
    // bytes(IP(src="192.0.2.1", dst="198.51.100.2")/UDP(sport=1234, dport=53)/b"hello")
    const DNS: &str = "04d20035000dcac368656c6c6f";
    // A datagram whose checksum computes to 0 and is sent as 0xffff; scapy:
    // c = IP(bytes(IP(src="10.0.0.1", dst="10.0.0.2")/UDP(sport=1000, dport=2000)
    //       /b"\0\0ab"))[UDP].chksum  (0x7eb9), then the UDP part of
    // IP(src="10.0.0.1", dst="10.0.0.2")/UDP(sport=1000, dport=2000)/(c.to_bytes(2,"big")+b"ab")
    const ZERO_SUM: &str = "03e807d0000cffff7eb96162";
    const ZSRC: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const ZDST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    #[test]
    fn decode_golden() {
        let b = hex(DNS);
        let p = UdpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(p.src_port(), 1234);
        assert_eq!(p.dst_port(), 53);
        assert_eq!(p.len(), 13);
        assert!(!p.is_empty());
        assert_eq!(p.checksum(), 0xcac3);
        assert_eq!(p.payload(), b"hello");
        assert!(p.verify_checksum(SRC, DST));
        // Wrong pseudo header: fails.
        assert!(!p.verify_checksum(SRC, Ipv4Addr::new(198, 51, 100, 3)));
    }

    #[test]
    fn encode_golden() {
        let mut buf = [0xaau8; 13];
        let mut p = UdpPacket::new_unchecked(&mut buf[..]);
        p.set_src_port(1234);
        p.set_dst_port(53);
        p.set_len(13);
        p.payload_mut().copy_from_slice(b"hello");
        p.fill_checksum(SRC, DST);
        assert_eq!(&buf[..], &hex(DNS)[..]);
    }

    #[test]
    fn computed_zero_is_sent_as_ffff() {
        let golden = hex(ZERO_SUM);
        let mut buf = golden.clone();
        let mut p = UdpPacket::new_checked(&mut buf[..]).unwrap();
        p.set_checksum(0x1234);
        p.fill_checksum(ZSRC, ZDST);
        assert_eq!(p.checksum(), 0xffff);
        assert!(p.verify_checksum(ZSRC, ZDST));
        assert_eq!(buf, golden);
    }

    #[test]
    fn zero_checksum_means_none() {
        let mut b = hex(DNS);
        b[6] = 0;
        b[7] = 0;
        let p = UdpPacket::new_checked(&b[..]).unwrap();
        assert!(p.verify_checksum(SRC, DST));
        b[6] = 0x12;
        assert!(!UdpPacket::new_checked(&b[..])
            .unwrap()
            .verify_checksum(SRC, DST));
    }

    #[test]
    fn new_checked_errors_and_padding() {
        let b = hex(DNS);
        assert_eq!(UdpPacket::new_checked(&b[..7]), Err(WireError::Truncated));
        // Length field 13 beyond a 12-byte buffer.
        assert_eq!(
            UdpPacket::new_checked(&b[..12]),
            Err(WireError::BadTotalLen)
        );
        let mut small = b.clone();
        small[4..6].copy_from_slice(&7u16.to_be_bytes());
        assert_eq!(
            UdpPacket::new_checked(&small[..]),
            Err(WireError::BadTotalLen)
        );
        // Padding after the datagram is ignored by payload and checksum.
        let mut padded = b.clone();
        padded.extend_from_slice(&[0x77; 5]);
        let p = UdpPacket::new_checked(&padded[..]).unwrap();
        assert_eq!(p.payload(), b"hello");
        assert!(p.verify_checksum(SRC, DST));
        // Empty datagram.
        let mut empty = [0u8; 8];
        empty[5] = 8;
        let p = UdpPacket::new_checked(&empty[..]).unwrap();
        assert!(p.is_empty());
        assert_eq!(p.payload(), &[] as &[u8]);
    }

    #[test]
    fn bad_len_setter_does_not_make_getters_panic() {
        let mut b = hex(DNS);
        let mut p = UdpPacket::new_checked(&mut b[..]).unwrap();
        p.set_len(3);
        assert_eq!(p.payload(), &[] as &[u8]);
        p.set_len(60000);
        assert_eq!(p.payload(), b"hello");
        p.fill_checksum(SRC, DST);
        assert!(p.verify_checksum(SRC, DST));
    }
}
