//! Timeouts with a fake clock: every class, refresh rules, TCP state
//! transitions through real packets, expiry budget, lazy expiry on lookup.

use super::pkt::*;
use crate::nat::*;
use crate::wire::tcp::{ACK, FIN, PSH, RST, SYN};

/// Whether the session of `A:1111 <-> R1:2222` still exists at `now`
/// after `expire` ran (without touching it).
fn alive_after_expire(nat: &mut Nat, now: u64) -> bool {
    nat.expire(now, usize::MAX);
    nat.session_count() == 1
}

/// Runs `steps` (flags, outbound?) at t = 0, then checks that the session
/// lives until exactly `timeout_secs` after the last packet.
fn tcp_case(steps: &[(u8, bool)], timeout_secs: u64, state: &str) {
    let mut nat = Nat::new(cfg()).unwrap();
    let t0 = 5 * SEC;
    for &(flags, out) in steps {
        let v = if out {
            let mut p = tcp((A, 1111), (R1, 2222), flags);
            nat.outbound(&mut p, t0)
        } else {
            let mut p = tcp((R1, 2222), (POOL1, 1111), flags);
            nat.inbound(&mut p, t0)
        };
        assert_eq!(v, Verdict::Translated, "{steps:?}");
    }
    let info = nat.sessions(None, 0, t0).next().unwrap().1;
    assert_eq!(info.state, state, "{steps:?}");
    assert_eq!(info.expires_in_nanos, timeout_secs * SEC, "{steps:?}");
    assert!(
        alive_after_expire(&mut nat, t0 + timeout_secs * SEC - 1),
        "{steps:?}"
    );
    assert!(
        !alive_after_expire(&mut nat, t0 + timeout_secs * SEC),
        "{steps:?}"
    );
    assert_eq!(nat.counters().sessions_expired, 1);
    assert_eq!(
        nat.mapping_count(),
        0,
        "the mapping goes with its last session"
    );
    assert_eq!(nat.host_sessions(A), 0);
}

#[test]
fn tcp_states_and_their_timeouts() {
    tcp_case(&[(SYN, true)], 240, "syn-sent");
    tcp_case(&[(SYN, true), (SYN | ACK, false)], 7440, "established");
    tcp_case(
        &[(SYN, true), (SYN | ACK, false), (ACK | PSH, true)],
        7440,
        "established",
    );
    tcp_case(
        &[(SYN, true), (SYN | ACK, false), (FIN | ACK, true)],
        7440,
        "half-closed",
    );
    tcp_case(
        &[
            (SYN, true),
            (SYN | ACK, false),
            (FIN | ACK, true),
            (FIN | ACK, false),
        ],
        240,
        "closing",
    );
    tcp_case(
        &[(SYN, true), (SYN | ACK, false), (RST, false)],
        240,
        "reset",
    );
    tcp_case(
        &[(SYN, true), (SYN | ACK, false), (RST | ACK, true)],
        240,
        "reset",
    );
    tcp_case(&[(SYN, true), (RST, false), (SYN, true)], 240, "syn-sent");
    tcp_case(
        &[(SYN, true), (RST, false), (SYN, true), (SYN | ACK, false)],
        7440,
        "established",
    );
    // Mid-stream pickup (no SYN seen): the initial timeout.
    tcp_case(&[(ACK, true), (ACK, false)], 240, "no-syn");
}

#[test]
fn configured_timeouts_are_used() {
    let timeouts = Timeouts {
        tcp_established_secs: 100,
        tcp_transitory_secs: 10,
        tcp_initial_secs: 20,
        ..Timeouts::default()
    };
    let mut nat = Nat::new(NatConfig { timeouts, ..cfg() }).unwrap();
    let mut p = tcp((A, 1111), (R1, 2222), SYN);
    nat.outbound(&mut p, 0);
    assert!(alive_after_expire(&mut nat, 20 * SEC - 1));
    let mut r = tcp((R1, 2222), (POOL1, 1111), SYN | ACK);
    nat.inbound(&mut r, 20 * SEC - 1);
    // Established at 20 s - 1 ns: 100 s from then.
    assert!(alive_after_expire(&mut nat, 120 * SEC - 2));
    assert!(!alive_after_expire(&mut nat, 120 * SEC - 1));
}

/// UDP (300 s) and ICMP query (60 s) idle timeouts, refreshed by outbound
/// traffic and by inbound traffic only when `inbound_refresh` is set.
#[test]
fn udp_and_icmp_timeouts_and_refresh() {
    for inbound_refresh in [true, false] {
        for (proto, timeout) in [(Proto::Udp, 300), (Proto::Icmp, 60)] {
            let mut nat = Nat::new(NatConfig {
                inbound_refresh,
                ..cfg()
            })
            .unwrap();
            let out = |nat: &mut Nat, t: u64| {
                let mut p = match proto {
                    Proto::Udp => udp((A, 1111), (R1, 2222), b""),
                    _ => echo(A, R1, 8, 1111, 1),
                };
                nat.outbound(&mut p, t)
            };
            let inb = |nat: &mut Nat, t: u64| {
                let mut p = match proto {
                    Proto::Udp => udp((R1, 2222), (POOL1, 1111), b""),
                    _ => echo(R1, POOL1, 0, 1111, 1),
                };
                nat.inbound(&mut p, t)
            };
            assert_eq!(out(&mut nat, 0), Verdict::Translated);
            // Outbound refresh at t = 10 s.
            assert_eq!(out(&mut nat, 10 * SEC), Verdict::Translated);
            assert!(alive_after_expire(&mut nat, (10 + timeout) * SEC - 1));
            // Inbound at t = 20 s refreshes only when configured to.
            assert_eq!(inb(&mut nat, 20 * SEC), Verdict::Translated);
            let end = if inbound_refresh {
                20 + timeout
            } else {
                10 + timeout
            };
            assert!(
                alive_after_expire(&mut nat, end * SEC - 1),
                "{proto:?} {inbound_refresh}"
            );
            assert!(
                !alive_after_expire(&mut nat, end * SEC),
                "{proto:?} {inbound_refresh}"
            );
        }
    }
}

