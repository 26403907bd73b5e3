//! Source NAT: translation and its reverse, port preservation, EIM,
//! filtering, exhaustion and limits, listing, config validation.

use std::net::Ipv4Addr;

use super::pkt::*;
use crate::nat::*;

#[test]
fn udp_out_and_reply_back_with_port_preserved() {
    let mut nat = Nat::new(cfg()).unwrap();
    let mut p = udp((A, 40000), (R1, 53), b"query");
    assert_translated(nat.outbound(&mut p, 0), &p);
    assert_eq!(
        src(&p),
        (POOL1, 40000),
        "inside port in range and free: preserved"
    );
    assert_eq!(dst(&p), (R1, 53));
    let mut r = udp((R1, 53), (POOL1, 40000), b"answer");
    assert_translated(nat.inbound(&mut r, SEC), &r);
    assert_eq!(dst(&r), (A, 40000));
    assert_eq!(src(&r), (R1, 53));
    let c = nat.counters();
    assert_eq!(
        (c.sessions_created, c.translated_out, c.translated_in),
        (1, 1, 1)
    );
    assert_eq!(nat.session_count(), 1);
    assert_eq!(nat.host_sessions(A), 1);
}

#[test]
fn tcp_out_and_back() {
    let mut nat = Nat::new(cfg()).unwrap();
    let mut p = tcp((A, 50123), (R1, 443), crate::wire::tcp::SYN);
    assert_translated(nat.outbound(&mut p, 0), &p);
    assert_eq!(src(&p), (POOL1, 50123));
    let mut r = tcp(
        (R1, 443),
        (POOL1, 50123),
        crate::wire::tcp::SYN | crate::wire::tcp::ACK,
    );
    assert_translated(nat.inbound(&mut r, 1), &r);
    assert_eq!(dst(&r), (A, 50123));
}

#[test]
fn udp_zero_checksum_stays_zero() {
    let mut nat = Nat::new(cfg()).unwrap();
    let mut p = udp_nocsum((A, 5000), (R1, 53), b"x");
    assert_translated(nat.outbound(&mut p, 0), &p);
    assert_eq!(&p[26..28], &[0, 0]);
    assert_eq!(src(&p).0, POOL1);
}

#[test]
fn taken_or_low_ports_get_another_port() {
    let mut nat = Nat::new(cfg()).unwrap();
    let mut p = udp((A, 40000), (R1, 53), b"");
    nat.outbound(&mut p, 0);
    let mut q = udp((B, 40000), (R1, 53), b"");
    assert_translated(nat.outbound(&mut q, 0), &q);
    assert_eq!(src(&q).0, POOL1);
    assert_ne!(src(&q).1, 40000, "40000 is A's");
    assert!(src(&q).1 >= 1024);
    let mut w = udp((B, 123), (R1, 123), b"");
    assert_translated(nat.outbound(&mut w, 0), &w);
    assert!(src(&w).1 >= 1024, "well-known ports are not handed out");
    // Both inbound replies reach their own host.
    let mut r = udp((R1, 53), src(&q), b"");
    nat.inbound(&mut r, 0);
    assert_eq!(dst(&r), (B, 40000));
    let mut r = udp((R1, 53), (POOL1, 40000), b"");
    nat.inbound(&mut r, 0);
    assert_eq!(dst(&r), (A, 40000));
}

#[test]
fn endpoint_independent_mapping_for_two_destinations() {
    let mut nat = Nat::new(NatConfig {
        pool: vec![POOL1, POOL2],
        ..cfg()
    })
    .unwrap();
    // Take the preserved port on both pool addresses so the mapping is a
    // real allocation, not a coincidence of preservation.
    for h in [B, SRV] {
        let mut p = udp((h, 3333), (R2, 9), b"");
        nat.outbound(&mut p, 0);
    }
    let mut p1 = udp((A, 3333), (R1, 1000), b"");
    let mut p2 = udp((A, 3333), (R2, 2000), b"");
    let mut p3 = tcp((A, 3333), (R2, 2000), crate::wire::tcp::SYN);
    assert_translated(nat.outbound(&mut p1, 0), &p1);
    assert_translated(nat.outbound(&mut p2, 0), &p2);
    assert_translated(nat.outbound(&mut p3, 0), &p3);
    assert_eq!(
        src(&p1),
        src(&p2),
        "same outside endpoint for both destinations"
    );
    assert_eq!(nat.session_count(), 5);
    // TCP has its own port space: its mapping is separate but preserved.
    assert_eq!(src(&p3).1, 3333);
}

