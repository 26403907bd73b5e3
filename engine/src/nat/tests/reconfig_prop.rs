//! Property test of live reconfiguration: random session churn (flows out,
//! inbound to forwards, time passing, expiry) interleaved with random
//! reconfigures of pool, forwards, 1:1 mappings, filtering, timeouts and
//! sizes. After every step the full invariant check holds; a reconfigure
//! keeps exactly the sessions the new config allows, with the same outside
//! endpoint, flushes exactly the others (as reported), changes nothing when
//! refused, and every live session still translates out and back.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};

use proptest::prelude::*;

use super::pkt::*;
use crate::nat::*;
use crate::wire::tcp::{ACK, SYN};

const POOLS: [Ipv4Addr; 4] = [
    Ipv4Addr::new(203, 0, 113, 1),
    Ipv4Addr::new(203, 0, 113, 2),
    Ipv4Addr::new(203, 0, 113, 3),
    Ipv4Addr::new(203, 0, 113, 4),
];
/// Inside ports the flows use; the forwards below claim some of them.
const PORTS: [u16; 3] = [40001, 40002, 5000];

fn host(h: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, h)
}

fn remote(r: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 51, 100, 1 + r)
}

/// Candidate forwards: distinct outside and inside keys, some on ports
/// dynamic mappings are likely to hold, some on flows' inside endpoints.
fn candidate_forwards() -> [PortForward; 5] {
    let f = |proto, oa: usize, op, ia: u8, ip| PortForward {
        proto,
        outside_addr: POOLS[oa],
        outside_port: op,
        inside_addr: host(ia),
        inside_port: ip,
    };
    [
        f(Proto::Udp, 0, 40001, 10, 53),
        f(Proto::Tcp, 1, 8080, 10, 80),
        f(Proto::Tcp, 0, 2222, 4, 22),
        f(Proto::Udp, 2, 6000, 1, 40002),
        f(Proto::Tcp, 0, 40002, 10, 81),
    ]
}

fn candidate_one_to_one() -> [OneToOne; 2] {
    [
        OneToOne {
            outside: Ipv4Addr::new(192, 0, 2, 9),
            inside: host(9),
        },
        // In the pool when POOLS[3] is chosen: a refused config.
        OneToOne {
            outside: POOLS[3],
            inside: host(8),
        },
    ]
}

#[derive(Clone, Debug)]
enum Op {
    Out { h: u8, port: usize, r: u8, kind: u8 },
    In { fwd: usize, r: u8 },
    Advance { secs: u64, budget: usize },
    Reconf(Box<NatConfig>),
}

fn config(workers: u16, worker: u16) -> impl Strategy<Value = NatConfig> {
    (
        1u8..16,
        0u8..32,
        0u8..4,
        any::<bool>(),
        (1u32..600, 1u32..600, 1u32..120),
        prop_oneof![Just(6u32), Just(64), Just(1024)],
        prop_oneof![Just(3u32), Just(512)],
    )
        .prop_map(
            move |(pool_mask, fwd_mask, o2o_mask, apdf, (udp, tcp, icmp), max, per_host)| {
                let mut pool: Vec<Ipv4Addr> = (0..4)
                    .filter(|i| pool_mask & (1 << i) != 0)
                    .map(|i| POOLS[i])
                    .collect();
                // Orders vary too.
                if pool_mask & 1 != 0 {
                    pool.reverse();
                }
                NatConfig {
                    pool,
                    forwards: (0..5)
                        .filter(|i| fwd_mask & (1 << i) != 0)
                        .map(|i| candidate_forwards()[i])
                        .collect(),
                    one_to_one: (0..2)
                        .filter(|i| o2o_mask & (1 << i) != 0)
                        .map(|i| candidate_one_to_one()[i])
                        .collect(),
                    filtering: if apdf {
                        Filtering::AddressAndPortDependent
                    } else {
                        Filtering::EndpointIndependent
                    },
                    timeouts: Timeouts {
                        udp_secs: udp,
                        tcp_established_secs: tcp,
                        tcp_initial_secs: tcp,
                        icmp_query_secs: icmp,
                        ..Timeouts::default()
                    },
                    max_sessions: max,
                    max_sessions_per_host: per_host,
                    workers,
                    worker,
                    ..NatConfig::default()
                }
            },
        )
}

fn op(workers: u16, worker: u16) -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1u8..=6, 0usize..3, 0u8..3, 0u8..3).prop_map(|(h, port, r, kind)| Op::Out { h, port, r, kind }),
        2 => (0usize..5, 0u8..3).prop_map(|(fwd, r)| Op::In { fwd, r }),
        2 => (0u64..200, prop_oneof![Just(2usize), Just(usize::MAX)]).prop_map(|(secs, budget)| Op::Advance { secs, budget }),
        2 => config(workers, worker).prop_map(|c| Op::Reconf(Box::new(c))),
    ]
}

type Key = (Proto, SocketAddrV4, SocketAddrV4);

/// Live sessions by (proto, inside, remote) -> (outside, is_static).
fn snapshot(nat: &Nat) -> HashMap<Key, (SocketAddrV4, bool)> {
    nat.sessions(None, 0, 0)
        .map(|(_, s)| ((s.proto, s.inside, s.remote), (s.outside, s.is_static)))
        .collect()
}

