//! IPv6 through the pipeline: forwarding with the hop limit decremented,
//! ND resolution with held packets, solicitations for our addresses
//! (link-local too) answered, echo, ICMPv6 errors (unreachable, packet too
//! big, time exceeded), malformed headers counted by reason, ECMP spread,
//! ND failure, unsolicited advertisements, probing, and the punt path.

use std::net::Ipv6Addr;
use std::os::fd::AsRawFd;

use super::punt::{kernel_read, pair};
use super::*;
use crate::config::ipv6::link_local;
use crate::counters::{read, ICMPV6_ECHO_REPLIES_SENT, ND_ADVERTS_SENT, ND_SOLICITS_SENT};
use crate::neighbor::nd::{multicast_mac, solicited_node};
use crate::punt::{PuntTaps, Tap};
use crate::wire::icmpv6::{self, Icmpv6Packet, NdMessage};
use crate::wire::ipv6::{self, Ipv6Packet, NH_ICMPV6, NH_TCP, NH_UDP};

const V6: &str = r#"
[[interface]]
port = "a"
address = "2001:db8:1::1/64"
[[interface]]
port = "b"
address = "2001:db8:2::1/64"
[[route]]
prefix = "2001:db8:9::/48"
via = "2001:db8:2::254"
[[route]]
prefix = "2001:db8:e::/48"
via = ["2001:db8:2::10", "2001:db8:2::11", "2001:db8:2::12", "2001:db8:2::13"]
[[route]]
prefix = "2001:db8:dead::/48"
blackhole = true
"#;

const US_A: &str = "2001:db8:1::1";
const H1: &str = "2001:db8:1::2";
const GW: &str = "2001:db8:2::254";

fn a6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn rig6() -> Rig {
    rig(V6)
}

/// Ethernet + IPv6 header + `payload` (next header `nh`).
fn frame6(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop: u8,
    nh: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 40 + payload.len()];
    f[0..6].copy_from_slice(&dst_mac);
    f[6..12].copy_from_slice(&src_mac);
    f[12..14].copy_from_slice(&[0x86, 0xdd]);
    ipv6::emit_header(&mut f[14..], src, dst, nh, hop, payload.len() as u16).unwrap();
    f[54..].copy_from_slice(payload);
    f
}

/// A UDP datagram (checksum filled) from `src`:`sport` to `dst`.
fn udp6(src_mac: [u8; 6], src: &str, dst: &str, hop: u8, sport: u16, len: usize) -> Vec<u8> {
    let (s, d) = (a6(src), a6(dst));
    let mut u = vec![0xabu8; 8 + len];
    u[0..2].copy_from_slice(&sport.to_be_bytes());
    u[2..4].copy_from_slice(&9u16.to_be_bytes());
    u[4..6].copy_from_slice(&((8 + len) as u16).to_be_bytes());
    u[6..8].fill(0);
    let pseudo = ipv6::pseudo_header_sum(s, d, NH_UDP, u.len() as u32);
    let c = !checksum::fold(checksum::combine(pseudo, checksum::sum(&u)));
    u[6..8].copy_from_slice(&c.to_be_bytes());
    frame6(MAC_A, src_mac, s, d, hop, NH_UDP, &u)
}

/// A neighbor solicitation from `src` (source link-layer option `mac`
/// unless `src` is unspecified) for `target`, to its solicited-node group.
fn ns(to_port_mac: [u8; 6], mac: [u8; 6], src: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let dst = solicited_node(target);
    let mut f = vec![0u8; 14 + 40 + 32];
    f[0..6].copy_from_slice(&multicast_mac(dst));
    let _ = to_port_mac;
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&[0x86, 0xdd]);
    let sll = (!src.is_unspecified()).then_some(mac);
    let n = icmpv6::emit_neighbor_solicit(&mut f[14..], src, dst, target, sll).unwrap();
    f.truncate(14 + n);
    f
}

/// A neighbor advertisement of `target` at `mac`.
fn na(to_mac: [u8; 6], mac: [u8; 6], target: Ipv6Addr, dst: Ipv6Addr, flags: u8) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 40 + 32];
    f[0..6].copy_from_slice(&to_mac);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&[0x86, 0xdd]);
    let n =
        icmpv6::emit_neighbor_advert(&mut f[14..], target, dst, target, flags, Some(mac)).unwrap();
    f.truncate(14 + n);
    f
}

