//! Connection collision detection (RFC 4271 6.8): two TCP connections to
//! the same peer, one each way; the one opened by the speaker with the
//! higher BGP Identifier survives.

use std::net::Ipv4Addr;

use super::event::State;

/// Who opened a TCP connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Initiator {
    Local,
    Remote,
}

/// What to do with a second connection to a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CollisionVerdict {
    /// The existing connection has not seen an OPEN yet: nothing to compare.
    NoCollision,
    /// Dump the existing connection: its FSM gets `OpenCollisionDump`, or,
    /// with one FSM per peer, `AdoptNewConnection`.
    CloseExisting,
    /// Dump the new connection.
    CloseNew,
}

/// The connection that survives a collision: the one initiated by the
/// speaker with the higher BGP Identifier (compared as host-order u32).
pub fn collision_survivor(local_id: Ipv4Addr, remote_id: Ipv4Addr) -> Initiator {
    if u32::from(local_id) < u32::from(remote_id) {
        Initiator::Remote
    } else {
        Initiator::Local
    }
}

/// Decides a collision once the new connection's OPEN (with `remote_id`)
/// arrived, given the existing connection's state and who opened it.
/// An Established session is kept and the newcomer closed (RFC 4271 6.8).
pub fn resolve_collision(
    existing_state: State,
    existing_initiator: Initiator,
    local_id: Ipv4Addr,
    remote_id: Ipv4Addr,
) -> CollisionVerdict {
    match existing_state {
        State::Idle | State::Connect | State::Active => CollisionVerdict::NoCollision,
        State::Established => CollisionVerdict::CloseNew,
        State::OpenSent | State::OpenConfirm => {
            if collision_survivor(local_id, remote_id) == existing_initiator {
                CollisionVerdict::CloseNew
            } else {
                CollisionVerdict::CloseExisting
            }
        }
    }
}