#[test]
fn pool_address_is_paired_with_the_inside_host() {
    let mut nat = Nat::new(NatConfig {
        pool: vec![POOL1, POOL2],
        ..cfg()
    })
    .unwrap();
    let mut seen = std::collections::HashMap::new();
    for h in 1..40u8 {
        let host = Ipv4Addr::new(10, 0, 1, h);
        for port in [2000u16, 3000, 4000] {
            let mut p = udp((host, port), (R1, 53), b"");
            nat.outbound(&mut p, 0);
            let out = src(&p).0;
            assert_eq!(
                *seen.entry(host).or_insert(out),
                out,
                "REQ-2: one outside address per host"
            );
        }
    }
    let used: std::collections::HashSet<_> = seen.values().collect();
    assert_eq!(used.len(), 2, "hosts spread over the pool");
}

#[test]
fn filtering_modes() {
    for filtering in [
        Filtering::EndpointIndependent,
        Filtering::AddressAndPortDependent,
    ] {
        let mut nat = Nat::new(NatConfig { filtering, ..cfg() }).unwrap();
        let mut p = udp((A, 40000), (R1, 53), b"");
        nat.outbound(&mut p, 0);
        let out = src(&p);
        // From the same remote endpoint: always allowed.
        let mut r = udp((R1, 53), out, b"");
        assert_translated(nat.inbound(&mut r, 0), &r);
        // Another remote address, and the same address from another port.
        for from in [(R2, 53), (R1, 54)] {
            let mut r = udp(from, out, b"");
            let v = nat.inbound(&mut r, 0);
            match filtering {
                Filtering::EndpointIndependent => {
                    assert_translated(v, &r);
                    assert_eq!(dst(&r), (A, 40000));
                }
                Filtering::AddressAndPortDependent => {
                    assert_eq!(v, Verdict::Drop(NatDrop::Filtered));
                }
            }
        }
        let c = nat.counters();
        match filtering {
            Filtering::EndpointIndependent => {
                assert_eq!((c.dropped_filtered, nat.session_count()), (0, 3))
            }
            Filtering::AddressAndPortDependent => {
                assert_eq!((c.dropped_filtered, nat.session_count()), (2, 1))
            }
        }
        // Nothing mapped at this port: no session either way.
        let mut r = udp((R1, 53), (POOL1, 40001), b"");
        assert_eq!(nat.inbound(&mut r, 0), Verdict::Drop(NatDrop::NoSession));
        assert_eq!(nat.counters().dropped_no_session, 1);
    }
}

#[test]
fn not_nat_traffic_passes_unchanged() {
    let mut nat = Nat::new(cfg()).unwrap();
    // Inbound to an address that is not ours; outbound from the pool address.
    let mut p = udp((R1, 53), (R2, 53), b"");
    let before = p.clone();
    assert_eq!(nat.inbound(&mut p, 0), Verdict::NotNat);
    let mut q = udp((POOL1, 179), (R1, 179), b"");
    assert_eq!(nat.outbound(&mut q, 0), Verdict::NotNat);
    assert_eq!(p, before);
    // Ping to the pool address is for the router.
    let mut e = echo(R1, POOL1, 8, 1, 1);
    assert_eq!(nat.inbound(&mut e, 0), Verdict::NotNat);
}

#[test]
fn unsupported_protocol_and_truncated_l4_are_dropped() {
    let mut nat = Nat::new(cfg()).unwrap();
    let mut g = raw(A, R1, 47, b"gre-payload");
    assert_eq!(nat.outbound(&mut g, 0), Verdict::Drop(NatDrop::Unsupported));
    let mut t = tcp((A, 1), (R1, 2), 0);
    // Claim a total length that cuts the TCP header short.
    t[2..4].copy_from_slice(&30u16.to_be_bytes());
    assert_eq!(nat.outbound(&mut t, 0), Verdict::Drop(NatDrop::Malformed));
    let mut ts = echo(A, R1, 13, 1, 1); // timestamp request
    assert_eq!(
        nat.outbound(&mut ts, 0),
        Verdict::Drop(NatDrop::Unsupported)
    );
    let c = nat.counters();
    assert_eq!(
        (
            c.dropped_unsupported,
            c.dropped_malformed,
            c.sessions_created
        ),
        (2, 1, 0)
    );
}

