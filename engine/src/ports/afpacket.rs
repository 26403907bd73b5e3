//! The `afpacket` port: a Linux interface driven through AF_PACKET, with an
//! mmap'd RX ring (TPACKET_V2 slots, `ring_v2.rs`, by default; TPACKET_V3
//! blocks, `ring.rs`, on request), batched `sendmmsg` TX, software completion of
//! the kernel's checksum/GSO offloads, and PACKET_FANOUT across workers.
//!
//! Each queue (one per worker) is one socket: bound to the interface with
//! `ETH_P_ALL`, `PACKET_VNET_HDR` on (so offloaded frames come with their
//! `virtio_net_hdr`), `PACKET_IGNORE_OUTGOING` (the engine does not see what
//! it sends), `PACKET_QDISC_BYPASS` for TX. With several queues all sockets
//! join one `PACKET_FANOUT_HASH` group.
//!
//! Fanout hash: `fanout_demux_hash()` in net/packet/af_packet.c computes
//! `reciprocal_scale(__skb_get_hash_symmetric(skb), num)` (since Linux 4.8;
//! `__skb_get_hash_symmetric_net` in recent kernels), which dissects the flow
//! with the symmetric flow dissector and orders addresses and ports before
//! hashing (`__flow_hash_consistentify`). So the hash IS symmetric: both
//! directions of a TCP/UDP flow land on the same queue, which the per-worker
//! flow table relies on. The queue is the group member at the hash's index
//! in join order, so the workers open their queues in worker order
//! (`worker.rs`): member `i` of every port's group is then worker `i`, and a
//! flow's two directions (two ports, one hash) meet on one worker. The IPv4 fragments of one datagram are reassembled
//! first (`PACKET_FANOUT_FLAG_DEFRAG`) so they follow their flow too.

#[path = "afpacket/coalesce.rs"]
mod coalesce;
#[path = "afpacket/features.rs"]
mod features;
#[path = "afpacket/kernel_ingress.rs"]
mod kernel_ingress;
#[path = "afpacket/offload.rs"]
mod offload;
#[path = "afpacket/ring.rs"]
mod ring;
#[path = "afpacket/ring_map.rs"]
mod ring_map;
#[path = "afpacket/ring_v2.rs"]
mod ring_v2;
#[path = "afpacket/sys.rs"]
pub(super) mod sys;
#[cfg(test)]
#[path = "afpacket/tests.rs"]
mod tests;
#[path = "afpacket/tx.rs"]
mod tx;

use std::cell::Cell;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use super::{LinkInfo, Port, PortError, PortStats, TxDone};
use crate::buffer::{Batch, PacketPool};
use crate::config::{parse_mac, KernelIngress, PortConfig, RxRingKind};
use features::GsoSupport;
use kernel_ingress::KernelIngressDrop;
use offload::{VnetHdr, VNET_F_NEEDS_CSUM};
use ring::{RxFrame, RxRing};
use ring_v2::RxRingV2;

/// Default RX ring block: holds a 64 KiB GSO superframe with room to spare.
/// Block size × blocks is the ring's memory for either layout (a V2 ring
/// cuts the same memory into 2 KiB slots).
pub const DEFAULT_RING_BLOCK_SIZE: u32 = 1 << 17;
/// Default RX ring blocks per queue (V3). Many small blocks rather than a few big
/// ones: under light traffic the kernel retires a block every millisecond
/// however empty, so the block count is what bounds how long a descheduled
/// worker may be away before frames are lost (128 blocks ≈ 128 ms).
pub const DEFAULT_RING_BLOCKS: u32 = 128;
/// `link()` asks the kernel at most this often.
const LINK_REFRESH: Duration = Duration::from_secs(1);
/// Largest frame the kernel hands over (64 KiB GSO + headers + VLAN).
const MAX_FRAME: usize = 65536 + 256;

