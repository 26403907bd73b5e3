//! The `afxdp` port: a Linux interface driven through AF_XDP sockets, one
//! per worker queue, fed by the driver's own XDP program.
//!
//! - The XDP program (`program.rs`, assembled in Rust and loaded through the
//!   raw bpf(2) syscall: no clang, libbpf or bpffs needed) redirects every
//!   frame to the socket of its RX queue through an XSKMAP, except the
//!   EtherTypes / IPv4 protocols listed in `[port.afxdp] kernel_ethertypes`
//!   / `kernel_ip_protocols`, which the kernel's stack gets (XDP_PASS). So by
//!   default everything on the interface is the engine's (it answers ARP
//!   itself), and the kernel sees nothing. Queue `q` of the port binds to
//!   RX queue `q` of the interface: the interface needs at least as many
//!   queues as the engine has workers; frames of queues beyond that go to
//!   the kernel.
//! - The program is attached as a BPF link (`attach.rs`) shared by the
//!   port's queues: detached when the last queue closes or the process dies.
//!   Native (driver) mode is tried first, then generic (`xdp_mode`).
//! - Each socket has its own UMEM: half the frames feed the fill ring, half
//!   serve TX. Frames are copied between the UMEM and the engine's
//!   `PacketPool` buffers (one memcpy each way), which keeps the pool the
//!   only buffer type the pipeline sees; the socket itself binds zero-copy
//!   where the driver allows (`bind`), else in copy mode, and says which.
//! - Partial TCP/UDP checksums from offloading Linux peers are completed on
//!   receive (`csum.rs`).
//! - Frames larger than a UMEM frame (GSO/GRO superframes) cannot cross an
//!   AF_XDP socket without multi-buffer support: the kernel drops them
//!   (`rx_missed`), or, up to 3840 B, the pool's 2048 B buffers refuse them
//!   (`rx_errors`). Native XDP never sees such frames (on veth the kernel
//!   turns the peer's GSO off while a program is attached); generic mode
//!   runs after GRO and sees whatever the sender built, so it needs GRO off
//!   on the interface and, on veth, TSO/GSO off on the peer.

#[path = "afxdp/attach.rs"]
mod attach;
#[path = "afxdp/bpf.rs"]
mod bpf;
#[path = "afxdp/csum.rs"]
mod csum;
#[path = "afxdp/netdev.rs"]
mod netdev;
#[path = "afxdp/program.rs"]
mod program;
#[cfg(test)]
#[path = "afxdp/tests.rs"]
mod tests;
#[path = "afxdp/xsk.rs"]
mod xsk;

use std::cell::Cell;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{LinkInfo, Port, PortError, PortStats, TxDone};
use crate::buffer::{Batch, PacketPool};
use crate::config::{parse_mac, AfXdpConfig, PortConfig, XskBindMode};
use attach::Attachment;
use netdev::Netdev;
use program::KernelShare;
use xsk::{Xsk, XskGeometry};

/// UMEM frame size: holds any frame the engine's buffers can (2048 B) after
/// the kernel's 256 B XDP headroom.
pub const FRAME_SIZE: u32 = 4096;
/// Default entries of each of the four rings (`[port.afxdp] ring_size`);
/// also the frames given to RX (all in the fill ring at start) and to TX.
pub const DEFAULT_RING_SIZE: u32 = 2048;
/// `link()` asks the kernel at most this often.
const LINK_REFRESH: Duration = Duration::from_secs(1);
/// Copy mode sends at most 32 frames per kick (TX_BATCH_SIZE in
/// net/xdp/xsk.c).
const FRAMES_PER_KICK: u32 = 32;

/// How a queue ended up bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BoundMode {
    /// XDP program in native (driver) mode, else generic (skb) mode.
    pub native_xdp: bool,
    /// Socket in zero-copy mode, else copy mode.
    pub zerocopy: bool,
}

