//! `outbound_established` against `outbound`: two NATs fed the same
//! packets, one trying the short path first, end with the same bytes out,
//! the same verdicts, the same counters and the same sessions, and the short
//! path did take the packets of live sessions.

use std::net::Ipv4Addr;

use proptest::prelude::*;

use super::pkt::*;
use crate::nat::*;

proptest! {
    #[test]
    fn same_effects_as_outbound(
        pkts in proptest::collection::vec(
            (0u8..4, 1u8..=2, 0u16..2, 0u8..2, any::<u8>(), 0u64..100),
            1..80,
        ),
    ) {
        let c = NatConfig {
            pool: vec![Ipv4Addr::new(203, 0, 113, 1)],
            timeouts: Timeouts { udp_secs: 120, tcp_initial_secs: 60, ..Timeouts::default() },
            ..cfg()
        };
        let mut plain = Nat::new(c.clone()).unwrap();
        let mut short = Nat::new(c).unwrap();
        let mut now = 1u64;
        let mut took = 0;
        for (kind, host, port, dst, flags, step) in pkts {
            now += step * 1_000_000_000;
            let from = (Ipv4Addr::new(10, 0, 0, host), 40000 + port);
            let to = (Ipv4Addr::new(198, 51, 100, 1 + dst), 443);
            let mut p = match kind {
                0 => tcp(from, to, flags & !crate::wire::tcp::RST),
                1 => tcp(from, to, flags),
                2 => udp(from, to, b"data"),
                _ => udp_nocsum(from, to, b"data"),
            };
            let mut q = p.clone();
            let v1 = plain.outbound(&mut p, now);
            let v2 = if short.outbound_established(&mut q, None, now) {
                took += 1;
                Verdict::Translated
            } else {
                short.outbound(&mut q, now)
            };
            prop_assert_eq!(v1, v2);
            prop_assert_eq!(&p, &q);
            prop_assert_eq!(plain.counters(), short.counters());
            prop_assert_eq!(plain.session_count(), short.session_count());
        }
        let a: Vec<_> = plain.sessions(None, 0, now).map(|(_, s)| s).collect();
        let b: Vec<_> = short.sessions(None, 0, now).map(|(_, s)| s).collect();
        prop_assert_eq!(a, b);
        // Most runs send some packet twice within the timeouts: the short
        // path must have had its chance.
        prop_assume!(took > 0);
    }
}

#[test]
fn live_sessions_take_the_short_path() {
    let mut nat = Nat::new(NatConfig {
        pool: vec![Ipv4Addr::new(203, 0, 113, 1)],
        ..cfg()
    })
    .unwrap();
    let from = (Ipv4Addr::new(10, 0, 0, 2), 40000);
    let to = (Ipv4Addr::new(198, 51, 100, 1), 53);
    let mut first = udp(from, to, b"q");
    assert!(
        !nat.outbound_established(&mut first, None, 1),
        "no session yet"
    );
    assert_eq!(nat.outbound(&mut first, 1), Verdict::Translated);
    let mut again = udp(from, to, b"q");
    assert!(nat.outbound_established(&mut again, None, 2));
    assert_eq!(again, first, "translated like the first");
    // Past the UDP timeout it steps aside (outbound reaps and recreates).
    let mut late = udp(from, to, b"q");
    assert!(!nat.outbound_established(&mut late, None, 1 + 301_000_000_000));
}

proptest! {
    /// The inbound twin: replies (and strangers) to mapped ports, with and
    /// without inbound refresh, both filtering modes.
    #[test]
    fn inbound_same_effects_as_inbound(
        pkts in proptest::collection::vec(
            (any::<bool>(), 0u8..4, 1u8..=2, 0u16..2, 0u8..2, any::<u8>(), 0u64..100, any::<bool>()),
            1..80,
        ),
        refresh in any::<bool>(),
        eif in any::<bool>(),
    ) {
        let c = NatConfig {
            pool: vec![Ipv4Addr::new(203, 0, 113, 1)],
            timeouts: Timeouts { udp_secs: 120, tcp_initial_secs: 60, ..Timeouts::default() },
            inbound_refresh: refresh,
            filtering: if eif { Filtering::EndpointIndependent } else { Filtering::AddressAndPortDependent },
            ..cfg()
        };
        let mut plain = Nat::new(c.clone()).unwrap();
        let mut short = Nat::new(c).unwrap();
        let mut now = 1u64;
        let mut took = 0;
        for (out, kind, host, port, dst, flags, step, stranger) in pkts {
            now += step * 1_000_000_000;
            let inside = (Ipv4Addr::new(10, 0, 0, host), 40000 + port);
            let remote = (Ipv4Addr::new(198, 51, 100, 1 + dst), 443 + u16::from(stranger));
            let tcp_kind = kind < 2;
            if out {
                let mut p = if tcp_kind { tcp(inside, remote, flags) } else { udp(inside, remote, b"o") };
                let mut q = p.clone();
                prop_assert_eq!(plain.outbound(&mut p, now), short.outbound(&mut q, now));
                prop_assert_eq!(&p, &q);
                continue;
            }
            // Inbound to the port the mapping got (port preserved here).
            let outside = (Ipv4Addr::new(203, 0, 113, 1), 40000 + port);
            let mut p = match kind {
                0 | 1 => tcp(remote, outside, flags),
                2 => udp(remote, outside, b"i"),
                _ => udp_nocsum(remote, outside, b"i"),
            };
            let mut q = p.clone();
            let v1 = plain.inbound(&mut p, now);
            let v2 = if short.inbound_established(&mut q, None, now) {
                took += 1;
                Verdict::Translated
            } else {
                short.inbound(&mut q, now)
            };
            prop_assert_eq!(v1, v2);
            prop_assert_eq!(&p, &q);
            prop_assert_eq!(plain.counters(), short.counters());
        }
        let a: Vec<_> = plain.sessions(None, 0, now).map(|(_, s)| s).collect();
        let b: Vec<_> = short.sessions(None, 0, now).map(|(_, s)| s).collect();
        prop_assert_eq!(a, b);
        prop_assume!(took > 0);
    }
}
