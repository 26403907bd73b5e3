//! An AF_XDP socket with its own UMEM and its four rings (fill, completion,
//! RX, TX), mapped from the kernel, and the lock-free single-producer /
//! single-consumer protocol on them (include/uapi/linux/if_xdp.h and
//! Documentation/networking/af_xdp.rst): the side that produces stores its
//! producer index with Release after writing entries, the side that consumes
//! loads it with Acquire before reading them, and vice versa for consumer.

use std::io;
use std::marker::PhantomData;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

use super::netdev::ctx;

/// An anonymous or file mapping, unmapped on drop.
pub struct Mmap {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mmap {
    fn new(len: usize, fd: Option<RawFd>, offset: u64, what: &str) -> io::Result<Self> {
        let (flags, fd) = match fd {
            Some(fd) => (libc::MAP_SHARED | libc::MAP_POPULATE, fd),
            None => (
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
            ),
        };
        // SAFETY: a fresh mapping at an address the kernel picks; nothing
        // else is affected.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                fd,
                offset as libc::off_t,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(ctx(what, io::Error::last_os_error()));
        }
        Ok(Mmap {
            // SAFETY: mmap succeeded, so `p` is not null.
            ptr: unsafe { NonNull::new_unchecked(p as *mut u8) },
            len,
        })
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: this mapping was created by `Mmap::new` and is unmapped once.
        unsafe { libc::munmap(self.ptr.as_ptr() as *mut libc::c_void, self.len) };
    }
}

/// Pointers into one mapped ring.
struct RingMap<T> {
    producer: *const AtomicU32,
    consumer: *const AtomicU32,
    flags: *const AtomicU32,
    desc: *mut T,
    mask: u32,
    _map: Mmap,
    _t: PhantomData<T>,
}

impl<T> RingMap<T> {
    fn new(
        fd: RawFd,
        off: &libc::xdp_ring_offset,
        size: u32,
        pgoff: u64,
        what: &str,
    ) -> io::Result<Self> {
        let len = off.desc as usize + size as usize * size_of::<T>();
        let map = Mmap::new(len, Some(fd), pgoff, what)?;
        let base = map.ptr.as_ptr();
        // SAFETY: the kernel's offsets lie inside the mapping it sized for
        // `size` entries; the indices are naturally aligned u32s.
        unsafe {
            Ok(RingMap {
                producer: base.add(off.producer as usize) as *const AtomicU32,
                consumer: base.add(off.consumer as usize) as *const AtomicU32,
                flags: base.add(off.flags as usize) as *const AtomicU32,
                desc: base.add(off.desc as usize) as *mut T,
                mask: size - 1,
                _map: map,
                _t: PhantomData,
            })
        }
    }

    fn producer(&self) -> &AtomicU32 {
        // SAFETY: points into the live mapping `_map`; shared with the kernel,
        // which is why it is only accessed atomically.
        unsafe { &*self.producer }
    }

    fn consumer(&self) -> &AtomicU32 {
        // SAFETY: as for `producer`.
        unsafe { &*self.consumer }
    }

    fn needs_wakeup(&self) -> bool {
        // SAFETY: as for `producer`.
        unsafe { &*self.flags }.load(Ordering::Relaxed) & libc::XDP_RING_NEED_WAKEUP != 0
    }
}

/// A ring this side produces into (fill, TX).
pub struct ProdRing<T: Copy> {
    map: RingMap<T>,
    size: u32,
    cached_prod: u32,
    cached_cons: u32,
}

impl<T: Copy> ProdRing<T> {
    fn new(map: RingMap<T>, size: u32) -> Self {
        let cached_prod = map.producer().load(Ordering::Relaxed);
        let cached_cons = map.consumer().load(Ordering::Acquire);
        ProdRing {
            map,
            size,
            cached_prod,
            cached_cons,
        }
    }

    /// Free slots (at least `want` if that many are free).
    pub fn free(&mut self, want: u32) -> u32 {
        let free = self.size - self.cached_prod.wrapping_sub(self.cached_cons);
        if free >= want {
            return free;
        }
        self.cached_cons = self.map.consumer().load(Ordering::Acquire);
        self.size - self.cached_prod.wrapping_sub(self.cached_cons)
    }

    /// Writes entry `i` (< the last `free()`) past the producer index.
    pub fn write(&mut self, i: u32, v: T) {
        let slot = (self.cached_prod.wrapping_add(i) & self.map.mask) as usize;
        // SAFETY: `slot <= mask`, inside the descriptor array; the slot is
        // free (the consumer has moved past it), so the kernel is not reading it.
        unsafe { self.map.desc.add(slot).write(v) };
    }

    /// Publishes `n` written entries.
    pub fn submit(&mut self, n: u32) {
        self.cached_prod = self.cached_prod.wrapping_add(n);
        self.map
            .producer()
            .store(self.cached_prod, Ordering::Release);
    }

