//! Engine buffers that are mbufs: the shared mempool's mbufs have a private
//! area of `BUF_META_ROOM` bytes and `BUF_SIZE` bytes of buffer, so an mbuf
//! seen from the engine is a `Packet` buffer with its metadata slot in front
//! (`buf = mbuf + MBUF_TO_BUF`, head = `data_off`, length = `data_len`).

use std::ffi::c_void;
use std::ptr::NonNull;

use patronus_dpdk_sys as sys;
use sys::mbuf_fields as f;

use crate::buffer::RawPacket;

use super::device::MBUF_TO_BUF;

/// `ExternalBuffers::alloc` over a mempool (`ctx`): a fresh mbuf's buffer.
///
/// # Safety
/// `ctx` is the shared mempool; the calling thread may use DPDK.
pub unsafe fn alloc_buffer(ctx: *mut c_void) -> *mut u8 {
    // SAFETY: the caller's contract.
    let m = unsafe { sys::patronus_pktmbuf_alloc(ctx.cast()) };
    if m.is_null() {
        return std::ptr::null_mut();
    }
    // SAFETY: `m` is a live mbuf of the shared mempool.
    unsafe { sys::patronus_pktmbuf_buf_addr(m) }.cast()
}

/// `ExternalBuffers::free`: gives the buffer's mbuf back to its mempool.
///
/// # Safety
/// `buf` is the buffer of a direct mbuf of the shared mempool, owned by the
/// caller.
pub unsafe fn free_buffer(_ctx: *mut c_void, buf: NonNull<u8>) {
    // SAFETY: the caller's contract; the mbuf starts MBUF_TO_BUF bytes before.
    unsafe { sys::patronus_pktmbuf_free(mbuf_of(buf)) };
}

/// The mbuf whose buffer is `buf`.
///
/// # Safety
/// `buf` is the buffer of a direct mbuf of the shared mempool.
#[inline]
pub unsafe fn mbuf_of(buf: NonNull<u8>) -> *mut sys::rte_mbuf {
    // SAFETY: the caller's contract: the header lies MBUF_TO_BUF bytes before.
    unsafe { buf.as_ptr().sub(MBUF_TO_BUF) }.cast()
}

/// The engine's view of a received mbuf, when it can be used as it is: a
/// single segment of the shared mempool (`pool`). None means copy it.
///
/// # Safety
/// `m` is a live mbuf owned by the caller.
#[inline]
pub unsafe fn as_raw(m: *mut sys::rte_mbuf, pool: *mut sys::rte_mempool) -> Option<RawPacket> {
    // SAFETY: the caller's contract; the fields are read inline.
    unsafe {
        if f::pool(m) != pool || f::nb_segs(m) != 1 {
            return None;
        }
        let buf = f::buf_addr(m);
        // A direct mbuf of our pool has its buffer right after its private area.
        if buf != m.cast::<u8>().add(MBUF_TO_BUF) {
            return None;
        }
        Some(RawPacket {
            buf: NonNull::new(buf)?,
            head: f::data_off(m),
            len: f::data_len(m),
        })
    }
}

/// Turns a packet handed out of the engine ([`RawPacket`]) back into its
/// mbuf, with data offset and lengths set for transmission.
///
/// # Safety
/// `raw` holds the buffer of a direct mbuf of the shared mempool.
#[inline]
pub unsafe fn to_mbuf(raw: RawPacket) -> *mut sys::rte_mbuf {
    // SAFETY: the caller's contract.
    unsafe {
        let m = mbuf_of(raw.buf);
        f::set_single(m, raw.head, raw.len);
        m
    }
}
