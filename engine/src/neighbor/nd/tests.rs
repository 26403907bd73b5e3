//! Every RFC 4861 §7.3 transition of [`Neighbor`] on a fake clock, the
//! answers to solicitations, and the cache around it.

use super::*;
use crate::wire::icmpv6::{NA_FLAG_OVERRIDE, NA_FLAG_ROUTER, NA_FLAG_SOLICITED};

const SEC: u64 = 1_000_000_000;
const MAC1: [u8; 6] = [2, 0, 0, 0, 0, 1];
const MAC2: [u8; 6] = [2, 0, 0, 0, 0, 2];
/// `rand` giving exactly the base reachable time (factor 1.0).
const MID: u32 = 1 << 31;

fn target() -> Ipv6Addr {
    "2001:db8::b".parse().unwrap()
}

fn t() -> NdTimers {
    NdTimers::default()
}

fn na(solicited: bool, override_flag: bool, mac: Option<[u8; 6]>) -> Advert {
    Advert {
        router: false,
        solicited,
        override_flag,
        target_ll: mac,
    }
}

/// An entry made REACHABLE at `now` = 10 s with MAC1 (reachable 30 s).
fn reachable() -> Neighbor {
    let (mut n, _) = Neighbor::resolve_new(target(), 10 * SEC, &t());
    assert_eq!(
        n.on_advert(na(true, true, Some(MAC1)), 10 * SEC, MID, &t()),
        Some(NdAction::Release { mac: MAC1 })
    );
    n
}

#[test]
fn solicited_node_helpers_are_reexported() {
    assert_eq!(
        solicited_node(target()),
        "ff02::1:ff00:b".parse::<Ipv6Addr>().unwrap()
    );
    assert_eq!(
        multicast_mac(solicited_node(target())),
        [0x33, 0x33, 0xff, 0, 0, 0x0b]
    );
}

#[test]
fn reachable_time_random_factor() {
    let t = t();
    assert_eq!(t.reachable_time(0), 15 * SEC);
    assert_eq!(t.reachable_time(MID), 30 * SEC);
    let top = t.reachable_time(u32::MAX);
    assert!(top < 45 * SEC && top > 45 * SEC - SEC / 1000, "{top}");
}

#[test]
fn incomplete_retransmits_multicast_then_fails() {
    let t = t();
    let (mut n, first) = Neighbor::resolve_new(target(), 0, &t);
    assert_eq!(first, NdAction::SolicitMulticast { target: target() });
    assert_eq!(n.state(), NdState::Incomplete);
    assert_eq!(n.mac(), None);
    assert_eq!(n.use_for_send(SEC / 2, &t), None, "held while incomplete");
    assert_eq!(n.on_timer(SEC - 1, &t), None, "before the retransmit timer");
    for k in 1..t.max_multicast_solicit as u64 {
        assert_eq!(
            n.on_timer(k * SEC, &t),
            Some(NdAction::SolicitMulticast { target: target() }),
            "retransmission {k}"
        );
        assert_eq!(n.deadline(), Some((k + 1) * SEC));
    }
    assert_eq!(n.on_timer(3 * SEC, &t), Some(NdAction::Fail));
}

#[test]
fn incomplete_to_reachable_on_solicited_advert() {
    let t = t();
    let (mut n, _) = Neighbor::resolve_new(target(), 0, &t);
    // An NA without the target's address is useless here.
    assert_eq!(n.on_advert(na(true, true, None), SEC / 2, MID, &t), None);
    assert_eq!(n.state(), NdState::Incomplete);
    let mut router = na(true, false, Some(MAC1));
    router.router = true;
    assert_eq!(
        n.on_advert(router, SEC / 2, MID, &t),
        Some(NdAction::Release { mac: MAC1 })
    );
    assert_eq!(n.state(), NdState::Reachable);
    assert!(n.is_router());
    assert_eq!(n.deadline(), Some(SEC / 2 + 30 * SEC));
    assert_eq!(n.use_for_send(SEC, &t), Some(MAC1));
}

#[test]
fn incomplete_to_stale_on_unsolicited_advert() {
    let t = t();
    let (mut n, _) = Neighbor::resolve_new(target(), 0, &t);
    assert_eq!(
        n.on_advert(na(false, true, Some(MAC1)), 1, MID, &t),
        Some(NdAction::Release { mac: MAC1 })
    );
    assert_eq!(n.state(), NdState::Stale);
    assert_eq!(n.deadline(), None);
}

#[test]
fn incomplete_to_stale_on_link_layer_address() {
    let (mut n, _) = Neighbor::resolve_new(target(), 0, &t());
    assert_eq!(
        n.on_link_layer_address(MAC2),
        Some(NdAction::Release { mac: MAC2 })
    );
    assert_eq!((n.state(), n.mac()), (NdState::Stale, Some(MAC2)));
}

