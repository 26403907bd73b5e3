//! Pages of the RIB for the API: every path (originated networks and each
//! neighbour's Adj-RIB-In after import policy) of the prefixes within a
//! filter, in prefix order; a page never splits a prefix's paths. The
//! cursor is the last prefix of the previous page, as text.

use std::collections::BTreeSet;
use std::net::IpAddr;

use patronus_bgp::policy::community::community_text;
use patronus_bgp::rib::{PeerId, Rib};
use patronus_bgp::types::{AsSegment, Origin, PathAttributes, Prefix};

use crate::bgp::model::parse_prefix;
use crate::bgp::status::{RibPage, RibQuery, RibRoute, StatusError};

/// `65001 65002 {65003,65004}`.
pub fn as_path_text(a: &PathAttributes) -> String {
    let mut parts = Vec::new();
    for s in &a.as_path.segments {
        match s {
            AsSegment::Sequence(v) => parts.extend(v.iter().map(u32::to_string)),
            AsSegment::Set(v) => parts.push(format!(
                "{{{}}}",
                v.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
            )),
        }
    }
    parts.join(" ")
}

fn origin_text(o: Origin) -> &'static str {
    match o {
        Origin::Igp => "igp",
        Origin::Egp => "egp",
        Origin::Incomplete => "incomplete",
    }
}

/// One page; `peers` are the live neighbours (handle, address).
pub fn page(rib: &Rib, peers: &[(PeerId, IpAddr)], q: &RibQuery) -> Result<RibPage, StatusError> {
    let after = match &q.cursor {
        Some(c) => Some(parse_prefix("cursor", c).map_err(|_| StatusError::BadCursor(c.clone()))?),
        None => None,
    };
    let limit = q.limit.max(1) as usize;
    let mut sources: Vec<(PeerId, Option<IpAddr>)> = vec![(PeerId::LOCAL, None)];
    sources.extend(peers.iter().map(|(id, a)| (*id, Some(*a))));
    // The first `limit` prefixes after the cursor (each has at least one
    // path, so no more are needed), kept bounded while the table is walked.
    let mut prefixes: BTreeSet<Prefix> = BTreeSet::new();
    for (id, _) in &sources {
        let Some(adj) = rib.adj_rib_in(*id) else {
            continue;
        };
        for (p, _) in adj.iter() {
            if after.is_some_and(|a| *p <= a) || q.prefix.is_some_and(|f| !f.contains(p)) {
                continue;
            }
            if prefixes.len() == limit && prefixes.last().is_some_and(|l| p >= l) {
                continue;
            }
            prefixes.insert(*p);
            if prefixes.len() > limit {
                prefixes.pop_last();
            }
        }
    }
    let mut routes = Vec::new();
    let mut last = None;
    for p in &prefixes {
        let selected = rib.selected(p);
        let mut these = Vec::new();
        for (id, address) in &sources {
            let Some(r) = rib.adj_rib_in(*id).and_then(|a| a.get(p)) else {
                continue;
            };
            let a = &**r.attrs;
            let pos = selected
                .as_ref()
                .and_then(|s| s.paths.iter().position(|x| x.peer == *id));
            these.push(RibRoute {
                prefix: *p,
                peer: *address,
                best: pos == Some(0),
                multipath: pos.is_some(),
                next_hop: a.next_hop,
                as_path: as_path_text(a),
                origin: origin_text(a.origin).to_owned(),
                local_pref: a.local_pref,
                med: a.med,
                communities: a.communities.iter().map(|c| community_text(*c)).collect(),
                stale: r.stale,
            });
        }
        if !routes.is_empty() && routes.len() + these.len() > limit {
            break;
        }
        routes.extend(these);
        last = Some(*p);
    }
    // More may follow when the page is full (an empty next page is fine).
    let full = last.is_some() && (last != prefixes.last().copied() || prefixes.len() == limit);
    Ok(RibPage {
        routes,
        next_cursor: if full {
            last.map(|p| p.to_string())
        } else {
            None
        },
    })
}
