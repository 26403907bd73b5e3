//! NAT44 configuration of one worker (`NatConfig`) and its validation.
//! Every worker gets the same config except `worker`, its own index.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use super::key::Proto;
use super::timeouts::Timeouts;

/// Which inbound packets may use an existing mapping (RFC 4787 §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filtering {
    /// Any remote endpoint may reach a mapped inside endpoint (REQ-8's
    /// recommendation for transparency, "full cone").
    EndpointIndependent,
    /// Only the remote address and port the inside endpoint has sent to.
    AddressAndPortDependent,
}

/// A static port forward: outside `outside_addr:outside_port/proto` reaches
/// `inside_addr:inside_port`. TCP or UDP only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortForward {
    pub proto: Proto,
    pub outside_addr: Ipv4Addr,
    pub outside_port: u16,
    pub inside_addr: Ipv4Addr,
    pub inside_port: u16,
}

/// A 1:1 mapping: every packet to `outside` goes to `inside` and the
/// inside host's packets leave from `outside`; ports are kept. Stateless.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OneToOne {
    pub outside: Ipv4Addr,
    pub inside: Ipv4Addr,
}

/// NAT44 configuration as one worker sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NatConfig {
    /// Interface index of the outside (WAN) interface.
    pub outside_iface: u16,
    /// Outside addresses dynamic mappings are taken from.
    pub pool: Vec<Ipv4Addr>,
    pub filtering: Filtering,
    pub timeouts: Timeouts,
    /// Whether inbound traffic refreshes UDP and ICMP sessions (RFC 4787
    /// REQ-6: outbound refresh MUST, inbound refresh MAY). TCP sessions are
    /// always refreshed both ways: their state decides the timeout.
    pub inbound_refresh: bool,
    /// Most sessions one inside address may hold (on its worker, which is
    /// the only one handling it, so the limit is exact).
    pub max_sessions_per_host: u32,
    /// Session table capacity of this worker; preallocated.
    pub max_sessions: u32,
    pub forwards: Vec<PortForward>,
    pub one_to_one: Vec<OneToOne>,
    /// Number of workers sharing the pool's port space.
    pub workers: u16,
    /// This worker's index in 0..workers.
    pub worker: u16,
}

impl Default for NatConfig {
    fn default() -> Self {
        Self {
            outside_iface: 0,
            pool: Vec::new(),
            filtering: Filtering::EndpointIndependent,
            timeouts: Timeouts::default(),
            inbound_refresh: true,
            max_sessions_per_host: 4096,
            max_sessions: 65_536,
            forwards: Vec::new(),
            one_to_one: Vec::new(),
            workers: 1,
            worker: 0,
        }
    }
}

/// Most workers: each must get a useful share of the 64512 dynamic ports.
pub const MAX_WORKERS: u16 = 256;
/// Most sessions per worker (indices are `u32`; tables are sized twice).
pub const MAX_SESSIONS: u32 = 1 << 26;

/// Why a [`NatConfig`] was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NatConfigError {
    #[error("nat.pool is empty")]
    EmptyPool,
    #[error("nat.pool lists {0} twice")]
    DuplicatePoolAddress(Ipv4Addr),
    #[error("nat.pool address {0} is not a unicast address")]
    BadPoolAddress(Ipv4Addr),
    #[error("nat workers must be 1..={max}, got {0}", max = MAX_WORKERS)]
    BadWorkerCount(u16),
    #[error("nat worker index {worker} is not below the worker count {workers}")]
    BadWorkerIndex { worker: u16, workers: u16 },
    #[error("nat.max_sessions must be 1..={max}, got {0}", max = MAX_SESSIONS)]
    BadMaxSessions(u32),
    #[error("nat.max_sessions_per_host must be at least 1")]
    ZeroHostLimit,
    #[error("nat.timeouts.{0} must be at least 1 second")]
    ZeroTimeout(&'static str),
    #[error("nat.forward {0}: only tcp and udp can be forwarded")]
    ForwardProto(String),
    #[error("nat.forward {0}: port 0 is not a port")]
    ForwardZeroPort(String),
    #[error("nat.forward {0} overlaps an earlier forward of the same outside address, port and protocol")]
    OverlappingForward(String),
    #[error("nat.forward {0} reuses an inside address, port and protocol of an earlier forward")]
    DuplicateForwardInside(String),
    #[error("nat.forward {0} uses an outside address that is a 1:1 mapping's")]
    ForwardOnOneToOne(String),
    #[error("nat.one_to_one outside {0} is listed twice")]
    DuplicateOneToOneOutside(Ipv4Addr),
    #[error("nat.one_to_one inside {0} is listed twice")]
    DuplicateOneToOneInside(Ipv4Addr),
    #[error("nat.one_to_one outside {0} is also in nat.pool")]
    OneToOneInPool(Ipv4Addr),
    #[error("nat has {forwards} forwards, more than max_sessions ({max})")]
    TooManyForwards { forwards: usize, max: u32 },
    #[error("nat.workers (or the worker index) changed from {from_workers} (worker {from_worker}) to {to_workers} (worker {to_worker}): a worker-count change needs an engine restart")]
    WorkersChanged {
        from_workers: u16,
        from_worker: u16,
        to_workers: u16,
        to_worker: u16,
    },
    #[error("nat.max_sessions {max} is below the {sessions} sessions this worker would keep: lower it after sessions expire, or restart the engine")]
    MaxSessionsBelowLive { max: u32, sessions: usize },
}

