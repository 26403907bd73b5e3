//! UDP flood generator: one pinned thread writes pre-built frames into an
//! AF_PACKET TX ring (TPACKET_V2, PACKET_QDISC_BYPASS) and kicks the kernel
//! with one `send()` per batch of frames.

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use anyhow::{bail, Context};

// <linux/if_packet.h>, kept here so the generator does not depend on which
// of these a libc release exports.
const SOL_PACKET: libc::c_int = 263;
const PACKET_VERSION: libc::c_int = 10;
const PACKET_TX_RING: libc::c_int = 13;
const PACKET_QDISC_BYPASS: libc::c_int = 20;
const TPACKET_V2: libc::c_int = 1;
const TP_STATUS_SEND_REQUEST: u32 = 1;
const TP_STATUS_SENDING: u32 = 2;
const TP_STATUS_WRONG_FORMAT: u32 = 4;
/// Frame data starts after the aligned `tpacket2_hdr` (32 bytes).
const TPACKET2_DATA_OFFSET: usize = 32;
const ETH_P_IP: u16 = 0x0800;

/// `struct tpacket_req`.
#[repr(C)]
struct TpacketReq {
    block_size: u32,
    block_nr: u32,
    frame_size: u32,
    frame_nr: u32,
}

const FRAME_SIZE: usize = 2048;
const BLOCK_SIZE: usize = 1 << 16;
const BLOCK_NR: usize = 64;
const FRAMES_PER_BLOCK: usize = BLOCK_SIZE / FRAME_SIZE;
const FRAME_NR: usize = BLOCK_NR * FRAMES_PER_BLOCK;
/// Frames handed to the kernel per `send()`.
pub const SEND_BATCH: usize = 256;

/// What to send.
#[derive(Clone, Debug)]
pub struct GenConfig {
    /// Namespace to send from (None = the current one).
    pub netns: Option<String>,
    pub iface: String,
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    /// Frame length without FCS (60..=1514).
    pub frame_len: usize,
    /// Distinct 5-tuples, sent in turn.
    pub flows: u32,
    /// Flow i uses source `src_base + i % 16` and destination `dst_base + i`.
    pub src_base: Ipv4Addr,
    pub dst_base: Ipv4Addr,
    /// Core to pin the thread to.
    pub core: Option<usize>,
    /// Nice value of the thread.
    pub nice: i32,
}

/// A running generator; stopped and joined on drop.
pub struct Generator {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    /// Nanoseconds spent waiting for the kernel to free ring slots.
    wait_ns: Arc<AtomicU64>,
    tid: Arc<AtomicI32>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Generator {
    /// Starts the thread; returns once its socket and ring are set up.
    pub fn start(cfg: GenConfig) -> anyhow::Result<Generator> {
        if !(60..=1514).contains(&cfg.frame_len) || cfg.flows == 0 {
            bail!("generator: frame_len must be 60..=1514 and flows > 0");
        }
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let tid = Arc::new(AtomicI32::new(0));
        let wait_ns = Arc::new(AtomicU64::new(0));
        let (ready_tx, ready_rx) = mpsc::channel();
        let handle = {
            let (stop, sent, tid) = (Arc::clone(&stop), Arc::clone(&sent), Arc::clone(&tid));
            let wait = Arc::clone(&wait_ns);
            std::thread::Builder::new()
                .name("perf-gen".into())
                .spawn(move || {
                    // SAFETY: gettid has no preconditions.
                    tid.store(unsafe { libc::gettid() }, Ordering::Relaxed);
                    let ring = match TxRing::open(&cfg) {
                        Ok(r) => {
                            let _ = ready_tx.send(Ok(()));
                            r
                        }
                        Err(e) => {
                            let msg = format!("{e:#}");
                            let _ = ready_tx.send(Err(e));
                            bail!("{msg}");
                        }
                    };
                    ring.run(&stop, &sent, &wait)
                })?
        };
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Generator {
                stop,
                sent,
                wait_ns,
                tid,
                handle: Some(handle),
            }),
            Ok(Err(e)) => {
                let _ = handle.join();
                Err(e)
            }
            Err(_) => bail!("generator thread died during set-up"),
        }
    }

    /// Frames the kernel accepted so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Nanoseconds the thread spun waiting for ring slots the kernel had not
    /// released yet (frames still queued downstream).
    pub fn wait_ns(&self) -> u64 {
        self.wait_ns.load(Ordering::Relaxed)
    }

    /// CPU nanoseconds of the generator thread: its own work plus the
    /// softirq work its sends trigger on its core.
    pub fn cpu_ns(&self) -> anyhow::Result<u64> {
        crate::sysstat::thread_cpu_ns(self.tid.load(Ordering::Relaxed))
    }

    /// Stops the thread and reports its error, if any.
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> anyhow::Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        match self.handle.take() {
            Some(h) => h
                .join()
                .map_err(|_| anyhow::anyhow!("generator thread panicked"))?,
            None => Ok(()),
        }
    }
}

