//! Tests of `wan::fec`: any <= m losses recovered exactly once, partial
//! groups, bounded reassembly, toggle hysteresis.

use proptest::prelude::*;

use crate::wan::fec::*;

const MS: u64 = 1_000_000;

fn cfg(k: u8, m: u8) -> FecConfig {
    FecConfig {
        k,
        m,
        ..FecConfig::default()
    }
}

/// Encodes `payloads` (one group unless the delay closes it early);
/// returns the wire packets in send order.
fn encode_all(enc: &mut FecEncoder, payloads: &[Vec<u8>], now: u64) -> Vec<Vec<u8>> {
    let mut wires = Vec::new();
    for p in payloads {
        let mut out = vec![0u8; p.len() + 16];
        let mut parity = Vec::new();
        let n = enc
            .encode(p, now, &mut out, |w| parity.push(w.to_vec()))
            .unwrap();
        wires.push(out[..n].to_vec());
        wires.extend(parity);
    }
    wires
}

fn decode(dec: &mut FecDecoder, wires: &[Vec<u8>], now: u64) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    for w in wires {
        dec.push(w, now, |p| got.push(p.to_vec())).unwrap();
    }
    got
}

proptest! {
    #[test]
    fn any_m_losses_are_recovered_exactly_once(
        k in 1u8..=12, m in 1u8..=4,
        lens in proptest::collection::vec(1usize..300, 12),
        seed: u64,
        lose in proptest::collection::vec(any::<prop::sample::Index>(), 0..4),
    ) {
        let payloads: Vec<Vec<u8>> = (0..usize::from(k))
            .map(|i| (0..lens[i]).map(|j| (seed as usize ^ (i * 31 + j * 7)) as u8).collect())
            .collect();
        let mut enc = FecEncoder::new(cfg(k, m)).unwrap();
        let wires = encode_all(&mut enc, &payloads, 0);
        prop_assert_eq!(wires.len(), usize::from(k + m));
        let mut lost: Vec<usize> = lose.iter().take(usize::from(m)).map(|ix| ix.index(wires.len())).collect();
        lost.sort_unstable();
        lost.dedup();
        let kept: Vec<Vec<u8>> = wires.iter().enumerate().filter(|(i, _)| !lost.contains(i)).map(|(_, w)| w.clone()).collect();
        let mut dec = FecDecoder::new(cfg(k, m)).unwrap();
        let mut got = decode(&mut dec, &kept, MS);
        // Every data packet exactly once, with the right bytes.
        got.sort();
        let mut want = payloads.clone();
        want.sort();
        prop_assert_eq!(got, want);
        // Parity follows the last data packet in `wires`.
        let data_lost = lost.iter().filter(|&&i| i < usize::from(k)).count();
        prop_assert_eq!(dec.counters().recovered as usize, data_lost);
        prop_assert_eq!(dec.counters().unrecoverable, 0);
        // Replaying everything delivers nothing more.
        let again = decode(&mut dec, &wires, 2 * MS);
        prop_assert!(again.is_empty());
    }

    #[test]
    fn garbage_never_panics(b in proptest::collection::vec(any::<u8>(), 0..64)) {
        let mut dec = FecDecoder::new(cfg(4, 2)).unwrap();
        let _ = dec.push(&b, 0, |_| {});
    }
}

#[test]
fn partial_group_closes_on_delay_and_recovers() {
    let c = FecConfig {
        max_delay_ns: 20 * MS,
        ..cfg(8, 2)
    };
    let mut enc = FecEncoder::new(c).unwrap();
    let payloads: Vec<Vec<u8>> = vec![vec![1; 10], vec![2; 50], vec![3; 3]];
    let mut wires = encode_all(&mut enc, &payloads, 0);
    assert_eq!(
        wires.len(),
        3,
        "no parity before the group fills or times out"
    );
    assert_eq!(enc.deadline(), Some(20 * MS));
    assert_eq!(enc.poll(20 * MS - 1, |_| panic!("too early")).unwrap(), 0);
    assert_eq!(enc.poll(20 * MS, |w| wires.push(w.to_vec())).unwrap(), 2);
    assert_eq!(enc.counters().parity_sent, 2);
    assert_eq!(enc.counters().partial_groups, 1);
    assert_eq!(enc.deadline(), None);
    // Lose two of the three data packets; parity (k = 3) rebuilds them.
    let mut dec = FecDecoder::new(c).unwrap();
    let got = decode(
        &mut dec,
        &[wires[1].clone(), wires[3].clone(), wires[4].clone()],
        21 * MS,
    );
    assert_eq!(got, vec![vec![2; 50], vec![1; 10], vec![3; 3]]);
    assert_eq!(dec.counters().recovered, 2);
}