/// Every live session translates out to its outside endpoint and the
/// reply back to its inside endpoint.
fn round_trips(nat: &mut Nat, now: u64) -> Result<(), TestCaseError> {
    let live: Vec<SessionInfo> = nat.sessions(None, 0, now).map(|(_, s)| s).collect();
    for s in live {
        let (i, o, r) = (
            (*s.inside.ip(), s.inside.port()),
            (*s.outside.ip(), s.outside.port()),
            (*s.remote.ip(), s.remote.port()),
        );
        let (mut p, mut q) = match s.proto {
            Proto::Tcp => (tcp(i, r, ACK), tcp(r, o, ACK)),
            Proto::Udp => (udp(i, r, b"x"), udp(r, o, b"y")),
            Proto::Icmp => (echo(i.0, r.0, 8, i.1, 1), echo(r.0, o.0, 0, o.1, 1)),
        };
        prop_assert_eq!(nat.outbound(&mut p, now), Verdict::Translated);
        prop_assert!(checksums_ok(&p));
        prop_assert_eq!(src(&p), o, "{:?}", s);
        prop_assert_eq!(nat.inbound(&mut q, now), Verdict::Translated);
        prop_assert!(checksums_ok(&q));
        prop_assert_eq!(dst(&q), i, "{:?}", s);
    }
    Ok(())
}

fn check_reconfigure(nat: &mut Nat, new: NatConfig, now: u64) -> Result<(), TestCaseError> {
    let before = snapshot(nat);
    let old_cfg = nat.config().clone();
    let flushed_before = nat.counters().sessions_flushed;
    match nat.reconfigure(new.clone()) {
        Err(_) => {
            prop_assert_eq!(nat.config(), &old_cfg);
            prop_assert_eq!(snapshot(nat), before);
            return Ok(());
        }
        Ok(r) => {
            prop_assert_eq!(nat.config(), &new);
            let after = snapshot(nat);
            prop_assert_eq!(after.len(), r.sessions_kept);
            prop_assert_eq!(before.len() - after.len(), r.sessions_flushed());
            prop_assert_eq!(
                nat.counters().sessions_flushed - flushed_before,
                r.sessions_flushed() as u64
            );
            for (k, &(outside, is_static)) in &before {
                let (proto, inside, _) = *k;
                let allowed = if is_static {
                    new.forwards.iter().any(|f| {
                        f.proto == proto
                            && SocketAddrV4::new(f.outside_addr, f.outside_port) == outside
                            && SocketAddrV4::new(f.inside_addr, f.inside_port) == inside
                    })
                } else {
                    new.pool.contains(outside.ip())
                        && !new.forwards.iter().any(|f| {
                            f.proto == proto
                                && (SocketAddrV4::new(f.outside_addr, f.outside_port) == outside
                                    || SocketAddrV4::new(f.inside_addr, f.inside_port) == inside)
                        })
                };
                match after.get(k) {
                    Some(&(o, st)) => {
                        prop_assert!(allowed, "kept {:?} against the new config", k);
                        prop_assert_eq!((o, st), (outside, is_static));
                    }
                    None => prop_assert!(!allowed, "flushed {:?} the new config allows", k),
                }
            }
        }
    }
    nat.check_invariants().map_err(TestCaseError::fail)?;
    // New timeouts may make some kept sessions due: expire them before
    // expecting every live one to translate.
    nat.expire(now, usize::MAX);
    round_trips(nat, now)
}

fn strategy() -> impl Strategy<Value = (NatConfig, Vec<Op>)> {
    (1u16..=2, any::<bool>()).prop_flat_map(|(workers, second)| {
        let worker = u16::from(second) % workers;
        (
            config(workers, worker),
            proptest::collection::vec(op(workers, worker), 1..60),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn random_churn_and_reconfigures_keep_every_invariant((start, ops) in strategy()) {
        let (workers, worker) = (start.workers, usize::from(start.worker));
        let Ok(mut nat) = Nat::new(start) else {
            return Ok(());
        };
        let mut now = SEC;
        let mut seq = 0u16;
        for op in ops {
            match op {
                // The pipeline steers a host's packets to its worker, and a
                // forward's inbound ones to the forward's owner.
                Op::Out { h, .. } if inside_worker(workers, host(h)) != worker => {}
                Op::In { fwd, .. }
                    if inside_worker(workers, candidate_forwards()[fwd].inside_addr) != worker => {}
                Op::Out { h, port, r, kind } => {
                    seq = seq.wrapping_add(1);
                    let from = (host(h), PORTS[port]);
                    let mut p = match kind {
                        0 => tcp(from, (remote(r), 443), if seq.is_multiple_of(3) { SYN } else { ACK }),
                        1 => udp(from, (remote(r), 53), b"q"),
                        _ => echo(host(h), remote(r), 8, PORTS[port], seq),
                    };
                    let v = nat.outbound(&mut p, now);
                    prop_assert!(
                        matches!(v, Verdict::Translated | Verdict::Drop(NatDrop::TableFull | NatDrop::HostLimit | NatDrop::PoolExhausted)),
                        "{:?}", v
                    );
                }
                Op::In { fwd, r } => {
                    let f = candidate_forwards()[fwd];
                    let to = (f.outside_addr, f.outside_port);
                    let from = (remote(r), 1000 + u16::from(r));
                    let mut p = match f.proto {
                        Proto::Tcp => tcp(from, to, SYN),
                        _ => udp(from, to, b"in"),
                    };
                    let v = nat.inbound(&mut p, now);
                    if v == Verdict::Translated && nat.config().forwards.contains(&f) {
                        prop_assert_eq!(dst(&p), (f.inside_addr, f.inside_port));
                    }
                }
                Op::Advance { secs, budget } => {
                    now += secs * SEC;
                    nat.expire(now, budget);
                }
                Op::Reconf(c) => check_reconfigure(&mut nat, *c, now)?,
            }
            nat.check_invariants().map_err(TestCaseError::fail)?;
        }
    }
}
