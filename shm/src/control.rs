//! `control.shm`: the small always-mapped control block. The publisher
//! bumps `current_generation`; each worker slot holds the generation that
//! worker adopted and a heartbeat. All fields are atomics (or written once
//! before the file is linked into place).

use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use crate::error::ShmError;
use crate::layout::ABI_VERSION;
use crate::shared_file::SharedFile;

/// Magic of the control block; reads "PTRNSCTL".
pub const CONTROL_MAGIC: u64 = u64::from_ne_bytes(*b"PTRNSCTL");
/// Worker slots in the control block.
pub const MAX_WORKERS: usize = 64;

/// Worker slot states.
pub const SLOT_FREE: u64 = 0;
/// The slot belongs to a running worker.
pub const SLOT_ACTIVE: u64 = 1;

/// One worker's slot, a cache line of its own (no false sharing).
#[repr(C, align(64))]
#[derive(Debug)]
pub struct WorkerSlot {
    /// `SLOT_FREE` or `SLOT_ACTIVE`.
    pub state: AtomicU64,
    /// Newest generation the worker adopted (0 = none yet).
    pub acked_generation: AtomicU64,
    /// Monotonic ms of the worker's last ack or heartbeat.
    pub heartbeat_ms: AtomicU64,
    /// Engine process id.
    pub pid: AtomicU64,
    pub reserved: [AtomicU64; 4],
}

/// The control block at the start of `control.shm`.
#[repr(C)]
#[derive(Debug)]
pub struct ControlBlock {
    /// [`CONTROL_MAGIC`], written before the file appears.
    pub magic: AtomicU64,
    /// [`ABI_VERSION`], written before the file appears.
    pub abi_version: AtomicU32,
    /// [`MAX_WORKERS`].
    pub worker_slots: AtomicU32,
    /// Newest published generation (0 = none); stored with Release after
    /// the generation file is in place.
    pub current_generation: AtomicU64,
    /// Publisher's process id (0 = none yet).
    pub publisher_pid: AtomicU64,
    /// Publisher's monotonic ms heartbeat.
    pub publisher_heartbeat_ms: AtomicU64,
    /// Engine's process id (0 = none yet).
    pub engine_pid: AtomicU64,
    /// Engine's monotonic ms heartbeat.
    pub engine_heartbeat_ms: AtomicU64,
    /// Newest published NAT configuration (`nat.bin`; 0 = none): stored
    /// with Release after the file is in place. Was reserved (zero) before,
    /// so the layout and ABI version are unchanged.
    pub nat_generation: AtomicU64,
    /// Newest published WireGuard configuration (`wg.bin`; 0 = none),
    /// stored like `nat_generation`. Was the first reserved word.
    pub wg_generation: AtomicU64,
    /// Newest published classifier model (`model.bin`; 0 = none), stored
    /// like `nat_generation`. Was the first reserved word.
    pub model_generation: AtomicU64,
    /// Newest published load-balancer configuration (`lb.bin`; 0 = none),
    /// stored like `nat_generation`. Was the first reserved word.
    pub lb_generation: AtomicU64,
    /// Newest published IPv6 routes (`route6.bin`; 0 = none), stored like
    /// `nat_generation`. Was the first reserved word.
    pub route6_generation: AtomicU64,
    pub reserved: [AtomicU64; 4],
    pub workers: [WorkerSlot; MAX_WORKERS],
}

const _: () = {
    use std::mem::{align_of, offset_of, size_of};
    assert!(size_of::<WorkerSlot>() == 64 && align_of::<WorkerSlot>() == 64);
    assert!(offset_of!(ControlBlock, current_generation) == 16);
    assert!(offset_of!(ControlBlock, nat_generation) == 56);
    assert!(offset_of!(ControlBlock, wg_generation) == 64);
    assert!(offset_of!(ControlBlock, model_generation) == 72);
    assert!(offset_of!(ControlBlock, lb_generation) == 80);
    assert!(offset_of!(ControlBlock, route6_generation) == 88);
    assert!(offset_of!(ControlBlock, workers) == 128);
    assert!(size_of::<ControlBlock>() == 128 + 64 * MAX_WORKERS);
};

/// A mapped `control.shm`, shared by the handles of one process.
#[derive(Debug)]
pub(crate) struct ControlMap {
    file: SharedFile,
}

