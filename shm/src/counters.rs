//! `counters.shm`: per-worker counters and histograms the engine creates and
//! the control process reads (Prometheus export) without knowing the
//! engine's enums: the file carries the counter names.
//!
//! Layout (offsets in bytes from the file start, all 64-byte aligned):
//! `CounterFileHeader` (128 B) · counter names then histogram names
//! (`[u8; 48]` each, NUL-padded) · per worker a 64-byte `seq` line followed
//! by `counters` `AtomicU64`s, padded to 64 B (`worker_stride`) · per worker
//! `histograms` `Log2Histogram`s (`histogram_stride`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::ShmError;
use crate::histogram::{HistogramSnapshot, Log2Histogram};
use crate::layout::ABI_VERSION;
use crate::pod::{read_prefix, Pod};
use crate::runtime_dir::{monotonic_ms, RuntimeDir};
use crate::shared_file::{path_id, SharedFile};

/// Magic of the counters file; reads "PTRNSCNT".
pub const COUNTERS_MAGIC: u64 = u64::from_ne_bytes(*b"PTRNSCNT");
/// Bytes of a counter or histogram name.
pub const COUNTER_NAME_LEN: usize = 48;
/// Most workers in a counters file.
pub const MAX_COUNTER_WORKERS: u32 = 1024;
/// Most counters (and histograms) per worker.
pub const MAX_COUNTERS: u32 = 4096;

/// Header of `counters.shm`; immutable once the file is in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct CounterFileHeader {
    pub magic: u64,
    pub abi_version: u32,
    pub workers: u32,
    pub counters: u32,
    pub histograms: u32,
    /// Distinguishes one creation from the next (engine restart: counters
    /// start again from zero).
    pub epoch: u64,
    pub names_offset: u64,
    pub counters_offset: u64,
    /// Bytes per worker: the seq line and its counters.
    pub worker_stride: u64,
    pub histograms_offset: u64,
    /// Bytes per worker of histograms.
    pub histogram_stride: u64,
    pub file_len: u64,
    pub reserved: [u64; 6],
}

// SAFETY: repr(C), integers only, sizes add up to size_of (asserted), no
// padding; every bit pattern valid.
unsafe impl Pod for CounterFileHeader {}

const _: () = assert!(std::mem::size_of::<CounterFileHeader>() == 128);

const LINE: u64 = 64;

fn round_up(n: u64) -> u64 {
    n.div_ceil(LINE) * LINE
}

/// What the counters file holds.
#[derive(Clone, Copy, Debug)]
pub struct CounterSpec<'a> {
    pub workers: u32,
    pub counters: &'a [&'a str],
    pub histograms: &'a [&'a str],
}

/// Computes the layout for a spec (or a header read from a file).
fn layout(workers: u32, counters: u32, histograms: u32) -> CounterFileHeader {
    let names_offset = std::mem::size_of::<CounterFileHeader>() as u64;
    let names_len = u64::from(counters + histograms) * COUNTER_NAME_LEN as u64;
    let counters_offset = round_up(names_offset + names_len);
    let worker_stride = LINE + round_up(u64::from(counters) * 8);
    let histograms_offset = counters_offset + u64::from(workers) * worker_stride;
    let histogram_stride = u64::from(histograms) * std::mem::size_of::<Log2Histogram>() as u64;
    let file_len = histograms_offset + u64::from(workers) * histogram_stride;
    CounterFileHeader {
        magic: COUNTERS_MAGIC,
        abi_version: ABI_VERSION,
        workers,
        counters,
        histograms,
        epoch: 0,
        names_offset,
        counters_offset,
        worker_stride,
        histograms_offset,
        histogram_stride,
        file_len,
        reserved: [0; 6],
    }
}

fn bad(path: &Path, reason: &'static str) -> ShmError {
    ShmError::BadFile {
        path: path.to_path_buf(),
        reason,
    }
}

/// A mapped, validated counters file.
#[derive(Debug)]
struct CounterMap {
    file: SharedFile,
    header: CounterFileHeader,
}

