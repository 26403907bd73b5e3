//! Listing sessions for the API: paged by slot cursor, filterable by
//! inside address. Not on the packet path.

use std::net::{Ipv4Addr, SocketAddrV4};

use super::key::Proto;
use super::Nat;

/// One session as the API shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionInfo {
    pub proto: Proto,
    pub inside: SocketAddrV4,
    pub outside: SocketAddrV4,
    pub remote: SocketAddrV4,
    /// TCP state name, or "active" for UDP and ICMP.
    pub state: &'static str,
    /// Created by a port forward.
    pub is_static: bool,
    pub age_nanos: u64,
    /// Time left before the idle timeout at the listing's `now`.
    pub expires_in_nanos: u64,
}

impl Nat {
    /// Live sessions from slot `cursor` on, as (slot, info), optionally
    /// only those of inside host `inside`. The next page starts at the last
    /// slot returned + 1. Slots are stable while a session lives.
    pub fn sessions(
        &self,
        inside: Option<Ipv4Addr>,
        cursor: usize,
        now: u64,
    ) -> impl Iterator<Item = (usize, SessionInfo)> + '_ {
        let want = inside.map(u32::from);
        (cursor..self.sessions.capacity()).filter_map(move |i| {
            let s = self.sessions.live(i)?;
            if want.is_some_and(|a| a != s.inside.addr) {
                return None;
            }
            let timeout = self.cfg.timeouts.nanos(s.class);
            let info = SessionInfo {
                proto: s.proto,
                inside: s.inside.socket(),
                outside: s.outside.socket(),
                remote: s.remote.socket(),
                state: if s.proto == Proto::Tcp {
                    s.tcp.name()
                } else {
                    "active"
                },
                is_static: self.mappings.get(s.mapping).is_static,
                age_nanos: now.saturating_sub(s.created),
                expires_in_nanos: (s.last_seen.saturating_add(timeout)).saturating_sub(now),
            };
            Some((i, info))
        })
    }

    /// One page of at most `limit` sessions and the cursor of the next page
    /// (`None` at the end). Allocates the page: for the API, not workers.
    pub fn session_page(
        &self,
        inside: Option<Ipv4Addr>,
        cursor: usize,
        limit: usize,
        now: u64,
    ) -> (Vec<SessionInfo>, Option<usize>) {
        let mut page = Vec::with_capacity(limit.min(1024));
        let mut next = None;
        for (i, info) in self.sessions(inside, cursor, now) {
            if page.len() == limit {
                next = Some(i);
                break;
            }
            page.push(info);
        }
        (page, next)
    }
}
