//! Live reconfiguration ([`Nat::reconfigure`]): established sessions keep
//! translating identically; removed pool addresses and forwards flush their
//! sessions; new forwards and 1:1 mappings start; timeouts, filtering and
//! table size change in place; bad configs change nothing.

use std::net::Ipv4Addr;

use super::pkt::*;
use crate::nat::*;
use crate::wire::tcp::{ACK, SYN};

const POOL3: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 3);

fn fwd(proto: Proto, outside_port: u16, inside: Ipv4Addr, inside_port: u16) -> PortForward {
    PortForward {
        proto,
        outside_addr: POOL1,
        outside_port,
        inside_addr: inside,
        inside_port,
    }
}

#[track_caller]
fn check(nat: &Nat) {
    if let Err(e) = nat.check_invariants() {
        panic!("invariant broken: {e}");
    }
}

/// Sends `p` outbound and returns the translated source.
#[track_caller]
fn out(nat: &mut Nat, mut p: Vec<u8>, now: u64) -> (Ipv4Addr, u16) {
    assert_translated(nat.outbound(&mut p, now), &p);
    src(&p)
}

/// Sends `p` inbound and returns the translated destination.
#[track_caller]
fn back(nat: &mut Nat, mut p: Vec<u8>, now: u64) -> (Ipv4Addr, u16) {
    assert_translated(nat.inbound(&mut p, now), &p);
    dst(&p)
}

#[test]
fn established_sessions_translate_identically_after_pool_timeout_and_filtering_change() {
    let mut nat = Nat::new(cfg()).unwrap();
    // TCP established, UDP and ICMP echo, all on POOL1.
    let t = out(&mut nat, tcp((A, 50000), (R1, 443), SYN), 0);
    assert_eq!(back(&mut nat, tcp((R1, 443), t, SYN | ACK), 0), (A, 50000));
    let u = out(&mut nat, udp((A, 40000), (R1, 53), b"q"), 0);
    let e = out(&mut nat, echo(A, R1, 8, 7, 1), 0);
    assert_eq!(nat.session_count(), 3);
    let created = nat.counters().sessions_created;

    let new = NatConfig {
        pool: vec![POOL2, POOL1],
        filtering: Filtering::AddressAndPortDependent,
        timeouts: Timeouts {
            udp_secs: 30,
            tcp_established_secs: 8000,
            ..Timeouts::default()
        },
        outside_iface: 3,
        ..cfg()
    };
    let r = nat.reconfigure(new.clone()).unwrap();
    check(&nat);
    assert_eq!(nat.config(), &new);
    assert_eq!(r.sessions_kept, 3);
    assert_eq!(r.sessions_flushed(), 0);
    assert_eq!((r.pool_kept, r.pool_added, r.pool_removed), (1, 1, 0));
    assert!(!r.tables_rebuilt);

    // Same outside endpoints both ways, no new session.
    let now = 10 * SEC;
    assert_eq!(out(&mut nat, tcp((A, 50000), (R1, 443), ACK), now), t);
    assert_eq!(back(&mut nat, tcp((R1, 443), t, ACK), now), (A, 50000));
    assert_eq!(out(&mut nat, udp((A, 40000), (R1, 53), b"q"), now), u);
    assert_eq!(back(&mut nat, udp((R1, 53), u, b"a"), now), (A, 40000));
    assert_eq!(out(&mut nat, echo(A, R1, 8, 7, 2), now), e);
    let mut reply = echo(R1, e.0, 0, e.1, 2);
    assert_translated(nat.inbound(&mut reply, now), &reply);
    assert_eq!((addr(&reply, 16), dst(&reply).1), (A, 7));
    assert_eq!(nat.counters().sessions_created, created);
    assert_eq!(nat.host_sessions(A), 3);

    // The new filtering applies to the existing mapping.
    let mut stranger = udp((R2, 53), u, b"x");
    assert_eq!(
        nat.inbound(&mut stranger, now),
        Verdict::Drop(NatDrop::Filtered)
    );
    // A new host's flow shares the pool without colliding.
    let b = out(&mut nat, udp((B, 40000), (R1, 53), b"q"), now);
    assert_ne!(b, u);
    check(&nat);
    // The new UDP timeout applies to the existing sessions: 30 s after
    // their last use they are gone, while TCP (8000 s) and ICMP (60 s) stay.
    assert_eq!(nat.expire(now + 30 * SEC, usize::MAX), 2);
    assert_eq!(nat.session_count(), 2);
    check(&nat);
}

