//! TCP (RFC 9293): the [`TcpPacket`] view over a segment, with checksums
//! over the IPv4 pseudo header.

use std::net::Ipv4Addr;

use super::checksum;
use super::ipv4::PROTO_TCP;
use super::{get_u16, get_u32, set_u16, set_u32, Result, WireError};

// Flag bits of the flags byte (offset 13), as returned by `flags()`: `u8`.
// The experimental NS bit (low bit of offset 12) is not included.
pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;
pub const URG: u8 = 0x20;
pub const ECE: u8 = 0x40;
pub const CWR: u8 = 0x80;

/// Header length without options.
pub const MIN_HEADER_LEN: usize = 20;

mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const SEQ: usize = 4;
    pub const ACK: usize = 8;
    pub const DATA_OFFSET: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: usize = 14;
    pub const CHECKSUM: usize = 16;
    pub const URGENT: usize = 18;
}

/// A view over a TCP segment. TCP has no length field: the buffer must be
/// exactly the segment (the IP payload), and the checksum covers all of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpPacket<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps `buffer`: `Truncated` below 20 bytes, `BadHeaderLen` if the
    /// data offset is below 5 or the header extends beyond the buffer.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < MIN_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let header_len = usize::from(b[field::DATA_OFFSET] >> 4) * 4;
        if header_len < MIN_HEADER_LEN || header_len > b.len() {
            return Err(WireError::BadHeaderLen);
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

    #[inline]
    pub fn seq_number(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::SEQ)
    }

    #[inline]
    pub fn ack_number(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::ACK)
    }

    /// Header length in bytes (data offset * 4), options included.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::DATA_OFFSET] >> 4) * 4
    }

    /// The flags byte; test with the `FIN`..`CWR` constants.
    #[inline]
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    #[inline]
    pub fn window(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::WINDOW)
    }

    #[inline]
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    #[inline]
    pub fn urgent(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::URGENT)
    }

    /// Option bytes between the fixed header and `header_len()`.
    #[inline]
    pub fn options(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        let (start, end) = self.options_range(b.len());
        &b[start..end]
    }

    /// Everything after the header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        &b[self.header_len().min(b.len())..]
    }

    /// True if the checksum over pseudo header and the whole buffer
    /// verifies.
    #[inline]
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        checksum::fold(self.segment_sum(src, dst)) == 0xffff
    }

    /// Options bounds clamped to the buffer, so no setter can make
    /// `options()` panic.
    #[inline]
    fn options_range(&self, buf_len: usize) -> (usize, usize) {
        let end = self.header_len().min(buf_len);
        (MIN_HEADER_LEN.min(end), end)
    }

    #[inline]
    fn segment_sum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> u32 {
        let b = self.buffer.as_ref();
        // A segment longer than 65535 bytes cannot come from one IPv4 packet;
        // the truncated length just makes the checksum fail.
        checksum::combine(
            checksum::pseudo_header_v4(src, dst, PROTO_TCP, b.len() as u16),
            checksum::sum(b),
        )
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    #[inline]
    pub fn set_src_port(&mut self, port: u16) {
        set_u16(self.buffer.as_mut(), field::SRC_PORT, port)
    }

    #[inline]
    pub fn set_dst_port(&mut self, port: u16) {
        set_u16(self.buffer.as_mut(), field::DST_PORT, port)
    }

    #[inline]
    pub fn set_seq_number(&mut self, seq: u32) {
        set_u32(self.buffer.as_mut(), field::SEQ, seq)
    }

    #[inline]
    pub fn set_ack_number(&mut self, ack: u32) {
        set_u32(self.buffer.as_mut(), field::ACK, ack)
    }

    /// Sets the data offset from a length in bytes (a multiple of 4,
    /// 20..=60), keeping the reserved/NS bits.
    #[inline]
    pub fn set_header_len(&mut self, bytes: usize) {
        let b = self.buffer.as_mut();
        b[field::DATA_OFFSET] = (((bytes / 4) as u8) << 4) | (b[field::DATA_OFFSET] & 0x0f);
    }

    #[inline]
    pub fn set_flags(&mut self, flags: u8) {
        self.buffer.as_mut()[field::FLAGS] = flags;
    }

    #[inline]
    pub fn set_window(&mut self, window: u16) {
        set_u16(self.buffer.as_mut(), field::WINDOW, window)
    }

    #[inline]
    pub fn set_checksum(&mut self, csum: u16) {
        set_u16(self.buffer.as_mut(), field::CHECKSUM, csum)
    }

    #[inline]
    pub fn set_urgent(&mut self, urgent: u16) {
        set_u16(self.buffer.as_mut(), field::URGENT, urgent)
    }

    #[inline]
    pub fn options_mut(&mut self) -> &mut [u8] {
        let (start, end) = self.options_range(self.buffer.as_ref().len());
        &mut self.buffer.as_mut()[start..end]
    }

    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len().min(self.buffer.as_ref().len());
        &mut self.buffer.as_mut()[start..]
    }

    /// Computes and writes the checksum over pseudo header and segment.
    #[inline]
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let csum = !checksum::fold(self.segment_sum(src, dst));
        self.set_checksum(csum);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::hex;
    use proptest::prelude::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
    // Made with scapy (/usr/bin/python3): the TCP part (from byte 20) of
    // bytes(IP(src="192.0.2.1", dst="198.51.100.2", id=1)/TCP(sport=12345,
    //   dport=80, seq=0x01020304, ack=0x05060708, flags="SA", window=65535,
    //   options=[("MSS",1460),("NOP",None),("NOP",None),("SAckOK",b"")])/b"GET /")
    const SYNACK: &str = "3039005001020304050607087012ffff8bd00000020405b401010402474554202f";
    // The TCP part of bytes(IP(src="10.0.0.1", dst="10.0.0.2", id=2)/
    //   TCP(sport=443, dport=50000, seq=1000, ack=2000, flags="FPAU",
    //   window=512, urgptr=3)/b"abc")
    const FPAU: &str = "01bbc350000003e8000007d050390200047d0003616263";
    const FSRC: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const FDST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    #[test]
    fn decode_golden_with_options() {
        let b = hex(SYNACK);
        let p = TcpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(p.src_port(), 12345);
        assert_eq!(p.dst_port(), 80);
        assert_eq!(p.seq_number(), 0x0102_0304);
        assert_eq!(p.ack_number(), 0x0506_0708);
        assert_eq!(p.header_len(), 28);
        assert_eq!(p.flags(), SYN | ACK);
        assert_eq!(p.window(), 65535);
        assert_eq!(p.checksum(), 0x8bd0);
        assert_eq!(p.urgent(), 0);
        assert_eq!(p.options(), &[2, 4, 0x05, 0xb4, 1, 1, 4, 2]);
        assert_eq!(p.payload(), b"GET /");
        assert!(p.verify_checksum(SRC, DST));
        // Swapping src and dst would not change the sum; a different address does.
        assert!(!p.verify_checksum(SRC, Ipv4Addr::new(198, 51, 100, 3)));
    }

    #[test]
    fn decode_golden_flags() {
        let b = hex(FPAU);
        let p = TcpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(p.flags(), FIN | PSH | ACK | URG);
        assert_eq!(p.flags() & (SYN | RST | ECE | CWR), 0);
        assert_eq!((p.seq_number(), p.ack_number()), (1000, 2000));
        assert_eq!((p.window(), p.urgent()), (512, 3));
        assert_eq!(p.options(), &[] as &[u8]);
        assert_eq!(p.payload(), b"abc");
        assert!(p.verify_checksum(FSRC, FDST));
    }

    #[test]
    fn encode_golden() {
        let g = hex(SYNACK);
        let mut buf = vec![0u8; g.len()];
        let mut p = TcpPacket::new_unchecked(&mut buf[..]);
        p.set_src_port(12345);
        p.set_dst_port(80);
        p.set_seq_number(0x0102_0304);
        p.set_ack_number(0x0506_0708);
        p.set_header_len(28);
        p.set_flags(SYN | ACK);
        p.set_window(65535);
        p.set_urgent(0);
        p.options_mut()
            .copy_from_slice(&[2, 4, 0x05, 0xb4, 1, 1, 4, 2]);
        p.payload_mut().copy_from_slice(b"GET /");
        p.fill_checksum(SRC, DST);
        assert_eq!(buf, g);

        let g = hex(FPAU);
        let mut buf = vec![0xffu8; g.len()];
        let mut p = TcpPacket::new_unchecked(&mut buf[..]);
        p.set_src_port(443);
        p.set_dst_port(50000);
        p.set_seq_number(1000);
        p.set_ack_number(2000);
        buf[12] = 0; // clear the reserved bits the 0xff fill left
        let mut p = TcpPacket::new_unchecked(&mut buf[..]);
        p.set_header_len(20);
        p.set_flags(FIN | PSH | ACK | URG);
        p.set_window(512);
        p.set_urgent(3);
        p.payload_mut().copy_from_slice(b"abc");
        p.fill_checksum(FSRC, FDST);
        assert_eq!(buf, g);
    }

    #[test]
    fn new_checked_errors() {
        let b = hex(SYNACK);
        assert_eq!(TcpPacket::new_checked(&b[..19]), Err(WireError::Truncated));
        // Data offset 7 (28 bytes) beyond a 27-byte buffer.
        assert_eq!(
            TcpPacket::new_checked(&b[..27]),
            Err(WireError::BadHeaderLen)
        );
        assert!(TcpPacket::new_checked(&b[..28]).is_ok());
        let mut small = b.clone();
        small[12] = 0x40;
        assert_eq!(
            TcpPacket::new_checked(&small[..]),
            Err(WireError::BadHeaderLen)
        );
    }

    #[test]
    fn bad_header_len_setter_does_not_make_getters_panic() {
        let mut b = hex(FPAU);
        let mut p = TcpPacket::new_checked(&mut b[..]).unwrap();
        p.set_header_len(60);
        assert_eq!(p.options().len(), 3);
        assert_eq!(p.payload(), &[] as &[u8]);
        p.set_header_len(0);
        assert_eq!(p.options(), &[] as &[u8]);
        assert_eq!(p.payload().len(), 23);
    }

    proptest! {
        /// NAT-style rewrite: port and address changes patched in with
        /// update16/update32 (the address only lives in the pseudo header)
        /// give the same checksum as a full recomputation.
        #[test]
        fn incremental_nat_rewrite_matches_recompute(
            new_port in any::<u16>(),
            new_src in any::<u32>(),
            new_seq in any::<u32>(),
        ) {
            let mut b = hex(SYNACK);
            let mut p = TcpPacket::new_checked(&mut b[..]).unwrap();
            let mut csum = p.checksum();
            csum = checksum::update16(csum, p.src_port(), new_port);
            csum = checksum::update32(csum, u32::from(SRC), new_src);
            csum = checksum::update32(csum, p.seq_number(), new_seq);
            p.set_src_port(new_port);
            p.set_seq_number(new_seq);
            p.set_checksum(csum);
            let new_src = Ipv4Addr::from(new_src);
            prop_assert!(p.verify_checksum(new_src, DST));
            p.fill_checksum(new_src, DST);
            prop_assert_eq!(csum, p.checksum());
        }
    }
}
