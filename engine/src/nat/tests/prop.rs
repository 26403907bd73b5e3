//! Property tests: outbound translation then the reply's inbound
//! translation restore every address and port, byte for byte, with every
//! checksum valid on a full recompute; the same for ICMP errors.

use std::net::Ipv4Addr;

use proptest::prelude::*;

use super::pkt::*;
use crate::nat::*;

#[derive(Clone, Debug)]
enum Kind {
    Tcp(u8),
    Udp,
    UdpNoCsum,
    Echo,
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        any::<u8>().prop_map(|f| Kind::Tcp(f & !crate::wire::tcp::RST)),
        Just(Kind::Udp),
        Just(Kind::UdpNoCsum),
        Just(Kind::Echo),
    ]
}

fn build(
    k: &Kind,
    from: (Ipv4Addr, u16),
    to: (Ipv4Addr, u16),
    payload: &[u8],
    reply: bool,
) -> Vec<u8> {
    match k {
        Kind::Tcp(f) => tcp(from, to, *f),
        Kind::Udp => udp(from, to, payload),
        Kind::UdpNoCsum => udp_nocsum(from, to, payload),
        // The echo id travels in both directions; `from.1`/`to.1` carry it.
        Kind::Echo if reply => echo(from.0, to.0, 0, to.1, 1),
        Kind::Echo => echo(from.0, to.0, 8, from.1, 1),
    }
}

proptest! {
    #[test]
    fn outbound_then_reply_is_the_identity(
        flows in proptest::collection::vec(
            (kind(), 1u8..=254, any::<u16>(), 1u8..=254, any::<u16>(), proptest::collection::vec(any::<u8>(), 0..40)),
            1..24,
        ),
        workers in 1u16..=4,
        worker_seed in any::<u16>(),
        pool_len in 1usize..=3,
        filtering in prop_oneof![Just(Filtering::EndpointIndependent), Just(Filtering::AddressAndPortDependent)],
    ) {
        let worker = worker_seed % workers;
        let pool: Vec<Ipv4Addr> = (0..pool_len as u8).map(|i| Ipv4Addr::new(203, 0, 113, 1 + i)).collect();
        let c = NatConfig { pool: pool.clone(), workers, worker, filtering, ..cfg() };
        let mut nat = Nat::new(c.clone()).unwrap();
        for (k, host, hport, rhost, rport, payload) in flows {
            let inside = (Ipv4Addr::new(10, 0, 0, host), hport);
            let remote = (Ipv4Addr::new(198, 51, 100, rhost), if matches!(k, Kind::Echo) { 0 } else { rport });
            let original = build(&k, inside, remote, &payload, false);
            let mut p = original.clone();
            prop_assert_eq!(nat.outbound(&mut p, 0), Verdict::Translated);
            prop_assert!(checksums_ok(&p));
            let out = src(&p);
            prop_assert!(pool.contains(&out.0));
            prop_assert_eq!(addr(&p, 16), remote.0);
            prop_assert_eq!(owner_worker(&c, out.0, out.1, proto_of(&k)), usize::from(worker));
            // Only the source endpoint changed.
            let mut expect = build(&k, out, remote, &payload, false);
            if let Kind::UdpNoCsum = k {
                expect[26..28].copy_from_slice(&[0, 0]);
            }
            prop_assert_eq!(&p, &expect);
            // The reply comes back to exactly what the inside host expects.
            let mut r = build(&k, remote, out, &payload, true);
            prop_assert_eq!(nat.inbound(&mut r, 1), Verdict::Translated);
            prop_assert!(checksums_ok(&r));
            prop_assert_eq!(&r, &build(&k, remote, inside, &payload, true));
            // An ICMP error about the translated packet restores the original.
            let mut e = icmp_error(remote.0, out.0, 3, 3, &p);
            prop_assert_eq!(nat.inbound(&mut e, 1), Verdict::Translated);
            prop_assert!(checksums_ok(&e));
            prop_assert_eq!(&e, &icmp_error(remote.0, inside.0, 3, 3, &original));
        }
    }
}

fn proto_of(k: &Kind) -> Proto {
    match k {
        Kind::Tcp(_) => Proto::Tcp,
        Kind::Udp | Kind::UdpNoCsum => Proto::Udp,
        Kind::Echo => Proto::Icmp,
    }
}
