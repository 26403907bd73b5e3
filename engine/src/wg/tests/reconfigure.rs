//! Live reconfiguration: peers added, removed and changed around a live
//! session, on the fake clock of [`Pair`].

use super::*;
use crate::wg::{public_key_of, MSG_HANDSHAKE_INIT};

/// B's config with A in `slot` and, optionally, C in slot `c_slot`.
fn b_config(a_slot: u32, c_slot: Option<u32>) -> TunnelConfig {
    let mut cfg = config(
        KEY_B,
        B_ADDR,
        KEY_A,
        None,
        (Ipv4Addr::new(10, 1, 0, 0), 24),
        0,
    );
    cfg.peer_slots = vec![a_slot];
    if let Some(s) = c_slot {
        cfg.peers.push(PeerConfig {
            public_key: public_key_of(&KEY_C),
            endpoint: Some(SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 9), 51820)),
            allowed_ips: vec![(Ipv4Addr::new(10, 3, 0, 0), 24)],
            persistent_keepalive_secs: 0,
            preshared_key: None,
        });
        cfg.peer_slots.push(s);
    }
    cfg
}

/// A data packet from A reaches B's site (no new handshake needed).
fn a_to_b_flows(p: &mut Pair) {
    let before = p.delivered.len();
    let pkt = p.send(Side::A, 40);
    assert_eq!(p.deliver(Side::B, pkt), Decap::Inner(PEER));
    assert_eq!(p.delivered.len(), before + 1);
}

/// B → A still encrypts at once (B kept its session).
fn b_to_a_encrypts(p: &mut Pair) {
    let pkt = p.send(Side::B, 40);
    assert_eq!(p.deliver(Side::A, pkt), Decap::Inner(PEER));
}

#[test]
fn adding_and_removing_another_peer_keeps_the_session() {
    let mut p = Pair::new(0, 0);
    p.handshake();
    a_to_b_flows(&mut p);
    let hs = p.b.peer_counters(PEER).unwrap().handshakes_completed;
    let rx = p.b.peer_counters(PEER).unwrap().rx_packets;
    assert!(hs >= 1 && rx >= 1);
    let now = p.now;
    // C joins in slot 3 (slots 1 and 2 are holes).
    p.b.reconfigure(&b_config(0, Some(3)), now).unwrap();
    assert_eq!(p.b.peer_count(), 2);
    assert_eq!(p.b.peer_ids().collect::<Vec<_>>(), [PeerId(0), PeerId(3)]);
    assert_eq!(p.b.peer_for(Ipv4Addr::new(10, 3, 0, 1)), Some(PeerId(3)));
    assert_eq!(p.b.peer_by_key(&public_key_of(&KEY_C)), Some(PeerId(3)));
    assert_eq!(p.b.peer_public_key(PeerId(1)), None, "a hole is no peer");
    b_to_a_encrypts(&mut p);
    a_to_b_flows(&mut p);
    let c = *p.b.peer_counters(PEER).unwrap();
    assert_eq!(c.handshakes_completed, hs, "no new handshake");
    assert_eq!(c.rx_packets, rx + 1, "counters carried over");
    // C leaves again: A's session still stands; C's allowed IPs are gone.
    p.b.reconfigure(&b_config(0, None), now).unwrap();
    assert_eq!(p.b.peer_for(Ipv4Addr::new(10, 3, 0, 1)), None);
    assert_eq!(p.b.peer_by_key(&public_key_of(&KEY_C)), None);
    b_to_a_encrypts(&mut p);
    a_to_b_flows(&mut p);
    assert_eq!(
        p.b.peer_counters(PEER).unwrap().handshakes_completed,
        hs,
        "still the first session"
    );
}

#[test]
fn the_roamed_endpoint_is_kept_unless_the_configured_one_changes() {
    let mut p = Pair::new(0, 0);
    p.handshake();
    // B learnt A's endpoint from A's packets (none configured).
    assert_eq!(p.b.peer_endpoint(PEER), Some(A_ADDR));
    let now = p.now;
    p.b.reconfigure(&b_config(0, Some(1)), now).unwrap();
    assert_eq!(p.b.peer_endpoint(PEER), Some(A_ADDR));
    let mut moved = b_config(0, Some(1));
    let elsewhere = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 77), 4444);
    moved.peers[0].endpoint = Some(elsewhere);
    p.b.reconfigure(&moved, now).unwrap();
    assert_eq!(p.b.peer_endpoint(PEER), Some(elsewhere));
}

#[test]
fn a_changed_preshared_key_or_private_key_starts_a_new_session() {
    let mut p = Pair::new(0, 0);
    p.handshake();
    let now = p.now;
    let mut psk = b_config(0, None);
    psk.peers[0].preshared_key = Some([9; 32]);
    p.b.reconfigure(&psk, now).unwrap();
    let (r, pkt) = p.encap(Side::B, 20);
    assert_eq!(r, Encap::Handshake, "the old session is gone");
    assert_eq!(msg_type(pkt.data()), MSG_HANDSHAKE_INIT);
    // Back to the first config, then a new private key: again no session.
    let mut p = Pair::new(0, 0);
    p.handshake();
    let mut rotated = b_config(0, None);
    rotated.private_key = [0x44; 32];
    p.b.reconfigure(&rotated, now).unwrap();
    assert_eq!(p.b.public_key(), public_key_of(&[0x44; 32]));
    assert_eq!(p.encap(Side::B, 20).0, Encap::Handshake);
}

#[test]
fn a_refused_config_changes_nothing() {
    let mut p = Pair::new(0, 0);
    p.handshake();
    let now = p.now;
    // Two peers in one slot.
    let mut bad = b_config(0, Some(0));
    bad.peers[1].allowed_ips = vec![(Ipv4Addr::new(10, 9, 0, 0), 16)];
    assert!(matches!(
        p.b.reconfigure(&bad, now),
        Err(crate::wg::WgConfigError::BadSlots(..))
    ));
    // Slots and peers disagree in number.
    let mut short = b_config(0, Some(1));
    short.peer_slots.pop();
    assert!(p.b.reconfigure(&short, now).is_err());
    assert_eq!(p.b.peer_count(), 1);
    b_to_a_encrypts(&mut p);
}

#[test]
fn a_peer_moved_to_another_slot_is_a_new_peer_there() {
    // Slots are the caller's promise; a peer that moves loses its session
    // (its session index names the old slot) but traffic recovers with a
    // new handshake.
    let mut p = Pair::new(0, 0);
    p.handshake();
    let now = p.now;
    p.b.reconfigure(&b_config(2, None), now).unwrap();
    assert_eq!(p.b.peer_ids().collect::<Vec<_>>(), [PeerId(2)]);
    let pkt = p.send(Side::A, 40);
    // A's data names B's old session index (slot 0): nobody there now.
    assert!(matches!(p.deliver(Side::B, pkt), Decap::Drop(_)));
}
