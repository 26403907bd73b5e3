//! Ownership across workers: each worker's tunnel holds state only for
//! the peers it owns and says `Handoff` for the others.

use super::*;
use crate::wg::{owner_worker, steer, Steer, WgConfigError};

/// A hub (B's key) with two spokes; spoke 0 is A (10.1.0.0/24), spoke 1
/// is C (10.3.0.0/24).
fn hub(worker: usize, workers: usize, now: u64) -> Tunnel {
    let mut cfg = config(
        KEY_B,
        B_ADDR,
        KEY_A,
        None,
        (Ipv4Addr::new(10, 1, 0, 0), 24),
        0,
    );
    cfg.peers.push(PeerConfig {
        public_key: crate::wg::public_key_of(&KEY_C),
        endpoint: None,
        allowed_ips: vec![
            (Ipv4Addr::new(10, 3, 0, 0), 24),
            (Ipv4Addr::new(10, 3, 0, 128), 25),
        ],
        persistent_keepalive_secs: 0,
        preshared_key: None,
    });
    Tunnel::new(&cfg, worker, workers, now).unwrap()
}

#[test]
fn owner_is_peer_index_modulo_workers() {
    assert_eq!(owner_worker(PeerId(0), 2), 0);
    assert_eq!(owner_worker(PeerId(1), 2), 1);
    assert_eq!(owner_worker(PeerId(7), 3), 1);
    assert_eq!(owner_worker(PeerId(7), 0), 0);
}

#[test]
fn routing_into_the_tunnel_uses_allowed_ips() {
    let t = hub(0, 1, SEC);
    assert_eq!(t.peer_for(Ipv4Addr::new(10, 1, 0, 200)), Some(PeerId(0)));
    assert_eq!(t.peer_for(Ipv4Addr::new(10, 3, 0, 200)), Some(PeerId(1)));
    assert_eq!(t.peer_for(Ipv4Addr::new(10, 4, 0, 1)), None);
    assert_eq!(
        t.peer_by_key(&crate::wg::public_key_of(&KEY_C)),
        Some(PeerId(1))
    );
}

#[test]
fn handshake_and_data_go_to_the_owning_worker() {
    let now = SEC;
    let mut w0 = hub(0, 2, now);
    let mut w1 = hub(1, 2, now);
    assert!(w0.owns(PeerId(0)) && !w0.owns(PeerId(1)));
    assert!(w1.owns(PeerId(1)) && !w1.owns(PeerId(0)));
    // C (peer 1 of the hub) initiates; worker 0 receives it first.
    let c_cfg = config(
        KEY_C,
        A_ADDR,
        KEY_B,
        Some(B_ADDR),
        (Ipv4Addr::new(10, 2, 0, 0), 8),
        0,
    );
    let mut c = Tunnel::new(&c_cfg, 0, 1, now).unwrap();
    let mut pool = PacketPool::new(16);
    let mut pkt = inner(&mut pool, Ipv4Addr::new(10, 3, 0, 1), B_HOST, 10);
    assert_eq!(c.encapsulate(PEER, &mut pkt, now), Encap::Handshake);
    let before = pkt.data().to_vec();
    assert_eq!(w0.decapsulate(&mut pkt, now), Decap::Handoff(PeerId(1)));
    assert_eq!(pkt.data(), &before[..], "handed off unchanged");
    assert_eq!(w1.decapsulate(&mut pkt, now), Decap::Reply(Some(PeerId(1))));
    assert_eq!(c.decapsulate(&mut pkt, now), Decap::Reply(Some(PEER)));
    assert_eq!(w1.decapsulate(&mut pkt, now), Decap::Consumed(PeerId(1)));

    // Data from C steers to peer 1 by its receiver index.
    let mut pkt = inner(&mut pool, Ipv4Addr::new(10, 3, 0, 130), B_HOST, 10);
    assert_eq!(c.encapsulate(PEER, &mut pkt, now), Encap::Sent);
    assert_eq!(steer(&pkt.data()[28..]), Steer::Peer(PeerId(1)));
    assert_eq!(w0.decapsulate(&mut pkt, now), Decap::Handoff(PeerId(1)));
    assert_eq!(w1.decapsulate(&mut pkt, now), Decap::Inner(PeerId(1)));

    // Sending to C from worker 0 is a handoff too.
    let mut pkt = inner(&mut pool, B_HOST, Ipv4Addr::new(10, 3, 0, 1), 10);
    let to = w0.peer_for(Ipv4Addr::new(10, 3, 0, 1)).unwrap();
    assert_eq!(w0.encapsulate(to, &mut pkt, now), Encap::Handoff(PeerId(1)));
    assert_eq!(w1.encapsulate(to, &mut pkt, now), Encap::Sent);
    assert_eq!(w1.peer_counters(PeerId(1)).unwrap().handshakes_completed, 1);
    assert_eq!(w0.peer_counters(PeerId(1)).unwrap().handshakes_completed, 0);
    // Worker 0's timers never touch peer 1.
    let mut out = Batch::new();
    assert_eq!(w0.tick(now + 30 * SEC, &mut pool, &mut out), 0);
}

#[test]
fn bad_configurations_are_refused() {
    let base = config(
        KEY_B,
        B_ADDR,
        KEY_A,
        None,
        (Ipv4Addr::new(10, 1, 0, 0), 24),
        0,
    );
    let mut dup = base.clone();
    dup.peers.push(dup.peers[0].clone());
    dup.peers[1].allowed_ips = vec![];
    assert_eq!(
        Tunnel::new(&dup, 0, 1, 0).unwrap_err(),
        WgConfigError::DuplicatePeer(1)
    );
    let mut overlap = base.clone();
    overlap.peers.push(PeerConfig {
        public_key: crate::wg::public_key_of(&KEY_C),
        allowed_ips: vec![(Ipv4Addr::new(10, 1, 0, 99), 24)],
        ..PeerConfig::default()
    });
    assert!(matches!(
        Tunnel::new(&overlap, 0, 1, 0).unwrap_err(),
        WgConfigError::DuplicateAllowedIp {
            peer: 1,
            other: 0,
            ..
        }
    ));
    let mut long = base.clone();
    long.peers[0].allowed_ips = vec![(Ipv4Addr::new(10, 1, 0, 0), 33)];
    assert!(matches!(
        Tunnel::new(&long, 0, 1, 0).unwrap_err(),
        WgConfigError::BadPrefixLen { .. }
    ));
    assert!(matches!(
        Tunnel::new(&base, 2, 2, 0).unwrap_err(),
        WgConfigError::BadWorker { .. }
    ));
    // The private key never shows in Debug.
    let shown = format!("{base:?}");
    assert!(shown.contains("<redacted>") && !shown.contains("34, 34, 34, 34"));
}
