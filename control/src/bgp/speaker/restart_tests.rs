//! A connection that arrives while the session is Established with
//! graceful restart: the speaker probes the old connection and either
//! closes the new one (the peer's connect crossed ours: a collision) or
//! adopts it (the old connection is dead: the peer restarted), keeping the
//! routes across the restart. Scripted peer over in-memory streams.

use std::net::Ipv4Addr;

use patronus_bgp::fsm::State;
use patronus_bgp::types::Afi;
use patronus_bgp::wire::{
    cease_subcode, code, Capability, GrFamily, GracefulRestart, Message, Notification, Open,
    Received, SessionContext, Update,
};
use tokio::sync::broadcast::error::TryRecvError;
use tokio::sync::broadcast::Receiver;
use tokio::time::timeout;

use super::tests::{
    accept_all, config, ip, neighbor, pfx, routes_until, Peer, LOCAL_AS, PEER_AS, WAIT,
};
use super::*;

fn gr_config() -> SpeakerConfig {
    let mut cfg = config(Some(accept_all()));
    cfg.neighbors[0].graceful_restart = true;
    cfg
}

/// The peer's OPEN: IPv4 unicast with graceful restart, forwarding state
/// preserved, the Restart State bit as given.
fn gr_open(restarted: bool) -> Message {
    let gr = GracefulRestart {
        restart_flags: if restarted {
            GracefulRestart::RESTART_STATE
        } else {
            0
        },
        restart_time_secs: 120,
        families: vec![GrFamily {
            afi: 1,
            safi: 1,
            flags: GrFamily::FORWARDING_PRESERVED,
        }],
    };
    let caps = vec![
        Capability::unicast(Afi::Ipv4),
        Capability::RouteRefresh,
        Capability::FourOctetAs(PEER_AS),
        Capability::GracefulRestart(gr),
    ];
    Message::Open(Open::new(PEER_AS, 90, Ipv4Addr::new(10, 0, 0, 2), caps))
}

/// A new TCP connection from the peer, nothing exchanged yet.
async fn new_connection(h: &SpeakerHandle) -> Peer {
    let (ours, theirs) = tokio::io::duplex(1 << 16);
    h.incoming(Connection {
        stream: Box::new(ours),
        remote: ip("10.0.0.2"),
        local: Some(ip("10.0.0.1")),
    })
    .await
    .unwrap();
    Peer {
        io: theirs,
        buf: Vec::new(),
        ctx: SessionContext::MODERN,
    }
}

/// Reads the speaker's OPEN (with graceful restart) on `p`, answers with
/// the peer's (unless `p` sent it already) and completes the handshake.
async fn handshake(p: &mut Peer, open_sent: bool) {
    let Received::Open(open) = p.recv().await else {
        panic!("expected OPEN first")
    };
    assert_eq!(open.asn(), LOCAL_AS);
    assert!(
        open.capabilities()
            .any(|c| matches!(c, Capability::GracefulRestart(_))),
        "{open:?}"
    );
    if !open_sent {
        p.send(gr_open(false)).await;
    }
    p.send(Message::Keepalive).await;
    assert_eq!(p.recv().await, Received::Keepalive);
}

/// The session up with graceful restart and 203.0.113.0/24 and
/// 198.51.100.0/24 learned from the peer.
async fn up_with_routes() -> (SpeakerHandle, Peer) {
    let h = spawn(gr_config()).await.unwrap();
    let mut old = new_connection(&h).await;
    handshake(&mut old, false).await;
    old.send(super::tests::announce_v4(
        &["203.0.113.0/24", "198.51.100.0/24"],
        "10.0.0.2",
    ))
    .await;
    routes_until(&h, |t| {
        t.contains_key(&pfx("203.0.113.0/24")) && t.contains_key(&pfx("198.51.100.0/24"))
    })
    .await;
    (h, old)
}

