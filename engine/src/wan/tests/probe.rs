//! Tests of `wan::probe` with a fake clock: scheduling and the
//! dead/alive transitions, including the 1 s failover arithmetic.

use crate::wan::probe::*;
use crate::wan::window::ReplyOutcome;
use crate::wan::wire::{reflect, WanPacket};

const MS: u64 = 1_000_000;

/// Runs the prober from `from` to `to` ms in 1 ms steps; probes sent at
/// or before `cut` ms are answered 5 ms later; returns the time (ms) the
/// path went dead, if it did.
fn drive(p: &mut PathProbe, from: u64, to: u64, answer: impl Fn(u64) -> bool) -> Option<u64> {
    let mut inflight: Vec<(u64, [u8; 32])> = Vec::new();
    let mut dead_at = None;
    for t in from..=to {
        let now = t * MS;
        let mut out = [0u8; 16];
        if let Some(n) = p.poll(now, &mut out).unwrap() {
            if answer(t) {
                let mut r = [0u8; 32];
                reflect(&out[..n], now + 2 * MS, now + 3 * MS, &mut r).unwrap();
                inflight.push((now + 5 * MS, r));
            }
        }
        let due: Vec<_> = inflight
            .iter()
            .filter(|(at, _)| *at <= now)
            .map(|x| x.1)
            .collect();
        inflight.retain(|(at, _)| *at > now);
        for r in due {
            let WanPacket::ProbeReply(rep) = WanPacket::parse(&r).unwrap() else {
                panic!()
            };
            assert_eq!(p.on_reply(&rep, now), ReplyOutcome::Accepted);
        }
        p.tick(now);
        // poll ticks too, so watch the state rather than tick's result.
        if p.state() == PathState::Dead {
            dead_at.get_or_insert(t);
        }
    }
    dead_at
}

#[test]
fn sends_at_the_interval_without_bursts() {
    let mut p = PathProbe::new(1, ProbeConfig::default()).unwrap();
    let mut out = [0u8; 16];
    assert!(p.poll(0, &mut out).unwrap().is_some());
    assert!(p.poll(99 * MS, &mut out).unwrap().is_none());
    assert!(p.poll(100 * MS, &mut out).unwrap().is_some());
    // A poll 1 s late sends one probe, not ten.
    assert!(p.poll(1_100 * MS, &mut out).unwrap().is_some());
    assert!(p.poll(1_100 * MS, &mut out).unwrap().is_none());
    assert_eq!(p.sent(), 3);
    assert!(p.poll(1_200 * MS, &mut out).unwrap().is_some());
}

#[test]
fn unknown_then_alive_and_stats_flow() {
    let mut p = PathProbe::new(1, ProbeConfig::default()).unwrap();
    assert_eq!(p.state(), PathState::Unknown);
    assert_eq!(drive(&mut p, 0, 1_000, |_| true), None);
    assert_eq!(p.state(), PathState::Alive);
    let st = p.stats(1_000 * MS);
    // 5 ms round trip less 1 ms at the reflector.
    assert_eq!((st.rtt_avg_ns, st.loss_ppm, st.jitter_ns), (4 * MS, 0, 0));
    assert!(st.replied >= 10);
}

#[test]
fn dead_within_one_second_of_the_first_lost_probe() {
    let mut p = PathProbe::new(1, ProbeConfig::default()).unwrap();
    // Probes at 0, 100, ..., 2000 ms answered; the path breaks after.
    let dead = drive(&mut p, 0, 5_000, |t| t <= 2_000).expect("never declared dead");
    let first_lost = 2_100;
    assert_eq!(dead - first_lost, 800, "declared at {dead} ms");
    assert!(dead - first_lost < 1_000);
    assert_eq!(p.state(), PathState::Dead);
}

#[test]
fn two_lost_probes_do_not_kill_a_path() {
    let mut p = PathProbe::new(1, ProbeConfig::default()).unwrap();
    let dead = drive(&mut p, 0, 3_000, |t| !(1_000..=1_100).contains(&t));
    assert_eq!(dead, None);
    assert_eq!(p.state(), PathState::Alive);
    assert_eq!(p.stats(3_000 * MS).lost, 2);
}

#[test]
fn dead_path_needs_rise_replies_to_come_back() {
    let cfg = ProbeConfig {
        rise: 3,
        ..ProbeConfig::default()
    };
    let mut p = PathProbe::new(1, cfg).unwrap();
    assert!(drive(&mut p, 0, 2_000, |t| t < 500).is_some());
    assert_eq!(p.state(), PathState::Dead);
    // Answers again from 2 100 ms: replies at 2 105, 2 205, 2 305.
    // (Segments end with no reply in flight.)
    drive(&mut p, 2_001, 2_150, |_| true);
    drive(&mut p, 2_151, 2_260, |_| true);
    assert_eq!(p.state(), PathState::Dead, "two replies are not enough");
    drive(&mut p, 2_261, 2_310, |_| true);
    assert_eq!(p.state(), PathState::Alive);
}

