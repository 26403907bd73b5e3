//! The mmap'd TPACKET_V2 RX ring: fixed frame slots the kernel hands over
//! one at a time, so a lone frame is seen as soon as it is written. (A
//! TPACKET_V3 block is only handed over when full or when its retire timer
//! fires, which adds up to a millisecond per crossing under light traffic.)
//!
//! Slots are sized for MTU frames. A larger frame (a GSO superframe, a jumbo)
//! is put in its slot truncated and flagged `TP_STATUS_COPY`, and queued
//! whole on the socket because `PACKET_COPY_THRESH` is set; the walker reads
//! it with `recvmsg` when it reaches that slot, so order is kept. The kernel
//! queues that copy before it publishes the slot.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU32, Ordering};

use super::offload::VNET_HDR_LEN;
use super::ring::RxFrame;
use super::ring_map::RingMap;
use super::sys;

/// Slot size: an MTU frame with its VLAN tag, the `tpacket2_hdr`, the
/// socket address and the vnet header fit with room to spare.
pub const SLOT_SIZE: u32 = 2048;
/// Slots per kernel block (the ring is allocated in blocks).
const SLOTS_PER_BLOCK: u32 = 32;
/// Socket receive buffer for superframes waiting beside the ring.
const COPY_RCVBUF: libc::c_int = 16 << 20;

// Offsets in `struct tpacket2_hdr`.
const TP_STATUS: usize = 0;
const TP_LEN: usize = 4;
const TP_SNAPLEN: usize = 8;
const TP_MAC: usize = 12;
const TP_VLAN_TCI: usize = 24;
const TP_VLAN_TPID: usize = 26;
const TP_HDR_LEN: usize = 32;

/// A TPACKET_V2 RX ring, the walker's slot, and the buffer for frames read
/// beside it.
pub struct RxRingV2 {
    fd: RawFd,
    map: RingMap,
    slots: usize,
    slot: usize,
    /// Vnet header and frame of the last `TP_STATUS_COPY` slot.
    big: Box<[u8]>,
    /// What `big` holds for the current slot, once read: a second `peek`
    /// must not read the next frame off the socket.
    big_frame: Option<Copied>,
}

/// A frame read beside the ring into `RxRingV2::big`.
#[derive(Clone, Copy)]
struct Copied {
    /// Bytes of it after the vnet header.
    len: usize,
    /// Its length on the wire.
    wire_len: u32,
    /// The tag the device stripped (TCI, TPID).
    vlan: Option<(u16, u16)>,
}

impl RxRingV2 {
    /// Configures `PACKET_RX_RING` with `slots` slots (rounded up to whole
    /// blocks) on `fd`, which must already have `PACKET_VERSION =
    /// TPACKET_V2` and `PACKET_VNET_HDR`, turns on the copy of oversize
    /// frames and maps the ring. `max_frame` is the largest frame to read.
    pub fn new(fd: RawFd, slots: u32, max_frame: usize) -> io::Result<Self> {
        let nblocks = slots.div_ceil(SLOTS_PER_BLOCK).max(1);
        let req = libc::tpacket_req {
            tp_block_size: SLOT_SIZE * SLOTS_PER_BLOCK,
            tp_block_nr: nblocks,
            tp_frame_size: SLOT_SIZE,
            tp_frame_nr: nblocks * SLOTS_PER_BLOCK,
        };
        let one: libc::c_int = 1;
        sys::set_packet_opt(fd, libc::PACKET_COPY_THRESH, &one, "PACKET_COPY_THRESH")?;
        let mut aux = one;
        sys::set_packet_opt(fd, libc::PACKET_AUXDATA, &aux, "PACKET_AUXDATA")?;
        aux = COPY_RCVBUF;
        // Past `net.core.rmem_max` needs CAP_NET_ADMIN; without it, take what
        // the sysctl allows (superframes beyond it are counted as truncated).
        for opt in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
            // SAFETY: a valid int option on our socket.
            let r = unsafe {
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    opt,
                    &aux as *const libc::c_int as *const libc::c_void,
                    size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            if r == 0 {
                break;
            }
            if opt == libc::SO_RCVBUF {
                return Err(sys::ctx("SO_RCVBUF", io::Error::last_os_error()));
            }
        }
        sys::set_packet_opt(fd, libc::PACKET_RX_RING, &req, "PACKET_RX_RING")?;
        let map = RingMap::new(
            fd,
            (SLOT_SIZE * SLOTS_PER_BLOCK) as usize * nblocks as usize,
        )?;
        Ok(RxRingV2 {
            fd,
            map,
            slots: (nblocks * SLOTS_PER_BLOCK) as usize,
            slot: 0,
            big: vec![0; VNET_HDR_LEN + max_frame].into_boxed_slice(),
            big_frame: None,
        })
    }

