//! Error handling: RFC 7606 outcomes for malformed UPDATEs, RFC 4271
//! NOTIFICATIONs for bad headers and OPENs, encoder refusals.

use std::net::{IpAddr, Ipv4Addr};

use super::{hex, parsed, update_msg};
use crate::types::{Afi, AsPath, AsSegment, PathAttributes, Prefix};
use crate::wire::*;

const FOUR: SessionContext = SessionContext::MODERN;
const TWO: SessionContext = SessionContext::CLASSIC;
/// 4-octet AS, IPv4 only.
const FOUR_V4: SessionContext = SessionContext {
    four_octet_as: true,
    ipv4_unicast: true,
    ipv6_unicast: false,
};

fn attr(flags: u8, code: u8, value: &[u8]) -> Vec<u8> {
    let mut a = vec![flags, code, value.len() as u8];
    a.extend_from_slice(value);
    a
}

fn origin(v: u8) -> Vec<u8> {
    attr(0x40, 1, &[v])
}
fn as_path4(asns: &[u32]) -> Vec<u8> {
    let mut v = vec![2, asns.len() as u8];
    for a in asns {
        v.extend_from_slice(&a.to_be_bytes());
    }
    attr(0x40, 2, &v)
}
fn next_hop() -> Vec<u8> {
    attr(0x40, 3, &[10, 0, 0, 1])
}
fn med(v: u32) -> Vec<u8> {
    attr(0x80, 4, &v.to_be_bytes())
}

/// A whole UPDATE message from its three fields.
fn update(withdrawn: &[u8], attrs: &[Vec<u8>], nlri: &[u8]) -> Vec<u8> {
    let mut b = (withdrawn.len() as u16).to_be_bytes().to_vec();
    b.extend_from_slice(withdrawn);
    let a: Vec<u8> = attrs.concat();
    b.extend_from_slice(&(a.len() as u16).to_be_bytes());
    b.extend_from_slice(&a);
    b.extend_from_slice(nlri);
    update_msg(&b)
}

/// 192.0.2.0/24 in NLRI form.
const NLRI: [u8; 4] = [24, 192, 0, 2];

fn pfx(s: &str) -> Prefix {
    let (a, l) = s.split_once('/').unwrap();
    Prefix::new(a.parse().unwrap(), l.parse().unwrap()).unwrap()
}

fn outcome(msg: &[u8], ctx: &SessionContext) -> UpdateOutcome {
    match decode_message(msg, ctx) {
        Ok(Received::Update(o)) => o,
        other => panic!("not an UPDATE: {other:?}"),
    }
}

fn withdraw(prefixes: &[&str], errors: &[(u8, AttrFault)]) -> UpdateOutcome {
    UpdateOutcome::TreatAsWithdraw {
        withdrawn: prefixes.iter().map(|p| pfx(p)).collect(),
        errors: errors
            .iter()
            .map(|&(type_code, fault)| AttrError { type_code, fault })
            .collect(),
    }
}

fn reset(code: u8, subcode: u8, data: Vec<u8>) -> UpdateOutcome {
    UpdateOutcome::SessionReset(Notification::new(code, subcode, data))
}

fn good_attrs() -> Vec<Vec<u8>> {
    vec![origin(0), as_path4(&[65001]), next_hop()]
}

#[test]
fn well_formed_baseline_parses() {
    let u = parsed(&update(&[], &good_attrs(), &NLRI), &FOUR);
    assert_eq!(u.nlri, vec![pfx("192.0.2.0/24")]);
    assert_eq!(u.attributes.unwrap().as_path.first_as(), Some(65001));
}

#[test]
fn bad_origin_value_or_length_is_treat_as_withdraw() {
    let m = update(&[], &[origin(3), as_path4(&[1]), next_hop()], &NLRI);
    assert_eq!(
        outcome(&m, &FOUR),
        withdraw(&["192.0.2.0/24"], &[(1, AttrFault::Value)])
    );
    let m = update(
        &[],
        &[attr(0x40, 1, &[0, 0]), as_path4(&[1]), next_hop()],
        &NLRI,
    );
    assert_eq!(
        outcome(&m, &FOUR),
        withdraw(&["192.0.2.0/24"], &[(1, AttrFault::Length)])
    );
}

