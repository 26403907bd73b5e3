//! BGP in the control process (issue 9):
//! - [`model`]: the desired state the operator sets through the API (global
//!   settings, neighbors, policies, originated networks), kept by the store
//!   and published as a `BgpDesired` snapshot;
//! - [`speaker`]: the runtime (an instance actor owning the RIB and
//!   policies, a task per session) over the protocol cores of
//!   `patronus-bgp`;
//! - [`status`]: what the API asks the running speaker (session state,
//!   counters, RIB pages).
//!
//! - [`supervisor`] (`patronus-control --bgp`): desired state → running
//!   speaker, applied live; [`runtime`]: its `BgpStatus`; [`fib_link`]:
//!   selected routes → engine (IPv4 merged into the pushed generations,
//!   IPv6 into `route6.bin`); [`nexthop`]: next-hop resolution over the
//!   pushed FIB; [`metrics`]: `patronus_bgp_*`.

pub mod fib_link;
pub mod metrics;
pub mod model;
pub mod nexthop;
pub mod runtime;
pub mod speaker;
pub mod status;
pub mod supervisor;
