//! The BGP session state machine (RFC 4271 section 8) with its timers, hold
//! time negotiation, idle-hold back-off, collision detection (6.8) and the
//! graceful-restart helper (RFC 4724, RFC 8538). No I/O and no clock: the
//! caller passes `now` (ms) with every event and carries out the
//! [`Action`]s: connect, send, close, arm timers, tell the RIB.

mod collision;
mod config;
mod event;
mod session;

pub use collision::{collision_survivor, resolve_collision, CollisionVerdict, Initiator};
pub use config::{
    code, ConfigError, LocalGracefulRestart, SessionConfig, CONNECT_RETRY_DEFAULT_SECS,
    HOLD_TIME_DEFAULT_SECS, IDLE_HOLD_INITIAL_SECS, IDLE_HOLD_MAX_SECS, IDLE_HOLD_STABLE_SECS,
    OPEN_HOLD_TIME_SECS, STALE_PATH_DEFAULT_SECS,
};
pub use event::{
    Action, AfiSet, Event, GrCapability, Negotiated, PeerCapabilities, PeerOpen, SessionDown,
    State, Timer,
};
pub use session::Session;

#[cfg(test)]
mod tests;
