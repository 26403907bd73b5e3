//! IPv6 neighbor discovery (RFC 4861 §7.3): the reachability state machine
//! of one neighbor ([`Neighbor`]: INCOMPLETE, REACHABLE, STALE, DELAY,
//! PROBE) and a fixed-capacity per-worker cache of them ([`NdCache`]).
//!
//! No I/O and no clock: time (`now`, nanoseconds on the engine's monotonic
//! clock) and randomness (`rand`, any u32 from the caller's generator) are
//! arguments, and every transition returns the [`NdAction`] the caller
//! carries out (send an NS or NA, release or fail the held packets), so
//! tests drive a fake clock through each transition.

use std::net::Ipv6Addr;

pub use crate::wire::icmpv6::{multicast_mac, solicited_node};
use crate::wire::icmpv6::{NA_FLAG_OVERRIDE, NA_FLAG_ROUTER, NA_FLAG_SOLICITED};

const NS_PER_MS: u64 = 1_000_000;

/// Protocol constants (RFC 4861 §10), in nanoseconds where they are times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NdTimers {
    /// RetransTimer: between solicitations (1 s).
    pub retrans_ns: u64,
    /// MAX_MULTICAST_SOLICIT: NSs while INCOMPLETE before failing (3).
    pub max_multicast_solicit: u32,
    /// MAX_UNICAST_SOLICIT: NSs while PROBE before failing (3).
    pub max_unicast_solicit: u32,
    /// BaseReachableTime (30 s); each confirmation picks a reachable time
    /// uniformly in [0.5, 1.5] times it (MIN/MAX_RANDOM_FACTOR).
    pub base_reachable_ns: u64,
    /// DELAY_FIRST_PROBE_TIME (5 s).
    pub delay_first_probe_ns: u64,
    /// Aging (not in the RFC, which leaves it to the implementation): a
    /// STALE entry unused this long is removed.
    pub stale_lifetime_ns: u64,
}

impl Default for NdTimers {
    fn default() -> Self {
        NdTimers {
            retrans_ns: 1_000 * NS_PER_MS,
            max_multicast_solicit: 3,
            max_unicast_solicit: 3,
            base_reachable_ns: 30_000 * NS_PER_MS,
            delay_first_probe_ns: 5_000 * NS_PER_MS,
            stale_lifetime_ns: 600_000 * NS_PER_MS,
        }
    }
}

impl NdTimers {
    /// A reachable time in [base/2, 3·base/2) from a uniform `rand`.
    #[inline]
    pub fn reachable_time(&self, rand: u32) -> u64 {
        let base = self.base_reachable_ns;
        base / 2 + ((u128::from(base) * u128::from(rand)) >> 32) as u64
    }
}

/// RFC 4861 §7.3.2 states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NdState {
    /// Multicast NSs out, no answer yet; packets are held.
    Incomplete,
    /// Confirmed within the reachable time.
    Reachable,
    /// Not known to be reachable; used, and verified once traffic flows.
    Stale,
    /// Used after being stale; a probe follows unless confirmed meanwhile.
    Delay,
    /// Unicast NSs out to confirm.
    Probe,
}

/// What the caller must do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NdAction {
    /// Send an NS for `target` to its solicited-node address
    /// ([`solicited_node`], MAC [`multicast_mac`]).
    SolicitMulticast { target: Ipv6Addr },
    /// Send an NS for `target` to itself at `mac`.
    SolicitUnicast { target: Ipv6Addr, mac: [u8; 6] },
    /// Send an NA for `target` (ours) to `dst` at `dst_mac` with `flags`
    /// (`NA_FLAG_*`) and our MAC in the target link-layer option.
    Advertise {
        dst: Ipv6Addr,
        dst_mac: [u8; 6],
        target: Ipv6Addr,
        flags: u8,
    },
    /// The neighbor is at `mac`: send the packets held for it.
    Release { mac: [u8; 6] },
    /// Resolution failed: drop the held packets (answering each with an
    /// ICMPv6 address unreachable) and forget the entry.
    Fail,
}

/// The contents of a received Neighbor Advertisement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Advert {
    pub router: bool,
    pub solicited: bool,
    pub override_flag: bool,
    pub target_ll: Option<[u8; 6]>,
}

