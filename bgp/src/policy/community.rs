//! Standard communities in policy: patterns (exact, well-known names,
//! `ASN:*` and `*:VALUE` wildcards), any/all matching, and set/add/delete.

use crate::types::{Community, COMMUNITY_NO_ADVERTISE, COMMUNITY_NO_EXPORT};

/// NO_EXPORT_SUBCONFED (RFC 1997).
pub const COMMUNITY_NO_EXPORT_SUBCONFED: Community = 0xFFFF_FF03;
/// BLACKHOLE (RFC 7999).
pub const COMMUNITY_BLACKHOLE: Community = 0xFFFF_029A;

/// Well-known communities by the names the text form accepts.
const WELL_KNOWN: [(&str, Community); 4] = [
    ("no-export", COMMUNITY_NO_EXPORT),
    ("no-advertise", COMMUNITY_NO_ADVERTISE),
    ("no-export-subconfed", COMMUNITY_NO_EXPORT_SUBCONFED),
    ("blackhole", COMMUNITY_BLACKHOLE),
];

/// A community or a family of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CommunityPattern {
    Exact(Community),
    /// `ASN:*`: any value under this 16-bit ASN.
    AnyValue(u16),
    /// `*:VALUE`: this value under any ASN.
    AnyAsn(u16),
}

impl CommunityPattern {
    pub fn matches(&self, c: Community) -> bool {
        match *self {
            CommunityPattern::Exact(v) => c == v,
            CommunityPattern::AnyValue(asn) => (c >> 16) as u16 == asn,
            CommunityPattern::AnyAsn(val) => c as u16 == val,
        }
    }

    /// Parses `ASN:VALUE`, `ASN:*`, `*:VALUE` or a well-known name
    /// (`no-export`, `NO_EXPORT`, ...).
    pub fn parse(text: &str) -> Option<CommunityPattern> {
        let norm = text.trim();
        if let Some(v) = parse_well_known(norm) {
            return Some(CommunityPattern::Exact(v));
        }
        let (hi, lo) = norm.split_once(':')?;
        match (hi, lo) {
            ("*", "*") => None,
            ("*", v) => v.parse().ok().map(CommunityPattern::AnyAsn),
            (a, "*") => a.parse().ok().map(CommunityPattern::AnyValue),
            (a, v) => {
                let a: u16 = a.parse().ok()?;
                let v: u16 = v.parse().ok()?;
                Some(CommunityPattern::Exact(u32::from(a) << 16 | u32::from(v)))
            }
        }
    }
}

fn parse_well_known(text: &str) -> Option<Community> {
    WELL_KNOWN
        .iter()
        .find(|(name, _)| {
            text.len() == name.len()
                && text
                    .bytes()
                    .zip(name.bytes())
                    .all(|(t, n)| t.to_ascii_lowercase() == n || (t == b'_' && n == b'-'))
        })
        .map(|(_, v)| *v)
}

/// Parses one community value (no wildcards).
pub fn parse_community(text: &str) -> Option<Community> {
    match CommunityPattern::parse(text)? {
        CommunityPattern::Exact(v) => Some(v),
        _ => None,
    }
}

/// The text form: a well-known name, else `ASN:VALUE`.
pub fn community_text(c: Community) -> String {
    match WELL_KNOWN.iter().find(|(_, v)| *v == c) {
        Some((name, _)) => (*name).to_owned(),
        None => format!("{}:{}", c >> 16, c & 0xFFFF),
    }
}

impl std::fmt::Display for CommunityPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            CommunityPattern::Exact(c) => f.write_str(&community_text(c)),
            CommunityPattern::AnyValue(asn) => write!(f, "{asn}:*"),
            CommunityPattern::AnyAsn(v) => write!(f, "*:{v}"),
        }
    }
}

/// True when some route community matches some pattern.
pub fn match_any(patterns: &[CommunityPattern], communities: &[Community]) -> bool {
    patterns
        .iter()
        .any(|p| communities.iter().any(|c| p.matches(*c)))
}

/// True when every pattern is matched by some route community.
pub fn match_all(patterns: &[CommunityPattern], communities: &[Community]) -> bool {
    patterns
        .iter()
        .all(|p| communities.iter().any(|c| p.matches(*c)))
}

/// Replaces the route's communities (reusing the vector's storage).
pub fn set(communities: &mut Vec<Community>, values: &[Community]) {
    communities.clear();
    add(communities, values);
}

/// Adds each value not yet present, in order.
pub fn add(communities: &mut Vec<Community>, values: &[Community]) {
    for v in values {
        if !communities.contains(v) {
            communities.push(*v);
        }
    }
}

/// Removes every community any pattern matches.
pub fn delete(communities: &mut Vec<Community>, patterns: &[CommunityPattern]) {
    communities.retain(|c| !patterns.iter().any(|p| p.matches(*c)));
}
