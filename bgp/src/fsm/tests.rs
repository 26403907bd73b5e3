//! State machine tests with a fake clock (ms): every transition and timer of
//! RFC 4271 8.2.2 this speaker relies on, and the RFC 4724 helper paths.

use std::net::Ipv4Addr;

use super::*;
use crate::types::Afi;

const LOCAL_AS: u32 = 65000;
const PEER_AS: u32 = 65001;
const SEC: u64 = 1000;

fn local_id() -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, 1)
}

fn peer_id() -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, 2)
}

fn ebgp() -> SessionConfig {
    SessionConfig::new(LOCAL_AS, local_id(), PEER_AS)
}

fn gr_config() -> SessionConfig {
    SessionConfig {
        families: AfiSet::BOTH,
        graceful_restart: Some(LocalGracefulRestart::default()),
        ..ebgp()
    }
}

fn open(hold: u16) -> PeerOpen {
    PeerOpen {
        asn: PEER_AS,
        hold_time_secs: hold,
        bgp_id: peer_id(),
        capabilities: PeerCapabilities {
            four_octet_as: true,
            ..PeerCapabilities::default()
        },
    }
}

fn gr_open(notification: bool, preserved: AfiSet) -> PeerOpen {
    let mut o = open(90);
    o.capabilities.multiprotocol = AfiSet::BOTH;
    o.capabilities.graceful_restart = Some(GrCapability {
        restart_time_secs: 120,
        restarting: false,
        notification,
        afis: AfiSet::BOTH,
        forwarding_preserved: preserved,
    });
    o
}

/// A session, a fake clock and the actions of the last step.
struct Rig {
    s: Session,
    now: u64,
}

impl Rig {
    fn new(cfg: SessionConfig) -> Rig {
        cfg.validate().unwrap();
        Rig {
            s: Session::new(cfg),
            now: 0,
        }
    }

    fn ev(&mut self, e: Event) -> Vec<Action> {
        let mut out = Vec::new();
        self.s.handle(e, self.now, &mut out);
        out
    }

    /// Moves the clock to `t` and fires what is due.
    fn at(&mut self, t: u64) -> Vec<Action> {
        assert!(t >= self.now);
        self.now = t;
        let mut out = Vec::new();
        self.s.poll(t, &mut out);
        out
    }

    fn state(&self) -> State {
        self.s.state()
    }

    /// Idle → Established with `peer`'s OPEN.
    fn establish(&mut self, peer: PeerOpen) -> Vec<Action> {
        if self.state() == State::Idle {
            self.ev(Event::ManualStart);
        }
        self.ev(Event::TcpConnectionAcknowledged);
        assert_eq!(self.state(), State::OpenSent);
        self.ev(Event::BgpOpen(peer));
        assert_eq!(self.state(), State::OpenConfirm);
        let a = self.ev(Event::KeepAliveMsg);
        assert_eq!(self.state(), State::Established);
        a
    }
}

fn notification(a: &[Action]) -> Option<(u8, u8)> {
    a.iter().find_map(|x| match x {
        Action::SendNotification { code, subcode } => Some((*code, *subcode)),
        _ => None,
    })
}

fn started(a: &[Action], timer: Timer) -> Option<u64> {
    a.iter().find_map(|x| match x {
        Action::StartTimer {
            timer: t,
            deadline_ms,
        } if *t == timer => Some(*deadline_ms),
        _ => None,
    })
}

fn session_down(a: &[Action]) -> Option<SessionDown> {
    a.iter().find_map(|x| match x {
        Action::SessionDown(d) => Some(*d),
        _ => None,
    })
}

fn sweeps(a: &[Action]) -> Vec<Afi> {
    a.iter()
        .filter_map(|x| match x {
            Action::SweepStale(afi) => Some(*afi),
            _ => None,
        })
        .collect()
}

#[test]
fn config_refuses_hold_time_below_three_seconds() {
    for hold in [1, 2] {
        let cfg = SessionConfig {
            hold_time_secs: hold,
            ..ebgp()
        };
        assert_eq!(cfg.validate(), Err(ConfigError::HoldTime(hold)));
    }
    for hold in [0, 3, 90] {
        let cfg = SessionConfig {
            hold_time_secs: hold,
            ..ebgp()
        };
        assert_eq!(cfg.validate(), Ok(()));
    }
    let cfg = SessionConfig {
        local_id: Ipv4Addr::UNSPECIFIED,
        ..ebgp()
    };
    assert_eq!(cfg.validate(), Err(ConfigError::RouterId));
}