#[test]
fn reachable_becomes_stale_when_its_time_runs_out() {
    let t = t();
    let mut n = reachable();
    assert_eq!(n.on_timer(40 * SEC - 1, &t), None);
    assert_eq!(n.state(), NdState::Reachable);
    assert_eq!(n.on_timer(40 * SEC, &t), None);
    assert_eq!(n.state(), NdState::Stale);
    // Also lazily: a send past the reachable time sees STALE and delays.
    let mut n = reachable();
    assert_eq!(n.use_for_send(41 * SEC, &t), Some(MAC1));
    assert_eq!(n.state(), NdState::Delay);
}

#[test]
fn stale_delay_probe_then_fail() {
    let t = t();
    let mut n = reachable();
    n.on_timer(40 * SEC, &t);
    assert_eq!(n.state(), NdState::Stale);
    assert_eq!(n.on_timer(1000 * SEC, &t), None, "STALE has no timer");
    // Traffic: DELAY for 5 s, still using the MAC.
    assert_eq!(n.use_for_send(50 * SEC, &t), Some(MAC1));
    assert_eq!(n.state(), NdState::Delay);
    assert_eq!(n.deadline(), Some(55 * SEC));
    assert_eq!(n.on_timer(55 * SEC - 1, &t), None);
    // No confirmation: PROBE with unicast NSs.
    let probe = Some(NdAction::SolicitUnicast {
        target: target(),
        mac: MAC1,
    });
    assert_eq!(n.on_timer(55 * SEC, &t), probe);
    assert_eq!(n.state(), NdState::Probe);
    assert_eq!(n.use_for_send(55 * SEC, &t), Some(MAC1), "still used");
    assert_eq!(n.on_timer(56 * SEC, &t), probe);
    assert_eq!(n.on_timer(57 * SEC, &t), probe);
    assert_eq!(n.on_timer(58 * SEC, &t), Some(NdAction::Fail));
}

#[test]
fn delay_and_probe_confirmed_by_solicited_advert() {
    let t = t();
    let mut n = reachable();
    n.on_timer(40 * SEC, &t);
    n.use_for_send(50 * SEC, &t);
    assert_eq!(
        n.on_advert(na(true, false, Some(MAC1)), 52 * SEC, 0, &t),
        None
    );
    assert_eq!(n.state(), NdState::Reachable);
    assert_eq!(n.deadline(), Some(52 * SEC + 15 * SEC));

    let mut n = reachable();
    n.on_timer(40 * SEC, &t);
    n.use_for_send(50 * SEC, &t);
    n.on_timer(55 * SEC, &t);
    assert_eq!(n.state(), NdState::Probe);
    // No link-layer option in a solicited NA: confirms what we have.
    assert_eq!(n.on_advert(na(true, false, None), 56 * SEC, MID, &t), None);
    assert_eq!((n.state(), n.mac()), (NdState::Reachable, Some(MAC1)));
    assert_eq!(n.on_timer(57 * SEC, &t), None, "no more probes");
}

#[test]
fn confirmation_by_upper_layer() {
    let t = t();
    let mut n = reachable();
    n.on_timer(40 * SEC, &t);
    n.use_for_send(50 * SEC, &t);
    n.confirm(51 * SEC, MID, &t);
    assert_eq!(n.state(), NdState::Reachable);
    assert_eq!(n.deadline(), Some(81 * SEC));
    let (mut inc, _) = Neighbor::resolve_new(target(), 0, &t);
    inc.confirm(1, MID, &t);
    assert_eq!(inc.state(), NdState::Incomplete, "nothing to confirm");
}

#[test]
fn advert_without_override_and_a_different_address() {
    let t = t();
    let mut n = reachable();
    // Solicited or not, no override: keep the MAC, stop trusting it.
    assert_eq!(
        n.on_advert(na(true, false, Some(MAC2)), 11 * SEC, MID, &t),
        None
    );
    assert_eq!((n.state(), n.mac()), (NdState::Stale, Some(MAC1)));
    // In STALE it changes nothing.
    assert_eq!(
        n.on_advert(na(false, false, Some(MAC2)), 12 * SEC, MID, &t),
        None
    );
    assert_eq!((n.state(), n.mac()), (NdState::Stale, Some(MAC1)));
}

#[test]
fn unsolicited_advert_with_override_updates_the_address() {
    let t = t();
    let mut n = reachable();
    let mut adv = na(false, true, Some(MAC2));
    adv.router = true;
    assert_eq!(n.on_advert(adv, 11 * SEC, MID, &t), None);
    assert_eq!((n.state(), n.mac()), (NdState::Stale, Some(MAC2)));
    assert!(n.is_router());
    // Same address, unsolicited: state unchanged (still STALE), router
    // flag follows the latest advert.
    assert_eq!(
        n.on_advert(na(false, true, Some(MAC2)), 12 * SEC, MID, &t),
        None
    );
    assert_eq!(n.state(), NdState::Stale);
    assert!(!n.is_router());
    // And a REACHABLE entry hearing its own address unsolicited stays so.
    let mut n = reachable();
    n.on_advert(na(false, true, Some(MAC1)), 11 * SEC, MID, &t);
    assert_eq!(n.state(), NdState::Reachable);
}