#[test]
fn too_many_losses_are_counted_unrecoverable_after_the_window() {
    let c = FecConfig {
        reassembly_ns: 50 * MS,
        ..cfg(4, 1)
    };
    let mut enc = FecEncoder::new(c).unwrap();
    let wires = encode_all(
        &mut enc,
        &[vec![1; 5], vec![2; 5], vec![3; 5], vec![4; 5]],
        0,
    );
    let mut dec = FecDecoder::new(c).unwrap();
    // Two data lost, one parity: not enough.
    let got = decode(
        &mut dec,
        &[wires[0].clone(), wires[2].clone(), wires[4].clone()],
        0,
    );
    assert_eq!(got.len(), 2);
    dec.expire(50 * MS - 1);
    assert_eq!(dec.counters().unrecoverable, 0);
    dec.expire(50 * MS);
    assert_eq!(dec.counters().unrecoverable, 2);
    // A straggler of the given-up group is still delivered once.
    let got = decode(&mut dec, &[wires[1].clone(), wires[1].clone()], 60 * MS);
    assert_eq!(got, vec![vec![2; 5]]);
    assert_eq!(dec.counters().duplicates, 1);
}

#[test]
fn packets_of_a_group_pushed_out_of_the_window_are_late() {
    let c = FecConfig {
        window_groups: 2,
        ..cfg(1, 1)
    };
    let mut enc = FecEncoder::new(c).unwrap();
    let g: Vec<Vec<Vec<u8>>> = (0..3u8)
        .map(|i| encode_all(&mut enc, &[vec![i; 4]], 0))
        .collect();
    let mut dec = FecDecoder::new(c).unwrap();
    decode(&mut dec, &g[0][..1], 0);
    decode(&mut dec, &g[2][..1], 0); // takes group 0's slot
    let got = decode(&mut dec, &g[0][1..], 0);
    assert!(got.is_empty());
    assert_eq!(dec.counters().late, 1);
}

#[test]
fn inconsistent_and_oversized_packets_are_refused() {
    let mut enc = FecEncoder::new(cfg(2, 1)).unwrap();
    let w = encode_all(&mut enc, &[vec![1; 5], vec![2; 6]], 0);
    // The decoder accepts k <= 1 only.
    let mut small = FecDecoder::new(cfg(1, 1)).unwrap();
    assert_eq!(small.push(&w[0], 0, |_| {}), Err(FecError::Malformed));
    let mut dec = FecDecoder::new(cfg(2, 1)).unwrap();
    let mut bad = w[0].clone();
    bad.push(9); // data 0 now 16 bytes long, parity says 15
    dec.push(&bad, 0, |_| {}).unwrap();
    assert_eq!(dec.push(&w[2], 0, |_| {}), Err(FecError::Inconsistent));
    assert_eq!(dec.push(&[0x45, 0, 0], 0, |_| {}), Err(FecError::NotFec));
    assert_eq!(FecEncoder::new(cfg(33, 1)).err(), Some(FecError::BadShape));
    let mut enc = FecEncoder::new(FecConfig {
        max_shard: 8,
        ..cfg(2, 1)
    })
    .unwrap();
    assert_eq!(
        enc.encode(&[0; 9], 0, &mut [0; 32], |_| {}),
        Err(FecError::TooLong)
    );
}

#[test]
fn toggle_has_hysteresis() {
    let mut t = FecToggle::new(20_000, 5_000);
    assert!(!t.update(19_999));
    assert!(t.update(20_000));
    assert!(t.update(10_000), "stays on between the thresholds");
    assert!(t.update(5_000));
    assert!(!t.update(4_999));
    assert!(!t.update(10_000), "stays off between the thresholds");
}

#[test]
fn bench_workload_delivers_everything_when_only_parity_is_lost() {
    // k = 4, m = 1: every 5th wire packet is a parity packet.
    let (delivered, bytes) = crate::wan::bench::fec_roundtrip(cfg(4, 1), 400, 100, 5).unwrap();
    assert_eq!(delivered, 400);
    assert_eq!(bytes, 400 * 110 + 100 * (10 + 8 + 100));
    // Every 4th: one data packet per group lost, each rebuilt.
    let (delivered, _) = crate::wan::bench::fec_roundtrip(cfg(3, 1), 300, 100, 4).unwrap();
    assert_eq!(delivered, 300);
}