impl CounterMap {
    fn validate(file: SharedFile, path: &Path) -> Result<Self, ShmError> {
        let head_len = file.len().min(std::mem::size_of::<CounterFileHeader>());
        // SAFETY: the first `head_len` bytes are mapped and are the header,
        // which nobody writes after the file is in place (only the atomics
        // after the name table change).
        let head = unsafe { std::slice::from_raw_parts(file.as_ptr(), head_len) };
        let header: CounterFileHeader = read_prefix(head, "counters header")?;
        if header.magic != COUNTERS_MAGIC {
            return Err(ShmError::BadMagic {
                what: "counters file",
                found: header.magic,
                expected: COUNTERS_MAGIC,
            });
        }
        if header.abi_version != ABI_VERSION {
            return Err(ShmError::AbiVersion {
                what: "counters file",
                found: header.abi_version,
                expected: ABI_VERSION,
            });
        }
        if header.workers > MAX_COUNTER_WORKERS
            || header.counters > MAX_COUNTERS
            || header.histograms > MAX_COUNTERS
        {
            return Err(bad(path, "counters file dimensions out of range"));
        }
        let mut expected = layout(header.workers, header.counters, header.histograms);
        expected.epoch = header.epoch;
        if expected != header {
            return Err(bad(
                path,
                "counters file layout does not match its dimensions",
            ));
        }
        if header.file_len != file.len() as u64 {
            return Err(ShmError::Truncated {
                what: "counters file",
                need: header.file_len,
                have: file.len() as u64,
            });
        }
        Ok(CounterMap { file, header })
    }

    /// The header and name table: immutable once the file is in place.
    fn immutable_bytes(&self) -> &[u8] {
        // SAFETY: `validate` checked counters_offset <= file_len == the
        // mapping's length; nothing before counters_offset is written after
        // creation (the atomics live from counters_offset on), so a plain
        // byte slice over it does not race.
        unsafe {
            std::slice::from_raw_parts(self.file.as_ptr(), self.header.counters_offset as usize)
        }
    }

    fn name(&self, i: u32) -> String {
        let off = (self.header.names_offset + u64::from(i) * COUNTER_NAME_LEN as u64) as usize;
        let field = &self.immutable_bytes()[off..off + COUNTER_NAME_LEN];
        crate::layout::decode_name(field).unwrap_or("").to_string()
    }

    /// `n` atomics at byte `offset` (64-byte aligned, validated in range).
    fn atomics(&self, offset: u64, n: usize) -> &[AtomicU64] {
        debug_assert!(offset as usize + n * 8 <= self.file.len());
        // SAFETY: `validate` checked that the layout (offsets derived from
        // the dimensions) fits the mapping; offsets are multiples of 64 in a
        // page-aligned mapping; AtomicU64 has the size of u64 and any bit
        // pattern is valid; shared mutation goes through atomics only.
        unsafe {
            std::slice::from_raw_parts(
                self.file.as_ptr().add(offset as usize).cast::<AtomicU64>(),
                n,
            )
        }
    }

    fn seq(&self, worker: u32) -> &AtomicU64 {
        &self.atomics(
            self.header.counters_offset + u64::from(worker) * self.header.worker_stride,
            1,
        )[0]
    }

    fn counters(&self, worker: u32) -> &[AtomicU64] {
        let off =
            self.header.counters_offset + u64::from(worker) * self.header.worker_stride + LINE;
        self.atomics(off, self.header.counters as usize)
    }

    fn histograms(&self, worker: u32) -> &[Log2Histogram] {
        let off = self.header.histograms_offset + u64::from(worker) * self.header.histogram_stride;
        let n = self.header.histograms as usize;
        debug_assert!(off as usize + n * std::mem::size_of::<Log2Histogram>() <= self.file.len());
        // SAFETY: as in `atomics`: in range (validated layout), 64-byte
        // aligned (Log2Histogram's alignment), made only of AtomicU64s.
        unsafe {
            std::slice::from_raw_parts(
                self.file.as_ptr().add(off as usize).cast::<Log2Histogram>(),
                n,
            )
        }
    }
}

