//! Prefix lists: ordered permit/deny entries with ge/le length ranges;
//! the first entry that matches decides, no match is an implicit deny.

use crate::types::Prefix;

/// What a matching entry says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListAction {
    Permit,
    Deny,
}

/// One entry: `prefix` with optional `ge`/`le`.
///
/// Without `ge`/`le` only `prefix` itself matches. Otherwise a route matches
/// when `prefix` covers it and its length lies in `ge..=le`, where a missing
/// `ge` is the entry's own length and a missing `le` is 32 (IPv4) or 128
/// (IPv6) when `ge` is given, else the entry's own length.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrefixListEntry {
    pub action: ListAction,
    pub prefix: Prefix,
    pub ge: Option<u8>,
    pub le: Option<u8>,
}

/// The longest prefix length of the entry's family.
pub(crate) fn max_len(p: &Prefix) -> u8 {
    match p {
        Prefix::V4 { .. } => 32,
        Prefix::V6 { .. } => 128,
    }
}

impl PrefixListEntry {
    /// The inclusive range of route lengths this entry accepts.
    pub fn length_range(&self) -> (u8, u8) {
        let len = self.prefix.prefix_len();
        let lo = self.ge.unwrap_or(len);
        let hi = match (self.ge, self.le) {
            (_, Some(le)) => le,
            (Some(_), None) => max_len(&self.prefix),
            (None, None) => len,
        };
        (lo, hi)
    }

    /// True when `route` falls under this entry (whatever its action).
    pub fn matches(&self, route: &Prefix) -> bool {
        let (lo, hi) = self.length_range();
        let rlen = route.prefix_len();
        rlen >= lo && rlen <= hi && covers(&self.prefix, route)
    }
}

/// `outer` covers `inner` (same family, `inner` at least as long and equal
/// in `outer`'s bits). Pure integer arithmetic: no allocation, no parsing.
fn covers(outer: &Prefix, inner: &Prefix) -> bool {
    match (*outer, *inner) {
        (Prefix::V4 { addr, len }, Prefix::V4 { addr: i, len: il }) => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            il >= len && (u32::from(i) & mask) == u32::from(addr)
        }
        (Prefix::V6 { addr, len }, Prefix::V6 { addr: i, len: il }) => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            il >= len && (u128::from(i) & mask) == u128::from(addr)
        }
        _ => false,
    }
}

/// An ordered prefix list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PrefixList {
    pub entries: Vec<PrefixListEntry>,
}

impl PrefixList {
    /// The action of the first matching entry, `None` when none matches.
    pub fn lookup(&self, route: &Prefix) -> Option<(usize, ListAction)> {
        self.entries
            .iter()
            .enumerate()
            .find(|(_, e)| e.matches(route))
            .map(|(i, e)| (i, e.action))
    }

    /// True when the list permits `route` (first match wins; implicit deny).
    pub fn permits(&self, route: &Prefix) -> bool {
        matches!(self.lookup(route), Some((_, ListAction::Permit)))
    }
}