/// The session up with routes, then a second connection from the peer
/// with its OPEN; returns once the old connection got the probe (a
/// KEEPALIVE, after the speaker's table and End-of-RIB), with the route
/// changes since the second connection.
async fn second_connection() -> (SpeakerHandle, Peer, Peer, Receiver<RouteChange>) {
    let (h, mut old) = up_with_routes().await;
    let changes = h.changes();
    let mut new = new_connection(&h).await;
    new.send(gr_open(true)).await;
    while old.recv().await != Received::Keepalive {}
    (h, old, new, changes)
}

#[tokio::test]
async fn a_new_connection_beside_a_live_session_is_a_collision_and_closed() {
    // The peer's connect crossed ours: its OPEN arrives on a second
    // connection while the first is Established and alive.
    let (h, mut old, mut new, mut changes) = second_connection().await;
    match timeout(WAIT, new.recv()).await.expect("answered in time") {
        Received::Notification(n) => {
            assert_eq!(
                (n.code, n.subcode),
                (code::CEASE, cease_subcode::CONNECTION_COLLISION_RESOLUTION)
            );
        }
        m => panic!("expected a collision NOTIFICATION, got {m:?}"),
    }

    // The session was not disturbed: same session, routes untouched, and
    // it still carries updates.
    let n = neighbor(&h).await;
    assert_eq!(n.state, State::Established);
    assert_eq!(n.counters.established_transitions, 1);
    assert!(matches!(changes.try_recv(), Err(TryRecvError::Empty)));
    old.send(super::tests::announce_v4(&["192.0.2.128/25"], "10.0.0.2"))
        .await;
    routes_until(&h, |t| t.contains_key(&pfx("192.0.2.128/25"))).await;
}

#[tokio::test]
async fn a_new_connection_after_the_old_one_died_is_the_peers_restart() {
    // The peer restarted without closing the old connection (a host
    // reboot): its new connection and OPEN arrive, the probe of the old
    // one fails.
    let (h, old, mut new, mut changes) = second_connection().await;
    drop(old);

    handshake(&mut new, true).await; // its OPEN went before the probe
    let n = timeout(WAIT, async {
        loop {
            let n = neighbor(&h).await;
            if n.state == State::Established {
                return n;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("Established again");
    assert_eq!(n.counters.established_transitions, 2);
    // Kept (stale) across the restart, then 198.51.100.0/24 swept at the
    // peer's End-of-RIB because it did not announce it again.
    let t = h.routes().borrow().clone();
    assert!(t.contains_key(&pfx("203.0.113.0/24")) && t.contains_key(&pfx("198.51.100.0/24")));
    new.send(super::tests::announce_v4(&["203.0.113.0/24"], "10.0.0.2"))
        .await;
    new.send(Message::Update(Update::default())).await;
    let t = routes_until(&h, |t| !t.contains_key(&pfx("198.51.100.0/24"))).await;
    assert_eq!(t[&pfx("203.0.113.0/24")], vec![ip("10.0.0.2")]);
    while let Ok(c) = changes.try_recv() {
        assert!(
            c.prefix != pfx("203.0.113.0/24") || !c.next_hops.is_empty(),
            "203.0.113.0/24 removed during the restart: {c:?}"
        );
    }
}

#[tokio::test]
async fn a_held_connection_is_closed_when_the_old_session_ends_otherwise() {
    // While the probe is out the peer closes the old session itself (an
    // administrative reset): the held connection is not adopted into a
    // session that no longer exists; it is closed and the peer may retry.
    let (h, mut old, mut new, _changes) = second_connection().await;
    old.send(Message::Notification(Notification::new(
        code::CEASE,
        cease_subcode::ADMINISTRATIVE_RESET,
        Vec::new(),
    )))
    .await;
    drop(old);
    match timeout(WAIT, new.recv()).await.expect("answered in time") {
        Received::Notification(n) => assert_eq!(n.code, code::CEASE),
        m => panic!("expected a Cease on the held connection, got {m:?}"),
    }
    let n = neighbor(&h).await;
    assert_ne!(n.state, State::Established);
    assert_eq!(n.counters.established_transitions, 1);
}