impl Drop for Generator {
    fn drop(&mut self) {
        let _ = self.stop_inner();
    }
}

/// The socket and its mapped TX ring.
struct TxRing {
    fd: OwnedFd,
    base: *mut u8,
    frame_len: usize,
}

impl TxRing {
    fn open(cfg: &GenConfig) -> anyhow::Result<TxRing> {
        if let Some(ns) = &cfg.netns {
            crate::netns::enter(ns)?;
        }
        if let Some(core) = cfg.core {
            if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
                bail!("cannot pin generator to core {core}");
            }
        }
        if cfg.nice != 0 {
            // SAFETY: gettid has no preconditions; setpriority on our own thread id.
            let rc = unsafe {
                libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, cfg.nice)
            };
            if rc != 0 {
                bail!(
                    "setpriority({}): {}",
                    cfg.nice,
                    std::io::Error::last_os_error()
                );
            }
        }
        let cname = std::ffi::CString::new(cfg.iface.as_str())?;
        // SAFETY: cname is a valid NUL-terminated string.
        let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
        if ifindex == 0 {
            bail!("no interface {}", cfg.iface);
        }
        // Protocol 0: this socket only sends, it never receives a copy of traffic.
        // SAFETY: plain socket(2) call.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
        if raw < 0 {
            bail!("socket(AF_PACKET): {}", std::io::Error::last_os_error());
        }
        // SAFETY: raw is a freshly created descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        setsockopt(&fd, PACKET_VERSION, &TPACKET_V2).context("PACKET_VERSION")?;
        setsockopt(&fd, PACKET_QDISC_BYPASS, &1i32).context("PACKET_QDISC_BYPASS")?;
        let req = TpacketReq {
            block_size: BLOCK_SIZE as u32,
            block_nr: BLOCK_NR as u32,
            frame_size: FRAME_SIZE as u32,
            frame_nr: FRAME_NR as u32,
        };
        setsockopt(&fd, PACKET_TX_RING, &req).context("PACKET_TX_RING")?;
        let len = BLOCK_SIZE * BLOCK_NR;
        // SAFETY: maps the ring the kernel just allocated for this socket.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            bail!("mmap TX ring: {}", std::io::Error::last_os_error());
        }
        let ring = TxRing {
            fd,
            base: base.cast(),
            frame_len: cfg.frame_len,
        };
        // SAFETY: sockaddr_ll is plain data; all-zero is a valid start.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = ETH_P_IP.to_be();
        sll.sll_ifindex = ifindex as i32;
        // SAFETY: sll is a valid sockaddr_ll of the size passed.
        let rc = unsafe {
            libc::bind(
                ring.fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if rc != 0 {
            bail!("bind to {}: {}", cfg.iface, std::io::Error::last_os_error());
        }
        // Frames are written once; the loop only flips their status words.
        for i in 0..FRAME_NR {
            let frame = build_frame(cfg, i as u32 % cfg.flows);
            // SAFETY: frame i lies inside the mapping and FRAME_SIZE exceeds the
            // header offset plus the longest frame (1514 bytes).
            unsafe {
                let p = ring.frame(i);
                std::ptr::copy_nonoverlapping(
                    frame.as_ptr(),
                    p.add(TPACKET2_DATA_OFFSET),
                    frame.len(),
                );
                // tp_len is the second u32 of tpacket2_hdr.
                (p.add(4) as *mut u32).write_volatile(frame.len() as u32);
            }
        }
        Ok(ring)
    }

    /// Start of frame `i` (TPACKET_V2 layout: FRAMES_PER_BLOCK frames per block).
    fn frame(&self, i: usize) -> *mut u8 {
        let offset = (i / FRAMES_PER_BLOCK) * BLOCK_SIZE + (i % FRAMES_PER_BLOCK) * FRAME_SIZE;
        self.base.wrapping_add(offset)
    }

    /// The frame's `tp_status`, shared with the kernel.
    fn status(&self, i: usize) -> &AtomicU32 {
        // SAFETY: tp_status is the first, 4-byte aligned u32 of a frame inside
        // the mapping, which lives as long as self.
        unsafe { AtomicU32::from_ptr(self.frame(i).cast()) }
    }

    fn kick(&self) -> isize {
        // SAFETY: a send with no buffer transmits the ring's requested frames.
        unsafe { libc::send(self.fd.as_raw_fd(), std::ptr::null(), 0, libc::MSG_DONTWAIT) }
    }

    fn run(&self, stop: &AtomicBool, sent: &AtomicU64, wait: &AtomicU64) -> anyhow::Result<()> {
        let mut idx = 0usize;
        let mut pending = 0usize;
        let mut total = 0u64;
        let mut bad = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let status = self.status(idx);
            let s = status.load(Ordering::Acquire);
            if s & (TP_STATUS_SEND_REQUEST | TP_STATUS_SENDING) != 0 {
                // Ring full: push what is queued, then wait for completions.
                if pending > 0 {
                    total += self.flush(&mut pending)?;
                    sent.store(total, Ordering::Relaxed);
                } else {
                    // Slots are freed when skbs are consumed downstream.
                    let t = std::time::Instant::now();
                    while status.load(Ordering::Acquire)
                        & (TP_STATUS_SEND_REQUEST | TP_STATUS_SENDING)
                        != 0
                        && !stop.load(Ordering::Relaxed)
                    {
                        std::hint::spin_loop();
                    }
                    wait.fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
                }
                continue;
            }
            if s & TP_STATUS_WRONG_FORMAT != 0 {
                bad += 1;
            }
            status.store(TP_STATUS_SEND_REQUEST, Ordering::Release);
            idx = (idx + 1) % FRAME_NR;
            pending += 1;
            if pending == SEND_BATCH {
                total += self.flush(&mut pending)?;
                sent.store(total, Ordering::Relaxed);
            }
        }
        if bad > 0 {
            bail!("kernel rejected {bad} frames (TP_STATUS_WRONG_FORMAT)");
        }
        Ok(())
    }

    /// Sends the queued frames; returns how many the kernel took.
    fn flush(&self, pending: &mut usize) -> anyhow::Result<u64> {
        let rc = self.kick();
        if rc < 0 {
            let err = std::io::Error::last_os_error();
            match err.raw_os_error() {
                // Left in the ring; a later send() retries them.
                Some(libc::EAGAIN) | Some(libc::ENOBUFS) | Some(libc::EINTR) => return Ok(0),
                _ => bail!("send on TX ring: {err}"),
            }
        }
        *pending = 0;
        Ok(rc as u64 / self.frame_len as u64)
    }
}

