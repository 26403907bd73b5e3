//! What the balancer is asked to do, before compilation: settings, VIPs and
//! their backends, from the engine's `[lb]` TOML or from a pushed `lb.bin`.
//! Plain data; [`super::plan::LbPlan::build`] compiles it.

use patronus_shm::lb::{LbTables, LB_MODE_DSR, LB_PROTO_TCP};

/// Pinned flows per worker by default.
pub const DEFAULT_MAX_FLOWS: usize = 262_144;
/// Idle timeouts by default (seconds).
pub const DEFAULT_TCP_TIMEOUT_SECS: u32 = 900;
pub const DEFAULT_TCP_CLOSING_TIMEOUT_SECS: u32 = 10;
pub const DEFAULT_UDP_TIMEOUT_SECS: u32 = 300;

/// How packets reach a VIP's backends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LbMode {
    /// Destination rewritten; replies come back through the engine, which
    /// rewrites their source back to the VIP.
    Nat,
    /// Encapsulated IP-in-IP to the backend, which replies to the client
    /// directly from the VIP.
    Dsr,
}

/// Settings shared by every VIP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LbSettings {
    pub max_flows: usize,
    pub tcp_timeout_secs: u32,
    pub tcp_closing_timeout_secs: u32,
    pub udp_timeout_secs: u32,
}

impl Default for LbSettings {
    fn default() -> Self {
        LbSettings {
            max_flows: DEFAULT_MAX_FLOWS,
            tcp_timeout_secs: DEFAULT_TCP_TIMEOUT_SECS,
            tcp_closing_timeout_secs: DEFAULT_TCP_CLOSING_TIMEOUT_SECS,
            udp_timeout_secs: DEFAULT_UDP_TIMEOUT_SECS,
        }
    }
}

/// One backend of a pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackendSpec {
    /// Stable identity (names its counters; pins refer to it).
    pub id: u32,
    pub addr: u32,
    pub port: u16,
    /// 0 = draining: keeps its pinned flows, takes no new ones.
    pub weight: u16,
    /// Health: a backend that is down loses its flows.
    pub up: bool,
}

/// One VIP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VipSpec {
    pub id: u32,
    pub addr: u32,
    pub port: u16,
    /// IP protocol number (TCP or UDP).
    pub proto: u8,
    pub mode: LbMode,
    /// Maglev table size (prime); 0 = the default.
    pub table_size: u32,
    pub backends: Vec<BackendSpec>,
}

/// The whole request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LbSpec {
    pub settings: LbSettings,
    pub vips: Vec<VipSpec>,
}

impl LbSpec {
    /// The spec a pushed file describes; None when the control process does
    /// not manage the balancer (no settings table). Settings the file leaves
    /// at 0 take `defaults` (the engine's `[lb]`, else the built-in ones).
    pub fn from_tables(t: &LbTables, defaults: LbSettings) -> Option<LbSpec> {
        let s = t.settings?;
        let or = |v: u32, d: u32| if v == 0 { d } else { v };
        let settings = LbSettings {
            max_flows: if s.max_flows == 0 {
                defaults.max_flows
            } else {
                s.max_flows as usize
            },
            tcp_timeout_secs: or(s.tcp_timeout_secs, defaults.tcp_timeout_secs),
            tcp_closing_timeout_secs: or(
                s.tcp_closing_timeout_secs,
                defaults.tcp_closing_timeout_secs,
            ),
            udp_timeout_secs: or(s.udp_timeout_secs, defaults.udp_timeout_secs),
        };
        let vips = t
            .vips
            .iter()
            .map(|v| VipSpec {
                id: v.id,
                addr: v.addr,
                port: v.port,
                proto: v.proto,
                mode: if v.mode == LB_MODE_DSR {
                    LbMode::Dsr
                } else {
                    LbMode::Nat
                },
                table_size: v.table_size,
                backends: t
                    .backends_of(v.id)
                    .map(|b| BackendSpec {
                        id: b.id,
                        addr: b.addr,
                        port: b.port,
                        weight: b.weight,
                        up: b.up == 1,
                    })
                    .collect(),
            })
            .collect();
        Some(LbSpec { settings, vips })
    }

    /// True when the spec balances nothing.
    pub fn is_empty(&self) -> bool {
        self.vips.is_empty()
    }
}

/// "tcp" or "udp" for a VIP's protocol number.
pub fn proto_name(p: u8) -> &'static str {
    if p == LB_PROTO_TCP {
        "tcp"
    } else {
        "udp"
    }
}
