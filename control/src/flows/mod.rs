//! Flow classification through the control plane: the client of the
//! engine's flow query socket ([`query`]) and the engine's `classify.*`
//! counters read into a summary ([`summary`]).

pub mod query;
pub mod summary;