/// An echo request from `src` to `dst`.
fn echo6(dst_mac: [u8; 6], src_mac: [u8; 6], src: Ipv6Addr, dst: Ipv6Addr) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 40 + 16];
    f[0..6].copy_from_slice(&dst_mac);
    f[6..12].copy_from_slice(&src_mac);
    f[12..14].copy_from_slice(&[0x86, 0xdd]);
    icmpv6::emit_echo(
        &mut f[14..],
        src,
        dst,
        64,
        icmpv6::TYPE_ECHO_REQUEST,
        7,
        1,
        &[1, 2, 3, 4, 5, 6, 7, 8],
    )
    .unwrap();
    f
}

fn ip6(f: &[u8]) -> Ipv6Packet<&[u8]> {
    assert_eq!(f[12..14], [0x86, 0xdd], "an IPv6 frame");
    Ipv6Packet::new_checked(&f[14..]).expect("valid IPv6")
}

/// The ICMPv6 message of a frame, its checksum verified.
fn icmp_of(f: &[u8]) -> (u8, u8, Vec<u8>) {
    let ip = ip6(f);
    assert_eq!(ip.next_header(), NH_ICMPV6);
    let icmp = Icmpv6Packet::new_checked(ip.payload()).unwrap();
    assert!(
        icmp.verify_checksum(ip.src_addr(), ip.dst_addr()),
        "ICMPv6 checksum"
    );
    (icmp.msg_type(), icmp.code(), ip.payload().to_vec())
}

/// Teaches the engine h1's MAC (an NS from h1 for our address) and
/// returns the engine's NA.
fn learn_h1(r: &mut Rig, now: u64) -> Vec<u8> {
    r.a_in
        .borrow_mut()
        .push_back(ns(MAC_A, HOST1, a6(H1), a6(US_A)));
    r.run(now);
    pop(&r.a_out)
}

#[test]
fn without_ipv6_interfaces_ipv6_frames_are_unsupported_as_before() {
    let mut r = rig("");
    r.a_in
        .borrow_mut()
        .push_back(udp6(HOST1, H1, "2001:db8:9::5", 64, 1, 10));
    r.run(1);
    assert_eq!(r.drops(DropReason::EthUnsupportedType), 1);
    assert!(r.b_out.borrow().is_empty());
}

#[test]
fn solicitations_for_our_addresses_are_answered_link_local_too() {
    let mut r = rig6();
    let reply = learn_h1(&mut r, 1);
    assert_eq!(reply[0..6], HOST1);
    assert_eq!(reply[6..12], MAC_A);
    let ip = ip6(&reply);
    assert_eq!(
        (ip.src_addr(), ip.dst_addr(), ip.hop_limit()),
        (a6(US_A), a6(H1), 255)
    );
    match icmpv6::parse_nd(&ip).unwrap() {
        NdMessage::Advert {
            target,
            router,
            solicited,
            override_flag,
            target_ll,
        } => {
            assert_eq!(target, a6(US_A));
            assert!(router && solicited && override_flag);
            assert_eq!(target_ll, Some(MAC_A));
        }
        m => panic!("{m:?}"),
    }
    // Our link-local address on port b, from a link-local neighbor.
    let ll_b = link_local(MAC_B);
    assert_eq!(ll_b, a6("fe80::ff:fe00:b"));
    r.b_in
        .borrow_mut()
        .push_back(ns(MAC_B, HOST2, a6("fe80::2"), ll_b));
    r.run(2);
    let reply = pop(&r.b_out);
    let ip = ip6(&reply);
    assert_eq!((ip.src_addr(), ip.dst_addr()), (ll_b, a6("fe80::2")));
    assert!(
        matches!(icmpv6::parse_nd(&ip), Ok(NdMessage::Advert { target, .. }) if target == ll_b)
    );
    // Duplicate address detection (unspecified source): to all nodes.
    r.a_in
        .borrow_mut()
        .push_back(ns(MAC_A, HOST1, Ipv6Addr::UNSPECIFIED, a6(US_A)));
    r.run(3);
    let reply = pop(&r.a_out);
    assert_eq!(reply[0..6], [0x33, 0x33, 0, 0, 0, 1]);
    assert_eq!(ip6(&reply).dst_addr(), a6("ff02::1"));
    // Port a's link-local is not port b's: its group is not joined there.
    r.b_in
        .borrow_mut()
        .push_back(ns(MAC_B, HOST2, a6("fe80::2"), link_local(MAC_A)));
    r.run(4);
    assert_eq!(r.drops(DropReason::Ipv6MulticastNotJoined), 1);
    // An NS to our address for another target: not for us.
    let mut f = ns(MAC_B, HOST2, a6("2001:db8:2::9"), a6("2001:db8:2::99"));
    f[0..6].copy_from_slice(&MAC_B);
    let n = icmpv6::emit_neighbor_solicit(
        &mut f[14..],
        a6("2001:db8:2::9"),
        a6("2001:db8:2::1"),
        a6("2001:db8:2::99"),
        Some(HOST2),
    )
    .unwrap();
    f.truncate(14 + n);
    r.b_in.borrow_mut().push_back(f);
    r.run(5);
    assert!(r.b_out.borrow().is_empty());
    assert_eq!(r.drops(DropReason::Ipv6NdNotForUs), 1);
    assert_eq!(read(&r.counters.ipv6[ND_ADVERTS_SENT]), 3);
}

