//! The typed messages between the speaker's actors: the handle and the
//! session tasks talk to the instance ([`InstanceMsg`]), the instance to
//! each session ([`SessionCmd`]).

use std::net::IpAddr;
use std::sync::Arc;

use patronus_bgp::fsm::{Negotiated, SessionDown, State};
use patronus_bgp::policy::Policy;
use patronus_bgp::types::{Afi, Prefix};
use patronus_bgp::wire::{Notification, UpdateOutcome};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::oneshot;

use super::config::NeighborConfig;
use super::handle::{NeighborStatus, RouteTable, SpeakerStats};
use crate::bgp::status::{RibPage, RibQuery, StatusError};

/// A byte stream to a peer (TCP, or an in-memory duplex in tests).
pub trait BgpStream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> BgpStream for T {}

/// A connection to (or from) a neighbour.
pub struct Connection {
    pub stream: Box<dyn BgpStream>,
    /// The neighbour's address.
    pub remote: IpAddr,
    /// Our address on it (next hop self).
    pub local: Option<IpAddr>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("remote", &self.remote)
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

/// Index of a neighbour in the configuration.
pub type NeighborIndex = usize;

/// To the instance.
// UPDATE outcomes dominate the traffic: boxing them would add an
// allocation per message to save bytes on the rare ones.
#[allow(clippy::large_enum_variant)]
pub enum InstanceMsg {
    /// From the listener or a caller: route it to the neighbour's session.
    Incoming(Connection),
    State {
        peer: NeighborIndex,
        state: State,
    },
    SessionUp {
        peer: NeighborIndex,
        epoch: u64,
        negotiated: Negotiated,
        local: Option<IpAddr>,
    },
    SessionDown {
        peer: NeighborIndex,
        down: SessionDown,
    },
    SweepStale {
        peer: NeighborIndex,
        afi: Afi,
    },
    /// An UPDATE (not End-of-RIB) as RFC 7606 left it.
    Update {
        peer: NeighborIndex,
        epoch: u64,
        outcome: UpdateOutcome,
    },
    EndOfRib {
        peer: NeighborIndex,
        afi: Afi,
    },
    RouteRefresh {
        peer: NeighborIndex,
        epoch: u64,
        afi: Afi,
    },
    Notification {
        peer: NeighborIndex,
        sent: bool,
        notification: Notification,
    },
    Neighbors(oneshot::Sender<Vec<NeighborStatus>>),
    Shutdown(oneshot::Sender<()>),
    /// Live reconfiguration: a new neighbour (its session starts).
    AddNeighbor(Box<NeighborConfig>),
    /// Stops the neighbour's session (Cease) and forgets its routes.
    RemoveNeighbor(IpAddr),
    /// New import/export policies for a neighbour: export is re-run over
    /// the Loc-RIB, import by asking the peer to re-send (ROUTE-REFRESH;
    /// a session reset when the peer does not support it).
    SetPolicies {
        address: IpAddr,
        import: Option<Policy>,
        export: Option<Policy>,
    },
    /// The networks to originate (the whole set).
    SetNetworks(Vec<Prefix>),
    /// Next-hop reachability changed: reselect every prefix.
    Reresolve,
    /// A page of the RIB.
    Rib(RibQuery, oneshot::Sender<Result<RibPage, StatusError>>),
    /// Counts for the summary.
    Stats(oneshot::Sender<SpeakerStats>),
    /// The selected routes now and the sequence number of the last
    /// [`super::RouteChange`] sent (a lagging change receiver resyncs).
    Snapshot(oneshot::Sender<(u64, Arc<RouteTable>)>),
}

/// To one session task.
pub enum SessionCmd {
    /// Encoded UPDATEs for the session of `epoch` (dropped when the
    /// session went down since).
    Send {
        epoch: u64,
        messages: Vec<Vec<u8>>,
    },
    Incoming(Connection),
    /// ManualStop and end the task.
    Stop,
}