/// The engine's counters file: created (replacing any older one) at
/// start-up; hands one `WorkerCounters` per worker.
#[derive(Debug)]
pub struct CounterBlock {
    map: Arc<CounterMap>,
    taken: Mutex<Vec<bool>>,
}

impl CounterBlock {
    /// Creates `counters.shm` under `root` for `spec`, replacing an older
    /// file atomically (readers of the old one see it frozen, then notice
    /// the new inode via [`CounterReader::replaced`]).
    pub fn create(root: impl AsRef<Path>, spec: &CounterSpec<'_>) -> Result<Self, ShmError> {
        let dir = RuntimeDir::create(root)?;
        let path = dir.counters();
        if spec.workers == 0 || spec.workers > MAX_COUNTER_WORKERS {
            return Err(bad(&path, "worker count out of range"));
        }
        if spec.counters.len() > MAX_COUNTERS as usize
            || spec.histograms.len() > MAX_COUNTERS as usize
        {
            return Err(bad(&path, "too many counters"));
        }
        let mut names = Vec::new();
        for name in spec.counters.iter().chain(spec.histograms) {
            let b = name.as_bytes();
            if b.is_empty() || b.len() > COUNTER_NAME_LEN || b.contains(&0) {
                return Err(bad(
                    &path,
                    "counter name empty, longer than 48 bytes or with NUL",
                ));
            }
            names.push(b);
        }
        let mut header = layout(
            spec.workers,
            spec.counters.len() as u32,
            spec.histograms.len() as u32,
        );
        header.epoch = (u64::from(std::process::id()) << 32) ^ monotonic_ms();
        let (file, _) =
            SharedFile::create_or_attach(&path, header.file_len as usize, true, |bytes| {
                bytes[..128].copy_from_slice(crate::pod::bytes_of(&header));
                for (i, n) in names.iter().enumerate() {
                    let off = header.names_offset as usize + i * COUNTER_NAME_LEN;
                    bytes[off..off + n.len()].copy_from_slice(n);
                }
            })?;
        let map = CounterMap::validate(file, &path)?;
        Ok(CounterBlock {
            taken: Mutex::new(vec![false; spec.workers as usize]),
            map: Arc::new(map),
        })
    }

    /// The creation epoch.
    pub fn epoch(&self) -> u64 {
        self.map.header.epoch
    }

    /// The writer for `worker`; each worker can be taken once (single
    /// writer per counter).
    pub fn take_worker(&self, worker: usize) -> Result<WorkerCounters, ShmError> {
        let mut taken = self.taken.lock().unwrap_or_else(|e| e.into_inner());
        let max = taken.len();
        let slot = taken
            .get_mut(worker)
            .ok_or(ShmError::WorkerOutOfRange { worker, max })?;
        if *slot {
            return Err(ShmError::WorkerTaken { worker });
        }
        *slot = true;
        Ok(WorkerCounters {
            map: self.map.clone(),
            worker: worker as u32,
        })
    }
}

/// One worker's counters and histograms: the only writer of them. `Send`
/// (moves to the worker thread) but used from one thread at a time.
#[derive(Debug)]
pub struct WorkerCounters {
    map: Arc<CounterMap>,
    worker: u32,
}

impl WorkerCounters {
    /// Adds `n` to counter `index` (ignored when out of range: the hot path
    /// never panics). Load + store, no locked instruction: single writer.
    #[inline]
    pub fn add(&self, index: usize, n: u64) {
        if let Some(c) = self.map.counters(self.worker).get(index) {
            c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
        }
    }

    /// Sets counter `index` (e.g. a gauge).
    #[inline]
    pub fn set(&self, index: usize, value: u64) {
        if let Some(c) = self.map.counters(self.worker).get(index) {
            c.store(value, Ordering::Relaxed);
        }
    }