#[test]
fn manual_start_connects_and_retries_every_connect_retry_time() {
    let mut r = Rig::new(ebgp());
    let a = r.ev(Event::ManualStart);
    assert_eq!(r.state(), State::Connect);
    assert!(a.contains(&Action::Connect));
    assert_eq!(started(&a, Timer::ConnectRetry), Some(120 * SEC));
    assert!(r.at(120 * SEC - 1).is_empty());
    let a = r.at(120 * SEC);
    assert_eq!(
        &a[..],
        &[
            Action::Disconnect,
            Action::StartTimer {
                timer: Timer::ConnectRetry,
                deadline_ms: 240 * SEC
            },
            Action::Connect
        ]
    );
    assert_eq!(r.state(), State::Connect);
}

#[test]
fn connect_retry_time_is_configurable() {
    let mut r = Rig::new(SessionConfig {
        connect_retry_secs: 7,
        ..ebgp()
    });
    r.ev(Event::ManualStart);
    assert_eq!(r.s.deadline(Timer::ConnectRetry), Some(7 * SEC));
    let a = r.at(7 * SEC);
    assert!(a.contains(&Action::Connect));
    assert_eq!(started(&a, Timer::ConnectRetry), Some(14 * SEC));
}

#[test]
fn tcp_failure_in_connect_goes_idle_and_restarts_after_idle_hold() {
    let mut r = Rig::new(ebgp());
    r.ev(Event::ManualStart);
    let a = r.ev(Event::TcpConnectionFails);
    assert_eq!(r.state(), State::Idle);
    assert_eq!(r.s.deadline(Timer::ConnectRetry), None);
    assert_eq!(started(&a, Timer::IdleHold), Some(5 * SEC));
    assert_eq!(r.s.connect_retry_counter(), 1);
    assert!(r.at(5 * SEC - 1).is_empty());
    let a = r.at(5 * SEC);
    assert!(a.contains(&Action::Connect));
    assert_eq!(r.state(), State::Connect);
}

#[test]
fn passive_session_listens_and_never_connects() {
    let mut r = Rig::new(ebgp());
    let a = r.ev(Event::AutomaticStart { passive: true });
    assert_eq!(r.state(), State::Active);
    assert!(!a.contains(&Action::Connect));
    let a = r.at(120 * SEC);
    assert!(!a.contains(&Action::Connect));
    assert_eq!(r.state(), State::Active);
    assert_eq!(started(&a, Timer::ConnectRetry), Some(240 * SEC));
    let a = r.ev(Event::TcpConnectionConfirmed);
    assert!(a.contains(&Action::SendOpen));
    assert_eq!(r.state(), State::OpenSent);
}

#[test]
fn active_session_connects_when_connect_retry_expires() {
    let mut r = Rig::new(ebgp());
    r.ev(Event::ManualStart);
    r.ev(Event::TcpConnectionAcknowledged);
    r.now = 10 * SEC;
    // OpenSent + TCP failure: back to listening (Active).
    let a = r.ev(Event::TcpConnectionFails);
    assert_eq!(r.state(), State::Active);
    assert!(a.contains(&Action::Disconnect));
    assert_eq!(r.s.deadline(Timer::Hold), None);
    assert_eq!(started(&a, Timer::ConnectRetry), Some(130 * SEC));
    let a = r.at(130 * SEC);
    assert!(a.contains(&Action::Connect));
    assert_eq!(r.state(), State::Connect);
}

#[test]
fn open_sent_waits_four_minutes_for_the_open() {
    let mut r = Rig::new(ebgp());
    r.ev(Event::ManualStart);
    r.now = 3 * SEC;
    let a = r.ev(Event::TcpConnectionAcknowledged);
    assert_eq!(
        &a[..],
        &[
            Action::StopTimer(Timer::ConnectRetry),
            Action::SendOpen,
            Action::StartTimer {
                timer: Timer::Hold,
                deadline_ms: 243 * SEC
            },
            Action::StateChange {
                from: State::Connect,
                to: State::OpenSent
            },
        ]
    );
    assert!(r.at(243 * SEC - 1).is_empty());
    let a = r.at(243 * SEC);
    assert_eq!(notification(&a), Some((4, 0)));
    assert!(a.contains(&Action::Disconnect));
    assert_eq!(r.state(), State::Idle);
    assert_eq!(session_down(&a), None);
}

