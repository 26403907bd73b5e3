//! A per-worker pool of fixed-size packet buffers, allocated once at start-up.
//!
//! Every buffer is `BUF_HEADROOM + BUF_DATA_ROOM` bytes; a packet's data starts
//! after the headroom so tunnels can prepend headers without copying. A
//! [`Packet`] is a small handle (pool, index, data offset, length) and gives
//! its buffer back to the pool when dropped. Per-packet metadata lives in a
//! side table indexed like the buffers, the way DPDK keeps it in `rte_mbuf`:
//! a later DPDK port can put an `rte_mbuf` behind the same handle (buffer
//! address, `data_off`, `data_len`, metadata) and free it with
//! `rte_pktmbuf_free` instead of pushing it back here.
//!
//! The pool is single-threaded on purpose (per-core ownership): neither the
//! pool nor its packets are `Send`, so a worker creates its pool on its own
//! thread and nothing on the packet path takes a lock or allocates.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::cell::UnsafeCell;
use std::ffi::c_void;
use std::marker::PhantomData;
use std::ptr::NonNull;

use super::batch::Batch;
use super::meta::PacketMeta;

/// Bytes reserved in front of the data of every fresh packet.
pub const BUF_HEADROOM: usize = 128;
/// Bytes of data room after the headroom: one full Ethernet frame with VLAN tags.
pub const BUF_DATA_ROOM: usize = 2048;
/// Bytes a packet can use: headroom plus data room.
pub const BUF_SIZE: usize = BUF_HEADROOM + BUF_DATA_ROOM;
/// Metadata slot in front of each buffer (like the `rte_mbuf` header in
/// front of its data), so reaching it needs no lookup through the pool.
pub const BUF_META_ROOM: usize = 64;
const META_ROOM: usize = BUF_META_ROOM;
/// Distance between two buffers in the pool's memory (cache-line multiple).
const BUF_STRIDE: usize = META_ROOM + BUF_SIZE;
const _: () = assert!(std::mem::size_of::<PacketMeta>() <= META_ROOM);
const _: () = assert!(std::mem::align_of::<PacketMeta>() <= 64);
const _: () = assert!(BUF_STRIDE.is_multiple_of(64));

/// Bit of `Packet::idx` saying the frame's TCP/UDP checksum is known to be
/// right (see [`Packet::l4_csum_ok`]); the other bits are the buffer index.
/// Held in the handle, not the metadata, so that no stale value from a
/// buffer's previous life can survive: every handle starts without it.
const CSUM_OK: u32 = 1 << 31;
/// `Packet::idx` of a buffer of an external allocator (not in a free list).
const EXTERNAL_IDX: u32 = !CSUM_OK;

/// Buffers a pool takes from an outside allocator (a DPDK mempool whose
/// mbufs have a [`BUF_META_ROOM`]-byte private area and [`BUF_SIZE`] bytes
/// of buffer) instead of its own memory. Each buffer is [`BUF_SIZE`] bytes,
/// 64-byte aligned, with its metadata slot right in front of it.
#[derive(Clone, Copy, Debug)]
pub struct ExternalBuffers {
    /// The allocator's handle, passed back to `alloc` and `free`.
    pub ctx: *mut c_void,
    /// Takes a buffer and returns its first byte, or null when exhausted.
    pub alloc: unsafe fn(ctx: *mut c_void) -> *mut u8,
    /// Gives a buffer back.
    pub free: unsafe fn(ctx: *mut c_void, buf: NonNull<u8>),
}

/// A packet handed out of the pool's ownership ([`Packet::into_raw`]).
#[derive(Clone, Copy, Debug)]
pub struct RawPacket {
    /// The buffer's first byte.
    pub buf: NonNull<u8>,
    /// Offset of the data in the buffer.
    pub head: u16,
    /// Length of the data.
    pub len: u16,
}

struct PoolInner {
    mem: NonNull<u8>,
    /// None for a pool of external buffers (it owns no memory itself).
    layout: Option<Layout>,
    external: Option<ExternalBuffers>,
    nbufs: u32,
    free: UnsafeCell<Vec<u32>>,
    outstanding: UnsafeCell<u32>,
    /// Set when the [`PacketPool`] handle is dropped while packets are still
    /// out: the last packet to come back frees the memory.
    orphaned: UnsafeCell<bool>,
}

