//! The BGP speaker runtime (issue 9): actors on bounded typed channels
//! over the protocol cores of `patronus-bgp` (DESIGN.md habit 6).
//!
//! - [`instance`]: one actor owns the RIB, the policies and the export
//!   state of every neighbour; it handles one [`messages::InstanceMsg`] at a
//!   time.
//! - [`session`]: one task per neighbour owns its TCP connection and its
//!   RFC 4271 state machine (timers via `sleep_until` on the FSM's next
//!   deadline), frames and decodes messages with the negotiated context,
//!   and resolves connection collisions.
//! - [`listener`]: accepts connections and routes them to the sessions.
//! - [`export`]: what each neighbour is sent and how it is packed;
//!   [`open`]: OPEN capabilities both ways; [`resolver`]: next-hop
//!   resolution (connected subnets for now).
//!
//! Import: UPDATE → RFC 7606 outcome (treat-as-withdraw, attribute
//! discard, reset) → loop check → import policy (RFC 8212: an eBGP
//! neighbour without one is denied everything) → RIB. Export: RIB change →
//! split horizon, no re-advertisement of iBGP routes to iBGP, NO_EXPORT /
//! NO_ADVERTISE → export policy → eBGP: local AS prepended, next hop self;
//! iBGP: next hop unchanged, LOCAL_PREF sent. End-of-RIB follows the
//! initial table; ROUTE-REFRESH re-sends the Adj-RIB-Out.
//!
//! Output: [`SpeakerHandle::routes`] (a `watch` of the selected routes,
//! prefix → next hops) and [`SpeakerHandle::changes`] (every change), for
//! the FIB compiler; [`SpeakerHandle::neighbors`] for state and counters.

pub mod config;
pub mod export;
pub mod handle;
pub mod instance;
pub mod listener;
pub mod messages;
pub mod open;
pub mod resolver;
pub mod rib_page;
pub mod session;

#[cfg(test)]
mod restart_tests;
#[cfg(test)]
mod tests;

use std::io;
use std::sync::Arc;

use patronus_bgp::rib::NextHopResolver;
use tokio::sync::{broadcast, mpsc, watch};

pub use config::{ConfigError, Families, NeighborConfig, SpeakerConfig, BGP_PORT};
pub use handle::{
    NeighborCounters, NeighborStatus, RouteChange, RouteTable, SpeakerHandle, SpeakerStats,
    SpeakerStatus, Stopped,
};
pub use messages::{BgpStream, Connection};
pub use resolver::ConnectedResolver;

/// Capacity of the instance's inbox.
pub const INSTANCE_QUEUE: usize = 1024;
/// Capacity of the route change stream.
pub const CHANGE_QUEUE: usize = 65536;

/// Why the speaker did not start.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: io::Error,
    },
}

/// Starts the speaker on the current tokio runtime, resolving next hops
/// through the configured connected subnets.
pub async fn spawn(cfg: SpeakerConfig) -> Result<SpeakerHandle, SpawnError> {
    let resolver = ConnectedResolver::new(cfg.connected.clone());
    spawn_with_resolver(cfg, Box::new(resolver)).await
}

/// Starts the speaker with the caller's next-hop resolver.
pub async fn spawn_with_resolver(
    cfg: SpeakerConfig,
    resolver: Box<dyn NextHopResolver + Send>,
) -> Result<SpeakerHandle, SpawnError> {
    cfg.validate()?;
    let listener = match cfg.listen {
        Some(addr) => Some(
            listener::bind(addr)
                .await
                .map_err(|source| SpawnError::Listen { addr, source })?,
        ),
        None => None,
    };
    let (tx, rx) = mpsc::channel(INSTANCE_QUEUE);
    let (routes_tx, routes_rx) = watch::channel(Arc::new(RouteTable::new()));
    let (changes_tx, _) = broadcast::channel(CHANGE_QUEUE);
    let (status_tx, status_rx) = watch::channel(Arc::new(SpeakerStatus::default()));
    let mut inst = instance::Instance::new(&cfg, resolver, rx, &tx, routes_tx, changes_tx.clone());
    inst.set_status_channel(status_tx);
    if let Some(l) = listener {
        inst.set_listener(tokio::spawn(listener::run(l, tx.clone())).abort_handle());
    }
    tokio::spawn(inst.run());
    Ok(SpeakerHandle {
        tx,
        routes: routes_rx,
        changes: changes_tx,
        status: status_rx,
    })
}
