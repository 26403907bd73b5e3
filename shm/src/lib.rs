//! Shared-memory ABI between the control process and the engine: table
//! generations (layout, typed validated views, atomic publication, epoch
//! reclamation) and per-worker counters. Both processes depend on this crate
//! and on nothing of each other.

pub mod control;
pub mod counters;
pub mod error;
pub mod generation;
pub mod histogram;
pub mod layout;
pub mod pod;
pub mod publish;
pub mod runtime_dir;
mod shared_file;
pub mod subscribe;
pub mod table;

pub use control::{WorkerHandle, WorkerStatus, MAX_WORKERS};
pub use counters::{CounterBlock, CounterReader, CounterSnapshot, CounterSpec, WorkerCounters};
pub use error::ShmError;
pub use generation::{GenerationBuilder, GenerationView};
pub use histogram::{HistogramSnapshot, Log2Histogram};
pub use layout::{
    InterfaceEntry, NeighborEntry, RouteEntry, RouteKind, TableEntry, TableHeader, TableKind,
    ABI_VERSION,
};
pub use pod::{AlignedBuf, Pod};
pub use publish::{Publisher, PublisherOptions};
pub use runtime_dir::{monotonic_ms, RuntimeDir, DEFAULT_RUNTIME_DIR};
pub use subscribe::{Generation, Subscriber};
pub use table::{checksum, TableBuilder, TableView};
