//! Patronus control process (being built).
fn main() {}
