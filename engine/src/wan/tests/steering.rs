//! Tests of `wan::steering`.
