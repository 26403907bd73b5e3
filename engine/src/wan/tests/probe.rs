//! Tests of `wan::probe`.
