//! Tests of `wan::window`.
