//! Timers on the fake clock: rekey after REKEY_AFTER_TIME, sessions
//! rejected after REJECT_AFTER_TIME, handshake retries, keepalives.

use super::*;
use crate::wg::{WgDrop, MSG_DATA, MSG_HANDSHAKE_INIT, MSG_HANDSHAKE_RESP};

/// WireGuard's constants (the paper, section 6), in seconds.
const REKEY_AFTER_TIME: u64 = 120;
const REJECT_AFTER_TIME: u64 = 180;
const REKEY_TIMEOUT: u64 = 5;
const KEEPALIVE_TIMEOUT: u64 = 10;

#[test]
fn initiator_rekeys_after_rekey_after_time_and_traffic_continues() {
    let mut p = Pair::new(0, 0);
    p.advance(1, None);
    p.handshake();
    let established = p.now;
    // Traffic both ways every 5 s so no keepalive/handshake timer fires.
    let mut rekeyed_at = None;
    while p.now < established + 130 * SEC {
        let pkt = p.send(Side::A, 50);
        assert!(matches!(p.deliver(Side::B, pkt), Decap::Inner(PEER)));
        let pkt = p.send(Side::B, 50);
        assert!(matches!(p.deliver(Side::A, pkt), Decap::Inner(PEER)));
        p.advance(5, None);
        if rekeyed_at.is_none() && p.a.peer_counters(PEER).unwrap().handshakes_completed == 2 {
            rekeyed_at = Some(p.now);
        }
    }
    let inits: Vec<u64> = p.sent(Side::A, MSG_HANDSHAKE_INIT);
    assert_eq!(
        inits.len(),
        2,
        "the first handshake and one rekey: {inits:?}"
    );
    let rekey = inits[1];
    // boringtun checks on its tick after a send: the first 5 s tick at or
    // after REKEY_AFTER_TIME.
    assert!(
        rekey >= established + REKEY_AFTER_TIME * SEC,
        "not before REKEY_AFTER_TIME"
    );
    assert!(rekey < established + (REKEY_AFTER_TIME + 5) * SEC);
    assert_eq!(rekeyed_at, Some(rekey), "rekey completed at once");
    assert_eq!(p.b.peer_counters(PEER).unwrap().handshakes_completed, 2);
    assert_eq!(p.a.peer_counters(PEER).unwrap().last_handshake_ns, rekey);
    // The responder never initiates.
    assert!(p.sent(Side::B, MSG_HANDSHAKE_INIT).is_empty());
    assert_eq!(
        p.a.peer_counters(PEER).unwrap().drops_total(),
        1,
        "only the very first packet"
    );
    assert_eq!(p.b.peer_counters(PEER).unwrap().drops_total(), 0);
}

#[test]
fn sessions_are_rejected_after_reject_after_time() {
    let mut p = Pair::new(0, 0);
    p.advance(1, None);
    p.handshake();
    let established = p.now;
    // Two packets encrypted now, held back.
    let early = p.send(Side::A, 30);
    let late = p.send(Side::A, 30);
    // Only B's clock runs (A stays silent, so nothing rekeys).
    let tick_b = |p: &mut Pair, at: u64| {
        p.now = at;
        let mut out = Batch::new();
        p.b.tick(at, &mut p.pool, &mut out)
    };
    assert_eq!(
        tick_b(&mut p, established + (REJECT_AFTER_TIME - 1) * SEC),
        0
    );
    assert!(
        matches!(p.deliver(Side::B, early), Decap::Inner(PEER)),
        "still valid"
    );
    // B owes A a keepalive for that packet, but its session is gone now:
    // boringtun starts a handshake instead (lost here).
    assert_eq!(
        tick_b(&mut p, established + (REJECT_AFTER_TIME + 1) * SEC),
        1
    );
    assert_eq!(p.deliver(Side::B, late), Decap::Drop(WgDrop::NoSession));
    assert_eq!(
        p.b.peer_counters(PEER).unwrap().drops[WgDrop::NoSession.index()],
        1
    );

    // A's session is gone as well once its clock passes the limit: sending
    // starts a new handshake instead.
    let mut out = Batch::new();
    let now = p.now;
    p.a.tick(now, &mut p.pool, &mut out);
    drop(out);
    let (r, init) = p.encap(Side::A, 30);
    assert_eq!(r, Encap::Handshake);
    assert_eq!(p.deliver(Side::B, init), Decap::Reply(Some(PEER)));
    let pkt = p.send(Side::A, 30);
    assert!(matches!(p.deliver(Side::B, pkt), Decap::Inner(PEER)));
    assert_eq!(p.a.peer_counters(PEER).unwrap().handshakes_completed, 2);
}