impl Drop for PoolInner {
    fn drop(&mut self) {
        if let Some(layout) = self.layout {
            // SAFETY: `mem` was allocated in `PacketPool::new` with `layout`.
            unsafe { dealloc(self.mem.as_ptr(), layout) };
        }
    }
}

/// The pool handle a worker owns.
pub struct PacketPool {
    inner: NonNull<PoolInner>,
    _not_send: PhantomData<*mut u8>,
}

impl std::fmt::Debug for PacketPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PacketPool")
            .field("capacity", &self.capacity())
            .field("available", &self.available())
            .finish()
    }
}

impl PacketPool {
    /// Allocates `nbufs` buffers up front (zeroed pages, touched lazily).
    /// This is the only allocation the pool ever makes.
    pub fn new(nbufs: u32) -> Self {
        assert!(nbufs > 0, "a packet pool needs at least one buffer");
        assert!(
            nbufs < EXTERNAL_IDX,
            "buffer indices leave the top bit free"
        );
        let layout = Layout::from_size_align(nbufs as usize * BUF_STRIDE, 64)
            .expect("pool size fits in memory");
        // SAFETY: the layout has a non-zero size.
        let mem = unsafe { alloc_zeroed(layout) };
        let Some(mem) = NonNull::new(mem) else {
            std::alloc::handle_alloc_error(layout);
        };
        // Reverse order so the first allocations hand out low indices.
        let free: Vec<u32> = (0..nbufs).rev().collect();
        let inner = Box::new(PoolInner {
            mem,
            layout: Some(layout),
            external: None,
            nbufs,
            free: UnsafeCell::new(free),
            outstanding: UnsafeCell::new(0),
            orphaned: UnsafeCell::new(false),
        });
        PacketPool {
            inner: NonNull::from(Box::leak(inner)),
            _not_send: PhantomData,
        }
    }

    /// A pool whose buffers come from `ext` (e.g. DPDK mbufs, so received
    /// frames enter the pipeline and leave it without a copy). `nbufs` is
    /// what [`PacketPool::capacity`] reports; the allocator has the last word.
    pub fn with_external(ext: ExternalBuffers, nbufs: u32) -> Self {
        let inner = Box::new(PoolInner {
            mem: NonNull::dangling(),
            layout: None,
            external: Some(ext),
            nbufs,
            free: UnsafeCell::new(Vec::new()),
            outstanding: UnsafeCell::new(0),
            orphaned: UnsafeCell::new(false),
        });
        PacketPool {
            inner: NonNull::from(Box::leak(inner)),
            _not_send: PhantomData,
        }
    }

    /// The external allocator's handle, when the pool has one.
    pub fn external_ctx(&self) -> Option<*mut c_void> {
        self.inner().external.map(|e| e.ctx)
    }

    /// Wraps a buffer the external allocator handed out elsewhere (a frame a
    /// DPDK queue received) as a packet of this pool; metadata is reset.
    ///
    /// # Safety
    /// The pool must be external, `buf` one of its allocator's buffers that
    /// nothing else owns, and `head + len <= BUF_SIZE`.
    #[inline]
    pub unsafe fn adopt(&mut self, raw: RawPacket) -> Packet {
        let inner = self.inner();
        debug_assert!(inner.external.is_some());
        // SAFETY: single-threaded; see `alloc`.
        unsafe { *inner.outstanding.get() += 1 };
        // SAFETY: the caller guarantees a metadata slot in front of `buf`.
        unsafe {
            (raw.buf.as_ptr().sub(META_ROOM) as *mut PacketMeta).write(PacketMeta::default())
        };
        Packet {
            pool: self.inner,
            buf: raw.buf,
            idx: EXTERNAL_IDX,
            head: raw.head,
            len: raw.len,
            _not_send: PhantomData,
        }
    }

