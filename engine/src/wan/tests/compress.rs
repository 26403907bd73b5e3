//! Tests of `wan::compress`.
