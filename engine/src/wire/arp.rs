//! ARP for IPv4 over Ethernet (RFC 826): the [`ArpPacket`] view and [`emit`].

use std::net::Ipv4Addr;

use super::{get_ipv4, get_mac, get_u16, set_ipv4, set_mac, set_u16, Result, WireError};

pub const OP_REQUEST: u16 = 1;
pub const OP_REPLY: u16 = 2;

/// Hardware type Ethernet.
const HTYPE_ETHERNET: u16 = 1;
/// Protocol type IPv4 (an EtherType).
const PTYPE_IPV4: u16 = 0x0800;

mod field {
    pub const HTYPE: usize = 0;
    pub const PTYPE: usize = 2;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: usize = 6;
    pub const SHA: usize = 8;
    pub const SPA: usize = 14;
    pub const THA: usize = 18;
    pub const TPA: usize = 24;
}

/// A view over an Ethernet/IPv4 ARP packet (exactly the first 28 bytes are
/// used; Ethernet padding after them is ignored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArpPacket<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Length of an Ethernet/IPv4 ARP packet.
    pub const LEN: usize = 28;

    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps `buffer`: `Truncated` below 28 bytes, `Malformed` unless it is
    /// Ethernet (htype 1, hlen 6) / IPv4 (ptype 0x0800, plen 4).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < Self::LEN {
            return Err(WireError::Truncated);
        }
        if get_u16(b, field::HTYPE) != HTYPE_ETHERNET
            || get_u16(b, field::PTYPE) != PTYPE_IPV4
            || b[field::HLEN] != 6
            || b[field::PLEN] != 4
        {
            return Err(WireError::Malformed);
        }
        Ok(Self { buffer })
    }

    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn operation(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::OPER)
    }

    #[inline]
    pub fn sender_hw(&self) -> [u8; 6] {
        get_mac(self.buffer.as_ref(), field::SHA)
    }

    #[inline]
    pub fn sender_ip(&self) -> Ipv4Addr {
        get_ipv4(self.buffer.as_ref(), field::SPA)
    }

    #[inline]
    pub fn target_hw(&self) -> [u8; 6] {
        get_mac(self.buffer.as_ref(), field::THA)
    }

    #[inline]
    pub fn target_ip(&self) -> Ipv4Addr {
        get_ipv4(self.buffer.as_ref(), field::TPA)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    #[inline]
    pub fn set_operation(&mut self, op: u16) {
        set_u16(self.buffer.as_mut(), field::OPER, op)
    }

    #[inline]
    pub fn set_sender_hw(&mut self, mac: [u8; 6]) {
        set_mac(self.buffer.as_mut(), field::SHA, mac)
    }

    #[inline]
    pub fn set_sender_ip(&mut self, ip: Ipv4Addr) {
        set_ipv4(self.buffer.as_mut(), field::SPA, ip)
    }

    #[inline]
    pub fn set_target_hw(&mut self, mac: [u8; 6]) {
        set_mac(self.buffer.as_mut(), field::THA, mac)
    }

    #[inline]
    pub fn set_target_ip(&mut self, ip: Ipv4Addr) {
        set_ipv4(self.buffer.as_mut(), field::TPA, ip)
    }
}

/// Writes a complete 28-byte Ethernet/IPv4 ARP packet at the start of `buf`
/// (`Truncated` if it is shorter).
#[inline]
pub fn emit(
    buf: &mut [u8],
    op: u16,
    sender_hw: [u8; 6],
    sender_ip: Ipv4Addr,
    target_hw: [u8; 6],
    target_ip: Ipv4Addr,
) -> Result<()> {
    if buf.len() < ArpPacket::<&[u8]>::LEN {
        return Err(WireError::Truncated);
    }
    set_u16(buf, field::HTYPE, HTYPE_ETHERNET);
    set_u16(buf, field::PTYPE, PTYPE_IPV4);
    buf[field::HLEN] = 6;
    buf[field::PLEN] = 4;
    let mut p = ArpPacket::new_unchecked(buf);
    p.set_operation(op);
    p.set_sender_hw(sender_hw);
    p.set_sender_ip(sender_ip);
    p.set_target_hw(target_hw);
    p.set_target_ip(target_ip);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::hex;

    // Made with scapy (/usr/bin/python3):
    // bytes(ARP(op=1, hwsrc="02:00:00:00:00:01", psrc="10.0.0.1",
    //           hwdst="00:00:00:00:00:00", pdst="10.0.0.2")).hex()
    const REQUEST: &str = "00010800060400010200000000010a0000010000000000000a000002";
    // bytes(ARP(op=2, hwsrc="02:00:00:00:00:02", psrc="10.0.0.2",
    //           hwdst="02:00:00:00:00:01", pdst="10.0.0.1")).hex()
    const REPLY: &str = "00010800060400020200000000020a0000020200000000010a000001";

    const MAC1: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const MAC2: [u8; 6] = [2, 0, 0, 0, 0, 2];
    const IP1: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const IP2: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    #[test]
    fn decode_golden_request_and_reply() {
        let req = hex(REQUEST);
        let p = ArpPacket::new_checked(&req[..]).unwrap();
        assert_eq!(p.operation(), OP_REQUEST);
        assert_eq!(p.sender_hw(), MAC1);
        assert_eq!(p.sender_ip(), IP1);
        assert_eq!(p.target_hw(), [0; 6]);
        assert_eq!(p.target_ip(), IP2);

        let rep = hex(REPLY);
        let p = ArpPacket::new_checked(&rep[..]).unwrap();
        assert_eq!(p.operation(), OP_REPLY);
        assert_eq!(p.sender_hw(), MAC2);
        assert_eq!(p.sender_ip(), IP2);
        assert_eq!(p.target_hw(), MAC1);
        assert_eq!(p.target_ip(), IP1);
    }

    #[test]
    fn emit_matches_golden() {
        let mut buf = [0xeeu8; 28];
        emit(&mut buf, OP_REQUEST, MAC1, IP1, [0; 6], IP2).unwrap();
        assert_eq!(&buf[..], &hex(REQUEST)[..]);
        emit(&mut buf, OP_REPLY, MAC2, IP2, MAC1, IP1).unwrap();
        assert_eq!(&buf[..], &hex(REPLY)[..]);
    }

    #[test]
    fn setters_turn_request_into_reply() {
        let mut buf = hex(REQUEST);
        let mut p = ArpPacket::new_checked(&mut buf[..]).unwrap();
        p.set_operation(OP_REPLY);
        p.set_sender_hw(MAC2);
        p.set_sender_ip(IP2);
        p.set_target_hw(MAC1);
        p.set_target_ip(IP1);
        assert_eq!(buf, hex(REPLY));
    }

    #[test]
    fn new_checked_errors() {
        let good = hex(REQUEST);
        assert_eq!(
            ArpPacket::new_checked(&good[..27]),
            Err(WireError::Truncated)
        );
        // Ethernet pads ARP to 46 bytes: extra bytes are fine.
        let mut padded = good.clone();
        padded.resize(46, 0);
        assert!(ArpPacket::new_checked(&padded[..]).is_ok());
        for (at, value) in [(1, 6u8), (2, 0x86), (4, 8), (5, 16)] {
            let mut bad = good.clone();
            bad[at] = value;
            assert_eq!(
                ArpPacket::new_checked(&bad[..]),
                Err(WireError::Malformed),
                "byte {at}"
            );
        }
        let mut short = [0u8; 27];
        assert_eq!(
            emit(&mut short, OP_REQUEST, MAC1, IP1, [0; 6], IP2),
            Err(WireError::Truncated)
        );
    }
}
