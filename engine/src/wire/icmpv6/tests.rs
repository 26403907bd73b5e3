//! ICMPv6 and ND: decode and re-encode real packets byte for byte, ND
//! validation, error rules, and random bytes that must never panic.

use super::*;
use crate::wire::hex;
use crate::wire::ipv6::golden::*;
use proptest::prelude::*;

fn addr(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 0x0a];
const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 0x0b];

fn ip(b: &[u8]) -> Ipv6Packet<&[u8]> {
    Ipv6Packet::new_checked(b).unwrap()
}

#[test]
fn solicited_node_address_and_mac() {
    let t = addr("2001:db8::b");
    assert_eq!(solicited_node(t), addr("ff02::1:ff00:b"));
    assert_eq!(
        solicited_node(addr("fe80::1234:5678:9abc:def0")),
        addr("ff02::1:ffbc:def0")
    );
    assert!(is_solicited_node(addr("ff02::1:ff00:b")));
    assert!(!is_solicited_node(addr("ff02::1")));
    assert!(!is_solicited_node(addr("ff02::2:ff00:b")));
    // The captured NS went to 33:33:ff:00:00:0b.
    assert_eq!(
        multicast_mac(solicited_node(t)),
        [0x33, 0x33, 0xff, 0x00, 0x00, 0x0b]
    );
    assert_eq!(multicast_mac(addr("ff02::2")), [0x33, 0x33, 0, 0, 0, 2]);
}

#[test]
fn neighbor_solicit_golden_both_ways() {
    let g = hex(NS);
    let p = ip(&g);
    assert_eq!(
        parse_nd(&p),
        Ok(NdMessage::Solicit {
            target: addr("2001:db8::b"),
            source_ll: Some(MAC_A)
        })
    );
    let icmp = Icmpv6Packet::new_checked(p.payload()).unwrap();
    assert_eq!(icmp.checksum(), 0x1c03);
    let mut buf = [0u8; 100];
    let n = emit_neighbor_solicit(
        &mut buf,
        addr("2001:db8::a"),
        solicited_node(addr("2001:db8::b")),
        addr("2001:db8::b"),
        Some(MAC_A),
    )
    .unwrap();
    assert_eq!(&buf[..n], &g[..]);
}

#[test]
fn dad_solicit_golden_from_unspecified_with_nonce() {
    // Duplicate address detection: from ::, no source link-layer option,
    // a nonce option (type 14) that the walk skips.
    let g = hex(DAD_NS);
    assert_eq!(
        parse_nd(&ip(&g)),
        Ok(NdMessage::Solicit {
            target: addr("fe80::ff:fe00:b"),
            source_ll: None
        })
    );
    let mut buf = [0u8; 100];
    let n = emit_neighbor_solicit(
        &mut buf,
        Ipv6Addr::UNSPECIFIED,
        solicited_node(addr("fe80::ff:fe00:b")),
        addr("fe80::ff:fe00:b"),
        None,
    )
    .unwrap();
    assert_eq!(n, 64);
    assert!(parse_nd(&ip(&buf[..n])).is_ok());
    // With the captured nonce option appended, the very same packet.
    buf[64..72].copy_from_slice(&g[64..72]);
    buf[4..6].copy_from_slice(&32u16.to_be_bytes());
    Icmpv6Packet::new_unchecked(&mut buf[40..72])
        .fill_checksum(Ipv6Addr::UNSPECIFIED, ip(&g).dst_addr());
    let n = 72;
    assert_eq!(&buf[..n], &g[..]);
    assert!(parse_nd(&ip(&buf[..n])).is_ok());
}

#[test]
fn neighbor_advert_goldens_both_ways() {
    for (golden, flags) in [
        (NA, NA_FLAG_SOLICITED | NA_FLAG_OVERRIDE),
        (
            NA_ROUTER,
            NA_FLAG_ROUTER | NA_FLAG_SOLICITED | NA_FLAG_OVERRIDE,
        ),
    ] {
        let g = hex(golden);
        assert_eq!(
            parse_nd(&ip(&g)),
            Ok(NdMessage::Advert {
                target: addr("2001:db8::b"),
                router: flags & NA_FLAG_ROUTER != 0,
                solicited: true,
                override_flag: true,
                target_ll: Some(MAC_B)
            })
        );
        let mut buf = [0u8; 72];
        let n = emit_neighbor_advert(
            &mut buf,
            addr("2001:db8::b"),
            addr("2001:db8::a"),
            addr("2001:db8::b"),
            flags,
            Some(MAC_B),
        )
        .unwrap();
        assert_eq!(&buf[..n], &g[..]);
    }
}

