//! Tests of `wan::wire`.
