//! Refused packets: each dropped under its reason and counted where it
//! belongs (the peer when known, the tunnel otherwise).

use super::*;
use crate::wg::{WgDrop, MSG_HANDSHAKE_RESP};

fn peer_drops(t: &Tunnel, why: WgDrop) -> u64 {
    t.peer_counters(PEER).unwrap().drops[why.index()]
}

#[test]
fn replayed_data_packet_is_dropped_and_counted() {
    let mut p = Pair::new(0, 0);
    p.handshake();
    let pkt = p.send(Side::A, 60);
    let copy = p.pool.alloc_from(pkt.data()).unwrap();
    assert!(matches!(p.deliver(Side::B, pkt), Decap::Inner(PEER)));
    assert_eq!(p.deliver(Side::B, copy), Decap::Drop(WgDrop::Replay));
    assert_eq!(peer_drops(&p.b, WgDrop::Replay), 1);
    // Older packets that were never seen are still accepted (the window).
    let first = p.send(Side::A, 10);
    let second = p.send(Side::A, 10);
    let again = p.pool.alloc_from(second.data()).unwrap();
    assert!(matches!(p.deliver(Side::B, second), Decap::Inner(PEER)));
    assert!(
        matches!(p.deliver(Side::B, first), Decap::Inner(PEER)),
        "reordered, not replayed"
    );
    assert_eq!(p.deliver(Side::B, again), Decap::Drop(WgDrop::Replay));
    assert_eq!(peer_drops(&p.b, WgDrop::Replay), 2);
}

#[test]
fn tampered_data_packet_fails_its_mac() {
    let mut p = Pair::new(0, 0);
    p.handshake();
    for at in [28 + 16, 28 + 40, usize::MAX] {
        let mut pkt = p.send(Side::A, 60);
        let d = pkt.data_mut();
        let at = at.min(d.len() - 1); // last byte: the tag
        d[at] ^= 0x01;
        fix_udp_checksum(d);
        assert_eq!(p.deliver(Side::B, pkt), Decap::Drop(WgDrop::BadMac));
    }
    assert_eq!(peer_drops(&p.b, WgDrop::BadMac), 3);
    // The session survives: the next good packet goes through.
    let pkt = p.send(Side::A, 60);
    assert!(matches!(p.deliver(Side::B, pkt), Decap::Inner(PEER)));
}

#[test]
fn tampered_handshake_fails_mac1_before_any_peer_is_known() {
    let mut p = Pair::new(0, 0);
    let (_, mut init) = p.encap(Side::A, 20);
    let d = init.data_mut();
    d[28 + 60] ^= 0x80;
    fix_udp_checksum(d);
    assert_eq!(p.deliver(Side::B, init), Decap::Drop(WgDrop::BadMac));
    assert_eq!(p.b.counters().drops[WgDrop::BadMac.index()], 1);
    // A tampered response is refused by A's peer state.
    let (_, init) = {
        let mut q = Pair::new(0, 0);
        std::mem::swap(&mut p, &mut q);
        p.encap(Side::A, 20)
    };
    let mut resp = init;
    let now = p.now;
    assert_eq!(p.b.decapsulate(&mut resp, now), Decap::Reply(Some(PEER)));
    assert_eq!(msg_type(resp.data()), MSG_HANDSHAKE_RESP);
    let d = resp.data_mut();
    d[28 + 50] ^= 0x01;
    fix_udp_checksum(d);
    assert_eq!(p.a.decapsulate(&mut resp, now), Decap::Drop(WgDrop::BadMac));
    assert_eq!(peer_drops(&p.a, WgDrop::BadMac), 1);
    assert_eq!(p.a.peer_counters(PEER).unwrap().handshakes_completed, 0);
}

#[test]
fn inner_source_outside_allowed_ips_is_dropped() {
    let mut p = Pair::new(0, 0);
    p.handshake();
    // A sends (encryption does not check sources) a packet from a host
    // that is not behind A as far as B is concerned.
    let mut pkt = inner(&mut p.pool, Ipv4Addr::new(10, 9, 9, 9), B_HOST, 30);
    let now = p.now;
    assert_eq!(p.a.encapsulate(PEER, &mut pkt, now), Encap::Sent);
    assert_eq!(p.deliver(Side::B, pkt), Decap::Drop(WgDrop::NotAllowedIp));
    // Even a source B routes to nobody, and B's own network, are refused.
    let mut pkt = inner(&mut p.pool, Ipv4Addr::new(10, 2, 0, 1), B_HOST, 30);
    assert_eq!(p.a.encapsulate(PEER, &mut pkt, now), Encap::Sent);
    assert_eq!(p.deliver(Side::B, pkt), Decap::Drop(WgDrop::NotAllowedIp));
    assert_eq!(peer_drops(&p.b, WgDrop::NotAllowedIp), 2);
    assert_eq!(p.b.peer_counters(PEER).unwrap().rx_packets, 0);
}