#[test]
fn shorter_timeouts_expire_exactly_the_sessions_past_them() {
    let mut nat = Nat::new(cfg()).unwrap();
    // UDP sessions last used at 0, 10, ..., 90 s.
    for i in 0..10u16 {
        out(
            &mut nat,
            udp((A, 41000 + i), (R1, 53), b""),
            u64::from(i) * 10 * SEC,
        );
    }
    let new = NatConfig {
        timeouts: Timeouts {
            udp_secs: 45,
            ..Timeouts::default()
        },
        ..cfg()
    };
    nat.reconfigure(new).unwrap();
    check(&nat);
    // At 100 s, those last used at <= 55 s are past 45 s: 0..=50 -> 6.
    assert_eq!(nat.expire(100 * SEC, usize::MAX), 6);
    assert_eq!(nat.session_count(), 4);
    // A longer timeout keeps sessions the old one would have expired.
    let longer = NatConfig {
        timeouts: Timeouts {
            udp_secs: 1000,
            ..Timeouts::default()
        },
        ..cfg()
    };
    nat.reconfigure(longer).unwrap();
    assert_eq!(nat.expire(500 * SEC, usize::MAX), 0);
    assert_eq!(nat.expire(1090 * SEC, usize::MAX), 4);
    check(&nat);
}

#[test]
fn sessions_on_a_removed_address_are_flushed_and_remapped_on_the_next_packet() {
    let two = NatConfig {
        pool: vec![POOL1, POOL2],
        ..cfg()
    };
    let mut nat = Nat::new(two).unwrap();
    // Hosts 10.0.1.x spread over both pool addresses (by hash).
    let mut flows = Vec::new();
    for h in 1..=40u8 {
        let host = Ipv4Addr::new(10, 0, 1, h);
        let o = out(&mut nat, udp((host, 40000), (R1, 53), b""), 0);
        flows.push((host, o));
    }
    let on1 = flows.iter().filter(|f| f.1 .0 == POOL1).count();
    assert!(on1 > 0 && on1 < flows.len(), "both addresses used");
    let r = nat
        .reconfigure(NatConfig {
            pool: vec![POOL2],
            ..cfg()
        })
        .unwrap();
    check(&nat);
    assert_eq!(r.flushed_removed_pool, on1);
    assert_eq!(r.mappings_flushed, on1);
    assert_eq!(r.sessions_kept, flows.len() - on1);
    assert_eq!(nat.counters().sessions_flushed, on1 as u64);
    assert_eq!(nat.session_count(), flows.len() - on1);
    for &(host, o) in &flows {
        if o.0 == POOL1 {
            assert_eq!(nat.host_sessions(host), 0);
            // The old outside endpoint is no longer ours.
            let mut p = udp((R1, 53), o, b"");
            assert_eq!(nat.inbound(&mut p, SEC), Verdict::NotNat);
            // The flow's next packet gets a new mapping on POOL2.
            let created = nat.counters().sessions_created;
            let n = out(&mut nat, udp((host, 40000), (R1, 53), b""), SEC);
            assert_eq!(n.0, POOL2);
            assert_eq!(nat.counters().sessions_created, created + 1);
            assert_eq!(back(&mut nat, udp((R1, 53), n, b""), SEC), (host, 40000));
        } else {
            assert_eq!(nat.host_sessions(host), 1);
            assert_eq!(out(&mut nat, udp((host, 40000), (R1, 53), b""), SEC), o);
        }
    }
    check(&nat);
}

