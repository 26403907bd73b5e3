//! The NAT session query protocol on `nat.sock` (a Unix stream socket in
//! the runtime directory, served by the engine): one JSON line per request
//! ([`SessionRequest`]), one JSON line per reply ([`SessionReply`]), any
//! number of requests per connection.
//!
//! Paging: a cursor names a worker and a session slot in it ("W.S"); a
//! page walks the workers in order from the cursor, and `next_cursor` is
//! absent on the last page. Sessions created or closed while paging may be
//! missed or seen once more on a later page; none is listed twice on one.

use std::net::{Ipv4Addr, SocketAddrV4};

use serde::{Deserialize, Serialize};

/// Most sessions one reply carries.
pub const MAX_LIMIT: u32 = 1000;

/// One page request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    /// Only sessions of this inside host.
    #[serde(default)]
    pub inside: Option<Ipv4Addr>,
    /// Where the page starts (absent: at the beginning).
    #[serde(default)]
    pub cursor: Option<String>,
    /// Most sessions on the page (1..=[`MAX_LIMIT`]).
    pub limit: u32,
}

/// One session as listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// Worker holding it.
    pub worker: u32,
    /// "tcp", "udp" or "icmp".
    pub proto: String,
    pub inside: SocketAddrV4,
    pub outside: SocketAddrV4,
    pub remote: SocketAddrV4,
    /// TCP state, or "active".
    pub state: String,
    /// Created by a port forward.
    #[serde(rename = "static")]
    pub is_static: bool,
    pub age_ms: u64,
    pub expires_in_ms: u64,
}

/// Why a query failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueryErrorCode {
    /// The request did not parse or is out of range.
    BadRequest,
    /// The engine runs no NAT.
    NatDisabled,
    /// A worker did not answer in time (stopped or stuck).
    WorkerTimeout,
}

/// The reply to one request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionReply {
    Page {
        sessions: Vec<SessionRecord>,
        /// Cursor of the next page; absent on the last.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next_cursor: Option<String>,
        /// Workers the engine runs.
        workers: u32,
    },
    Error {
        code: QueryErrorCode,
        message: String,
    },
}

/// The cursor of slot `slot` of worker `worker`.
pub fn encode_cursor(worker: usize, slot: usize) -> String {
    format!("{worker}.{slot}")
}

/// (worker, slot) of a cursor; `None` when it is not one.
pub fn decode_cursor(text: &str) -> Option<(usize, usize)> {
    let (w, s) = text.split_once('.')?;
    let digits = |t: &str| !t.is_empty() && t.len() <= 12 && t.bytes().all(|b| b.is_ascii_digit());
    if !digits(w) || !digits(s) {
        return None;
    }
    Some((w.parse().ok()?, s.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_junk_is_refused() {
        assert_eq!(decode_cursor(&encode_cursor(3, 65535)), Some((3, 65535)));
        for bad in [
            "",
            "1",
            "1.",
            ".2",
            "a.1",
            "1.-2",
            "+1.2",
            "1.2.3",
            "9999999999999.1",
        ] {
            assert_eq!(decode_cursor(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn replies_are_tagged_json() {
        let r = SessionReply::Error {
            code: QueryErrorCode::NatDisabled,
            message: "off".into(),
        };
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(text, r#"{"error":{"code":"nat_disabled","message":"off"}}"#);
        assert_eq!(serde_json::from_str::<SessionReply>(&text).unwrap(), r);
        let req: SessionRequest =
            serde_json::from_str(r#"{"limit":5,"inside":"10.0.0.2"}"#).unwrap();
        assert_eq!(req.inside, Some(Ipv4Addr::new(10, 0, 0, 2)));
        assert!(serde_json::from_str::<SessionRequest>(r#"{"limit":5,"x":1}"#).is_err());
    }
}