    /// Entries the kernel has not consumed yet.
    pub fn outstanding(&mut self) -> u32 {
        self.cached_cons = self.map.consumer().load(Ordering::Acquire);
        self.cached_prod.wrapping_sub(self.cached_cons)
    }

    pub fn needs_wakeup(&self) -> bool {
        self.map.needs_wakeup()
    }
}

/// A ring this side consumes from (RX, completion).
pub struct ConsRing<T: Copy> {
    map: RingMap<T>,
    cached_prod: u32,
    cached_cons: u32,
}

impl<T: Copy> ConsRing<T> {
    fn new(map: RingMap<T>) -> Self {
        let cached_cons = map.consumer().load(Ordering::Relaxed);
        ConsRing {
            map,
            cached_prod: cached_cons,
            cached_cons,
        }
    }

    /// Entries ready to read, at most `max`.
    pub fn available(&mut self, max: u32) -> u32 {
        let mut n = self.cached_prod.wrapping_sub(self.cached_cons);
        if n < max {
            self.cached_prod = self.map.producer().load(Ordering::Acquire);
            n = self.cached_prod.wrapping_sub(self.cached_cons);
        }
        n.min(max)
    }

    /// Entry `i` (< the last `available()`) past the consumer index.
    pub fn read(&self, i: u32) -> T {
        let slot = (self.cached_cons.wrapping_add(i) & self.map.mask) as usize;
        // SAFETY: `slot <= mask`; the kernel published this entry (Acquire
        // load of the producer) and will not touch it until we release it.
        unsafe { self.map.desc.add(slot).read() }
    }

    /// Hands `n` read entries back to the kernel.
    pub fn release(&mut self, n: u32) {
        self.cached_cons = self.cached_cons.wrapping_add(n);
        self.map
            .consumer()
            .store(self.cached_cons, Ordering::Release);
    }
}

/// Geometry of a socket's UMEM and rings.
#[derive(Clone, Copy, Debug)]
pub struct XskGeometry {
    /// UMEM chunk size (a power of two, 2048..=page size).
    pub frame_size: u32,
    /// Frames in the UMEM.
    pub frames: u32,
    /// Entries of each ring (power of two).
    pub ring_size: u32,
}

/// One AF_XDP socket bound to one queue of an interface.
pub struct Xsk {
    // Rings are unmapped before the socket closes and the UMEM goes.
    pub rx: ConsRing<libc::xdp_desc>,
    pub tx: ProdRing<libc::xdp_desc>,
    pub fill: ProdRing<u64>,
    pub comp: ConsRing<u64>,
    fd: OwnedFd,
    umem: Mmap,
    pub geometry: XskGeometry,
    /// The kernel bound the socket in zero-copy mode.
    pub zerocopy: bool,
}

fn setsockopt<T>(fd: RawFd, name: libc::c_int, v: &T, what: &str) -> io::Result<()> {
    // SAFETY: `v` points to `size_of::<T>()` readable bytes for the call.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_XDP,
            name,
            v as *const T as *const libc::c_void,
            size_of::<T>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(ctx(what, io::Error::last_os_error()));
    }
    Ok(())
}

fn getsockopt<T>(fd: RawFd, name: libc::c_int, v: &mut T, what: &str) -> io::Result<()> {
    let mut len = size_of::<T>() as libc::socklen_t;
    // SAFETY: `v` and `len` are valid for writes of the sizes given.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_XDP,
            name,
            v as *mut T as *mut libc::c_void,
            &mut len,
        )
    };
    if r < 0 {
        return Err(ctx(what, io::Error::last_os_error()));
    }
    Ok(())
}