#[test]
fn removed_forward_stops_accepting_and_added_forward_starts() {
    let c = NatConfig {
        forwards: vec![fwd(Proto::Tcp, 8080, SRV, 80)],
        ..cfg()
    };
    let mut nat = Nat::new(c).unwrap();
    assert_eq!(
        back(&mut nat, tcp((R1, 40000), (POOL1, 8080), SYN), 0),
        (SRV, 80)
    );
    assert_eq!(
        out(&mut nat, tcp((SRV, 80), (R1, 40000), SYN | ACK), 0),
        (POOL1, 8080)
    );
    // An unrelated dynamic session survives.
    let u = out(&mut nat, udp((A, 40000), (R1, 53), b""), 0);

    let r = nat
        .reconfigure(NatConfig {
            forwards: vec![fwd(Proto::Tcp, 2222, SRV, 22)],
            ..cfg()
        })
        .unwrap();
    check(&nat);
    assert_eq!(
        (r.forwards_kept, r.forwards_added, r.forwards_removed),
        (0, 1, 1)
    );
    assert_eq!(r.flushed_removed_forward, 1);
    assert_eq!(r.static_mappings_added, 1);
    assert_eq!(nat.host_sessions(SRV), 0);
    // The established connection through the old forward is gone, and the
    // old port accepts nothing.
    let mut p = tcp((R1, 40000), (POOL1, 8080), ACK);
    assert_eq!(nat.inbound(&mut p, SEC), Verdict::Drop(NatDrop::NoSession));
    let mut p = tcp((R2, 40001), (POOL1, 8080), SYN);
    assert_eq!(nat.inbound(&mut p, SEC), Verdict::Drop(NatDrop::NoSession));
    // The new one accepts.
    assert_eq!(
        back(&mut nat, tcp((R2, 40001), (POOL1, 2222), SYN), SEC),
        (SRV, 22)
    );
    assert_eq!(
        out(&mut nat, tcp((SRV, 22), (R2, 40001), SYN | ACK), SEC),
        (POOL1, 2222)
    );
    assert_eq!(out(&mut nat, udp((A, 40000), (R1, 53), b""), SEC), u);
    check(&nat);
}

#[test]
fn new_forward_displaces_the_dynamic_mapping_on_its_port() {
    let mut nat = Nat::new(cfg()).unwrap();
    // A's port is preserved: POOL1:40000/udp, two sessions on it.
    assert_eq!(
        out(&mut nat, udp((A, 40000), (R1, 53), b""), 0),
        (POOL1, 40000)
    );
    assert_eq!(
        out(&mut nat, udp((A, 40000), (R2, 53), b""), 0),
        (POOL1, 40000)
    );
    // B's inside endpoint 10.0.0.3:5000 will be a forward's inside.
    out(&mut nat, udp((B, 5000), (R1, 53), b""), 0);
    let r = nat
        .reconfigure(NatConfig {
            forwards: vec![
                fwd(Proto::Udp, 40000, SRV, 53),
                fwd(Proto::Udp, 6000, B, 5000),
            ],
            ..cfg()
        })
        .unwrap();
    check(&nat);
    assert_eq!(r.flushed_forward_conflict, 3);
    assert_eq!(r.mappings_flushed, 2);
    assert_eq!(nat.session_count(), 0);
    assert_eq!(
        back(&mut nat, udp((R1, 53), (POOL1, 40000), b""), SEC),
        (SRV, 53)
    );
    // A gets another port; B now leaves through its forward (EIM).
    let a = out(&mut nat, udp((A, 40000), (R1, 53), b""), SEC);
    assert_eq!(a.0, POOL1);
    assert_ne!(a.1, 40000);
    assert_eq!(
        out(&mut nat, udp((B, 5000), (R1, 53), b""), SEC),
        (POOL1, 6000)
    );
    check(&nat);
}

#[test]
fn removed_one_to_one_leaves_no_fragment_state() {
    let c = NatConfig {
        one_to_one: vec![OneToOne {
            outside: POOL3,
            inside: B,
        }],
        ..cfg()
    };
    let mut nat = Nat::new(c).unwrap();
    let (f1, f2) = fragment(&udp((B, 7000), (R1, 53), &[7u8; 64]), 32);
    let mut p = f1.clone();
    assert_eq!(nat.outbound(&mut p, 0), Verdict::Translated);
    assert_eq!(addr(&p, 12), POOL3);
    // Control: with the 1:1 kept, the later fragment follows.
    let mut p = f2.clone();
    assert_eq!(nat.outbound(&mut p, 0), Verdict::Translated);
    let mut p = f1.clone();
    assert_eq!(nat.outbound(&mut p, 0), Verdict::Translated);
    let r = nat.reconfigure(cfg()).unwrap();
    assert_eq!((r.one_to_one_added, r.one_to_one_removed), (0, 1));
    assert_eq!(r.fragments_purged, 1);
    let mut p = f2.clone();
    assert_eq!(
        nat.outbound(&mut p, 0),
        Verdict::Drop(NatDrop::FragmentNoState)
    );
    // Inbound to the old 1:1 address is no longer NAT's.
    let mut p = udp((R1, 53), (POOL3, 7000), b"");
    assert_eq!(nat.inbound(&mut p, 0), Verdict::NotNat);
    // B now goes through the pool.
    assert_eq!(out(&mut nat, udp((B, 7000), (R1, 53), b""), 0).0, POOL1);
    check(&nat);
}

