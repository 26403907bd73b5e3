//! The `dpdk` port driver: DPDK ethdevs (NICs bound to vfio-pci, or virtual
//! devices such as `net_af_packet`, `net_af_xdp`, `net_ring`, `net_null`)
//! through our own `patronus-dpdk-sys` bindings. Built with the cargo
//! feature `dpdk`.
//!
//! [`prepare`] runs once per engine start, before the workers: it
//! initialises EAL from `[dpdk]` (once per process) and configures every
//! `dpdk` port's device with one RX and one TX queue per worker (RSS with the
//! symmetric key where the device supports it); a device with fewer queues
//! or no way to spread flows gets software dispatch (`dispatch.rs`) and
//! shared TX queues (`device::plan_queues`). Each worker then opens its
//! queue with [`DpdkPort::open`] and takes its packet pool from
//! [`worker_pool`]: engine buffers are mbufs (see `mbuf.rs`), so a frame
//! goes from RX queue through the pipeline to TX queue without a copy.

mod device;
mod dispatch;
mod eal;
mod mbuf;
mod port;
#[cfg(test)]
mod tests;

pub use device::{plan_queues, QueuePlan, RxMode};
pub use dispatch::flow_hash;
pub use eal::{eal_args, explain_eal_error};
pub use port::{CopyCounters, DpdkPort};

use crate::buffer::{ExternalBuffers, PacketPool};
use crate::config::{DpdkSection, EngineConfig, PortConfig, PortDriver};
use crate::ports::PortError;

/// Initialises EAL (first call in the process) and sets up the devices of
/// every `dpdk` port for `cfg.engine.workers` queues.
pub fn prepare(cfg: &EngineConfig) -> Result<(), PortError> {
    let default = DpdkSection::default();
    let section = cfg.dpdk.as_ref().unwrap_or(&default);
    let ports: Vec<(usize, &PortConfig)> = cfg
        .ports
        .iter()
        .enumerate()
        .filter(|(_, p)| p.driver == PortDriver::Dpdk)
        .collect();
    let Some(&(_, first)) = ports.first() else {
        return Ok(());
    };
    eal::ensure_init(section).map_err(|msg| PortError::Other {
        port: first.name.clone(),
        msg,
    })?;
    device::close_at_exit();
    // Every device must exist and have its queues planned before the pool
    // is sized: rings, caches and (software dispatch) inboxes of every device.
    let mut nmbufs = cfg.engine.workers as u32 * cfg.engine.pool_size;
    for &(i, p) in &ports {
        let probed =
            device::probe(p, &format!("port[{i}].device"), cfg.engine.workers).map_err(|msg| {
                PortError::Other {
                    port: p.name.clone(),
                    msg,
                }
            })?;
        nmbufs += probed.plan.mbufs(probed.workers);
    }
    let pool = device::shared_pool(nmbufs).map_err(|msg| PortError::Other {
        port: first.name.clone(),
        msg,
    })?;
    for &(i, p) in &ports {
        device::setup(p, &format!("port[{i}].device"), cfg.engine.workers, pool).map_err(
            |msg| PortError::Other {
                port: p.name.clone(),
                msg,
            },
        )?;
    }
    Ok(())
}

/// A worker's packet pool for a config with `dpdk` ports: its buffers are
/// mbufs of the shared mempool, so frames a DPDK queue receives enter the
/// pipeline as they are, and frames from anywhere leave by DPDK without a
/// copy. None without `dpdk` ports (or before [`prepare`]).
pub fn worker_pool(cfg: &EngineConfig) -> Option<PacketPool> {
    if !cfg.ports.iter().any(|p| p.driver == PortDriver::Dpdk) {
        return None;
    }
    let pool = device::current_pool()?;
    eal::register_thread();
    let ext = ExternalBuffers {
        ctx: pool.0.as_ptr().cast(),
        alloc: mbuf::alloc_buffer,
        free: mbuf::free_buffer,
    };
    Some(PacketPool::with_external(ext, cfg.engine.pool_size))
}
