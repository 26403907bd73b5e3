//! The IPv4 FIB: longest-prefix match and next hops.
pub mod lpm;