#[test]
fn wrong_flags_are_treat_as_withdraw() {
    // ORIGIN marked optional.
    let m = update(
        &[],
        &[attr(0xc0, 1, &[0]), as_path4(&[1]), next_hop()],
        &NLRI,
    );
    assert_eq!(
        outcome(&m, &FOUR),
        withdraw(&["192.0.2.0/24"], &[(1, AttrFault::Flags)])
    );
}

#[test]
fn bad_attribute_lengths() {
    let mut a = good_attrs();
    a.push(attr(0x80, 4, &[0, 0, 1]));
    let m = update(&[], &a, &NLRI);
    assert_eq!(
        outcome(&m, &FOUR),
        withdraw(&["192.0.2.0/24"], &[(4, AttrFault::Length)])
    );
    // NEXT_HOP of 5 bytes.
    let m = update(
        &[],
        &[origin(0), as_path4(&[1]), attr(0x40, 3, &[1, 2, 3, 4, 5])],
        &NLRI,
    );
    assert_eq!(
        outcome(&m, &FOUR),
        withdraw(&["192.0.2.0/24"], &[(3, AttrFault::Length)])
    );
    // COMMUNITIES not a multiple of 4.
    let mut a = good_attrs();
    a.push(attr(0xc0, 8, &[0, 0, 0, 1, 2]));
    assert_eq!(
        outcome(&update(&[], &a, &NLRI), &FOUR),
        withdraw(&["192.0.2.0/24"], &[(8, AttrFault::Length)])
    );
    // ATOMIC_AGGREGATE with a value, AGGREGATOR of 7 bytes: discarded.
    let mut a = good_attrs();
    a.push(attr(0x40, 6, &[1]));
    a.push(attr(0xc0, 7, &[0, 0, 1, 0, 10, 0, 0]));
    match outcome(&update(&[], &a, &NLRI), &FOUR) {
        UpdateOutcome::AttributeDiscard { update, discarded } => {
            assert_eq!(
                discarded,
                vec![
                    AttrError {
                        type_code: 6,
                        fault: AttrFault::Length
                    },
                    AttrError {
                        type_code: 7,
                        fault: AttrFault::Length
                    }
                ]
            );
            let attrs = update.attributes.unwrap();
            assert!(!attrs.atomic_aggregate && attrs.aggregator.is_none());
            assert_eq!(update.nlri, vec![pfx("192.0.2.0/24")]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn attribute_running_past_the_field() {
    // MED claims 4 bytes, 2 remain.
    let mut a = good_attrs();
    a.push(vec![0x80, 4, 4, 0, 0]);
    let m = update(&[], &a, &NLRI);
    assert_eq!(
        outcome(&m, &FOUR_V4),
        withdraw(&["192.0.2.0/24"], &[(4, AttrFault::Overrun)])
    );
    // With IPv6 negotiated an MP_REACH could hide in the rest: reset.
    assert_eq!(outcome(&m, &FOUR), reset(3, 1, vec![]));
    // A lone flags byte.
    let mut a = good_attrs();
    a.push(vec![0x80]);
    assert_eq!(
        outcome(&update(&[], &a, &NLRI), &FOUR_V4),
        withdraw(&["192.0.2.0/24"], &[(0, AttrFault::Overrun)])
    );
}

#[test]
fn duplicate_attribute_keeps_the_first() {
    let mut a = good_attrs();
    a.push(med(5));
    a.push(med(7));
    match outcome(&update(&[], &a, &NLRI), &FOUR) {
        UpdateOutcome::AttributeDiscard { update, discarded } => {
            assert_eq!(update.attributes.unwrap().med, Some(5));
            assert_eq!(
                discarded,
                vec![AttrError {
                    type_code: 4,
                    fault: AttrFault::Duplicate
                }]
            );
        }
        other => panic!("{other:?}"),
    }
    // A second MP_UNREACH_NLRI resets the session (RFC 7606 3 g).
    let unreach = attr(0x80, 15, &[0, 2, 1]);
    let m = update(&[], &[unreach.clone(), unreach], &[]);
    assert_eq!(outcome(&m, &FOUR), reset(3, 1, vec![]));
}

#[test]
fn missing_mandatory_attributes_are_treat_as_withdraw() {
    let m = update(&[], &[as_path4(&[1]), next_hop()], &NLRI);
    assert_eq!(
        outcome(&m, &FOUR),
        withdraw(&["192.0.2.0/24"], &[(1, AttrFault::Missing)])
    );
    let m = update(&[], &[origin(0), as_path4(&[1])], &NLRI);
    assert_eq!(
        outcome(&m, &FOUR),
        withdraw(&["192.0.2.0/24"], &[(3, AttrFault::Missing)])
    );
    // Without NLRI nothing is mandatory.
    let m = update(&[], &[med(1)], &[]);
    assert_eq!(parsed(&m, &FOUR).attributes.unwrap().med, Some(1));
    // MP_REACH alone needs no NEXT_HOP attribute.
    let reach = attr(
        0x80,
        14,
        &hex("0002 01 10 20010db8000000000000000000000001 00 3020010db80099"),
    );
    let m = update(&[], &[reach, origin(0), as_path4(&[1])], &[]);
    let u = parsed(&m, &FOUR);
    assert_eq!(u.mp_reach.unwrap().prefixes, vec![pfx("2001:db8:99::/48")]);
}

#[test]
fn treat_as_withdraw_covers_every_family() {
    let reach = attr(
        0x80,
        14,
        &hex("0002 01 10 20010db8000000000000000000000001 00 3020010db80099"),
    );
    let unreach = attr(0x80, 15, &hex("0002 01 3020010db80001"));
    let m = update(
        &[16, 10, 1],
        &[reach, unreach, origin(9), as_path4(&[1]), next_hop()],
        &NLRI,
    );
    assert_eq!(
        outcome(&m, &FOUR),
        withdraw(
            &[
                "10.1.0.0/16",
                "192.0.2.0/24",
                "2001:db8:1::/48",
                "2001:db8:99::/48"
            ],
            &[(1, AttrFault::Value)]
        )
    );
}

#[test]
fn malformed_nlri_resets_the_session() {
    // Prefix length 33.
    let m = update(&[], &good_attrs(), &[33, 1, 2, 3, 4, 5]);
    assert_eq!(outcome(&m, &FOUR), reset(3, 10, vec![]));
    // Prefix bytes past the end.
    let m = update(&[], &good_attrs(), &[24, 1, 2]);
    assert_eq!(outcome(&m, &FOUR), reset(3, 10, vec![]));
    // In the withdrawn routes.
    let m = update(&[25, 1, 2, 3], &[], &[]);
    assert_eq!(outcome(&m, &FOUR), reset(3, 10, vec![]));
    // Withdrawn Routes Length beyond the message.
    let m = update_msg(&[0, 9, 0, 0]);
    assert_eq!(outcome(&m, &FOUR), reset(3, 1, vec![]));
    // Total Path Attribute Length beyond the message.
    let m = update_msg(&[0, 0, 0, 9, 0x40, 1, 1, 0]);
    assert_eq!(outcome(&m, &FOUR), reset(3, 1, vec![]));
}

#[test]
fn malformed_mp_attributes_reset_the_session() {
    // IPv6 next hop of 5 bytes.
    let value = hex("0002 01 05 2001db8000 00");
    let bad = attr(0x80, 14, &value);
    let m = update(&[], &[bad.clone(), origin(0), as_path4(&[1])], &[]);
    assert_eq!(outcome(&m, &FOUR), reset(3, 9, bad));
    // IPv6 prefix of length 129.
    let bad = attr(0x80, 15, &hex("0002 01 81 00"));
    assert_eq!(
        outcome(&update(&[], std::slice::from_ref(&bad), &[]), &FOUR),
        reset(3, 9, bad)
    );
    // MP_REACH flagged transitive.
    let bad = attr(0xc0, 15, &hex("0002 01"));
    assert_eq!(
        outcome(&update(&[], std::slice::from_ref(&bad), &[]), &FOUR),
        reset(3, 4, bad)
    );
}

#[test]
fn mp_of_an_unsupported_family_is_discarded() {
    // L2VPN EVPN (25/70).
    let m = update(&[], &[attr(0x80, 15, &hex("0019 46"))], &[]);
    match outcome(&m, &FOUR) {
        UpdateOutcome::AttributeDiscard { update, discarded } => {
            assert_eq!(update, Update::default());
            assert_eq!(discarded[0].fault, AttrFault::UnsupportedFamily);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_attributes() {
    // Unknown well-known: reset, the attribute in the data.
    let wk = attr(0x40, 99, &[1, 2]);
    let mut a = good_attrs();
    a.push(wk.clone());
    assert_eq!(outcome(&update(&[], &a, &NLRI), &FOUR), reset(3, 2, wk));
    // Unknown optional non-transitive: dropped quietly; transitive: kept.
    let mut a = good_attrs();
    a.push(attr(0x80, 99, &[1]));
    a.push(attr(0xc0, 100, &[2]));
    let attrs = parsed(&update(&[], &a, &NLRI), &FOUR).attributes.unwrap();
    assert_eq!(attrs.unknown.len(), 1);
    assert_eq!(attrs.unknown[0].type_code, 100);
    assert_eq!(passed_on_flags(&attrs.unknown[0]), 0xe0);
}

#[test]
fn extended_length_is_read_on_any_attribute() {
    // ORIGIN with Extended Length set (2-byte length).
    let m = update(
        &[],
        &[vec![0x50, 1, 0, 1, 2], as_path4(&[1]), next_hop()],
        &NLRI,
    );
    assert_eq!(parsed(&m, &FOUR).attributes.unwrap().origin as u8, 2);
    // And an attribute over 255 bytes goes out with it.
    let u = Update {
        attributes: Some(PathAttributes {
            next_hop: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))),
            communities: (0..100).collect(),
            ..PathAttributes::default()
        }),
        nlri: vec![pfx("192.0.2.0/24")],
        ..Update::default()
    };
    let b = Message::Update(u.clone()).to_bytes(&FOUR).unwrap();
    let at = b
        .windows(2)
        .position(|w| w == [0xd0, 8])
        .expect("extended COMMUNITIES");
    assert_eq!(b[at + 2..at + 4], [1, 144]);
    assert_eq!(parsed(&b, &FOUR), u);
}

#[test]
fn bad_as_paths_are_treat_as_withdraw() {
    for value in [
        hex("0300"),             // zero-length segment
        hex("030100000001"),     // confederation sequence
        hex("0202000000010000"), // runs short
    ] {
        let m = update(&[], &[origin(0), attr(0x40, 2, &value), next_hop()], &NLRI);
        assert_eq!(
            outcome(&m, &FOUR),
            withdraw(&["192.0.2.0/24"], &[(2, AttrFault::Value)]),
            "{value:?}"
        );
    }
}

fn as_path2(asns: &[u16]) -> Vec<u8> {
    let mut v = vec![2, asns.len() as u8];
    for a in asns {
        v.extend_from_slice(&a.to_be_bytes());
    }
    attr(0x40, 2, &v)
}

#[test]
fn as4_path_rules_on_two_octet_sessions() {
    let seq = |v: &[u32]| AsPath {
        segments: vec![AsSegment::Sequence(v.to_vec())],
    };
    let as4 = |v: &[u32]| {
        let mut b = vec![2, v.len() as u8];
        for a in v {
            b.extend_from_slice(&a.to_be_bytes());
        }
        attr(0xc0, 17, &b)
    };
    // A 2-octet speaker prepended 100 after the 4-octet part.
    let m = update(
        &[],
        &[
            origin(0),
            as_path2(&[100, 23456, 200]),
            next_hop(),
            as4(&[70000, 200]),
        ],
        &NLRI,
    );
    assert_eq!(
        parsed(&m, &TWO).attributes.unwrap().as_path,
        seq(&[100, 70000, 200])
    );
    // AS4_PATH longer than AS_PATH: ignored.
    let m = update(
        &[],
        &[origin(0), as_path2(&[23456]), next_hop(), as4(&[70000, 1])],
        &NLRI,
    );
    assert_eq!(parsed(&m, &TWO).attributes.unwrap().as_path, seq(&[23456]));
    // An AGGREGATOR that is not AS_TRANS voids AS4_PATH and AS4_AGGREGATOR.
    let agg = attr(0xc0, 7, &hex("0064 0a000001"));
    let agg4 = attr(0xc0, 18, &hex("00011170 0a000002"));
    let m = update(
        &[],
        &[
            origin(0),
            as_path2(&[23456]),
            next_hop(),
            agg,
            as4(&[70000]),
            agg4.clone(),
        ],
        &NLRI,
    );
    let a = parsed(&m, &TWO).attributes.unwrap();
    assert_eq!(a.as_path, seq(&[23456]));
    assert_eq!(a.aggregator, Some((100, Ipv4Addr::new(10, 0, 0, 1))));
    // AGGREGATOR AS_TRANS: AS4_AGGREGATOR is the real one.
    let agg = attr(0xc0, 7, &hex("5ba0 0a000001"));
    let m = update(
        &[],
        &[origin(0), as_path2(&[23456]), next_hop(), agg, agg4],
        &NLRI,
    );
    let a = parsed(&m, &TWO).attributes.unwrap();
    assert_eq!(a.aggregator, Some((70000, Ipv4Addr::new(10, 0, 0, 2))));
    // A malformed AS4_PATH is discarded, the UPDATE kept.
    let m = update(
        &[],
        &[
            origin(0),
            as_path2(&[23456]),
            next_hop(),
            attr(0xc0, 17, &[2, 1, 0]),
        ],
        &NLRI,
    );
    assert!(matches!(
        outcome(&m, &TWO),
        UpdateOutcome::AttributeDiscard { ref discarded, .. }
            if discarded == &[AttrError { type_code: 17, fault: AttrFault::Value }]
    ));
    // A 4-octet session ignores AS4_PATH.
    let m = update(
        &[],
        &[origin(0), as_path4(&[5]), next_hop(), as4(&[70000])],
        &NLRI,
    );
    assert_eq!(parsed(&m, &FOUR).attributes.unwrap().as_path, seq(&[5]));
}

fn header(len: u16, t: u8) -> Vec<u8> {
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&len.to_be_bytes());
    m.push(t);
    m
}

#[test]
fn header_errors_map_to_rfc4271_notifications() {
    let n = |c, s, d: &[u8]| Err(Notification::new(c, s, d.to_vec()));
    let mut bad_marker = header(19, 4);
    bad_marker[3] = 0;
    assert_eq!(decode_message(&bad_marker, &FOUR), n(1, 1, &[]));
    assert_eq!(decode_message(&header(18, 4), &FOUR), n(1, 2, &[0, 18]));
    let mut long = header(4097, 2);
    long.resize(4097, 0);
    assert_eq!(decode_message(&long, &FOUR), n(1, 2, &[0x10, 0x01]));
    assert_eq!(decode_message(&header(19, 9), &FOUR), n(1, 3, &[9]));
    let mut ka = header(20, 4);
    ka.push(0);
    assert_eq!(decode_message(&ka, &FOUR), n(1, 2, &[0, 20]));
    let mut open = header(28, 1);
    open.resize(28, 0);
    assert_eq!(decode_message(&open, &FOUR), n(1, 2, &[0, 28]));
    // The slice disagrees with the length field.
    assert_eq!(decode_message(&header(23, 5), &FOUR), n(1, 2, &[0, 23]));
    // ROUTE-REFRESH of the wrong length: RFC 7313's own error.
    let mut rr = header(24, 5);
    rr.extend_from_slice(&[0, 1, 0, 1, 0]);
    assert_eq!(
        decode_message(&rr, &FOUR),
        Err(Notification::new(7, 1, rr.clone()))
    );
}

#[test]
fn framing_waits_for_whole_messages() {
    let ka = header(19, 4);
    let mut stream = ka.clone();
    stream.extend_from_slice(&ka[..10]);
    assert_eq!(frame(&stream), Ok(Some(19)));
    assert_eq!(frame(&stream[19..]), Ok(None));
    assert_eq!(frame(&header(40, 2)), Ok(None));
    assert_eq!(
        frame(&header(3, 2)),
        Err(Notification::new(1, 2, vec![0, 3]))
    );
}

fn open_msg(body: &str) -> Vec<u8> {
    let b = hex(body);
    let mut m = header(19 + b.len() as u16, 1);
    m.extend_from_slice(&b);
    m
}

#[test]
fn open_errors_map_to_rfc4271_notifications() {
    let n = |s, d: &[u8]| Err(Notification::new(2, s, d.to_vec()));
    assert_eq!(
        decode_message(&open_msg("03 fde8 00b4 0a000001 00"), &FOUR),
        n(1, &[0, 4])
    );
    assert_eq!(
        decode_message(&open_msg("04 fde8 0001 0a000001 00"), &FOUR),
        n(6, &[])
    );
    assert_eq!(
        decode_message(&open_msg("04 fde8 00b4 00000000 00"), &FOUR),
        n(3, &[])
    );
    assert_eq!(
        decode_message(&open_msg("04 0000 00b4 0a000001 00"), &FOUR),
        n(2, &[0, 0])
    );
    // Optional parameter type 1 (authentication, deprecated).
    assert_eq!(
        decode_message(&open_msg("04 fde8 00b4 0a000001 03 010100"), &FOUR),
        n(4, &[])
    );
    // Parameter length beyond the field.
    assert_eq!(
        decode_message(&open_msg("04 fde8 00b4 0a000001 03 020500"), &FOUR),
        n(0, &[])
    );
    // Hold time 0 is fine, and a short known capability is kept raw.
    let Ok(Received::Open(o)) =
        decode_message(&open_msg("04 fde8 0000 0a000001 05 0203 410100"), &FOUR)
    else {
        panic!()
    };
    assert_eq!(
        o.capabilities().next(),
        Some(&Capability::Unknown {
            code: 65,
            value: vec![0]
        })
    );
}

#[test]
fn notification_names() {
    let n = Notification::new(3, 11, vec![]);
    assert_eq!(n.code_name(), "UPDATE Message Error");
    assert_eq!(n.subcode_name(), "Malformed AS_PATH");
    assert_eq!(subcode_name(2, 6), "Unacceptable Hold Time");
    assert_eq!(code_name(42), "unknown error code");
    assert!(n.to_string().contains("Malformed AS_PATH"));
}

#[test]
fn encoder_refusals() {
    let attrs = PathAttributes {
        next_hop: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))),
        ..PathAttributes::default()
    };
    let v6 = pfx("2001:db8::/32");
    let mut out = vec![7];
    let bad = Message::Update(Update {
        attributes: Some(attrs.clone()),
        nlri: vec![v6],
        ..Update::default()
    });
    assert_eq!(bad.encode(&FOUR, &mut out), Err(EncodeError::WrongFamily));
    let reach = Message::Update(Update {
        attributes: Some(attrs.clone()),
        mp_reach: Some(MpReach {
            afi: Afi::Ipv6,
            next_hop: "2001:db8::1".parse().unwrap(),
            link_local_next_hop: None,
            prefixes: vec![v6],
        }),
        ..Update::default()
    });
    assert_eq!(
        reach.encode(&TWO, &mut out),
        Err(EncodeError::FamilyNotNegotiated(Afi::Ipv6))
    );
    let no_nh = Message::Update(Update {
        attributes: Some(PathAttributes::default()),
        nlri: vec![pfx("192.0.2.0/24")],
        ..Update::default()
    });
    assert_eq!(
        no_nh.encode(&FOUR, &mut out),
        Err(EncodeError::MissingNextHop)
    );
    let huge = Message::Update(Update {
        withdrawn: (0..1100u32)
            .map(|i| Prefix::new(IpAddr::V4(Ipv4Addr::from(i << 8)), 24).unwrap())
            .collect(),
        ..Update::default()
    });
    assert_eq!(huge.encode(&FOUR, &mut out), Err(EncodeError::TooLong));
    // Failed encodes leave the buffer as it was.
    assert_eq!(out, vec![7]);
}