    /// [`adopt`](Self::adopt) straight into `batch`; false when it is full
    /// (the buffer is then not adopted). Unlike `adopt`, the metadata is
    /// left as it is (a received frame goes to the pipeline, whose fast path
    /// never reads it and which resets it for every packet it sets aside):
    /// that saves a write to a third cache line per packet. Writing the handle's fields in place
    /// avoids building it on the stack and copying it, a copy whose wide
    /// load stalled on the narrow stores before it (store forwarding) and
    /// cost most of the DPDK driver's receive time.
    ///
    /// # Safety
    /// As for [`adopt`](Self::adopt).
    #[inline(always)]
    pub unsafe fn adopt_into(&mut self, raw: RawPacket, batch: &mut Batch) -> bool {
        let inner = self.inner;
        // SAFETY: the init closure writes every field of the slot.
        let pushed = unsafe {
            batch.push_in_place(|slot| {
                std::ptr::addr_of_mut!((*slot).pool).write(inner);
                std::ptr::addr_of_mut!((*slot).buf).write(raw.buf);
                std::ptr::addr_of_mut!((*slot).idx).write(EXTERNAL_IDX);
                std::ptr::addr_of_mut!((*slot).head).write(raw.head);
                std::ptr::addr_of_mut!((*slot).len).write(raw.len);
                std::ptr::addr_of_mut!((*slot)._not_send).write(PhantomData);
            })
        };
        if pushed {
            let inner = self.inner();
            debug_assert!(inner.external.is_some());
            // SAFETY: single-threaded; see `alloc`.
            unsafe { *inner.outstanding.get() += 1 };
        }
        pushed
    }

    /// [`adopt_into`](Self::adopt_into) for a run of buffers: adopts what
    /// `next(k)` yields for `k = 0, 1, ...` until it yields None, at most
    /// `max` and never past the batch's room, and counts them out of the
    /// pool once. Returns how many were adopted (`next` is not called again
    /// after it yields None). The DPDK driver's per-burst receive path.
    ///
    /// # Safety
    /// As for [`adopt`](Self::adopt), for every buffer `next` yields.
    #[inline(always)]
    pub unsafe fn adopt_while(
        &mut self,
        batch: &mut Batch,
        max: usize,
        mut next: impl FnMut(usize) -> Option<RawPacket>,
    ) -> usize {
        let inner = self.inner;
        // SAFETY: the closure writes every field of the slot when it returns true.
        let n = unsafe {
            batch.extend_in_place(max, |k, slot| {
                let Some(raw) = next(k) else {
                    return false;
                };
                std::ptr::addr_of_mut!((*slot).pool).write(inner);
                std::ptr::addr_of_mut!((*slot).buf).write(raw.buf);
                std::ptr::addr_of_mut!((*slot).idx).write(EXTERNAL_IDX);
                std::ptr::addr_of_mut!((*slot).head).write(raw.head);
                std::ptr::addr_of_mut!((*slot).len).write(raw.len);
                std::ptr::addr_of_mut!((*slot)._not_send).write(PhantomData);
                true
            })
        };
        let inner = self.inner();
        debug_assert!(n == 0 || inner.external.is_some());
        // SAFETY: single-threaded; see `alloc`.
        unsafe { *inner.outstanding.get() += n as u32 };
        n
    }

    fn inner(&self) -> &PoolInner {
        // SAFETY: `inner` came from `Box::leak` and is freed only when both the
        // pool handle and every packet are gone; we hold the handle.
        unsafe { self.inner.as_ref() }
    }

    /// Number of buffers in the pool.
    pub fn capacity(&self) -> usize {
        self.inner().nbufs as usize
    }

    /// Number of buffers free right now.
    pub fn available(&self) -> usize {
        let inner = self.inner();
        if inner.external.is_some() {
            // SAFETY: single-threaded; see `alloc`.
            let out = unsafe { *inner.outstanding.get() };
            return (inner.nbufs as usize).saturating_sub(out as usize);
        }
        // SAFETY: single-threaded (the pool is !Send/!Sync); no `&mut` to the
        // free list is alive across this call.
        unsafe { (*inner.free.get()).len() }
    }

