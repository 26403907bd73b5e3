//! Validation errors, each naming the field at fault as a path such as
//! `terms[2].match.prefix_list[0].le`.

use super::as_path::RegexError;
use crate::types::Prefix;

/// A refused policy: where, and what is wrong there.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct PolicyError {
    /// Path of the offending field (`.` for the document itself).
    pub field: String,
    pub problem: Problem,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("invalid JSON: {0}")]
    Json(String),
    #[error("name must be 1 to 64 characters of A-Z a-z 0-9 . _ -")]
    BadName,
    #[error("term name {0:?} used twice")]
    DuplicateTermName(String),
    #[error("not a prefix: {0:?}")]
    BadPrefix(String),
    #[error("host bits set (the prefix is {0})")]
    HostBitsSet(Prefix),
    #[error("an empty prefix list matches no route")]
    EmptyPrefixList,
    #[error("ge {ge} is shorter than the prefix length {len}")]
    GeBelowLength { ge: u8, len: u8 },
    #[error("le {le} is shorter than ge {ge}")]
    LeBelowGe { le: u8, ge: u8 },
    #[error("le {le} is shorter than the prefix length {len}")]
    LeBelowLength { le: u8, len: u8 },
    #[error("{value} is longer than {max}, the family's longest prefix")]
    LengthTooLong { value: u8, max: u8 },
    #[error("eq cannot be combined with ge or le")]
    EqWithRange,
    #[error("give eq, ge or le")]
    NoBound,
    #[error("le {le} is below ge {ge}")]
    RangeInverted { ge: u32, le: u32 },
    #[error("bad AS-path regex: {0}")]
    Regex(RegexError),
    #[error("not a community: {0:?} (ASN:VALUE, ASN:*, *:VALUE or a well-known name)")]
    BadCommunity(String),
    #[error("a wildcard cannot be set or added: {0:?}")]
    WildcardNotAllowed(String),
    #[error("not a MED change: {0:?} (N, \"+N\" or \"-N\")")]
    BadMed(String),
    #[error("not a next hop: {0:?} (\"self\" or an IP address)")]
    BadNextHop(String),
    #[error("prepend count must be 1 to {max}, not {count}")]
    PrependCount { count: u8, max: u8 },
}
