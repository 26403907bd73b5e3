//! The runtime directory (default `/run/patronus`): created 0700, files
//! 0600, written atomically (temp file, fsync, rename/link, fsync dir).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::ShmError;

/// Default runtime directory.
pub const DEFAULT_RUNTIME_DIR: &str = "/run/patronus";
/// Name of the control file.
pub const CONTROL_FILE: &str = "control.shm";
/// Name of the counters file.
pub const COUNTERS_FILE: &str = "counters.shm";
/// Subdirectory of generation files.
pub const TABLES_DIR: &str = "tables";
/// Name of the NAT configuration file.
pub const NAT_FILE: &str = crate::nat::NAT_FILE;
/// Name of the WireGuard configuration file (holds private keys; 0600).
pub const WG_FILE: &str = crate::wg::WG_FILE;
/// Name of the classifier model file.
pub const MODEL_FILE: &str = crate::model::MODEL_FILE;
/// Unix socket the engine answers NAT session queries on.
pub const NAT_SOCKET: &str = "nat.sock";
/// The engine's flow query socket.
pub const FLOWS_SOCKET: &str = "flows.sock";
/// The engine's load-balancer query socket ([`crate::lb_query`]).
pub const LB_SOCKET: &str = "lb.sock";
/// Lock file held (flock) by the one live publisher.
pub const PUBLISHER_LOCK: &str = "publisher.lock";

/// Paths inside one runtime directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuntimeDir {
    root: PathBuf,
}

impl RuntimeDir {
    /// Uses `root`, creating it and `tables/` with mode 0700 when missing.
    pub fn create(root: impl AsRef<Path>) -> Result<Self, ShmError> {
        let dir = RuntimeDir {
            root: root.as_ref().to_path_buf(),
        };
        for d in [dir.root.clone(), dir.tables()] {
            match std::fs::DirBuilder::new().mode(0o700).create(&d) {
                Ok(()) => {
                    // The umask may have narrowed it; make it exactly 0700.
                    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700))
                        .map_err(|e| ShmError::io("chmod", &d, e))?;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    std::fs::DirBuilder::new()
                        .mode(0o700)
                        .recursive(true)
                        .create(&d)
                        .map_err(|e| ShmError::io("mkdir", &d, e))?;
                    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700))
                        .map_err(|e| ShmError::io("chmod", &d, e))?;
                }
                Err(e) => return Err(ShmError::io("mkdir", &d, e)),
            }
        }
        Ok(dir)
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `tables/`.
    pub fn tables(&self) -> PathBuf {
        self.root.join(TABLES_DIR)
    }

    /// `control.shm`.
    pub fn control(&self) -> PathBuf {
        self.root.join(CONTROL_FILE)
    }

    /// `counters.shm`.
    pub fn counters(&self) -> PathBuf {
        self.root.join(COUNTERS_FILE)
    }

    /// `nat.bin`.
    pub fn nat(&self) -> PathBuf {
        self.root.join(NAT_FILE)
    }

    /// `wg.bin`.
    pub fn wg(&self) -> PathBuf {
        self.root.join(WG_FILE)
    }

    /// `model.bin`.
    pub fn model(&self) -> PathBuf {
        self.root.join(MODEL_FILE)
    }

    /// `lb.bin`.
    pub fn lb(&self) -> PathBuf {
        self.root.join(crate::lb::LB_FILE)
    }

    /// `route6.bin`.
    pub fn route6(&self) -> PathBuf {
        self.root.join(crate::route6::ROUTE6_FILE)
    }

    /// `lb.sock`.
    pub fn lb_socket(&self) -> PathBuf {
        self.root.join(LB_SOCKET)
    }

    /// `nat.sock`.
    pub fn nat_socket(&self) -> PathBuf {
        self.root.join(NAT_SOCKET)
    }

    /// `flows.sock`.
    pub fn flows_socket(&self) -> PathBuf {
        self.root.join(FLOWS_SOCKET)
    }

    /// `tables/gen-N.bin`.
    pub fn generation(&self, generation: u64) -> PathBuf {
        self.tables().join(format!("gen-{generation}.bin"))
    }

    /// Generation numbers of the `gen-N.bin` files present, sorted.
    pub fn list_generations(&self) -> Result<Vec<u64>, ShmError> {
        let dir = self.tables();
        let mut out = Vec::new();
        let rd = std::fs::read_dir(&dir).map_err(|e| ShmError::io("readdir", &dir, e))?;
        for entry in rd {
            let entry = entry.map_err(|e| ShmError::io("readdir", &dir, e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(n) = name
                .strip_prefix("gen-")
                .and_then(|s| s.strip_suffix(".bin"))
                .and_then(|s| s.parse::<u64>().ok())
            {
                out.push(n);
            }
        }
        out.sort_unstable();
        Ok(out)
    }
}

/// A unique temporary name next to `path`.
pub(crate) fn temp_path(path: &Path) -> PathBuf {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    path.with_file_name(format!(".{name}.tmp.{}.{seq}", std::process::id()))
}

/// Creates a new file with mode 0600 (refusing to reuse one).
pub(crate) fn create_private(path: &Path) -> Result<File, ShmError> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| ShmError::io("create", path, e))?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(|e| ShmError::io("chmod", path, e))?;
    Ok(f)
}

/// fsyncs a directory so a rename or link in it is durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), ShmError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| ShmError::io("fsync", dir, e))
}

/// Writes `bytes` to `path` atomically: temp file 0600, fsync, rename,
/// fsync the directory. Readers see the old file or the whole new one.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ShmError> {
    let tmp = temp_path(path);
    let result = (|| {
        let mut f = create_private(&tmp)?;
        f.write_all(bytes)
            .map_err(|e| ShmError::io("write", &tmp, e))?;
        f.sync_all().map_err(|e| ShmError::io("fsync", &tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| ShmError::io("rename", path, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    if let Some(parent) = path.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Monotonic milliseconds (CLOCK_MONOTONIC: one clock for every process on
/// the machine, so heartbeats compare across processes).
pub fn monotonic_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always
    // exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}
