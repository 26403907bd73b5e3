//! A file mapped shared and read-write, created fully initialised or
//! attached if it exists: the creator fills a temp file and `link`s it into
//! place, so no process ever maps a half-initialised file, and whichever
//! process comes first creates it.

use std::fs::OpenOptions;
use std::path::Path;

use memmap2::MmapMut;

use crate::error::ShmError;
use crate::runtime_dir::{create_private, sync_dir, temp_path};

/// A shared read-write mapping of a whole file.
#[derive(Debug)]
pub(crate) struct SharedFile {
    map: MmapMut,
    /// (device, inode) of the file mapped, to notice replacement.
    pub(crate) id: (u64, u64),
}

fn file_id(meta: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

impl SharedFile {
    /// Maps `path`, creating it with `len` bytes initialised by `init` when
    /// it does not exist. With `replace`, an existing file is replaced
    /// (rename) instead of attached.
    pub(crate) fn create_or_attach(
        path: &Path,
        len: usize,
        replace: bool,
        init: impl FnOnce(&mut [u8]),
    ) -> Result<(Self, bool), ShmError> {
        if !replace {
            match Self::attach(path) {
                Ok(f) => return Ok((f, false)),
                Err(ShmError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        let tmp = temp_path(path);
        let file = create_private(&tmp)?;
        let result = (|| {
            file.set_len(len as u64)
                .map_err(|e| ShmError::io("truncate", &tmp, e))?;
            // SAFETY: a private temp file nobody else knows of yet; the
            // mapping lives in `SharedFile` and the file length is fixed.
            let mut map =
                unsafe { MmapMut::map_mut(&file) }.map_err(|e| ShmError::io("mmap", &tmp, e))?;
            init(&mut map[..]);
            map.flush().map_err(|e| ShmError::io("msync", &tmp, e))?;
            let meta = file.metadata().map_err(|e| ShmError::io("stat", &tmp, e))?;
            let placed = if replace {
                std::fs::rename(&tmp, path).map_err(|e| ShmError::io("rename", path, e))?;
                true
            } else {
                match std::fs::hard_link(&tmp, path) {
                    Ok(()) => true,
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
                    Err(e) => return Err(ShmError::io("link", path, e)),
                }
            };
            Ok((map, file_id(&meta), placed))
        })();
        let _ = std::fs::remove_file(&tmp);
        let (map, id, placed) = result?;
        if let Some(parent) = path.parent() {
            sync_dir(parent)?;
        }
        if placed {
            Ok((SharedFile { map, id }, true))
        } else {
            // Another process created it between our attach and link.
            Ok((Self::attach(path)?, false))
        }
    }

    /// Maps an existing file.
    pub(crate) fn attach(path: &Path) -> Result<Self, ShmError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| ShmError::io("open", path, e))?;
        let meta = file.metadata().map_err(|e| ShmError::io("stat", path, e))?;
        // SAFETY: shared memory with another process: we only ever access
        // it through atomics or fields that are immutable after creation
        // (written before the file was linked into place).
        let map = unsafe { MmapMut::map_mut(&file) }.map_err(|e| ShmError::io("mmap", path, e))?;
        Ok(SharedFile {
            map,
            id: file_id(&meta),
        })
    }

    /// The mapped bytes' start (page aligned).
    pub(crate) fn as_ptr(&self) -> *const u8 {
        self.map.as_ptr()
    }

    /// Length of the mapping.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

/// (device, inode) of the file now at `path`, if any.
pub(crate) fn path_id(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| file_id(&m))
}
