//! Placeholder until the pcap driver lands.
use super::{LinkInfo, Port, PortError};
use crate::buffer::{Batch, PacketPool};
use crate::config::PortConfig;

/// pcap port queue.
pub struct PcapPort {
    name: String,
}

impl PcapPort {
    /// Opens one queue.
    pub fn open(cfg: &PortConfig, _queue: usize, _nqueues: usize) -> Result<Self, PortError> {
        Err(PortError::Other {
            port: cfg.name.clone(),
            msg: "driver not built yet".into(),
        })
    }
}

impl Port for PcapPort {
    fn name(&self) -> &str {
        &self.name
    }
    fn rx_burst(&mut self, _pool: &mut PacketPool, _batch: &mut Batch) -> usize {
        0
    }
    fn tx_burst(&mut self, batch: &mut Batch) -> usize {
        batch.clear();
        0
    }
    fn link(&self) -> LinkInfo {
        LinkInfo {
            up: false,
            mtu: 1500,
            mac: [0; 6],
            speed_mbps: None,
        }
    }
}
