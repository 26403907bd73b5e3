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
