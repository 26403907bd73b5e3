//! What goes into the session state machine (events, the peer's OPEN in
//! summary) and what comes out of it (actions for the caller to carry out).

use std::net::Ipv4Addr;

use crate::types::Afi;

/// A set of address families (IPv4 and/or IPv6 unicast).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct AfiSet(u8);

impl AfiSet {
    pub const EMPTY: AfiSet = AfiSet(0);
    pub const IPV4: AfiSet = AfiSet(1);
    pub const IPV6: AfiSet = AfiSet(2);
    pub const BOTH: AfiSet = AfiSet(3);

    fn bit(afi: Afi) -> u8 {
        match afi {
            Afi::Ipv4 => 1,
            Afi::Ipv6 => 2,
        }
    }

    pub fn of(afis: &[Afi]) -> AfiSet {
        AfiSet(afis.iter().fold(0, |acc, a| acc | AfiSet::bit(*a)))
    }

    pub fn contains(self, afi: Afi) -> bool {
        self.0 & AfiSet::bit(afi) != 0
    }

    pub fn insert(&mut self, afi: Afi) {
        self.0 |= AfiSet::bit(afi);
    }

    pub fn remove(&mut self, afi: Afi) {
        self.0 &= !AfiSet::bit(afi);
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn intersection(self, other: AfiSet) -> AfiSet {
        AfiSet(self.0 & other.0)
    }

    pub fn union(self, other: AfiSet) -> AfiSet {
        AfiSet(self.0 | other.0)
    }

    pub fn difference(self, other: AfiSet) -> AfiSet {
        AfiSet(self.0 & !other.0)
    }

    /// The families in the set, IPv4 first.
    pub fn iter(self) -> impl Iterator<Item = Afi> {
        [Afi::Ipv4, Afi::Ipv6]
            .into_iter()
            .filter(move |a| self.contains(*a))
    }
}

/// The peer's graceful-restart capability (RFC 4724), as decoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GrCapability {
    /// Restart Time: how long to keep its routes while it restarts.
    pub restart_time_secs: u16,
    /// R bit: the peer has just restarted.
    pub restarting: bool,
    /// N bit (RFC 8538): a NOTIFICATION other than Hard Reset also keeps
    /// routes.
    pub notification: bool,
    /// Families the peer preserves across a restart (listed in the
    /// capability) ...
    pub afis: AfiSet,
    /// ... and among them those whose forwarding state it kept this time
    /// (F bit).
    pub forwarding_preserved: AfiSet,
}

/// What the FSM needs of a peer's capabilities (RFC 5492), summarised by
/// the codec.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerCapabilities {
    /// Multiprotocol unicast families (RFC 4760). Empty = the peer sent no
    /// multiprotocol capability: IPv4 unicast is implied.
    pub multiprotocol: AfiSet,
    pub four_octet_as: bool,
    pub route_refresh: bool,
    pub graceful_restart: Option<GrCapability>,
}

impl PeerCapabilities {
    /// The families the peer can carry.
    pub fn families(&self) -> AfiSet {
        if self.multiprotocol.is_empty() {
            AfiSet::IPV4
        } else {
            self.multiprotocol
        }
    }
}

/// A received OPEN in summary (version and syntax already checked by the
/// codec; `asn` is the 4-octet AS when the capability carried one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerOpen {
    pub asn: u32,
    pub hold_time_secs: u16,
    pub bgp_id: Ipv4Addr,
    pub capabilities: PeerCapabilities,
}

/// The FSM's timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    ConnectRetry,
    Hold,
    Keepalive,
    /// Back-off before an automatic restart (DampPeerOscillations).
    IdleHold,
    /// The peer's Restart Time (RFC 4724): stale routes are swept when it
    /// runs out before the session is back.
    GracefulRestart,
    /// After a restart, how long to wait for End-of-RIB before sweeping.
    StalePath,
}