#[test]
fn unknown_peer_is_dropped() {
    let mut p = Pair::new(0, 0);
    // C knows B, but B does not know C.
    let c_cfg = config(
        KEY_C,
        A_ADDR,
        KEY_B,
        Some(B_ADDR),
        (Ipv4Addr::new(10, 2, 0, 0), 24),
        0,
    );
    let mut c = Tunnel::new(&c_cfg, 0, 1, p.now).unwrap();
    let mut pkt = inner(&mut p.pool, A_HOST, B_HOST, 10);
    let now = p.now;
    assert_eq!(c.encapsulate(PEER, &mut pkt, now), Encap::Handshake);
    assert_eq!(p.b.decapsulate(&mut pkt, now), Decap::Drop(WgDrop::NoPeer));
    assert_eq!(p.b.counters().drops[WgDrop::NoPeer.index()], 1);

    // Data naming a receiver index no peer has.
    p.handshake();
    let mut pkt = p.send(Side::A, 10);
    let d = pkt.data_mut();
    d[28 + 4..28 + 8].copy_from_slice(&(77u32 << 8).to_le_bytes());
    fix_udp_checksum(d);
    assert_eq!(p.deliver(Side::B, pkt), Decap::Drop(WgDrop::NoPeer));
    assert_eq!(p.b.counters().drops[WgDrop::NoPeer.index()], 2);
    // Encapsulating for a peer that does not exist.
    let mut pkt = inner(&mut p.pool, A_HOST, B_HOST, 10);
    assert_eq!(
        p.a.encapsulate(PeerId(5), &mut pkt, now),
        Encap::Drop(WgDrop::NoPeer)
    );
}

#[test]
fn malformed_outer_packets_are_dropped() {
    let mut p = Pair::new(0, 0);
    p.handshake();
    let good = p.send(Side::A, 20).data().to_vec();
    let now = p.now;
    let cases: Vec<Vec<u8>> = vec![
        vec![],
        good[..20].to_vec(),
        // Wrong UDP port.
        {
            let mut b = good.clone();
            b[22..24].copy_from_slice(&1234u16.to_be_bytes());
            fix_udp_checksum(&mut b);
            b
        },
        // Bad UDP checksum.
        {
            let mut b = good.clone();
            b[26] ^= 0xff;
            b
        },
        // Unknown message type.
        {
            let mut b = good.clone();
            b[28] = 9;
            fix_udp_checksum(&mut b);
            b
        },
        // Data message shorter than header + tag.
        {
            let mut b = good[..28 + 31].to_vec();
            b[2..4].copy_from_slice(&(59u16).to_be_bytes());
            b[10..12].copy_from_slice(&[0, 0]);
            let c = checksum(&b[..20]);
            b[10..12].copy_from_slice(&c.to_be_bytes());
            b[24..26].copy_from_slice(&(39u16).to_be_bytes());
            fix_udp_checksum(&mut b);
            b
        },
    ];
    let n = cases.len() as u64;
    for bytes in cases {
        let mut pkt = p.pool.alloc_from(&bytes).unwrap();
        assert_eq!(
            p.b.decapsulate(&mut pkt, now),
            Decap::Drop(WgDrop::Malformed),
            "{bytes:02x?}"
        );
    }
    assert_eq!(p.b.counters().drops[WgDrop::Malformed.index()], n);
}

#[test]
fn decrypted_garbage_that_is_not_ip_is_malformed() {
    let mut p = Pair::new(0, 0);
    p.handshake();
    let mut pkt = p.pool.alloc_from(&[0x60u8; 10]).unwrap(); // "IPv6", too short
    let now = p.now;
    assert_eq!(p.a.encapsulate(PEER, &mut pkt, now), Encap::Sent);
    assert_eq!(p.deliver(Side::B, pkt), Decap::Drop(WgDrop::Malformed));
    assert_eq!(peer_drops(&p.b, WgDrop::Malformed), 1);
}