#[test]
fn hold_time_is_the_smaller_and_keepalive_a_third() {
    let mut r = Rig::new(ebgp());
    r.ev(Event::ManualStart);
    r.ev(Event::TcpConnectionAcknowledged);
    r.now = SEC;
    let a = r.ev(Event::BgpOpen(open(30)));
    assert_eq!(r.state(), State::OpenConfirm);
    assert!(a.contains(&Action::SendKeepalive));
    assert_eq!(started(&a, Timer::Keepalive), Some(11 * SEC));
    assert_eq!(started(&a, Timer::Hold), Some(31 * SEC));
    let n = r.s.negotiated().unwrap();
    assert_eq!((n.hold_time_secs, n.keepalive_ms), (30, 10 * SEC));

    // Ours is smaller this time.
    let mut r = Rig::new(SessionConfig {
        hold_time_secs: 9,
        ..ebgp()
    });
    r.establish(open(180));
    let n = r.s.negotiated().unwrap();
    assert_eq!((n.hold_time_secs, n.keepalive_ms), (9, 3 * SEC));
}

#[test]
fn keepalive_in_open_confirm_brings_the_session_up() {
    let mut r = Rig::new(ebgp());
    let a = r.establish(open(90));
    let up = a
        .iter()
        .find_map(|x| match x {
            Action::SessionUp(n) => Some(*n),
            _ => None,
        })
        .unwrap();
    assert_eq!(up.peer.bgp_id, peer_id());
    assert_eq!(up.families, AfiSet::IPV4);
    assert!(up.four_octet_as);
    assert_eq!(up.graceful_restart, AfiSet::EMPTY);
    assert!(a.contains(&Action::StateChange {
        from: State::OpenConfirm,
        to: State::Established
    }));
}

#[test]
fn keepalives_are_sent_every_third_of_the_hold_time() {
    let mut r = Rig::new(ebgp());
    r.establish(open(90));
    let mut sent = Vec::new();
    // The peer keeps talking every 25 s; we send ours every 30 s.
    for t in (1..=12).map(|i| i * 5 * SEC) {
        let a = r.at(t);
        if a.contains(&Action::SendKeepalive) {
            sent.push(t / SEC);
        }
        if t % (25 * SEC) == 0 {
            r.ev(Event::KeepAliveMsg);
        }
    }
    assert_eq!(sent, vec![30, 60]);
    assert_eq!(r.state(), State::Established);
}

#[test]
fn sending_an_update_postpones_the_keepalive() {
    let mut r = Rig::new(ebgp());
    r.establish(open(90));
    r.now = 20 * SEC;
    let mut out = Vec::new();
    r.s.update_sent(r.now, &mut out);
    assert_eq!(started(&out, Timer::Keepalive), Some(50 * SEC));
    assert!(!r.at(30 * SEC).contains(&Action::SendKeepalive));
    assert!(r.at(50 * SEC).contains(&Action::SendKeepalive));
}

#[test]
fn negotiated_hold_time_expiry_sends_notification_4_0() {
    let mut r = Rig::new(ebgp());
    r.establish(open(30));
    r.now = 20 * SEC;
    r.ev(Event::UpdateMsg); // hold restarts: now + 30 s
    assert!(r
        .at(49 * SEC)
        .iter()
        .all(|a| !matches!(a, Action::SendNotification { .. })));
    let a = r.at(50 * SEC);
    assert_eq!(notification(&a), Some((4, 0)));
    assert_eq!(
        session_down(&a),
        Some(SessionDown {
            keep_stale: AfiSet::EMPTY,
            withdraw: AfiSet::IPV4
        })
    );
    assert_eq!(r.state(), State::Idle);
    assert_eq!(r.s.deadline(Timer::Keepalive), None);
}

#[test]
fn hold_time_zero_runs_no_hold_or_keepalive_timer() {
    let mut r = Rig::new(ebgp());
    r.ev(Event::ManualStart);
    r.ev(Event::TcpConnectionAcknowledged);
    let a = r.ev(Event::BgpOpen(open(0)));
    assert!(a.contains(&Action::StopTimer(Timer::Hold)));
    assert_eq!(started(&a, Timer::Keepalive), None);
    r.ev(Event::KeepAliveMsg);
    assert_eq!(r.state(), State::Established);
    assert_eq!(r.s.next_deadline(), None);
    assert!(r.at(24 * 3600 * SEC).is_empty());
    assert_eq!(r.state(), State::Established);
    // Ours 0, theirs 90: still 0.
    let mut r = Rig::new(SessionConfig {
        hold_time_secs: 0,
        ..ebgp()
    });
    r.establish(open(90));
    assert_eq!(r.s.negotiated().unwrap().hold_time_secs, 0);
    assert_eq!(r.s.next_deadline(), None);
}