#[test]
fn forwards_after_nd_with_held_packets_and_hop_limit_decremented() {
    let mut r = rig6();
    let pkt = udp6(HOST1, H1, "2001:db8:9::5", 64, 1000, 20);
    r.a_in.borrow_mut().push_back(pkt.clone());
    r.a_in.borrow_mut().push_back(pkt.clone());
    r.run(1);
    // One solicitation to the gateway's solicited-node group, both held.
    let sol = pop(&r.b_out);
    assert!(r.b_out.borrow().is_empty());
    let g = solicited_node(a6(GW));
    assert_eq!(sol[0..6], multicast_mac(g));
    assert_eq!(sol[6..12], MAC_B);
    let ip = ip6(&sol);
    assert_eq!((ip.src_addr(), ip.dst_addr()), (a6("2001:db8:2::1"), g));
    assert!(
        matches!(icmpv6::parse_nd(&ip), Ok(NdMessage::Solicit { target, source_ll: Some(m) }) if target == a6(GW) && m == MAC_B)
    );
    assert_eq!(r.p.pending_len(), 2);
    assert_eq!(read(&r.counters.ipv6[ND_SOLICITS_SENT]), 1);
    // The gateway answers: both leave, in order, rewritten.
    r.b_in.borrow_mut().push_back(na(
        MAC_B,
        HOST2,
        a6(GW),
        a6("2001:db8:2::1"),
        icmpv6::NA_FLAG_SOLICITED | icmpv6::NA_FLAG_OVERRIDE | icmpv6::NA_FLAG_ROUTER,
    ));
    r.run(2);
    for _ in 0..2 {
        let out = pop(&r.b_out);
        assert_eq!(out[0..6], HOST2);
        assert_eq!(out[6..12], MAC_B);
        assert_eq!(out[14 + 7], 63, "hop limit decremented");
        assert_eq!(out[12..], {
            let mut want = pkt[12..].to_vec();
            want[2 + 7] = 63;
            want
        });
    }
    assert_eq!(r.p.pending_len(), 0);
    // Resolved now: the next one goes straight out.
    r.a_in.borrow_mut().push_back(pkt.clone());
    r.run(3);
    assert_eq!(pop(&r.b_out)[0..6], HOST2);
    assert_eq!(r.counters.total_drops(), 0);
}

#[test]
fn hop_limit_one_gets_time_exceeded_from_our_address() {
    let mut r = rig6();
    learn_h1(&mut r, 1);
    r.a_in
        .borrow_mut()
        .push_back(udp6(HOST1, H1, "2001:db8:9::5", 1, 1000, 20));
    r.run(2);
    let err = pop(&r.a_out);
    assert_eq!(err[0..6], HOST1);
    let ip = ip6(&err);
    assert_eq!((ip.src_addr(), ip.dst_addr()), (a6(US_A), a6(H1)));
    let (t, c, body) = icmp_of(&err);
    assert_eq!(
        (t, c),
        (icmpv6::TYPE_TIME_EXCEEDED, icmpv6::CODE_HOP_LIMIT_EXCEEDED)
    );
    // The invoking packet is quoted from its IPv6 header on.
    assert_eq!(
        Ipv6Packet::new_unchecked(&body[8..]).dst_addr(),
        a6("2001:db8:9::5")
    );
    assert_eq!(r.drops(DropReason::Ipv6HopLimit), 1);
    assert!(r.b_out.borrow().is_empty());
}