/// Driver counters beyond [`PortStats`] (XDP_STATISTICS and our own).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XdpCounters {
    pub rx_dropped: u64,
    pub rx_invalid_descs: u64,
    pub tx_invalid_descs: u64,
    pub rx_ring_full: u64,
    pub rx_fill_ring_empty: u64,
    /// Partial TCP/UDP checksums completed on receive.
    pub csum_completed: u64,
}

/// One worker's queue of an AF_XDP port.
pub struct AfXdpPort {
    name: String,
    queue: u32,
    // Drop order: the socket closes before the program may be detached.
    xsk: Xsk,
    attachment: Arc<Attachment>,
    netdev: Netdev,
    /// UMEM frames free for TX (preallocated stack).
    tx_free: Vec<u64>,
    /// Descriptors left on the TX ring by the last kick.
    tx_unsent: bool,
    mac_override: Option<[u8; 6]>,
    mtu_override: Option<u16>,
    link: Cell<(Instant, LinkInfo)>,
    rx_errors: u64,
    tx_errors: u64,
    csum_completed: u64,
}

impl AfXdpPort {
    /// Opens queue `queue` of `nqueues` on `cfg.iface`: attaches the XDP
    /// program if this is the port's first queue, binds a socket to RX
    /// queue `queue` and registers it in the program's map.
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
            return Err(other("an afxdp port needs `iface`".into()));
        }
        let opts = cfg.afxdp.clone().unwrap_or_default();
        let mac_override = cfg
            .mac
            .as_deref()
            .map(parse_mac)
            .transpose()
            .map_err(other)?;
        let netdev = Netdev::new(&iface).map_err(err)?;
        let ifindex = netdev.ifindex().map_err(err)?;
        netdev.up().map_err(err)?;
        let rxq = netdev.rx_queues();
        if let Some(n) = rxq {
            if (n as usize) < nqueues {
                return Err(other(format!(
                    "{iface} has {n} RX queue(s) but the engine has {nqueues} workers: \
                     raise them (`ethtool -L {iface} combined {nqueues}`; for veth, create it \
                     with `numrxqueues {nqueues} numtxqueues {nqueues}`) or use fewer workers"
                )));
            }
            if queue == 0 && n as usize > nqueues {
                eprintln!(
                    "port {}: {iface} has {n} RX queues but {nqueues} worker(s): frames \
                     on queues {nqueues}..{n} go to the kernel, not the engine \
                     (`ethtool -L {iface} combined {nqueues}`)",
                    cfg.name
                );
            }
        }
        let entries = rxq.unwrap_or(0).max(nqueues as u32).max(1);
        let share = kernel_share(&opts);
        let attachment =
            attach::attach(&iface, ifindex, entries, opts.xdp_mode, &share).map_err(err)?;
        let ring = opts.ring_size.unwrap_or(DEFAULT_RING_SIZE);
        let g = XskGeometry {
            frame_size: FRAME_SIZE,
            frames: 2 * ring,
            ring_size: ring,
        };
        let q = queue as u32;
        let xsk = match opts.bind {
            XskBindMode::Copy => Xsk::open(ifindex, q, g, libc::XDP_COPY),
            XskBindMode::Zerocopy => Xsk::open(ifindex, q, g, libc::XDP_ZEROCOPY),
            // A failed bind leaves a socket in an unknown state: start over.
            XskBindMode::Auto => Xsk::open(ifindex, q, g, libc::XDP_ZEROCOPY)
                .or_else(|_| Xsk::open(ifindex, q, g, libc::XDP_COPY)),
        }
        .map_err(|e| {
            err(io::Error::new(
                e.kind(),
                format!("AF_XDP socket on queue {queue}: {e}"),
            ))
        })?;
        bpf::map_update_u32(&attachment.map, q, xsk.fd() as u32).map_err(|e| {
            err(io::Error::new(
                e.kind(),
                format!("registering the socket of queue {queue} in the XSKMAP: {e}"),
            ))
        })?;
        let mut port = AfXdpPort {
            name: cfg.name.clone(),
            queue: q,
            xsk,
            attachment,
            netdev,
            tx_free: Vec::with_capacity(ring as usize),
            tx_unsent: false,
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
            rx_errors: 0,
            tx_errors: 0,
            csum_completed: 0,
        };
        // Frames [0, ring) feed RX, the rest serve TX.
        let fill = port.xsk.fill.free(ring);
        for i in 0..fill {
            port.xsk.fill.write(i, i as u64 * FRAME_SIZE as u64);
        }
        port.xsk.fill.submit(fill);
        for i in (ring..2 * ring).rev() {
            port.tx_free.push(i as u64 * FRAME_SIZE as u64);
        }
        let info = port.query_link().map_err(err)?;
        port.link.set((Instant::now(), info));
        let mode = port.bound_mode();
        eprintln!(
            "port {}: AF_XDP on {iface} queue {queue}: XDP {} mode, socket in {} mode",
            cfg.name,
            if mode.native_xdp { "native" } else { "generic" },
            if mode.zerocopy { "zero-copy" } else { "copy" },
        );
        Ok(port)
    }

    /// How this queue is bound.
    pub fn bound_mode(&self) -> BoundMode {
        BoundMode {
            native_xdp: self.attachment.native,
            zerocopy: self.xsk.zerocopy,
        }
    }

    /// Every driver counter (reads XDP_STATISTICS).
    pub fn xdp_counters(&self) -> XdpCounters {
        let st = self.xsk.statistics().ok();
        XdpCounters {
            rx_dropped: st.map_or(0, |s| s.rx_dropped),
            rx_invalid_descs: st.map_or(0, |s| s.rx_invalid_descs),
            tx_invalid_descs: st.map_or(0, |s| s.tx_invalid_descs),
            rx_ring_full: st.map_or(0, |s| s.rx_ring_full),
            rx_fill_ring_empty: st.map_or(0, |s| s.rx_fill_ring_empty_descs),
            csum_completed: self.csum_completed,
        }
    }

    fn query_link(&self) -> io::Result<LinkInfo> {
        let flags = self.netdev.flags()?;
        let mtu = match self.mtu_override {
            Some(m) => m,
            None => self.netdev.mtu()?.min(u16::MAX as u32) as u16,
        };
        let mac = match self.mac_override {
            Some(m) => m,
            None => self.netdev.mac()?,
        };
        let up_running = (libc::IFF_UP | libc::IFF_RUNNING) as u32;
        Ok(LinkInfo {
            up: flags & up_running == up_running,
            mtu,
            mac,
            speed_mbps: None,
        })
    }

    /// Returns the frames the kernel has finished sending to the TX free list.
    fn reap_completions(&mut self) {
        let n = self.xsk.comp.available(self.xsk.geometry.ring_size);
        for i in 0..n {
            let addr = self.xsk.comp.read(i);
            self.tx_free.push(addr & !(FRAME_SIZE as u64 - 1));
        }
        self.xsk.comp.release(n);
    }

    /// Has the kernel process the TX ring (copy mode needs one kick per 32
    /// frames; zero-copy drivers only when they ask for it).
    fn kick_tx(&mut self) {
        self.tx_unsent = false;
        if !self.xsk.tx.needs_wakeup() {
            return;
        }
        let mut left = self.xsk.tx.outstanding();
        // Enough kicks for a full ring, never an unbounded loop.
        for _ in 0..=self.xsk.geometry.ring_size / FRAMES_PER_KICK {
            if left == 0 {
                return;
            }
            if self.xsk.kick_tx().is_err() {
                // Link down or similar: the descriptors stay queued.
                break;
            }
            let now = self.xsk.tx.outstanding();
            if now == left {
                break;
            }
            left = now;
        }
        self.tx_unsent = left > 0;
    }
}

