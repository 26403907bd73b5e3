//! Running a policy over one route, and what happens without one
//! (RFC 8212: eBGP denies everything, iBGP accepts).

use super::term::{DefaultAction, LazyPathText, Policy, Then};
use crate::types::{PathAttributes, Prefix};
use std::net::{Ipv4Addr, Ipv6Addr};

/// The session a route is evaluated for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteContext {
    pub peer_as: u32,
    pub local_as: u32,
    pub ebgp: bool,
    /// The session's local addresses, for "next hop self".
    pub local_v4: Option<Ipv4Addr>,
    pub local_v6: Option<Ipv6Addr>,
}

/// What decided a verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecidedBy {
    /// The term at this index stopped evaluation.
    Term(usize),
    /// No term stopped it: the policy's default action.
    Default,
    /// The session has no policy in this direction (RFC 8212).
    NoPolicy,
}

/// The outcome for one route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Accept(DecidedBy),
    Reject(DecidedBy),
}

impl Verdict {
    pub fn is_accept(&self) -> bool {
        matches!(self, Verdict::Accept(_))
    }
}

/// Runs `policy` over a route. Modifications land in `attrs` as terms
/// match, also when a later term rejects (the caller discards the route
/// then). Matching allocates nothing (once the regex engine's per-thread
/// cache exists); a path regex renders the path on the stack (up to ~180
/// ASes). Prefix lists are scanned in order: cost grows with their length.
pub fn apply(
    policy: &Policy,
    prefix: &Prefix,
    attrs: &mut PathAttributes,
    ctx: &RouteContext,
) -> Verdict {
    let mut text = LazyPathText::new();
    for (i, term) in policy.terms.iter().enumerate() {
        if !term.matches.matches(prefix, attrs, ctx, &mut text) {
            continue;
        }
        for m in &term.modify {
            if m.apply(prefix, attrs, ctx) {
                text.invalidate();
            }
        }
        match term.then {
            Then::Accept => return Verdict::Accept(DecidedBy::Term(i)),
            Then::Reject => return Verdict::Reject(DecidedBy::Term(i)),
            Then::Continue => {}
        }
    }
    match policy.default {
        DefaultAction::Accept => Verdict::Accept(DecidedBy::Default),
        DefaultAction::Reject => Verdict::Reject(DecidedBy::Default),
    }
}

/// The verdict for a session with no policy in a direction: RFC 8212
/// rejects every route to or from an eBGP peer; iBGP accepts.
pub fn without_policy(ctx: &RouteContext) -> Verdict {
    if ctx.ebgp {
        Verdict::Reject(DecidedBy::NoPolicy)
    } else {
        Verdict::Accept(DecidedBy::NoPolicy)
    }
}

/// Per session and direction: what policy (or its absence) decided.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PolicyCounters {
    pub accepted: u64,
    pub rejected: u64,
    /// Of `rejected`: eBGP routes refused for want of a policy (RFC 8212).
    pub rejected_no_policy: u64,
}

impl PolicyCounters {
    pub fn count(&mut self, v: Verdict) {
        match v {
            Verdict::Accept(_) => self.accepted += 1,
            Verdict::Reject(by) => {
                self.rejected += 1;
                if by == DecidedBy::NoPolicy {
                    self.rejected_no_policy += 1;
                }
            }
        }
    }
}

/// The import or export decision for one route: the session's policy when
/// it has one, else [`without_policy`]; counted in `counters`.
pub fn evaluate(
    policy: Option<&Policy>,
    prefix: &Prefix,
    attrs: &mut PathAttributes,
    ctx: &RouteContext,
    counters: &mut PolicyCounters,
) -> Verdict {
    let v = match policy {
        Some(p) => apply(p, prefix, attrs, ctx),
        None => without_policy(ctx),
    };
    counters.count(v);
    v
}