#[test]
fn no_route_and_too_big_get_their_errors() {
    let cfg = CFG.replace(
        "name = \"b\"\ndriver = \"mem\"",
        "name = \"b\"\ndriver = \"mem\"\nmtu = 1280",
    );
    let mut r = rig_from(&format!("{cfg}{V6}"));
    learn_h1(&mut r, 1);
    r.a_in
        .borrow_mut()
        .push_back(udp6(HOST1, H1, "2001:db8:77::1", 64, 1, 20));
    r.run(2);
    let (t, c, _) = icmp_of(&pop(&r.a_out));
    assert_eq!(
        (t, c),
        (icmpv6::TYPE_DEST_UNREACHABLE, icmpv6::CODE_NO_ROUTE)
    );
    assert_eq!(r.drops(DropReason::Ipv6NoRoute), 1);
    // 1400 bytes of IPv6 towards a 1280-byte link.
    r.a_in
        .borrow_mut()
        .push_back(udp6(HOST1, H1, "2001:db8:9::5", 64, 1, 1400 - 48));
    r.run(3);
    let (t, _, body) = icmp_of(&pop(&r.a_out));
    assert_eq!(t, icmpv6::TYPE_PACKET_TOO_BIG);
    assert_eq!(u32::from_be_bytes(body[4..8].try_into().unwrap()), 1280);
    assert!(body.len() <= 1280 - 40, "the error fits the minimum MTU");
    assert_eq!(r.drops(DropReason::Ipv6TooBig), 1);
    // A blackhole drops silently.
    r.a_in
        .borrow_mut()
        .push_back(udp6(HOST1, H1, "2001:db8:dead::1", 64, 1, 20));
    r.run(4);
    assert_eq!(r.drops(DropReason::Blackhole), 1);
    assert!(r.a_out.borrow().is_empty() && r.b_out.borrow().is_empty());
}

#[test]
fn echo_requests_to_our_addresses_are_answered() {
    let mut r = rig6();
    learn_h1(&mut r, 1);
    for (i, dst) in [a6(US_A), a6("2001:db8:2::1")].into_iter().enumerate() {
        r.a_in
            .borrow_mut()
            .push_back(echo6(MAC_A, HOST1, a6(H1), dst));
        r.run(2 + i as u64);
        let reply = pop(&r.a_out);
        assert_eq!(reply[0..6], HOST1);
        let ip = ip6(&reply);
        assert_eq!((ip.src_addr(), ip.dst_addr()), (dst, a6(H1)));
        let (t, c, body) = icmp_of(&reply);
        assert_eq!((t, c), (icmpv6::TYPE_ECHO_REPLY, 0));
        assert_eq!(body[4..], [0, 7, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8]);
    }
    // Link-local: the neighbor is learnt from its solicitation first.
    let ll = link_local(MAC_A);
    r.a_in
        .borrow_mut()
        .push_back(ns(MAC_A, HOST1, a6("fe80::2"), ll));
    r.a_in
        .borrow_mut()
        .push_back(echo6(MAC_A, HOST1, a6("fe80::2"), ll));
    r.run(5);
    let _na = pop(&r.a_out);
    let reply = pop(&r.a_out);
    assert_eq!(ip6(&reply).src_addr(), ll);
    assert_eq!(icmp_of(&reply).0, icmpv6::TYPE_ECHO_REPLY);
    assert_eq!(read(&r.counters.ipv6[ICMPV6_ECHO_REPLIES_SENT]), 3);
}