#[test]
fn expiry_honours_the_budget_and_oldest_go_first() {
    let mut nat = Nat::new(cfg()).unwrap();
    for i in 0..10u16 {
        let mut p = udp((A, 2000 + i), (R1, 53), b"");
        nat.outbound(&mut p, u64::from(i) * SEC);
    }
    // At 305 s the sessions created at 0..=5 s are due.
    assert_eq!(nat.expire(305 * SEC, 4), 4);
    assert_eq!(nat.session_count(), 6);
    assert_eq!(nat.expire(305 * SEC, 4), 2);
    assert_eq!(nat.expire(305 * SEC, 4), 0);
    let left: Vec<u16> = nat
        .sessions(None, 0, 305 * SEC)
        .map(|(_, s)| s.inside.port())
        .collect();
    let mut left = left;
    left.sort_unstable();
    assert_eq!(left, vec![2006, 2007, 2008, 2009]);
    assert_eq!(nat.counters().sessions_expired, 6);
}

#[test]
fn expired_session_found_before_expire_ran_is_not_used() {
    let mut nat = Nat::new(NatConfig {
        filtering: Filtering::AddressAndPortDependent,
        ..cfg()
    })
    .unwrap();
    let mut p = udp((A, 4000), (R1, 53), b"");
    nat.outbound(&mut p, 0);
    let mut r = udp((R1, 53), (POOL1, 4000), b"");
    assert_eq!(
        nat.inbound(&mut r, 300 * SEC),
        Verdict::Drop(NatDrop::NoSession)
    );
    assert_eq!(nat.session_count(), 0);
    assert_eq!(nat.counters().sessions_expired, 1);
}

#[test]
fn mapping_lives_while_any_session_uses_it() {
    let mut nat = Nat::new(NatConfig {
        pool: vec![POOL1],
        ..cfg()
    })
    .unwrap();
    // Occupy 5000 so A's mapping is allocated, not preserved.
    let mut p = udp((B, 5000), (R1, 1), b"");
    nat.outbound(&mut p, 0);
    let mut p = udp((A, 5000), (R1, 1), b"");
    nat.outbound(&mut p, 0);
    let mapped = src(&p);
    let mut p = udp((A, 5000), (R2, 1), b"");
    nat.outbound(&mut p, 200 * SEC);
    nat.expire(300 * SEC, usize::MAX);
    // The R1 sessions expired; the R2 one keeps A's mapping.
    assert_eq!(nat.session_count(), 1);
    let mut p = udp((A, 5000), (R1, 1), b"");
    nat.outbound(&mut p, 300 * SEC);
    assert_eq!(src(&p), mapped);
}

/// The case proptest found against an earlier lazy list: a session used
/// after it was queued must not hide a due session queued behind it.
#[test]
fn a_refreshed_head_does_not_hide_due_sessions() {
    let mut nat = Nat::new(cfg()).unwrap();
    let tenth = SEC / 10;
    let send = |nat: &mut Nat, port: u16, t: u64| {
        let mut p = udp((A, port), (R1, 53), b"");
        assert_eq!(nat.outbound(&mut p, t), Verdict::Translated);
    };
    send(&mut nat, 2008, 0);
    send(&mut nat, 2008, 458 * tenth);
    for t in [1027, 2134, 2620, 3000] {
        send(&mut nat, 2000, t * tenth);
    }
    nat.expire(3000 * tenth, usize::MAX);
    assert_eq!(nat.session_count(), 2);
    send(&mut nat, 2000, 3458 * tenth);
    assert_eq!(
        nat.expire(3458 * tenth, usize::MAX),
        1,
        "2008 idle since 45.8 s"
    );
    assert_eq!(
        nat.sessions(None, 0, 0).next().unwrap().1.inside.port(),
        2000
    );
}

proptest::proptest! {
    /// Sessions refreshed at random times and expiry with random budgets:
    /// after a full expiry pass exactly the sessions idle for >= 300 s are
    /// gone (the lazily ordered lists lose nothing and free nothing early).
    #[test]
    fn expiry_matches_a_model(
        ops in proptest::collection::vec((0u16..24, 0u64..1200, 0usize..4, proptest::bool::ANY), 1..300),
    ) {
        let mut nat = Nat::new(cfg()).unwrap();
        let mut model = std::collections::HashMap::new();
        let mut now = 0;
        for (flow, dt_tenths, budget, check) in ops {
            now += dt_tenths * SEC / 10;
            let mut p = udp((A, 2000 + flow), (R1, 53), b"");
            proptest::prop_assert_eq!(nat.outbound(&mut p, now), Verdict::Translated);
            model.insert(2000 + flow, now);
            nat.expire(now, budget);
            if check {
                nat.expire(now, usize::MAX);
                let mut live: Vec<u16> = nat.sessions(None, 0, now).map(|(_, s)| s.inside.port()).collect();
                live.sort_unstable();
                let mut want: Vec<u16> = model
                    .iter()
                    .filter(|&(_, &last)| last + 300 * SEC > now)
                    .map(|(&port, _)| port)
                    .collect();
                want.sort_unstable();
                proptest::prop_assert_eq!(live, want);
            }
        }
    }
}