#[test]
fn unanswered_initiation_is_retried_after_rekey_timeout() {
    let mut p = Pair::new(0, 0);
    p.advance(1, None);
    let (r, _lost) = p.encap(Side::A, 20);
    assert_eq!(r, Encap::Handshake);
    let first = p.now;
    // B never hears A.
    p.advance(12, Some(Side::A));
    let retries: Vec<u64> = p.sent(Side::A, MSG_HANDSHAKE_INIT);
    assert!(!retries.is_empty());
    assert!(
        retries[0] >= first + REKEY_TIMEOUT * SEC,
        "no retry before REKEY_TIMEOUT"
    );
    assert!(retries[0] <= first + (REKEY_TIMEOUT + 1) * SEC);
    assert_eq!(retries.len(), 2, "every REKEY_TIMEOUT: {retries:?}");
    assert_eq!(
        p.a.peer_counters(PEER).unwrap().handshake_initiations_sent,
        3
    );
    // Once B hears, the retry completes the handshake.
    p.advance(6, None);
    assert_eq!(p.a.peer_counters(PEER).unwrap().handshakes_completed, 1);
}

#[test]
fn persistent_keepalive_is_sent_every_interval_when_configured() {
    let mut p = Pair::new(25, 0);
    p.advance(1, None);
    p.handshake();
    p.advance(80, None);
    let times: Vec<u64> = p.sent(Side::A, MSG_DATA);
    // The handshake confirmation, then one every 25 s.
    let periodic: Vec<u64> = times.iter().copied().filter(|&t| t > SEC * 2).collect();
    assert!(periodic.len() >= 3, "{times:?}");
    for w in periodic.windows(2) {
        assert_eq!(w[1] - w[0], 25 * SEC);
    }
    let c = p.a.peer_counters(PEER).unwrap();
    assert_eq!(c.keepalives_sent as usize, times.len());
    assert_eq!(
        p.b.peer_counters(PEER).unwrap().keepalives_received as usize,
        times.len()
    );
    // B has no persistent keepalive and got no data: it stays silent.
    assert!(p.sent(Side::B, MSG_DATA).is_empty());
}

#[test]
fn no_keepalive_without_configuration_or_traffic() {
    let mut p = Pair::new(0, 0);
    p.advance(1, None);
    p.handshake();
    p.advance(100, None);
    // Only the keepalive that confirms the handshake.
    assert_eq!(p.sent(Side::A, MSG_DATA).len(), 1);
    assert!(p.sent(Side::B, MSG_DATA).is_empty());
}

#[test]
fn receiver_answers_data_with_a_keepalive_after_keepalive_timeout() {
    let mut p = Pair::new(0, 0);
    p.advance(1, None);
    p.handshake();
    p.advance(1, None);
    let sent_at = p.now;
    let pkt = p.send(Side::A, 40);
    assert!(matches!(p.deliver(Side::B, pkt), Decap::Inner(PEER)));
    p.advance(KEEPALIVE_TIMEOUT + 2, None);
    let ka = p.sent(Side::B, MSG_DATA);
    assert_eq!(ka.len(), 1, "one passive keepalive: {ka:?}");
    // boringtun counts KEEPALIVE_TIMEOUT from the last packet B sent (its
    // handshake response), not from the data it received.
    let b_last_sent = p.sent(Side::B, MSG_HANDSHAKE_RESP)[0];
    assert_eq!(ka[0], b_last_sent + KEEPALIVE_TIMEOUT * SEC);
    assert!(ka[0] > sent_at);
    assert_eq!(p.a.peer_counters(PEER).unwrap().keepalives_received, 1);
}