/// One worker's queue of an AF_PACKET port.
pub struct AfPacketPort {
    name: String,
    iface: String,
    ifindex: i32,
    // Field order matters for Drop: unmap the ring before closing the socket.
    ring: Rx,
    fd: OwnedFd,
    tx: tx::SendmmsgTx,
    mac_override: Option<[u8; 6]>,
    mtu_override: Option<u16>,
    link: Cell<(Instant, LinkInfo)>,
    /// Superframes the device segments itself (read at open and whenever
    /// `link` asks the kernel again).
    gso: Cell<GsoSupport>,
    rx_missed: Cell<u64>,
    rx_errors: u64,
    tx_errors: u64,
    gso_split: u64,
    /// Frames whose VLAN tag the device stripped are rebuilt here (allocated
    /// once at open).
    scratch: Box<[u8]>,
    /// The tc filter that keeps the kernel stack off the interface (queue 0).
    _kernel_drop: Option<KernelIngressDrop>,
}

/// The RX ring of either layout.
enum Rx {
    V3(RxRing),
    V2(RxRingV2),
}

impl Rx {
    #[inline]
    fn peek(&mut self) -> Option<RxFrame<'_>> {
        match self {
            Rx::V3(r) => r.peek(),
            Rx::V2(r) => r.peek(),
        }
    }

    #[inline]
    fn advance(&mut self) {
        match self {
            Rx::V3(r) => r.advance(),
            Rx::V2(r) => r.advance(),
        }
    }
}

/// Fanout group id from ifindex and process id, so two engines (or two ports)
/// never share a group. Groups are per network namespace and per device.
fn fanout_group_id(ifindex: i32) -> u16 {
    let h =
        (std::process::id().wrapping_mul(0x9E37_79B9)) ^ (ifindex as u32).wrapping_mul(0x85EB_CA6B);
    (h >> 16) as u16 ^ h as u16
}