fn kernel_share(o: &AfXdpConfig) -> KernelShare {
    KernelShare {
        ethertypes: o.kernel_ethertypes.clone(),
        ip_protocols: o.kernel_ip_protocols.clone(),
    }
}

impl Drop for AfXdpPort {
    fn drop(&mut self) {
        // Closing the socket would remove it from the map too; say it first
        // so the program stops redirecting to a socket that is going away.
        let _ = bpf::map_delete_u32(&self.attachment.map, self.queue);
    }
}

impl Port for AfXdpPort {
    fn name(&self) -> &str {
        &self.name
    }

    fn rx_burst(&mut self, pool: &mut PacketPool, batch: &mut Batch) -> usize {
        if self.tx_unsent {
            self.kick_tx();
        }
        if self.xsk.fill.needs_wakeup() {
            self.xsk.kick_rx();
        }
        let n = self.xsk.rx.available(batch.space() as u32);
        if n == 0 {
            return 0;
        }
        // Every frame read is handed straight back: the fill ring always has
        // room for the frames that left it.
        let room = self.xsk.fill.free(n);
        let mut added = 0;
        for i in 0..n {
            let d = self.xsk.rx.read(i);
            let pkt = self
                .xsk
                .frame(d.addr, d.len as usize)
                .and_then(|f| pool.alloc_from(f));
            match pkt {
                Some(mut p) => {
                    if csum::complete_partial(p.data_mut()) {
                        self.csum_completed += 1;
                    }
                    if batch.push(p).is_ok() {
                        added += 1;
                    } else {
                        self.rx_errors += 1;
                    }
                }
                // Out of range, larger than a buffer, or the pool is empty.
                None => self.rx_errors += 1,
            }
            if i < room {
                self.xsk.fill.write(i, d.addr & !(FRAME_SIZE as u64 - 1));
            }
        }
        self.xsk.fill.submit(room.min(n));
        self.xsk.rx.release(n);
        added
    }

