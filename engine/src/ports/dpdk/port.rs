//! A worker's queue of a DPDK device. When the worker's `PacketPool` is
//! backed by the shared mempool (`dpdk::worker_pool`), a received mbuf
//! becomes a `Packet` as it is and a `Packet` leaves as its own mbuf: no
//! copy either way. Frames of other pools (and multi-segment mbufs) are
//! copied. No allocation per packet: the burst arrays live in the port.
//!
//! In software dispatch a worker reads its inbox of the port and, if its
//! index is below the RX queue count, RX queue `worker`, handing frames of
//! other workers' flows to their inboxes. Worker `w` sends on TX queue
//! `w % ntx`, under that queue's lock only when other workers share it.

use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use patronus_dpdk_sys as sys;

use crate::buffer::{Batch, PacketPool, BATCH_SIZE, BUF_DATA_ROOM};
use crate::config::PortConfig;
use crate::counters::bump;
use crate::ports::{LinkInfo, Port, PortError, PortStats, TxDone};

use super::device::{self, Device, RxMode};
use super::dispatch::{self, Handoff};
use super::{eal, mbuf};

/// Frames taken per RX burst: 32, like testpmd's default. Measured in
/// fwd-dpdk-null (net_pcap replay, one core): 9.1 Mpps at 32, 8.4 at 16,
/// 7.9 at 64, 6.6 at 256 (the engine's batch size) — fewer mbufs in flight
/// stay in cache.
pub(crate) const RX_BURST: usize = 32;

/// Frames a queue copied instead of passing its buffer on: the copy
/// fallbacks of RX (a frame in a foreign or multi-segment mbuf, or a worker
/// pool that is not the mempool) and TX (a packet of another pool). Zero on
/// a zero-copy worker; shared so that it can be read once the port is boxed
/// inside a pipeline. Written by the queue's worker only.
#[derive(Debug, Default)]
pub struct CopyCounters {
    rx: AtomicU64,
    tx: AtomicU64,
}

impl CopyCounters {
    /// Received frames copied into an engine buffer.
    pub fn rx(&self) -> u64 {
        self.rx.load(Ordering::Relaxed)
    }

    /// Transmitted packets copied into a fresh mbuf.
    pub fn tx(&self) -> u64 {
        self.tx.load(Ordering::Relaxed)
    }
}

/// Frames a worker takes from its inbox per RX burst: two device bursts'
/// worth, so an owner keeps up with a reader that hands it most of a burst.
const INBOX_BURST: usize = 2 * RX_BURST;

/// One worker's RX/TX queues of a configured device.
pub struct DpdkPort {
    name: String,
    dev: Device,
    /// This worker's index (of `dev.workers`).
    worker: u16,
    /// The RX queue this worker reads (None: it only reads its inbox).
    rx_queue: Option<u16>,
    tx_queue: u16,
    /// True when other workers send on `tx_queue` too: take its lock.
    tx_shared: bool,
    /// Every worker's inbox of this port, in software dispatch.
    handoff: Option<Arc<Handoff>>,
    /// Frames this worker read for another worker whose inbox was full
    /// (freed; reported as `rx_missed`).
    handoff_dropped: u64,
    /// MTU the engine was configured with (the device's otherwise).
    mtu: Option<u16>,
    mac: Option<[u8; 6]>,
    mbufs: [*mut sys::rte_mbuf; BATCH_SIZE],
    /// Frames this queue could not hand over (too long, engine pool empty).
    rx_dropped: u64,
    /// Frames this queue could not copy into an mbuf (none left, too long).
    tx_nombuf: u64,
    copies: Arc<CopyCounters>,
}

impl std::fmt::Debug for DpdkPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpdkPort")
            .field("name", &self.name)
            .field("device", &self.dev.device)
            .field("worker", &self.worker)
            .field("rx_queue", &self.rx_queue)
            .field("tx_queue", &self.tx_queue)
            .finish()
    }
}