#[test]
fn bad_opens_get_notification_2_x() {
    let cases: Vec<(SessionConfig, PeerOpen, u8)> = vec![
        (
            ebgp(),
            PeerOpen {
                asn: 65099,
                ..open(90)
            },
            code::BAD_PEER_AS,
        ),
        (ebgp(), open(1), code::UNACCEPTABLE_HOLD_TIME),
        (ebgp(), open(2), code::UNACCEPTABLE_HOLD_TIME),
        (
            ebgp(),
            PeerOpen {
                bgp_id: Ipv4Addr::UNSPECIFIED,
                ..open(90)
            },
            code::BAD_BGP_IDENTIFIER,
        ),
        (
            ebgp(),
            PeerOpen {
                bgp_id: Ipv4Addr::new(224, 0, 0, 5),
                ..open(90)
            },
            code::BAD_BGP_IDENTIFIER,
        ),
        // iBGP: the peer may not use our identifier.
        (
            SessionConfig::new(LOCAL_AS, local_id(), LOCAL_AS),
            PeerOpen {
                asn: LOCAL_AS,
                bgp_id: local_id(),
                ..open(90)
            },
            code::BAD_BGP_IDENTIFIER,
        ),
    ];
    for (cfg, peer, subcode) in cases {
        let mut r = Rig::new(cfg);
        r.ev(Event::ManualStart);
        r.ev(Event::TcpConnectionAcknowledged);
        let a = r.ev(Event::BgpOpen(peer));
        assert_eq!(notification(&a), Some((2, subcode)), "{peer:?}");
        assert!(a.contains(&Action::Disconnect));
        assert_eq!(r.state(), State::Idle);
        assert_eq!(started(&a, Timer::IdleHold), Some(5 * SEC));
    }
    // eBGP with the same identifier is allowed (RFC 6286).
    let mut r = Rig::new(ebgp());
    r.establish(PeerOpen {
        bgp_id: local_id(),
        ..open(90)
    });
    // Errors the codec found.
    let mut r2 = Rig::new(ebgp());
    r2.ev(Event::ManualStart);
    r2.ev(Event::TcpConnectionAcknowledged);
    let a = r2.ev(Event::BgpOpenMsgErr { subcode: 1 });
    assert_eq!(notification(&a), Some((2, 1)));
    assert_eq!(r2.state(), State::Idle);
    let a = r.ev(Event::BgpHeaderErr { subcode: 2 });
    assert_eq!(notification(&a), Some((1, 2)));
    assert_eq!(r.state(), State::Idle);
}

#[test]
fn unexpected_messages_get_fsm_errors_per_state() {
    let mut r = Rig::new(ebgp());
    r.ev(Event::ManualStart);
    r.ev(Event::TcpConnectionAcknowledged);
    assert_eq!(notification(&r.ev(Event::UpdateMsg)), Some((5, 1)));
    assert_eq!(r.state(), State::Idle);

    let mut r = Rig::new(ebgp());
    r.ev(Event::ManualStart);
    r.ev(Event::TcpConnectionAcknowledged);
    r.ev(Event::BgpOpen(open(90)));
    assert_eq!(notification(&r.ev(Event::UpdateMsg)), Some((5, 2)));
    assert_eq!(r.state(), State::Idle);

    let mut r = Rig::new(ebgp());
    r.establish(open(90));
    let a = r.ev(Event::BgpOpen(open(90)));
    assert_eq!(notification(&a), Some((5, 3)));
    assert!(session_down(&a).is_some());
}

#[test]
fn update_errors_send_notification_3_x() {
    let mut r = Rig::new(ebgp());
    r.establish(open(90));
    let a = r.ev(Event::UpdateMsgErr { subcode: 1 });
    assert_eq!(notification(&a), Some((3, 1)));
    assert!(session_down(&a).is_some());
    assert_eq!(r.state(), State::Idle);
}

#[test]
fn received_notification_closes_without_answering() {
    let mut r = Rig::new(ebgp());
    r.establish(open(90));
    let a = r.ev(Event::NotifMsg {
        code: 6,
        subcode: 2,
    });
    assert_eq!(notification(&a), None);
    assert!(a.contains(&Action::Disconnect));
    assert!(session_down(&a).is_some());
    assert_eq!(r.state(), State::Idle);
}