#[test]
fn nd_validation_rejects() {
    let g = hex(NA);
    let fix = |b: &mut Vec<u8>| {
        let (s, d) = {
            let p = ip(b);
            (p.src_addr(), p.dst_addr())
        };
        Icmpv6Packet::new_unchecked(&mut b[40..]).fill_checksum(s, d);
    };
    // Hop limit not 255 (an off-link forgery).
    let mut b = g.clone();
    b[7] = 254;
    assert_eq!(parse_nd(&ip(&b)), Err(WireError::Malformed));
    // Corrupted checksum.
    let mut b = g.clone();
    b[60] ^= 1;
    assert_eq!(parse_nd(&ip(&b)), Err(WireError::BadChecksum));
    // Code not 0.
    let mut b = g.clone();
    b[41] = 1;
    fix(&mut b);
    assert_eq!(parse_nd(&ip(&b)), Err(WireError::Malformed));
    // An option of length 0.
    let mut b = g.clone();
    b[65] = 0;
    fix(&mut b);
    assert_eq!(parse_nd(&ip(&b)), Err(WireError::Malformed));
    // Multicast target.
    let mut b = g.clone();
    b[48] = 0xff;
    fix(&mut b);
    assert_eq!(parse_nd(&ip(&b)), Err(WireError::Malformed));
    // Solicited advert to a multicast address.
    let mut b = g.clone();
    b[24..40].copy_from_slice(&addr("ff02::1").octets());
    fix(&mut b);
    assert_eq!(parse_nd(&ip(&b)), Err(WireError::Malformed));
    // NS from :: with a source link-layer option.
    let mut b = hex(NS);
    b[8..24].fill(0);
    fix(&mut b);
    assert_eq!(parse_nd(&ip(&b)), Err(WireError::Malformed));
    // Not ND at all.
    assert_eq!(parse_nd(&ip(&hex(ECHO_REQ))), Err(WireError::Unsupported));
}

#[test]
fn echo_goldens_and_reply_in_place() {
    let req = hex(ECHO_REQ);
    let p = ip(&req);
    let icmp = Icmpv6Packet::new_checked(p.payload()).unwrap();
    assert_eq!((icmp.msg_type(), icmp.code()), (TYPE_ECHO_REQUEST, 0));
    assert_eq!((icmp.ident(), icmp.seq_no()), (0x28fa, 1));
    assert!(icmp.verify_checksum(p.src_addr(), p.dst_addr()));
    assert!(!icmp.verify_checksum(p.dst_addr(), addr("2001:db8::c")));

    let want = hex(ECHO_REPLY);
    let mut buf = req.clone();
    echo_reply_in_place(&mut buf, addr("2001:db8::b"), 64).unwrap();
    // The kernel picked its own flow label for the reply.
    Ipv6Packet::new_unchecked(&mut buf[..]).set_version_tc_flow(0, 0x41baa);
    assert_eq!(buf, want);

    let mut buf = [0u8; 56];
    let n = emit_echo(
        &mut buf,
        addr("2001:db8::a"),
        addr("2001:db8::b"),
        64,
        TYPE_ECHO_REQUEST,
        0x28fa,
        1,
        &req[48..],
    )
    .unwrap();
    Ipv6Packet::new_unchecked(&mut buf[..]).set_version_tc_flow(0, 0x7dc65);
    assert_eq!(&buf[..n], &req[..]);
    assert_eq!(
        echo_reply_in_place(&mut hex(ECHO_REPLY), addr("::1"), 64),
        Err(WireError::Malformed)
    );
}

/// Emits an error with `emit` and checks it against a captured one.
/// `invoking` rebuilds the packet the error was about from its quote.
fn check_error_golden(
    golden: &str,
    invoking: impl Fn(&[u8]) -> Vec<u8>,
    emit: impl Fn(&mut [u8], &[u8]) -> Result<usize>,
) {
    let g = hex(golden);
    let p = ip(&g);
    let icmp = Icmpv6Packet::new_checked(p.payload()).unwrap();
    assert!(icmp.verify_checksum(p.src_addr(), p.dst_addr()));
    let invoking = invoking(icmp.data());
    assert!(error_allowed(&invoking, icmp.msg_type(), icmp.code()));
    let mut buf = vec![0u8; 1500];
    let n = emit(&mut buf, &invoking).unwrap();
    Ipv6Packet::new_unchecked(&mut buf[..]).set_version_tc_flow(0, p.flow_label());
    assert_eq!(&buf[..n], &g[..], "{golden:.40}");
}

