//! Per-packet lz4 block compression (lz4_flex): a packet is sent
//! compressed only when the compressed packet, header included, is
//! smaller than the plain one; otherwise it goes plain and is counted
//! skipped. Decompression writes into a caller buffer of bounded size, so
//! a forged length can neither allocate nor overrun.
//!
//! Allocation: lz4_flex's `compress_into` builds its hash table (8 KiB for packet-sized inputs) on
//! the heap for every call (its API takes no caller-owned table); the
//! output goes through a scratch buffer allocated once in
//! [`Compressor::new`]. Decompression allocates nothing.

use lz4_flex::block::{compress_into, decompress_into, get_maximum_output_size};

use super::wire::{
    write_compressed_header, write_plain_header, COMPRESSED_HEADER_LEN, PLAIN_HEADER_LEN,
};

/// Largest packet handled (the packet buffer's data room).
pub const MAX_PACKET_LEN: usize = 2048;

/// Compression counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompressCounters {
    /// Payload bytes offered to [`Compressor::compress`].
    pub bytes_in: u64,
    /// Bytes of what went out (compressed or plain, headers included).
    pub bytes_out: u64,
    /// Packets sent compressed.
    pub compressed: u64,
    /// Packets sent plain because they did not shrink.
    pub skipped: u64,
    /// Packets decompressed.
    pub decompressed: u64,
    /// Compressed packets refused as malformed.
    pub decompress_errors: u64,
}

/// Why a packet could not be (de)compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CompressError {
    #[error("packet larger than the compressor handles")]
    TooLong,
    #[error("output buffer too small")]
    NoRoom,
    /// The original length exceeds the caller's bound.
    #[error("decompressed length over the bound")]
    TooLarge,
    #[error("corrupt lz4 block")]
    Corrupt,
}

/// What [`Compressor::compress`] produced in `out`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compressed {
    /// A compressed WAN packet of this length.
    Compressed(usize),
    /// A plain WAN packet of this length (compression did not pay).
    Plain(usize),
}

impl Compressed {
    pub fn len(&self) -> usize {
        match *self {
            Compressed::Compressed(n) | Compressed::Plain(n) => n,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A per-worker compressor with its scratch buffer and counters.
#[derive(Debug)]
pub struct Compressor {
    scratch: Box<[u8]>,
    counters: CompressCounters,
}

impl Default for Compressor {
    fn default() -> Self {
        Self::new()
    }
}

impl Compressor {
    pub fn new() -> Self {
        Compressor {
            scratch: vec![0; get_maximum_output_size(MAX_PACKET_LEN)].into_boxed_slice(),
            counters: CompressCounters::default(),
        }
    }

    pub fn counters(&self) -> &CompressCounters {
        &self.counters
    }

    /// Writes `payload` to `out` as a compressed WAN packet if that is
    /// smaller than the plain WAN packet, else as a plain one. `out` needs
    /// `payload.len() + 2` bytes.
    pub fn compress(
        &mut self,
        payload: &[u8],
        out: &mut [u8],
    ) -> Result<Compressed, CompressError> {
        if payload.len() > MAX_PACKET_LEN || payload.is_empty() {
            return Err(CompressError::TooLong);
        }
        let plain_len = PLAIN_HEADER_LEN + payload.len();
        if out.len() < plain_len {
            return Err(CompressError::NoRoom);
        }
        self.counters.bytes_in += payload.len() as u64;
        let n = compress_into(payload, &mut self.scratch).map_err(|_| CompressError::NoRoom)?;
        if COMPRESSED_HEADER_LEN + n < plain_len {
            let h = write_compressed_header(payload.len() as u16, out)
                .map_err(|_| CompressError::NoRoom)?;
            out[h..h + n].copy_from_slice(&self.scratch[..n]);
            self.counters.compressed += 1;
            self.counters.bytes_out += (h + n) as u64;
            return Ok(Compressed::Compressed(h + n));
        }
        let h = write_plain_header(out).map_err(|_| CompressError::NoRoom)?;
        out[h..plain_len].copy_from_slice(payload);
        self.counters.skipped += 1;
        self.counters.bytes_out += plain_len as u64;
        Ok(Compressed::Plain(plain_len))
    }

    /// Decompresses `block` (of a compressed WAN packet whose header said
    /// `orig_len`) into `out`, refusing an `orig_len` above `max_len` or
    /// above `out`'s size; returns the length written.
    pub fn decompress(
        &mut self,
        orig_len: u16,
        block: &[u8],
        out: &mut [u8],
        max_len: usize,
    ) -> Result<usize, CompressError> {
        let r = decompress_bounded(orig_len, block, out, max_len);
        match r {
            Ok(_) => self.counters.decompressed += 1,
            Err(_) => self.counters.decompress_errors += 1,
        }
        r
    }
}

/// [`Compressor::decompress`] without counters.
pub fn decompress_bounded(
    orig_len: u16,
    block: &[u8],
    out: &mut [u8],
    max_len: usize,
) -> Result<usize, CompressError> {
    let want = usize::from(orig_len);
    if want > max_len || want > out.len() {
        return Err(CompressError::TooLarge);
    }
    match decompress_into(block, &mut out[..want]) {
        Ok(n) if n == want => Ok(n),
        _ => Err(CompressError::Corrupt),
    }
}
