//! Scenarios: each builds its setup, runs Patronus and its baseline in the
//! same run, and returns a [`crate::report::Report`].

pub mod bgp_load;
pub mod classify_pcap;
mod conn_rate;
pub mod fwd_dpdk_null;
pub mod fwd_mem;
pub mod fwd_veth;
pub mod lb_mem;
pub mod lb_veth;
mod mem_phase;
pub mod ml_infer;
pub mod nat_mem;
pub mod nat_veth;
mod rounds;
pub mod route_push;
mod udp_rate;
pub mod wan_fec;
pub mod wan_veth;
pub mod wg_mem;
pub mod wg_veth;

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Options shared by all scenarios.
#[derive(Clone, Debug)]
pub struct Options {
    /// Measured window (after the warm-up).
    pub duration: Duration,
    pub warmup: Duration,
    /// `--engine PATH`, else the workspace's release build.
    pub engine: Option<PathBuf>,
    /// Core for the generator; the router (engine worker) gets the other.
    pub gen_core: usize,
    pub router_core: usize,
    /// Nice value of the generator thread and the engine (negative = they
    /// win the CPU over other load on a shared machine).
    pub nice: i32,
    /// fwd-veth: also run the kernel with RPS steering R's receive work to
    /// the router core.
    pub rps: bool,
    /// fwd-veth: interleaved rounds of all systems (medians reported).
    pub rounds: usize,
    /// Scratch directory for configs, logs and stats files.
    pub workdir: PathBuf,
}

/// A scratch directory removed on drop (kept when PATRONUS_PERF_KEEP is set).
#[derive(Debug)]
pub struct Workdir(pub PathBuf);

impl Workdir {
    pub fn create() -> anyhow::Result<Workdir> {
        let p = std::env::temp_dir().join(format!("patronus-perf-{}", std::process::id()));
        std::fs::create_dir_all(&p)?;
        Ok(Workdir(p))
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        if std::env::var_os("PATRONUS_PERF_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        } else {
            eprintln!("kept {}", self.0.display());
        }
    }
}
