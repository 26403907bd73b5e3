//! Tests of `wan::wire`: golden bytes, round trips, malformed input.

use proptest::prelude::*;

use crate::wan::wire::*;

#[test]
fn probe_golden_bytes() {
    let p = Probe {
        path: 0x0102,
        seq: 0x0304_0506,
        tx_ns: 0x0708_090a_0b0c_0d0e,
    };
    let mut b = [0u8; 16];
    assert_eq!(write_probe(&p, &mut b), Ok(PROBE_LEN));
    assert_eq!(b, [0x11, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
    assert_eq!(WanPacket::parse(&b), Ok(WanPacket::Probe(p)));
}

#[test]
fn reflect_makes_reply_with_rtt_net_of_residence() {
    let p = Probe {
        path: 3,
        seq: 9,
        tx_ns: 1_000,
    };
    let mut b = [0u8; 16];
    write_probe(&p, &mut b).unwrap();
    let mut r = [0u8; 40];
    let n = reflect(&b, 50_000, 60_000, &mut r).unwrap();
    assert_eq!(n, PROBE_REPLY_LEN);
    let WanPacket::ProbeReply(rep) = WanPacket::parse(&r[..n]).unwrap() else {
        panic!("not a reply")
    };
    assert_eq!(rep.probe, p);
    assert_eq!((rep.reflector_rx_ns, rep.reflector_tx_ns), (50_000, 60_000));
    // 100 µs total, 10 µs at the reflector.
    assert_eq!(rep.rtt_ns(101_000), 90_000);
    assert_eq!(
        reflect(&r[..n], 0, 0, &mut [0u8; 40]),
        Err(WanWireError::BadKind)
    );
}

#[test]
fn raw_ip_is_plain_without_header() {
    let ip = [0x45u8, 0, 0, 20];
    assert_eq!(WanPacket::parse(&ip), Ok(WanPacket::Raw(&ip)));
    let ip6 = [0x60u8, 0];
    assert_eq!(WanPacket::parse(&ip6), Ok(WanPacket::Raw(&ip6)));
}

#[test]
fn malformed_inputs_are_errors() {
    assert_eq!(WanPacket::parse(&[]), Err(WanWireError::Truncated));
    assert_eq!(WanPacket::parse(&[0x11]), Err(WanWireError::Truncated));
    assert_eq!(WanPacket::parse(&[0x12, 0]), Err(WanWireError::BadVersion));
    assert_eq!(WanPacket::parse(&[0x11, 9]), Err(WanWireError::BadKind));
    assert_eq!(
        WanPacket::parse(&[0x11, 1, 0, 0]),
        Err(WanWireError::Truncated)
    );
    // FEC data with k = 0, index >= k, reserved set, empty payload.
    let fec =
        |kind: u8, idx: u8, k: u8, m: u8, rsv: u8| [0x11, kind, idx, k, m, rsv, 0, 0, 0, 1, 0xaa];
    assert_eq!(
        WanPacket::parse(&fec(3, 0, 0, 1, 0)),
        Err(WanWireError::BadFec)
    );
    assert_eq!(
        WanPacket::parse(&fec(3, 2, 2, 1, 0)),
        Err(WanWireError::BadFec)
    );
    assert_eq!(
        WanPacket::parse(&fec(3, 0, 2, 1, 1)),
        Err(WanWireError::BadFec)
    );
    assert_eq!(
        WanPacket::parse(&fec(3, 0, 2, 1, 0)[..10]),
        Err(WanWireError::Truncated)
    );
    assert_eq!(
        WanPacket::parse(&fec(4, 1, 1, 1, 0)),
        Err(WanWireError::BadFec)
    );
    // Parity: lengths cut, shard not the longest length, zero length.
    let mut par = vec![0x11, 4, 0, 2, 1, 0, 0, 0, 0, 1, 0, 3, 0, 2, 1, 2, 3];
    assert!(matches!(
        WanPacket::parse(&par),
        Ok(WanPacket::FecParity { .. })
    ));
    par.push(4);
    assert_eq!(WanPacket::parse(&par), Err(WanWireError::BadLength));
    assert_eq!(WanPacket::parse(&par[..12]), Err(WanWireError::Truncated));
    let zero = [0x11, 4, 0, 2, 1, 0, 0, 0, 0, 1, 0, 0, 0, 1, 7];
    assert_eq!(WanPacket::parse(&zero), Err(WanWireError::BadLength));
    assert_eq!(
        WanPacket::parse(&[0x11, 5, 0, 0, 1]),
        Err(WanWireError::BadLength)
    );
    assert_eq!(
        write_probe(&Probe::default(), &mut [0u8; 15]),
        Err(WanWireError::NoRoom)
    );
}

proptest! {
    #[test]
    fn parse_never_panics(b in proptest::collection::vec(any::<u8>(), 0..80)) {
        let _ = WanPacket::parse(&b);
    }

    #[test]
    fn reply_round_trip(path: u16, seq: u32, tx: u64, rx: u64, ttx: u64) {
        let r = ProbeReply { probe: Probe { path, seq, tx_ns: tx }, reflector_rx_ns: rx, reflector_tx_ns: ttx };
        let mut b = [0u8; 32];
        write_probe_reply(&r, &mut b).unwrap();
        prop_assert_eq!(WanPacket::parse(&b), Ok(WanPacket::ProbeReply(r)));
        for cut in 0..32 {
            prop_assert!(WanPacket::parse(&b[..cut]).is_err());
        }
    }

    #[test]
    fn fec_data_round_trip(group: u32, k in 1u8..=32, m in 1u8..=16, idx: u8,
                           inner in proptest::collection::vec(any::<u8>(), 1..40)) {
        let h = FecHeader { group, index: idx % k, k, m };
        let mut b = vec![0u8; FEC_HEADER_LEN + inner.len()];
        write_fec_header(Kind::FecData, &h, &mut b).unwrap();
        b[FEC_HEADER_LEN..].copy_from_slice(&inner);
        prop_assert_eq!(WanPacket::parse(&b), Ok(WanPacket::FecData { hdr: h, inner: &inner }));
    }

    #[test]
    fn compressed_header_round_trip(len in 1u16.., block in proptest::collection::vec(any::<u8>(), 0..20)) {
        let mut b = vec![0u8; COMPRESSED_HEADER_LEN + block.len()];
        write_compressed_header(len, &mut b).unwrap();
        b[COMPRESSED_HEADER_LEN..].copy_from_slice(&block);
        prop_assert_eq!(WanPacket::parse(&b), Ok(WanPacket::Compressed { orig_len: len, block: &block }));
    }
}