#[test]
fn link_layer_address_from_a_solicitation() {
    let mut n = reachable();
    assert_eq!(n.on_link_layer_address(MAC1), None);
    assert_eq!(n.state(), NdState::Reachable, "same address: no change");
    assert_eq!(n.on_link_layer_address(MAC2), None);
    assert_eq!((n.state(), n.mac()), (NdState::Stale, Some(MAC2)));
}

#[test]
fn aging_of_unused_stale_entries() {
    let t = t();
    let n = Neighbor::learned(target(), MAC1, 0);
    assert_eq!(n.state(), NdState::Stale);
    assert!(!n.expired(t.stale_lifetime_ns - 1, &t));
    assert!(n.expired(t.stale_lifetime_ns, &t));
    // A reachable entry past its time ages like a stale one.
    let r = reachable();
    assert!(!r.expired(10 * SEC + t.stale_lifetime_ns - 1, &t));
    assert!(r.expired(10 * SEC + t.stale_lifetime_ns, &t));
    // Entries in DELAY or PROBE never age out (their timers decide).
    let mut d = reachable();
    d.use_for_send(41 * SEC, &t);
    assert!(!d.expired(41 * SEC + 10 * t.stale_lifetime_ns, &t));
}

#[test]
fn answers_to_solicitations() {
    let me: Ipv6Addr = "2001:db8::1".parse().unwrap();
    let peer: Ipv6Addr = "2001:db8::a".parse().unwrap();
    assert_eq!(
        answer_solicit(me, peer, MAC1, true),
        NdAction::Advertise {
            dst: peer,
            dst_mac: MAC1,
            target: me,
            flags: NA_FLAG_ROUTER | NA_FLAG_SOLICITED | NA_FLAG_OVERRIDE,
        }
    );
    let all: Ipv6Addr = "ff02::1".parse().unwrap();
    assert_eq!(
        answer_solicit(me, Ipv6Addr::UNSPECIFIED, MAC1, false),
        NdAction::Advertise {
            dst: all,
            dst_mac: [0x33, 0x33, 0, 0, 0, 1],
            target: me,
            flags: NA_FLAG_OVERRIDE,
        }
    );
    assert_eq!(
        unsolicited_advert(me, true),
        NdAction::Advertise {
            dst: all,
            dst_mac: [0x33, 0x33, 0, 0, 0, 1],
            target: me,
            flags: NA_FLAG_OVERRIDE | NA_FLAG_ROUTER,
        }
    );
}

#[test]
fn cache_resolves_holds_releases_and_fails() {
    let t = t();
    let mut c = NdCache::new(16, t);
    let Resolve6::Wait {
        slot,
        solicit: true,
    } = c.resolve(1, target(), 0)
    else {
        panic!("a new entry waits and solicits")
    };
    assert_eq!(
        c.resolve(1, target(), 1),
        Resolve6::Wait {
            slot,
            solicit: false
        }
    );
    // Another interface is another neighbor.
    assert!(matches!(
        c.resolve(2, target(), 1),
        Resolve6::Wait { solicit: true, .. }
    ));
    assert_eq!(c.len(), 2);
    let ev = c
        .on_advert(1, target(), na(true, true, Some(MAC1)), 2, MID)
        .unwrap();
    assert_eq!(
        ev,
        NdEvent {
            slot,
            iface: 1,
            target: target(),
            action: NdAction::Release { mac: MAC1 }
        }
    );
    assert_eq!(c.resolve(1, target(), 3), Resolve6::Mac(MAC1));
    // An NA for an unknown target creates nothing.
    let other: Ipv6Addr = "2001:db8::99".parse().unwrap();
    assert_eq!(
        c.on_advert(1, other, na(true, true, Some(MAC2)), 4, MID),
        None
    );
    assert!(c.get(1, other).is_none());
    // Interface 2 (asked at t=1) never answers: retransmissions, then the
    // entry fails.
    let mut events = Vec::new();
    for s in 1..=3 {
        c.poll(s * SEC + 1, 64, |e| events.push(e));
    }
    let on2: Vec<_> = events
        .iter()
        .filter(|e| e.iface == 2)
        .map(|e| e.action)
        .collect();
    assert_eq!(
        on2,
        vec![
            NdAction::SolicitMulticast { target: target() },
            NdAction::SolicitMulticast { target: target() },
            NdAction::Fail
        ]
    );
    assert!(c.get(2, target()).is_none());
    assert_eq!(c.len(), 1);
}

#[test]
fn cache_learns_ages_and_fills_up() {
    let t = t();
    let mut c = NdCache::new(16, t);
    assert_eq!(c.on_link_layer_address(0, target(), MAC1, 0), None);
    assert_eq!(c.get(0, target()).unwrap().state(), NdState::Stale);
    c.poll(t.stale_lifetime_ns - 1, 16, |_| panic!("no timer runs"));
    assert_eq!(c.len(), 1);
    c.poll(t.stale_lifetime_ns, 16, |_| {});
    assert!(c.is_empty(), "aged out");
    // Three quarters of 16 slots, then full.
    for i in 0..12u16 {
        let a = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i);
        assert!(matches!(c.resolve(0, a, 0), Resolve6::Wait { .. }));
    }
    assert_eq!(
        c.resolve(0, Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 99), 0),
        Resolve6::TableFull
    );
}