impl AfPacketPort {
    /// Opens queue `queue` of `nqueues` on `cfg.iface`, bringing the
    /// interface up if it is down.
    pub fn open(cfg: &PortConfig, queue: usize, nqueues: usize) -> Result<Self, PortError> {
        let iface = cfg.iface.clone().unwrap_or_default();
        let err = |source: io::Error| PortError::Interface {
            port: cfg.name.clone(),
            iface: iface.clone(),
            source,
        };
        let other = |msg: String| PortError::Other {
            port: cfg.name.clone(),
            msg,
        };
        if iface.is_empty() {
            return Err(other("an afpacket port needs `iface`".into()));
        }
        let mac_override = cfg
            .mac
            .as_deref()
            .map(parse_mac)
            .transpose()
            .map_err(other)?;
        let block_size = cfg.ring_block_size.unwrap_or(DEFAULT_RING_BLOCK_SIZE);
        let nblocks = cfg.ring_blocks.unwrap_or(DEFAULT_RING_BLOCKS);
        if !block_size.is_power_of_two() || block_size < 4096 || nblocks == 0 {
            return Err(other(format!(
                "ring_block_size {block_size} / ring_blocks {nblocks}: need a power of two ≥ 4096 and ≥ 1 block"
            )));
        }

        let ifindex = sys::ifindex(&iface).map_err(err)?;
        let fd = sys::packet_socket().map_err(err)?;
        let raw = fd.as_raw_fd();
        sys::if_up(raw, &iface).map_err(err)?;
        let kind = cfg.rx_ring.unwrap_or_default();
        let version = match kind {
            RxRingKind::V2 => libc::tpacket_versions::TPACKET_V2,
            RxRingKind::V3 => libc::tpacket_versions::TPACKET_V3,
        } as libc::c_int;
        sys::set_packet_opt(raw, libc::PACKET_VERSION, &version, "PACKET_VERSION").map_err(err)?;
        let one: libc::c_int = 1;
        sys::set_packet_opt(raw, libc::PACKET_VNET_HDR, &one, "PACKET_VNET_HDR").map_err(err)?;
        sys::set_packet_opt(
            raw,
            libc::PACKET_IGNORE_OUTGOING,
            &one,
            "PACKET_IGNORE_OUTGOING",
        )
        .map_err(err)?;
        sys::set_packet_opt(raw, libc::PACKET_QDISC_BYPASS, &one, "PACKET_QDISC_BYPASS")
            .map_err(err)?;
        let ring = match kind {
            RxRingKind::V3 => Rx::V3(RxRing::new(raw, block_size, nblocks).map_err(err)?),
            // The same ring memory, in MTU-sized slots.
            RxRingKind::V2 => {
                let slots = (u64::from(block_size) * u64::from(nblocks)
                    / u64::from(ring_v2::SLOT_SIZE))
                .clamp(64, 1 << 20) as u32;
                Rx::V2(RxRingV2::new(raw, slots, MAX_FRAME).map_err(err)?)
            }
        };
        sys::bind(raw, ifindex, sys::ETH_P_ALL_BE).map_err(err)?;
        if nqueues > 1 {
            // The group's own hook decides what members see, so
            // IGNORE_OUTGOING must be a fanout flag too (the socket option
            // alone does not apply once the socket is in a group).
            let flags = libc::PACKET_FANOUT_HASH
                | libc::PACKET_FANOUT_FLAG_DEFRAG
                | libc::PACKET_FANOUT_FLAG_IGNORE_OUTGOING;
            let arg: u32 = fanout_group_id(ifindex) as u32 | (flags << 16);
            sys::set_packet_opt(raw, libc::PACKET_FANOUT, &arg, "PACKET_FANOUT").map_err(err)?;
        }
        // Installed last so a failure above leaves nothing behind.
        let kernel_drop = if queue == 0 && cfg.kernel_ingress != Some(KernelIngress::Pass) {
            Some(KernelIngressDrop::install(&iface).map_err(err)?)
        } else {
            None
        };
        if mac_override.is_some() {
            // The engine answers for another MAC than the device's: it must
            // see frames addressed to it. Undone by the kernel on close.
            let mreq = libc::packet_mreq {
                mr_ifindex: ifindex,
                mr_type: libc::PACKET_MR_PROMISC as u16,
                mr_alen: 0,
                mr_address: [0; 8],
            };
            sys::set_packet_opt(raw, libc::PACKET_ADD_MEMBERSHIP, &mreq, "PACKET_MR_PROMISC")
                .map_err(err)?;
        }
        let port = AfPacketPort {
            _kernel_drop: kernel_drop,
            name: cfg.name.clone(),
            iface: iface.clone(),
            ifindex,
            ring,
            fd,
            tx: tx::SendmmsgTx::new(),
            mac_override,
            mtu_override: cfg.mtu,
            link: Cell::new((
                Instant::now(),
                LinkInfo {
                    up: false,
                    mtu: 1500,
                    mac: [0; 6],
                    speed_mbps: None,
                },
            )),
            gso: Cell::new(GsoSupport::default()),
            rx_missed: Cell::new(0),
            rx_errors: 0,
            tx_errors: 0,
            gso_split: 0,
            scratch: vec![0u8; MAX_FRAME + 4].into_boxed_slice(),
        };
        let info = port.query_link().map_err(err)?;
        port.link.set((Instant::now(), info));
        port.refresh_gso();
        Ok(port)
    }

    /// The kernel's interface index.
    pub fn ifindex(&self) -> i32 {
        self.ifindex
    }

    /// GSO superframes this queue has cut into segments (diagnostics).
    pub fn gso_frames_split(&self) -> u64 {
        self.gso_split
    }

    /// Frames this queue sent inside GSO superframes (diagnostics).
    pub fn frames_coalesced(&self) -> u64 {
        self.tx.frames_coalesced()
    }

    /// Messages (superframes and lone frames) this queue sent (diagnostics).
    pub fn tx_messages(&self) -> u64 {
        self.tx.messages_sent()
    }

    /// Superframes the TX coalescer may build now.
    pub fn gso_support(&self) -> GsoSupport {
        self.gso.get()
    }

    /// Re-reads the device's segmentation features; a device that does not
    /// report them gets no superframes (each would be dropped, see
    /// [`features`]).
    fn refresh_gso(&self) {
        let mut g = features::gso_support(self.fd.as_raw_fd(), &self.iface).unwrap_or_default();
        // Unknown limits: the kernel's default size, and the segment count
        // the coalescer never exceeds anyway.
        g.limits = features::gso_limits(self.ifindex).unwrap_or_default();
        self.gso.set(g);
    }