#[test]
fn malformed_and_unforwardable_packets_are_counted_by_reason() {
    let mut r = rig6();
    let good = udp6(HOST1, H1, "2001:db8:9::5", 64, 1, 20);
    let mut short = good.clone();
    short.truncate(14 + 30);
    let mut version = good.clone();
    version[14] = 0x45;
    let mut length = good.clone();
    length[14 + 4..14 + 6].copy_from_slice(&500u16.to_be_bytes());
    let mcast_src = frame6(MAC_A, HOST1, a6("ff02::5"), a6(US_A), 64, NH_UDP, &[0; 8]);
    let group = frame6(
        [0x33, 0x33, 0, 0, 0, 0x16],
        HOST1,
        a6(H1),
        a6("ff02::16"),
        1,
        NH_ICMPV6,
        &[143, 0, 0, 0, 0, 0, 0, 0],
    );
    let ll_other = frame6(MAC_A, HOST1, a6(H1), a6("fe80::99"), 64, NH_UDP, &[0; 8]);
    let ll_src = frame6(
        MAC_A,
        HOST1,
        a6("fe80::2"),
        a6("2001:db8:9::5"),
        64,
        NH_UDP,
        &[0; 8],
    );
    // A hop-by-hop header claiming 16 bytes with 8 there.
    let bad_ext = frame6(
        MAC_A,
        HOST1,
        a6(H1),
        a6(US_A),
        64,
        0,
        &[NH_UDP, 1, 0, 0, 0, 0, 0, 0],
    );
    let other_mac = frame6(
        [2, 9, 9, 9, 9, 9],
        HOST1,
        a6(H1),
        a6(US_A),
        64,
        NH_UDP,
        &[0; 8],
    );
    for f in [
        short, version, length, mcast_src, group, ll_other, ll_src, bad_ext, other_mac,
    ] {
        r.a_in.borrow_mut().push_back(f);
    }
    r.run(1);
    for (reason, n) in [
        (DropReason::Ipv6Truncated, 1),
        (DropReason::Ipv6BadVersion, 1),
        (DropReason::Ipv6BadLength, 1),
        (DropReason::Ipv6BadSource, 1),
        (DropReason::Ipv6MulticastNotJoined, 1),
        (DropReason::Ipv6NotForwardable, 2),
        (DropReason::Ipv6BadExtHeader, 1),
        (DropReason::EthNotForUs, 1),
    ] {
        assert_eq!(r.drops(reason), n, "{reason:?}");
    }
    assert!(r.b_out.borrow().is_empty(), "nothing forwarded");
}

#[test]
fn ecmp_spreads_flows_and_keeps_each_on_one_next_hop() {
    let mut r = rig6();
    let macs: Vec<[u8; 6]> = (0..4).map(|i| [2, 0, 0, 0, 3, i]).collect();
    for (i, m) in macs.iter().enumerate() {
        let gw = a6(&format!("2001:db8:2::1{i}"));
        r.b_in
            .borrow_mut()
            .push_back(ns(MAC_B, *m, gw, a6("2001:db8:2::1")));
    }
    r.run(1);
    r.b_out.borrow_mut().clear();
    let mut seen = std::collections::HashMap::new();
    for round in 0..2 {
        for sport in 0..64u16 {
            r.a_in
                .borrow_mut()
                .push_back(udp6(HOST1, H1, "2001:db8:e::1", 64, 2000 + sport, 10));
            r.run(2 + round);
            let out = pop(&r.b_out);
            let mac: [u8; 6] = out[0..6].try_into().unwrap();
            assert!(macs.contains(&mac));
            assert_eq!(
                *seen.entry(sport).or_insert(mac),
                mac,
                "flow {sport} stays on its next hop"
            );
        }
    }
    let used: std::collections::HashSet<_> = seen.values().collect();
    assert!(
        used.len() >= 3,
        "64 flows over 4 next hops used {}",
        used.len()
    );
}

#[test]
fn unresolved_next_hop_fails_after_the_retries_and_says_address_unreachable() {
    let mut r = rig6();
    learn_h1(&mut r, 1);
    r.a_in
        .borrow_mut()
        .push_back(udp6(HOST1, H1, "2001:db8:9::5", 64, 1, 20));
    r.run(2);
    let mut solicits = 1;
    r.b_out.borrow_mut().clear();
    // Each timer sweep visits part of the cache: sweep it whole per step.
    for s in 1..=6u64 {
        for k in 0..20 {
            r.p.housekeeping(s * 1_000_000_000 + 10 + k);
        }
        solicits += r.b_out.borrow_mut().drain(..).count();
    }
    // (Drops are published at the end of a poll.)
    r.run(7_000_000_000);
    assert_eq!(solicits, 3, "MAX_MULTICAST_SOLICIT");
    assert_eq!(r.drops(DropReason::Ipv6NdUnresolved), 1);
    assert_eq!(r.p.pending_len(), 0);
    let (t, c, _) = icmp_of(&pop(&r.a_out));
    assert_eq!(
        (t, c),
        (icmpv6::TYPE_DEST_UNREACHABLE, icmpv6::CODE_ADDR_UNREACHABLE)
    );
}