impl Xsk {
    /// Creates a socket with its UMEM and rings and binds it to `queue` of
    /// `ifindex` with `bind_flags` (XDP_COPY / XDP_ZEROCOPY / 0);
    /// XDP_USE_NEED_WAKEUP is always asked for.
    pub fn open(ifindex: i32, queue: u32, g: XskGeometry, bind_flags: u16) -> io::Result<Self> {
        // SAFETY: plain syscall creating a new descriptor.
        let raw = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                format!("cannot create an AF_XDP socket (needs root or CAP_NET_RAW+CAP_BPF, kernel ≥ 5.4): {e}"),
            ));
        }
        // SAFETY: `raw` is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let umem = Mmap::new(
            g.frame_size as usize * g.frames as usize,
            None,
            0,
            "UMEM mmap",
        )?;
        let reg = libc::xdp_umem_reg {
            addr: umem.ptr.as_ptr() as u64,
            len: umem.len as u64,
            chunk_size: g.frame_size,
            headroom: 0,
            flags: 0,
            tx_metadata_len: 0,
        };
        setsockopt(raw, libc::XDP_UMEM_REG, &reg, "XDP_UMEM_REG")?;
        for (opt, what) in [
            (libc::XDP_UMEM_FILL_RING, "XDP_UMEM_FILL_RING"),
            (libc::XDP_UMEM_COMPLETION_RING, "XDP_UMEM_COMPLETION_RING"),
            (libc::XDP_RX_RING, "XDP_RX_RING"),
            (libc::XDP_TX_RING, "XDP_TX_RING"),
        ] {
            setsockopt(raw, opt, &g.ring_size, what)?;
        }
        // SAFETY: all-zero is a valid value of this plain C struct.
        let mut off: libc::xdp_mmap_offsets = unsafe { std::mem::zeroed() };
        getsockopt(raw, libc::XDP_MMAP_OFFSETS, &mut off, "XDP_MMAP_OFFSETS")?;
        let n = g.ring_size;
        let fill = RingMap::<u64>::new(
            raw,
            &off.fr,
            n,
            libc::XDP_UMEM_PGOFF_FILL_RING,
            "fill ring mmap",
        )?;
        let comp = RingMap::<u64>::new(
            raw,
            &off.cr,
            n,
            libc::XDP_UMEM_PGOFF_COMPLETION_RING,
            "completion ring mmap",
        )?;
        let rx = RingMap::<libc::xdp_desc>::new(
            raw,
            &off.rx,
            n,
            libc::XDP_PGOFF_RX_RING as u64,
            "RX ring mmap",
        )?;
        let tx = RingMap::<libc::xdp_desc>::new(
            raw,
            &off.tx,
            n,
            libc::XDP_PGOFF_TX_RING as u64,
            "TX ring mmap",
        )?;
        let sa = libc::sockaddr_xdp {
            sxdp_family: libc::AF_XDP as u16,
            sxdp_flags: bind_flags | libc::XDP_USE_NEED_WAKEUP,
            sxdp_ifindex: ifindex as u32,
            sxdp_queue_id: queue,
            sxdp_shared_umem_fd: 0,
        };
        // SAFETY: `sa` is a valid sockaddr_xdp of the length passed.
        let r = unsafe {
            libc::bind(
                raw,
                &sa as *const libc::sockaddr_xdp as *const libc::sockaddr,
                size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(ctx("bind", io::Error::last_os_error()));
        }
        let mut opts = libc::xdp_options { flags: 0 };
        getsockopt(raw, libc::XDP_OPTIONS, &mut opts, "XDP_OPTIONS")?;
        Ok(Xsk {
            rx: ConsRing::new(rx),
            tx: ProdRing::new(tx, n),
            fill: ProdRing::new(fill, n),
            comp: ConsRing::new(comp),
            fd,
            umem,
            geometry: g,
            zerocopy: opts.flags & libc::XDP_OPTIONS_ZEROCOPY != 0,
        })
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The UMEM bytes of `len` at `addr`, or None if out of range.
    pub fn frame(&self, addr: u64, len: usize) -> Option<&[u8]> {
        let end = (addr as usize).checked_add(len)?;
        if end > self.umem.len {
            return None;
        }
        // SAFETY: `addr..end` lies inside the UMEM mapping, which lives as
        // long as `self`; the kernel wrote this frame before publishing its
        // RX descriptor and will not write it until it is back in the fill ring.
        Some(unsafe { std::slice::from_raw_parts(self.umem.ptr.as_ptr().add(addr as usize), len) })
    }

    /// The whole UMEM frame starting at `addr` (frame-aligned), for writing.
    pub fn frame_mut(&mut self, addr: u64) -> Option<&mut [u8]> {
        let fs = self.geometry.frame_size as usize;
        let end = (addr as usize).checked_add(fs)?;
        if end > self.umem.len {
            return None;
        }
        // SAFETY: inside the UMEM; the frame is on our TX free list, so the
        // kernel holds no descriptor to it; `&mut self` keeps it exclusive.
        Some(unsafe {
            std::slice::from_raw_parts_mut(self.umem.ptr.as_ptr().add(addr as usize), fs)
        })
    }

    /// `XDP_STATISTICS` (cumulative since bind).
    pub fn statistics(&self) -> io::Result<libc::xdp_statistics> {
        // SAFETY: all-zero is a valid value of this plain C struct.
        let mut st: libc::xdp_statistics = unsafe { std::mem::zeroed() };
        getsockopt(self.fd(), libc::XDP_STATISTICS, &mut st, "XDP_STATISTICS")?;
        Ok(st)
    }

    /// Asks the kernel to process the TX ring. Ok(false) = try again later.
    pub fn kick_tx(&self) -> io::Result<bool> {
        // SAFETY: a zero-length send with no buffer or address: the kernel
        // only looks at the TX ring.
        let r = unsafe {
            libc::sendto(
                self.fd(),
                std::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null(),
                0,
            )
        };
        if r >= 0 {
            return Ok(true);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::EBUSY) | Some(libc::ENOBUFS) => Ok(false),
            _ => Err(e),
        }
    }

    /// Wakes the driver to refill its RX queue from the fill ring.
    pub fn kick_rx(&self) {
        // SAFETY: a zero-length, non-blocking receive into no buffer.
        unsafe {
            libc::recvfrom(
                self.fd(),
                std::ptr::null_mut(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
    }
}
