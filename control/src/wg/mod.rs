//! WireGuard tunnels through the control plane: keys ([`keys`]), the
//! API's model ([`model`]), compilation into the shared-memory `wg.bin`
//! and its publication ([`push`]), and the engine's per-peer counter names
//! ([`counters`]).

pub mod counters;
pub mod keys;
pub mod model;
pub mod push;