#[test]
fn unsolicited_advert_moves_a_neighbor_and_stale_ones_are_probed() {
    let mut r = rig6();
    let pkt = udp6(HOST1, H1, "2001:db8:9::5", 64, 1, 20);
    r.a_in.borrow_mut().push_back(pkt.clone());
    r.run(1);
    r.b_out.borrow_mut().clear();
    let solicited = icmpv6::NA_FLAG_SOLICITED | icmpv6::NA_FLAG_OVERRIDE;
    r.b_in
        .borrow_mut()
        .push_back(na(MAC_B, HOST2, a6(GW), a6("2001:db8:2::1"), solicited));
    r.run(2);
    assert_eq!(pop(&r.b_out)[0..6], HOST2);
    // The gateway moved: an unsolicited advertisement with override.
    let moved = [2, 0, 0, 0, 2, 9];
    r.b_in.borrow_mut().push_back(na(
        [0x33, 0x33, 0, 0, 0, 1],
        moved,
        a6(GW),
        a6("ff02::1"),
        icmpv6::NA_FLAG_OVERRIDE,
    ));
    r.run(3);
    r.a_in.borrow_mut().push_back(pkt.clone());
    r.run(4);
    assert_eq!(pop(&r.b_out)[0..6], moved);
    // Unsolicited made it STALE, the send above DELAY: 5 s on, a unicast probe.
    for k in 0..20 {
        r.p.housekeeping(6_000_000_000 + k);
    }
    let probe = pop(&r.b_out);
    assert_eq!(probe[0..6], moved, "unicast to the neighbor");
    let ip = ip6(&probe);
    assert_eq!(ip.dst_addr(), a6(GW));
    assert!(
        matches!(icmpv6::parse_nd(&ip), Ok(NdMessage::Solicit { target, .. }) if target == a6(GW))
    );
}

#[test]
fn permanent_neighbors_need_no_solicitation() {
    let mut r = rig(&format!(
        "{V6}[[neighbor]]\nport = \"b\"\naddress = \"{GW}\"\nmac = \"02:00:00:00:02:02\"\n"
    ));
    r.a_in
        .borrow_mut()
        .push_back(udp6(HOST1, H1, "2001:db8:9::5", 64, 1, 20));
    r.run(1);
    let out = pop(&r.b_out);
    assert_eq!(out[0..6], HOST2);
    assert_eq!(read(&r.counters.ipv6[ND_SOLICITS_SENT]), 0);
}

#[test]
fn punt_path_gets_tcp_and_copies_of_nd_and_sends_what_the_kernel_writes() {
    let mut r = rig6();
    let (a_engine, a_kernel) = pair();
    let (b_engine, _b_kernel) = pair();
    let taps = PuntTaps::ready(vec![
        Some(Tap::from_fd(a_engine, "lcp-a")),
        Some(Tap::from_fd(b_engine, "lcp-b")),
    ]);
    r.p.set_punt(Arc::new(taps), 1000, 100, true);
    let sol = ns(MAC_A, HOST1, a6(H1), a6(US_A));
    r.a_in.borrow_mut().push_back(sol.clone());
    let syn = frame6(
        MAC_A,
        HOST1,
        a6(H1),
        a6(US_A),
        64,
        NH_TCP,
        &[
            0xc0, 0, 0, 179, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 2, 0xff, 0xff, 0, 0, 0, 0,
        ],
    );
    r.a_in.borrow_mut().push_back(syn.clone());
    r.run(1);
    assert_eq!(
        kernel_read(&a_kernel),
        Some(sol),
        "the kernel's copy of the NS"
    );
    assert_eq!(kernel_read(&a_kernel), Some(syn), "TCP to our address");
    assert_eq!(kernel_read(&a_kernel), None);
    // The engine still answered the NS itself.
    assert_eq!(icmp_of(&pop(&r.a_out)).0, icmpv6::TYPE_NEIGHBOR_ADVERT);
    // Echo stays the engine's.
    r.a_in
        .borrow_mut()
        .push_back(echo6(MAC_A, HOST1, a6(H1), a6(US_A)));
    r.run(2);
    assert_eq!(icmp_of(&pop(&r.a_out)).0, icmpv6::TYPE_ECHO_REPLY);
    assert_eq!(kernel_read(&a_kernel), None);
    // The kernel's own solicitation leaves through the port unchanged.
    let out = ns(MAC_A, MAC_A, a6(US_A), a6(H1));
    crate::punt::tap::write_fd(a_kernel.as_raw_fd(), &out).unwrap();
    // (After the reader's idle interval.)
    r.run(1_000_000);
    assert_eq!(pop(&r.a_out), out);
}
