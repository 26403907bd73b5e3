//! The mmap'd TPACKET_V3 RX ring: blocks of frames the kernel fills and hands
//! over whole; user space walks a block and gives it back, with no syscall.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU32, Ordering};

use super::offload::VNET_HDR_LEN;
use super::ring_map::RingMap;
use super::sys;

/// Block retire timeout: a partly filled block is handed over after this
/// long, so a trickle of traffic is not held back.
const RETIRE_TIMEOUT_MS: u32 = 1;
/// Nominal frame size the kernel wants for validation (V3 packs frames
/// tightly regardless).
const NOMINAL_FRAME_SIZE: u32 = 2048;

// Offsets in `struct tpacket_block_desc` (version, offset_to_priv, then
// `tpacket_hdr_v1`).
const BLK_STATUS: usize = 8;
const BLK_NUM_PKTS: usize = 12;
const BLK_FIRST_PKT: usize = 16;

// Offsets in `struct tpacket3_hdr`.
const TP_NEXT_OFFSET: usize = 0;
const TP_SNAPLEN: usize = 12;
const TP_LEN: usize = 16;
const TP_STATUS: usize = 20;
const TP_MAC: usize = 24;
const TP_VLAN_TCI: usize = 32;
const TP_VLAN_TPID: usize = 36;

/// One frame in the ring, borrowed until the walker advances.
#[derive(Debug)]
pub struct RxFrame<'a> {
    /// The captured bytes, Ethernet header first.
    pub data: &'a [u8],
    /// Length on the wire; more than `data.len()` when the block was too small.
    pub wire_len: u32,
    /// The `virtio_net_hdr` the kernel wrote in front of the frame.
    pub vnet: &'a [u8; VNET_HDR_LEN],
    /// The 802.1Q tag the device stripped (TCI, TPID), to put back.
    pub vlan: Option<(u16, u16)>,
}

/// A TPACKET_V3 RX ring and the walker's position in it.
pub struct RxRing {
    map: RingMap,
    block_size: usize,
    nblocks: usize,
    /// Block being walked (or waited for).
    block: usize,
    /// Frames of `block` not yet consumed (0: block not owned by us).
    left: u32,
    /// Offset in `block` of the next frame.
    off: usize,
}

impl RxRing {
    /// Configures `PACKET_RX_RING` on `fd` (which must already have
    /// `PACKET_VERSION = TPACKET_V3` and any `PACKET_VNET_HDR`) and maps it.
    pub fn new(fd: RawFd, block_size: u32, nblocks: u32) -> io::Result<Self> {
        let req = libc::tpacket_req3 {
            tp_block_size: block_size,
            tp_block_nr: nblocks,
            tp_frame_size: NOMINAL_FRAME_SIZE,
            tp_frame_nr: block_size / NOMINAL_FRAME_SIZE * nblocks,
            tp_retire_blk_tov: RETIRE_TIMEOUT_MS,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        sys::set_packet_opt(fd, libc::PACKET_RX_RING, &req, "PACKET_RX_RING")?;
        let map = RingMap::new(fd, block_size as usize * nblocks as usize)?;
        Ok(RxRing {
            map,
            block_size: block_size as usize,
            nblocks: nblocks as usize,
            block: 0,
            left: 0,
            off: 0,
        })
    }

    fn block_ptr(&self) -> *mut u8 {
        self.map.at(self.block * self.block_size)
    }

    fn block_status(&self) -> &AtomicU32 {
        self.map.status(self.block * self.block_size + BLK_STATUS)
    }

    /// Callers pass offsets inside the current block (checked against
    /// `block_size`); the block is owned by user space now.
    fn read_u32(&self, at: usize) -> u32 {
        self.map.u32_at(self.block * self.block_size + at)
    }

    fn read_u16(&self, at: usize) -> u16 {
        self.map.u16_at(self.block * self.block_size + at)
    }

    /// The next frame, or `None` when the kernel has handed over nothing new.
    pub fn peek(&mut self) -> Option<RxFrame<'_>> {
        while self.left == 0 {
            if self.block_status().load(Ordering::Acquire) & libc::TP_STATUS_USER == 0 {
                return None;
            }
            self.left = self.read_u32(BLK_NUM_PKTS);
            self.off = self.read_u32(BLK_FIRST_PKT) as usize;
            if self.left == 0 {
                self.release_block();
            }
        }
        let h = self.off;
        if h + 48 > self.block_size {
            self.release_block();
            return None;
        }
        let snaplen = self.read_u32(h + TP_SNAPLEN) as usize;
        let mac = self.read_u16(h + TP_MAC) as usize;
        let status = self.read_u32(h + TP_STATUS);
        // The kernel's own layout guarantees these; checking keeps a corrupt
        // ring from turning into an out-of-bounds read.
        if mac < VNET_HDR_LEN || h + mac + snaplen > self.block_size {
            self.release_block();
            return None;
        }
        let vlan = (status & libc::TP_STATUS_VLAN_VALID != 0).then(|| {
            let tpid = if status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                self.read_u16(h + TP_VLAN_TPID)
            } else {
                0x8100
            };
            (self.read_u32(h + TP_VLAN_TCI) as u16, tpid)
        });
        // SAFETY: the ranges were checked to lie inside the current block,
        // which belongs to user space until `advance` releases it; the
        // borrow of `self` keeps `advance` from running while they live.
        let (data, vnet) = unsafe {
            let base = self.block_ptr().add(h);
            (
                std::slice::from_raw_parts(base.add(mac), snaplen),
                &*(base.add(mac - VNET_HDR_LEN) as *const [u8; VNET_HDR_LEN]),
            )
        };
        Some(RxFrame {
            data,
            wire_len: self.read_u32(h + TP_LEN),
            vnet,
            vlan,
        })
    }

    /// Consumes the frame `peek` returned; gives the block back to the kernel
    /// after its last frame.
    pub fn advance(&mut self) {
        if self.left == 0 {
            return;
        }
        self.left -= 1;
        if self.left == 0 {
            self.release_block();
        } else {
            self.off += self.read_u32(self.off + TP_NEXT_OFFSET) as usize;
        }
    }

    fn release_block(&mut self) {
        self.block_status()
            .store(libc::TP_STATUS_KERNEL, Ordering::Release);
        self.left = 0;
        self.block = (self.block + 1) % self.nblocks;
    }
}