impl Timer {
    pub const ALL: [Timer; 6] = [
        Timer::ConnectRetry,
        Timer::Hold,
        Timer::Keepalive,
        Timer::IdleHold,
        Timer::GracefulRestart,
        Timer::StalePath,
    ];

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// Inputs of the state machine (RFC 4271 8.1, the ones this speaker uses).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    ManualStart,
    /// Start listening only (ManualStart_with_PassiveTcpEstablishment).
    ManualStartPassive,
    ManualStop,
    /// AutomaticStart; `passive`: wait for the peer to connect.
    AutomaticStart {
        passive: bool,
    },
    ConnectRetryTimerExpires,
    HoldTimerExpires,
    KeepaliveTimerExpires,
    IdleHoldTimerExpires,
    GracefulRestartTimerExpires,
    StalePathTimerExpires,
    /// Our outgoing connection is up (Tcp_CR_Acked).
    TcpConnectionAcknowledged,
    /// An incoming connection was accepted (TcpConnectionConfirmed).
    TcpConnectionConfirmed,
    TcpConnectionFails,
    BgpOpen(PeerOpen),
    /// A message header error: NOTIFICATION 1/`subcode` is sent.
    BgpHeaderErr {
        subcode: u8,
    },
    /// An OPEN the codec refused: NOTIFICATION 2/`subcode` is sent.
    BgpOpenMsgErr {
        subcode: u8,
    },
    /// This connection lost the collision (RFC 4271 6.8): Cease 6/7 and
    /// Idle (one FSM per connection, as the RFC models it).
    OpenCollisionDump,
    /// The caller accepted a new connection from the peer and keeps it
    /// instead of the current one: the current lost a collision
    /// ([`CollisionVerdict::CloseExisting`](super::CollisionVerdict)), or
    /// the peer restarted while Established (RFC 4724 4.2: its routes are
    /// kept stale when graceful restart was negotiated). The session goes
    /// on in OpenSent on the new connection, keeping its stale routes and
    /// back-off state.
    AdoptNewConnection,
    NotifMsg {
        code: u8,
        subcode: u8,
    },
    KeepAliveMsg,
    UpdateMsg,
    /// An UPDATE that is an End-of-RIB marker (RFC 4724 2).
    EndOfRib(Afi),
    /// An UPDATE error that resets the session (RFC 7606 left no lighter
    /// way): NOTIFICATION 3/`subcode` is sent.
    UpdateMsgErr {
        subcode: u8,
    },
}

/// Session states (RFC 4271 8.2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

/// What was agreed when the session came up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Negotiated {
    pub peer: PeerOpen,
    /// min(ours, theirs); 0 = no hold timer and no keepalives.
    pub hold_time_secs: u16,
    pub keepalive_ms: u64,
    /// Families both sides carry.
    pub families: AfiSet,
    pub four_octet_as: bool,
    pub route_refresh: bool,
    /// We keep the peer's routes of these families across its restarts
    /// (both sides sent the capability; the peer listed the family).
    pub graceful_restart: AfiSet,
}

/// Why a session went down, for the RIB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionDown {
    /// Keep the peer's routes of these families, marked stale, until
    /// End-of-RIB or the restart timer (RFC 4724 helper).
    pub keep_stale: AfiSet,
    /// Withdraw the peer's routes of these families now.
    pub withdraw: AfiSet,
}

/// What the caller must do, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Open a TCP connection to the peer.
    Connect,
    /// Close the TCP connection (after sending what precedes this).
    Disconnect,
    /// Close the current connection (after sending what precedes this) and
    /// go on with the newly accepted one (after `AdoptNewConnection`).
    ReplaceConnection,
    /// Send an OPEN built from the session's configuration.
    SendOpen,
    SendKeepalive,
    SendNotification {
        code: u8,
        subcode: u8,
    },
    StartTimer {
        timer: Timer,
        deadline_ms: u64,
    },
    StopTimer(Timer),
    StateChange {
        from: State,
        to: State,
    },
    /// The session is Established: tell the RIB and start exporting.
    SessionUp(Negotiated),
    SessionDown(SessionDown),
    /// Delete the peer's stale routes of this family (End-of-RIB received,
    /// restart or stale-path timer ran out, or the peer came back without
    /// preserving it).
    SweepStale(Afi),
}
