//! Golden bytes: real messages captured with tcpdump on a veth between
//! BIRD 2.0.12 and FRR 8.4 `bgpd` in two network namespaces
//! (`tests/capture/run.sh` and its configs beside this file), each decoded
//! to a value written out by hand and encoded back to the same bytes.
//! Where FRR's encoding makes a different but valid choice (Extended
//! Length on a short AS_PATH, attribute order), the test says so.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{as_message, golden, hex, parsed};
use crate::types::{Afi, AsPath, AsSegment, Origin, PathAttributes, Prefix, RawAttribute};
use crate::wire::*;

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn pfx(s: &str) -> Prefix {
    let (a, l) = s.split_once('/').unwrap();
    Prefix::new(a.parse().unwrap(), l.parse().unwrap()).unwrap()
}

fn seq(asns: &[u32]) -> AsPath {
    AsPath {
        segments: vec![AsSegment::Sequence(asns.to_vec())],
    }
}

const FOUR: SessionContext = SessionContext::MODERN;
const TWO: SessionContext = SessionContext::CLASSIC;

/// BIRD, AS 4200000001, IPv4 session: AS_TRANS in My AS, all capabilities
/// in one parameter (multiprotocol IPv4, route refresh, graceful restart
/// 120 s for IPv4 unicast, 4-octet AS, enhanced route refresh 70 and
/// long-lived GR 71 kept as unknown).
const BIRD_OPEN_AS4: &str = "ffffffffffffffffffffffffffffffff 0039 01 04 5ba0 005a 0a000001 1c
    021a 01040001000102004006007800010100 4104fa56ea01 4600 4700";

#[test]
fn bird_open_four_octet_as() {
    let want = Open {
        version: 4,
        my_as: AS_TRANS,
        hold_time: 90,
        bgp_id: v4("10.0.0.1"),
        capability_params: vec![vec![
            Capability::unicast(Afi::Ipv4),
            Capability::RouteRefresh,
            Capability::GracefulRestart(GracefulRestart {
                restart_flags: 0,
                restart_time_secs: 120,
                families: vec![GrFamily {
                    afi: 1,
                    safi: 1,
                    flags: 0,
                }],
            }),
            Capability::FourOctetAs(4_200_000_001),
            Capability::Unknown {
                code: 70,
                value: vec![],
            },
            Capability::Unknown {
                code: 71,
                value: vec![],
            },
        ]],
    };
    assert_eq!(want.asn(), 4_200_000_001);
    golden(&hex(BIRD_OPEN_AS4), &FOUR, &Message::Open(want.clone()));
    // Open::new builds the same header fields.
    let built = Open::new(
        4_200_000_001,
        90,
        v4("10.0.0.1"),
        want.capability_params[0].clone(),
    );
    assert_eq!(built, want);
}

/// BIRD with `enable as4 off`, AS 65002, hold 240: no 4-octet capability.
const BIRD_OPEN_AS2: &str =
    "ffffffffffffffffffffffffffffffff 002f 01 04 fdea 00f0 0a00000b 12 0210 010400010001 0200 4002 0078 4600 4700";

#[test]
fn bird_open_two_octet_as() {
    let want = Open {
        version: 4,
        my_as: 65002,
        hold_time: 240,
        bgp_id: v4("10.0.0.11"),
        capability_params: vec![vec![
            Capability::unicast(Afi::Ipv4),
            Capability::RouteRefresh,
            Capability::GracefulRestart(GracefulRestart {
                restart_flags: 0,
                restart_time_secs: 120,
                families: vec![],
            }),
            Capability::Unknown {
                code: 70,
                value: vec![],
            },
            Capability::Unknown {
                code: 71,
                value: vec![],
            },
        ]],
    };
    golden(&hex(BIRD_OPEN_AS2), &TWO, &Message::Open(want.clone()));
    assert_eq!(want.four_octet_as(), None);
    assert_eq!(want.asn(), 65002);
}

