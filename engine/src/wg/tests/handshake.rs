//! Handshakes: the first packet starts one, both sides end with a session
//! and count it; cookie replies under load; roaming endpoints.

use super::*;
use crate::wg::{
    steer, Steer, WgDrop, MSG_COOKIE_REPLY, MSG_DATA, MSG_HANDSHAKE_INIT, MSG_HANDSHAKE_RESP,
};

#[test]
fn first_packet_starts_a_handshake_that_completes_on_both_sides() {
    let mut p = Pair::new(0, 0);
    let (r, init) = p.encap(Side::A, 20);
    assert_eq!(r, Encap::Handshake);
    // The inner packet was dropped for want of a session, and counted.
    assert_eq!(
        p.a.peer_counters(PEER).unwrap().drops[WgDrop::NoSession.index()],
        1
    );
    assert_eq!(msg_type(init.data()), MSG_HANDSHAKE_INIT);
    assert_eq!(msg_of(init.data()).len(), 148);
    assert_eq!(steer(msg_of(init.data())), Steer::Initiation);
    assert_eq!(crate::wg::outer::dst_of(init.data()), Some(B_ADDR));

    // B answers with a response to where the initiation came from.
    let mut pkt = init;
    let now = p.now;
    assert_eq!(p.b.decapsulate(&mut pkt, now), Decap::Reply(Some(PEER)));
    assert_eq!(msg_type(pkt.data()), MSG_HANDSHAKE_RESP);
    assert_eq!(crate::wg::outer::dst_of(pkt.data()), Some(A_ADDR));
    assert_eq!(
        p.b.peer_endpoint(PEER),
        Some(A_ADDR),
        "B learnt A's endpoint"
    );

    // A completes and confirms with a keepalive, which B takes silently.
    assert_eq!(p.a.decapsulate(&mut pkt, now), Decap::Reply(Some(PEER)));
    assert_eq!(msg_type(pkt.data()), MSG_DATA);
    assert_eq!(msg_of(pkt.data()).len(), 32, "an empty data message");
    assert_eq!(p.b.decapsulate(&mut pkt, now), Decap::Consumed(PEER));

    for t in [&p.a, &p.b] {
        let c = t.peer_counters(PEER).unwrap();
        assert_eq!(c.handshakes_completed, 1);
        assert_eq!(c.last_handshake_ns, now);
    }
    let (a, b) = (
        p.a.peer_counters(PEER).unwrap(),
        p.b.peer_counters(PEER).unwrap(),
    );
    assert_eq!(a.handshake_initiations_sent, 1);
    assert_eq!(b.handshake_responses_sent, 1);
    assert_eq!(a.keepalives_sent, 1);
    assert_eq!(b.keepalives_received, 1);
    assert_eq!(a.tx_bytes, 148 + 32);
    assert_eq!(b.rx_bytes, 148 + 32);

    // Now data goes through.
    let pkt = p.send(Side::A, 100);
    assert!(matches!(p.deliver(Side::B, pkt), Decap::Inner(PEER)));
}

#[test]
fn second_packet_during_a_handshake_is_dropped_without_a_new_initiation() {
    let mut p = Pair::new(0, 0);
    let (r, _init) = p.encap(Side::A, 20);
    assert_eq!(r, Encap::Handshake);
    let (r, _pkt) = p.encap(Side::A, 20);
    assert_eq!(r, Encap::Drop(WgDrop::NoSession));
    let c = p.a.peer_counters(PEER).unwrap();
    assert_eq!(c.drops[WgDrop::NoSession.index()], 2);
    assert_eq!(c.handshake_initiations_sent, 1);
}

#[test]
fn responder_without_endpoint_cannot_start() {
    // B has no endpoint for A until A has spoken.
    let mut p = Pair::new(0, 0);
    let (r, _pkt) = p.encap(Side::B, 20);
    assert_eq!(r, Encap::Drop(WgDrop::NoEndpoint));
    assert_eq!(
        p.b.peer_counters(PEER).unwrap().drops[WgDrop::NoEndpoint.index()],
        1
    );
}

#[test]
fn handshake_with_preshared_key() {
    let psk = Some([0x5a; 32]);
    let mut a_cfg = config(
        KEY_A,
        A_ADDR,
        KEY_B,
        Some(B_ADDR),
        (Ipv4Addr::new(10, 2, 0, 0), 24),
        0,
    );
    let mut b_cfg = config(
        KEY_B,
        B_ADDR,
        KEY_A,
        None,
        (Ipv4Addr::new(10, 1, 0, 0), 24),
        0,
    );
    a_cfg.peers[0].preshared_key = psk;
    b_cfg.peers[0].preshared_key = psk;
    let mut p = Pair::new(0, 0);
    p.a = Tunnel::new(&a_cfg, 0, 1, p.now).unwrap();
    p.b = Tunnel::new(&b_cfg, 0, 1, p.now).unwrap();
    p.handshake();
    let pkt = p.send(Side::A, 64);
    assert!(matches!(p.deliver(Side::B, pkt), Decap::Inner(PEER)));

    // A different PSK on B: the response does not verify at A.
    b_cfg.peers[0].preshared_key = Some([0x5b; 32]);
    let mut p = Pair::new(0, 0);
    p.a = Tunnel::new(&a_cfg, 0, 1, p.now).unwrap();
    p.b = Tunnel::new(&b_cfg, 0, 1, p.now).unwrap();
    let (_, mut pkt) = p.encap(Side::A, 20);
    let now = p.now;
    assert_eq!(p.b.decapsulate(&mut pkt, now), Decap::Reply(Some(PEER)));
    assert_eq!(p.a.decapsulate(&mut pkt, now), Decap::Drop(WgDrop::BadMac));
    assert_eq!(p.a.peer_counters(PEER).unwrap().handshakes_completed, 0);
}