impl Drop for TxRing {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the region mapped in open().
        unsafe { libc::munmap(self.base.cast(), BLOCK_SIZE * BLOCK_NR) };
    }
}

fn setsockopt<T>(fd: &OwnedFd, opt: libc::c_int, val: &T) -> anyhow::Result<()> {
    // SAFETY: val points to a live T of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            SOL_PACKET,
            opt,
            (val as *const T).cast(),
            std::mem::size_of::<T>() as u32,
        )
    };
    if rc != 0 {
        bail!("{}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// Ethernet + IPv4 + UDP frame of `cfg.frame_len` bytes for flow `flow`.
pub fn build_frame(cfg: &GenConfig, flow: u32) -> Vec<u8> {
    let len = cfg.frame_len;
    let mut f = vec![0u8; len];
    f[0..6].copy_from_slice(&cfg.dst_mac);
    f[6..12].copy_from_slice(&cfg.src_mac);
    f[12..14].copy_from_slice(&ETH_P_IP.to_be_bytes());
    let ip_len = (len - 14) as u16;
    let src = Ipv4Addr::from(u32::from(cfg.src_base).wrapping_add(flow % 16));
    let dst = Ipv4Addr::from(u32::from(cfg.dst_base).wrapping_add(flow));
    let ip = &mut f[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
    ip[4..6].copy_from_slice(&(flow as u16).to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&src.octets());
    ip[16..20].copy_from_slice(&dst.octets());
    let csum = ipv4_checksum(ip);
    ip[10..12].copy_from_slice(&csum.to_be_bytes());
    let udp = &mut f[34..42];
    udp[0..2].copy_from_slice(&(1024 + flow as u16).to_be_bytes());
    udp[2..4].copy_from_slice(&9u16.to_be_bytes());
    udp[4..6].copy_from_slice(&(ip_len - 20).to_be_bytes());
    // UDP checksum 0 = none (valid for IPv4).
    f
}

fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> GenConfig {
        GenConfig {
            netns: None,
            iface: "x".into(),
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            frame_len: 64,
            flows: 64,
            src_base: Ipv4Addr::new(10, 1, 0, 10),
            dst_base: Ipv4Addr::new(10, 3, 0, 0),
            core: None,
            nice: 0,
        }
    }

    #[test]
    fn frame_fields() {
        let f = build_frame(&cfg(), 5);
        assert_eq!(f.len(), 64);
        assert_eq!(&f[0..6], &[2, 0, 0, 0, 0, 2]);
        assert_eq!(&f[12..14], &[0x08, 0x00]);
        assert_eq!(u16::from_be_bytes([f[16], f[17]]), 50);
        assert_eq!(&f[26..30], &[10, 1, 0, 15]);
        assert_eq!(&f[30..34], &[10, 3, 0, 5]);
        assert_eq!(u16::from_be_bytes([f[34], f[35]]), 1029);
        assert_eq!(u16::from_be_bytes([f[38], f[39]]), 30);
        // A correct header sums to 0xffff, i.e. its checksum over itself is 0.
        assert_eq!(ipv4_checksum(&f[14..34]), 0);
    }

    #[test]
    fn known_checksum() {
        // Example header from RFC 1071 discussions (Wikipedia "IPv4 header checksum").
        let h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(ipv4_checksum(&h), 0xb861);
    }

    #[test]
    fn rejects_bad_sizes() {
        let mut c = cfg();
        c.frame_len = 20;
        assert!(Generator::start(c).is_err());
    }
}
