//! Unit tests of the afxdp driver's parts.
