//! Workloads for the perf harness (timed there, never in tests): FEC
//! encode + decode and compression over synthetic packets.

use super::compress::Compressor;
use super::fec::{FecConfig, FecDecoder, FecEncoder, FecError};

/// Encodes `packets` packets of `len` bytes through a FEC encoder with
/// `cfg`, drops every `drop_every`th wire packet (0 = none) and decodes
/// the rest; returns (data packets delivered, wire bytes sent).
pub fn fec_roundtrip(
    cfg: FecConfig,
    packets: u32,
    len: usize,
    drop_every: u32,
) -> Result<(u64, u64), FecError> {
    let mut enc = FecEncoder::new(cfg)?;
    let mut dec = FecDecoder::new(cfg)?;
    let payload: Vec<u8> = (0..len).map(|i| (i * 7 + 1) as u8).collect();
    let mut out = vec![0u8; len + 64];
    let mut parity: Vec<Vec<u8>> = Vec::new();
    let (mut delivered, mut bytes, mut n) = (0u64, 0u64, 0u32);
    for i in 0..packets {
        let now = u64::from(i) * 1_000;
        parity.clear();
        let w = enc.encode(&payload, now, &mut out, |p| parity.push(p.to_vec()))?;
        let mut wires: Vec<&[u8]> = vec![&out[..w]];
        wires.extend(parity.iter().map(|p| p.as_slice()));
        for wire in wires {
            n += 1;
            bytes += wire.len() as u64;
            if drop_every != 0 && n % drop_every == 0 {
                continue;
            }
            dec.push(wire, now, |_| delivered += 1)?;
        }
    }
    Ok((delivered, bytes))
}

/// Compresses `packets` copies of `payload`; returns the bytes out.
pub fn compress_packets(payload: &[u8], packets: u32) -> u64 {
    let mut c = Compressor::new();
    let mut out = vec![0u8; payload.len() + 8];
    for _ in 0..packets {
        let _ = c.compress(payload, &mut out);
    }
    c.counters().bytes_out
}