/// One neighbor's state (RFC 4861 §7.3 and Appendix C).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Neighbor {
    pub target: Ipv6Addr,
    state: NdState,
    mac: [u8; 6],
    is_router: bool,
    /// When the current state's timer fires (REACHABLE: end of reachable
    /// time; INCOMPLETE/PROBE: next retransmission; DELAY: first probe).
    /// STALE has no timer.
    deadline: u64,
    /// Solicitations sent in INCOMPLETE or PROBE.
    probes: u32,
    /// Last time a packet was sent to it (aging of STALE entries).
    last_used: u64,
}

impl Neighbor {
    /// A new entry for a packet to send now: INCOMPLETE, with the first
    /// multicast NS to send.
    pub fn resolve_new(target: Ipv6Addr, now: u64, t: &NdTimers) -> (Self, NdAction) {
        let n = Neighbor {
            target,
            state: NdState::Incomplete,
            mac: [0; 6],
            is_router: false,
            deadline: now.saturating_add(t.retrans_ns),
            probes: 1,
            last_used: now,
        };
        (n, NdAction::SolicitMulticast { target })
    }

    /// A new entry from unsolicited information (an NS, RS or RA with a
    /// source link-layer option, an unsolicited NA): STALE (§7.2.3).
    pub fn learned(target: Ipv6Addr, mac: [u8; 6], now: u64) -> Self {
        Neighbor {
            target,
            state: NdState::Stale,
            mac,
            is_router: false,
            deadline: 0,
            probes: 0,
            last_used: now,
        }
    }

    pub fn state(&self) -> NdState {
        self.state
    }

    /// The link-layer address (meaningless while INCOMPLETE).
    pub fn mac(&self) -> Option<[u8; 6]> {
        (self.state != NdState::Incomplete).then_some(self.mac)
    }

    pub fn is_router(&self) -> bool {
        self.is_router
    }

    /// The time the next [`Neighbor::on_timer`] is due, if any.
    pub fn deadline(&self) -> Option<u64> {
        (self.state != NdState::Stale).then_some(self.deadline)
    }

    /// A packet is to be sent to this neighbor now: its MAC, or `None` to
    /// hold it (INCOMPLETE). Using a STALE entry starts DELAY (§7.3.3);
    /// a REACHABLE one past its time counts as STALE.
    #[inline]
    pub fn use_for_send(&mut self, now: u64, t: &NdTimers) -> Option<[u8; 6]> {
        self.last_used = now;
        if self.state == NdState::Reachable && now >= self.deadline {
            self.state = NdState::Stale;
        }
        match self.state {
            NdState::Incomplete => None,
            NdState::Stale => {
                self.state = NdState::Delay;
                self.deadline = now.saturating_add(t.delay_first_probe_ns);
                Some(self.mac)
            }
            NdState::Reachable | NdState::Delay | NdState::Probe => Some(self.mac),
        }
    }

    /// The state's timer (call when `now >= deadline()`). Returns what to
    /// send, or [`NdAction::Fail`]: the caller then removes the entry.
    pub fn on_timer(&mut self, now: u64, t: &NdTimers) -> Option<NdAction> {
        if self.state == NdState::Stale || now < self.deadline {
            return None;
        }
        match self.state {
            NdState::Incomplete if self.probes < t.max_multicast_solicit => {
                self.probes += 1;
                self.deadline = now.saturating_add(t.retrans_ns);
                Some(NdAction::SolicitMulticast {
                    target: self.target,
                })
            }
            NdState::Probe if self.probes < t.max_unicast_solicit => {
                self.probes += 1;
                self.deadline = now.saturating_add(t.retrans_ns);
                Some(NdAction::SolicitUnicast {
                    target: self.target,
                    mac: self.mac,
                })
            }
            NdState::Incomplete | NdState::Probe => Some(NdAction::Fail),
            NdState::Reachable => {
                self.state = NdState::Stale;
                None
            }
            NdState::Delay => {
                self.state = NdState::Probe;
                self.probes = 1;
                self.deadline = now.saturating_add(t.retrans_ns);
                Some(NdAction::SolicitUnicast {
                    target: self.target,
                    mac: self.mac,
                })
            }
            NdState::Stale => None,
        }
    }

