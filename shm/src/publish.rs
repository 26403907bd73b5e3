//! The control process's side: `Publisher` writes generation files
//! atomically, bumps `current_generation`, and reclaims generations no live
//! worker can still be using.
//!
//! Reclamation rule: let `floor = min(current, acked_generation of every
//! live worker slot)`, where a slot is live when it is active and its
//! heartbeat is at most `stale_worker_ms` old. Files `gen-N.bin` with
//! `N < floor` are deleted, and so are orphans with `N > current` (written
//! by a publisher that died before bumping `current`). The current
//! generation is never deleted, nor is the newest generation holding a full
//! route table, nor any after it: a reader starting afresh loads that one
//! and applies the deltas after it (the floor is lowered to it). Until this
//! publisher has published a full table, nothing below the current
//! generation is deleted. A worker that died without freeing its slot
//! stops holding generations back once its heartbeat is stale. Deleting a
//! file a reader still maps is harmless on Linux (the inode lives on until
//! unmapped); the rule only bounds disk use and keeps `ack` meaningful.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::control::{ControlMap, WorkerStatus, MAX_WORKERS, SLOT_ACTIVE};
use crate::error::ShmError;
use crate::generation::GenerationBuilder;
use crate::layout::{GenerationHeader, TableKind};
use crate::pod::read_prefix;
use crate::runtime_dir::{monotonic_ms, write_atomic, RuntimeDir, PUBLISHER_LOCK};

/// Default age after which a silent worker no longer holds back reclamation.
pub const DEFAULT_STALE_WORKER_MS: u64 = 10_000;

/// Publisher settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublisherOptions {
    /// See the module's reclamation rule.
    pub stale_worker_ms: u64,
}

impl Default for PublisherOptions {
    fn default() -> Self {
        PublisherOptions {
            stale_worker_ms: DEFAULT_STALE_WORKER_MS,
        }
    }
}

/// The one publisher of a runtime directory (enforced with `flock` on
/// `publisher.lock`, released by the kernel when the process dies).
#[derive(Debug)]
pub struct Publisher {
    dir: RuntimeDir,
    control: Arc<ControlMap>,
    _lock: File,
    next: u64,
    options: PublisherOptions,
    /// Newest self-contained generation this publisher wrote (0 = none yet).
    newest_full: u64,
}

impl Publisher {
    /// Attaches to (or creates) the runtime directory `root` with default
    /// options. Numbering continues after the current generation (and after
    /// any orphan file), so a restarted control process never reuses a
    /// number.
    pub fn open(root: impl AsRef<Path>) -> Result<Self, ShmError> {
        Self::open_with(root, PublisherOptions::default())
    }

