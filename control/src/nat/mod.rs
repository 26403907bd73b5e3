//! NAT44 through the control plane: the configuration's model
//! ([`model`]), its compilation into the shared-memory NAT file and
//! publication ([`push`]). Sessions are listed through the engine's query
//! socket ([`crate::engine_query`]).

pub mod model;
pub mod push;
