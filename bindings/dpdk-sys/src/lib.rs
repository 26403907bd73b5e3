//! Raw FFI to the system's DPDK (22.11, found with `pkg-config libdpdk`):
//! bindgen's output for EAL, ethdev, mbuf pools and ring lookup, plus `patronus_*`
//! wrappers (a C shim) for DPDK's static-inline functions — burst RX/TX,
//! mbuf alloc/free, data pointers and lengths, ring bursts, `rte_errno`.
//!
//! Everything is `unsafe` and mirrors C exactly; the engine's `dpdk` port
//! driver is the safe layer. EAL can be initialised once per process.

#![allow(non_upper_case_globals, non_camel_case_types, non_snake_case)]
#![allow(unsafe_op_in_unsafe_fn)]
#![allow(clippy::all)]
#![allow(clippy::undocumented_unsafe_blocks)]
#![allow(missing_docs, rustdoc::all)]

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));

/// The symmetric Toeplitz key: 0x6d5a repeated. With it, a flow and its
/// reverse (src/dst swapped) hash to the same value, so both directions of a
/// connection land on the same RX queue (Woo & Park, 2012).
pub const SYMMETRIC_RSS_KEY: [u8; 40] = {
    let mut k = [0u8; 40];
    let mut i = 0;
    while i < 40 {
        k[i] = if i % 2 == 0 { 0x6d } else { 0x5a };
        i += 1;
    }
    k
};

/// Inline access to the `rte_mbuf` fields the per-packet path uses, at the
/// offsets the C compiler reported for the system's headers (the struct is
/// opaque to Rust). Same meaning as the C fields; no call per packet.
pub mod mbuf_fields {
    use super::*;

    #[inline(always)]
    unsafe fn field<T>(m: *const rte_mbuf, off: patronus_mbuf_layout) -> *mut T {
        m.cast::<u8>().add(off as usize).cast_mut().cast()
    }

    /// `m->buf_addr`.
    #[inline(always)]
    pub unsafe fn buf_addr(m: *const rte_mbuf) -> *mut u8 {
        field::<*mut u8>(m, PATRONUS_MBUF_OFF_BUF_ADDR).read()
    }
    /// `m->data_off` (the headroom in front of the data).
    #[inline(always)]
    pub unsafe fn data_off(m: *const rte_mbuf) -> u16 {
        field::<u16>(m, PATRONUS_MBUF_OFF_DATA_OFF).read()
    }
    /// `m->nb_segs`.
    #[inline(always)]
    pub unsafe fn nb_segs(m: *const rte_mbuf) -> u16 {
        field::<u16>(m, PATRONUS_MBUF_OFF_NB_SEGS).read()
    }
    /// `m->data_len`.
    #[inline(always)]
    pub unsafe fn data_len(m: *const rte_mbuf) -> u16 {
        field::<u16>(m, PATRONUS_MBUF_OFF_DATA_LEN).read()
    }
    /// `m->pool`.
    #[inline(always)]
    pub unsafe fn pool(m: *const rte_mbuf) -> *mut rte_mempool {
        field::<*mut rte_mempool>(m, PATRONUS_MBUF_OFF_POOL).read()
    }
    /// Sets `data_off`, and `data_len` = `pkt_len` = `len` (one segment).
    #[inline(always)]
    pub unsafe fn set_single(m: *mut rte_mbuf, data_off: u16, len: u16) {
        field::<u16>(m, PATRONUS_MBUF_OFF_DATA_OFF).write(data_off);
        field::<u16>(m, PATRONUS_MBUF_OFF_DATA_LEN).write(len);
        field::<u32>(m, PATRONUS_MBUF_OFF_PKT_LEN).write(u32::from(len));
    }
}