    /// Reads counter `index` back (0 when out of range).
    pub fn get(&self, index: usize) -> u64 {
        self.map
            .counters(self.worker)
            .get(index)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Records `value` into histogram `index`.
    #[inline]
    pub fn record(&self, index: usize, value: u64) {
        if let Some(h) = self.map.histograms(self.worker).get(index) {
            h.record(value);
        }
    }

    /// Sets histogram `index` to `snap` in one go (a copy of a histogram
    /// the worker keeps in process memory).
    pub fn set_histogram(&self, index: usize, snap: &HistogramSnapshot) {
        if let Some(h) = self.map.histograms(self.worker).get(index) {
            h.store_snapshot(snap);
        }
    }

    /// Bumps the worker's sequence number (e.g. once per stats flush), so
    /// a reader can tell the worker is making progress.
    pub fn bump_seq(&self) {
        let s = self.map.seq(self.worker);
        s.store(s.load(Ordering::Relaxed).wrapping_add(1), Ordering::Release);
    }

    /// The worker index.
    pub fn worker(&self) -> usize {
        self.worker as usize
    }
}

/// All counters at one moment (each value read once, never torn).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CounterSnapshot {
    pub epoch: u64,
    pub names: Vec<String>,
    /// `values[worker][counter]`.
    pub values: Vec<Vec<u64>>,
    /// Per-worker sequence numbers.
    pub seq: Vec<u64>,
}

impl CounterSnapshot {
    /// Sum over workers of each counter.
    pub fn totals(&self) -> Vec<u64> {
        let mut t = vec![0u64; self.names.len()];
        for w in &self.values {
            for (a, b) in t.iter_mut().zip(w) {
                *a = a.wrapping_add(*b);
            }
        }
        t
    }
}

/// The control process's read-only use of `counters.shm`.
#[derive(Debug)]
pub struct CounterReader {
    path: PathBuf,
    map: CounterMap,
}

impl CounterReader {
    /// Attaches to `root/counters.shm` (fails with a NotFound `Io` error
    /// until the engine has created it).
    pub fn open(root: impl AsRef<Path>) -> Result<Self, ShmError> {
        let path = root.as_ref().join(crate::runtime_dir::COUNTERS_FILE);
        let file = SharedFile::attach(&path)?;
        let map = CounterMap::validate(file, &path)?;
        Ok(CounterReader { path, map })
    }

    /// True when the engine has replaced the file since we attached (it
    /// restarted): reopen to follow it.
    pub fn replaced(&self) -> bool {
        path_id(&self.path) != Some(self.map.file.id)
    }

    /// The creation epoch.
    pub fn epoch(&self) -> u64 {
        self.map.header.epoch
    }

    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.map.header.workers as usize
    }

    /// Counter names, in index order.
    pub fn counter_names(&self) -> Vec<String> {
        (0..self.map.header.counters)
            .map(|i| self.map.name(i))
            .collect()
    }

    /// Histogram names, in index order.
    pub fn histogram_names(&self) -> Vec<String> {
        let c = self.map.header.counters;
        (0..self.map.header.histograms)
            .map(|i| self.map.name(c + i))
            .collect()
    }

    /// One counter (None when out of range).
    pub fn get(&self, worker: usize, counter: usize) -> Option<u64> {
        if worker >= self.workers() {
            return None;
        }
        self.map
            .counters(worker as u32)
            .get(counter)
            .map(|c| c.load(Ordering::Relaxed))
    }

    /// A worker's sequence number (None when out of range).
    pub fn seq(&self, worker: usize) -> Option<u64> {
        (worker < self.workers()).then(|| self.map.seq(worker as u32).load(Ordering::Acquire))
    }

    /// Every counter of every worker.
    pub fn snapshot(&self) -> CounterSnapshot {
        let n = self.map.header.workers;
        CounterSnapshot {
            epoch: self.epoch(),
            names: self.counter_names(),
            values: (0..n)
                .map(|w| {
                    self.map
                        .counters(w)
                        .iter()
                        .map(|c| c.load(Ordering::Relaxed))
                        .collect()
                })
                .collect(),
            seq: (0..n)
                .map(|w| self.map.seq(w).load(Ordering::Acquire))
                .collect(),
        }
    }

    /// One worker's histogram (None when out of range).
    pub fn histogram(&self, worker: usize, index: usize) -> Option<HistogramSnapshot> {
        if worker >= self.workers() {
            return None;
        }
        self.map
            .histograms(worker as u32)
            .get(index)
            .map(Log2Histogram::snapshot)
    }
}
