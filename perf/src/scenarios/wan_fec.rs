//! Issue 10 benchmarks that need no running engine, on the engine's `wan`
//! library: `wan-fec-cost` (FEC and lz4 cost per core against a plain
//! copy, same run) and `wan-fec-loss` (loss recovered versus overhead over
//! a seeded lossy channel, with and without FEC, plus the adaptive toggle).

mod channel;
mod cost;
mod loss;
mod payload;

pub use cost::run as run_cost;
pub use loss::run as run_loss;