/// FRR, AS 65002, hold 180, IPv6 session: one capability per parameter
/// (multiprotocol IPv6, old Cisco route refresh 128, route refresh,
/// enhanced RR, 4-octet AS, extended message 6, ADD-PATH 69, hostname 73,
/// graceful restart with Restart State and Notification bits set and IPv6
/// unicast, long-lived GR 71).
const FRR_OPEN_V6: &str = "ffffffffffffffffffffffffffffffff 0067 01 04 fdea 00b4 0a000002 4a
    0206 010400020001 0202 8000 0202 0200 0202 4600 0206 41040000fdea 0202 0600
    0206 450400020101 020b 4909076672727065657200
    0208 4006c07800020100 0209 470700020180000000";

#[test]
fn frr_open_one_capability_per_parameter() {
    let bytes = hex(FRR_OPEN_V6);
    let Ok(Received::Open(open)) = decode_message(&bytes, &FOUR) else {
        panic!("FRR OPEN did not decode");
    };
    assert_eq!(open.capability_params.len(), 10);
    assert_eq!(open.asn(), 65002);
    assert_eq!(open.hold_time, 180);
    assert!(open.announces_unicast(Afi::Ipv6) && !open.announces_unicast(Afi::Ipv4));
    assert!(open.has(&Capability::RouteRefresh));
    let gr = open
        .capabilities()
        .find_map(|c| match c {
            Capability::GracefulRestart(g) => Some(g.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        gr,
        GracefulRestart {
            restart_flags: 0xc,
            restart_time_secs: 120,
            families: vec![GrFamily {
                afi: 2,
                safi: 1,
                flags: 0
            }],
        }
    );
    assert!(gr.restart_state() && !gr.families[0].forwarding_preserved());
    assert_eq!(
        open.capabilities().nth(7),
        Some(&Capability::Unknown {
            code: 73,
            value: b"\x07frrpeer\x00".to_vec()
        })
    );
    golden(&bytes, &FOUR, &Message::Open(open));
}

#[test]
fn negotiated_context_from_captured_opens() {
    let open = |h| match decode_message(&hex(h), &FOUR) {
        Ok(Received::Open(o)) => o,
        other => panic!("{other:?}"),
    };
    let bird4 = open(BIRD_OPEN_AS4);
    let bird2 = open(BIRD_OPEN_AS2);
    let frr6 = open(FRR_OPEN_V6);
    assert_eq!(
        SessionContext::negotiated(&bird4, &frr6),
        SessionContext {
            four_octet_as: true,
            ipv4_unicast: false,
            ipv6_unicast: false
        }
    );
    assert_eq!(
        SessionContext::negotiated(&bird2, &bird4),
        SessionContext {
            four_octet_as: false,
            ipv4_unicast: true,
            ipv6_unicast: false
        }
    );
}

#[test]
fn keepalive() {
    golden(
        &hex("ffffffffffffffffffffffffffffffff 0013 04"),
        &FOUR,
        &Message::Keepalive,
    );
}

#[test]
fn notifications_from_bird() {
    // `birdc disable p1`: Cease / Administrative Shutdown.
    let n = Notification::new(6, 2, vec![]);
    assert_eq!(n.code_name(), "Cease");
    assert_eq!(n.subcode_name(), "Administrative Shutdown");
    golden(
        &hex("ffffffffffffffffffffffffffffffff 0015 03 0602"),
        &FOUR,
        &Message::Notification(n),
    );
    // `birdc disable p3 "maintenance"`: with an RFC 8203 shutdown message.
    let mut data = vec![11];
    data.extend_from_slice(b"maintenance");
    golden(
        &hex("ffffffffffffffffffffffffffffffff 0021 03 0602 0b6d61696e74656e616e6365"),
        &TWO,
        &Message::Notification(Notification::new(6, 2, data)),
    );
}

#[test]
fn route_refresh_bird_and_frr_enhanced() {
    // BIRD `reload in`: IPv4 unicast.
    golden(
        &hex("ffffffffffffffffffffffffffffffff 0017 05 00010001"),
        &FOUR,
        &Message::RouteRefresh(RouteRefresh::unicast(Afi::Ipv4)),
    );
    // FRR's answer framed by BoRR (1) and EoRR (2) (RFC 7313).
    for (sub, h) in [(1, "00010101"), (2, "00010201")] {
        let bytes = hex(&format!("ffffffffffffffffffffffffffffffff 0017 05 {h}"));
        let rr = RouteRefresh {
            afi: 1,
            subtype: sub,
            safi: 1,
        };
        assert_eq!(rr.afi(), Some(Afi::Ipv4));
        golden(&bytes, &FOUR, &Message::RouteRefresh(rr));
    }
}

/// BIRD eBGP IPv4 (4-octet session): ORIGIN, AS_PATH, NEXT_HOP, MED,
/// COMMUNITIES, two prefixes.
const BIRD_UPDATE_V4: &str = "ffffffffffffffffffffffffffffffff 004e 02 0000 002e
    400101 00  40020e 0203fa56ea010000fdf2fa56ea05  400304 0a000001  800404 00000032
    c00808 fde80064fde800c8  18c00002 19c6336480";

#[test]
fn bird_update_ipv4_four_octet() {
    let want = Update {
        attributes: Some(PathAttributes {
            origin: Origin::Igp,
            as_path: seq(&[4_200_000_001, 65010, 4_200_000_005]),
            next_hop: Some(IpAddr::V4(v4("10.0.0.1"))),
            med: Some(50),
            communities: vec![0xfde8_0064, 0xfde8_00c8],
            ..PathAttributes::default()
        }),
        nlri: vec![pfx("192.0.2.0/24"), pfx("198.51.100.128/25")],
        ..Update::default()
    };
    golden(&hex(BIRD_UPDATE_V4), &FOUR, &Message::Update(want));
}

/// BIRD iBGP IPv4 with `enable as4 off`: AS_PATH with AS_TRANS, AS4_PATH
/// with the real path, LOCAL_PREF, ORIGIN incomplete, and LARGE_COMMUNITY
/// (type 32, unknown here: kept, and passed on with the Partial bit).
const BIRD_UPDATE_AS2: &str = "ffffffffffffffffffffffffffffffff 0052 02 0000 0037
    400101 02  400206 0202fdf25ba0  400304 0a00000b  400504 0000012c
    c0110a 02020000fdf2fa56ea05  c0200c fa56ea010000000100000002  18cb0071";

#[test]
fn bird_update_two_octet_with_as4_path_and_unknown_attribute() {
    let bytes = hex(BIRD_UPDATE_AS2);
    let u = parsed(&bytes, &TWO);
    let large = RawAttribute {
        flags: 0xc0,
        type_code: 32,
        value: hex("fa56ea010000000100000002"),
    };
    let want = Update {
        attributes: Some(PathAttributes {
            origin: Origin::Incomplete,
            as_path: seq(&[65010, 4_200_000_005]),
            next_hop: Some(IpAddr::V4(v4("10.0.0.11"))),
            local_pref: Some(300),
            unknown: vec![large],
            ..PathAttributes::default()
        }),
        nlri: vec![pfx("203.0.113.0/24")],
        ..Update::default()
    };
    assert_eq!(u, want);
    // Passed on: the same bytes but the Partial bit on LARGE_COMMUNITY.
    let mut passed_on = bytes.clone();
    let at = passed_on.len() - 4 - 15;
    assert_eq!(passed_on[at..at + 2], [0xc0, 0x20]);
    passed_on[at] |= flag::PARTIAL;
    assert_eq!(Message::Update(want).to_bytes(&TWO).unwrap(), passed_on);
}

/// BIRD eBGP IPv6: MP_REACH_NLRI (extended length) with a 32-byte next
/// hop (global fd00::1 + link-local), ORIGIN, AS_PATH, COMMUNITIES.
const BIRD_UPDATE_V6: &str = "ffffffffffffffffffffffffffffffff 0064 02 0000 004d
    900e0035 0002 01 20 fd000000000000000000000000000001 fe800000000000009422d3fffeffa8dd 00
      3020010db80001 4020010db8000200 03
    400101 00  400206 0201fa56ea01  c00804 fde80258";

#[test]
fn bird_update_ipv6_mp_reach_with_link_local() {
    let want = Update {
        attributes: Some(PathAttributes {
            as_path: seq(&[4_200_000_001]),
            communities: vec![0xfde8_0258],
            ..PathAttributes::default()
        }),
        mp_reach: Some(MpReach {
            afi: Afi::Ipv6,
            next_hop: IpAddr::V6("fd00::1".parse().unwrap()),
            link_local_next_hop: Some("fe80::9422:d3ff:feff:a8dd".parse::<Ipv6Addr>().unwrap()),
            prefixes: vec![pfx("2001:db8:1::/48"), pfx("2001:db8:2:3::/64")],
        }),
        ..Update::default()
    };
    let a = want.attributes_for(Afi::Ipv6).unwrap();
    assert_eq!(a.next_hop, Some(IpAddr::V6("fd00::1".parse().unwrap())));
    golden(&hex(BIRD_UPDATE_V6), &FOUR, &Message::Update(want));
}

#[test]
fn end_of_rib_both_families() {
    let v4 = hex("ffffffffffffffffffffffffffffffff 0017 02 00000000");
    golden(&v4, &FOUR, &Message::Update(Update::end_of_rib(Afi::Ipv4)));
    assert_eq!(parsed(&v4, &FOUR).end_of_rib_afi(), Some(Afi::Ipv4));
    // BIRD's and FRR's IPv6 End-of-RIB: an empty MP_UNREACH_NLRI.
    let v6 = hex("ffffffffffffffffffffffffffffffff 001d 02 0000 0006 800f03000201");
    golden(&v6, &FOUR, &Message::Update(Update::end_of_rib(Afi::Ipv6)));
    assert_eq!(parsed(&v6, &FOUR).end_of_rib_afi(), Some(Afi::Ipv6));
}

#[test]
fn frr_withdraw() {
    let bytes = hex("ffffffffffffffffffffffffffffffff 001b 02 0004 18cb0071 0000");
    let want = Update {
        withdrawn: vec![pfx("203.0.113.0/24")],
        ..Update::default()
    };
    golden(&bytes, &FOUR, &Message::Update(want));
    let two = hex("ffffffffffffffffffffffffffffffff 0020 02 0009 18c00002 19c6336480 0000");
    assert_eq!(
        parsed(&two, &FOUR).withdrawn,
        vec![pfx("192.0.2.0/24"), pfx("198.51.100.128/25")]
    );
    golden(
        &two,
        &FOUR,
        &Message::Update(Update {
            withdrawn: vec![pfx("192.0.2.0/24"), pfx("198.51.100.128/25")],
            ..Update::default()
        }),
    );
}

/// FRR sets Extended Length on AS_PATH even when short; we decode it and
/// send the short form. Returns `bytes` with that flag cleared.
fn frr_short_as_path(bytes: &[u8], at: usize) -> Vec<u8> {
    assert_eq!(bytes[at..at + 2], [0x50, 0x02], "FRR's extended AS_PATH");
    let len = bytes[at + 3];
    assert_eq!(bytes[at + 2], 0);
    let mut out = bytes[..at].to_vec();
    out.extend_from_slice(&[0x40, 0x02, len]);
    out.extend_from_slice(&bytes[at + 4..]);
    // One byte shorter: fix the message and attribute lengths.
    let mlen = u16::from_be_bytes([out[16], out[17]]) - 1;
    out[16..18].copy_from_slice(&mlen.to_be_bytes());
    let wlen = usize::from(u16::from_be_bytes([out[19], out[20]]));
    let a = 21 + wlen;
    let alen = u16::from_be_bytes([out[a], out[a + 1]]) - 1;
    out[a..a + 2].copy_from_slice(&alen.to_be_bytes());
    out
}

/// FRR aggregate (4-octet session): ATOMIC_AGGREGATE, 8-byte AGGREGATOR.
const FRR_UPDATE_AGGREGATE: &str = "ffffffffffffffffffffffffffffffff 0044 02 0000 002a
    400101 00  50020006 02010000fdea  400304 0a000002  800404 00000000  400600
    c00708 0000fdea0a000002  100a0a";

#[test]
fn frr_update_aggregate_four_octet() {
    let bytes = hex(FRR_UPDATE_AGGREGATE);
    let want = Update {
        attributes: Some(PathAttributes {
            as_path: seq(&[65002]),
            next_hop: Some(IpAddr::V4(v4("10.0.0.2"))),
            med: Some(0),
            atomic_aggregate: true,
            aggregator: Some((65002, v4("10.0.0.2"))),
            ..PathAttributes::default()
        }),
        nlri: vec![pfx("10.10.0.0/16")],
        ..Update::default()
    };
    assert_eq!(parsed(&bytes, &FOUR), want);
    let sent = Message::Update(want).to_bytes(&FOUR).unwrap();
    assert_eq!(sent, frr_short_as_path(&bytes, 27));
}

/// The same aggregate to a 2-octet iBGP peer: 6-byte AGGREGATOR, empty
/// AS_PATH, LOCAL_PREF.
const FRR_UPDATE_AGGREGATE_AS2: &str = "ffffffffffffffffffffffffffffffff 0043 02 0000 0029
    400101 00  50020000  400304 0a000002  800404 00000000  400504 00000064  400600
    c00706 fdea0a000002  100a0a";

#[test]
fn frr_update_aggregate_two_octet() {
    let bytes = hex(FRR_UPDATE_AGGREGATE_AS2);
    let want = Update {
        attributes: Some(PathAttributes {
            next_hop: Some(IpAddr::V4(v4("10.0.0.2"))),
            med: Some(0),
            local_pref: Some(100),
            atomic_aggregate: true,
            aggregator: Some((65002, v4("10.0.0.2"))),
            ..PathAttributes::default()
        }),
        nlri: vec![pfx("10.10.0.0/16")],
        ..Update::default()
    };
    assert_eq!(parsed(&bytes, &TWO), want);
    let sent = Message::Update(want).to_bytes(&TWO).unwrap();
    assert_eq!(sent, frr_short_as_path(&bytes, 27));
}

/// FRR passing BIRD's route on to a 2-octet iBGP peer: AS_PATH with
/// AS_TRANS twice, AS4_PATH (extended length) with the real path.
const FRR_UPDATE_AS4_PATH: &str = "ffffffffffffffffffffffffffffffff 0062 02 0000 0042
    400101 00  50020008 02035ba0fdf25ba0  400304 0a000001  800404 00000032
    400504 00000064  c00808 fde80064fde800c8
    d011000e 0203fa56ea010000fdf2fa56ea05  18c00002 19c6336480";

#[test]
fn frr_update_as4_path_merge() {
    let bytes = hex(FRR_UPDATE_AS4_PATH);
    let want = Update {
        attributes: Some(PathAttributes {
            as_path: seq(&[4_200_000_001, 65010, 4_200_000_005]),
            next_hop: Some(IpAddr::V4(v4("10.0.0.1"))),
            med: Some(50),
            local_pref: Some(100),
            communities: vec![0xfde8_0064, 0xfde8_00c8],
            ..PathAttributes::default()
        }),
        nlri: vec![pfx("192.0.2.0/24"), pfx("198.51.100.128/25")],
        ..Update::default()
    };
    assert_eq!(parsed(&bytes, &TWO), want);
    // Ours: AS_PATH short form, AS4_PATH short form (14 bytes fit).
    let mut ours = frr_short_as_path(&bytes, 27);
    let at = ours.len() - 9 - 18;
    assert_eq!(ours[at..at + 4], [0xd0, 0x11, 0x00, 0x0e]);
    ours.splice(at..at + 4, [0xc0, 0x11, 0x0e]);
    ours[17] -= 1;
    ours[22] -= 1;
    assert_eq!(Message::Update(want).to_bytes(&TWO).unwrap(), ours);
}

/// FRR as route reflector to a 2-octet client: ORIGINATOR_ID, CLUSTER_LIST,
/// LARGE_COMMUNITY (unknown) and AS4_PATH, in FRR's own order.
const FRR_UPDATE_REFLECTED: &str = "ffffffffffffffffffffffffffffffff 0069 02 0000 004e
    400101 02  50020006 0202fdf25ba0  400304 0a00000b  800404 00000000  400504 0000012c
    c0200c fa56ea010000000100000002  800904 0a00000b  800a04 0a000063
    d011000a 02020000fdf2fa56ea05  18cb0071";

#[test]
fn frr_update_reflected_route() {
    let bytes = hex(FRR_UPDATE_REFLECTED);
    let want = Update {
        attributes: Some(PathAttributes {
            origin: Origin::Incomplete,
            as_path: seq(&[65010, 4_200_000_005]),
            next_hop: Some(IpAddr::V4(v4("10.0.0.11"))),
            med: Some(0),
            local_pref: Some(300),
            originator_id: Some(v4("10.0.0.11")),
            cluster_list: vec![v4("10.0.0.99")],
            unknown: vec![RawAttribute {
                flags: 0xc0,
                type_code: 32,
                value: hex("fa56ea010000000100000002"),
            }],
            ..PathAttributes::default()
        }),
        nlri: vec![pfx("203.0.113.0/24")],
        ..Update::default()
    };
    assert_eq!(parsed(&bytes, &TWO), want);
    // Ours is in type-code order, short AS4_PATH and AS_PATH, Partial set
    // on LARGE_COMMUNITY: the same attributes otherwise.
    let sent = Message::Update(want.clone()).to_bytes(&TWO).unwrap();
    assert_eq!(sent.len(), bytes.len() - 2);
    assert_eq!(parsed(&sent, &TWO), with_partial(want));
}

/// `u` as a peer receives it from us: unknown attributes marked Partial.
fn with_partial(mut u: Update) -> Update {
    if let Some(a) = &mut u.attributes {
        for r in &mut a.unknown {
            r.flags |= flag::PARTIAL;
        }
    }
    u
}

/// FRR eBGP IPv6: MP_REACH with a 16-byte next hop, AS_PATH extended.
const FRR_UPDATE_V6: &str = "ffffffffffffffffffffffffffffffff 004c 02 0000 0035
    900e001c 0002 01 10 fd000000000000000000000000000002 00 3020010db80099
    400101 00  50020006 02010000fdea  800404 00000000";

#[test]
fn frr_update_ipv6_global_next_hop() {
    let bytes = hex(FRR_UPDATE_V6);
    let want = Update {
        attributes: Some(PathAttributes {
            as_path: seq(&[65002]),
            med: Some(0),
            ..PathAttributes::default()
        }),
        mp_reach: Some(MpReach {
            afi: Afi::Ipv6,
            next_hop: IpAddr::V6("fd00::2".parse().unwrap()),
            link_local_next_hop: None,
            prefixes: vec![pfx("2001:db8:99::/48")],
        }),
        ..Update::default()
    };
    assert_eq!(parsed(&bytes, &FOUR), want);
    let sent = Message::Update(want).to_bytes(&FOUR).unwrap();
    assert_eq!(sent, frr_short_as_path(&bytes, 59));
}

#[test]
fn every_captured_message_decodes_and_reencodes_to_itself() {
    // Decode → encode → decode is the identity on every capture.
    for (h, ctx) in [
        (BIRD_OPEN_AS4, FOUR),
        (BIRD_OPEN_AS2, TWO),
        (FRR_OPEN_V6, FOUR),
        (BIRD_UPDATE_V4, FOUR),
        (BIRD_UPDATE_AS2, TWO),
        (BIRD_UPDATE_V6, FOUR),
        (FRR_UPDATE_AGGREGATE, FOUR),
        (FRR_UPDATE_AGGREGATE_AS2, TWO),
        (FRR_UPDATE_AS4_PATH, TWO),
        (FRR_UPDATE_REFLECTED, TWO),
        (FRR_UPDATE_V6, FOUR),
    ] {
        let m = as_message(decode_message(&hex(h), &ctx).unwrap()).unwrap();
        let again = m.to_bytes(&ctx).unwrap();
        let m = match m {
            Message::Update(u) => Message::Update(with_partial(u)),
            other => other,
        };
        assert_eq!(as_message(decode_message(&again, &ctx).unwrap()), Some(m));
    }
}
