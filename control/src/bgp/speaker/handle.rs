//! What the rest of the control process sees of the speaker: the selected
//! routes (a snapshot `watch` and a change stream), neighbour state and
//! counters, and shutdown.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use patronus_bgp::fsm::State;
use patronus_bgp::policy::Policy;
use patronus_bgp::types::{Afi, Prefix};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::config::NeighborConfig;
use super::messages::{Connection, InstanceMsg};
use crate::bgp::status::{RibPage, RibQuery, StatusError};

/// The selected routes to forward by: prefix → next hops (the multipath
/// set, best first). Originated networks are not in it.
pub type RouteTable = BTreeMap<Prefix, Vec<IpAddr>>;

/// One change of [`RouteTable`]; `next_hops` empty = the prefix is gone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteChange {
    pub prefix: Prefix,
    pub next_hops: Vec<IpAddr>,
    /// 1, 2, 3, ... in the order the changes were made (see
    /// [`SpeakerHandle::snapshot`]).
    pub seq: u64,
}

/// What the instance last published about itself (at most
/// [`super::instance::STATUS_INTERVAL`] old): read without a round trip
/// through its inbox, which a full-table flood keeps busy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpeakerStatus {
    pub neighbors: Vec<NeighborStatus>,
    pub stats: SpeakerStats,
}

/// Counts the summary shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpeakerStats {
    /// Prefixes with a selected route learned from a neighbour (what the
    /// FIB gets), by family.
    pub selected_ipv4: u64,
    pub selected_ipv6: u64,
}

/// Per-neighbour counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NeighborCounters {
    /// Prefixes the neighbour currently announces (before import policy).
    pub prefixes_received: u64,
    /// Of those, accepted by import policy (its Adj-RIB-In).
    pub prefixes_accepted: u64,
    /// Prefixes we currently announce to it (Adj-RIB-Out).
    pub prefixes_advertised: u64,
    pub updates_in: u64,
    pub updates_out: u64,
    pub notifications_in: u64,
    pub notifications_out: u64,
    /// UPDATEs RFC 7606 turned into withdrawals.
    pub treat_as_withdraw: u64,
    /// UPDATEs with attributes RFC 7606 discarded.
    pub attribute_discard: u64,
    /// Times the session reached Established.
    pub established_transitions: u64,
}

/// A neighbour's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NeighborStatus {
    pub address: IpAddr,
    pub remote_as: u32,
    pub state: State,
    /// Time since the session came up (None unless Established).
    pub uptime: Option<Duration>,
    /// The neighbour's BGP Identifier (once Established).
    pub router_id: Option<Ipv4Addr>,
    pub counters: NeighborCounters,
    pub last_notification: Option<(u8, u8)>,
    /// Agreed hold time and families (once Established).
    pub hold_time: Option<u16>,
    pub families: Vec<Afi>,
    /// The peer restarts and its routes are kept, stale (RFC 4724).
    pub graceful_restart_active: bool,
    /// Received prefixes by family (before import policy), accepted ones,
    /// and those advertised to it.
    pub received_by_afi: [u64; 2],
    pub accepted_by_afi: [u64; 2],
    pub advertised_by_afi: [u64; 2],
}

/// The caller's side of a running speaker. Cheap to clone.
#[derive(Clone)]
pub struct SpeakerHandle {
    pub(crate) tx: mpsc::Sender<InstanceMsg>,
    pub(crate) routes: watch::Receiver<Arc<RouteTable>>,
    pub(crate) changes: broadcast::Sender<RouteChange>,
    pub(crate) status: watch::Receiver<Arc<SpeakerStatus>>,
}

impl std::fmt::Debug for SpeakerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpeakerHandle").finish_non_exhaustive()
    }
}

/// The speaker has stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the BGP speaker has stopped")]
pub struct Stopped;