#[test]
fn error_goldens() {
    let (b, a) = (addr("2001:db8::b"), addr("2001:db8::a"));
    let whole = |q: &[u8]| q.to_vec();
    check_error_golden(UNREACH, whole, |buf, inv| {
        emit_dest_unreachable(buf, b, a, CODE_NO_ROUTE, inv)
    });
    check_error_golden(TIME_EXCEEDED, whole, |buf, inv| {
        emit_time_exceeded(buf, b, a, CODE_HOP_LIMIT_EXCEEDED, inv)
    });
    // The kernel quoted 1232 bytes of a 1448-byte packet: 1280 in all.
    let lengthen = |q: &[u8]| {
        let mut long = q.to_vec();
        long.resize(1448, 0xaa);
        long
    };
    check_error_golden(PTB, lengthen, |buf, inv| {
        emit_packet_too_big(buf, b, a, 1280, inv)
    });
    let g = hex(PTB);
    assert_eq!(g.len(), ipv6::MIN_MTU);
    assert_eq!(
        Icmpv6Packet::new_checked(&g[40..])
            .unwrap()
            .rest_of_header(),
        1280
    );
}

#[test]
fn error_quote_is_cut_to_the_buffer() {
    let inv = hex(ECHO_REQ);
    let mut small = [0u8; 60];
    let n = emit_dest_unreachable(&mut small, addr("::1"), addr("::2"), 0, &inv).unwrap();
    assert_eq!(n, 60);
    let p = ip(&small);
    let icmp = Icmpv6Packet::new_checked(p.payload()).unwrap();
    assert!(icmp.verify_checksum(addr("::1"), addr("::2")));
    assert_eq!(icmp.data(), &inv[..12]);
    assert_eq!(
        emit_dest_unreachable(&mut [0u8; 47], addr("::1"), addr("::2"), 0, &inv),
        Err(WireError::Truncated)
    );
}

#[test]
fn error_rules() {
    let echo = hex(ECHO_REQ);
    assert!(error_allowed(&echo, TYPE_DEST_UNREACHABLE, 0));
    // Never about an error.
    let err = hex(UNREACH);
    assert!(!error_allowed(&err, TYPE_TIME_EXCEEDED, 0));
    // Multicast destination: only packet too big / unrecognized option.
    let mld = hex(MLD_HBH);
    let mut mcast = echo.clone();
    mcast[24..40].copy_from_slice(&mld[24..40]);
    assert!(!error_allowed(&mcast, TYPE_DEST_UNREACHABLE, 0));
    assert!(error_allowed(&mcast, TYPE_PACKET_TOO_BIG, 0));
    assert!(error_allowed(
        &mcast,
        TYPE_PARAMETER_PROBLEM,
        CODE_UNRECOGNIZED_OPTION
    ));
    // Unspecified source.
    assert!(!error_allowed(&hex(DAD_NS), TYPE_PACKET_TOO_BIG, 0));
    // Garbage.
    assert!(!error_allowed(&[0x60; 10], TYPE_DEST_UNREACHABLE, 0));
    // A non-first fragment's bytes are data, not an ICMP type.
    assert!(error_allowed(
        &hex(FRAG),
        TYPE_TIME_EXCEEDED,
        CODE_REASSEMBLY_TIMEOUT
    ));
}

proptest! {
    #[test]
    fn random_bytes_never_panic(mut b in prop::collection::vec(any::<u8>(), 0..160), nd in 0u8..3) {
        // Bias towards what the parsers look at so they go deep.
        if b.len() >= 48 {
            b[0] = 0x60;
            let plen = (b.len() - 40) as u16;
            b[4..6].copy_from_slice(&plen.to_be_bytes());
            b[6] = NH_ICMPV6;
            b[7] = 255;
            if nd > 0 {
                b[40] = TYPE_NEIGHBOR_SOLICIT + nd - 1;
                b[41] = 0;
                let (s, d) = (ip(&b).src_addr(), ip(&b).dst_addr());
                Icmpv6Packet::new_unchecked(&mut b[40..]).fill_checksum(s, d);
            }
        }
        if let Ok(p) = Ipv6Packet::new_checked(&b[..]) {
            let _ = parse_nd(&p);
        }
        let _ = link_layer_option(&b, OPT_SOURCE_LL_ADDR);
        let _ = error_allowed(&b, TYPE_DEST_UNREACHABLE, 0);
        let mut out = [0u8; 1280];
        let a = Ipv6Addr::LOCALHOST;
        let n = emit_time_exceeded(&mut out, a, a, 0, &b).unwrap();
        prop_assert!(n <= 1280);
        let mut c = b.clone();
        let _ = echo_reply_in_place(&mut c, a, 64);
        if let Ok(i) = Icmpv6Packet::new_checked(&b[..]) {
            let _ = (i.ident(), i.seq_no(), i.rest_of_header(), i.data(), i.verify_checksum(a, a));
        }
    }
}