#[test]
fn repeated_initiations_get_a_cookie_reply_under_load() {
    let mut p = Pair::new(0, 0);
    let (_, init) = p.encap(Side::A, 20);
    let bytes = init.data().to_vec();
    let now = p.now;
    let mut cookies = 0;
    let mut replays = 0;
    for _ in 0..12 {
        let mut pkt = p.pool.alloc_from(&bytes).unwrap();
        match p.b.decapsulate(&mut pkt, now) {
            Decap::Reply(_) if msg_type(pkt.data()) == MSG_COOKIE_REPLY => {
                cookies += 1;
                assert_eq!(crate::wg::outer::dst_of(pkt.data()), Some(A_ADDR));
                // A takes the cookie (it matches its last initiation).
                assert_eq!(p.a.decapsulate(&mut pkt, now), Decap::Consumed(PEER));
            }
            Decap::Reply(_) => assert_eq!(msg_type(pkt.data()), MSG_HANDSHAKE_RESP),
            Decap::Drop(WgDrop::Replay) => replays += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    // The first is answered, the next ones are replays of its timestamp,
    // and past boringtun's per-peer limit (10 a second) come cookies.
    assert!(replays >= 1, "replayed initiations refused");
    assert!(cookies >= 1, "cookie replies under load");
    assert_eq!(p.b.counters().cookie_replies_sent, cookies);
    assert_eq!(
        p.b.peer_counters(PEER).unwrap().drops[WgDrop::Replay.index()],
        replays
    );
}

#[test]
fn endpoint_follows_the_peer_when_it_roams() {
    let mut p = Pair::new(0, 0);
    p.handshake();
    assert_eq!(p.b.peer_endpoint(PEER), Some(A_ADDR));
    // A's packets now come from another address and port (a NAT rebinding).
    let roamed = SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 9), 40000);
    let mut pkt = p.send(Side::A, 40);
    {
        let d = pkt.data_mut();
        d[12..16].copy_from_slice(&roamed.ip().octets());
        d[10..12].copy_from_slice(&[0, 0]);
        let c = checksum(&d[..20]);
        d[10..12].copy_from_slice(&c.to_be_bytes());
        d[20..22].copy_from_slice(&roamed.port().to_be_bytes());
        fix_udp_checksum(d);
    }
    assert!(matches!(p.deliver(Side::B, pkt), Decap::Inner(PEER)));
    assert_eq!(p.b.peer_endpoint(PEER), Some(roamed));
    let reply = p.send(Side::B, 40);
    assert_eq!(crate::wg::outer::dst_of(reply.data()), Some(roamed));
}

/// Under load the responder answers initiations with cookie replies; the
/// initiator's next initiation carries the cookie (MAC2) and is answered
/// with a response while the responder is still under load, and the
/// session comes up.
#[test]
fn an_initiation_with_the_cookie_is_answered_under_load() {
    let mut p = Pair::new(0, 0);
    let (_, init) = p.encap(Side::A, 20);
    let bytes = init.data().to_vec();
    drop(init);
    // Load B until it sends a cookie reply; A takes it.
    let flood = |p: &mut Pair, deliver_cookie: bool| -> bool {
        let now = p.now;
        for _ in 0..64 {
            let mut pkt = p.pool.alloc_from(&bytes).unwrap();
            if let Decap::Reply(_) = p.b.decapsulate(&mut pkt, now) {
                if msg_type(pkt.data()) == MSG_COOKIE_REPLY {
                    if deliver_cookie {
                        assert_eq!(p.a.decapsulate(&mut pkt, now), Decap::Consumed(PEER));
                    }
                    return true;
                }
            }
        }
        false
    };
    assert!(flood(&mut p, true), "B never came under load");
    // REKEY_TIMEOUT later A retries (its timers), with the cookie.
    p.now += 6 * SEC;
    let mut out = Batch::new();
    let now = p.now;
    let Pair { a, pool, .. } = &mut p;
    a.tick(now, pool, &mut out);
    let retry: Vec<Packet> = out.drain().collect();
    assert_eq!(retry.len(), 1, "one retried initiation");
    let mut retry = retry.into_iter().next().unwrap();
    assert_eq!(msg_type(retry.data()), MSG_HANDSHAKE_INIT);
    let mac2 = &retry.data()[28 + 148 - 16..28 + 148];
    assert_ne!(mac2, &[0u8; 16], "the retry carries MAC2");
    // B is under load again (same second): a cookie-less initiation gets
    // a cookie, the retry with MAC2 gets a response.
    assert!(flood(&mut p, false), "B not under load");
    let now = p.now;
    assert_eq!(p.b.decapsulate(&mut retry, now), Decap::Reply(Some(PEER)));
    assert_eq!(msg_type(retry.data()), MSG_HANDSHAKE_RESP);
    assert_eq!(p.deliver(Side::A, retry), Decap::Reply(Some(PEER)));
    assert_eq!(p.a.peer_counters(PEER).unwrap().handshakes_completed, 1);
    let data = p.send(Side::A, 40);
    assert_eq!(p.deliver(Side::B, data), Decap::Inner(PEER));
}
