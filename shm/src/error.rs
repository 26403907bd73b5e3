//! `ShmError`: everything that can go wrong reading, writing or attaching to
//! the shared-memory tables, with typed payloads.

use std::path::PathBuf;

use crate::layout::TableKind;

/// Errors of the shared-memory ABI. Parsing never panics: every malformed
/// input maps to one of these.
#[derive(Debug, thiserror::Error)]
pub enum ShmError {
    #[error("bad magic {found:#018x} in {what}, expected {expected:#018x}")]
    BadMagic {
        what: &'static str,
        found: u64,
        expected: u64,
    },
    #[error("{what} has ABI version {found}, this build speaks {expected}")]
    AbiVersion {
        what: &'static str,
        found: u32,
        expected: u32,
    },
    #[error("table kind {found}, expected {expected:?}")]
    WrongKind { found: u32, expected: TableKind },
    #[error("unknown table kind {0}")]
    UnknownKind(u32),
    #[error("truncated {what}: needs {need} bytes, have {have}")]
    Truncated {
        what: &'static str,
        need: u64,
        have: u64,
    },
    #[error("{kind:?} entries are {found} bytes in the file, {expected} in this build")]
    EntrySize {
        kind: TableKind,
        found: u32,
        expected: u32,
    },
    #[error("{kind:?} table: {count} entries of {entry_size} bytes do not fill a payload of {len} bytes")]
    CountMismatch {
        kind: TableKind,
        count: u64,
        entry_size: u32,
        len: u64,
    },
    #[error("{kind:?} table checksum mismatch: stored {stored:#018x}, computed {computed:#018x}")]
    Checksum {
        kind: TableKind,
        stored: u64,
        computed: u64,
    },
    #[error("buffer at {addr:#x} is not aligned to {align} bytes")]
    Misaligned { addr: usize, align: usize },
    #[error("{kind:?} table has {entries} entries, more than the maximum {max}; refused (not truncated)")]
    TooLarge {
        kind: TableKind,
        entries: u64,
        max: u64,
    },
    #[error("{kind:?} entry {index}: {reason}")]
    BadEntry {
        kind: TableKind,
        index: u64,
        reason: &'static str,
    },
    #[error("generation file: {reason}")]
    BadDirectory { reason: &'static str },
    #[error("delta of generation {delta_of}, but the current generation is {current}")]
    DeltaBase { delta_of: u64, current: u64 },
    #[error("{kind:?} table appears twice in one generation")]
    DuplicateTable { kind: TableKind },
    #[error("{path}: holds generation {found}, expected {expected}")]
    GenerationMismatch {
        path: PathBuf,
        found: u64,
        expected: u64,
    },
    #[error("{path}: {reason}")]
    BadFile { path: PathBuf, reason: &'static str },
    #[error("model file: {reason}")]
    BadModel { reason: &'static str },
    #[error("model file checksum mismatch: stored {stored:#018x}, computed {computed:#018x}")]
    ModelChecksum { stored: u64, computed: u64 },
    #[error("worker {worker} out of range (this file has {max} slots)")]
    WorkerOutOfRange { worker: usize, max: usize },
    #[error("worker {worker} is already taken in this process")]
    WorkerTaken { worker: usize },
    #[error("another publisher holds {path}")]
    PublisherBusy { path: PathBuf },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ShmError {
    pub(crate) fn io(op: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        ShmError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}
