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
//! Not yet connected: the desired-state snapshot to a running speaker, the
//! speaker's `BgpStatus`, and its selected routes to the engine's FIB.

pub mod model;
pub mod speaker;
pub mod status;
