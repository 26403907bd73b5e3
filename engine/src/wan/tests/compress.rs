//! Tests of `wan::compress`: skip when not smaller, round trip, bounds.

use proptest::prelude::*;

use crate::wan::compress::*;
use crate::wan::wire::WanPacket;

#[test]
fn compressible_packet_shrinks_and_round_trips() {
    let payload: Vec<u8> = b"GET /index.html HTTP/1.1\r\nHost: a\r\n".repeat(20);
    let mut c = Compressor::new();
    let mut out = vec![0u8; payload.len() + 2];
    let r = c.compress(&payload, &mut out).unwrap();
    let Compressed::Compressed(n) = r else {
        panic!("not compressed: {r:?}")
    };
    assert!(n < payload.len());
    let WanPacket::Compressed { orig_len, block } = WanPacket::parse(&out[..n]).unwrap() else {
        panic!()
    };
    let mut back = vec![0u8; 2048];
    let m = c.decompress(orig_len, block, &mut back, 2048).unwrap();
    assert_eq!(&back[..m], &payload[..]);
    let k = c.counters();
    assert_eq!((k.compressed, k.skipped, k.decompressed), (1, 0, 1));
    assert_eq!((k.bytes_in, k.bytes_out), (payload.len() as u64, n as u64));
}

#[test]
fn incompressible_packet_goes_plain_and_is_counted_skipped() {
    // A de Bruijn-like byte sequence with no repeats of 4-byte strings.
    let payload: Vec<u8> = (0u32..200)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let mut c = Compressor::new();
    let mut out = vec![0u8; payload.len() + 2];
    assert_eq!(
        c.compress(&payload, &mut out),
        Ok(Compressed::Plain(payload.len() + 2))
    );
    assert_eq!(WanPacket::parse(&out), Ok(WanPacket::Plain(&payload)));
    assert_eq!(c.counters().skipped, 1);
}

#[test]
fn decompression_is_bounded() {
    let mut out = [0u8; 64];
    // A forged original length above the bound: refused before decoding.
    assert_eq!(
        decompress_bounded(60_000, &[0x10, 1], &mut out, 64),
        Err(CompressError::TooLarge)
    );
    assert_eq!(
        decompress_bounded(65, &[0x10, 1], &mut out, 2048),
        Err(CompressError::TooLarge)
    );
    // A block that decodes to fewer bytes than claimed, and garbage.
    assert_eq!(
        decompress_bounded(10, &[0x10, 1], &mut out, 64),
        Err(CompressError::Corrupt)
    );
    assert_eq!(
        decompress_bounded(10, &[0xff, 0xff, 0xff], &mut out, 64),
        Err(CompressError::Corrupt)
    );
}

proptest! {
    #[test]
    fn any_payload_round_trips(payload in proptest::collection::vec(0u8..4, 1..1500)) {
        let mut c = Compressor::new();
        let mut out = vec![0u8; payload.len() + 2];
        let r = c.compress(&payload, &mut out).unwrap();
        prop_assert!(r.len() <= payload.len() + 2);
        let back = match WanPacket::parse(&out[..r.len()]).unwrap() {
            WanPacket::Plain(p) => p.to_vec(),
            WanPacket::Compressed { orig_len, block } => {
                let mut b = vec![0u8; 2048];
                let n = c.decompress(orig_len, block, &mut b, 2048).unwrap();
                b.truncate(n);
                b
            }
            other => panic!("{other:?}"),
        };
        prop_assert_eq!(back, payload);
    }

    #[test]
    fn garbage_blocks_never_panic(len in 1u16..3000, block in proptest::collection::vec(any::<u8>(), 0..64)) {
        let mut out = [0u8; 2048];
        let _ = decompress_bounded(len, &block, &mut out, 2048);
    }
}