#[test]
fn open_confirm_sends_keepalives_and_honours_its_hold_timer() {
    let mut r = Rig::new(ebgp());
    r.ev(Event::ManualStart);
    r.ev(Event::TcpConnectionAcknowledged);
    r.ev(Event::BgpOpen(open(30)));
    assert!(r.at(10 * SEC).contains(&Action::SendKeepalive));
    assert!(r.at(20 * SEC).contains(&Action::SendKeepalive));
    let a = r.at(30 * SEC);
    assert_eq!(notification(&a), Some((4, 0)));
    assert_eq!(r.state(), State::Idle);
}

#[test]
fn manual_stop_ceases_and_does_not_restart() {
    let mut r = Rig::new(ebgp());
    r.establish(open(90));
    let a = r.ev(Event::ManualStop);
    assert_eq!(notification(&a), Some((6, 2)));
    assert_eq!(
        session_down(&a),
        Some(SessionDown {
            keep_stale: AfiSet::EMPTY,
            withdraw: AfiSet::IPV4
        })
    );
    assert_eq!(r.state(), State::Idle);
    assert_eq!(r.s.next_deadline(), None);
    assert!(r.at(3600 * SEC).is_empty());
    // Stop while connecting: just close.
    let mut r = Rig::new(ebgp());
    r.ev(Event::ManualStart);
    let a = r.ev(Event::ManualStop);
    assert_eq!(notification(&a), None);
    assert!(a.contains(&Action::Disconnect));
    assert_eq!(r.s.next_deadline(), None);
}

#[test]
fn idle_hold_backs_off_exponentially_and_damps_automatic_start() {
    let mut r = Rig::new(ebgp());
    r.ev(Event::AutomaticStart { passive: false });
    let mut waits = Vec::new();
    for _ in 0..7 {
        let a = r.ev(Event::TcpConnectionFails);
        let deadline = started(&a, Timer::IdleHold).unwrap();
        waits.push((deadline - r.now) / SEC);
        // Damped: an automatic start does nothing until the timer runs out.
        assert!(r.ev(Event::AutomaticStart { passive: false }).is_empty());
        assert_eq!(r.state(), State::Idle);
        assert!(r.at(deadline).contains(&Action::Connect));
    }
    assert_eq!(waits, vec![5, 10, 20, 40, 80, 120, 120]);
    // A manual start skips the wait and starts the back-off over.
    r.ev(Event::TcpConnectionFails);
    assert!(r.ev(Event::ManualStart).contains(&Action::Connect));
    let a = r.ev(Event::TcpConnectionFails);
    assert_eq!(started(&a, Timer::IdleHold), Some(r.now + 5 * SEC));
}

#[test]
fn a_stable_session_resets_the_back_off() {
    let mut r = Rig::new(ebgp());
    r.ev(Event::ManualStart);
    r.ev(Event::TcpConnectionFails);
    let t = r.s.deadline(Timer::IdleHold).unwrap();
    r.at(t);
    r.establish(open(0));
    // Flap soon after coming up: the back-off grows.
    r.now += 10 * SEC;
    let a = r.ev(Event::TcpConnectionFails);
    assert_eq!(started(&a, Timer::IdleHold), Some(r.now + 10 * SEC));
    let t = r.s.deadline(Timer::IdleHold).unwrap();
    r.at(t);
    r.establish(open(0));
    // Up for the stable time: back to the first step.
    r.now += 120 * SEC;
    let a = r.ev(Event::TcpConnectionFails);
    assert_eq!(started(&a, Timer::IdleHold), Some(r.now + 5 * SEC));
}

#[test]
fn timer_events_not_due_are_ignored() {
    let mut r = Rig::new(ebgp());
    r.establish(open(90));
    r.now = 10 * SEC;
    assert!(r.ev(Event::HoldTimerExpires).is_empty());
    assert!(r.ev(Event::ConnectRetryTimerExpires).is_empty());
    assert_eq!(r.state(), State::Established);
}

#[test]
fn idle_refuses_connections() {
    let mut r = Rig::new(ebgp());
    assert_eq!(
        r.ev(Event::TcpConnectionConfirmed),
        vec![Action::Disconnect]
    );
    assert_eq!(r.state(), State::Idle);
    assert!(r.ev(Event::UpdateMsg).is_empty());
}

