//! A session's settings and the NOTIFICATION codes the FSM sends.

use std::net::Ipv4Addr;

use super::event::AfiSet;

/// NOTIFICATION error codes (RFC 4271 4.5) and the subcodes the FSM uses.
pub mod code {
    pub const MESSAGE_HEADER: u8 = 1;
    pub const OPEN_MESSAGE: u8 = 2;
    pub const UPDATE_MESSAGE: u8 = 3;
    pub const HOLD_TIMER_EXPIRED: u8 = 4;
    pub const FSM: u8 = 5;
    pub const CEASE: u8 = 6;

    /// OPEN subcodes.
    pub const BAD_PEER_AS: u8 = 2;
    pub const BAD_BGP_IDENTIFIER: u8 = 3;
    pub const UNACCEPTABLE_HOLD_TIME: u8 = 6;

    /// FSM error subcodes (RFC 6608): unexpected message in a state.
    pub const FSM_UNEXPECTED_IN_OPENSENT: u8 = 1;
    pub const FSM_UNEXPECTED_IN_OPENCONFIRM: u8 = 2;
    pub const FSM_UNEXPECTED_IN_ESTABLISHED: u8 = 3;

    /// Cease subcodes (RFC 4486, RFC 8538).
    pub const CEASE_ADMIN_SHUTDOWN: u8 = 2;
    pub const CEASE_CONNECTION_COLLISION: u8 = 7;
    pub const CEASE_HARD_RESET: u8 = 9;
}

/// Default ConnectRetryTime (RFC 4271 10).
pub const CONNECT_RETRY_DEFAULT_SECS: u32 = 120;
/// Default HoldTime we offer.
pub const HOLD_TIME_DEFAULT_SECS: u16 = 90;
/// The "large value" of the hold timer while waiting for an OPEN.
pub const OPEN_HOLD_TIME_SECS: u32 = 240;
/// First back-off before an automatic restart after an error, doubled per
/// consecutive failure up to the maximum.
pub const IDLE_HOLD_INITIAL_SECS: u32 = 5;
pub const IDLE_HOLD_MAX_SECS: u32 = 120;
/// Established this long = stable: the back-off starts over.
pub const IDLE_HOLD_STABLE_SECS: u32 = 120;
/// How long to wait for End-of-RIB after the peer came back.
pub const STALE_PATH_DEFAULT_SECS: u32 = 360;

/// Our graceful-restart capability (helper: we keep the peer's routes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalGracefulRestart {
    /// Restart Time we advertise.
    pub restart_time_secs: u16,
    /// We advertise the N bit (RFC 8538).
    pub notification: bool,
    /// Longest wait for End-of-RIB once the peer is back.
    pub stale_path_secs: u32,
}

impl Default for LocalGracefulRestart {
    fn default() -> Self {
        LocalGracefulRestart {
            restart_time_secs: 120,
            notification: true,
            stale_path_secs: STALE_PATH_DEFAULT_SECS,
        }
    }
}

/// One session's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    pub local_as: u32,
    pub local_id: Ipv4Addr,
    /// The AS the peer must announce in its OPEN.
    pub peer_as: u32,
    /// Hold time we offer: 0 or at least 3.
    pub hold_time_secs: u16,
    pub connect_retry_secs: u32,
    /// Never connect out; wait for the peer.
    pub passive: bool,
    /// Families we offer (multiprotocol capability).
    pub families: AfiSet,
    pub graceful_restart: Option<LocalGracefulRestart>,
    pub idle_hold_initial_secs: u32,
    pub idle_hold_max_secs: u32,
    pub idle_hold_stable_secs: u32,
}

impl SessionConfig {
    /// Defaults for a session between `local_as`/`local_id` and `peer_as`.
    pub fn new(local_as: u32, local_id: Ipv4Addr, peer_as: u32) -> SessionConfig {
        SessionConfig {
            local_as,
            local_id,
            peer_as,
            hold_time_secs: HOLD_TIME_DEFAULT_SECS,
            connect_retry_secs: CONNECT_RETRY_DEFAULT_SECS,
            passive: false,
            families: AfiSet::IPV4,
            graceful_restart: None,
            idle_hold_initial_secs: IDLE_HOLD_INITIAL_SECS,
            idle_hold_max_secs: IDLE_HOLD_MAX_SECS,
            idle_hold_stable_secs: IDLE_HOLD_STABLE_SECS,
        }
    }

    pub fn is_ibgp(&self) -> bool {
        self.local_as == self.peer_as
    }

    /// Checks the settings a session cannot run with.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if matches!(self.hold_time_secs, 1 | 2) {
            return Err(ConfigError::HoldTime(self.hold_time_secs));
        }
        if self.connect_retry_secs == 0 {
            return Err(ConfigError::ConnectRetry);
        }
        if self.local_id.is_unspecified() {
            return Err(ConfigError::RouterId);
        }
        if self.idle_hold_initial_secs == 0 || self.idle_hold_max_secs < self.idle_hold_initial_secs
        {
            return Err(ConfigError::IdleHold);
        }
        if self.families.is_empty() {
            return Err(ConfigError::NoFamily);
        }
        Ok(())
    }
}

/// A setting the session refuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("hold time {0} s: must be 0 or at least 3")]
    HoldTime(u16),
    #[error("connect retry time must be at least 1 s")]
    ConnectRetry,
    #[error("router id 0.0.0.0 is not valid")]
    RouterId,
    #[error("idle hold: initial must be at least 1 s and at most the maximum")]
    IdleHold,
    #[error("no address family enabled")]
    NoFamily,
}
