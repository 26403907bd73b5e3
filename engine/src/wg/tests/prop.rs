//! Hostile input never panics: random bytes as outer packets, and random
//! WireGuard messages of every type behind valid outer headers, given to
//! a tunnel with a live session. Each is dropped or consumed, and every
//! drop is counted.

use proptest::prelude::*;

use super::*;
use crate::wg::outer::{self, OUTER_HEADER_LEN};

/// A valid outer IPv4/UDP packet to B around `msg`.
fn wrap(msg: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; OUTER_HEADER_LEN + msg.len()];
    b[OUTER_HEADER_LEN..].copy_from_slice(msg);
    outer::emit(&mut b, A_ADDR, B_ADDR, msg.len(), 1);
    b
}

fn total_drops(t: &Tunnel) -> u64 {
    t.counters().drops.iter().sum::<u64>() + t.peer_counters(PEER).unwrap().drops_total()
}

/// Checks one input: no panic, and the outcome is accounted for.
fn feed(p: &mut Pair, bytes: &[u8]) -> Result<(), TestCaseError> {
    let Some(mut pkt) = p.pool.alloc_from(bytes) else {
        return Ok(()); // longer than a buffer: not a packet
    };
    let before = total_drops(&p.b);
    let now = p.now;
    let r = p.b.decapsulate(&mut pkt, now);
    let after = total_drops(&p.b);
    match r {
        Decap::Drop(_) => prop_assert_eq!(after, before + 1),
        _ => prop_assert_eq!(after, before),
    }
    Ok(())
}

fn message() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        // Right type and length, random content.
        (1u8..=4, proptest::collection::vec(any::<u8>(), 200)).prop_map(|(t, mut v)| {
            let len = match t {
                1 => 148,
                2 => 92,
                3 => 64,
                _ => 32 + (v[5] as usize % 100),
            };
            v.truncate(len);
            v[0] = t;
            v[1..4].fill(0);
            v
        }),
        // Data naming the live session's receiver index, with garbage.
        (
            any::<u64>(),
            proptest::collection::vec(any::<u8>(), 16..120)
        )
            .prop_map(|(ctr, body)| {
                let mut v = vec![4, 0, 0, 0, 0, 0, 0, 0];
                v.extend_from_slice(&ctr.to_le_bytes());
                v.extend_from_slice(&body);
                v
            }),
    ]
}

fn live_pair() -> (Pair, [u8; 4]) {
    let mut p = Pair::new(0, 0);
    p.handshake();
    // The receiver index B gave its session, as A writes it on data.
    let pkt = p.send(Side::A, 1);
    let idx: [u8; 4] = pkt.data()[28 + 4..28 + 8].try_into().unwrap();
    (p, idx)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_outer_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let (mut p, _) = live_pair();
        feed(&mut p, &bytes)?;
    }

    #[test]
    fn random_messages_never_panic(mut msgs in proptest::collection::vec(message(), 1..6)) {
        let (mut p, idx) = live_pair();
        for m in &mut msgs {
            if m.len() >= 8 && m[0] == 4 && m[5] % 2 == 0 {
                m[4..8].copy_from_slice(&idx);
            }
            feed(&mut p, &wrap(m))?;
        }
        // The session still works afterwards.
        let pkt = p.send(Side::A, 20);
        prop_assert!(matches!(p.deliver(Side::B, pkt), Decap::Inner(PEER)));
    }
}