#[test]
fn collision_keeps_the_connection_of_the_higher_identifier() {
    let low = Ipv4Addr::new(1, 1, 1, 1);
    let high = Ipv4Addr::new(9, 9, 9, 9);
    assert_eq!(collision_survivor(low, high), Initiator::Remote);
    assert_eq!(collision_survivor(high, low), Initiator::Local);
    // Compared as integers, not per octet text.
    assert_eq!(
        collision_survivor(Ipv4Addr::new(10, 0, 0, 9), Ipv4Addr::new(9, 255, 255, 255)),
        Initiator::Local
    );
    use CollisionVerdict::*;
    assert_eq!(
        resolve_collision(State::OpenConfirm, Initiator::Local, low, high),
        CloseExisting
    );
    assert_eq!(
        resolve_collision(State::OpenConfirm, Initiator::Remote, low, high),
        CloseNew
    );
    assert_eq!(
        resolve_collision(State::OpenSent, Initiator::Local, high, low),
        CloseNew
    );
    assert_eq!(
        resolve_collision(State::Established, Initiator::Local, low, high),
        CloseNew
    );
    assert_eq!(
        resolve_collision(State::Connect, Initiator::Local, low, high),
        NoCollision
    );
    // The loser's FSM is told so: Cease 6/7.
    let mut r = Rig::new(ebgp());
    r.ev(Event::ManualStart);
    r.ev(Event::TcpConnectionAcknowledged);
    r.ev(Event::BgpOpen(open(90)));
    let a = r.ev(Event::OpenCollisionDump);
    assert_eq!(notification(&a), Some((6, 7)));
    assert_eq!(r.state(), State::Idle);
}

#[test]
fn graceful_restart_keeps_routes_stale_until_end_of_rib() {
    let mut r = Rig::new(gr_config());
    let a = r.establish(gr_open(false, AfiSet::BOTH));
    let up = a.iter().find_map(|x| match x {
        Action::SessionUp(n) => Some(*n),
        _ => None,
    });
    assert_eq!(up.unwrap().graceful_restart, AfiSet::BOTH);
    r.now = 50 * SEC;
    let a = r.ev(Event::TcpConnectionFails);
    assert_eq!(
        session_down(&a),
        Some(SessionDown {
            keep_stale: AfiSet::BOTH,
            withdraw: AfiSet::EMPTY
        })
    );
    assert_eq!(started(&a, Timer::GracefulRestart), Some(170 * SEC));
    assert_eq!(r.s.stale_families(), AfiSet::BOTH);
    // The peer is back within its restart time, forwarding preserved.
    r.at(r.s.deadline(Timer::IdleHold).unwrap());
    let a = r.establish(gr_open(false, AfiSet::BOTH));
    assert!(sweeps(&a).is_empty());
    assert!(a.contains(&Action::StopTimer(Timer::GracefulRestart)));
    assert_eq!(started(&a, Timer::StalePath), Some(r.now + 360 * SEC));
    // End-of-RIB per family sweeps that family.
    assert_eq!(sweeps(&r.ev(Event::EndOfRib(Afi::Ipv6))), vec![Afi::Ipv6]);
    assert_eq!(r.s.stale_families(), AfiSet::IPV4);
    let a = r.ev(Event::EndOfRib(Afi::Ipv4));
    assert_eq!(sweeps(&a), vec![Afi::Ipv4]);
    assert!(a.contains(&Action::StopTimer(Timer::StalePath)));
    assert!(sweeps(&r.ev(Event::EndOfRib(Afi::Ipv4))).is_empty());
}

#[test]
fn graceful_restart_timer_expiry_sweeps_stale_routes() {
    let mut r = Rig::new(gr_config());
    r.establish(gr_open(false, AfiSet::BOTH));
    r.ev(Event::TcpConnectionFails);
    // The peer never comes back: reconnect attempts fail meanwhile.
    r.at(5 * SEC);
    r.ev(Event::TcpConnectionFails);
    assert!(sweeps(&r.at(120 * SEC - 1)).is_empty());
    let a = r.at(120 * SEC);
    assert_eq!(sweeps(&a), vec![Afi::Ipv4, Afi::Ipv6]);
    assert_eq!(r.s.stale_families(), AfiSet::EMPTY);
}