    /// Takes a buffer: empty data (`len == 0`) starting after the headroom,
    /// metadata reset. `None` when the pool is exhausted.
    #[inline]
    pub fn alloc(&mut self) -> Option<Packet> {
        let inner = self.inner();
        if let Some(ext) = inner.external {
            // SAFETY: the allocator contract of `ExternalBuffers`.
            let buf = NonNull::new(unsafe { (ext.alloc)(ext.ctx) })?;
            let raw = RawPacket {
                buf,
                head: BUF_HEADROOM as u16,
                len: 0,
            };
            // SAFETY: a fresh buffer of this pool's allocator, owned by no one.
            return Some(unsafe { self.adopt(raw) });
        }
        // SAFETY: single-threaded; the free list and counter are only touched
        // inside these short non-reentrant blocks.
        let idx = unsafe { (*inner.free.get()).pop()? };
        // SAFETY: as above.
        unsafe { *inner.outstanding.get() += 1 };
        // SAFETY: `idx < nbufs`, so the buffer and its metadata slot lie inside
        // the pool's memory; the slot is 64-byte aligned.
        let buf = unsafe {
            let slot = inner.mem.as_ptr().add(idx as usize * BUF_STRIDE);
            (slot as *mut PacketMeta).write(PacketMeta::default());
            NonNull::new_unchecked(slot.add(META_ROOM))
        };
        Some(Packet {
            pool: self.inner,
            buf,
            idx,
            head: BUF_HEADROOM as u16,
            len: 0,
            _not_send: PhantomData,
        })
    }

    /// Allocates a packet holding a copy of `data`.
    pub fn alloc_from(&mut self, data: &[u8]) -> Option<Packet> {
        let mut p = self.alloc()?;
        p.append(data.len())?;
        p.data_mut().copy_from_slice(data);
        Some(p)
    }
}

impl Drop for PacketPool {
    fn drop(&mut self) {
        let inner = self.inner.as_ptr();
        // SAFETY: single-threaded; see `alloc`.
        unsafe {
            if *(*inner).outstanding.get() == 0 {
                drop(Box::from_raw(inner));
            } else {
                *(*inner).orphaned.get() = true;
            }
        }
    }
}

/// A packet: a handle on one pool buffer. Returned to the pool on drop.
pub struct Packet {
    pool: NonNull<PoolInner>,
    buf: NonNull<u8>,
    idx: u32,
    head: u16,
    len: u16,
    _not_send: PhantomData<*mut u8>,
}

impl std::fmt::Debug for Packet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Packet")
            .field("idx", &self.idx)
            .field("head", &self.head)
            .field("len", &self.len)
            .finish()
    }
}

impl Packet {
    /// The packet's bytes.
    #[inline]
    pub fn data(&self) -> &[u8] {
        // SAFETY: `head + len <= BUF_SIZE` is kept by every method that moves
        // them, and this handle is the only owner of the buffer.
        unsafe {
            std::slice::from_raw_parts(self.buf.as_ptr().add(self.head as usize), self.len as usize)
        }
    }

