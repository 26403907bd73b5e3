//! The ML model registry: uploaded classifier models ([`model`]: what the
//! API shows, upload validation with the ML crate's own parser), kept in
//! the store with a promotion history (`crate::store`'s `models` tables),
//! and the active one pushed to the engine as `model.bin` ([`push`]).

pub mod model;
pub mod push;