impl DpdkPort {
    /// Opens worker `queue`'s queues (of `nqueues` workers) of the port's
    /// device, which [`super::prepare`] configured for that many workers.
    pub fn open(cfg: &PortConfig, queue: usize, nqueues: usize) -> Result<Self, PortError> {
        let other = |msg: String| PortError::Other {
            port: cfg.name.clone(),
            msg,
        };
        let devname = cfg.device.as_deref().unwrap_or_default();
        let dev = device::lookup(devname).ok_or_else(|| {
            other(format!(
                "DPDK device {devname:?} is not set up (ports::prepare must run before workers start)"
            ))
        })?;
        if nqueues != dev.workers as usize || queue >= nqueues {
            return Err(other(format!(
                "queue {queue} of {nqueues} asked for, but {devname} is set up for {} workers",
                dev.workers
            )));
        }
        eal::register_thread();
        let worker = queue as u16;
        let (nrx, ntx) = (dev.plan.nrx, dev.plan.ntx);
        // Workers on TX queue `worker % ntx`: `workers / ntx`, one more for
        // the first `workers % ntx` queues.
        let tx_queue = worker % ntx;
        let tx_users = dev.workers / ntx + u16::from(tx_queue < dev.workers % ntx);
        Ok(DpdkPort {
            name: cfg.name.clone(),
            worker,
            rx_queue: (worker < nrx).then_some(worker),
            tx_queue,
            tx_shared: tx_users > 1,
            handoff: dev.handoff.clone(),
            handoff_dropped: 0,
            dev,
            mtu: cfg.mtu,
            mac: cfg
                .mac
                .as_deref()
                .and_then(|m| crate::config::parse_mac(m).ok()),
            mbufs: [ptr::null_mut(); BATCH_SIZE],
            rx_dropped: 0,
            tx_nombuf: 0,
            copies: Arc::default(),
        })
    }

    /// The device's port id and this worker's index (its RX queue when
    /// every worker has one), for tests and diagnostics.
    pub fn queue_id(&self) -> (u16, u16) {
        (self.dev.port_id, self.worker)
    }

    /// The RX queue this worker reads (None: it only reads its inbox) and
    /// the TX queue it sends on.
    pub fn queues(&self) -> (Option<u16>, u16) {
        (self.rx_queue, self.tx_queue)
    }

    /// How frames reach the workers, and whether this worker's TX queue is
    /// shared with others.
    pub fn mode(&self) -> (RxMode, bool) {
        (self.dev.plan.mode, self.tx_shared)
    }

    /// Copies a received frame `m` into a packet of `pool` (the pool is
    /// not ours, or the frame spans several mbufs); false when it cannot.
    fn copy_in(&mut self, m: *mut sys::rte_mbuf, pool: &mut PacketPool, batch: &mut Batch) -> bool {
        // SAFETY: `m` is a received mbuf, ours until the caller frees it.
        let len = unsafe { sys::patronus_pktmbuf_pkt_len(m) } as usize;
        let Some(mut p) = (len <= BUF_DATA_ROOM).then(|| pool.alloc()).flatten() else {
            self.rx_dropped += 1;
            return false;
        };
        let Some(room) = p.append(len) else {
            self.rx_dropped += 1;
            return false;
        };
        // SAFETY: `room` holds exactly `len` writable bytes; the read walks
        // the mbuf chain, copying at most `len` bytes.
        unsafe { sys::patronus_pktmbuf_read(m, room.as_mut_ptr().cast(), len as u32) };
        bump(&self.copies.rx, 1);
        batch.push(p).is_ok()
    }

    /// Copies a frame of a pool that is not ours into a fresh mbuf.
    fn copy_out(&mut self, data: &[u8]) -> Option<*mut sys::rte_mbuf> {
        // SAFETY: the pool lives as long as the process.
        let m = unsafe { sys::patronus_pktmbuf_alloc(self.dev.pool.0.as_ptr()) };
        // SAFETY: `m` (when not null) is a fresh single-segment mbuf.
        if m.is_null() || (unsafe { sys::patronus_pktmbuf_tailroom(m) } as usize) < data.len() {
            if !m.is_null() {
                // SAFETY: ours, unused.
                unsafe { sys::patronus_pktmbuf_free(m) };
            }
            self.tx_nombuf += 1;
            return None;
        }
        // SAFETY: the mbuf's data area has room for `data`.
        unsafe {
            ptr::copy_nonoverlapping(
                data.as_ptr(),
                sys::patronus_pktmbuf_data(m).cast::<u8>(),
                data.len(),
            );
            sys::patronus_pktmbuf_set_len(m, data.len() as u16);
        }
        bump(&self.copies.tx, 1);
        Some(m)
    }

    /// This queue's copy counters (tests assert a zero-copy worker copies nothing).
    pub fn copy_counters(&self) -> Arc<CopyCounters> {
        self.copies.clone()
    }

    /// True when the device spreads frames over the workers' queues by RSS
    /// with the symmetric key.
    pub fn rss(&self) -> bool {
        self.dev.plan.rss
    }

