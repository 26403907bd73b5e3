//! ICMPv4 (RFC 792): the [`Icmpv4Packet`] view over the ICMP header and
//! data (echo, destination unreachable, time exceeded, ...).

use super::checksum;
use super::{get_u16, get_u32, set_u16, set_u32, Result, WireError};

pub const TYPE_ECHO_REPLY: u8 = 0;
pub const TYPE_DEST_UNREACHABLE: u8 = 3;
pub const TYPE_SOURCE_QUENCH: u8 = 4;
pub const TYPE_REDIRECT: u8 = 5;
pub const TYPE_ECHO_REQUEST: u8 = 8;
pub const TYPE_TIME_EXCEEDED: u8 = 11;
pub const TYPE_PARAMETER_PROBLEM: u8 = 12;

/// Codes of `TYPE_DEST_UNREACHABLE`.
pub const CODE_NET_UNREACHABLE: u8 = 0;
pub const CODE_HOST_UNREACHABLE: u8 = 1;
pub const CODE_PROTO_UNREACHABLE: u8 = 2;
pub const CODE_PORT_UNREACHABLE: u8 = 3;
pub const CODE_FRAG_NEEDED: u8 = 4;
/// Code of `TYPE_TIME_EXCEEDED`: TTL exceeded in transit.
pub const CODE_TTL_EXCEEDED: u8 = 0;

/// Type, code, checksum and the 4-byte rest of header.
pub const HEADER_LEN: usize = 8;

mod field {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: usize = 2;
    pub const IDENT: usize = 4;
    pub const SEQ_NO: usize = 6;
    pub const REST: usize = 4;
    pub const UNUSED: usize = 4;
    pub const NEXT_HOP_MTU: usize = 6;
}

/// True for ICMP error messages (those that quote an offending datagram
/// and must never be answered with another error): destination
/// unreachable, source quench, redirect, time exceeded, parameter problem.
#[inline]
pub fn is_error(msg_type: u8) -> bool {
    matches!(
        msg_type,
        TYPE_DEST_UNREACHABLE
            | TYPE_SOURCE_QUENCH
            | TYPE_REDIRECT
            | TYPE_TIME_EXCEEDED
            | TYPE_PARAMETER_PROBLEM
    )
}

