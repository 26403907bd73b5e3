//! Helpers for end-to-end tests: network namespaces that clean up after
//! themselves, background processes killed on drop, the engine binary and its
//! JSON counters, and the scapy scripts that craft and read frames.
//!
//! Everything here panics with a clear message on failure: it only ever runs
//! inside tests.

pub mod capture;
pub mod classify_topology;
pub mod cmd;
pub mod control;
pub mod engine;
pub mod lb_topology;
pub mod nat_topology;
pub mod netns;
pub mod probe;
pub mod process;
pub mod routing_daemons;
pub mod scapy;
pub mod seq_udp;
pub mod seqflow;
pub mod stats;
pub mod tempdir;
pub mod topology;
pub mod wan_topology;
pub mod wg_topology;

pub use capture::Capture;
pub use engine::{engine_binary, Engine};
pub use netns::Netns;
pub use process::BgProcess;
pub use stats::EngineStats;
pub use tempdir::TempDir;
pub use topology::{RouterKind, Topology};

/// Fails the test unless it runs as root: namespace tests cannot run
/// otherwise, and a skipped test must not look like a passed one.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "end-to-end tests create network namespaces and must run as root \
         (e.g. `sudo -E cargo test -p patronus-e2e`); euid is {euid}"
    );
}
