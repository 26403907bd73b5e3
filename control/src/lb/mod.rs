//! L4 load balancer support in the control process: VIPs and backends
//! ([`model`]: request bodies and validation), backend health checks
//! ([`health`] holds the check description and the rise/fall state
//! machine, [`probe`] runs one TCP or HTTP probe, [`monitor`] the actor that
//! probes a set of backends on their intervals and reports state changes,
//! [`link`] runs a monitor per VIP for the store actor), the push of
//! `lb.bin` ([`push`], [`runtime`]; after a restart, health as the last
//! `lb.bin` had it: [`restore`]), the engine's per-backend counters
//! ([`counters`]) and the metrics ([`metrics`], over [`status`]).

pub mod counters;
pub mod health;
pub mod link;
pub mod metrics;
pub mod model;
pub mod monitor;
pub mod probe;
pub mod push;
pub mod restore;
pub mod runtime;
pub mod status;

pub use health::{
    BackendHealth, CheckError, CheckKind, Health, HealthCheck, HttpCheck, StatusRange, Transition,
};
pub use monitor::{HealthEvent, HealthMonitor, MonitorClosed, MonitorConfig};
pub use probe::{probe, ProbeFailure, ProbeOk};

#[cfg(test)]
mod test_util;
