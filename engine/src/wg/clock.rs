//! The clock boringtun reads. `Tunn` calls `Instant::now()` itself (timers,
//! handshake timestamps, cookie secrets); with boringtun's `mock-instant`
//! feature that is `mock_instant`'s thread-local clock. Every `Tunnel` entry
//! point sets that clock to the `now` it is given, so:
//! - in unit tests (engine dev-dependency turns the feature on) boringtun
//!   runs on the caller's fake clock, and each test thread has its own;
//! - in a normal build the feature is off, boringtun reads the real
//!   monotonic clock and this store is one unused thread-local write.
//!
//! Cargo unifies features per build, so a binary built by `cargo test`
//! has the feature on too; it then still runs on `now` (a monotonic
//! clock the pipeline passes), never on a frozen one.

use std::time::Duration;

/// Makes `now_ns` boringtun's "now" on this thread (when it reads the mock).
#[inline]
pub(crate) fn set(now_ns: u64) {
    mock_instant::MockClock::set_time(Duration::from_nanos(now_ns));
}
