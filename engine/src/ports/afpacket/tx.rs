//! Batched transmit: one `sendmmsg(2)` per burst on the port's socket, each
//! frame behind the zeroed `virtio_net_hdr` the socket expects.
//!
//! Why not a PACKET_TX_RING: measured on veth (64 B, one core, qdisc bypass)
//! the two cost the same within noise (~0.5 Mpps, ~0.7 µs of CPU per frame,
//! dominated by the kernel's skb and veth work), while `sendmmsg` tells
//! exactly which frames the kernel took, needs no second socket or ring
//! memory, and leaves nothing in flight after the call returns.

use std::os::fd::RawFd;

use super::offload::VNET_HDR_LEN;
use crate::buffer::{Batch, BATCH_SIZE};
use crate::ports::TxDone;

/// Zeroed vnet header: no checksum or GSO request, the frame is complete.
static ZERO_VNET: [u8; VNET_HDR_LEN] = [0; VNET_HDR_LEN];

/// Preallocated `mmsghdr`/`iovec` arrays for one burst.
pub struct SendmmsgTx {
    msgs: Box<[libc::mmsghdr]>,
    iovs: Box<[[libc::iovec; 2]]>,
}

impl SendmmsgTx {
    pub fn new() -> Self {
        let iov0 = libc::iovec {
            iov_base: ZERO_VNET.as_ptr() as *mut libc::c_void,
            iov_len: VNET_HDR_LEN,
        };
        let mut iovs: Box<[[libc::iovec; 2]]> = vec![
            [
                iov0,
                libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0,
                }
            ];
            BATCH_SIZE
        ]
        .into_boxed_slice();
        let msgs = iovs
            .iter_mut()
            .map(|iov| {
                // SAFETY: all-zero is a valid `mmsghdr` (null name and control).
                let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
                // The boxed slice never moves or grows, so this pointer stays valid.
                m.msg_hdr.msg_iov = iov.as_mut_ptr();
                m.msg_hdr.msg_iovlen = 2;
                m
            })
            .collect();
        SendmmsgTx { msgs, iovs }
    }

    /// Sends every packet of `batch` (leaving it empty); returns (sent, failed).
    pub fn send(&mut self, fd: RawFd, batch: &mut Batch) -> (TxDone, usize) {
        let n = batch.len();
        if n == 0 {
            return (TxDone::default(), 0);
        }
        for (iov, p) in self.iovs.iter_mut().zip(batch.packets()) {
            // The kernel only reads through this pointer.
            iov[1].iov_base = p.data().as_ptr() as *mut libc::c_void;
            iov[1].iov_len = p.len();
        }
        let (mut off, mut failed) = (0usize, 0usize);
        let mut sent = TxDone::default();
        while off < n {
            // SAFETY: `msgs[off..n]` are initialised headers whose iovecs point
            // into packets that `batch` keeps alive until after the call.
            let r = unsafe {
                libc::sendmmsg(
                    fd,
                    self.msgs.as_mut_ptr().add(off),
                    (n - off) as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if r > 0 {
                for iov in &self.iovs[off..off + r as usize] {
                    sent.bytes += iov[1].iov_len as u64;
                }
                off += r as usize;
                sent.packets += r as usize;
                continue;
            }
            let errno = std::io::Error::last_os_error().raw_os_error();
            if r < 0 && errno == Some(libc::EAGAIN) {
                // Socket buffer full: never block, drop the rest.
                failed += n - off;
                break;
            }
            // The first frame was refused (too big, device down, queue
            // drop): skip it and go on with the others.
            failed += 1;
            off += 1;
        }
        batch.clear();
        (sent, failed)
    }
}
