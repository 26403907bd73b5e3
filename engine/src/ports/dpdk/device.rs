//! One DPDK ethdev per `dpdk` port, configured once per engine start (before
//! workers open their queues): one RX and one TX queue per worker when the
//! device has them and spreads flows (RSS with the symmetric key, or its own
//! symmetric dispatch), else fewer RX queues plus software dispatch and TX
//! queues shared by workers (see [`plan_queues`]), then started. Every
//! device and every worker's `PacketPool` draw from one shared mempool whose
//! mbufs are laid out like the engine's buffers, so frames cross without a
//! copy.

use std::ffi::{CStr, CString};
use std::ptr::{self, NonNull};
use std::sync::{Arc, Mutex};

use patronus_dpdk_sys as sys;

use crate::buffer::{BATCH_SIZE, BUF_META_ROOM, BUF_SIZE};
use crate::config::PortConfig;

use super::dispatch::{Handoff, HANDOFF_DEPTH};

/// RX / TX descriptors asked for per queue (the device may adjust them).
const RX_DESCRIPTORS: u16 = 1024;
const TX_DESCRIPTORS: u16 = 1024;
/// Per-lcore cache of the mempool (workers are registered lcores).
const MEMPOOL_CACHE: u32 = 256;
/// `sizeof(struct rte_mbuf)` (the shim asserts it at build time).
const MBUF_HEADER: usize = 128;
/// From an mbuf to its buffer: the header, then a private area of
/// [`BUF_META_ROOM`] bytes that holds the engine's `PacketMeta`, exactly
/// where a `Packet` looks for it (in front of its buffer).
pub const MBUF_TO_BUF: usize = MBUF_HEADER + BUF_META_ROOM;
/// Mbufs a device needs per worker: an RX and a TX ring, a burst in flight
/// each way and a full lcore cache (an upper bound when queues are fewer
/// than workers).
pub const MBUFS_PER_QUEUE: u32 =
    RX_DESCRIPTORS as u32 + TX_DESCRIPTORS as u32 + 2 * BATCH_SIZE as u32 + MEMPOOL_CACHE;
/// Mbufs a software-dispatching device may hold in each worker's inbox.
pub const MBUFS_PER_HANDOFF: u32 = HANDOFF_DEPTH as u32;

/// Drivers without RSS whose queues are nonetheless filled per flow with a
/// symmetric hash: `net_af_packet` sets PACKET_FANOUT_HASH on its sockets,
/// and the kernel's fanout hash is symmetric (`__skb_get_hash_symmetric`).
const SELF_DISPATCHING_DRIVERS: &[&str] = &["net_af_packet"];

/// How a device's frames reach the workers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RxMode {
    /// One RX queue per worker, spread by RSS with the symmetric key.
    Rss,
    /// One RX queue per worker, spread by the device itself (one worker, or
    /// a driver of [`SELF_DISPATCHING_DRIVERS`]).
    Device,
    /// Fewer RX queues than workers (or no flow spreading): the workers
    /// whose index is below the RX queue count read them and hand each
    /// frame to its flow's worker (`dispatch.rs`).
    Software,
}

/// Queue layout of a device for a number of workers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueuePlan {
    pub mode: RxMode,
    /// RX queues configured; read by workers `0..nrx`.
    pub nrx: u16,
    /// TX queues configured; worker `w` sends on `w % ntx`.
    pub ntx: u16,
    /// True when RSS (symmetric key) spreads frames over the `nrx` queues.
    pub rss: bool,
}

impl QueuePlan {
    /// Mbufs this device needs from the shared mempool with `workers`.
    pub fn mbufs(&self, workers: u16) -> u32 {
        let w = u32::from(workers);
        w * MBUFS_PER_QUEUE
            + if self.mode == RxMode::Software {
                w * MBUFS_PER_HANDOFF
            } else {
                0
            }
    }

