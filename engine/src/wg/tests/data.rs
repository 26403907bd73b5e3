//! Data both ways: in place, padded, outer headers standard and valid.

use super::*;
use crate::wg::outer::{self, OUTER_HEADER_LEN};
use crate::wg::{steer, Steer, ENCAP_HEADROOM};

#[test]
fn data_flows_both_ways_in_place_with_valid_outer_headers() {
    let mut p = Pair::new(0, 0);
    p.handshake();
    for (from, len) in [
        (Side::A, 0usize),
        (Side::A, 5),
        (Side::B, 100),
        (Side::B, 1392),
        (Side::A, 1392),
    ] {
        let (src, dst) = if from == Side::A {
            (A_HOST, B_HOST)
        } else {
            (B_HOST, A_HOST)
        };
        let mut pkt = inner(&mut p.pool, src, dst, len);
        let original = pkt.data().to_vec();
        let addr = pkt.buffer_addr();
        let head = pkt.headroom();
        let now = p.now;
        assert_eq!(p.tunnel(from).encapsulate(PEER, &mut pkt, now), Encap::Sent);
        assert_eq!(pkt.buffer_addr(), addr, "same buffer");
        assert_eq!(
            pkt.headroom(),
            head - ENCAP_HEADROOM,
            "headers went into the headroom"
        );

        // Outer IPv4/UDP: addressed, IPv4 checksum valid, standard WG data message.
        let d = pkt.data();
        let ip = Ipv4Packet::new_checked(d).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(ip.ttl(), outer::OUTER_TTL);
        let (me, them) = if from == Side::A {
            (A_ADDR, B_ADDR)
        } else {
            (B_ADDR, A_ADDR)
        };
        assert_eq!(ip.src_addr(), *me.ip());
        assert_eq!(ip.dst_addr(), *them.ip());
        let u = UdpPacket::new_checked(ip.payload()).unwrap();
        assert_eq!((u.src_port(), u.dst_port()), (me.port(), them.port()));
        // No UDP checksum: WireGuard authenticates the message.
        assert_eq!(u.checksum(), 0);
        let msg = u.payload();
        assert_eq!(&msg[..4], &[4, 0, 0, 0]);
        // Plaintext padded to 16 (RFC-style WireGuard padding), plus header and tag.
        let n = original.len();
        let padded = n.next_multiple_of(16).min(1420).max(n);
        assert_eq!(msg.len(), 16 + padded + 16);
        assert_eq!(d.len(), OUTER_HEADER_LEN + msg.len());
        assert_eq!(
            steer(msg),
            Steer::Peer(PEER),
            "receiver index names the peer"
        );

        let to = from.other();
        let now = p.now;
        assert_eq!(p.tunnel(to).decapsulate(&mut pkt, now), Decap::Inner(PEER));
        assert_eq!(
            pkt.data(),
            &original[..],
            "inner packet restored, padding cut"
        );
        assert_eq!(pkt.buffer_addr(), addr);
    }
    let (a, b) = (
        p.a.peer_counters(PEER).unwrap(),
        p.b.peer_counters(PEER).unwrap(),
    );
    assert_eq!((a.tx_packets, a.rx_packets), (3, 2));
    assert_eq!((b.tx_packets, b.rx_packets), (2, 3));
    assert_eq!(
        a.drops_total(),
        1,
        "only the packet that started the handshake"
    );
    assert_eq!(b.drops_total(), 0);
}

#[test]
fn padding_stops_at_the_mtu() {
    let mut p = Pair::new(0, 0);
    p.handshake();
    // 1413 bytes of inner packet: rounding up to 1424 would pass the
    // 1420 MTU, so it is padded to 1420 only.
    let mut pkt = inner(&mut p.pool, A_HOST, B_HOST, 1413 - 28);
    let now = p.now;
    assert_eq!(p.a.encapsulate(PEER, &mut pkt, now), Encap::Sent);
    assert_eq!(pkt.len(), OUTER_HEADER_LEN + 16 + 1420 + 16);
    assert_eq!(p.b.decapsulate(&mut pkt, now), Decap::Inner(PEER));
    assert_eq!(pkt.len(), 1413);
}

#[test]
fn packet_without_headroom_is_refused() {
    let mut p = Pair::new(0, 0);
    p.handshake();
    let mut pkt = inner(&mut p.pool, A_HOST, B_HOST, 10);
    let n = pkt.len();
    // Move the data to the very front of the buffer.
    let bytes = pkt.data().to_vec();
    pkt.prepend(pkt.headroom()).unwrap();
    pkt.truncate(n);
    pkt.data_mut().copy_from_slice(&bytes);
    let now = p.now;
    assert_eq!(
        p.a.encapsulate(PEER, &mut pkt, now),
        Encap::Drop(crate::wg::WgDrop::TooBig)
    );
    assert_eq!(pkt.data(), &bytes[..], "left untouched");
}