    /// A Neighbor Advertisement for this target arrived (§7.2.5).
    pub fn on_advert(&mut self, na: Advert, now: u64, rand: u32, t: &NdTimers) -> Option<NdAction> {
        let reachable_until = now.saturating_add(t.reachable_time(rand));
        if self.state == NdState::Incomplete {
            let mac = na.target_ll?;
            self.mac = mac;
            self.is_router = na.router;
            self.probes = 0;
            if na.solicited {
                self.state = NdState::Reachable;
                self.deadline = reachable_until;
            } else {
                self.state = NdState::Stale;
            }
            return Some(NdAction::Release { mac });
        }
        let changed = na.target_ll.is_some_and(|m| m != self.mac);
        if !na.override_flag && changed {
            // A different address without override: keep ours, but doubt it.
            if self.state == NdState::Reachable {
                self.state = NdState::Stale;
            }
            return None;
        }
        if let Some(mac) = na.target_ll {
            self.mac = mac;
        }
        if na.solicited {
            self.state = NdState::Reachable;
            self.deadline = reachable_until;
            self.probes = 0;
        } else if changed {
            self.state = NdState::Stale;
        }
        self.is_router = na.router;
        None
    }

    /// A source link-layer address was seen in an NS, RS, RA or redirect
    /// from this neighbor (§7.2.3, §7.3.3): a new address makes it STALE; an
    /// INCOMPLETE entry becomes usable.
    pub fn on_link_layer_address(&mut self, mac: [u8; 6]) -> Option<NdAction> {
        if self.state == NdState::Incomplete {
            self.mac = mac;
            self.state = NdState::Stale;
            self.probes = 0;
            return Some(NdAction::Release { mac });
        }
        if mac != self.mac {
            self.mac = mac;
            self.state = NdState::Stale;
        }
        None
    }

    /// Reachability confirmed by an upper layer (TCP progress, §7.3.1).
    pub fn confirm(&mut self, now: u64, rand: u32, t: &NdTimers) {
        if self.state != NdState::Incomplete {
            self.state = NdState::Reachable;
            self.deadline = now.saturating_add(t.reachable_time(rand));
            self.probes = 0;
        }
    }

    /// True when aging may remove it: STALE and unused for the lifetime.
    pub fn expired(&self, now: u64, t: &NdTimers) -> bool {
        let stale = self.state == NdState::Stale
            || (self.state == NdState::Reachable && now >= self.deadline);
        stale && now.saturating_sub(self.last_used) >= t.stale_lifetime_ns
    }
}

/// The answer to a Neighbor Solicitation for one of our addresses
/// (§7.2.4): to its source, solicited and override, or to all nodes
/// (ff02::1), unsolicited, when the source is unspecified (DAD).
/// `src_mac` is the NS's source link-layer option (or the frame's source).
pub fn answer_solicit(target: Ipv6Addr, src: Ipv6Addr, src_mac: [u8; 6], router: bool) -> NdAction {
    let router_flag = if router { NA_FLAG_ROUTER } else { 0 };
    if src.is_unspecified() {
        let all_nodes = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
        return NdAction::Advertise {
            dst: all_nodes,
            dst_mac: multicast_mac(all_nodes),
            target,
            flags: router_flag | NA_FLAG_OVERRIDE,
        };
    }
    NdAction::Advertise {
        dst: src,
        dst_mac: src_mac,
        target,
        flags: router_flag | NA_FLAG_SOLICITED | NA_FLAG_OVERRIDE,
    }
}

/// An unsolicited NA announcing `target` (ours) to all nodes, e.g. at start
/// or after our MAC changed (§7.2.6): override set, solicited clear.
pub fn unsolicited_advert(target: Ipv6Addr, router: bool) -> NdAction {
    let all_nodes = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    NdAction::Advertise {
        dst: all_nodes,
        dst_mac: multicast_mac(all_nodes),
        target,
        flags: NA_FLAG_OVERRIDE | if router { NA_FLAG_ROUTER } else { 0 },
    }
}

mod cache;
pub use cache::{NdCache, NdEvent, Resolve6};

#[cfg(test)]
mod tests;