#[test]
fn stale_path_timer_sweeps_without_end_of_rib() {
    let mut r = Rig::new(gr_config());
    r.establish(gr_open(false, AfiSet::BOTH));
    r.ev(Event::TcpConnectionFails);
    r.at(5 * SEC);
    // Hold time 0 so that only the stale-path timer runs.
    let mut back = gr_open(false, AfiSet::BOTH);
    back.hold_time_secs = 0;
    r.establish(back);
    r.ev(Event::EndOfRib(Afi::Ipv4));
    assert!(sweeps(&r.at(5 * SEC + 360 * SEC - 1)).is_empty());
    let a = r.at(5 * SEC + 360 * SEC);
    assert_eq!(sweeps(&a), vec![Afi::Ipv6]);
    assert_eq!(r.state(), State::Established);
}

#[test]
fn families_not_preserved_are_swept_when_the_peer_reopens() {
    let mut r = Rig::new(gr_config());
    r.establish(gr_open(false, AfiSet::BOTH));
    r.ev(Event::TcpConnectionFails);
    r.at(5 * SEC);
    r.ev(Event::TcpConnectionAcknowledged);
    let a = r.ev(Event::BgpOpen(gr_open(false, AfiSet::IPV6)));
    assert_eq!(sweeps(&a), vec![Afi::Ipv4]);
    assert_eq!(r.s.stale_families(), AfiSet::IPV6);
    // Without the capability at all: everything goes.
    let mut r = Rig::new(gr_config());
    r.establish(gr_open(false, AfiSet::BOTH));
    r.ev(Event::TcpConnectionFails);
    r.at(5 * SEC);
    r.ev(Event::TcpConnectionAcknowledged);
    let mut plain = open(90);
    plain.capabilities.multiprotocol = AfiSet::BOTH;
    let a = r.ev(Event::BgpOpen(plain));
    assert_eq!(sweeps(&a), vec![Afi::Ipv4, Afi::Ipv6]);
}

#[test]
fn notifications_withdraw_unless_the_n_bit_was_negotiated() {
    // No N bit: a NOTIFICATION (sent or received) withdraws everything.
    let mut r = Rig::new(gr_config());
    r.establish(gr_open(false, AfiSet::BOTH));
    let a = r.ev(Event::NotifMsg {
        code: 6,
        subcode: 4,
    });
    assert_eq!(session_down(&a).unwrap().keep_stale, AfiSet::EMPTY);
    assert_eq!(session_down(&a).unwrap().withdraw, AfiSet::BOTH);
    let mut r = Rig::new(gr_config());
    r.establish(gr_open(false, AfiSet::BOTH));
    r.now = 100 * SEC;
    let a = r.at(100 * SEC + 90 * SEC);
    assert_eq!(notification(&a), Some((4, 0)));
    assert_eq!(session_down(&a).unwrap().keep_stale, AfiSet::EMPTY);
    // N bit (RFC 8538): kept, also on hold timer expiry ...
    let mut r = Rig::new(gr_config());
    r.establish(gr_open(true, AfiSet::BOTH));
    let a = r.at(90 * SEC);
    assert_eq!(session_down(&a).unwrap().keep_stale, AfiSet::BOTH);
    let mut r = Rig::new(gr_config());
    r.establish(gr_open(true, AfiSet::BOTH));
    let a = r.ev(Event::NotifMsg {
        code: 6,
        subcode: 4,
    });
    assert_eq!(session_down(&a).unwrap().keep_stale, AfiSet::BOTH);
    // ... but not on Hard Reset.
    let mut r = Rig::new(gr_config());
    r.establish(gr_open(true, AfiSet::BOTH));
    let a = r.ev(Event::NotifMsg {
        code: 6,
        subcode: 9,
    });
    assert_eq!(session_down(&a).unwrap().keep_stale, AfiSet::EMPTY);
}

#[test]
fn manual_stop_withdraws_and_sweeps_stale_routes() {
    let mut r = Rig::new(gr_config());
    r.establish(gr_open(true, AfiSet::BOTH));
    let a = r.ev(Event::ManualStop);
    assert_eq!(session_down(&a).unwrap().keep_stale, AfiSet::EMPTY);
    // Stale routes from an earlier restart go too.
    let mut r = Rig::new(gr_config());
    r.establish(gr_open(true, AfiSet::BOTH));
    r.ev(Event::TcpConnectionFails);
    let a = r.ev(Event::ManualStop);
    assert_eq!(sweeps(&a), vec![Afi::Ipv4, Afi::Ipv6]);
    assert_eq!(r.s.next_deadline(), None);
}

