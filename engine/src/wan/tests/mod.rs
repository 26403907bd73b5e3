//! Unit and property tests of the WAN module, one file per part.

mod compress;
mod fec;
mod probe;
mod runtime;
mod steering;
mod window;
mod wire;
