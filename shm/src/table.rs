//! Typed, validated views over tables (`TableView`) and the builder that
//! writes them (`TableBuilder`), plus the table checksum.

use std::marker::PhantomData;

use crate::error::ShmError;
use crate::layout::{TableEntry, TableHeader, TableKind, ABI_VERSION, TABLE_MAGIC};
use crate::pod::{bytes_of, bytes_of_slice, cast_slice, check_align, read_prefix};

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a over 64-bit words (8-byte chunks in native order, then any tail
/// bytes one by one): of the header with its `checksum` field zero, then of
/// the payload. Detects torn or corrupted files; not a MAC.
pub fn checksum(header: &TableHeader, payload: &[u8]) -> u64 {
    let mut h = FNV_OFFSET;
    let mut zeroed = *header;
    zeroed.checksum = 0;
    for bytes in [bytes_of(&zeroed), payload] {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let mut word = [0u8; 8];
            word.copy_from_slice(w);
            h = (h ^ u64::from_ne_bytes(word)).wrapping_mul(FNV_PRIME);
        }
        for &b in words.remainder() {
            h = (h ^ u64::from(b)).wrapping_mul(FNV_PRIME);
        }
    }
    h
}

/// A validated, read-only table of `T` over borrowed bytes (a mapped file).
#[derive(Clone, Copy)]
pub struct TableView<'a, T: TableEntry> {
    header: TableHeader,
    entries: &'a [T],
}

impl<T: TableEntry> std::fmt::Debug for TableView<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableView")
            .field("kind", &T::KIND)
            .field("generation", &self.header.generation)
            .field("count", &self.entries.len())
            .finish()
    }
}

impl<'a, T: TableEntry> TableView<'a, T> {
    /// Parses a table (header and payload; trailing bytes are an error) and
    /// validates magic, ABI version, kind, entry size, len/count
    /// consistency, alignment, checksum and every entry.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ShmError> {
        Self::parse_inner(bytes, true)
    }

    /// Structural checks only (no checksum, no per-entry validation): for
    /// tables already validated whole by `GenerationView::parse`.
    pub(crate) fn parse_validated(bytes: &'a [u8]) -> Result<Self, ShmError> {
        Self::parse_inner(bytes, false)
    }

    fn parse_inner(bytes: &'a [u8], verify: bool) -> Result<Self, ShmError> {
        let header: TableHeader = read_prefix(bytes, "table header")?;
        if header.magic != TABLE_MAGIC {
            return Err(ShmError::BadMagic {
                what: "table header",
                found: header.magic,
                expected: TABLE_MAGIC,
            });
        }
        if header.abi_version != ABI_VERSION {
            return Err(ShmError::AbiVersion {
                what: "table",
                found: header.abi_version,
                expected: ABI_VERSION,
            });
        }
        if header.kind != T::KIND as u32 {
            return Err(ShmError::WrongKind {
                found: header.kind,
                expected: T::KIND,
            });
        }
        let size = std::mem::size_of::<T>() as u32;
        if header.entry_size != size {
            return Err(ShmError::EntrySize {
                kind: T::KIND,
                found: header.entry_size,
                expected: size,
            });
        }
        if header.count.checked_mul(u64::from(size)) != Some(header.len) {
            return Err(ShmError::CountMismatch {
                kind: T::KIND,
                count: header.count,
                entry_size: size,
                len: header.len,
            });
        }
        let hdr_len = std::mem::size_of::<TableHeader>() as u64;
        let total = hdr_len.saturating_add(header.len);
        if total != bytes.len() as u64 {
            return Err(ShmError::Truncated {
                what: "table payload",
                need: total,
                have: bytes.len() as u64,
            });
        }
        check_align::<TableHeader>(bytes)?;
        let payload = &bytes[hdr_len as usize..];
        let computed = if verify {
            checksum(&header, payload)
        } else {
            header.checksum
        };
        if computed != header.checksum {
            return Err(ShmError::Checksum {
                kind: T::KIND,
                stored: header.checksum,
                computed,
            });
        }
        let entries = cast_slice::<T>(payload)?;
        let to_check = if verify { entries } else { &[] };
        for (index, e) in to_check.iter().enumerate() {
            e.validate().map_err(|reason| ShmError::BadEntry {
                kind: T::KIND,
                index: index as u64,
                reason,
            })?;
        }
        Ok(TableView { header, entries })
    }

    /// The header as read.
    pub fn header(&self) -> &TableHeader {
        &self.header
    }

    /// Generation stamped in the header.
    pub fn generation(&self) -> u64 {
        self.header.generation
    }

    /// The entries.
    pub fn entries(&self) -> &'a [T] {
        self.entries
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Collects entries of one kind, refusing more than a configured maximum
/// (never truncating), and serialises them as header + payload.
#[derive(Clone)]
pub struct TableBuilder<T: TableEntry> {
    entries: Vec<T>,
    max: u64,
    _kind: PhantomData<T>,
}

