//! Software dispatch for devices with fewer RX queues than workers (or no
//! RSS): the workers that read a device queue hash every frame by its
//! symmetric flow hash and hand it, as a raw mbuf, to the worker that owns
//! the flow through that worker's bounded inbox of the port.
//!
//! The inboxes are crossbeam `ArrayQueue`s rather than SP/SC `rte_ring`s:
//! with several RX queues (say 2 queues for 4 workers) several readers feed
//! one inbox, which an MPMC queue covers with one queue per (port, worker)
//! instead of one ring per (reader, owner) pair; it is lock-free, bounded,
//! preallocated, already a dependency and needs no FFI. Its price, one CAS
//! per frame instead of a bulk enqueue, is small beside the frame's trip
//! through the pipeline.

use std::ptr::NonNull;

use crossbeam_queue::ArrayQueue;
use patronus_dpdk_sys as sys;
use sys::mbuf_fields as f;

use crate::pipeline::flow_hash::symmetric;

/// Frames each worker's inbox of a port holds (as deep as a device's RX
/// ring, so an owner that falls behind by one ring's worth loses nothing);
/// the mempool is sized for every inbox full.
pub const HANDOFF_DEPTH: usize = 1024;

const ETH_HEADER: usize = 14;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
/// Fragment offset bits of the IPv4 flags/offset field.
const IPV4_FRAG_OFFSET_MASK: u16 = 0x1fff;

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// The symmetric flow hash of an Ethernet frame: Ethernet, up to two VLAN
/// tags, IPv4 addresses and protocol, with the TCP/UDP ports of unfragmented
/// packets and first fragments (later fragments carry no ports: they hash
/// with ports 0). Anything else (ARP, IPv6, truncated headers) is hash 0,
/// so it all goes to one worker.
pub fn flow_hash(frame: &[u8]) -> u32 {
    if frame.len() < ETH_HEADER {
        return 0;
    }
    let mut ethertype = be16(frame, 12);
    let mut l3 = ETH_HEADER;
    for _ in 0..2 {
        if ethertype != ETHERTYPE_VLAN && ethertype != ETHERTYPE_QINQ {
            break;
        }
        if frame.len() < l3 + 4 {
            return 0;
        }
        ethertype = be16(frame, l3 + 2);
        l3 += 4;
    }
    if ethertype != ETHERTYPE_IPV4 {
        return 0;
    }
    let ip = &frame[l3..];
    if ip.len() < 20 || ip[0] >> 4 != 4 {
        return 0;
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    if ihl < 20 || ip.len() < ihl {
        return 0;
    }
    let proto = ip[9];
    let src = u32::from_be_bytes([ip[12], ip[13], ip[14], ip[15]]);
    let dst = u32::from_be_bytes([ip[16], ip[17], ip[18], ip[19]]);
    let first = be16(ip, 6) & IPV4_FRAG_OFFSET_MASK == 0;
    let (sport, dport) =
        if first && (proto == IPPROTO_TCP || proto == IPPROTO_UDP) && ip.len() >= ihl + 4 {
            (be16(ip, ihl), be16(ip, ihl + 2))
        } else {
            (0, 0)
        };
    symmetric(src, dst, proto, sport, dport)
}

/// The worker (of `workers`) that owns flows of `hash`: hash 0 is worker 0.
#[inline]
pub fn owner(hash: u32, workers: u16) -> u16 {
    // Multiply-shift instead of a division: uniform over the hash's range.
    ((u64::from(hash) * u64::from(workers)) >> 32) as u16
}

/// The symmetric flow hash of a received mbuf's first segment (where the
/// headers are).
///
/// # Safety
/// `m` is a live mbuf owned by the caller.
#[inline]
pub unsafe fn mbuf_flow_hash(m: *const sys::rte_mbuf) -> u32 {
    // SAFETY: the caller's contract: the first segment's data lies at
    // buf_addr + data_off, data_len bytes long.
    let frame = unsafe {
        std::slice::from_raw_parts(
            f::buf_addr(m).add(usize::from(f::data_off(m))),
            usize::from(f::data_len(m)),
        )
    };
    flow_hash(frame)
}

/// A received mbuf on its way to its owner: only one thread has it at a time.
#[derive(Debug)]
pub struct MbufPtr(NonNull<sys::rte_mbuf>);
// SAFETY: an mbuf in an inbox is owned by the inbox alone; the thread that
// pops it becomes its only owner. Mbufs and their mempool may be used from
// any thread.
unsafe impl Send for MbufPtr {}

/// Every worker's inbox of one port.
#[derive(Debug)]
pub struct Handoff {
    inboxes: Box<[ArrayQueue<MbufPtr>]>,
}

impl Handoff {
    /// One inbox of [`HANDOFF_DEPTH`] per worker (allocated now, at start).
    pub fn new(workers: u16) -> Self {
        Handoff {
            inboxes: (0..workers)
                .map(|_| ArrayQueue::new(HANDOFF_DEPTH))
                .collect(),
        }
    }

    /// Hands `m` to `worker`; gives it back when the inbox is full.
    #[inline]
    pub fn push(
        &self,
        worker: u16,
        m: NonNull<sys::rte_mbuf>,
    ) -> Result<(), NonNull<sys::rte_mbuf>> {
        self.inboxes[usize::from(worker)]
            .push(MbufPtr(m))
            .map_err(|e| e.0)
    }

    /// The oldest mbuf in `worker`'s inbox, now the caller's.
    #[inline]
    pub fn pop(&self, worker: u16) -> Option<*mut sys::rte_mbuf> {
        self.inboxes[usize::from(worker)]
            .pop()
            .map(|m| m.0.as_ptr())
    }

    /// Frees whatever `worker`'s inbox holds (a worker closing its queue).
    pub fn free_inbox(&self, worker: u16) {
        while let Some(m) = self.pop(worker) {
            // SAFETY: popped, so ours alone; mbufs go back to their mempool.
            unsafe { sys::patronus_pktmbuf_free(m) };
        }
    }

    /// Frees what every inbox holds (between two engine starts).
    pub fn free_all(&self) {
        for w in 0..self.inboxes.len() {
            self.free_inbox(w as u16);
        }
    }
}

impl Drop for Handoff {
    fn drop(&mut self) {
        self.free_all();
    }
}