#[test]
fn no_graceful_restart_without_both_capabilities() {
    // We did not advertise it.
    let mut r = Rig::new(SessionConfig {
        families: AfiSet::BOTH,
        ..ebgp()
    });
    r.establish(gr_open(true, AfiSet::BOTH));
    let a = r.ev(Event::TcpConnectionFails);
    assert_eq!(
        session_down(&a),
        Some(SessionDown {
            keep_stale: AfiSet::EMPTY,
            withdraw: AfiSet::BOTH
        })
    );
    // The peer did not.
    let mut r = Rig::new(gr_config());
    r.establish(open(90));
    let a = r.ev(Event::TcpConnectionFails);
    assert_eq!(
        session_down(&a),
        Some(SessionDown {
            keep_stale: AfiSet::EMPTY,
            withdraw: AfiSet::IPV4
        })
    );
}

#[test]
fn adopting_a_new_connection_after_a_lost_collision() {
    let mut r = Rig::new(ebgp());
    r.ev(Event::ManualStart);
    r.ev(Event::TcpConnectionAcknowledged);
    r.ev(Event::BgpOpen(open(90)));
    assert_eq!(r.state(), State::OpenConfirm);
    // The peer's id is known: decide at once.
    let remote = r.s.negotiated().unwrap().peer.bgp_id;
    assert_eq!(
        resolve_collision(r.state(), Initiator::Local, local_id(), remote),
        CollisionVerdict::CloseExisting
    );
    r.now = 7 * SEC;
    let a = r.ev(Event::AdoptNewConnection);
    assert_eq!(
        &a[..],
        &[
            Action::SendNotification {
                code: 6,
                subcode: 7
            },
            Action::ReplaceConnection,
            Action::StopTimer(Timer::Keepalive),
            Action::SendOpen,
            Action::StartTimer {
                timer: Timer::Hold,
                deadline_ms: 247 * SEC
            },
            Action::StateChange {
                from: State::OpenConfirm,
                to: State::OpenSent
            },
        ]
    );
    assert_eq!(r.s.negotiated(), None);
    // No failure counted: no idle hold, and the session goes on.
    assert_eq!(r.s.deadline(Timer::IdleHold), None);
    r.ev(Event::BgpOpen(open(90)));
    r.ev(Event::KeepAliveMsg);
    assert_eq!(r.state(), State::Established);
    // Idle refuses; Active takes the connection.
    let mut idle = Rig::new(ebgp());
    assert_eq!(idle.ev(Event::AdoptNewConnection), vec![Action::Disconnect]);
    let mut passive = Rig::new(ebgp());
    passive.ev(Event::ManualStartPassive);
    let a = passive.ev(Event::AdoptNewConnection);
    assert_eq!(a[0], Action::ReplaceConnection);
    assert_eq!(passive.state(), State::OpenSent);
}

#[test]
fn a_peer_reconnecting_while_established_is_a_graceful_restart() {
    let mut r = Rig::new(gr_config());
    r.establish(gr_open(false, AfiSet::BOTH));
    r.now = 30 * SEC;
    let a = r.ev(Event::AdoptNewConnection);
    assert_eq!(notification(&a), None);
    assert_eq!(
        session_down(&a),
        Some(SessionDown {
            keep_stale: AfiSet::BOTH,
            withdraw: AfiSet::EMPTY
        })
    );
    assert!(a.contains(&Action::ReplaceConnection));
    assert_eq!(started(&a, Timer::GracefulRestart), Some(150 * SEC));
    assert_eq!(r.state(), State::OpenSent);
    r.ev(Event::BgpOpen(gr_open(false, AfiSet::BOTH)));
    let a = r.ev(Event::KeepAliveMsg);
    assert!(a.contains(&Action::StopTimer(Timer::GracefulRestart)));
    assert_eq!(started(&a, Timer::StalePath), Some(390 * SEC));
    assert_eq!(r.s.stale_families(), AfiSet::BOTH);
}

#[test]
fn restart_time_zero_keeps_nothing() {
    let mut r = Rig::new(gr_config());
    let mut peer = gr_open(false, AfiSet::BOTH);
    if let Some(gr) = peer.capabilities.graceful_restart.as_mut() {
        gr.restart_time_secs = 0;
    }
    r.establish(peer);
    let a = r.ev(Event::TcpConnectionFails);
    assert_eq!(
        session_down(&a),
        Some(SessionDown {
            keep_stale: AfiSet::EMPTY,
            withdraw: AfiSet::BOTH
        })
    );
    assert_eq!(r.s.deadline(Timer::GracefulRestart), None);
}
