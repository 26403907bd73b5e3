//! The mmap of a packet socket's RX ring, shared by both ring layouts
//! (`ring.rs`, `ring_v2.rs`): mapped once the kernel has allocated the ring,
//! unmapped on drop, and read at offsets the layouts compute.

use std::io;
use std::os::fd::RawFd;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU32;

use super::sys;

pub struct RingMap {
    ptr: NonNull<u8>,
    len: usize,
}

impl RingMap {
    /// Maps the `len` bytes of the RX ring configured on `fd`.
    pub fn new(fd: RawFd, len: usize) -> io::Result<Self> {
        // SAFETY: maps the ring the kernel allocated for this socket; the
        // mapping is owned by the returned value and unmapped on drop.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(sys::ctx("mmap of the RX ring", io::Error::last_os_error()));
        }
        Ok(RingMap {
            ptr: NonNull::new(p as *mut u8)
                .ok_or_else(|| io::Error::other("mmap returned NULL"))?,
            len,
        })
    }

    /// Address of byte `off` (callers keep `off` inside the mapping: the
    /// layouts check every offset read from the ring against their slot or
    /// block before using it).
    #[inline]
    pub fn at(&self, off: usize) -> *mut u8 {
        debug_assert!(off < self.len);
        // SAFETY: `off` lies inside the mapping (the callers' contract above).
        unsafe { self.ptr.as_ptr().add(off) }
    }

    /// A status word the kernel and user space hand over to each other.
    #[inline]
    pub fn status(&self, off: usize) -> &AtomicU32 {
        // SAFETY: a 4-aligned u32 inside the mapping (the layouts' status
        // words are), accessed by both sides only atomically; it lives as
        // long as `self`.
        unsafe { AtomicU32::from_ptr(self.at(off) as *mut u32) }
    }

    #[inline]
    pub fn u32_at(&self, off: usize) -> u32 {
        debug_assert!(off + 4 <= self.len);
        // SAFETY: inside the mapping; the region belongs to user space while
        // its status says so, which is when the layouts read it.
        unsafe { (self.at(off) as *const u32).read_unaligned() }
    }

    #[inline]
    pub fn u16_at(&self, off: usize) -> u16 {
        debug_assert!(off + 2 <= self.len);
        // SAFETY: as in `u32_at`.
        unsafe { (self.at(off) as *const u16).read_unaligned() }
    }
}

impl Drop for RingMap {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the region mapped in `new`; frame borrows
        // are tied to the ring that owns this mapping, so none outlives it.
        unsafe { libc::munmap(self.ptr.as_ptr() as *mut libc::c_void, self.len) };
    }
}