    /// The packet's bytes, writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `data`; `&mut self` makes the access unique.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.buf.as_ptr().add(self.head as usize),
                self.len as usize,
            )
        }
    }

    /// Length of the data.
    #[inline]
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// True when the packet holds no data.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Free bytes in front of the data.
    #[inline]
    pub fn headroom(&self) -> usize {
        self.head as usize
    }

    /// Free bytes after the data.
    #[inline]
    pub fn tailroom(&self) -> usize {
        BUF_SIZE - self.head as usize - self.len as usize
    }

    /// Grows the data at the front by `n` bytes (uninitialised content is the
    /// buffer's old bytes) and returns the new front; `None` without headroom.
    #[inline]
    pub fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        if n > self.headroom() {
            return None;
        }
        self.head -= n as u16;
        self.len += n as u16;
        self.idx &= !CSUM_OK;
        Some(&mut self.data_mut()[..n])
    }

    /// Removes `n` bytes from the front (e.g. a header that was consumed).
    #[inline]
    pub fn strip_front(&mut self, n: usize) -> Option<()> {
        if n > self.len() {
            return None;
        }
        self.head += n as u16;
        self.len -= n as u16;
        self.idx &= !CSUM_OK;
        Some(())
    }

    /// Grows the data at the end by `n` bytes and returns the new tail.
    #[inline]
    pub fn append(&mut self, n: usize) -> Option<&mut [u8]> {
        if n > self.tailroom() {
            return None;
        }
        let old = self.len();
        self.len += n as u16;
        self.idx &= !CSUM_OK;
        Some(&mut self.data_mut()[old..])
    }

    /// Shortens the data to `len` bytes (no-op when already shorter).
    #[inline]
    pub fn truncate(&mut self, len: usize) {
        if len < self.len() {
            self.len = len as u16;
            self.idx &= !CSUM_OK;
        }
    }

    /// Sets the data length, keeping the start; fails past the buffer's end.
    #[inline]
    pub fn set_len(&mut self, len: usize) -> Option<()> {
        if self.head as usize + len > BUF_SIZE {
            return None;
        }
        self.len = len as u16;
        self.idx &= !CSUM_OK;
        Some(())
    }

    /// Empties the packet and puts the data start back after the headroom.
    #[inline]
    pub fn reset(&mut self) {
        self.head = BUF_HEADROOM as u16;
        self.len = 0;
        self.idx &= !CSUM_OK;
    }

    /// The whole buffer from the data start to its end (for ports that write
    /// a received frame straight in, then call [`Packet::set_len`]).
    #[inline]
    pub fn room_mut(&mut self) -> &mut [u8] {
        let room = BUF_SIZE - self.head as usize;
        self.idx &= !CSUM_OK;
        // SAFETY: the range lies inside this packet's buffer, owned uniquely.
        unsafe { std::slice::from_raw_parts_mut(self.buf.as_ptr().add(self.head as usize), room) }
    }

    /// Per-packet metadata (ports, offsets, pipeline decisions).
    #[inline]
    pub fn meta(&self) -> &PacketMeta {
        // SAFETY: the metadata slot right before the buffer belongs to this
        // packet while it lives; it was initialised in `alloc`.
        unsafe { &*(self.buf.as_ptr().sub(META_ROOM) as *const PacketMeta) }
    }

    /// Per-packet metadata, writable.
    #[inline]
    pub fn meta_mut(&mut self) -> &mut PacketMeta {
        // SAFETY: as in `meta`; `&mut self` makes the access unique.
        unsafe { &mut *(self.buf.as_ptr().sub(META_ROOM) as *mut PacketMeta) }
    }

    /// The buffer's index in its pool (stable for the packet's life;
    /// `0x7fff_ffff` for external buffers).
    #[inline]
    pub fn index(&self) -> u32 {
        self.idx & !CSUM_OK
    }

    /// The frame's TCP/UDP checksum is known to be right: a port set this
    /// on receipt because it computed the checksum itself or the kernel
    /// said it was verified. Rewrites that keep the checksum right
    /// (incremental updates through [`data_mut`](Self::data_mut)) keep it;
    /// anything that moves the data's start or end clears it. The TX
    /// coalescer then need not verify the frame again before the kernel
    /// computes a superframe's checksum afresh.
    #[inline]
    pub fn l4_csum_ok(&self) -> bool {
        self.idx & CSUM_OK != 0
    }

    /// Marks the frame's TCP/UDP checksum as right (see
    /// [`l4_csum_ok`](Self::l4_csum_ok)); only for a port that knows it.
    #[inline]
    pub fn set_l4_csum_ok(&mut self) {
        self.idx |= CSUM_OK;
    }

    /// Address of the buffer (tests check that a frame was never copied).
    #[inline]
    pub fn buffer_addr(&self) -> *const u8 {
        self.buf.as_ptr()
    }

    /// The external allocator's handle of the packet's pool, if it has one.
    #[inline]
    pub fn external_ctx(&self) -> Option<*mut c_void> {
        // SAFETY: the pool's bookkeeping outlives every packet.
        unsafe { (*self.pool.as_ptr()).external.map(|e| e.ctx) }
    }

    /// Hands the buffer out of the pool's ownership (to a DPDK queue, which
    /// frees it through the allocator). Only for external buffers: an own
    /// buffer is returned as `Err(self)`.
    #[inline]
    pub fn into_raw(self) -> Result<RawPacket, Packet> {
        if self.external_ctx().is_none() {
            return Err(self);
        }
        let raw = RawPacket {
            buf: self.buf,
            head: self.head,
            len: self.len,
        };
        let inner = self.pool.as_ptr();
        std::mem::forget(self);
        // SAFETY: as in `drop`, minus giving the buffer back.
        unsafe { release(inner) };
        Ok(raw)
    }
}

