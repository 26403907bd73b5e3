//! Shared-memory ABI between the control process and the engine: table
//! generations (layout, typed validated views, atomic publication, epoch
//! reclamation) and per-worker counters. Both processes depend on this crate
//! and on nothing of each other.
//!
//! Runtime directory (default `/run/patronus`, 0700; files 0600):
//! - `control.shm`: [`control::ControlBlock`], created by whichever process
//!   comes first (filled in a temp file, then `link`ed into place).
//! - `tables/gen-N.bin`: one immutable generation, written to a temp file,
//!   fsynced and renamed; a [`layout::GenerationHeader`] with a table
//!   directory, then each table ([`TableHeader`] + entries) at a 64-byte
//!   aligned offset.
//! - `counters.shm`: [`counters::CounterFileHeader`], counter names, per
//!   worker counters and histograms; created by the engine.
//! - `publisher.lock`: `flock`ed by the one live publisher.
//! - `nat.bin`: the pushed NAT configuration ([`nat`]), numbered by the
//!   control block's `nat_generation`.
//! - `nat.sock`: the engine's NAT session query socket ([`nat_query`]).
//! - `wg.bin`: the pushed WireGuard tunnels, peers and allowed IPs ([`wg`];
//!   holds private keys), numbered by the control block's `wg_generation`.
//! - `flows.sock`: the engine's flow query socket ([`flow_query`]).
//! - `lb.bin`: the pushed load-balancer VIPs and backends ([`lb`]),
//!   numbered by the control block's `lb_generation`.
//! - `lb.sock`: the engine's per-backend counter query socket
//!   ([`lb_query`]).
//! - `model.bin`: the pushed classifier model ([`model`]; opaque model
//!   file bytes, empty = no model), numbered by the control block's
//!   `model_generation`.
//!
//! The engine's WireGuard counters in `counters.shm` are named by one
//! contract both sides use: [`wg_counters`]; its classification counters
//! by [`classify_counters`].
//!
//! Control process: `Publisher::open(dir)?`, then for each new desired
//! state `publish(&GenerationBuilder)` and now and then `gc()`.
//! A generation may be a delta (`delta_of`: a `RouteChange` table against
//! the generation before), self-contained (full tables), or a checkpoint
//! (both); `catch_up` plans how a reader gets from what it holds to the
//! newest.
//! Engine: `Subscriber::open(dir)?`; each worker holds a `WorkerHandle`
//! (`subscriber.worker(i)`); between batches the engine calls `poll()` (one
//! atomic load when nothing changed), switches workers to the new
//! `Generation` and each worker calls `ack(n)` once it no longer touches
//! older ones, and `ack`/`heartbeat_at` at least every few seconds (the
//! publisher's `stale_worker_ms`, default 10 s) so it keeps holding back
//! reclamation. Counters: `CounterBlock::create` / `take_worker` in the
//! engine, `CounterReader` in the control process.

pub mod catch_up;
pub mod classify_counters;
pub mod control;
pub mod counters;
pub mod error;
pub mod flow_query;
pub mod generation;
pub mod histogram;
pub mod layout;
pub mod lb;
pub mod lb_query;
pub mod model;
pub mod nat;
pub mod nat_query;
pub mod pod;
pub mod publish;
pub mod route6;
pub mod runtime_dir;
mod shared_file;
pub mod subscribe;
pub mod table;
pub mod wg;
pub mod wg_counters;

pub use catch_up::{catch_up, CatchUp};
pub use control::{WorkerHandle, WorkerStatus, MAX_WORKERS};
pub use counters::{CounterBlock, CounterReader, CounterSnapshot, CounterSpec, WorkerCounters};
pub use error::ShmError;
pub use generation::{GenerationBuilder, GenerationView};
pub use histogram::{HistogramSnapshot, Log2Histogram};
pub use layout::{
    InterfaceEntry, NeighborEntry, RouteChange, RouteEntry, RouteKind, TableEntry, TableHeader,
    TableKind, ABI_VERSION, ROUTE_KIND_TUNNEL,
};
pub use lb::{LbBackendEntry, LbSettingsEntry, LbTables, LbVipEntry, LB_FILE};
pub use model::{decode_model_file, encode_model_file, ModelFile, MODEL_FILE};
pub use nat::{NatForwardEntry, NatOneToOneEntry, NatPoolEntry, NatSettingsEntry, NatTables};
pub use pod::{AlignedBuf, Pod};
pub use publish::{Publisher, PublisherOptions};
pub use route6::{Route6Entry, Route6Tables, ROUTE6_FILE};
pub use runtime_dir::{monotonic_ms, RuntimeDir, DEFAULT_RUNTIME_DIR};
pub use subscribe::{Generation, Subscriber};
pub use table::{checksum, TableBuilder, TableView};
pub use wg::{WgAllowedIpEntry, WgPeerEntry, WgTables, WgTunnelEntry};
pub use wg_counters::{
    parse_wg_counter, wg_peer_label, WgCounter, WG_COUNTER_PREFIX, WG_DROP_REASONS,
    WG_PEER_COUNTERS, WG_TUNNEL_COUNTERS,
};
