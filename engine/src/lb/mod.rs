//! L4 load balancing (issue 8): the Maglev consistent-hashing core. A
//! library with no I/O, no clock and no packet code.
//!
//! [`maglev::MaglevTable`] maps a flow's 64-bit hash to a backend of a VIP's
//! pool, honouring weights (weight 0 drains a backend: no new flows). The
//! table depends only on the set of backends (keyed by address and port,
//! [`maglev::backend_key`]) and is derived with our own stable hash
//! ([`hash`]), so the same pool yields the same table on every build, after
//! a restart and on an HA peer; a change of the pool moves only about the
//! changed backend's share of the entries.
//!
//! How it will fit (the lead's later work): the control process (or the
//! engine's link thread) builds one table per VIP when the pool or a
//! backend's health changes and publishes it as an immutable generation
//! that workers adopt between batches; `get` is the only call on the packet
//! path (one modulo, one read). Maglev alone would still move some
//! established connections when the pool changes, so the pipeline pins the
//! chosen backend in the worker's flow table on a flow's first packet and
//! consults the table only for flows it has not seen: a pool change (a
//! backend added, drained or failed) then never moves an established
//! connection, except those of a backend that is gone.

pub mod hash;
pub mod maglev;
mod turns;

#[cfg(test)]
mod tests;