impl ControlMap {
    /// Attaches to `path`, creating it when missing (either process may
    /// come first).
    pub(crate) fn open(path: &Path) -> Result<Arc<Self>, ShmError> {
        let len = std::mem::size_of::<ControlBlock>();
        let (file, _created) = SharedFile::create_or_attach(path, len, false, |bytes| {
            // Zero bytes are a valid ControlBlock (all atomics 0); set the
            // identity fields.
            bytes[0..8].copy_from_slice(&CONTROL_MAGIC.to_ne_bytes());
            bytes[8..12].copy_from_slice(&ABI_VERSION.to_ne_bytes());
            bytes[12..16].copy_from_slice(&(MAX_WORKERS as u32).to_ne_bytes());
        })?;
        if file.len() != len {
            return Err(ShmError::BadFile {
                path: path.to_path_buf(),
                reason: "control file has the wrong size",
            });
        }
        let map = ControlMap { file };
        let block = map.block();
        let magic = block.magic.load(Ordering::Relaxed);
        if magic != CONTROL_MAGIC {
            return Err(ShmError::BadMagic {
                what: "control file",
                found: magic,
                expected: CONTROL_MAGIC,
            });
        }
        let abi = block.abi_version.load(Ordering::Relaxed);
        if abi != ABI_VERSION {
            return Err(ShmError::AbiVersion {
                what: "control file",
                found: abi,
                expected: ABI_VERSION,
            });
        }
        if block.worker_slots.load(Ordering::Relaxed) as usize != MAX_WORKERS {
            return Err(ShmError::BadFile {
                path: path.to_path_buf(),
                reason: "control file has another number of worker slots",
            });
        }
        Ok(Arc::new(map))
    }

    /// The control block.
    pub(crate) fn block(&self) -> &ControlBlock {
        // SAFETY: the mapping is page aligned and exactly
        // size_of::<ControlBlock>() long (`open` checks the length before
        // building a ControlMap); every field is an atomic, so mutation by
        // other processes is sound; every bit pattern is a valid integer;
        // the reference lives no longer than `self`, which owns the mapping.
        unsafe { &*self.file.as_ptr().cast::<ControlBlock>() }
    }
}

/// One worker's view of its slot, for acking generations. Obtained from
/// [`crate::Subscriber::worker`]; `Send`, so it moves to the worker thread.
/// Dropping it frees the slot.
#[derive(Debug)]
pub struct WorkerHandle {
    control: Arc<ControlMap>,
    index: usize,
}

impl WorkerHandle {
    pub(crate) fn register(
        control: Arc<ControlMap>,
        index: usize,
        now_ms: u64,
    ) -> Result<Self, ShmError> {
        if index >= MAX_WORKERS {
            return Err(ShmError::WorkerOutOfRange {
                worker: index,
                max: MAX_WORKERS,
            });
        }
        let slot = &control.block().workers[index];
        slot.acked_generation.store(0, Ordering::Relaxed);
        slot.heartbeat_ms.store(now_ms, Ordering::Relaxed);
        slot.pid
            .store(u64::from(std::process::id()), Ordering::Relaxed);
        slot.state.store(SLOT_ACTIVE, Ordering::Release);
        Ok(WorkerHandle { control, index })
    }

    fn slot(&self) -> &WorkerSlot {
        &self.control.block().workers[self.index]
    }

    /// The worker index.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Records that this worker now uses `generation` (between two
    /// batches, after dropping every reference into older ones), and beats.
    pub fn ack(&self, generation: u64) {
        self.ack_at(generation, crate::runtime_dir::monotonic_ms());
    }

    /// [`Self::ack`] with the caller's clock.
    pub fn ack_at(&self, generation: u64, now_ms: u64) {
        let slot = self.slot();
        slot.heartbeat_ms.store(now_ms, Ordering::Relaxed);
        slot.acked_generation.store(generation, Ordering::Release);
    }

    /// Proves the worker is alive without changing generation. Call at
    /// least every few seconds (the publisher's stale limit).
    pub fn heartbeat_at(&self, now_ms: u64) {
        self.slot().heartbeat_ms.store(now_ms, Ordering::Relaxed);
    }

    /// The generation last acked.
    pub fn acked(&self) -> u64 {
        self.slot().acked_generation.load(Ordering::Relaxed)
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        self.slot().state.store(SLOT_FREE, Ordering::Release);
    }
}

/// A worker slot as the publisher sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkerStatus {
    pub index: usize,
    pub acked_generation: u64,
    pub heartbeat_ms: u64,
    pub pid: u32,
    /// Active and beat within the stale limit: holds back reclamation.
    pub live: bool,
}
