//! What the API asks the running speaker: a neighbor's session state and
//! counters, and pages of the RIB. [`BgpStatus`] is the seam: the speaker
//! implements it; until one runs, [`NoSpeaker`] answers 503 "BGP speaker
//! not running".

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::pin::Pin;

use patronus_bgp::types::Prefix;
use serde::Serialize;

use super::model::{display, Family};

/// A boxed future (the trait is used as `Arc<dyn BgpStatus>`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// RIB page size when `limit` is absent, and the largest one.
pub const DEFAULT_RIB_LIMIT: u32 = 100;
pub const MAX_RIB_LIMIT: u32 = 1000;

/// Why the speaker could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatusError {
    /// No speaker runs (not built in, BGP disabled or not configured) (503).
    #[error("BGP speaker not running")]
    NotRunning,
    /// The speaker has no session for this address (404 on `address`).
    #[error("no BGP neighbor {0}")]
    NoSuchNeighbor(IpAddr),
    /// The cursor is not one the speaker gave out, or is stale (400 on `cursor`).
    #[error("{0:?} is not a cursor this API gave out")]
    BadCursor(String),
    /// The speaker did not answer in time or failed (503).
    #[error("the BGP speaker did not answer: {0}")]
    Unavailable(String),
}

/// RFC 4271 session states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

/// Per-session counters since the neighbor was configured (they survive
/// session resets).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct NeighborCounters {
    pub messages_received: u64,
    pub messages_sent: u64,
    pub updates_received: u64,
    pub updates_sent: u64,
    pub notifications_received: u64,
    pub notifications_sent: u64,
    /// Times the session reached Established.
    pub established_transitions: u64,
    /// Prefixes in the Adj-RIB-In now (before import policy).
    pub prefixes_received: u64,
    /// Of those, accepted by import policy.
    pub prefixes_accepted: u64,
    /// Prefixes advertised to the neighbor now (after export policy).
    pub prefixes_advertised: u64,
}

/// `GET /api/v1/bgp/neighbors/{address}/state`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NeighborStatus {
    pub address: IpAddr,
    pub state: SessionState,
    /// Seconds in Established (`None` when not established).
    pub uptime_secs: Option<u64>,
    /// The peer's BGP identifier once its OPEN arrived.
    pub remote_router_id: Option<Ipv4Addr>,
    /// The hold time agreed (`None` before OpenConfirm).
    pub hold_time_secs: Option<u16>,
    /// Families both sides announced.
    pub families: Vec<Family>,
    /// True while the peer restarts and its routes are kept as stale.
    pub graceful_restart_active: bool,
    /// Why the session last went down (a NOTIFICATION or a TCP error).
    pub last_error: Option<String>,
    pub counters: NeighborCounters,
}

/// `GET /api/v1/bgp/rib?prefix=&cursor=&limit=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RibQuery {
    /// Only routes whose prefix lies within this one (itself included).
    pub prefix: Option<Prefix>,
    /// Where the previous page stopped (opaque, from `next_cursor`).
    pub cursor: Option<String>,
    /// 1..=[`MAX_RIB_LIMIT`].
    pub limit: u32,
}

/// One path in the RIB.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RibRoute {
    #[serde(serialize_with = "display")]
    pub prefix: Prefix,
    /// The neighbor it came from; `None`: an originated network.
    pub peer: Option<IpAddr>,
    /// Selected as best (what goes into the FIB).
    pub best: bool,
    /// Also used for forwarding (multipath).
    pub multipath: bool,
    pub next_hop: Option<IpAddr>,
    /// `65001 65002 {65003,65004}`.
    pub as_path: String,
    /// `igp`, `egp` or `incomplete`.
    pub origin: String,
    pub local_pref: Option<u32>,
    pub med: Option<u32>,
    /// `65001:100`, `no-export`, ...
    pub communities: Vec<String>,
    /// Kept from a restarting peer (graceful restart).
    pub stale: bool,
}

/// One page of the RIB, in prefix order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RibPage {
    pub routes: Vec<RibRoute>,
    /// Give it as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Counts per address family.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FamilyCounts {
    pub ipv4: u64,
    pub ipv6: u64,
}

/// Neighbors configured (enabled) and established.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct NeighborCounts {
    pub configured: u64,
    pub established: u64,
}

/// `GET /api/v1/bgp/summary`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BgpSummary {
    /// A speaker runs (global settings set and enabled).
    pub running: bool,
    /// 0 while not configured.
    pub local_as: u32,
    pub router_id: Ipv4Addr,
    pub neighbors: NeighborCounts,
    /// Best paths learned from neighbors (what goes to the FIB).
    pub selected_routes: FamilyCounts,
    /// BGP routes in the newest generation every live engine worker
    /// acknowledged (IPv4: the main table generation; IPv6: the
    /// `route6.bin` number the engine reports); 0 without an engine.
    pub installed_routes: FamilyCounts,
    /// That IPv4 generation (0: none).
    pub installed_generation: u64,
}

/// The running speaker as the API sees it.
pub trait BgpStatus: Send + Sync {
    /// The session with configured neighbor `address`.
    fn neighbor(&self, address: IpAddr) -> BoxFuture<'_, Result<NeighborStatus, StatusError>>;
    /// A page of the Loc-RIB and Adj-RIBs-In.
    fn rib(&self, query: RibQuery) -> BoxFuture<'_, Result<RibPage, StatusError>>;
    /// The summary; [`StatusError::NotRunning`] when BGP is not enabled in
    /// this process (no `--bgp`).
    fn summary(&self) -> BoxFuture<'_, Result<BgpSummary, StatusError>> {
        Box::pin(async { Err(StatusError::NotRunning) })
    }
}

/// No speaker: every question answers [`StatusError::NotRunning`].
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSpeaker;

impl BgpStatus for NoSpeaker {
    fn neighbor(&self, _: IpAddr) -> BoxFuture<'_, Result<NeighborStatus, StatusError>> {
        Box::pin(async { Err(StatusError::NotRunning) })
    }
    fn rib(&self, _: RibQuery) -> BoxFuture<'_, Result<RibPage, StatusError>> {
        Box::pin(async { Err(StatusError::NotRunning) })
    }
}
