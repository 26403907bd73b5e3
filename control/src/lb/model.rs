//! Load-balancer VIPs and backends as the API sees them: request bodies
//! (`*Spec`, strict serde), their validation on their own (errors name the
//! field), validated definitions (`*Def`, what the store keeps) and the
//! stored forms (`Vip`, `Backend`). Checks against stored state (duplicate
//! names and endpoints, backends that no longer fit a VIP) live in the store.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use patronus_shm::lb::LB_MAX_TABLE_SIZE;
use serde::{Deserialize, Serialize};

use super::health::{CheckError, HealthCheck, HttpCheck};
use crate::error::{Error, Result};
use crate::nat::model::parse_unicast;

/// Longest VIP name (it is a URL segment and a metric label).
pub const MAX_VIP_NAME_LEN: usize = 32;
/// Most VIPs the engine takes (`LbVipEntry::DEFAULT_MAX`).
pub const MAX_VIPS: usize = 4096;
/// Most backends over all VIPs (`LbBackendEntry::DEFAULT_MAX`).
pub const MAX_BACKENDS: usize = 1 << 16;
/// Maglev table size when none is given (the paper's default, a prime).
pub const DEFAULT_TABLE_SIZE: u32 = 65537;
/// Smallest table size: Maglev needs M > 100 × N, and a VIP may hold one backend.
pub const MIN_TABLE_SIZE: u32 = 101;
/// Maglev balances well when the table is more than this many times the
/// number of backends (NSDI 2016, section 3.4).
pub const TABLE_SIZE_PER_BACKEND: u64 = 100;
/// Bounds of a health check's interval and timeout, in milliseconds.
pub const MIN_CHECK_MS: u32 = 10;
pub const MAX_CHECK_MS: u32 = 3_600_000;
/// Largest rise or fall threshold.
pub const MAX_RISE_FALL: u32 = 100;

/// Default health check settings (those of [`HealthCheck::tcp`]).
pub const DEFAULT_INTERVAL_MS: u32 = 2000;
pub const DEFAULT_TIMEOUT_MS: u32 = 1000;
pub const DEFAULT_RISE: u32 = 2;
pub const DEFAULT_FALL: u32 = 3;

/// IP protocol of a VIP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// How packets reach the backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Destination rewritten to the backend; replies return through the engine.
    #[default]
    Nat,
    /// Direct server return: IP-in-IP to the backend, which replies itself.
    Dsr,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Nat => "nat",
            Mode::Dsr => "dsr",
        }
    }
}

/// What a health probe does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckType {
    /// The TCP handshake completes.
    Tcp,
    /// An HTTP GET of `path` answers 2xx or 3xx.
    Http,
}

/// A health check in a request.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckSpec {
    #[serde(rename = "type")]
    pub kind: CheckType,
    /// HTTP only; default `/`.
    #[serde(default)]
    pub path: Option<String>,
    /// Port probed; default the backend's.
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub interval_ms: Option<u32>,
    #[serde(default)]
    pub timeout_ms: Option<u32>,
    #[serde(default)]
    pub rise: Option<u32>,
    #[serde(default)]
    pub fall: Option<u32>,
}

/// A validated health check, as stored and returned.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckDef {
    #[serde(rename = "type")]
    pub kind: CheckType,
    /// `Some` exactly for HTTP checks.
    pub path: Option<String>,
    pub port: Option<u16>,
    pub interval_ms: u32,
    pub timeout_ms: u32,
    pub rise: u32,
    pub fall: u32,
}

impl CheckDef {
    /// The check the health monitor runs.
    pub fn health_check(&self) -> HealthCheck {
        let mut c = match (self.kind, &self.path) {
            (CheckType::Http, Some(p)) => HealthCheck::http(HttpCheck::get(p.clone())),
            (CheckType::Http, None) => HealthCheck::http(HttpCheck::get("/")),
            (CheckType::Tcp, _) => HealthCheck::tcp(),
        };
        c.interval = Duration::from_millis(self.interval_ms.into());
        c.timeout = Duration::from_millis(self.timeout_ms.into());
        c.rise = self.rise;
        c.fall = self.fall;
        c
    }

    /// Where a backend is probed: its address, the check's port or its own.
    pub fn target(&self, backend: &BackendDef) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(
            backend.address,
            self.port.unwrap_or(backend.port),
        ))
    }
}

fn check_ms(field: &str, v: Option<u32>, default: u32) -> Result<u32> {
    let v = v.unwrap_or(default);
    if !(MIN_CHECK_MS..=MAX_CHECK_MS).contains(&v) {
        return Err(Error::invalid(
            field,
            format!("{v} is not in {MIN_CHECK_MS}..={MAX_CHECK_MS} milliseconds"),
        ));
    }
    Ok(v)
}

