//! The flow query protocol on `flows.sock` (a Unix stream socket in the
//! runtime directory, served by the engine when classification is on): one
//! JSON line per request ([`FlowRequest`]), one JSON line per reply
//! ([`FlowReply`]), any number of requests per connection.
//!
//! Paging works as for NAT sessions ([`crate::nat_query`]): a cursor names
//! a worker and a flow-table slot ("W.S"); `next_cursor` is absent on the
//! last page. Flows created or expired while paging may be missed or seen
//! again on a later page; none is listed twice on one.

use std::net::{Ipv4Addr, SocketAddrV4};

use serde::{Deserialize, Serialize};

pub use crate::nat_query::{decode_cursor, encode_cursor};

/// Most flows one reply carries.
pub const MAX_FLOW_LIMIT: u32 = 1000;

/// The class labels a flow can carry (`patronus_classify::Class` labels).
pub const FLOW_CLASSES: [&str; 11] = [
    "http",
    "tls",
    "ssh",
    "ftp",
    "dns",
    "smtp",
    "quic",
    "webrtc",
    "bittorrent",
    "other",
    "unknown",
];

/// One page request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowRequest {
    /// Only flows of this class (one of [`FLOW_CLASSES`], or "pending":
    /// still being classified).
    #[serde(default)]
    pub class: Option<String>,
    /// Only flows with this address at either end.
    #[serde(default)]
    pub host: Option<Ipv4Addr>,
    /// Where the page starts (absent: at the beginning).
    #[serde(default)]
    pub cursor: Option<String>,
    /// Most flows on the page (1..=[`MAX_FLOW_LIMIT`]).
    pub limit: u32,
}

/// One flow as listed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlowRecord {
    /// Worker holding it.
    pub worker: u32,
    /// "tcp", "udp" or "icmp" (or the IP protocol number as text).
    pub proto: String,
    /// Sender of the flow's first packet the engine saw.
    pub client: SocketAddrV4,
    pub server: SocketAddrV4,
    /// One of [`FLOW_CLASSES`], or "pending" while being classified.
    pub class: String,
    /// SNI, HTTP Host or DNS query name, when the protocol carried one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_name: Option<String>,
    /// "signature", "ml", "none" (no confident signature and no model) or
    /// "pending".
    pub method: String,
    /// 0..=1.
    pub confidence: f32,
    /// Packets and IP bytes from the client, and from the server.
    pub packets_orig: u64,
    pub packets_reply: u64,
    pub bytes_orig: u64,
    pub bytes_reply: u64,
    /// Since the first packet, since the last.
    pub age_ms: u64,
    pub idle_ms: u64,
}

/// Why a query failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowErrorCode {
    /// The request did not parse or is out of range.
    BadRequest,
    /// The engine runs no classification.
    ClassifyDisabled,
    /// A worker did not answer in time (stopped or stuck).
    WorkerTimeout,
}

/// The reply to one request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowReply {
    Page {
        flows: Vec<FlowRecord>,
        /// Cursor of the next page; absent on the last.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next_cursor: Option<String>,
        /// Workers the engine runs.
        workers: u32,
    },
    Error {
        code: FlowErrorCode,
        message: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_refuse_unknown_fields_and_replies_are_tagged() {
        let r: FlowRequest = serde_json::from_str(r#"{"class":"tls","limit":5}"#).unwrap();
        assert_eq!(r.class.as_deref(), Some("tls"));
        assert!(serde_json::from_str::<FlowRequest>(r#"{"limit":5,"x":1}"#).is_err());
        let e = FlowReply::Error {
            code: FlowErrorCode::ClassifyDisabled,
            message: "off".into(),
        };
        let t = serde_json::to_string(&e).unwrap();
        assert!(t.starts_with(r#"{"error":"#), "{t}");
        assert_eq!(serde_json::from_str::<FlowReply>(&t).unwrap(), e);
    }
}
