//! Flow classification through the control plane: the engine's
//! `classify.*` counters read into a summary ([`summary`]); flows are
//! listed through the engine's query socket ([`crate::engine_query`]).

pub mod summary;
