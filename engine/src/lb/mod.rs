//! L4 load balancing (issue 8): VIPs whose flows go to a pool of backends
//! chosen by Maglev consistent hashing and pinned per flow.
//!
//! - [`spec`]: what is asked (from `[lb]` or a pushed `lb.bin`);
//!   [`plan`] compiles it into an immutable [`plan::LbPlan`] (one
//!   [`maglev::MaglevTable`] per VIP over the backends that are up; drained
//!   ones stay in the table's key set with weight 0) that the link thread
//!   hands to the workers between batches.
//! - [`balancer::Balancer`] (one per worker) matches packets, looks up or
//!   creates the flow's pin in [`pins::PinTable`] and rewrites in place:
//!   NAT mode rewrites the destination (and the replies' source back);
//!   DSR mode leaves the packet for the pipeline to encapsulate IP-in-IP.
//!   A pool change never moves a pinned flow, except one whose backend is
//!   down or gone (chosen again at its next packet).
//! - [`counters`]: per backend (flows, active, packets, bytes; read through
//!   `lb.sock`) and per worker totals (`lb.*`).
//!
//! [`maglev`] and [`hash`] are the Maglev table itself (NSDI 2016), with no
//! packet code.

pub mod balancer;
pub mod counters;
pub mod hash;
pub mod maglev;
pub mod pins;
pub mod plan;
pub mod spec;
mod turns;

#[cfg(test)]
mod tests;

pub use balancer::{Balancer, Dir, LbDrop, LbVerdict};
pub use counters::{BackendCounters, LbCounters, LB_COUNTER_NAMES};
pub use plan::{LbPlan, PlanError, SlotMap};
pub use spec::{BackendSpec, LbMode, LbSettings, LbSpec, VipSpec};