    /// A line for the start-up log.
    pub fn describe(&self, workers: u16) -> String {
        let tx = if self.ntx < workers {
            format!(
                "{} TX queue(s) shared by {workers} workers (worker w sends on w % {}, under a \
                 lock per shared queue)",
                self.ntx, self.ntx
            )
        } else {
            format!("{} TX queue(s), one per worker", self.ntx)
        };
        match self.mode {
            RxMode::Rss => format!(
                "RSS with the symmetric key over {} RX queue(s), one per worker; {tx}",
                self.nrx
            ),
            RxMode::Device if workers == 1 => format!("one worker: 1 RX queue; {tx}"),
            RxMode::Device => format!(
                "device dispatch (the driver spreads flows by its own symmetric hash) over {} RX \
                 queue(s), one per worker; {tx}",
                self.nrx
            ),
            RxMode::Software => format!(
                "software dispatch with {} RX queue(s){} read by worker(s) 0..{}, frames handed \
                 to {workers} workers by the symmetric flow hash; {tx}",
                self.nrx,
                if self.rss { " (RSS over them)" } else { "" },
                self.nrx
            ),
        }
    }
}

/// Chooses the queues of a device with `max_rx`/`max_tx` queues for
/// `workers`: a queue per worker when the device can spread flows over
/// them symmetrically; else as many RX queues as something fills (all of
/// them up to `workers` when RSS or the driver spreads frames, one when
/// nothing does) and software dispatch; TX queues up to one per worker.
pub fn plan_queues(
    workers: u16,
    max_rx: u16,
    max_tx: u16,
    rss_capable: bool,
    self_dispatching: bool,
) -> QueuePlan {
    let ntx = max_tx.min(workers).max(1);
    let (mode, nrx) = if workers <= 1 {
        (RxMode::Device, 1)
    } else if max_rx >= workers && rss_capable {
        (RxMode::Rss, workers)
    } else if max_rx >= workers && self_dispatching {
        (RxMode::Device, workers)
    } else if rss_capable || self_dispatching {
        (RxMode::Software, max_rx.clamp(1, workers))
    } else {
        (RxMode::Software, 1)
    };
    QueuePlan {
        mode,
        nrx,
        ntx,
        rss: rss_capable && nrx > 1,
    }
}

/// A DPDK mempool shared by a device's queues.
#[derive(Clone, Copy, Debug)]
pub struct PoolPtr(pub NonNull<sys::rte_mempool>);
// SAFETY: DPDK mempools (ring_mp_mc ops, the default) are safe to use from
// many threads at once; each thread uses its own lcore cache.
unsafe impl Send for PoolPtr {}
// SAFETY: as above.
unsafe impl Sync for PoolPtr {}

/// A configured and started device.
#[derive(Clone, Debug)]
pub struct Device {
    /// The config's `device` (a vdev name or PCI address).
    pub device: String,
    pub port_id: u16,
    /// Workers the device was configured for.
    pub workers: u16,
    pub plan: QueuePlan,
    pub pool: PoolPtr,
    /// Every worker's inbox, in software dispatch.
    pub handoff: Option<Arc<Handoff>>,
    /// One lock per TX queue, taken only by workers that share theirs.
    pub tx_locks: Arc<[Mutex<()>]>,
}

/// Devices set up in this process (EAL lives as long as the process, and so
/// do its devices): a later engine start reuses or reconfigures them.
static DEVICES: Mutex<Vec<Device>> = Mutex::new(Vec::new());

/// Stops and closes every device, then releases EAL: run at process exit
/// (after `main` has stopped the workers), so that the interfaces behind
/// virtual devices get back their state (af_xdp's XDP program detached,
/// promiscuous mode off).
extern "C" fn close_all_at_exit() {
    let devs = DEVICES.lock().unwrap_or_else(|e| e.into_inner());
    for d in devs.iter() {
        // SAFETY: the port exists; the workers that used it have stopped.
        unsafe {
            sys::rte_eth_promiscuous_disable(d.port_id);
            sys::rte_eth_dev_stop(d.port_id);
            sys::rte_eth_dev_close(d.port_id);
        }
    }
    // SAFETY: EAL is initialised; the string is EAL's own, copied at once.
    let runtime_dir = unsafe { CStr::from_ptr(sys::rte_eal_get_runtime_dir()) }
        .to_string_lossy()
        .into_owned();
    // SAFETY: called once, at exit, after every device is closed.
    unsafe { sys::rte_eal_cleanup() };
    // EAL leaves its runtime directory (named by our per-process
    // --file-prefix) behind; nothing else uses it once this primary is gone.
    if !runtime_dir.is_empty() {
        let _ = std::fs::remove_dir_all(runtime_dir);
    }
}