    /// Mbufs free in the device's mempool (tests check nothing leaks).
    pub fn mempool_available(&self) -> u32 {
        // SAFETY: the pool lives as long as the process.
        unsafe { sys::rte_mempool_avail_count(self.dev.pool.0.as_ptr()) }
    }
}

impl DpdkPort {
    /// Takes the first `got` mbufs of `self.mbufs` (received, ours) into
    /// `batch` (which has room for all of them); with `dispatch`, frames of
    /// other workers' flows go to their inboxes instead. Returns the frames
    /// added to `batch`.
    fn admit(
        &mut self,
        got: usize,
        dispatch: bool,
        pool: &mut PacketPool,
        batch: &mut Batch,
    ) -> usize {
        let mempool = self.dev.pool.0.as_ptr();
        // The worker's pool hands out our mbufs: received ones join it as they are.
        let zero_copy = pool.external_ctx() == Some(mempool.cast());
        // Mbufs copied from or dropped (to free afterwards) are packed at
        // the front; `to_free <= i` always, so nothing unread is overwritten.
        let mut to_free = 0;
        let mut added = 0;
        let mut i = 0;
        while i < got {
            if zero_copy && !dispatch {
                // The common case: a run of frames in our own single-segment
                // mbufs joins the batch as it is, counted out of the pool once.
                let mbufs = &self.mbufs[i..got];
                // SAFETY: each yielded buffer is that of a received mbuf
                // (ours) that `as_raw` accepted: a single-segment direct mbuf
                // of the pool's own mempool, owned by nothing else from here
                // on. The batch had room for `got` frames.
                let n = unsafe {
                    pool.adopt_while(batch, mbufs.len(), |k| mbuf::as_raw(mbufs[k], mempool))
                };
                added += n;
                i += n;
                if i == got {
                    break;
                }
            }
            let m = self.mbufs[i];
            i += 1;
            if dispatch {
                // SAFETY: `m` is a received mbuf, ours.
                let hash = unsafe { dispatch::mbuf_flow_hash(m) };
                let owner = dispatch::owner(hash, self.dev.workers);
                if owner != self.worker {
                    let h = self.handoff.as_ref().expect("dispatch has inboxes");
                    // SAFETY: rx_burst hands out non-null mbufs.
                    let nn = unsafe { NonNull::new_unchecked(m) };
                    if h.push(owner, nn).is_err() {
                        self.handoff_dropped += 1;
                        self.mbufs[to_free] = m;
                        to_free += 1;
                    }
                    continue;
                }
            }
            if zero_copy {
                // SAFETY: `m` is a received mbuf, ours.
                if let Some(raw) = unsafe { mbuf::as_raw(m, mempool) } {
                    // The batch had room for `got` frames, so this push succeeds.
                    // SAFETY: a single-segment direct mbuf of the pool's own
                    // mempool, owned by nothing else from here on.
                    if unsafe { pool.adopt_into(raw, batch) } {
                        added += 1;
                        continue;
                    }
                }
            }
            self.mbufs[to_free] = m;
            to_free += 1;
            if self.copy_in(m, pool, batch) {
                added += 1;
            }
        }
        if to_free > 0 {
            // SAFETY: the first `to_free` entries are received mbufs not used after this.
            unsafe { sys::rte_pktmbuf_free_bulk(self.mbufs.as_mut_ptr(), to_free as u32) };
        }
        added
    }
}

/// Locks TX queue `queue` when other workers share it (`shared`).
fn tx_guard(locks: &[Mutex<()>], queue: u16, shared: bool) -> Option<MutexGuard<'_, ()>> {
    // A worker that panicked holding the lock left the queue usable.
    shared.then(|| {
        locks[usize::from(queue)]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    })
}

impl Drop for DpdkPort {
    /// Frees what other workers handed this one and it never read.
    fn drop(&mut self) {
        if let Some(h) = &self.handoff {
            h.free_inbox(self.worker);
        }
    }
}

impl Port for DpdkPort {
    fn name(&self) -> &str {
        &self.name
    }