fn threshold(field: &str, v: Option<u32>, default: u32) -> Result<u32> {
    let v = v.unwrap_or(default);
    if !(1..=MAX_RISE_FALL).contains(&v) {
        return Err(Error::invalid(
            field,
            format!("{v} is not in 1..={MAX_RISE_FALL}"),
        ));
    }
    Ok(v)
}

impl HealthCheckSpec {
    /// Checks the spec; errors name `interval_ms`, `path`, ... (callers
    /// nest them under `health_check.`).
    pub fn validate(&self) -> Result<CheckDef> {
        let path = match (self.kind, &self.path) {
            (CheckType::Tcp, Some(_)) => {
                return Err(Error::invalid("path", "only HTTP checks have a path"))
            }
            (CheckType::Tcp, None) => None,
            (CheckType::Http, p) => Some(p.clone().unwrap_or_else(|| "/".to_owned())),
        };
        if self.port == Some(0) {
            return Err(Error::invalid("port", "port 0 is not a port"));
        }
        let def = CheckDef {
            kind: self.kind,
            path,
            port: self.port,
            interval_ms: check_ms("interval_ms", self.interval_ms, DEFAULT_INTERVAL_MS)?,
            timeout_ms: check_ms("timeout_ms", self.timeout_ms, DEFAULT_TIMEOUT_MS)?,
            rise: threshold("rise", self.rise, DEFAULT_RISE)?,
            fall: threshold("fall", self.fall, DEFAULT_FALL)?,
        };
        def.health_check().validate().map_err(|e| {
            let field = match &e {
                CheckError::ZeroInterval => "interval_ms",
                CheckError::ZeroTimeout | CheckError::TimeoutOverInterval { .. } => "timeout_ms",
                CheckError::ZeroRise => "rise",
                CheckError::ZeroFall => "fall",
                CheckError::BadPath { .. } => "path",
                CheckError::BadHost { .. } | CheckError::BadStatusRange { .. } => "type",
            };
            Error::invalid(field, e.to_string())
        })?;
        Ok(def)
    }
}

/// A backend in a request.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendSpec {
    pub address: String,
    /// Default: the VIP's port.
    #[serde(default)]
    pub port: Option<u16>,
    /// 0 = draining; default 1.
    #[serde(default)]
    pub weight: Option<u16>,
}

/// Body of `PATCH .../backends/{address}:{port}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendPatch {
    pub weight: u16,
}

/// A validated backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BackendDef {
    pub address: Ipv4Addr,
    pub port: u16,
    pub weight: u16,
}

impl BackendDef {
    pub fn endpoint(&self) -> SocketAddrV4 {
        SocketAddrV4::new(self.address, self.port)
    }
}

/// Body of `POST /lb/vips`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VipSpec {
    pub name: String,
    pub address: String,
    pub port: u16,
    /// Default tcp.
    #[serde(default)]
    pub protocol: Option<Protocol>,
    /// Default nat.
    #[serde(default)]
    pub mode: Option<Mode>,
    #[serde(default)]
    pub table_size: Option<u32>,
    #[serde(default)]
    pub health_check: Option<HealthCheckSpec>,
    #[serde(default)]
    pub backends: Vec<BackendSpec>,
}

/// Body of `PUT /lb/vips/{name}`: the settings; the backends stay. A
/// `name` renames the VIP.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VipUpdateSpec {
    #[serde(default)]
    pub name: Option<String>,
    pub address: String,
    pub port: u16,
    #[serde(default)]
    pub protocol: Option<Protocol>,
    #[serde(default)]
    pub mode: Option<Mode>,
    #[serde(default)]
    pub table_size: Option<u32>,
    #[serde(default)]
    pub health_check: Option<HealthCheckSpec>,
}

/// A validated VIP's settings.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VipDef {
    pub name: String,
    pub address: Ipv4Addr,
    pub port: u16,
    pub protocol: Protocol,
    pub mode: Mode,
    pub table_size: u32,
    pub health_check: Option<CheckDef>,
}

impl VipDef {
    /// Most backends this VIP's table balances well (M > 100 × N).
    pub fn max_backends(&self) -> usize {
        usize::try_from((u64::from(self.table_size) - 1) / TABLE_SIZE_PER_BACKEND).unwrap_or(0)
    }

    /// Checks `b` against this VIP on its own (not against other backends);
    /// the error is (field, message).
    pub fn check_backend(&self, b: &BackendDef) -> Result<(), (&'static str, String)> {
        if self.mode == Mode::Dsr && b.port != self.port {
            return Err((
                "port",
                format!(
                    "in DSR mode a backend listens on the VIP's port {} (not {})",
                    self.port, b.port
                ),
            ));
        }
        Ok(())
    }
}

/// A stored backend; `up` is its health (`None`: its VIP has no check).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    pub id: i64,
    pub def: BackendDef,
    pub up: Option<bool>,
}