#[test]
fn max_sessions_grows_and_shrinks_keeping_sessions_and_expiry_order() {
    let mut nat = Nat::new(cfg()).unwrap();
    let mut flows = Vec::new();
    for i in 0..50u16 {
        let host = Ipv4Addr::new(10, 0, 2, (i % 7) as u8 + 1);
        let o = out(
            &mut nat,
            udp((host, 30000 + i), (R1, 53), b""),
            u64::from(i) * SEC,
        );
        flows.push((host, 30000 + i, o));
    }
    for (max, now) in [(100_000u32, 60u64), (64, 61)] {
        let r = nat
            .reconfigure(NatConfig {
                max_sessions: max,
                ..cfg()
            })
            .unwrap();
        assert!(r.tables_rebuilt);
        assert_eq!(r.sessions_kept, 50);
        check(&nat);
        for &(host, port, o) in &flows[40..] {
            assert_eq!(
                out(&mut nat, udp((host, port), (R1, 53), b""), now * SEC),
                o
            );
            assert_eq!(
                back(&mut nat, udp((R1, 53), o, b""), now * SEC),
                (host, port)
            );
        }
    }
    for h in 1..=7u8 {
        let n = flows
            .iter()
            .filter(|f| f.0 == Ipv4Addr::new(10, 0, 2, h))
            .count();
        assert_eq!(nat.host_sessions(Ipv4Addr::new(10, 0, 2, h)), n as u32);
    }
    // The order survived: at 309 s, sessions used at 0..=9 s are due.
    assert_eq!(nat.expire(309 * SEC, usize::MAX), 10);
    check(&nat);
    // Too small for the 40 live sessions: refused, nothing changed.
    let before = nat.config().clone();
    let err = nat
        .reconfigure(NatConfig {
            max_sessions: 39,
            ..cfg()
        })
        .unwrap_err();
    assert_eq!(
        err,
        NatConfigError::MaxSessionsBelowLive {
            max: 39,
            sessions: 40
        }
    );
    assert!(err.to_string().contains("nat.max_sessions"));
    assert_eq!(nat.config(), &before);
    assert_eq!(nat.session_count(), 40);
    // Fits once the sessions on a removed address are counted out.
    let r = nat
        .reconfigure(NatConfig {
            max_sessions: 1,
            pool: vec![POOL2],
            ..cfg()
        })
        .unwrap();
    assert_eq!((r.sessions_kept, r.flushed_removed_pool), (0, 40));
    check(&nat);
}

#[test]
fn invalid_configs_and_worker_changes_change_nothing() {
    let c = NatConfig {
        workers: 4,
        worker: 1,
        pool: vec![POOL1],
        ..cfg()
    };
    let mut nat = Nat::new(c.clone()).unwrap();
    let host = (0..=255u8)
        .map(|h| Ipv4Addr::new(10, 0, 3, h))
        .find(|&h| inside_worker(4, h) == 1)
        .unwrap();
    let o = out(&mut nat, udp((host, 1234), (R1, 53), b""), 0);
    let err = nat
        .reconfigure(NatConfig {
            workers: 2,
            ..c.clone()
        })
        .unwrap_err();
    assert!(err.to_string().contains("restart"), "{err}");
    let err = nat
        .reconfigure(NatConfig {
            worker: 2,
            ..c.clone()
        })
        .unwrap_err();
    assert!(matches!(err, NatConfigError::WorkersChanged { .. }));
    let err = nat
        .reconfigure(NatConfig {
            pool: vec![],
            ..c.clone()
        })
        .unwrap_err();
    assert_eq!(err, NatConfigError::EmptyPool);
    assert_eq!(nat.config(), &c);
    assert_eq!(nat.session_count(), 1);
    assert_eq!(out(&mut nat, udp((host, 1234), (R1, 53), b""), SEC), o);
    check(&nat);
}