    fn rx_burst(&mut self, pool: &mut PacketPool, batch: &mut Batch) -> usize {
        let mut added = 0;
        // Frames other workers read for this one, oldest first.
        if let Some(h) = &self.handoff {
            let want = batch.space().min(INBOX_BURST);
            let mut got = 0;
            while got < want {
                let Some(m) = h.pop(self.worker) else { break };
                self.mbufs[got] = m;
                got += 1;
            }
            added += self.admit(got, false, pool, batch);
        }
        let Some(queue) = self.rx_queue else {
            return added;
        };
        let want = batch.space().min(RX_BURST) as u16;
        if want == 0 {
            return added;
        }
        // SAFETY: the device is started with this queue, which only this
        // worker uses; `mbufs` has room for `want` pointers.
        let got = unsafe {
            sys::patronus_eth_rx_burst(self.dev.port_id, queue, self.mbufs.as_mut_ptr(), want)
        } as usize;
        added + self.admit(got, self.handoff.is_some(), pool, batch)
    }

    fn tx_burst(&mut self, batch: &mut Batch) -> TxDone {
        let n = batch.len();
        if n == 0 {
            return TxDone::default();
        }
        let mempool = self.dev.pool.0.as_ptr();
        // The port, the mbufs to send so far and their bytes.
        let mut st = (&mut *self, 0usize, 0u64);
        batch.take_each_raw(
            mempool.cast(),
            &mut st,
            |(port, k, bytes), _, raw| {
                // SAFETY: the buffer of a direct mbuf of our mempool, handed
                // out of the engine: the mbuf is ours to send.
                port.mbufs[*k] = unsafe { mbuf::to_mbuf(raw) };
                *bytes += u64::from(raw.len);
                *k += 1;
            },
            |(port, k, bytes), _, p| {
                if let Some(m) = port.copy_out(p.data()) {
                    port.mbufs[*k] = m;
                    *bytes += p.len() as u64;
                    *k += 1;
                }
            },
        );
        let (_, k, mut bytes) = st;
        let guard = tx_guard(&self.dev.tx_locks, self.tx_queue, self.tx_shared);
        // SAFETY: the queue belongs to this worker, or its lock is held;
        // the PMD takes ownership of the first `sent` mbufs.
        let sent = unsafe {
            sys::patronus_eth_tx_burst(
                self.dev.port_id,
                self.tx_queue,
                self.mbufs.as_mut_ptr(),
                k as u16,
            )
        } as usize;
        drop(guard);
        if sent < k {
            // What was not sent does not count (`data_len` is each one's length).
            bytes -= self.mbufs[sent..k]
                .iter()
                // SAFETY: mbufs `sent..k` were not taken by the PMD and are ours.
                .map(|&m| u64::from(unsafe { sys::mbuf_fields::data_len(m) }))
                .sum::<u64>();
            // SAFETY: as above; not used after this.
            unsafe {
                sys::rte_pktmbuf_free_bulk(self.mbufs[sent..].as_mut_ptr(), (k - sent) as u32)
            };
        }
        TxDone {
            packets: sent,
            bytes,
        }
    }

    fn link(&self) -> LinkInfo {
        let port = self.dev.port_id;
        let mut link = sys::rte_eth_link::default();
        // SAFETY: valid port, valid out-pointer; does not wait.
        let ok = unsafe { sys::rte_eth_link_get_nowait(port, &mut link) } == 0;
        let mut addr = sys::rte_ether_addr::default();
        // SAFETY: valid port, valid out-pointer.
        unsafe { sys::rte_eth_macaddr_get(port, &mut addr) };
        let mut mtu = 1500u16;
        // SAFETY: valid port, valid out-pointer.
        unsafe { sys::rte_eth_dev_get_mtu(port, &mut mtu) };
        LinkInfo {
            up: ok && link.link_status() != 0,
            mtu: self.mtu.unwrap_or(mtu),
            mac: self.mac.unwrap_or(addr.addr_bytes),
            speed_mbps: (ok && link.link_speed != 0 && link.link_speed != u32::MAX)
                .then_some(link.link_speed),
        }
    }

    /// Device counters are per device: worker 0 reports them (the engine
    /// sums its workers' port stats), every worker adds its own drops; a
    /// frame dropped because its owner's inbox was full is `rx_missed` (the
    /// engine never saw it, like a frame the NIC's full ring missed).
    fn stats(&self) -> PortStats {
        let mut s = PortStats {
            rx_missed: self.handoff_dropped,
            rx_errors: self.rx_dropped,
            tx_errors: self.tx_nombuf,
        };
        if self.worker == 0 {
            let mut st = sys::rte_eth_stats::default();
            // SAFETY: valid port, valid out-pointer.
            if unsafe { sys::rte_eth_stats_get(self.dev.port_id, &mut st) } == 0 {
                s.rx_missed += st.imissed;
                s.rx_errors += st.ierrors + st.rx_nombuf;
                s.tx_errors += st.oerrors;
            }
        }
        s
    }
}
