//! Ports: where packets enter and leave the engine, all behind one trait.
//!
//! A configured port is opened once per worker ("a queue of the port"): each
//! worker owns its queue of every port, receives from it and transmits on
//! it, so no two threads ever touch one queue. Drivers:
//! - [`mem`]: synthetic generator and sink, for benchmarks and demos;
//! - [`pcap`]: read a capture (pcap or pcapng), write what leaves to a pcap;
//! - [`afpacket`]: a Linux interface through a TPACKET_V2 (or V3) ring, fanned out
//!   across workers with PACKET_FANOUT;
//! - [`afxdp`]: a Linux interface through AF_XDP sockets (one per queue)
//!   fed by the driver's own XDP program;
//! - [`dpdk`] (cargo feature `dpdk`): a DPDK ethdev, one queue per worker.

pub mod afpacket;
pub mod afxdp;
#[cfg(feature = "dpdk")]
pub mod dpdk;
pub mod mem;
pub mod pcap;

use crate::buffer::{Batch, PacketPool};
use crate::config::{EngineConfig, PortConfig, PortDriver};

/// Link state of a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkInfo {
    /// Carrier / operational state.
    pub up: bool,
    /// MTU of the L3 payload (1500 on plain Ethernet).
    pub mtu: u16,
    /// The port's own MAC address.
    pub mac: [u8; 6],
    /// Link speed if the driver knows it.
    pub speed_mbps: Option<u32>,
}

/// Counters only the driver can see (the engine counts the rest itself).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Frames the driver or kernel dropped before the engine saw them
    /// (ring full, PACKET_STATISTICS drops).
    pub rx_missed: u64,
    /// Frames received that could not be handed over (oversize, no buffer,
    /// offload that could not be completed).
    pub rx_errors: u64,
    /// Frames the driver could not send.
    pub tx_errors: u64,
}

/// What a transmit burst achieved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxDone {
    /// Frames the driver accepted.
    pub packets: usize,
    /// Their bytes.
    pub bytes: u64,
}

/// One worker's queue of a port.
pub trait Port {
    /// The configured port name.
    fn name(&self) -> &str;

    /// Receives up to `batch.space()` frames, allocating their buffers from
    /// `pool` and appending them to `batch`; returns how many were added.
    /// Never blocks.
    fn rx_burst(&mut self, pool: &mut PacketPool, batch: &mut Batch) -> usize;

    /// Sends every packet in `batch`, leaving it empty; returns how many
    /// frames (and bytes) the driver accepted. The rest were dropped and are
    /// counted by the caller. Never blocks.
    fn tx_burst(&mut self, batch: &mut Batch) -> TxDone;

    /// Link state and address.
    fn link(&self) -> LinkInfo;

    /// Driver-level counters.
    fn stats(&self) -> PortStats {
        PortStats::default()
    }

    /// True once an input that ends (a pcap file) has been read entirely.
    fn rx_exhausted(&self) -> bool {
        false
    }

    /// Flushes buffered output (files); called when a worker stops.
    fn flush(&mut self) {}

    /// A descriptor that becomes readable when frames arrive, so an idle
    /// worker can sleep in poll(2) instead of spinning (None: no such thing).
    fn wait_fd(&self) -> Option<std::os::fd::RawFd> {
        None
    }
}

/// Errors opening a port.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error("port {port}: interface {iface}: {source}")]
    Interface {
        port: String,
        iface: String,
        #[source]
        source: std::io::Error,
    },
    #[error("port {port}: {path}: {msg}")]
    File {
        port: String,
        path: String,
        msg: String,
    },
    #[error("port {port}: {msg}")]
    Other { port: String, msg: String },
}

/// Opens queue `queue` (of `nqueues`, one per worker) of a configured port.
pub fn open(cfg: &PortConfig, queue: usize, nqueues: usize) -> Result<Box<dyn Port>, PortError> {
    match cfg.driver {
        PortDriver::Mem => Ok(Box::new(mem::MemPort::open(cfg, queue, nqueues)?)),
        PortDriver::Pcap => Ok(Box::new(pcap::PcapPort::open(cfg, queue, nqueues)?)),
        PortDriver::Afpacket => Ok(Box::new(afpacket::AfPacketPort::open(cfg, queue, nqueues)?)),
        PortDriver::Afxdp => Ok(Box::new(afxdp::AfXdpPort::open(cfg, queue, nqueues)?)),
        #[cfg(feature = "dpdk")]
        PortDriver::Dpdk => Ok(Box::new(dpdk::DpdkPort::open(cfg, queue, nqueues)?)),
        #[cfg(not(feature = "dpdk"))]
        PortDriver::Dpdk => Err(PortError::Other {
            port: cfg.name.clone(),
            msg: "this patronus-engine was built without DPDK support (cargo feature `dpdk`)"
                .into(),
        }),
    }
}

/// The packet pool of a worker: DPDK's mempool when the config has `dpdk`
/// ports (frames then cross DPDK without a copy), else the engine's own.
/// Called on the worker's thread after it opened its ports.
pub fn worker_pool(cfg: &EngineConfig) -> PacketPool {
    #[cfg(feature = "dpdk")]
    if let Some(pool) = dpdk::worker_pool(cfg) {
        return pool;
    }
    PacketPool::new(cfg.engine.pool_size)
}

/// Process-wide set-up some drivers need before any worker opens a queue
/// (DPDK: EAL and its devices). Called once per engine start.
pub fn prepare(cfg: &EngineConfig) -> Result<(), PortError> {
    #[cfg(feature = "dpdk")]
    dpdk::prepare(cfg)?;
    let _ = cfg;
    Ok(())
}
