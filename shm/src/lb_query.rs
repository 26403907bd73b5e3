//! The load-balancer query protocol on `lb.sock` (a Unix stream socket in
//! the runtime directory, served by the engine whenever it runs): one JSON
//! line per request ([`LbRequest`]), one JSON line per reply ([`LbReply`]),
//! any number of requests per connection.
//!
//! The reply sums every worker's counters per backend of the engine's
//! current plan. Counters are cumulative while the backend (its id) stays
//! in the plan; a backend removed and added again starts from zero.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

/// One request: the per-backend counters (no parameters yet; unknown
/// fields are refused so a later parameter cannot be silently ignored).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LbRequest {}

/// One backend's counters, summed over the workers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LbBackendStats {
    /// [`crate::lb::LbBackendEntry::id`].
    pub id: u32,
    /// [`crate::lb::LbVipEntry::id`].
    pub vip_id: u32,
    pub addr: Ipv4Addr,
    pub port: u16,
    /// The weight the engine compiled (0 = draining).
    pub weight: u16,
    /// Whether the engine takes it as up (in the Maglev table if weight > 0).
    pub up: bool,
    /// Flows pinned to it since it entered the plan.
    pub flows: u64,
    /// Flows pinned to it now.
    pub active_flows: u64,
    /// Packets and IP bytes of its flows, both directions (replies only
    /// in NAT mode: in DSR mode they bypass the engine).
    pub packets: u64,
    pub bytes: u64,
}

/// Why a query failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LbErrorCode {
    /// The request did not parse.
    BadRequest,
    /// A worker did not answer in time (stopped or stuck).
    WorkerTimeout,
}

/// The reply to one request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LbReply {
    Backends {
        backends: Vec<LbBackendStats>,
        /// Flows pinned now over all workers (all VIPs).
        active_flows: u64,
        /// The `lb.bin` number the engine runs (0 = its own config).
        generation: u64,
        /// Workers the engine runs.
        workers: u32,
    },
    Error {
        code: LbErrorCode,
        message: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_refuse_unknown_fields_and_replies_are_tagged() {
        assert!(serde_json::from_str::<LbRequest>("{}").is_ok());
        assert!(serde_json::from_str::<LbRequest>(r#"{"x":1}"#).is_err());
        let r = LbReply::Backends {
            backends: vec![LbBackendStats {
                id: 1,
                vip_id: 2,
                addr: Ipv4Addr::new(10, 0, 0, 1),
                port: 80,
                weight: 1,
                up: true,
                flows: 3,
                active_flows: 1,
                packets: 10,
                bytes: 1000,
            }],
            active_flows: 1,
            generation: 5,
            workers: 2,
        };
        let t = serde_json::to_string(&r).unwrap();
        assert!(t.starts_with(r#"{"backends":"#), "{t}");
        assert_eq!(serde_json::from_str::<LbReply>(&t).unwrap(), r);
        let e = LbReply::Error {
            code: LbErrorCode::WorkerTimeout,
            message: "slow".into(),
        };
        let t = serde_json::to_string(&e).unwrap();
        assert!(t.starts_with(r#"{"error":"#), "{t}");
    }
}
