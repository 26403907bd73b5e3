//! NAT44 through the control plane: the configuration's model
//! ([`model`]), its compilation into the shared-memory NAT file and
//! publication ([`push`]), and the client of the engine's session query
//! socket ([`sessions`]).

pub mod model;
pub mod push;
pub mod sessions;
