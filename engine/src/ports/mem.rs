//! The `mem` driver: a synthetic traffic generator (RX) and a counting sink
//! (TX) for benchmarks and demos, with no I/O at all.
//!
//! RX copies prebuilt Ethernet/IPv4/UDP frames (see [`GeneratorConfig`]) into
//! pool buffers; TX counts and drops, optionally keeping copies of the first
//! frames for tests ([`MemPort::capture_tx`]).

mod generator;
mod mac;
mod rate;
mod template;
#[cfg(test)]
mod tests;

pub(crate) use mac::port_mac;

use self::generator::Generator;
use super::{LinkInfo, Port, PortError, TxDone};
use crate::buffer::{Batch, PacketPool, BUF_SIZE};
use crate::config::{GeneratorConfig, PortConfig};

/// One queue of a `mem` port.
pub struct MemPort {
    name: String,
    mac: [u8; 6],
    mtu: u16,
    generator: Option<Generator>,
    sink_packets: u64,
    sink_bytes: u64,
    /// Preallocated copies of sent frames; the first `captured` are filled.
    capture: Vec<Vec<u8>>,
    captured: usize,
}

impl MemPort {
    /// Opens queue `queue` of `nqueues`: parses the MAC and, when the port
    /// has a generator, prebuilds its frames (flows offset by `queue`).
    pub fn open(cfg: &PortConfig, queue: usize, _nqueues: usize) -> Result<Self, PortError> {
        let mac = port_mac(cfg)?;
        let generator = cfg
            .generator
            .as_ref()
            .map(|g: &GeneratorConfig| Generator::new(g, queue, mac))
            .transpose()
            .map_err(|msg| PortError::Other {
                port: cfg.name.clone(),
                msg,
            })?;
        Ok(MemPort {
            name: cfg.name.clone(),
            mac,
            mtu: cfg.mtu.unwrap_or(1500),
            generator,
            sink_packets: 0,
            sink_bytes: 0,
            capture: Vec::new(),
            captured: 0,
        })
    }

    /// Packets and bytes the sink has taken so far.
    pub fn sink_counts(&self) -> (u64, u64) {
        (self.sink_packets, self.sink_bytes)
    }

    /// Keeps copies of the next `max_frames` frames sent (for tests). Storage
    /// for all of them is allocated here, so `tx_burst` never allocates.
    /// Calling it again starts a new capture.
    pub fn capture_tx(&mut self, max_frames: usize) {
        self.capture = (0..max_frames)
            .map(|_| Vec::with_capacity(BUF_SIZE))
            .collect();
        self.captured = 0;
    }

    /// The frames captured since [`MemPort::capture_tx`], in send order.
    pub fn captured(&self) -> &[Vec<u8>] {
        &self.capture[..self.captured]
    }
}

impl Port for MemPort {
    fn name(&self) -> &str {
        &self.name
    }

    fn rx_burst(&mut self, pool: &mut PacketPool, batch: &mut Batch) -> usize {
        match &mut self.generator {
            Some(g) => g.fill(pool, batch),
            None => 0,
        }
    }

    fn tx_burst(&mut self, batch: &mut Batch) -> TxDone {
        let n = batch.len();
        let before = self.sink_bytes;
        batch.take_each(|_, p| {
            self.sink_packets += 1;
            self.sink_bytes += p.len() as u64;
            if let Some(slot) = self.capture.get_mut(self.captured) {
                // A packet is never longer than its buffer, so this copy fits
                // in the capacity reserved by `capture_tx`.
                slot.clear();
                slot.extend_from_slice(p.data());
                self.captured += 1;
            }
        });
        TxDone {
            packets: n,
            bytes: self.sink_bytes - before,
        }
    }

    fn link(&self) -> LinkInfo {
        LinkInfo {
            up: true,
            mtu: self.mtu,
            mac: self.mac,
            speed_mbps: None,
        }
    }

    /// A generator with a `count` ends; a port without a generator has no
    /// input at all, so it reports exhausted from the start.
    fn rx_exhausted(&self) -> bool {
        self.generator.as_ref().is_none_or(|g| g.exhausted())
    }
}