impl<T: TableEntry> std::fmt::Debug for TableBuilder<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableBuilder")
            .field("kind", &T::KIND)
            .field("entries", &self.entries.len())
            .field("max", &self.max)
            .finish()
    }
}

impl<T: TableEntry> Default for TableBuilder<T> {
    fn default() -> Self {
        Self::with_max(T::DEFAULT_MAX)
    }
}

impl<T: TableEntry> TableBuilder<T> {
    /// A builder accepting at most `T::DEFAULT_MAX` entries.
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder accepting at most `max` entries.
    pub fn with_max(max: u64) -> Self {
        TableBuilder {
            entries: Vec::new(),
            max,
            _kind: PhantomData,
        }
    }

    /// The table kind.
    pub fn kind(&self) -> TableKind {
        T::KIND
    }

    /// Entries so far.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No entries yet.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The configured maximum.
    pub fn max(&self) -> u64 {
        self.max
    }

    fn too_large(&self, entries: u64) -> ShmError {
        ShmError::TooLarge {
            kind: T::KIND,
            entries,
            max: self.max,
        }
    }

    /// Adds an entry after validating it; refuses past the maximum.
    pub fn push(&mut self, entry: T) -> Result<(), ShmError> {
        let n = self.entries.len() as u64 + 1;
        if n > self.max {
            return Err(self.too_large(n));
        }
        entry.validate().map_err(|reason| ShmError::BadEntry {
            kind: T::KIND,
            index: n - 1,
            reason,
        })?;
        self.entries.push(entry);
        Ok(())
    }

    /// Adds all entries or none.
    pub fn extend_from_slice(&mut self, entries: &[T]) -> Result<(), ShmError> {
        let n = self.entries.len() as u64 + entries.len() as u64;
        if n > self.max {
            return Err(self.too_large(n));
        }
        let base = self.entries.len() as u64;
        for (i, e) in entries.iter().enumerate() {
            e.validate().map_err(|reason| ShmError::BadEntry {
                kind: T::KIND,
                index: base + i as u64,
                reason,
            })?;
        }
        self.entries.extend_from_slice(entries);
        Ok(())
    }

    /// Bytes this table takes when written (header + payload).
    pub fn encoded_len(&self) -> usize {
        std::mem::size_of::<TableHeader>() + std::mem::size_of_val(self.entries.as_slice())
    }

    /// Appends header + payload stamped with `generation` to `out`.
    pub fn encode_into(&self, generation: u64, out: &mut Vec<u8>) {
        let payload = bytes_of_slice(&self.entries);
        let mut header = TableHeader {
            magic: TABLE_MAGIC,
            abi_version: ABI_VERSION,
            kind: T::KIND as u32,
            generation,
            len: payload.len() as u64,
            count: self.entries.len() as u64,
            entry_size: std::mem::size_of::<T>() as u32,
            reserved0: 0,
            checksum: 0,
            reserved1: 0,
        };
        header.checksum = checksum(&header, payload);
        out.extend_from_slice(bytes_of(&header));
        out.extend_from_slice(payload);
    }

    /// Header + payload stamped with `generation`.
    pub fn encode(&self, generation: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode_into(generation, &mut out);
        out
    }
}
