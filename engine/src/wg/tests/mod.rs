//! Unit tests of the WireGuard data path.
