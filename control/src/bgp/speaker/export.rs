//! Export: which selected route a neighbour gets and with what attributes
//! (split horizon, iBGP rules, well-known communities, eBGP next hop self
//! and AS prepend, export policy), and packing announcements and
//! withdrawals into UPDATE messages that fit in 4096 bytes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use patronus_bgp::policy::{evaluate, Policy, PolicyCounters, RouteContext};
use patronus_bgp::rib::{PeerId, Selected};
use patronus_bgp::types::{
    Afi, PathAttributes, Prefix, COMMUNITY_NO_ADVERTISE, COMMUNITY_NO_EXPORT,
};
use patronus_bgp::wire::{EncodeError, Message, MpReach, MpUnreach, SessionContext, Update};

/// LOCAL_PREF sent to iBGP neighbours for routes that carry none.
pub const DEFAULT_LOCAL_PREF: u32 = 100;

/// Prefixes per UPDATE on the first try (halved while a message would be
/// too long).
const PREFIXES_PER_UPDATE: usize = 400;

/// The neighbour an export is computed for.
pub struct ExportTarget<'a> {
    pub peer: PeerId,
    pub ebgp: bool,
    pub route_ctx: &'a RouteContext,
    pub policy: Option<&'a Policy>,
    pub ctx: &'a SessionContext,
}

/// Where the best route came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Local,
    Ibgp,
    Ebgp,
}

/// The attributes to announce `prefix` with to `to`, or None when it must
/// not be announced (or must be withdrawn).
pub fn export_route(
    to: &ExportTarget<'_>,
    prefix: &Prefix,
    selected: &Selected,
    source: Source,
    counters: &mut PolicyCounters,
) -> Option<PathAttributes> {
    let best = selected.best();
    let afi = prefix.afi();
    if best.peer == to.peer || !to.ctx.carries(afi) {
        return None;
    }
    // No route reflection: iBGP-learned routes stay inside.
    if source == Source::Ibgp && !to.ebgp {
        return None;
    }
    let communities = &best.attrs.communities;
    if communities.contains(&COMMUNITY_NO_ADVERTISE)
        || (to.ebgp && communities.contains(&COMMUNITY_NO_EXPORT))
    {
        return None;
    }
    let mut a = (*best.attrs).clone();
    let self_nh = self_next_hop(afi, to.route_ctx);
    if to.ebgp {
        a.local_pref = None;
        // MED does not leave the AS that received it (RFC 4271 5.1.4).
        if source != Source::Local {
            a.med = None;
        }
        a.originator_id = None;
        a.cluster_list.clear();
    } else {
        a.local_pref = Some(a.local_pref.unwrap_or(DEFAULT_LOCAL_PREF));
        if source == Source::Local {
            a.next_hop = self_nh;
        }
    }
    if !evaluate(to.policy, prefix, &mut a, to.route_ctx, counters).is_accept() {
        return None;
    }
    if to.ebgp {
        a.as_path = a.as_path.prepend(to.route_ctx.local_as);
        a.next_hop = self_nh;
    }
    match (afi, a.next_hop) {
        (Afi::Ipv4, Some(IpAddr::V4(_))) | (Afi::Ipv6, Some(IpAddr::V6(_))) => Some(a),
        _ => None,
    }
}

fn self_next_hop(afi: Afi, ctx: &RouteContext) -> Option<IpAddr> {
    match afi {
        Afi::Ipv4 => ctx.local_v4.map(IpAddr::V4),
        Afi::Ipv6 => ctx.local_v6.map(IpAddr::V6),
    }
}

/// UPDATE messages for these withdrawals and announcements: one message
/// per set of equal attributes (split when too long), withdrawals first.
pub fn encode_updates(
    ctx: &SessionContext,
    withdraw: &[Prefix],
    announce: &[(Prefix, Arc<PathAttributes>)],
) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for afi in [Afi::Ipv4, Afi::Ipv6] {
        let w: Vec<Prefix> = withdraw
            .iter()
            .copied()
            .filter(|p| p.afi() == afi)
            .collect();
        if !w.is_empty() {
            encode_split(ctx, &w, &|ps| withdrawal(afi, ps), &mut out);
        }
    }
    let mut groups: HashMap<&Arc<PathAttributes>, Vec<Prefix>> = HashMap::new();
    for (p, a) in announce {
        groups.entry(a).or_default().push(*p);
    }
    let mut groups: Vec<_> = groups.into_iter().collect();
    groups.sort_by_key(|(_, ps)| ps[0]);
    for (attrs, prefixes) in groups {
        encode_split(ctx, &prefixes, &|ps| announcement(attrs, ps), &mut out);
    }
    out
}

/// The End-of-RIB marker of a family.
pub fn end_of_rib(ctx: &SessionContext, afi: Afi) -> Option<Vec<u8>> {
    Message::Update(Update::end_of_rib(afi)).to_bytes(ctx).ok()
}

fn withdrawal(afi: Afi, prefixes: &[Prefix]) -> Update {
    match afi {
        Afi::Ipv4 => Update {
            withdrawn: prefixes.to_vec(),
            ..Update::default()
        },
        Afi::Ipv6 => Update {
            mp_unreach: Some(MpUnreach {
                afi,
                prefixes: prefixes.to_vec(),
            }),
            ..Update::default()
        },
    }
}

/// An announcement; all `prefixes` are of the family of the next hop.
fn announcement(attrs: &PathAttributes, prefixes: &[Prefix]) -> Update {
    match attrs.next_hop {
        Some(nh @ IpAddr::V6(_)) => {
            let mut a = attrs.clone();
            a.next_hop = None;
            Update {
                attributes: Some(a),
                mp_reach: Some(MpReach {
                    afi: Afi::Ipv6,
                    next_hop: nh,
                    link_local_next_hop: None,
                    prefixes: prefixes.to_vec(),
                }),
                ..Update::default()
            }
        }
        _ => Update {
            attributes: Some(attrs.clone()),
            nlri: prefixes.to_vec(),
            ..Update::default()
        },
    }
}

/// Encodes `prefixes` in as few messages as fit; a message that would be
/// too long is split in two. Prefixes that cannot be encoded at all are
/// skipped (attributes alone over the limit).
fn encode_split(
    ctx: &SessionContext,
    prefixes: &[Prefix],
    build: &dyn Fn(&[Prefix]) -> Update,
    out: &mut Vec<Vec<u8>>,
) {
    for chunk in prefixes.chunks(PREFIXES_PER_UPDATE) {
        encode_chunk(ctx, chunk, build, out);
    }
}

fn encode_chunk(
    ctx: &SessionContext,
    chunk: &[Prefix],
    build: &dyn Fn(&[Prefix]) -> Update,
    out: &mut Vec<Vec<u8>>,
) {
    match Message::Update(build(chunk)).to_bytes(ctx) {
        Ok(bytes) => out.push(bytes),
        Err(EncodeError::TooLong) if chunk.len() > 1 => {
            let (a, b) = chunk.split_at(chunk.len() / 2);
            encode_chunk(ctx, a, build, out);
            encode_chunk(ctx, b, build, out);
        }
        Err(e) => {
            tracing::warn!(error = %e, prefixes = chunk.len(), "BGP: UPDATE not encodable, skipped")
        }
    }
}
