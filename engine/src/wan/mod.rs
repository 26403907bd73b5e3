//! WAN optimization and path steering (issue 10), as a library with no
//! I/O and no clock: time is an argument (`now`, monotonic ns), so tests
//! drive a fake clock. The pipeline places it after route and before
//! WireGuard encapsulation (and the reverse after decapsulation).
//!
//! - [`wire`]: the WAN header inside the tunnel payload (plain, probe,
//!   probe reply, FEC data/parity, compressed).
//! - [`probe`] + [`window`]: per-path probing, sliding-window loss / RTT /
//!   jitter, alive/dead with failover inside 1 s of the first lost probe.
//! - [`policy`] + [`steering`]: SLA policies per application class and
//!   tenant, path scoring, per-flow choice with hysteresis and hold-down.
//! - [`fec`]: Reed-Solomon groups of k data + m parity packets, bounded
//!   delay both ways, adaptive on/off.
//! - [`compress`]: per-packet lz4, skipped when it does not pay.
//! - [`runtime`]: one worker's state built from `[wan]` (the above per
//!   path and site), what the pipeline's WAN stage calls.
//!
//! [`bench`] holds workload functions the perf harness can time.

pub mod bench;
pub mod compress;
pub mod dedup;
pub mod envelope;
pub mod fec;
pub mod policy;
pub mod probe;
pub mod runtime;
pub mod steering;
pub mod window;
pub mod wire;

#[cfg(test)]
mod tests;

pub use compress::{CompressCounters, CompressError, Compressed, Compressor};
pub use fec::{FecConfig, FecCounters, FecDecoder, FecEncoder, FecError, FecToggle};
pub use policy::{
    AppClass, PathId, PathInfo, Policy, PolicyId, PolicyTable, Preference, Sla, SteeringMode,
    TenantId, UplinkKind,
};
pub use probe::{PathProbe, PathState, ProbeConfig, ProbeConfigError};
pub use steering::{FlowSteer, Steering};
pub use window::{ProbeWindow, ReplyOutcome, WindowConfig, WindowStats};
pub use wire::{WanPacket, WanWireError};
