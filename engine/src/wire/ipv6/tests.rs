//! IPv6 header view: goldens from real captures, extension-header walks,
//! errors, and random bytes that must never panic.

use super::golden::*;
use super::*;
use crate::wire::hex;
use proptest::prelude::*;

fn addr(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

#[test]
fn decode_golden_echo_request() {
    let b = hex(ECHO_REQ);
    let p = Ipv6Packet::new_checked(&b[..]).unwrap();
    assert_eq!(p.version(), 6);
    assert_eq!(p.traffic_class(), 0);
    assert_eq!(p.flow_label(), 0x7dc65);
    assert_eq!(p.payload_len(), 16);
    assert_eq!(p.next_header(), NH_ICMPV6);
    assert_eq!(p.hop_limit(), 64);
    assert_eq!(p.src_addr(), addr("2001:db8::a"));
    assert_eq!(p.dst_addr(), addr("2001:db8::b"));
    assert_eq!(p.payload(), &b[40..]);
    assert_eq!(
        p.upper_layer(),
        Ok(UpperLayer {
            protocol: NH_ICMPV6,
            offset: 40,
            fragment: None
        })
    );
}

#[test]
fn encode_golden_header_with_setters() {
    let g = hex(ECHO_REQ);
    let mut buf = g.clone();
    buf[..40].fill(0);
    emit_header(
        &mut buf,
        addr("2001:db8::a"),
        addr("2001:db8::b"),
        NH_ICMPV6,
        64,
        16,
    )
    .unwrap();
    let mut p = Ipv6Packet::new_checked(&mut buf[..]).unwrap();
    assert_eq!(p.flow_label(), 0);
    p.set_version_tc_flow(0, 0x7dc65);
    assert_eq!(buf, g);
}

#[test]
fn traffic_class_and_flow_label_do_not_overlap() {
    let mut buf = [0u8; 40];
    let mut p = Ipv6Packet::new_unchecked(&mut buf[..]);
    p.set_version_tc_flow(0xb8, 0xfffff);
    assert_eq!(
        (p.version(), p.traffic_class(), p.flow_label()),
        (6, 0xb8, 0xfffff)
    );
    p.set_version_tc_flow(0x01, 0x12345);
    assert_eq!(
        (p.version(), p.traffic_class(), p.flow_label()),
        (6, 0x01, 0x12345)
    );
    assert_eq!(&buf[..4], &[0x60, 0x11, 0x23, 0x45]);
}

#[test]
fn hop_by_hop_walk_golden_mld_report() {
    // MLDv2 report: hop-by-hop (router alert + padding) then ICMPv6 143.
    let b = hex(MLD_HBH);
    let p = Ipv6Packet::new_checked(&b[..]).unwrap();
    assert_eq!(p.next_header(), NH_HOP_BY_HOP);
    assert_eq!(p.hop_limit(), 1);
    let ul = p.upper_layer().unwrap();
    assert_eq!((ul.protocol, ul.offset, ul.fragment), (NH_ICMPV6, 48, None));
    assert_eq!(b[ul.offset], 143);
}

#[test]
fn fragment_walk_golden() {
    // Second fragment of a 1600-byte ping: offset 1448, last fragment.
    let b = hex(FRAG);
    let p = Ipv6Packet::new_checked(&b[..]).unwrap();
    assert_eq!(p.next_header(), NH_FRAGMENT);
    let ul = p.upper_layer().unwrap();
    assert_eq!(ul.protocol, NH_ICMPV6);
    assert_eq!(ul.offset, 48);
    assert_eq!(
        ul.fragment,
        Some(Fragment {
            offset: 1448,
            more: false,
            ident: 0x3c8b_9df6
        })
    );
}

/// An IPv6 packet with the given extension headers (type, body bytes) and
/// an upper-layer protocol 17 with 8 bytes.
fn with_ext(exts: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (i, (_, bytes)) in exts.iter().enumerate() {
        let next = exts.get(i + 1).map_or(NH_UDP, |e| e.0);
        let mut h = bytes.clone();
        h[0] = next;
        body.extend(h);
    }
    body.extend([0u8; 8]);
    let mut buf = vec![0u8; 40 + body.len()];
    let first = exts.first().map_or(NH_UDP, |e| e.0);
    let (a, b) = (addr("2001:db8::1"), addr("2001:db8::2"));
    emit_header(&mut buf, a, b, first, 64, body.len() as u16).unwrap();
    buf[40..].copy_from_slice(&body);
    buf
}

#[test]
fn routing_dest_opts_and_auth_walk() {
    let routing = vec![
        0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    let dest = vec![0, 0, 1, 4, 0, 0, 0, 0];
    let auth = vec![
        0, 4, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    let b = with_ext(&[
        (NH_HOP_BY_HOP, vec![0, 0, 1, 4, 0, 0, 0, 0]),
        (NH_DEST_OPTS, dest.clone()),
        (NH_ROUTING, routing),
        (NH_AUTH, auth),
        (NH_DEST_OPTS, dest),
    ]);
    let p = Ipv6Packet::new_checked(&b[..]).unwrap();
    let ul = p.upper_layer().unwrap();
    assert_eq!((ul.protocol, ul.offset), (NH_UDP, 40 + 8 + 8 + 24 + 24 + 8));
}

#[test]
fn walk_errors() {
    let hbh = || (NH_HOP_BY_HOP, vec![0, 0, 1, 4, 0, 0, 0, 0]);
    let dest = || (NH_DEST_OPTS, vec![0, 0, 1, 4, 0, 0, 0, 0]);
    // Hop-by-hop after another header.
    let b = with_ext(&[dest(), hbh()]);
    assert_eq!(
        Ipv6Packet::new_checked(&b[..]).unwrap().upper_layer(),
        Err(WireError::Malformed)
    );
    // Exactly the bound is walked; one more is refused.
    let b = with_ext(&vec![dest(); MAX_EXT_HEADERS]);
    assert!(Ipv6Packet::new_checked(&b[..])
        .unwrap()
        .upper_layer()
        .is_ok());
    let b = with_ext(&vec![dest(); MAX_EXT_HEADERS + 1]);
    assert_eq!(
        Ipv6Packet::new_checked(&b[..]).unwrap().upper_layer(),
        Err(WireError::Unsupported)
    );
    // A header whose length runs past the payload.
    let mut b = with_ext(&[dest()]);
    b[41] = 3;
    assert_eq!(
        Ipv6Packet::new_checked(&b[..]).unwrap().upper_layer(),
        Err(WireError::Truncated)
    );
    // A fragment header cut short.
    let b = with_ext(&[]);
    let mut b = b[..44].to_vec();
    b[4..6].copy_from_slice(&4u16.to_be_bytes());
    b[6] = NH_FRAGMENT;
    assert_eq!(
        Ipv6Packet::new_checked(&b[..]).unwrap().upper_layer(),
        Err(WireError::Truncated)
    );
}

#[test]
fn new_checked_errors_and_padding() {
    let good = hex(ECHO_REQ);
    let check = |b: &[u8]| Ipv6Packet::new_checked(b).map(|_| ());
    assert_eq!(check(&good), Ok(()));
    assert_eq!(check(&good[..39]), Err(WireError::Truncated));
    assert_eq!(check(&[]), Err(WireError::Truncated));
    assert_eq!(check(&good[..55]), Err(WireError::BadTotalLen));
    let mut v4 = good.clone();
    v4[0] = 0x45;
    assert_eq!(check(&v4), Err(WireError::BadVersion));
    let mut padded = good.clone();
    padded.extend([0xee; 10]);
    let p = Ipv6Packet::new_checked(&padded[..]).unwrap();
    assert_eq!(p.payload().len(), 16);
    assert_eq!(p.packet().len(), 56);
}

#[test]
fn hop_limit_decrement() {
    let mut b = hex(ECHO_REQ);
    let mut p = Ipv6Packet::new_checked(&mut b[..]).unwrap();
    p.decrement_hop_limit();
    assert_eq!(p.hop_limit(), 63);
    p.set_hop_limit(0);
    p.decrement_hop_limit();
    assert_eq!(p.hop_limit(), 0);
}

#[test]
fn pseudo_header_sum_matches_bytes() {
    // RFC 8200 §8.1 layout summed as plain bytes.
    let (s, d) = (addr("2001:db8::a"), addr("ff02::1:ff00:b"));
    let mut bytes = Vec::new();
    bytes.extend(s.octets());
    bytes.extend(d.octets());
    bytes.extend(70000u32.to_be_bytes());
    bytes.extend([0, 0, 0, NH_ICMPV6]);
    assert_eq!(
        crate::wire::checksum::fold(pseudo_header_sum(s, d, NH_ICMPV6, 70000)),
        crate::wire::checksum::fold(crate::wire::checksum::sum(&bytes))
    );
}

proptest! {
    #[test]
    fn random_bytes_never_panic(mut b in prop::collection::vec(any::<u8>(), 0..200), v6 in any::<bool>()) {
        if v6 && !b.is_empty() {
            b[0] = 0x60 | (b[0] & 0x0f);
        }
        if let Ok(mut p) = Ipv6Packet::new_checked(&mut b[..]) {
            let _ = (p.traffic_class(), p.flow_label(), p.src_addr(), p.dst_addr());
            let _ = p.payload();
            if let Ok(ul) = p.upper_layer() {
                prop_assert!(ul.offset <= p.packet().len());
            }
            p.set_payload_len(u16::MAX);
            let _ = p.payload_mut();
            let _ = p.upper_layer();
        }
    }
}