impl Batch {
    /// Takes every packet out in order, like [`Batch::take_each`], and
    /// hands each packet whose pool's external allocator handle is `ctx`
    /// out of the pool's ownership to `raw` as a [`RawPacket`] (as
    /// [`Packet::into_raw`] does), any other packet to `other` as it is;
    /// both get `state` and the packet's index. Buffers handed out are
    /// counted out of their pool once per run of consecutive packets of one
    /// pool, and a packet of the same pool as the one before it is
    /// recognised by its pool pointer alone (the DPDK driver's transmit
    /// path). If a callback panics, the packets not yet handed out are
    /// leaked, never dropped twice.
    #[inline(always)]
    pub fn take_each_raw<S>(
        &mut self,
        ctx: *mut c_void,
        state: &mut S,
        mut raw: impl FnMut(&mut S, usize, RawPacket),
        mut other: impl FnMut(&mut S, usize, Packet),
    ) {
        // The pool of the current run (its allocator handle is `ctx`) and
        // the buffers handed out of it and not yet counted.
        let mut run: Option<(NonNull<PoolInner>, u32)> = None;
        self.take_each(|i, p| {
            match run {
                Some((pool, ref mut n)) if pool == p.pool => *n += 1,
                _ if p.external_ctx() == Some(ctx) => {
                    if let Some((pool, n)) = run {
                        // SAFETY: `pool` is live: it still counts `n` packets out.
                        unsafe { release_n(pool.as_ptr(), n) };
                    }
                    run = Some((p.pool, 1));
                }
                _ => return other(state, i, p),
            }
            let r = RawPacket {
                buf: p.buf,
                head: p.head,
                len: p.len,
            };
            // Counted out with its run; the buffer is the caller's now.
            std::mem::forget(p);
            raw(state, i, r);
        });
        if let Some((pool, n)) = run {
            // SAFETY: as above.
            unsafe { release_n(pool.as_ptr(), n) };
        }
    }
}

/// [`release`] for `n` packets of one pool at once.
///
/// # Safety
/// `inner` is the packets' live pool, which counts at least `n` packets
/// out; single-threaded.
#[inline]
unsafe fn release_n(inner: *mut PoolInner, n: u32) {
    // SAFETY: the caller's contract.
    unsafe {
        let out = (*inner).outstanding.get();
        *out -= n;
        if *out == 0 && *(*inner).orphaned.get() {
            drop(Box::from_raw(inner));
        }
    }
}

/// Counts a packet out of its pool and frees the pool's bookkeeping when
/// it was the last one of an orphaned pool.
///
/// # Safety
/// `inner` is the packet's live pool; single-threaded.
#[inline]
unsafe fn release(inner: *mut PoolInner) {
    // SAFETY: the caller's contract.
    unsafe {
        let out = (*inner).outstanding.get();
        *out -= 1;
        if *out == 0 && *(*inner).orphaned.get() {
            drop(Box::from_raw(inner));
        }
    }
}

