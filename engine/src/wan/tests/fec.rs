//! Tests of `wan::fec`.