    /// Slots tile the mapping (blocks hold a whole number of them) and
    /// `slot < slots`, so every offset inside a slot lies inside it.
    fn slot_off(&self) -> usize {
        self.slot * SLOT_SIZE as usize
    }

    fn status(&self) -> &AtomicU32 {
        self.map.status(self.slot_off() + TP_STATUS)
    }

    fn read_u32(&self, at: usize) -> u32 {
        self.map.u32_at(self.slot_off() + at)
    }

    fn read_u16(&self, at: usize) -> u16 {
        self.map.u16_at(self.slot_off() + at)
    }

    /// The next frame, or `None` when the kernel has handed over nothing new.
    pub fn peek(&mut self) -> Option<RxFrame<'_>> {
        let status = self.status().load(Ordering::Acquire);
        if status & libc::TP_STATUS_USER == 0 {
            return None;
        }
        if status & libc::TP_STATUS_COPY != 0 {
            if self.big_frame.is_none() {
                self.big_frame = self.read_copy();
            }
            if let Some(c) = self.big_frame {
                let (vnet, data) = self.big.split_at(VNET_HDR_LEN);
                return Some(RxFrame {
                    data: &data[..c.len],
                    wire_len: c.wire_len,
                    vnet: vnet.try_into().expect("vnet header length"),
                    vlan: c.vlan,
                });
            }
            // The copy is gone (it cannot be, short of a kernel change): the
            // truncated slot below is counted as a truncated frame.
        }
        let snaplen = self.read_u32(TP_SNAPLEN) as usize;
        let mac = self.read_u16(TP_MAC) as usize;
        // The kernel's own layout guarantees this; checking keeps a corrupt
        // ring from turning into an out-of-bounds read.
        if mac < TP_HDR_LEN + VNET_HDR_LEN || mac + snaplen > SLOT_SIZE as usize {
            self.advance();
            return None;
        }
        let vlan = (status & libc::TP_STATUS_VLAN_VALID != 0).then(|| {
            let tpid = if status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                self.read_u16(TP_VLAN_TPID)
            } else {
                0x8100
            };
            (self.read_u16(TP_VLAN_TCI), tpid)
        });
        // SAFETY: the ranges were checked to lie inside the slot, which
        // belongs to user space until `advance` gives it back; the borrow of
        // `self` keeps `advance` from running while they live.
        let (data, vnet) = unsafe {
            let base = self.map.at(self.slot_off());
            (
                std::slice::from_raw_parts(base.add(mac), snaplen),
                &*(base.add(mac - VNET_HDR_LEN) as *const [u8; VNET_HDR_LEN]),
            )
        };
        Some(RxFrame {
            data,
            wire_len: self.read_u32(TP_LEN),
            vnet,
            vlan,
        })
    }

    /// Reads the whole frame of a `TP_STATUS_COPY` slot into `big`.
    fn read_copy(&mut self) -> Option<Copied> {
        let mut iov = libc::iovec {
            iov_base: self.big.as_mut_ptr() as *mut libc::c_void,
            iov_len: self.big.len(),
        };
        // Room for one `tpacket_auxdata` control message.
        let mut cbuf = [0u64; 8];
        // SAFETY: all-zero is a valid `msghdr`.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = size_of_val(&cbuf);
        // SAFETY: `msg` points at live buffers of the sizes given.
        let n = unsafe { libc::recvmsg(self.fd, &mut msg, libc::MSG_DONTWAIT | libc::MSG_TRUNC) };
        if n < VNET_HDR_LEN as isize {
            return None;
        }
        let whole = n as usize - VNET_HDR_LEN;
        let len = whole.min(self.big.len() - VNET_HDR_LEN);
        let mut vlan = None;
        // SAFETY: the CMSG_* walk stays inside `cbuf`, as the kernel filled it.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_PACKET && (*c).cmsg_type == libc::PACKET_AUXDATA {
                    let aux = (libc::CMSG_DATA(c) as *const libc::tpacket_auxdata).read_unaligned();
                    if aux.tp_status & libc::TP_STATUS_VLAN_VALID != 0 {
                        let tpid = if aux.tp_status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                            aux.tp_vlan_tpid
                        } else {
                            0x8100
                        };
                        vlan = Some((aux.tp_vlan_tci, tpid));
                    }
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        Some(Copied {
            len,
            wire_len: whole as u32,
            vlan,
        })
    }

    /// Consumes the frame `peek` returned: gives its slot back to the kernel.
    pub fn advance(&mut self) {
        self.status()
            .store(libc::TP_STATUS_KERNEL, Ordering::Release);
        self.slot = (self.slot + 1) % self.slots;
        self.big_frame = None;
    }
}
