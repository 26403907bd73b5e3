//! The `dpdk` port driver: DPDK ethdevs (NICs bound to vfio-pci, or virtual
//! devices such as `net_af_packet`, `net_af_xdp`, `net_ring`, `net_null`)
//! through our own `patronus-dpdk-sys` bindings. Built with the cargo
//! feature `dpdk`.
//!
//! [`prepare`] runs once per engine start, before the workers: it
//! initialises EAL from `[dpdk]` (once per process) and configures every
//! `dpdk` port's device with one RX and one TX queue per worker (RSS with the
//! symmetric key where the device supports it). Each worker then opens its
//! queue with [`DpdkPort::open`].

mod device;
mod eal;
mod port;
#[cfg(test)]
mod tests;

pub use eal::{eal_args, explain_eal_error};
pub use port::DpdkPort;

use crate::config::{DpdkSection, EngineConfig, PortDriver};
use crate::ports::PortError;

/// Initialises EAL (first call in the process) and sets up the devices of
/// every `dpdk` port for `cfg.engine.workers` queues.
pub fn prepare(cfg: &EngineConfig) -> Result<(), PortError> {
    let default = DpdkSection::default();
    let section = cfg.dpdk.as_ref().unwrap_or(&default);
    let mut ports = cfg
        .ports
        .iter()
        .enumerate()
        .filter(|(_, p)| p.driver == PortDriver::Dpdk)
        .peekable();
    let Some((_, first)) = ports.peek() else {
        return Ok(());
    };
    eal::ensure_init(section).map_err(|msg| PortError::Other {
        port: first.name.clone(),
        msg,
    })?;
    device::close_at_exit();
    for (i, p) in ports {
        device::setup(p, &format!("port[{i}].device"), cfg.engine.workers).map_err(|msg| {
            PortError::Other {
                port: p.name.clone(),
                msg,
            }
        })?;
    }
    Ok(())
}