impl SpeakerHandle {
    /// The selected routes, republished after changes (at most every
    /// [`super::instance::PUBLISH_INTERVAL`]: a full table arrives in many
    /// UPDATEs and is not copied for each).
    pub fn routes(&self) -> watch::Receiver<Arc<RouteTable>> {
        self.routes.clone()
    }

    /// Every change of the selected routes, in order. A receiver that lags
    /// behind the channel's capacity gets `Lagged` and should resync from
    /// [`SpeakerHandle::routes`].
    pub fn changes(&self) -> broadcast::Receiver<RouteChange> {
        self.changes.subscribe()
    }

    /// State and counters of every neighbour, in configuration order.
    pub async fn neighbors(&self) -> Result<Vec<NeighborStatus>, Stopped> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(InstanceMsg::Neighbors(tx))
            .await
            .map_err(|_| Stopped)?;
        rx.await.map_err(|_| Stopped)
    }

    /// Hands over a connection accepted elsewhere (the listener uses this
    /// path too); one from an unknown address is closed.
    pub async fn incoming(&self, conn: Connection) -> Result<(), Stopped> {
        self.tx
            .send(InstanceMsg::Incoming(conn))
            .await
            .map_err(|_| Stopped)
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> InstanceMsg,
    ) -> Result<T, Stopped> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(make(tx)).await.map_err(|_| Stopped)?;
        rx.await.map_err(|_| Stopped)
    }

    async fn tell(&self, m: InstanceMsg) -> Result<(), Stopped> {
        self.tx.send(m).await.map_err(|_| Stopped)
    }

    /// Adds a neighbour; its session starts (one with the same address
    /// must have been removed first).
    pub async fn add_neighbor(&self, n: NeighborConfig) -> Result<(), Stopped> {
        self.tell(InstanceMsg::AddNeighbor(Box::new(n))).await
    }

    /// Removes a neighbour: Cease, its routes withdrawn; other sessions
    /// are untouched.
    pub async fn remove_neighbor(&self, address: IpAddr) -> Result<(), Stopped> {
        self.tell(InstanceMsg::RemoveNeighbor(address)).await
    }

    /// Replaces a neighbour's policies without resetting its session
    /// (export re-run, import by ROUTE-REFRESH).
    pub async fn set_policies(
        &self,
        address: IpAddr,
        import: Option<Policy>,
        export: Option<Policy>,
    ) -> Result<(), Stopped> {
        self.tell(InstanceMsg::SetPolicies {
            address,
            import,
            export,
        })
        .await
    }

    /// Originates exactly these networks (announcing new ones,
    /// withdrawing the others).
    pub async fn set_networks(&self, networks: Vec<Prefix>) -> Result<(), Stopped> {
        self.tell(InstanceMsg::SetNetworks(networks)).await
    }

    /// Next hops' reachability changed (the resolver's view moved).
    pub async fn reresolve(&self) -> Result<(), Stopped> {
        self.tell(InstanceMsg::Reresolve).await
    }

    /// A page of the RIB.
    pub async fn rib(&self, q: RibQuery) -> Result<Result<RibPage, StatusError>, Stopped> {
        self.ask(|tx| InstanceMsg::Rib(q, tx)).await
    }

    /// The neighbours' states and the counts as last published (no round
    /// trip: answers at once even while the instance works through a flood).
    pub fn status(&self) -> Arc<SpeakerStatus> {
        self.status.borrow().clone()
    }

    pub async fn stats(&self) -> Result<SpeakerStats, Stopped> {
        self.ask(InstanceMsg::Stats).await
    }

    /// The selected routes and the `seq` of the last change sent: a
    /// change receiver that lagged replaces its view with this table and
    /// skips changes up to `seq`.
    pub async fn snapshot(&self) -> Result<(u64, Arc<RouteTable>), Stopped> {
        self.ask(InstanceMsg::Snapshot).await
    }

    /// Sends Cease to every neighbour, closes the sessions and stops.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(InstanceMsg::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}
