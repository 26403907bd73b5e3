//! `patronus-engine --config FILE`: runs the data plane.
fn main() {}
