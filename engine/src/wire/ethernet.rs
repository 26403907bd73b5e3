//! Ethernet II frames: the [`EthernetFrame`] view and [`parse_l2`], which
//! walks 802.1Q / 802.1ad tags to find the L3 header.

use super::{get_mac, get_u16, set_mac, set_u16, Result, WireError};

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// 802.1Q customer tag (C-tag).
pub const ETHERTYPE_VLAN: u16 = 0x8100;
/// 802.1ad service tag (S-tag), the outer tag of QinQ.
pub const ETHERTYPE_QINQ: u16 = 0x88a8;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;

/// Destination + source MAC + EtherType.
pub const HEADER_LEN: usize = 14;
/// One VLAN tag: TCI (PCP, DEI, VID) + the next EtherType.
pub const VLAN_TAG_LEN: usize = 4;
pub const BROADCAST: [u8; 6] = [0xff; 6];

mod field {
    pub const DST: usize = 0;
    pub const SRC: usize = 6;
    pub const ETHERTYPE: usize = 12;
}

/// Mask of the 12-bit VLAN identifier in a tag's TCI.
const VID_MASK: u16 = 0x0fff;

/// A view over an untagged Ethernet II frame (14-byte header). For tagged
/// frames, use [`parse_l2`] to find the L3 offset and EtherType.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EthernetFrame<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Wraps `buffer` without checking its length.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps `buffer`, failing with `Truncated` if it is shorter than the
    /// header.
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
    pub fn dst(&self) -> [u8; 6] {
        get_mac(self.buffer.as_ref(), field::DST)
    }

    #[inline]
    pub fn src(&self) -> [u8; 6] {
        get_mac(self.buffer.as_ref(), field::SRC)
    }

    #[inline]
    pub fn ethertype(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::ETHERTYPE)
    }

    /// Everything after the 14-byte header (tags included, if any).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    #[inline]
    pub fn set_dst(&mut self, mac: [u8; 6]) {
        set_mac(self.buffer.as_mut(), field::DST, mac)
    }

    #[inline]
    pub fn set_src(&mut self, mac: [u8; 6]) {
        set_mac(self.buffer.as_mut(), field::SRC, mac)
    }

    #[inline]
    pub fn set_ethertype(&mut self, ethertype: u16) {
        set_u16(self.buffer.as_mut(), field::ETHERTYPE, ethertype)
    }

    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }
}

/// What [`parse_l2`] found: the EtherType of the L3 payload, the VLAN it
/// belongs to, and where the L3 header starts in the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct L2Info {
    pub ethertype: u16,
    /// The 12-bit VID; for double-tagged frames, the inner (customer) VID.
    pub vlan: Option<u16>,
    pub l3_offset: usize,
}

/// Parses the L2 header of `frame`: untagged, one 802.1Q tag, one 802.1ad
/// S-tag, or two tags (outer 802.1ad or pre-standard 0x8100, inner 802.1Q).
/// For two tags `vlan` is the inner VID (the outer one is the provider's).
/// Errors: `Truncated` if the header or an announced tag does not fit,
/// `Unsupported` for a third tag or an S-tag inside a tag.
#[inline]
pub fn parse_l2(frame: &[u8]) -> Result<L2Info> {
    if frame.len() < HEADER_LEN {
        return Err(WireError::Truncated);
    }
    let mut ethertype = get_u16(frame, field::ETHERTYPE);
    let mut offset = HEADER_LEN;
    let mut vlan = None;
    let mut tags = 0;
    while ethertype == ETHERTYPE_VLAN || ethertype == ETHERTYPE_QINQ {
        // An S-tag is only valid as the outermost tag; at most two tags.
        if tags == 2 || (tags == 1 && ethertype == ETHERTYPE_QINQ) {
            return Err(WireError::Unsupported);
        }
        if frame.len() < offset + VLAN_TAG_LEN {
            return Err(WireError::Truncated);
        }
        vlan = Some(get_u16(frame, offset) & VID_MASK);
        ethertype = get_u16(frame, offset + 2);
        offset += VLAN_TAG_LEN;
        tags += 1;
    }
    Ok(L2Info {
        ethertype,
        vlan,
        l3_offset: offset,
    })
}

/// True for group addresses (I/G bit set), broadcast included.
#[inline]
pub fn is_multicast(mac: &[u8; 6]) -> bool {
    mac[0] & 0x01 != 0
}