#[test]
fn pool_exhaustion_refuses_new_and_keeps_old() {
    // 256 workers: worker 0 owns 1024..1276, 252 ports per address.
    let (lo, hi) = port_range(256, 0);
    let n = (hi - lo) as u16;
    let mut nat = Nat::new(NatConfig {
        workers: 256,
        worker: 0,
        ..cfg()
    })
    .unwrap();
    let mut outs = Vec::new();
    for i in 0..n {
        let mut p = udp((A, 20000 + i), (R1, 53), b"");
        assert_translated(nat.outbound(&mut p, 0), &p);
        outs.push(src(&p));
    }
    let mut p = udp((B, 7), (R1, 53), b"");
    assert_eq!(
        nat.outbound(&mut p, 0),
        Verdict::Drop(NatDrop::PoolExhausted)
    );
    assert_eq!(nat.counters().refused_pool_exhausted, 1);
    // TCP has its own ports: not exhausted.
    let mut t = tcp((B, 7), (R1, 80), crate::wire::tcp::SYN);
    assert_translated(nat.outbound(&mut t, 0), &t);
    // Old sessions still translate both ways.
    for (i, out) in outs.iter().enumerate() {
        let mut p = udp((A, 20000 + i as u16), (R1, 53), b"");
        assert_translated(nat.outbound(&mut p, SEC), &p);
        assert_eq!(src(&p), *out);
        let mut r = udp((R1, 53), *out, b"");
        assert_translated(nat.inbound(&mut r, SEC), &r);
        assert_eq!(dst(&r), (A, 20000 + i as u16));
    }
    // Once the UDP sessions (and the SYN-only TCP one) expire, the port
    // space is free again.
    assert_eq!(nat.expire(SEC + 300 * SEC, usize::MAX), n as usize + 1);
    let mut p = udp((B, 7), (R1, 53), b"");
    assert_translated(nat.outbound(&mut p, 302 * SEC), &p);
}

#[test]
fn per_host_limit_and_table_full() {
    let mut nat = Nat::new(NatConfig {
        max_sessions_per_host: 3,
        max_sessions: 5,
        ..cfg()
    })
    .unwrap();
    for port in 0..3 {
        let mut p = udp((A, 2000 + port), (R1, 53), b"");
        assert_translated(nat.outbound(&mut p, 0), &p);
    }
    let mut p = udp((A, 2003), (R1, 53), b"");
    assert_eq!(nat.outbound(&mut p, 0), Verdict::Drop(NatDrop::HostLimit));
    // An existing session of the host still works.
    let mut p = udp((A, 2000), (R1, 53), b"");
    assert_translated(nat.outbound(&mut p, 0), &p);
    for port in 0..2 {
        let mut p = udp((B, 2000 + port), (R1, 53), b"");
        assert_translated(nat.outbound(&mut p, 0), &p);
    }
    let mut p = udp((SRV, 2000), (R1, 53), b"");
    assert_eq!(nat.outbound(&mut p, 0), Verdict::Drop(NatDrop::TableFull));
    let c = nat.counters();
    assert_eq!(
        (c.refused_host_limit, c.refused_table_full, c.refused()),
        (1, 1, 2)
    );
    assert_eq!(nat.host_sessions(A), 3);
}

#[test]
fn listing_filters_and_pages() {
    let mut nat = Nat::new(cfg()).unwrap();
    for port in 0..5 {
        let mut p = udp((A, 3000 + port), (R1, 53), b"");
        nat.outbound(&mut p, 10 * SEC);
    }
    let mut p = tcp((B, 4000), (R1, 80), crate::wire::tcp::SYN);
    nat.outbound(&mut p, 10 * SEC);
    let all: Vec<_> = nat.sessions(None, 0, 70 * SEC).collect();
    assert_eq!(all.len(), 6);
    let only_b: Vec<_> = nat.sessions(Some(B), 0, 70 * SEC).map(|(_, s)| s).collect();
    assert_eq!(only_b.len(), 1);
    let s = only_b[0];
    assert_eq!(s.proto, Proto::Tcp);
    assert_eq!(s.inside, "10.0.0.3:4000".parse().unwrap());
    assert_eq!(s.outside, "203.0.113.1:4000".parse().unwrap());
    assert_eq!(s.remote, "198.51.100.7:80".parse().unwrap());
    assert_eq!(s.state, "syn-sent");
    assert_eq!(s.age_nanos, 60 * SEC);
    assert_eq!(s.expires_in_nanos, 180 * SEC);
    let (page1, next) = nat.session_page(Some(A), 0, 3, 70 * SEC);
    assert_eq!(page1.len(), 3);
    let (page2, end) = nat.session_page(Some(A), next.unwrap(), 3, 70 * SEC);
    assert_eq!(page2.len(), 2);
    assert_eq!(end, None);
    assert!(page1
        .iter()
        .chain(&page2)
        .all(|s| s.state == "active" && s.expires_in_nanos == 240 * SEC));
}

