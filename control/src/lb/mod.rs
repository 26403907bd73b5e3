//! L4 load balancer support in the control process. For now: backend health
//! checks ([`health`] holds the check description and the rise/fall state
//! machine, [`probe`] runs one TCP or HTTP probe, [`monitor`] the actor that
//! probes a set of backends on their intervals and reports state changes).

pub mod health;
pub mod monitor;
pub mod probe;

pub use health::{
    BackendHealth, CheckError, CheckKind, Health, HealthCheck, HttpCheck, StatusRange, Transition,
};
pub use monitor::{HealthEvent, HealthMonitor, MonitorClosed, MonitorConfig};
pub use probe::{probe, ProbeFailure, ProbeOk};

#[cfg(test)]
mod test_util;