#[inline]
pub fn is_broadcast(mac: &[u8; 6]) -> bool {
    *mac == BROADCAST
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::hex;

    // Golden frames made with scapy 2.x (/usr/bin/python3):
    // ETH:  bytes(Ether(dst="02:00:00:00:00:02", src="02:00:00:00:00:01")/
    //         IP(src="192.0.2.1", dst="198.51.100.2", ttl=64, id=0x1234)/
    //         UDP(sport=1234, dport=53)/b"hello").hex()
    const ETH: &str = "0200000000020200000000010800450000211234000040117c61c0000201\
                       c633640204d20035000dcac368656c6c6f";
    // VLAN: Ether(dst="ff:ff:ff:ff:ff:ff", src="02:00:00:00:00:01")/
    //         Dot1Q(vlan=100, prio=5)/ARP(op=1, hwsrc="02:00:00:00:00:01",
    //         psrc="10.0.0.1", pdst="10.0.0.2")
    const VLAN: &str = "ffffffffffff0200000000018100a0640806000108000604000102000000\
                        00010a0000010000000000000a000002";
    // QINQ: Ether(dst="02:00:00:00:00:02", src="02:00:00:00:00:01", type=0x88a8)/
    //         Dot1AD(vlan=10)/Dot1Q(vlan=20)/IP(src="10.0.0.1", dst="10.0.0.2")/ICMP()
    const QINQ: &str = "02000000000202000000000188a8000a8100001408004500001c00010000\
                        400166de0a0000010a0000020800f7ff00000000";

    const MAC1: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const MAC2: [u8; 6] = [2, 0, 0, 0, 0, 2];

    #[test]
    fn decode_golden_frame() {
        let bytes = hex(ETH);
        let f = EthernetFrame::new_checked(&bytes[..]).unwrap();
        assert_eq!(f.dst(), MAC2);
        assert_eq!(f.src(), MAC1);
        assert_eq!(f.ethertype(), ETHERTYPE_IPV4);
        assert_eq!(f.payload(), &bytes[14..]);
        assert_eq!(f.payload()[0], 0x45);
    }

    #[test]
    fn encode_golden_frame() {
        let golden = hex(ETH);
        let mut buf = vec![0u8; golden.len()];
        let mut f = EthernetFrame::new_checked(&mut buf[..]).unwrap();
        f.set_dst(MAC2);
        f.set_src(MAC1);
        f.set_ethertype(ETHERTYPE_IPV4);
        f.payload_mut().copy_from_slice(&golden[14..]);
        assert_eq!(f.into_inner(), &golden[..]);
    }

    #[test]
    fn new_checked_rejects_short() {
        assert_eq!(
            EthernetFrame::new_checked(&[0u8; 13][..]),
            Err(WireError::Truncated)
        );
        assert!(EthernetFrame::new_checked(&[0u8; 14][..]).is_ok());
        assert_eq!(
            EthernetFrame::new_checked(&[0u8; 14][..])
                .unwrap()
                .payload(),
            &[] as &[u8]
        );
    }

    #[test]
    fn parse_l2_untagged() {
        let info = parse_l2(&hex(ETH)).unwrap();
        assert_eq!(
            info,
            L2Info {
                ethertype: ETHERTYPE_IPV4,
                vlan: None,
                l3_offset: 14
            }
        );
    }

    #[test]
    fn parse_l2_dot1q() {
        let frame = hex(VLAN);
        let info = parse_l2(&frame).unwrap();
        assert_eq!(
            info,
            L2Info {
                ethertype: ETHERTYPE_ARP,
                vlan: Some(100),
                l3_offset: 18
            }
        );
        // The PCP bits (prio=5) must not leak into the VID.
        assert_eq!(frame[14] >> 5, 5);
        assert!(is_broadcast(
            &EthernetFrame::new_checked(&frame[..]).unwrap().dst()
        ));
    }

    #[test]
    fn parse_l2_qinq_reports_inner_vid() {
        let info = parse_l2(&hex(QINQ)).unwrap();
        assert_eq!(
            info,
            L2Info {
                ethertype: ETHERTYPE_IPV4,
                vlan: Some(20),
                l3_offset: 22
            }
        );
    }

    #[test]
    fn parse_l2_single_s_tag_and_old_style_double_tag() {
        // S-tag alone: its VID is the only one.
        let mut f = hex(VLAN);
        f[12..14].copy_from_slice(&ETHERTYPE_QINQ.to_be_bytes());
        let info = parse_l2(&f).unwrap();
        assert_eq!(
            (info.ethertype, info.vlan, info.l3_offset),
            (ETHERTYPE_ARP, Some(100), 18)
        );
        // Pre-standard QinQ with 0x8100 outside: inner VID reported.
        let mut q = hex(QINQ);
        q[12..14].copy_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
        let info = parse_l2(&q).unwrap();
        assert_eq!(
            (info.ethertype, info.vlan, info.l3_offset),
            (ETHERTYPE_IPV4, Some(20), 22)
        );
    }

    #[test]
    fn parse_l2_errors() {
        assert_eq!(parse_l2(&[]), Err(WireError::Truncated));
        assert_eq!(parse_l2(&hex(ETH)[..13]), Err(WireError::Truncated));
        // 802.1Q tag announced but cut short.
        let v = hex(VLAN);
        for len in 14..18 {
            assert_eq!(parse_l2(&v[..len]), Err(WireError::Truncated), "len {len}");
        }
        // A tag that exactly fits leaves l3_offset == frame length.
        assert_eq!(parse_l2(&v[..18]).unwrap().l3_offset, 18);
        // QinQ with the inner tag truncated.
        let q = hex(QINQ);
        for len in 18..22 {
            assert_eq!(parse_l2(&q[..len]), Err(WireError::Truncated), "len {len}");
        }
        // A third tag is unsupported.
        let mut triple = q.clone();
        triple[20..22].copy_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
        assert_eq!(parse_l2(&triple), Err(WireError::Unsupported));
        // An S-tag inside a C-tag is unsupported.
        let mut inverted = q.clone();
        inverted[12..14].copy_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
        inverted[16..18].copy_from_slice(&ETHERTYPE_QINQ.to_be_bytes());
        assert_eq!(parse_l2(&inverted), Err(WireError::Unsupported));
    }

    #[test]
    fn mac_classes() {
        assert!(is_broadcast(&BROADCAST));
        assert!(is_multicast(&BROADCAST));
        assert!(is_multicast(&[0x01, 0x00, 0x5e, 0, 0, 1]));
        assert!(!is_multicast(&MAC1));
        assert!(!is_broadcast(&MAC1));
        assert!(!is_broadcast(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]));
    }
}
