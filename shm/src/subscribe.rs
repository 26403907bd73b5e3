//! The engine's side: `Subscriber` notices a new current generation with
//! one atomic load, maps its file read-only and validates it whole;
//! `Generation` owns that mapping. Workers ack through `WorkerHandle`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use memmap2::Mmap;

use crate::control::{ControlMap, WorkerHandle};
use crate::error::ShmError;
use crate::generation::GenerationView;
use crate::layout::GenerationHeader;
use crate::lb::LbTables;
use crate::nat::NatTables;
use crate::runtime_dir::{monotonic_ms, RuntimeDir};
use crate::wg::WgTables;

/// One validated, immutable generation, mapped read-only. `Send + Sync`:
/// share it between workers with an `Arc`.
#[derive(Debug)]
pub struct Generation {
    generation: u64,
    map: Mmap,
}

impl Generation {
    /// Maps and validates `path`, which must hold generation `expected`.
    pub fn load(path: &Path, expected: u64) -> Result<Self, ShmError> {
        let file = File::open(path).map_err(|e| ShmError::io("open", path, e))?;
        let len = file
            .metadata()
            .map_err(|e| ShmError::io("stat", path, e))?
            .len();
        let min = std::mem::size_of::<GenerationHeader>() as u64;
        if len < min {
            return Err(ShmError::Truncated {
                what: "generation file",
                need: min,
                have: len,
            });
        }
        // SAFETY: published generation files are never modified in place
        // (written to a temp file and renamed; reclaimed by unlink only), so
        // the mapped bytes do not change or shrink under us.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| ShmError::io("mmap", path, e))?;
        let found = GenerationView::parse(&map)?.generation();
        if found != expected {
            return Err(ShmError::GenerationMismatch {
                path: path.to_path_buf(),
                found,
                expected,
            });
        }
        Ok(Generation {
            generation: expected,
            map,
        })
    }

    /// The generation number.
    pub fn number(&self) -> u64 {
        self.generation
    }

    /// The tables (validated when loaded).
    pub fn view(&self) -> GenerationView<'_> {
        match GenerationView::parse_validated(&self.map) {
            Ok(v) => v,
            // `load` validated these very bytes, which cannot change.
            Err(e) => unreachable!("validated generation no longer parses: {e}"),
        }
    }

    /// Bytes of the file.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Never true for a loaded generation (the header alone is not empty).
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// The engine's attachment to a runtime directory.
#[derive(Debug)]
pub struct Subscriber {
    dir: RuntimeDir,
    control: Arc<ControlMap>,
    /// The last generation returned (or that failed to load).
    seen: u64,
    /// The last NAT file number returned (or that failed to load).
    seen_nat: u64,
    /// The last LB file number returned (or that failed to load).
    seen_lb: u64,
    seen_route6: u64,
    /// The last WireGuard file number returned (or that failed to load).
    seen_wg: u64,
    /// The last model file number returned (or that failed to load).
    seen_model: u64,
}

