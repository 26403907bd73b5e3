//! Health check description (kind, interval, timeout, rise/fall) with its
//! validation, and the per-backend Up/Down state machine. No I/O: probe
//! outcomes and the time are passed in, so it is tested with a fake clock.

use std::fmt;
use std::time::{Duration, Instant};

/// Longest accepted HTTP check path (it goes into the request line).
pub const MAX_PATH_LEN: usize = 1024;
/// Longest accepted Host header value.
pub const MAX_HOST_LEN: usize = 255;

/// Health of a backend as the balancer sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Health {
    Up,
    Down,
}

impl Health {
    pub fn is_up(self) -> bool {
        self == Health::Up
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Health::Up => "up",
            Health::Down => "down",
        })
    }
}

/// Accepted HTTP status codes, inclusive on both ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatusRange {
    pub lo: u16,
    pub hi: u16,
}

impl StatusRange {
    /// Exactly one status code.
    pub fn exact(code: u16) -> Self {
        StatusRange { lo: code, hi: code }
    }

    pub fn contains(&self, code: u16) -> bool {
        (self.lo..=self.hi).contains(&code)
    }
}

impl Default for StatusRange {
    /// 2xx and 3xx, what most balancers accept when nothing is configured.
    fn default() -> Self {
        StatusRange { lo: 200, hi: 399 }
    }
}

impl fmt::Display for StatusRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lo == self.hi {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}-{}", self.lo, self.hi)
        }
    }
}

/// An HTTP/1.1 GET check.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HttpCheck {
    /// Request target, origin form: starts with `/`, e.g. `/healthz?x=1`.
    pub path: String,
    /// Host header; `None` sends the backend's `ip:port`.
    pub host: Option<String>,
    /// Status codes counted as healthy.
    pub expect: StatusRange,
}

impl HttpCheck {
    /// A GET of `path` expecting 2xx/3xx, Host = the backend address.
    pub fn get(path: impl Into<String>) -> Self {
        HttpCheck {
            path: path.into(),
            host: None,
            expect: StatusRange::default(),
        }
    }
}

/// What a probe does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CheckKind {
    /// The TCP handshake completes.
    Tcp,
    /// An HTTP GET answers with an expected status.
    Http(HttpCheck),
}

/// How a backend is checked. Build with [`HealthCheck::tcp`] /
/// [`HealthCheck::http`], adjust the public fields, then [`validate`].
///
/// [`validate`]: HealthCheck::validate
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HealthCheck {
    pub kind: CheckKind,
    /// Time between the starts of two probes.
    pub interval: Duration,
    /// Limit on one probe, connect and response together; at most `interval`.
    pub timeout: Duration,
    /// Consecutive successes that make a Down backend Up.
    pub rise: u32,
    /// Consecutive failures that make an Up backend Down.
    pub fall: u32,
    /// State of a backend before its first transition.
    pub initial: Health,
}

impl HealthCheck {
    /// TCP check with common defaults: every 2 s, 1 s timeout, rise 2, fall 3,
    /// starting Down.
    pub fn tcp() -> Self {
        HealthCheck {
            kind: CheckKind::Tcp,
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(1),
            rise: 2,
            fall: 3,
            initial: Health::Down,
        }
    }

    /// HTTP check with the same defaults as [`HealthCheck::tcp`].
    pub fn http(check: HttpCheck) -> Self {
        HealthCheck {
            kind: CheckKind::Http(check),
            ..HealthCheck::tcp()
        }
    }

    /// Checks the settings; the error says which one is wrong.
    pub fn validate(&self) -> Result<(), CheckError> {
        if self.interval.is_zero() {
            return Err(CheckError::ZeroInterval);
        }
        if self.timeout.is_zero() {
            return Err(CheckError::ZeroTimeout);
        }
        if self.timeout > self.interval {
            return Err(CheckError::TimeoutOverInterval {
                timeout: self.timeout,
                interval: self.interval,
            });
        }
        if self.rise == 0 {
            return Err(CheckError::ZeroRise);
        }
        if self.fall == 0 {
            return Err(CheckError::ZeroFall);
        }
        if let CheckKind::Http(http) = &self.kind {
            validate_path(&http.path)?;
            if let Some(host) = &http.host {
                validate_host(host)?;
            }
            let e = http.expect;
            if !(100..=599).contains(&e.lo) || !(100..=599).contains(&e.hi) || e.lo > e.hi {
                return Err(CheckError::BadStatusRange { lo: e.lo, hi: e.hi });
            }
        }
        Ok(())
    }
}