#[test]
fn config_validation_names_the_problem() {
    use NatConfigError as E;
    let fwd = PortForward {
        proto: Proto::Tcp,
        outside_addr: POOL1,
        outside_port: 80,
        inside_addr: SRV,
        inside_port: 8080,
    };
    let cases: Vec<(NatConfig, E)> = vec![
        (
            NatConfig {
                pool: vec![],
                ..cfg()
            },
            E::EmptyPool,
        ),
        (
            NatConfig {
                pool: vec![POOL1, POOL1],
                ..cfg()
            },
            E::DuplicatePoolAddress(POOL1),
        ),
        (
            NatConfig {
                pool: vec![Ipv4Addr::UNSPECIFIED],
                ..cfg()
            },
            E::BadPoolAddress(Ipv4Addr::UNSPECIFIED),
        ),
        (
            NatConfig {
                workers: 0,
                ..cfg()
            },
            E::BadWorkerCount(0),
        ),
        (
            NatConfig {
                workers: 2,
                worker: 2,
                ..cfg()
            },
            E::BadWorkerIndex {
                worker: 2,
                workers: 2,
            },
        ),
        (
            NatConfig {
                max_sessions: 0,
                ..cfg()
            },
            E::BadMaxSessions(0),
        ),
        (
            NatConfig {
                max_sessions_per_host: 0,
                ..cfg()
            },
            E::ZeroHostLimit,
        ),
        (
            NatConfig {
                timeouts: Timeouts {
                    udp_secs: 0,
                    ..Timeouts::default()
                },
                ..cfg()
            },
            E::ZeroTimeout("udp_secs"),
        ),
        (
            NatConfig {
                forwards: vec![fwd, fwd],
                ..cfg()
            },
            E::OverlappingForward("203.0.113.1:80/tcp -> 10.0.0.10:8080".into()),
        ),
        (
            NatConfig {
                forwards: vec![
                    fwd,
                    PortForward {
                        outside_port: 81,
                        ..fwd
                    },
                ],
                ..cfg()
            },
            E::DuplicateForwardInside("203.0.113.1:81/tcp -> 10.0.0.10:8080".into()),
        ),
        (
            NatConfig {
                forwards: vec![PortForward {
                    proto: Proto::Icmp,
                    ..fwd
                }],
                ..cfg()
            },
            E::ForwardProto("203.0.113.1:80/icmp -> 10.0.0.10:8080".into()),
        ),
        (
            NatConfig {
                forwards: vec![PortForward {
                    outside_port: 0,
                    ..fwd
                }],
                ..cfg()
            },
            E::ForwardZeroPort("203.0.113.1:0/tcp -> 10.0.0.10:8080".into()),
        ),
        (
            NatConfig {
                one_to_one: vec![OneToOne {
                    outside: POOL1,
                    inside: A,
                }],
                ..cfg()
            },
            E::OneToOneInPool(POOL1),
        ),
        (
            NatConfig {
                one_to_one: vec![
                    OneToOne {
                        outside: POOL2,
                        inside: A,
                    },
                    OneToOne {
                        outside: R2,
                        inside: A,
                    },
                ],
                ..cfg()
            },
            E::DuplicateOneToOneInside(A),
        ),
        (
            NatConfig {
                one_to_one: vec![OneToOne {
                    outside: POOL2,
                    inside: A,
                }],
                forwards: vec![PortForward {
                    outside_addr: POOL2,
                    ..fwd
                }],
                ..cfg()
            },
            E::ForwardOnOneToOne("203.0.113.2:80/tcp -> 10.0.0.10:8080".into()),
        ),
    ];
    for (c, want) in cases {
        assert_eq!(c.validate(), Err(want.clone()));
        assert_eq!(Nat::new(c).err(), Some(want));
    }
    // The same forward on another port is fine; UDP and TCP share a port.
    let ok = NatConfig {
        forwards: vec![
            fwd,
            PortForward {
                proto: Proto::Udp,
                inside_port: 9,
                ..fwd
            },
        ],
        ..cfg()
    };
    assert_eq!(ok.validate(), Ok(()));
    assert!(E::ZeroTimeout("udp_secs")
        .to_string()
        .contains("nat.timeouts.udp_secs"));
}