    fn query_link(&self) -> io::Result<LinkInfo> {
        let raw = self.fd.as_raw_fd();
        let flags = sys::if_flags(raw, &self.iface)?;
        let mtu = match self.mtu_override {
            Some(m) => m,
            None => sys::if_mtu(raw, &self.iface)?.min(u16::MAX as u32) as u16,
        };
        let mac = match self.mac_override {
            Some(m) => m,
            None => sys::if_mac(raw, &self.iface)?,
        };
        let up_running = (libc::IFF_UP | libc::IFF_RUNNING) as u32;
        Ok(LinkInfo {
            up: flags & up_running == up_running,
            mtu,
            mac,
            speed_mbps: None,
        })
    }
}

impl Port for AfPacketPort {
    fn name(&self) -> &str {
        &self.name
    }

    fn rx_burst(&mut self, pool: &mut PacketPool, batch: &mut Batch) -> usize {
        let start = batch.len();
        while batch.space() > 0 {
            let Some(f) = self.ring.peek() else { break };
            let vnet = VnetHdr::parse(f.vnet);
            let truncated = f.data.len() < f.wire_len as usize;
            let res = if truncated {
                Ok(offload::Delivered {
                    pkts: 0,
                    dropped: 1,
                })
            } else if let Some((tci, tpid)) = f.vlan {
                // Put the stripped tag back where it was on the wire.
                let n = f.data.len();
                if n < 12 || n + 4 > self.scratch.len() {
                    Ok(offload::Delivered {
                        pkts: 0,
                        dropped: 1,
                    })
                } else {
                    let s = &mut self.scratch[..n + 4];
                    s[..12].copy_from_slice(&f.data[..12]);
                    s[12..14].copy_from_slice(&tpid.to_be_bytes());
                    s[14..16].copy_from_slice(&tci.to_be_bytes());
                    s[16..].copy_from_slice(&f.data[12..]);
                    let mut v = vnet;
                    if v.flags & VNET_F_NEEDS_CSUM != 0 {
                        v.csum_start += 4;
                    }
                    offload::deliver(s, &v, pool, batch)
                }
            } else {
                offload::deliver(f.data, &vnet, pool, batch)
            };
            match res {
                Ok(d) => {
                    self.rx_errors += d.dropped as u64;
                    if vnet.gso_type != offload::VNET_GSO_NONE && d.pkts > 0 {
                        self.gso_split += 1;
                    }
                }
                // Not enough room for all segments: finish this batch and
                // come back to the same frame next call.
                Err(offload::NoRoom) => break,
            }
            self.ring.advance();
        }
        batch.len() - start
    }

    fn wait_fd(&self) -> Option<std::os::fd::RawFd> {
        Some(self.fd.as_raw_fd())
    }

    fn tx_burst(&mut self, batch: &mut Batch) -> TxDone {
        let (sent, failed) = self.tx.send(self.fd.as_raw_fd(), batch, self.gso.get());
        self.tx_errors += failed as u64;
        sent
    }

    fn link(&self) -> LinkInfo {
        let (at, info) = self.link.get();
        if at.elapsed() < LINK_REFRESH {
            return info;
        }
        // On a failed query keep the last known state, marked down.
        let fresh = self.query_link().unwrap_or(LinkInfo { up: false, ..info });
        self.link.set((Instant::now(), fresh));
        self.refresh_gso();
        fresh
    }

    fn stats(&self) -> PortStats {
        // PACKET_STATISTICS resets on every read: accumulate.
        if let Ok(st) = sys::packet_stats(&self.fd) {
            self.rx_missed
                .set(self.rx_missed.get() + st.tp_drops as u64);
        }
        PortStats {
            rx_missed: self.rx_missed.get(),
            rx_errors: self.rx_errors,
            tx_errors: self.tx_errors,
        }
    }
}