    /// [`Self::open`] with options.
    pub fn open_with(root: impl AsRef<Path>, options: PublisherOptions) -> Result<Self, ShmError> {
        let dir = RuntimeDir::create(root)?;
        let lock_path = dir.root().join(PUBLISHER_LOCK);
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|e| ShmError::io("open", &lock_path, e))?;
        // SAFETY: flock on a file descriptor we own; no memory involved.
        let rc = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                return Err(ShmError::PublisherBusy { path: lock_path });
            }
            return Err(ShmError::io("flock", &lock_path, err));
        }
        let control = ControlMap::open(&dir.control())?;
        let current = control.block().current_generation.load(Ordering::Acquire);
        let highest_file = dir.list_generations()?.last().copied().unwrap_or(0);
        let next = current.max(highest_file) + 1;
        let newest_full = newest_self_contained(&dir, current)?;
        let block = control.block();
        block
            .publisher_pid
            .store(u64::from(std::process::id()), Ordering::Relaxed);
        block
            .publisher_heartbeat_ms
            .store(monotonic_ms(), Ordering::Relaxed);
        Ok(Publisher {
            dir,
            control,
            _lock: lock,
            next,
            options,
            newest_full,
        })
    }

    /// The runtime directory.
    pub fn dir(&self) -> &RuntimeDir {
        &self.dir
    }

    /// The newest published generation (0 = none).
    pub fn current_generation(&self) -> u64 {
        self.control
            .block()
            .current_generation
            .load(Ordering::Acquire)
    }

    /// The number the next `publish` will use.
    pub fn next_generation(&self) -> u64 {
        self.next
    }

    /// Writes the tables as the next generation (temp file, fsync, rename)
    /// and then makes it current. Returns its number.
    pub fn publish(&mut self, tables: &GenerationBuilder) -> Result<u64, ShmError> {
        let generation = self.next;
        let current = self.current_generation();
        if tables.delta_of() != 0 && tables.delta_of() != current {
            return Err(ShmError::DeltaBase {
                delta_of: tables.delta_of(),
                current,
            });
        }
        let bytes = tables.encode(generation);
        write_atomic(&self.dir.generation(generation), &bytes)?;
        let block = self.control.block();
        // Release: a reader that sees the number also sees the file in place.
        block
            .current_generation
            .store(generation, Ordering::Release);
        block
            .publisher_heartbeat_ms
            .store(monotonic_ms(), Ordering::Relaxed);
        self.next = generation + 1;
        // Self-contained: not a delta, or a checkpoint carrying the routes.
        if tables.delta_of() == 0 || tables.has(TableKind::Route) {
            self.newest_full = generation;
        }
        Ok(generation)
    }

    /// The newest published NAT configuration number (0 = none).
    pub fn nat_generation(&self) -> u64 {
        self.control.block().nat_generation.load(Ordering::Acquire)
    }

    /// Writes `tables` as the NAT file (temp file, fsync, rename) and then
    /// bumps `nat_generation`. Returns its number. The NAT file is replaced
    /// whole each time: the engine reads only the newest.
    pub fn publish_nat(&mut self, tables: &crate::nat::NatTables) -> Result<u64, ShmError> {
        let number = self.nat_generation() + 1;
        let bytes = tables.builder()?.encode(number);
        write_atomic(&self.dir.nat(), &bytes)?;
        let block = self.control.block();
        // Release: a reader that sees the number also sees the file.
        block.nat_generation.store(number, Ordering::Release);
        block
            .publisher_heartbeat_ms
            .store(monotonic_ms(), Ordering::Relaxed);
        Ok(number)
    }

    /// The newest published WireGuard configuration number (0 = none).
    pub fn wg_generation(&self) -> u64 {
        self.control.block().wg_generation.load(Ordering::Acquire)
    }

    /// Writes `tables` as the WireGuard file (temp file created 0600,
    /// fsync, rename: it holds private keys) and then bumps
    /// `wg_generation`. Returns its number. Replaced whole each time.
    pub fn publish_wg(&mut self, tables: &crate::wg::WgTables) -> Result<u64, ShmError> {
        let number = self.wg_generation() + 1;
        let bytes = tables.builder()?.encode(number);
        write_atomic(&self.dir.wg(), &bytes)?;
        let block = self.control.block();
        // Release: a reader that sees the number also sees the file.
        block.wg_generation.store(number, Ordering::Release);
        block
            .publisher_heartbeat_ms
            .store(monotonic_ms(), Ordering::Relaxed);
        Ok(number)
    }

    /// The newest published load-balancer configuration number (0 = none).
    pub fn lb_generation(&self) -> u64 {
        self.control.block().lb_generation.load(Ordering::Acquire)
    }

    /// Writes `tables` as the LB file (temp file, fsync, rename) and then
    /// bumps `lb_generation`. Returns its number. Replaced whole each time.
    pub fn publish_lb(&mut self, tables: &crate::lb::LbTables) -> Result<u64, ShmError> {
        let number = self.lb_generation() + 1;
        let bytes = tables.builder()?.encode(number);
        write_atomic(&self.dir.lb(), &bytes)?;
        let block = self.control.block();
        // Release: a reader that sees the number also sees the file.
        block.lb_generation.store(number, Ordering::Release);
        block
            .publisher_heartbeat_ms
            .store(monotonic_ms(), Ordering::Relaxed);
        Ok(number)
    }

    /// The newest published IPv6 route file number (0 = none).
    pub fn route6_generation(&self) -> u64 {
        self.control
            .block()
            .route6_generation
            .load(Ordering::Acquire)
    }

    /// Writes `tables` as the IPv6 route file (temp file, fsync, rename) and
    /// then bumps `route6_generation`. Returns its number. Replaced whole
    /// each time.
    pub fn publish_route6(
        &mut self,
        tables: &crate::route6::Route6Tables,
    ) -> Result<u64, ShmError> {
        let number = self.route6_generation() + 1;
        let bytes = tables.builder()?.encode(number);
        write_atomic(&self.dir.route6(), &bytes)?;
        let block = self.control.block();
        // Release: a reader that sees the number also sees the file.
        block.route6_generation.store(number, Ordering::Release);
        block
            .publisher_heartbeat_ms
            .store(monotonic_ms(), Ordering::Relaxed);
        Ok(number)
    }

    /// The newest published model file number (0 = none).
    pub fn model_generation(&self) -> u64 {
        self.control
            .block()
            .model_generation
            .load(Ordering::Acquire)
    }

    /// Writes `payload` (a model file's bytes, opaque here; empty = no
    /// model) as `model.bin` (temp file 0600, fsync, rename) and then bumps
    /// `model_generation`. Returns its number. Replaced whole each time.
    pub fn publish_model(&mut self, payload: &[u8]) -> Result<u64, ShmError> {
        if payload.len() as u64 > crate::model::MAX_MODEL_PAYLOAD_BYTES {
            return Err(ShmError::BadModel {
                reason: "payload length above the limit",
            });
        }
        let number = self.model_generation() + 1;
        let bytes = crate::model::encode_model_file(number, payload);
        write_atomic(&self.dir.model(), &bytes)?;
        let block = self.control.block();
        // Release: a reader that sees the number also sees the file.
        block.model_generation.store(number, Ordering::Release);
        block
            .publisher_heartbeat_ms
            .store(monotonic_ms(), Ordering::Relaxed);
        Ok(number)
    }

    /// Proves the publisher is alive (for the engine's information).
    pub fn heartbeat_at(&self, now_ms: u64) {
        self.control
            .block()
            .publisher_heartbeat_ms
            .store(now_ms, Ordering::Relaxed);
    }

    /// Pid of the engine that last attached (0 = none yet).
    pub fn engine_pid(&self) -> u32 {
        self.control.block().engine_pid.load(Ordering::Relaxed) as u32
    }

    /// Monotonic ms of the engine's last heartbeat (0 = never).
    pub fn engine_heartbeat_ms(&self) -> u64 {
        self.control
            .block()
            .engine_heartbeat_ms
            .load(Ordering::Relaxed)
    }

    /// Every active worker slot, with liveness judged at `now_ms`.
    pub fn workers_at(&self, now_ms: u64) -> Vec<WorkerStatus> {
        let block = self.control.block();
        (0..MAX_WORKERS)
            .filter_map(|index| {
                let slot = &block.workers[index];
                if slot.state.load(Ordering::Acquire) != SLOT_ACTIVE {
                    return None;
                }
                let heartbeat_ms = slot.heartbeat_ms.load(Ordering::Relaxed);
                Some(WorkerStatus {
                    index,
                    acked_generation: slot.acked_generation.load(Ordering::Acquire),
                    heartbeat_ms,
                    pid: slot.pid.load(Ordering::Relaxed) as u32,
                    live: now_ms.saturating_sub(heartbeat_ms) <= self.options.stale_worker_ms,
                })
            })
            .collect()
    }

    /// Lowest generation some live worker may still use (see the module's
    /// rule).
    pub fn floor_at(&self, now_ms: u64) -> u64 {
        let current = self.current_generation();
        self.workers_at(now_ms)
            .iter()
            .filter(|w| w.live)
            .map(|w| w.acked_generation)
            .fold(current, u64::min)
    }

    /// Generation files that may be deleted at `now_ms`.
    pub fn reclaimable_at(&self, now_ms: u64) -> Result<Vec<u64>, ShmError> {
        // A reader starting afresh needs the newest full table and every
        // delta after it, so those stay too.
        let floor = self.floor_at(now_ms).min(self.newest_full);
        let current = self.current_generation();
        let next = self.next;
        Ok(self
            .dir
            .list_generations()?
            .into_iter()
            .filter(|&g| g < floor || (g > current && g < next))
            .collect())
    }

    /// [`Self::reclaimable_at`] now.
    pub fn reclaimable(&self) -> Result<Vec<u64>, ShmError> {
        self.reclaimable_at(monotonic_ms())
    }

    /// Deletes the reclaimable generation files; returns their numbers.
    pub fn gc_at(&self, now_ms: u64) -> Result<Vec<u64>, ShmError> {
        let gens = self.reclaimable_at(now_ms)?;
        for &g in &gens {
            let path = self.dir.generation(g);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(ShmError::io("unlink", &path, e)),
            }
        }
        Ok(gens)
    }

    /// [`Self::gc_at`] now.
    pub fn gc(&self) -> Result<Vec<u64>, ShmError> {
        self.gc_at(monotonic_ms())
    }
}

/// The newest generation at or below `current` whose file is self-contained
/// (not a delta, or a checkpoint with the full route table), reading only
/// headers; 0 when there is none.
fn newest_self_contained(dir: &RuntimeDir, current: u64) -> Result<u64, ShmError> {
    use std::io::Read;
    let gens = dir.list_generations()?;
    for &g in gens.iter().rev().filter(|&&g| g <= current) {
        let path = dir.generation(g);
        let mut buf = vec![0u8; std::mem::size_of::<GenerationHeader>()];
        let read = File::open(&path).and_then(|mut f| f.read_exact(&mut buf));
        if read.is_err() {
            // Unreadable or short: not something a reader could start from.
            continue;
        }
        let h: GenerationHeader = read_prefix(&buf, "generation header")?;
        let full = h.tables[..(h.table_count as usize).min(h.tables.len())]
            .iter()
            .any(|e| e.kind == TableKind::Route as u32);
        if h.delta_of == 0 || full {
            return Ok(g);
        }
    }
    Ok(0)
}