/// A view over an ICMPv4 message; the buffer is the whole message (the IP
/// payload), which the checksum covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Icmpv4Packet<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv4Packet<T> {
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

    /// Echo identifier (bytes 4..6).
    #[inline]
    pub fn ident(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::IDENT)
    }

    /// Echo sequence number (bytes 6..8).
    #[inline]
    pub fn seq_no(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::SEQ_NO)
    }

    /// Bytes 4..8 as one number, whatever the type uses them for.
    #[inline]
    pub fn rest_of_header(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::REST)
    }

    /// Next-hop MTU of a fragmentation-needed message (RFC 1191).
    #[inline]
    pub fn next_hop_mtu(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::NEXT_HOP_MTU)
    }

    /// Everything after the 8-byte header (echo data, or the quoted
    /// datagram of an error).
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }

    /// True if the checksum over the whole buffer verifies.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::fold(checksum::sum(self.buffer.as_ref())) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv4Packet<T> {
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

    /// Writes the RFC 1191 layout: two unused zero bytes, then the MTU.
    #[inline]
    pub fn set_next_hop_mtu(&mut self, mtu: u16) {
        let b = self.buffer.as_mut();
        set_u16(b, field::UNUSED, 0);
        set_u16(b, field::NEXT_HOP_MTU, mtu);
    }

    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }

    /// Computes the checksum over the whole buffer and writes it.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let csum = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(csum);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::hex;

    // Made with scapy (/usr/bin/python3), bytes(...).hex():
    // ECHO: ICMP(type=8, id=0x1234, seq=1)/b"abcdefgh"
    const ECHO: &str = "08005435123400016162636465666768";
    // Quoted datagram for the errors: the first 28 bytes of
    // IP(src="10.0.0.1", dst="10.9.9.9", id=1)/UDP(sport=1111, dport=2222)
    const QUOTE: &str = "4500001c0001000040115dbe0a0000010a090909045708ae0008d5c6";
    // FRAG_NEEDED: ICMP(type=3, code=4, nexthopmtu=1400)/QUOTE
    const FRAG_NEEDED: &str = "030414b0000005784500001c0001000040115dbe0a0000010a090909\
                               045708ae0008d5c6";
    // TTL: ICMP(type=11, code=0)/QUOTE
    const TTL: &str = "0b00122c000000004500001c0001000040115dbe0a0000010a090909\
                       045708ae0008d5c6";

    #[test]
    fn decode_golden_echo() {
        let b = hex(ECHO);
        let p = Icmpv4Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.msg_type(), TYPE_ECHO_REQUEST);
        assert_eq!(p.code(), 0);
        assert_eq!(p.checksum(), 0x5435);
        assert_eq!(p.ident(), 0x1234);
        assert_eq!(p.seq_no(), 1);
        assert_eq!(p.rest_of_header(), 0x1234_0001);
        assert_eq!(p.data(), b"abcdefgh");
        assert!(p.verify_checksum());
        assert!(!is_error(p.msg_type()));
    }

    #[test]
    fn decode_golden_errors() {
        let b = hex(FRAG_NEEDED);
        let p = Icmpv4Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.msg_type(), TYPE_DEST_UNREACHABLE);
        assert_eq!(p.code(), CODE_FRAG_NEEDED);
        assert_eq!(p.next_hop_mtu(), 1400);
        assert_eq!(p.data(), &hex(QUOTE)[..]);
        assert!(p.verify_checksum());
        assert!(is_error(p.msg_type()));

        let b = hex(TTL);
        let p = Icmpv4Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.msg_type(), TYPE_TIME_EXCEEDED);
        assert_eq!(p.code(), CODE_TTL_EXCEEDED);
        assert_eq!(p.rest_of_header(), 0);
        assert!(p.verify_checksum());
        assert!(is_error(p.msg_type()));
    }

    #[test]
    fn encode_golden_echo() {
        let mut buf = [0xffu8; 16];
        let mut p = Icmpv4Packet::new_checked(&mut buf[..]).unwrap();
        p.set_msg_type(TYPE_ECHO_REQUEST);
        p.set_code(0);
        p.set_ident(0x1234);
        p.set_seq_no(1);
        p.data_mut().copy_from_slice(b"abcdefgh");
        p.fill_checksum();
        assert_eq!(&buf[..], &hex(ECHO)[..]);
    }

    #[test]
    fn encode_golden_errors() {
        let quote = hex(QUOTE);
        let mut buf = vec![0xffu8; 8 + quote.len()];
        let mut p = Icmpv4Packet::new_checked(&mut buf[..]).unwrap();
        p.set_msg_type(TYPE_DEST_UNREACHABLE);
        p.set_code(CODE_FRAG_NEEDED);
        p.set_next_hop_mtu(1400);
        p.data_mut().copy_from_slice(&quote);
        p.fill_checksum();
        assert_eq!(buf, hex(FRAG_NEEDED));

        let mut p = Icmpv4Packet::new_checked(&mut buf[..]).unwrap();
        p.set_msg_type(TYPE_TIME_EXCEEDED);
        p.set_code(CODE_TTL_EXCEEDED);
        p.set_rest_of_header(0);
        p.fill_checksum();
        assert_eq!(buf, hex(TTL));
    }

    #[test]
    fn new_checked_and_verify_errors() {
        let b = hex(ECHO);
        assert_eq!(
            Icmpv4Packet::new_checked(&b[..7]),
            Err(WireError::Truncated)
        );
        assert!(Icmpv4Packet::new_checked(&b[..8]).is_ok());
        // Truncating the data breaks the checksum.
        assert!(!Icmpv4Packet::new_checked(&b[..15])
            .unwrap()
            .verify_checksum());
        let mut bad = b.clone();
        bad[10] ^= 0x20;
        assert!(!Icmpv4Packet::new_checked(&bad[..])
            .unwrap()
            .verify_checksum());
    }

    #[test]
    fn error_types() {
        for t in [3, 4, 5, 11, 12] {
            assert!(is_error(t), "{t}");
        }
        for t in [0, 8, 13, 14, 255] {
            assert!(!is_error(t), "{t}");
        }
    }
}
