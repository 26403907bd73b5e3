//! Route modifications a term applies when it matches (LOCAL_PREF, MED,
//! AS prepending, next hop, communities).

use super::community::{self, CommunityPattern};
use super::eval::RouteContext;
use crate::types::{AsSegment, Community, PathAttributes, Prefix};
use std::net::IpAddr;

/// Most copies one prepend action may add.
pub const MAX_PREPEND_COUNT: u8 = 32;
/// Most ASes in one AS_SEQUENCE segment on the wire.
const MAX_SEGMENT_ASES: usize = 255;

/// A change to MED. A route without MED counts as MED 0 for `Add`/`Sub`
/// (as Cisco and FRR do); both saturate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MedChange {
    Set(u32),
    Add(u32),
    Sub(u32),
}

/// The next hop to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextHopChange {
    /// The session's local address of the route's family (left unchanged
    /// when the context has none).
    SelfAddress,
    Address(IpAddr),
}

/// One modification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Modify {
    SetLocalPref(u32),
    Med(MedChange),
    /// Prepend `asn` (the local AS when `None`) `count` times.
    Prepend {
        asn: Option<u32>,
        count: u8,
    },
    NextHop(NextHopChange),
    SetCommunities(Vec<Community>),
    AddCommunities(Vec<Community>),
    DeleteCommunities(Vec<CommunityPattern>),
}

impl Modify {
    /// Applies the change in place. Returns true when the AS path changed
    /// (so a cached text form is stale).
    pub fn apply(&self, prefix: &Prefix, attrs: &mut PathAttributes, ctx: &RouteContext) -> bool {
        match self {
            Modify::SetLocalPref(v) => attrs.local_pref = Some(*v),
            Modify::Med(change) => {
                let old = attrs.med.unwrap_or(0);
                attrs.med = Some(match *change {
                    MedChange::Set(v) => v,
                    MedChange::Add(v) => old.saturating_add(v),
                    MedChange::Sub(v) => old.saturating_sub(v),
                });
            }
            Modify::Prepend { asn, count } => {
                prepend_in_place(attrs, asn.unwrap_or(ctx.local_as), *count);
                return *count > 0;
            }
            Modify::NextHop(NextHopChange::Address(a)) => attrs.next_hop = Some(*a),
            Modify::NextHop(NextHopChange::SelfAddress) => {
                let own = match prefix {
                    Prefix::V4 { .. } => ctx.local_v4.map(IpAddr::V4),
                    Prefix::V6 { .. } => ctx.local_v6.map(IpAddr::V6),
                };
                if let Some(a) = own {
                    attrs.next_hop = Some(a);
                }
            }
            Modify::SetCommunities(v) => community::set(&mut attrs.communities, v),
            Modify::AddCommunities(v) => community::add(&mut attrs.communities, v),
            Modify::DeleteCommunities(p) => community::delete(&mut attrs.communities, p),
        }
        false
    }
}

/// Prepends `count` copies of `asn` into the leading AS_SEQUENCE, opening
/// a new segment when there is none or it is full.
fn prepend_in_place(attrs: &mut PathAttributes, asn: u32, count: u8) {
    let segments = &mut attrs.as_path.segments;
    for _ in 0..count {
        match segments.first_mut() {
            Some(AsSegment::Sequence(v)) if v.len() < MAX_SEGMENT_ASES => v.insert(0, asn),
            _ => segments.insert(0, AsSegment::Sequence(vec![asn])),
        }
    }
}