#[test]
fn never_answered_path_goes_dead_from_unknown() {
    let mut p = PathProbe::new(1, ProbeConfig::default()).unwrap();
    assert_eq!(drive(&mut p, 0, 1_000, |_| false), Some(800));
}

#[test]
fn next_deadline_is_the_dead_deadline_when_sooner() {
    let mut p = PathProbe::new(
        1,
        ProbeConfig {
            interval_ns: 1_000 * MS,
            dead_after_ns: 1_500 * MS,
            ..ProbeConfig::default()
        },
    )
    .unwrap();
    let mut out = [0u8; 16];
    p.poll(0, &mut out).unwrap();
    assert_eq!(p.next_deadline(), 1_000 * MS);
    p.poll(1_000 * MS, &mut out).unwrap();
    assert_eq!(p.next_deadline(), 1_500 * MS);
    assert_eq!(p.tick(1_500 * MS), Some(PathState::Dead));
}

#[test]
fn foreign_and_forged_replies_are_ignored() {
    let mut p = PathProbe::new(1, ProbeConfig::default()).unwrap();
    let mut out = [0u8; 16];
    let n = p.poll(0, &mut out).unwrap().unwrap();
    let WanPacket::Probe(mut probe) = WanPacket::parse(&out[..n]).unwrap() else {
        panic!()
    };
    probe.tx_ns += 1;
    let rep = crate::wan::wire::ProbeReply {
        probe,
        reflector_rx_ns: 0,
        reflector_tx_ns: 0,
    };
    assert_eq!(p.on_reply(&rep, MS), ReplyOutcome::Unknown);
    probe.tx_ns -= 1;
    probe.path = 2;
    let rep = crate::wan::wire::ProbeReply { probe, ..rep };
    assert_eq!(p.on_reply(&rep, MS), ReplyOutcome::Unknown);
    assert_eq!(p.state(), PathState::Unknown);
}

#[test]
fn config_is_validated() {
    let d = ProbeConfig::default();
    assert_eq!(
        PathProbe::new(
            0,
            ProbeConfig {
                interval_ns: 0,
                ..d
            }
        )
        .err(),
        Some(ProbeConfigError::ZeroInterval)
    );
    assert_eq!(
        PathProbe::new(
            0,
            ProbeConfig {
                dead_after_ns: 1,
                ..d
            }
        )
        .err(),
        Some(ProbeConfigError::DeadTooShort)
    );
    assert_eq!(
        PathProbe::new(0, ProbeConfig { rise: 0, ..d }).err(),
        Some(ProbeConfigError::ZeroRise)
    );
}

/// Probes sent while the tunnel's handshake is still running are not
/// counted lost (the handshake swallows them); once the path has been
/// alive, unanswered probes count again.
#[test]
fn start_up_probes_before_a_session_are_not_loss() {
    let mut p = PathProbe::new(0, ProbeConfig::default()).unwrap();
    let mut out = [0u8; 16];
    // Three probe intervals without a session: probes written, not recorded.
    for t in [0, 100, 200] {
        assert!(p.poll_unrecorded(t * MS, &mut out).is_some());
        assert!(
            p.poll_unrecorded(t * MS + MS, &mut out).is_none(),
            "one per interval"
        );
    }
    assert_eq!(p.sent(), 0);
    assert_eq!(p.tick(1_500 * MS), None, "not dead: nothing was recorded");
    // The session is up: a recorded probe, answered.
    let n = p.poll(1_500 * MS, &mut out).unwrap().unwrap();
    let mut r = [0u8; 32];
    reflect(&out[..n], 1_501 * MS, 1_501 * MS, &mut r).unwrap();
    let WanPacket::ProbeReply(reply) = WanPacket::parse(&r).unwrap() else {
        panic!("not a reply");
    };
    assert_eq!(p.on_reply(&reply, 1_502 * MS), ReplyOutcome::Accepted);
    assert_eq!(p.state(), PathState::Alive);
    assert_eq!(p.stats(1_600 * MS).loss_ppm, 0);
    // Alive: the unrecorded form records (a lost session is a failure).
    assert!(p.poll_unrecorded(1_600 * MS, &mut out).is_some());
    assert_eq!(p.sent(), 2);
    assert_eq!(p.tick(2_500 * MS), Some(PathState::Dead));
}
