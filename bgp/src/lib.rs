//! BGP-4 for the control process (issue 9), as a protocol core with no I/O
//! and no clock: the caller (an actor in `patronus-control` owning the TCP
//! sessions and timers) feeds bytes, events and `now`, and carries out the
//! actions returned.
//!
//! - [`types`]: the values every part shares (prefixes, AFI/SAFI, path
//!   attributes, AS paths, communities).
//! - [`wire`]: views and encoders for every message and attribute,
//!   capabilities (MP, route refresh, 4-octet AS, graceful restart), RFC
//!   7606 error handling (treat-as-withdraw, attribute discard, reset).
//! - [`fsm`]: the RFC 4271 session state machine with its timers as
//!   deadlines, collision detection, graceful restart as helper (RFC 4724).
//! - [`rib`]: Adj-RIB-In per peer and the Loc-RIB with best-path selection
//!   (RFC 4271 9.1 tie-breaks), multipath, stale routes and their sweep.
//! - [`policy`]: import/export policies (prefix lists with ge/le, AS-path
//!   length and regex, communities, local-pref, MED, prepend, next hop) and
//!   RFC 8212's default deny for eBGP.
//!
//! Still to come (issue 9): the speaker actor in `patronus-control` that
//! runs sessions over TCP with these cores, next-hop resolution through the
//! FIB, the compilation of selected routes into the engine's FIB, the API.
#![forbid(unsafe_code)]

pub mod fsm;
pub mod policy;
pub mod rib;
pub mod types;
pub mod wire;
