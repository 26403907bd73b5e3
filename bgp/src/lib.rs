//! BGP-4 for the control process (issue 9), as a protocol core with no I/O
//! and no clock: the caller (an actor in `patronus-control` owning the TCP
//! sessions and timers) feeds bytes, events and `now`, and carries out the
//! actions returned.
//!
//! - [`types`]: the values every part shares (prefixes, AFI/SAFI, path
//!   attributes, AS paths, communities).
//! - `wire` (planned): zero-copy views and encoders for every message and
//!   attribute, capabilities, RFC 7606 error handling.
//! - `fsm` (planned): the RFC 4271 session state machine and its timers.
//! - `rib` (planned): Adj-RIB-In/Loc-RIB, best-path selection (RFC 4271
//!   9.1 tie-breaks) and multipath.
//! - `policy` (planned): import/export policies (prefix lists, AS-path
//!   length and regex, communities, local-pref and MED).
#![forbid(unsafe_code)]

pub mod fsm;
pub mod rib;
pub mod types;