/// Registers [`close_all_at_exit`] once per process.
pub fn close_at_exit() {
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    REGISTERED.call_once(|| {
        // SAFETY: registers a plain `extern "C" fn()` with libc.
        unsafe { libc::atexit(close_all_at_exit) };
    });
}

/// The mempool of every device and worker, and its size (created once:
/// mempools live as long as EAL).
static SHARED_POOL: Mutex<Option<(PoolPtr, u32)>> = Mutex::new(None);

/// The shared mempool, once created.
pub fn current_pool() -> Option<PoolPtr> {
    SHARED_POOL
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .map(|(p, _)| p)
}

/// The shared mempool, created with `nmbufs` mbufs on first use; a later
/// engine start in the same process must not need more.
pub fn shared_pool(nmbufs: u32) -> Result<PoolPtr, String> {
    let mut shared = SHARED_POOL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((pool, size)) = *shared {
        if size < nmbufs {
            return Err(format!(
                "dpdk: the mempool of this process holds {size} mbufs, {nmbufs} are needed now \
                 (restart the engine)"
            ));
        }
        return Ok(pool);
    }
    let name = CString::new("patronus_mbufs").expect("no NUL");
    // SAFETY: EAL is up; the name is NUL-terminated and used once. Each mbuf:
    // header, BUF_META_ROOM private bytes, BUF_SIZE bytes of buffer (of which
    // RTE_PKTMBUF_HEADROOM = BUF_HEADROOM are headroom).
    let pool = unsafe {
        sys::rte_pktmbuf_pool_create(
            name.as_ptr(),
            nmbufs,
            MEMPOOL_CACHE,
            BUF_META_ROOM as u16,
            BUF_SIZE as u16,
            sys::SOCKET_ID_ANY,
        )
    };
    let Some(pool) = NonNull::new(pool) else {
        // SAFETY: reads this thread's rte_errno right after the failing call.
        let e = unsafe { sys::patronus_errno() };
        return Err(format!(
            "dpdk.memory_mb: cannot create a pool of {nmbufs} mbufs ({}); raise it or lower \
             engine.pool_size",
            strerror(e)
        ));
    };
    *shared = Some((PoolPtr(pool), nmbufs));
    Ok(PoolPtr(pool))
}

/// The configured device of a port, for a worker opening its queue.
pub fn lookup(device: &str) -> Option<Device> {
    let devs = DEVICES.lock().unwrap_or_else(|e| e.into_inner());
    devs.iter().find(|d| d.device == device).cloned()
}

/// The symmetric Toeplitz key (0x6d5a repeated) at the device's key length.
pub fn symmetric_key(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| if i % 2 == 0 { 0x6d } else { 0x5a })
        .collect()
}

fn strerror(ret: i32) -> String {
    // SAFETY: rte_strerror returns a static or thread-local NUL-terminated string.
    unsafe { CStr::from_ptr(sys::rte_strerror(ret.abs())) }
        .to_string_lossy()
        .into_owned()
}