/// A stored VIP with its backends (by id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vip {
    pub id: i64,
    pub def: VipDef,
    pub backends: Vec<Backend>,
}

/// Checks a VIP name: 1..=32 of `A-Z a-z 0-9 - _`.
pub fn validate_vip_name(field: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_VIP_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!("{name:?} is not a valid VIP name (1..={MAX_VIP_NAME_LEN} of A-Z a-z 0-9 - _)"),
        ))
    }
}

/// True when `n` is prime (trial division: n is at most 2^22).
pub fn is_prime(n: u32) -> bool {
    if n < 2 {
        return false;
    }
    if n.is_multiple_of(2) {
        return n == 2;
    }
    let mut d = 3u32;
    while d.saturating_mul(d) <= n {
        if n.is_multiple_of(d) {
            return false;
        }
        d += 2;
    }
    true
}

fn table_size(v: Option<u32>) -> Result<u32> {
    let n = v.unwrap_or(DEFAULT_TABLE_SIZE);
    if !(MIN_TABLE_SIZE..=LB_MAX_TABLE_SIZE).contains(&n) {
        return Err(Error::invalid(
            "table_size",
            format!("{n} is not in {MIN_TABLE_SIZE}..={LB_MAX_TABLE_SIZE}"),
        ));
    }
    if !is_prime(n) {
        return Err(Error::invalid(
            "table_size",
            format!("{n} is not prime (Maglev needs a prime table size, e.g. 65537)"),
        ));
    }
    Ok(n)
}

fn port(field: &str, p: u16) -> Result<u16> {
    if p == 0 {
        return Err(Error::invalid(field, "port 0 is not a port"));
    }
    Ok(p)
}

#[allow(clippy::too_many_arguments)]
fn vip_def(
    name: &str,
    address: &str,
    p: u16,
    protocol: Option<Protocol>,
    mode: Option<Mode>,
    size: Option<u32>,
    check: Option<&HealthCheckSpec>,
) -> Result<VipDef> {
    validate_vip_name("name", name)?;
    Ok(VipDef {
        name: name.to_owned(),
        address: parse_unicast("address", address)?,
        port: port("port", p)?,
        protocol: protocol.unwrap_or_default(),
        mode: mode.unwrap_or_default(),
        table_size: table_size(size)?,
        health_check: check
            .map(|c| c.validate().map_err(|e| e.nested("health_check.")))
            .transpose()?,
    })
}

impl BackendSpec {
    /// A backend of `vip` (its port defaults to the VIP's); errors name
    /// `address`, `port`.
    pub fn validate(&self, vip: &VipDef) -> Result<BackendDef> {
        let def = BackendDef {
            address: parse_unicast("address", &self.address)?,
            port: port("port", self.port.unwrap_or(vip.port))?,
            weight: self.weight.unwrap_or(1),
        };
        vip.check_backend(&def)
            .map_err(|(f, m)| Error::invalid(f, m))?;
        Ok(def)
    }
}

impl VipSpec {
    /// The VIP and its backends, each checked on its own and against each
    /// other; errors name the field (`backends[1].port`).
    pub fn validate(&self) -> Result<(VipDef, Vec<BackendDef>)> {
        let vip = vip_def(
            &self.name,
            &self.address,
            self.port,
            self.protocol,
            self.mode,
            self.table_size,
            self.health_check.as_ref(),
        )?;
        let mut backends: Vec<BackendDef> = Vec::with_capacity(self.backends.len());
        for (i, b) in self.backends.iter().enumerate() {
            let d = b
                .validate(&vip)
                .map_err(|e| e.nested(&format!("backends[{i}].")))?;
            if let Some(j) = backends.iter().position(|o| o.endpoint() == d.endpoint()) {
                return Err(Error::invalid(
                    format!("backends[{i}]"),
                    format!("{} is also backends[{j}]", d.endpoint()),
                ));
            }
            backends.push(d);
        }
        if backends.len() > vip.max_backends() {
            return Err(Error::invalid(
                "table_size",
                format!(
                    "{} backends need a table larger than {} (M > 100 × backends)",
                    backends.len(),
                    backends.len() as u64 * TABLE_SIZE_PER_BACKEND
                ),
            ));
        }
        Ok((vip, backends))
    }
}

impl VipUpdateSpec {
    /// The new settings of VIP `current` (its name unless renamed).
    pub fn validate(&self, current: &str) -> Result<VipDef> {
        vip_def(
            self.name.as_deref().unwrap_or(current),
            &self.address,
            self.port,
            self.protocol,
            self.mode,
            self.table_size,
            self.health_check.as_ref(),
        )
    }
}

/// Parses the `{address}:{port}` path segment naming a backend.
pub fn parse_backend_key(text: &str) -> Result<SocketAddrV4> {
    text.parse::<SocketAddrV4>()
        .map_err(|_| Error::invalid("backend", format!("{text:?} is not ADDRESS:PORT")))
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