impl Drop for Packet {
    #[inline]
    fn drop(&mut self) {
        let inner = self.pool.as_ptr();
        // SAFETY: the pool memory outlives every packet (see `PacketPool::drop`);
        // single-threaded. The free list was created with capacity for every
        // buffer, so this push never reallocates.
        unsafe {
            match (*inner).external {
                Some(ext) => (ext.free)(ext.ctx, self.buf),
                None => (*(*inner).free.get()).push(self.idx & !CSUM_OK),
            }
            release(inner);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_checksum_lasts_until_the_data_moves() {
        let mut pool = PacketPool::new(2);
        let fresh = |pool: &mut PacketPool| {
            let mut p = pool.alloc_from(&[7u8; 100]).unwrap();
            assert!(!p.l4_csum_ok(), "a new handle vouches for nothing");
            p.set_l4_csum_ok();
            p
        };
        let mut p = fresh(&mut pool);
        // In-place rewrites (NAT's incremental updates) and no-op trims keep it.
        p.data_mut()[50] = 1;
        p.truncate(200);
        assert!(p.l4_csum_ok());
        let idx = p.index();
        assert!(idx < 2, "the flag is not part of the index");
        let ops: [fn(&mut Packet); 7] = [
            |p| assert!(p.prepend(4).is_some()),
            |p| assert!(p.strip_front(4).is_some()),
            |p| assert!(p.append(4).is_some()),
            |p| p.truncate(10),
            |p| assert!(p.set_len(100).is_some()),
            |p| p.reset(),
            |p| assert!(!p.room_mut().is_empty()),
        ];
        drop(p);
        for (k, op) in ops.iter().enumerate() {
            let mut p = fresh(&mut pool);
            op(&mut p);
            assert!(!p.l4_csum_ok(), "op {k} clears it");
        }
        // Buffers freed with the flag set went back under their own index.
        let a = pool.alloc().unwrap();
        let b = pool.alloc().unwrap();
        let mut got = [a.index(), b.index()];
        got.sort();
        assert_eq!(got, [0, 1]);
        assert!(pool.alloc().is_none());
    }

    #[test]
    fn alloc_and_return() {
        let mut pool = PacketPool::new(4);
        let a = pool.alloc().unwrap();
        let b = pool.alloc().unwrap();
        assert_eq!(pool.available(), 2);
        assert_eq!(a.headroom(), BUF_HEADROOM);
        assert_eq!(a.tailroom(), BUF_DATA_ROOM);
        drop(a);
        drop(b);
        assert_eq!(pool.available(), 4);
    }

    #[test]
    fn exhaustion_returns_none() {
        let mut pool = PacketPool::new(2);
        let _a = pool.alloc().unwrap();
        let _b = pool.alloc().unwrap();
        assert!(pool.alloc().is_none());
    }

    #[test]
    fn prepend_uses_headroom_and_strip_gives_it_back() {
        let mut pool = PacketPool::new(1);
        let mut p = pool.alloc_from(&[1, 2, 3]).unwrap();
        p.prepend(2).unwrap().copy_from_slice(&[9, 8]);
        assert_eq!(p.data(), &[9, 8, 1, 2, 3]);
        assert!(p.prepend(BUF_HEADROOM).is_none());
        p.strip_front(2).unwrap();
        assert_eq!(p.data(), &[1, 2, 3]);
        assert!(p.strip_front(4).is_none());
    }

    #[test]
    fn append_respects_buffer_end() {
        let mut pool = PacketPool::new(1);
        let mut p = pool.alloc().unwrap();
        assert!(p.append(BUF_DATA_ROOM).is_some());
        assert!(p.append(1).is_none());
        assert!(p.set_len(BUF_DATA_ROOM + 1).is_none());
    }

    #[test]
    fn metadata_is_reset_on_alloc() {
        let mut pool = PacketPool::new(1);
        let mut p = pool.alloc().unwrap();
        p.meta_mut().rx_port = 7;
        drop(p);
        let p = pool.alloc().unwrap();
        assert_eq!(p.meta().rx_port, 0);
    }

    /// An external allocator over a few heap buffers, counting what is out.
    struct TestAlloc {
        bufs: Vec<NonNull<u8>>,
        out: usize,
    }
    unsafe fn test_alloc(ctx: *mut c_void) -> *mut u8 {
        // SAFETY: `ctx` is the test's live TestAlloc.
        let a = unsafe { &mut *(ctx as *mut TestAlloc) };
        a.out += 1;
        a.bufs.pop().map_or(std::ptr::null_mut(), |b| b.as_ptr())
    }
    unsafe fn test_free(ctx: *mut c_void, buf: NonNull<u8>) {
        // SAFETY: as above.
        let a = unsafe { &mut *(ctx as *mut TestAlloc) };
        a.out -= 1;
        a.bufs.push(buf);
    }

    #[test]
    fn external_buffers_round_trip_without_copy() {
        let layout = Layout::from_size_align(2 * BUF_STRIDE, 64).unwrap();
        // SAFETY: non-zero size.
        let mem = unsafe { alloc_zeroed(layout) };
        // SAFETY: both offsets lie inside the allocation.
        let bufs = (0..2)
            .map(|i| NonNull::new(unsafe { mem.add(i * BUF_STRIDE + META_ROOM) }).unwrap())
            .collect();
        let mut a = TestAlloc { bufs, out: 0 };
        let ext = ExternalBuffers {
            ctx: &mut a as *mut TestAlloc as *mut c_void,
            alloc: test_alloc,
            free: test_free,
        };
        let mut pool = PacketPool::with_external(ext, 2);
        let mut p = pool.alloc_from(&[7; 60]).unwrap();
        p.meta_mut().rx_port = 3;
        let addr = p.buffer_addr();
        assert_eq!(p.external_ctx(), Some(ext.ctx));
        let raw = p.into_raw().unwrap();
        assert_eq!(pool.available(), 2, "handed out of the pool's count");
        // SAFETY: `raw` came from this pool's allocator and nothing owns it.
        let q = unsafe { pool.adopt(raw) };
        assert_eq!((q.buffer_addr(), q.data()), (addr, &[7u8; 60][..]));
        assert_eq!(q.meta().rx_port, 0, "metadata reset on adoption");
        drop(q);
        drop(pool);
        assert_eq!(a.out, 0);
        assert!(PacketPool::new(1).alloc().unwrap().into_raw().is_err());
        // SAFETY: allocated above with `layout`; no buffer is in use.
        unsafe { dealloc(mem, layout) };
    }

    /// The DPDK driver's burst paths on test buffers: `take_each_raw` hands
    /// the external pool's packets out as raw buffers (others as they
    /// are), `adopt_while` takes raw buffers back in one go, within `max`
    /// and the batch's room; no copy, and every buffer returns.
    #[test]
    fn bursts_hand_buffers_out_and_adopt_them_back() {
        const N: usize = 4;
        let layout = Layout::from_size_align(N * BUF_STRIDE, 64).unwrap();
        // SAFETY: non-zero size.
        let mem = unsafe { alloc_zeroed(layout) };
        // SAFETY: every offset lies inside the allocation.
        let bufs = (0..N)
            .map(|i| NonNull::new(unsafe { mem.add(i * BUF_STRIDE + META_ROOM) }).unwrap())
            .collect();
        let mut a = TestAlloc { bufs, out: 0 };
        let ext = ExternalBuffers {
            ctx: &mut a as *mut TestAlloc as *mut c_void,
            alloc: test_alloc,
            free: test_free,
        };
        let mut pool = PacketPool::with_external(ext, N as u32);
        let mut heap = PacketPool::new(2);
        let mut batch = Batch::new();
        let mut addrs = Vec::new();
        for i in 0..4u8 {
            let p = if i == 2 {
                heap.alloc_from(&[i; 64]).unwrap()
            } else {
                pool.alloc_from(&vec![i; 60 + usize::from(i)]).unwrap()
            };
            addrs.push(p.buffer_addr());
            batch.push(p).unwrap();
        }
        let mut raws: Vec<(usize, RawPacket)> = Vec::new();
        let mut others = Vec::new();
        batch.take_each_raw(
            ext.ctx,
            &mut (),
            |_, i, r| raws.push((i, r)),
            |_, i, p| others.push((i, p)),
        );
        assert!(batch.is_empty());
        assert_eq!(raws.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [0, 1, 3]);
        assert_eq!(others.len(), 1);
        assert_eq!(others[0].1.data(), &[2u8; 64][..]);
        assert_eq!(
            pool.available(),
            N,
            "raw buffers are out of the pool's count"
        );
        assert_eq!(a.out, 3, "but still allocated");
        // Back in, at most 2 per call, then the rest.
        let mut back = Batch::new();
        let mut it = raws.into_iter().map(|(_, r)| r);
        // SAFETY: each buffer came from this pool's allocator and nothing owns it.
        let n = unsafe { pool.adopt_while(&mut back, 2, |_| it.next()) };
        assert_eq!(n, 2);
        // SAFETY: as above.
        let m = unsafe { pool.adopt_while(&mut back, 8, |_| it.next()) };
        assert_eq!((m, back.len()), (1, 3));
        let got: Vec<(*const u8, Vec<u8>)> = back
            .packets_mut()
            .iter()
            .map(|p| (p.buffer_addr(), p.data().to_vec()))
            .collect();
        let want: Vec<(*const u8, Vec<u8>)> = [0u8, 1, 3]
            .iter()
            .map(|&i| (addrs[usize::from(i)], vec![i; 60 + usize::from(i)]))
            .collect();
        assert_eq!(got, want, "same buffers, same bytes");
        assert_eq!(pool.available(), N - 3);
        drop(back);
        drop(others);
        drop(pool);
        assert_eq!(a.out, 0, "every buffer went back to its allocator");
        // SAFETY: allocated above with `layout`; no buffer is in use.
        unsafe { dealloc(mem, layout) };
    }

    #[test]
    fn pool_dropped_before_packets_is_freed_by_last_packet() {
        let mut pool = PacketPool::new(2);
        let p = pool.alloc_from(&[1; 60]).unwrap();
        drop(pool);
        assert_eq!(p.data()[0], 1);
        drop(p);
    }
}