/// Names of every device DPDK probed, for error messages.
fn probed_devices() -> Vec<String> {
    let mut names = Vec::new();
    for id in 0..sys::RTE_MAX_ETHPORTS as u16 {
        // SAFETY: any id may be asked about.
        if unsafe { sys::rte_eth_dev_is_valid_port(id) } == 0 {
            continue;
        }
        let mut buf = [0 as std::os::raw::c_char; sys::RTE_ETH_NAME_MAX_LEN as usize];
        // SAFETY: `buf` holds RTE_ETH_NAME_MAX_LEN bytes, as the API requires.
        if unsafe { sys::rte_eth_dev_get_name_by_port(id, buf.as_mut_ptr()) } == 0 {
            // SAFETY: filled with a NUL-terminated name.
            names.push(
                unsafe { CStr::from_ptr(buf.as_ptr()) }
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
    names
}

/// A device found and planned for a number of workers.
#[derive(Clone, Copy)]
pub struct Probed {
    pub port_id: u16,
    pub workers: u16,
    pub plan: QueuePlan,
    pub info: sys::rte_eth_dev_info,
}

/// Finds `cfg`'s device and plans its queues for `workers`.
pub fn probe(cfg: &PortConfig, key: &str, workers: usize) -> Result<Probed, String> {
    let dev = cfg.device.as_deref().unwrap_or_default();
    let nw = u16::try_from(workers).map_err(|_| "too many workers for DPDK queues".to_string())?;
    let cname = CString::new(dev).map_err(|_| format!("{key}: holds a NUL byte"))?;
    let mut port_id = 0u16;
    // SAFETY: EAL is initialised; `cname` is NUL-terminated; out-pointer valid.
    if unsafe { sys::rte_eth_dev_get_port_by_name(cname.as_ptr(), &mut port_id) } != 0 {
        return Err(format!(
            "{key}: DPDK has no device {dev:?}: it failed to probe (missing interface, device \
             busy or bound to a kernel driver, or its PMD is not installed; EAL's messages \
             above say which). Probed: {:?}",
            probed_devices()
        ));
    }
    let mut info = sys::rte_eth_dev_info::default();
    // SAFETY: valid port id, valid out-pointer.
    let r = unsafe { sys::rte_eth_dev_info_get(port_id, &mut info) };
    if r != 0 {
        return Err(format!("{key}: rte_eth_dev_info_get: {}", strerror(r)));
    }
    if info.max_rx_queues == 0 || info.max_tx_queues == 0 {
        return Err(format!(
            "{key}: device {dev:?} has {} RX / {} TX queues; it needs one of each",
            info.max_rx_queues, info.max_tx_queues
        ));
    }
    let driver = if info.driver_name.is_null() {
        String::new()
    } else {
        // SAFETY: the PMD's static NUL-terminated name.
        unsafe { CStr::from_ptr(info.driver_name) }
            .to_string_lossy()
            .into_owned()
    };
    let plan = plan_queues(
        nw,
        info.max_rx_queues,
        info.max_tx_queues,
        rss_offloads(&info) != 0,
        SELF_DISPATCHING_DRIVERS.contains(&driver.as_str()),
    );
    Ok(Probed {
        port_id,
        workers: nw,
        plan,
        info,
    })
}

/// The RSS hash types (IP, TCP, UDP) the device can compute.
fn rss_offloads(info: &sys::rte_eth_dev_info) -> u64 {
    // SAFETY: pure function returning a constant.
    info.flow_type_rss_offloads & unsafe { sys::patronus_rss_hf_ip_tcp_udp() }
}

/// Configures `cfg`'s device for `workers` over `pool` (queues as
/// [`probe`] plans them) and starts it. `key` names the config key for
/// errors (`port[i].device`).
pub fn setup(cfg: &PortConfig, key: &str, workers: usize, pool: PoolPtr) -> Result<Device, String> {
    let dev = cfg.device.as_deref().unwrap_or_default();
    let Probed {
        port_id,
        workers: nw,
        plan,
        info,
    } = probe(cfg, key, workers)?;
    eprintln!(
        "patronus-engine: port {}: {dev}: {}",
        cfg.name,
        plan.describe(nw)
    );
    if let Some(d) = lookup(dev) {
        if d.workers == nw && d.plan == plan {
            // Frames a previous engine start left in the inboxes are stale.
            if let Some(h) = &d.handoff {
                h.free_all();
            }
            return Ok(d);
        }
        // SAFETY: the port exists and no worker uses it (engines start one at a time).
        unsafe { sys::rte_eth_dev_stop(port_id) };
    }

    let mut conf = sys::rte_eth_conf::default();
    let hf = rss_offloads(&info);
    let mut key_bytes = symmetric_key(if info.hash_key_size > 0 {
        info.hash_key_size as usize
    } else {
        40
    });
    if plan.rss {
        conf.rxmode.mq_mode = sys::RTE_ETH_MQ_RX_RSS;
        conf.rx_adv_conf.rss_conf = sys::rte_eth_rss_conf {
            rss_key: key_bytes.as_mut_ptr(),
            rss_key_len: key_bytes.len() as u8,
            rss_hf: hf,
        };
    }
    let (nrxq, ntxq) = (plan.nrx, plan.ntx);
    // SAFETY: valid port; `conf` (and the key it points at) live across the call.
    let r = unsafe { sys::rte_eth_dev_configure(port_id, nrxq, ntxq, &conf) };
    drop(key_bytes);
    if r != 0 {
        return Err(format!(
            "{key}: rte_eth_dev_configure({dev}): {}",
            strerror(r)
        ));
    }
    let (mut nrx, mut ntx) = (RX_DESCRIPTORS, TX_DESCRIPTORS);
    // SAFETY: valid port; out-pointers valid.
    unsafe { sys::rte_eth_dev_adjust_nb_rx_tx_desc(port_id, &mut nrx, &mut ntx) };
    // SAFETY: valid port.
    let socket = unsafe { sys::rte_eth_dev_socket_id(port_id) };
    let socket = if socket < 0 {
        sys::SOCKET_ID_ANY
    } else {
        socket
    };

    let pool = pool.0;
    for q in 0..nrxq {
        // SAFETY: the port is configured with `nrxq` RX queues; the pool
        // lives for the rest of the process.
        let r = unsafe {
            sys::rte_eth_rx_queue_setup(port_id, q, nrx, socket as u32, ptr::null(), pool.as_ptr())
        };
        if r != 0 {
            return Err(format!("{key}: RX queue {q} of {dev}: {}", strerror(r)));
        }
    }
    for q in 0..ntxq {
        // SAFETY: the port is configured with `ntxq` TX queues.
        let r = unsafe { sys::rte_eth_tx_queue_setup(port_id, q, ntx, socket as u32, ptr::null()) };
        if r != 0 {
            return Err(format!("{key}: TX queue {q} of {dev}: {}", strerror(r)));
        }
    }
    if let Some(m) = cfg
        .mac
        .as_deref()
        .and_then(|m| crate::config::parse_mac(m).ok())
    {
        let mut addr = sys::rte_ether_addr { addr_bytes: m };
        // SAFETY: valid port, valid address.
        let r = unsafe { sys::rte_eth_dev_default_mac_addr_set(port_id, &mut addr) };
        if r != 0 {
            eprintln!(
                "patronus-engine: port {}: {dev} keeps its MAC ({}); frames to the configured \
                 one arrive through promiscuous mode",
                cfg.name,
                strerror(r)
            );
        }
    }
    // The engine does its own L2 filtering, as on afpacket ports.
    // SAFETY: valid port.
    unsafe { sys::rte_eth_promiscuous_enable(port_id) };
    // SAFETY: every queue is set up.
    let r = unsafe { sys::rte_eth_dev_start(port_id) };
    if r != 0 {
        return Err(format!(
            "{key}: rte_eth_dev_start({dev}): {} (device busy?)",
            strerror(r)
        ));
    }
    let d = Device {
        device: dev.to_string(),
        port_id,
        workers: nw,
        plan,
        pool: PoolPtr(pool),
        handoff: (plan.mode == RxMode::Software).then(|| Arc::new(Handoff::new(nw))),
        tx_locks: (0..ntxq).map(|_| Mutex::new(())).collect(),
    };
    let mut devs = DEVICES.lock().unwrap_or_else(|e| e.into_inner());
    devs.retain(|x| x.device != d.device);
    devs.push(d.clone());
    Ok(d)
}