/// Origin-form request target: `/` first, printable ASCII, no spaces (they
/// would end the request line) and no `#` (fragments are not sent).
fn validate_path(path: &str) -> Result<(), CheckError> {
    let bad = |why: &'static str| CheckError::BadPath {
        path: path.to_owned(),
        why,
    };
    if !path.starts_with('/') {
        return Err(bad("must start with '/'"));
    }
    if path.len() > MAX_PATH_LEN {
        return Err(bad("longer than 1024 bytes"));
    }
    if let Some(c) = path.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(if c == ' ' {
            bad("contains a space (percent-encode it as %20)")
        } else {
            bad("contains a control or non-ASCII character")
        });
    }
    if path.contains('#') {
        return Err(bad("contains '#' (fragments are not sent)"));
    }
    Ok(())
}

/// Host header value: printable ASCII without spaces (no header injection).
fn validate_host(host: &str) -> Result<(), CheckError> {
    let bad = |why: &'static str| CheckError::BadHost {
        host: host.to_owned(),
        why,
    };
    if host.is_empty() {
        return Err(bad("is empty"));
    }
    if host.len() > MAX_HOST_LEN {
        return Err(bad("longer than 255 bytes"));
    }
    if !host.chars().all(|c| c.is_ascii_graphic()) {
        return Err(bad("contains a space, control or non-ASCII character"));
    }
    Ok(())
}

/// A rejected [`HealthCheck`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    #[error("health check interval must be greater than zero")]
    ZeroInterval,
    #[error("health check timeout must be greater than zero")]
    ZeroTimeout,
    #[error("health check timeout ({timeout:?}) must not exceed the interval ({interval:?})")]
    TimeoutOverInterval {
        timeout: Duration,
        interval: Duration,
    },
    #[error("health check rise must be at least 1")]
    ZeroRise,
    #[error("health check fall must be at least 1")]
    ZeroFall,
    #[error("health check path {path:?} {why}")]
    BadPath { path: String, why: &'static str },
    #[error("health check host {host:?} {why}")]
    BadHost { host: String, why: &'static str },
    #[error("health check expected status {lo}-{hi} is not a range within 100-599")]
    BadStatusRange { lo: u16, hi: u16 },
}

/// A change of a backend's health, as returned by [`BackendHealth::record`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub to: Health,
    pub at: Instant,
    /// Length of the run of equal outcomes that caused it (= rise or fall).
    pub run: u32,
}

/// One backend's rise/fall state machine.
#[derive(Debug, Clone)]
pub struct BackendHealth {
    state: Health,
    rise: u32,
    fall: u32,
    successes: u32,
    failures: u32,
    since: Instant,
}

impl BackendHealth {
    /// Starts in `initial` at time `now`. `rise` and `fall` below 1 count as 1.
    pub fn new(initial: Health, rise: u32, fall: u32, now: Instant) -> Self {
        BackendHealth {
            state: initial,
            rise: rise.max(1),
            fall: fall.max(1),
            successes: 0,
            failures: 0,
            since: now,
        }
    }

    /// Starts as `check` says (its `initial`, `rise`, `fall`).
    pub fn for_check(check: &HealthCheck, now: Instant) -> Self {
        Self::new(check.initial, check.rise, check.fall, now)
    }

    pub fn state(&self) -> Health {
        self.state
    }

    /// When the current state began (creation or last transition).
    pub fn since(&self) -> Instant {
        self.since
    }

    /// Current run of consecutive successes.
    pub fn successes(&self) -> u32 {
        self.successes
    }

    /// Current run of consecutive failures.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// New thresholds (a changed check); the state stays, the runs restart.
    pub fn reconfigure(&mut self, rise: u32, fall: u32) {
        self.rise = rise.max(1);
        self.fall = fall.max(1);
        self.successes = 0;
        self.failures = 0;
    }

    /// Counts one probe outcome; returns the transition when it changes state.
    pub fn record(&mut self, success: bool, now: Instant) -> Option<Transition> {
        let (run, threshold, target) = if success {
            self.failures = 0;
            self.successes = self.successes.saturating_add(1);
            (self.successes, self.rise, Health::Up)
        } else {
            self.successes = 0;
            self.failures = self.failures.saturating_add(1);
            (self.failures, self.fall, Health::Down)
        };
        if self.state == target || run < threshold {
            return None;
        }
        self.state = target;
        self.since = now;
        Some(Transition {
            to: target,
            at: now,
            run,
        })
    }
}

#[cfg(test)]
#[path = "health_tests.rs"]
mod tests;