    fn tx_burst(&mut self, batch: &mut Batch) -> TxDone {
        self.reap_completions();
        let n = batch.len();
        if n == 0 {
            if self.tx_unsent {
                self.kick_tx();
            }
            return TxDone::default();
        }
        let room = self.xsk.tx.free(n as u32);
        let mut done = TxDone::default();
        let mut queued = 0u32;
        let mut failed = 0u64;
        let max_len = (FRAME_SIZE - 256) as usize;
        for p in batch.packets() {
            let len = p.len();
            if queued == room || len > max_len || len == 0 {
                failed += 1;
                continue;
            }
            let Some(addr) = self.tx_free.pop() else {
                failed += 1;
                continue;
            };
            match self.xsk.frame_mut(addr) {
                Some(f) => f[..len].copy_from_slice(p.data()),
                None => {
                    failed += 1;
                    continue;
                }
            }
            self.xsk.tx.write(
                queued,
                libc::xdp_desc {
                    addr,
                    len: len as u32,
                    options: 0,
                },
            );
            queued += 1;
            done.bytes += len as u64;
        }
        self.xsk.tx.submit(queued);
        done.packets = queued as usize;
        self.tx_errors += failed;
        batch.clear();
        self.kick_tx();
        done
    }

    fn link(&self) -> LinkInfo {
        let (at, info) = self.link.get();
        if at.elapsed() < LINK_REFRESH {
            return info;
        }
        let fresh = self.query_link().unwrap_or(LinkInfo { up: false, ..info });
        self.link.set((Instant::now(), fresh));
        fresh
    }

    fn stats(&self) -> PortStats {
        let c = self.xdp_counters();
        PortStats {
            // Frames the kernel could not place: no fill-ring frame (counted
            // in rx_dropped too) or RX ring full.
            rx_missed: c.rx_dropped + c.rx_ring_full,
            rx_errors: self.rx_errors + c.rx_invalid_descs,
            tx_errors: self.tx_errors + c.tx_invalid_descs,
        }
    }

    fn wait_fd(&self) -> Option<std::os::fd::RawFd> {
        Some(self.xsk.fd())
    }
}