impl Subscriber {
    /// Attaches to `root`, creating the directory and control file when the
    /// control process has not started yet.
    pub fn open(root: impl AsRef<Path>) -> Result<Self, ShmError> {
        let dir = RuntimeDir::create(root)?;
        let control = ControlMap::open(&dir.control())?;
        let block = control.block();
        block
            .engine_pid
            .store(u64::from(std::process::id()), Ordering::Relaxed);
        block
            .engine_heartbeat_ms
            .store(monotonic_ms(), Ordering::Relaxed);
        Ok(Subscriber {
            dir,
            control,
            seen: 0,
            seen_nat: 0,
            seen_lb: 0,
            seen_route6: 0,
            seen_wg: 0,
            seen_model: 0,
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

    /// A new generation if one was published since the last call, else
    /// `Ok(None)` after one atomic load. A generation that fails to load is
    /// reported once and then skipped until a newer one appears (the
    /// caller keeps using what it has).
    pub fn poll(&mut self) -> Result<Option<Generation>, ShmError> {
        let mut current = self.current_generation();
        if current == self.seen || current == 0 {
            return Ok(None);
        }
        // The file of `current` may be reclaimed between our load and open
        // only if a newer one was published meanwhile: then retry with it.
        loop {
            match Generation::load(&self.dir.generation(current), current) {
                Ok(g) => {
                    self.seen = current;
                    return Ok(Some(g));
                }
                Err(ShmError::Io { source, path, op })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    let newer = self.current_generation();
                    if newer == current {
                        self.seen = current;
                        return Err(ShmError::Io { source, path, op });
                    }
                    current = newer;
                }
                Err(e) => {
                    self.seen = current;
                    return Err(e);
                }
            }
        }
    }

    /// The newest published NAT file number (0 = none).
    pub fn nat_generation(&self) -> u64 {
        self.control.block().nat_generation.load(Ordering::Acquire)
    }

    /// The NAT configuration if a new one was published since the last
    /// call (one atomic load when not). A file that fails to load is
    /// reported once and skipped until a newer one appears.
    pub fn poll_nat(&mut self) -> Result<Option<(u64, NatTables)>, ShmError> {
        let current = self.nat_generation();
        if current == self.seen_nat || current == 0 {
            return Ok(None);
        }
        let path = self.dir.nat();
        // A newer file may replace the one numbered `current` between our
        // load of the number and the open (its number is bumped right
        // after): take it, it is complete.
        let loaded = match Generation::load(&path, current) {
            Err(ShmError::GenerationMismatch { found, .. }) if found > current => {
                Generation::load(&path, found)
            }
            other => other,
        };
        self.seen_nat = current;
        let g = loaded?;
        Ok(Some((g.number(), NatTables::from_view(&g.view()))))
    }

    /// The newest published WireGuard file number (0 = none).
    pub fn wg_generation(&self) -> u64 {
        self.control.block().wg_generation.load(Ordering::Acquire)
    }

    /// The WireGuard configuration if a new one was published since the
    /// last call (one atomic load when not). A file that fails to load is
    /// reported once and skipped until a newer one appears.
    pub fn poll_wg(&mut self) -> Result<Option<(u64, WgTables)>, ShmError> {
        let current = self.wg_generation();
        if current == self.seen_wg || current == 0 {
            return Ok(None);
        }
        let path = self.dir.wg();
        // As for NAT: a newer file may already have replaced this number's.
        let loaded = match Generation::load(&path, current) {
            Err(ShmError::GenerationMismatch { found, .. }) if found > current => {
                Generation::load(&path, found)
            }
            other => other,
        };
        self.seen_wg = current;
        let g = loaded?;
        let tables = WgTables::from_view(&g.view())?;
        Ok(Some((g.number(), tables)))
    }

    /// The newest published LB file number (0 = none).
    pub fn lb_generation(&self) -> u64 {
        self.control.block().lb_generation.load(Ordering::Acquire)
    }

    /// The load-balancer configuration if a new one was published since
    /// the last call (one atomic load when not). A file that fails to load
    /// is reported once and skipped until a newer one appears.
    pub fn poll_lb(&mut self) -> Result<Option<(u64, LbTables)>, ShmError> {
        let current = self.lb_generation();
        if current == self.seen_lb || current == 0 {
            return Ok(None);
        }
        let path = self.dir.lb();
        // As for NAT: a newer file may already have replaced this number's.
        let loaded = match Generation::load(&path, current) {
            Err(ShmError::GenerationMismatch { found, .. }) if found > current => {
                Generation::load(&path, found)
            }
            other => other,
        };
        self.seen_lb = current;
        let g = loaded?;
        let tables = LbTables::from_view(&g.view())?;
        Ok(Some((g.number(), tables)))
    }

    /// The newest published IPv6 route file number (0 = none).
    pub fn route6_generation(&self) -> u64 {
        self.control
            .block()
            .route6_generation
            .load(Ordering::Acquire)
    }

    /// The IPv6 routes if a new file was published since the last call
    /// (one atomic load when not). A file that fails to load is reported
    /// once and skipped until a newer one appears.
    pub fn poll_route6(&mut self) -> Result<Option<(u64, crate::route6::Route6Tables)>, ShmError> {
        let current = self.route6_generation();
        if current == self.seen_route6 || current == 0 {
            return Ok(None);
        }
        let path = self.dir.route6();
        // As for NAT: a newer file may already have replaced this number's.
        let loaded = match Generation::load(&path, current) {
            Err(ShmError::GenerationMismatch { found, .. }) if found > current => {
                Generation::load(&path, found)
            }
            other => other,
        };
        self.seen_route6 = current;
        let g = loaded?;
        let tables = crate::route6::Route6Tables::from_view(&g.view())?;
        Ok(Some((g.number(), tables)))
    }

    /// The newest published model file number (0 = none).
    pub fn model_generation(&self) -> u64 {
        self.control
            .block()
            .model_generation
            .load(Ordering::Acquire)
    }

    /// The pushed model if a new one was published since the last call
    /// (one atomic load when not): its number and the model file's bytes,
    /// empty meaning "no model" (classify with signatures only). A file
    /// that fails to load is reported once and skipped until a newer one
    /// appears.
    pub fn poll_model(&mut self) -> Result<Option<(u64, Vec<u8>)>, ShmError> {
        let current = self.model_generation();
        if current <= self.seen_model {
            return Ok(None);
        }
        let path = self.dir.model();
        // Mark it seen first: a failure is reported once.
        self.seen_model = current;
        let bytes = std::fs::read(&path).map_err(|e| ShmError::io("read", &path, e))?;
        let file = crate::model::decode_model_file(&bytes)?;
        // A newer file may already have replaced this number's (renamed
        // in place, its number not yet bumped): take it, it is complete,
        // and do not report it again when its number arrives.
        if file.generation < current {
            return Err(ShmError::GenerationMismatch {
                path,
                found: file.generation,
                expected: current,
            });
        }
        self.seen_model = file.generation;
        let payload = file.payload.to_vec();
        Ok(Some((file.generation, payload)))
    }

    /// Takes worker slot `index` (0..64) for acking; the slot starts at
    /// generation 0 and is freed when the handle drops.
    pub fn worker(&self, index: usize) -> Result<WorkerHandle, ShmError> {
        WorkerHandle::register(self.control.clone(), index, monotonic_ms())
    }

    /// Proves the engine is alive (for the control process's information).
    pub fn heartbeat_at(&self, now_ms: u64) {
        self.control
            .block()
            .engine_heartbeat_ms
            .store(now_ms, Ordering::Relaxed);
    }

    /// Pid of the publisher that last attached (0 = none yet).
    pub fn publisher_pid(&self) -> u32 {
        self.control.block().publisher_pid.load(Ordering::Relaxed) as u32
    }

    /// Monotonic ms of the publisher's last publish or heartbeat (0 = never).
    pub fn publisher_heartbeat_ms(&self) -> u64 {
        self.control
            .block()
            .publisher_heartbeat_ms
            .load(Ordering::Relaxed)
    }
}

/// Path of generation `generation` under `root` (for tools and tests).
pub fn generation_path(root: impl AsRef<Path>, generation: u64) -> PathBuf {
    root.as_ref()
        .join(crate::runtime_dir::TABLES_DIR)
        .join(format!("gen-{generation}.bin"))
}