fn fwd_name(f: &PortForward) -> String {
    format!(
        "{}:{}/{} -> {}:{}",
        f.outside_addr,
        f.outside_port,
        f.proto.name(),
        f.inside_addr,
        f.inside_port
    )
}

fn unicast(a: Ipv4Addr) -> bool {
    !(a.is_unspecified() || a.is_broadcast() || a.is_multicast())
}

impl NatConfig {
    /// Checks the config; the error names the offending key.
    pub fn validate(&self) -> Result<(), NatConfigError> {
        if self.pool.is_empty() {
            return Err(NatConfigError::EmptyPool);
        }
        let mut seen = HashSet::new();
        for &a in &self.pool {
            if !unicast(a) {
                return Err(NatConfigError::BadPoolAddress(a));
            }
            if !seen.insert(a) {
                return Err(NatConfigError::DuplicatePoolAddress(a));
            }
        }
        if self.workers == 0 || self.workers > MAX_WORKERS {
            return Err(NatConfigError::BadWorkerCount(self.workers));
        }
        if self.worker >= self.workers {
            return Err(NatConfigError::BadWorkerIndex {
                worker: self.worker,
                workers: self.workers,
            });
        }
        if self.max_sessions == 0 || self.max_sessions > MAX_SESSIONS {
            return Err(NatConfigError::BadMaxSessions(self.max_sessions));
        }
        if self.max_sessions_per_host == 0 {
            return Err(NatConfigError::ZeroHostLimit);
        }
        let t = &self.timeouts;
        for (name, v) in [
            ("tcp_established_secs", t.tcp_established_secs),
            ("tcp_transitory_secs", t.tcp_transitory_secs),
            ("tcp_initial_secs", t.tcp_initial_secs),
            ("udp_secs", t.udp_secs),
            ("icmp_query_secs", t.icmp_query_secs),
            ("fragment_secs", t.fragment_secs),
        ] {
            if v == 0 {
                return Err(NatConfigError::ZeroTimeout(name));
            }
        }
        let mut o2o_out = HashSet::new();
        let mut o2o_in = HashSet::new();
        for m in &self.one_to_one {
            if !o2o_out.insert(m.outside) {
                return Err(NatConfigError::DuplicateOneToOneOutside(m.outside));
            }
            if !o2o_in.insert(m.inside) {
                return Err(NatConfigError::DuplicateOneToOneInside(m.inside));
            }
            if seen.contains(&m.outside) {
                return Err(NatConfigError::OneToOneInPool(m.outside));
            }
        }
        if self.forwards.len() > self.max_sessions as usize {
            return Err(NatConfigError::TooManyForwards {
                forwards: self.forwards.len(),
                max: self.max_sessions,
            });
        }
        let mut outs = HashSet::new();
        let mut ins = HashSet::new();
        for f in &self.forwards {
            if f.proto == Proto::Icmp {
                return Err(NatConfigError::ForwardProto(fwd_name(f)));
            }
            if f.outside_port == 0 || f.inside_port == 0 {
                return Err(NatConfigError::ForwardZeroPort(fwd_name(f)));
            }
            if o2o_out.contains(&f.outside_addr) {
                return Err(NatConfigError::ForwardOnOneToOne(fwd_name(f)));
            }
            if !outs.insert((f.outside_addr, f.outside_port, f.proto)) {
                return Err(NatConfigError::OverlappingForward(fwd_name(f)));
            }
            if !ins.insert((f.inside_addr, f.inside_port, f.proto)) {
                return Err(NatConfigError::DuplicateForwardInside(fwd_name(f)));
            }
        }
        Ok(())
    }
}
