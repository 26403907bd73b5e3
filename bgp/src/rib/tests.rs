//! RIB tests: every tie-break on a pair of routes that differ only there,
//! multipath sets, graceful-restart stale routes, unresolvable next hops,
//! and a property test that selection ignores the order routes arrive in.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::fsm::AfiSet;
use crate::types::{Afi, AsPath, AsSegment, Origin, PathAttributes, Prefix};

const LOCAL_AS: u32 = 65000;

fn cfg() -> RibConfig {
    RibConfig {
        local_id: Ipv4Addr::new(10, 255, 0, 1),
        select: SelectConfig {
            local_as: LOCAL_AS,
            ..SelectConfig::default()
        },
    }
}

fn pfx(s: &str) -> Prefix {
    let (a, l) = s.split_once('/').unwrap();
    Prefix::new(a.parse().unwrap(), l.parse().unwrap()).unwrap()
}

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn peer(address: &str, id: &str, asn: u32) -> PeerInfo {
    PeerInfo {
        address: address.parse().unwrap(),
        bgp_id: v4(id),
        asn,
    }
}

fn path(asns: &[u32]) -> AsPath {
    AsPath {
        segments: vec![AsSegment::Sequence(asns.to_vec())],
    }
}

/// A route from AS 65001 via 192.0.2.1, adjusted by `f`.
fn attrs(f: impl FnOnce(&mut PathAttributes)) -> Arc<PathAttributes> {
    let mut a = PathAttributes {
        as_path: path(&[65001, 65100]),
        next_hop: Some("192.0.2.1".parse().unwrap()),
        ..PathAttributes::default()
    };
    f(&mut a);
    Arc::new(a)
}

fn reachable(_: IpAddr) -> Option<u32> {
    Some(0)
}

/// Which of two routes for one prefix wins; the same whichever arrives
/// first (checked).
fn duel(
    config: RibConfig,
    a: (PeerInfo, Arc<PathAttributes>),
    b: (PeerInfo, Arc<PathAttributes>),
    resolver: &dyn NextHopResolver,
) -> char {
    let p = pfx("203.0.113.0/24");
    let mut winners = Vec::new();
    for order in [[0, 1], [1, 0]] {
        let mut rib = Rib::new(config);
        let routes = [&a, &b];
        let ids: Vec<PeerId> = routes.iter().map(|r| rib.add_peer(r.0)).collect();
        let mut out = Vec::new();
        for i in order {
            rib.announce(ids[i], p, routes[i].1.clone(), resolver, &mut out);
        }
        let best = rib.selected(&p).unwrap().best().peer;
        winners.push(if best == ids[0] { 'a' } else { 'b' });
    }
    assert_eq!(winners[0], winners[1], "insertion order changed the winner");
    winners[0]
}

fn ebgp_a() -> PeerInfo {
    peer("192.0.2.1", "1.1.1.1", 65001)
}

fn ebgp_b() -> PeerInfo {
    peer("192.0.2.2", "2.2.2.2", 65001)
}

#[test]
fn highest_local_pref_wins() {
    let hi = attrs(|a| a.local_pref = Some(200));
    let lo = attrs(|a| a.local_pref = Some(150));
    // b has the lower id and address: only LOCAL_PREF can make a win.
    assert_eq!(
        duel(
            cfg(),
            (ebgp_b(), hi.clone()),
            (ebgp_a(), lo.clone()),
            &reachable
        ),
        'a'
    );
    assert_eq!(duel(cfg(), (ebgp_b(), lo), (ebgp_a(), hi), &reachable), 'b');
}

#[test]
fn missing_local_pref_counts_as_100() {
    let none = attrs(|_| {});
    let l99 = attrs(|a| a.local_pref = Some(99));
    let l101 = attrs(|a| a.local_pref = Some(101));
    assert_eq!(
        duel(cfg(), (ebgp_b(), none.clone()), (ebgp_a(), l99), &reachable),
        'a'
    );
    assert_eq!(
        duel(cfg(), (ebgp_a(), none), (ebgp_b(), l101), &reachable),
        'b'
    );
}

#[test]
fn locally_originated_wins_over_learned() {
    let p = pfx("203.0.113.0/24");
    let mut rib = Rib::new(cfg());
    let a = rib.add_peer(ebgp_a());
    let mut out = Vec::new();
    // Our route is worse on every later step (long path, INCOMPLETE).
    let local = Arc::new(PathAttributes {
        origin: Origin::Incomplete,
        as_path: path(&[LOCAL_AS, LOCAL_AS, LOCAL_AS, LOCAL_AS]),
        ..PathAttributes::default()
    });
    rib.announce(a, p, attrs(|_| {}), &reachable, &mut out);
    rib.originate(p, local.clone(), &reachable, &mut out);
    assert_eq!(rib.selected(&p).unwrap().best().peer, PeerId::LOCAL);
    assert_eq!(rib.selected(&p).unwrap().paths.len(), 1);
    // LOCAL_PREF comes first.
    let mut out = Vec::new();
    rib.originate(
        p,
        Arc::new(PathAttributes {
            local_pref: Some(90),
            ..(*local).clone()
        }),
        &reachable,
        &mut out,
    );
    assert_eq!(rib.selected(&p).unwrap().best().peer, a);
    rib.stop_originating(p, &reachable, &mut out);
    assert!(rib.adj_rib_in(PeerId::LOCAL).unwrap().is_empty());
}

#[test]
fn shortest_as_path_wins_and_a_set_counts_once() {
    let short = attrs(|a| a.as_path = path(&[65001]));
    let long = attrs(|a| a.as_path = path(&[65001, 65100]));
    assert_eq!(
        duel(
            cfg(),
            (ebgp_b(), short.clone()),
            (ebgp_a(), long.clone()),
            &reachable
        ),
        'a'
    );
    assert_eq!(
        duel(cfg(), (ebgp_b(), long), (ebgp_a(), short), &reachable),
        'b'
    );
    let with_set = attrs(|a| {
        a.as_path = AsPath {
            segments: vec![
                AsSegment::Sequence(vec![65001]),
                AsSegment::Set(vec![1, 2, 3, 4]),
            ],
        }
    });
    let three = attrs(|a| a.as_path = path(&[65001, 1, 2]));
    assert_eq!(
        duel(cfg(), (ebgp_b(), with_set), (ebgp_a(), three), &reachable),
        'a'
    );
}

#[test]
fn lowest_origin_wins() {
    let igp = attrs(|a| a.origin = Origin::Igp);
    let egp = attrs(|a| a.origin = Origin::Egp);
    let inc = attrs(|a| a.origin = Origin::Incomplete);
    assert_eq!(
        duel(cfg(), (ebgp_b(), igp), (ebgp_a(), egp.clone()), &reachable),
        'a'
    );
    assert_eq!(
        duel(cfg(), (ebgp_b(), egp), (ebgp_a(), inc), &reachable),
        'a'
    );
}

#[test]
fn lowest_med_wins_within_a_neighbour_as_and_missing_is_zero() {
    let m5 = attrs(|a| a.med = Some(5));
    let m10 = attrs(|a| a.med = Some(10));
    let none = attrs(|a| a.med = None);
    assert_eq!(
        duel(cfg(), (ebgp_b(), m5.clone()), (ebgp_a(), m10), &reachable),
        'a'
    );
    assert_eq!(
        duel(cfg(), (ebgp_b(), none), (ebgp_a(), m5), &reachable),
        'a'
    );
}

#[test]
fn med_is_ignored_across_neighbour_ases_unless_always_compared() {
    let from_65001 = (ebgp_a(), attrs(|a| a.med = Some(50)));
    let from_65002 = (
        peer("192.0.2.2", "2.2.2.2", 65002),
        attrs(|a| {
            a.as_path = path(&[65002, 65100]);
            a.med = Some(0);
        }),
    );
    // Different neighbour ASes: MED skipped, the lower BGP id decides.
    assert_eq!(
        duel(cfg(), from_65001.clone(), from_65002.clone(), &reachable),
        'a'
    );
    let mut always = cfg();
    always.select.always_compare_med = true;
    assert_eq!(duel(always, from_65001, from_65002, &reachable), 'b');
}

#[test]
fn ebgp_wins_over_ibgp() {
    let ibgp = peer("192.0.2.1", "1.1.1.1", LOCAL_AS);
    let ebgp = peer("192.0.2.2", "2.2.2.2", 65001);
    let r = attrs(|a| a.local_pref = Some(100));
    assert_eq!(
        duel(cfg(), (ibgp, r.clone()), (ebgp, r.clone()), &reachable),
        'b'
    );
    let ibgp2 = peer("192.0.2.2", "2.2.2.2", LOCAL_AS);
    let ebgp2 = peer("192.0.2.1", "1.1.1.1", 65001);
    assert_eq!(duel(cfg(), (ibgp2, r.clone()), (ebgp2, r), &reachable), 'b');
}

#[test]
fn lowest_igp_cost_wins() {
    let costs = |ip: IpAddr| match ip.to_string().as_str() {
        "10.0.0.1" => Some(10),
        "10.0.0.2" => Some(5),
        _ => None,
    };
    let via1 = attrs(|a| a.next_hop = Some("10.0.0.1".parse().unwrap()));
    let via2 = attrs(|a| a.next_hop = Some("10.0.0.2".parse().unwrap()));
    let a = peer("10.1.0.1", "1.1.1.1", LOCAL_AS);
    let b = peer("10.1.0.2", "2.2.2.2", LOCAL_AS);
    assert_eq!(
        duel(cfg(), (a, via1.clone()), (b, via2.clone()), &costs),
        'b'
    );
    assert_eq!(duel(cfg(), (a, via2), (b, via1), &costs), 'a');
}

#[test]
fn lowest_bgp_id_or_originator_id_wins() {
    // a: lower id, higher address.
    let a = peer("192.0.2.9", "1.1.1.1", 65001);
    let b = peer("192.0.2.2", "2.2.2.2", 65001);
    let r = attrs(|_| {});
    assert_eq!(duel(cfg(), (a, r.clone()), (b, r.clone()), &reachable), 'a');
    let a_hi = PeerInfo {
        bgp_id: v4("3.3.3.3"),
        ..a
    };
    assert_eq!(
        duel(cfg(), (a_hi, r.clone()), (b, r.clone()), &reachable),
        'b'
    );
    // ORIGINATOR_ID stands in for the peer's id.
    let reflected = attrs(|x| x.originator_id = Some(v4("0.0.0.9")));
    assert_eq!(duel(cfg(), (a, r), (b, reflected), &reachable), 'b');
}

#[test]
fn shortest_cluster_list_wins() {
    let one = attrs(|x| {
        x.originator_id = Some(v4("9.9.9.9"));
        x.cluster_list = vec![v4("10.0.0.1")];
    });
    let two = attrs(|x| {
        x.originator_id = Some(v4("9.9.9.9"));
        x.cluster_list = vec![v4("10.0.0.1"), v4("10.0.0.2")];
    });
    let a = peer("10.1.0.1", "1.1.1.1", LOCAL_AS);
    let b = peer("10.1.0.2", "2.2.2.2", LOCAL_AS);
    assert_eq!(
        duel(cfg(), (a, two.clone()), (b, one.clone()), &reachable),
        'b'
    );
    assert_eq!(duel(cfg(), (a, one), (b, two), &reachable), 'a');
}

#[test]
fn lowest_peer_address_wins_last() {
    let same_id = attrs(|x| x.originator_id = Some(v4("9.9.9.9")));
    let a = peer("10.1.0.7", "1.1.1.1", LOCAL_AS);
    let b = peer("10.1.0.3", "2.2.2.2", LOCAL_AS);
    assert_eq!(
        duel(
            cfg(),
            (a, same_id.clone()),
            (b, same_id.clone()),
            &reachable
        ),
        'b'
    );
    let b_hi = PeerInfo {
        address: "10.1.0.8".parse().unwrap(),
        ..b
    };
    assert_eq!(
        duel(cfg(), (a, same_id.clone()), (b_hi, same_id), &reachable),
        'a'
    );
}

#[test]
fn unresolvable_next_hop_is_not_eligible() {
    let p = pfx("198.51.100.0/24");
    let mut rib = Rib::new(cfg());
    let a = rib.add_peer(ebgp_a());
    let b = rib.add_peer(ebgp_b());
    let only_b = |ip: IpAddr| (ip == "192.0.2.2".parse::<IpAddr>().unwrap()).then_some(0);
    let mut out = Vec::new();
    // a's route is better (LOCAL_PREF) but its next hop does not resolve.
    rib.announce(a, p, attrs(|x| x.local_pref = Some(500)), &only_b, &mut out);
    assert!(out.is_empty());
    assert_eq!(rib.selected(&p), None);
    assert_eq!(rib.adj_rib_in(a).unwrap().len(), 1);
    rib.announce(
        b,
        p,
        attrs(|x| x.next_hop = Some("192.0.2.2".parse().unwrap())),
        &only_b,
        &mut out,
    );
    assert_eq!(rib.selected(&p).unwrap().best().peer, b);
    // The next hop becomes reachable: reselection picks a.
    out.clear();
    rib.reresolve(&reachable, &mut out);
    assert_eq!(rib.selected(&p).unwrap().best().peer, a);
    assert_eq!(out.len(), 1);
    // A route without any next hop is never eligible.
    rib.announce(a, p, attrs(|x| x.next_hop = None), &reachable, &mut out);
    assert_eq!(rib.selected(&p).unwrap().best().peer, b);
}

#[test]
fn changes_stream_out_only_when_the_selection_changes() {
    let p = pfx("198.51.100.0/24");
    let mut rib = Rib::new(cfg());
    let a = rib.add_peer(ebgp_a());
    let b = rib.add_peer(ebgp_b());
    let mut out = Vec::new();
    rib.announce(b, p, attrs(|_| {}), &reachable, &mut out);
    assert!(
        matches!(&out[..], [RibChange::Best { prefix, selected }] if *prefix == p && selected.best().peer == b)
    );
    out.clear();
    // Same attributes again (a new Arc): nothing changes.
    rib.announce(b, p, attrs(|_| {}), &reachable, &mut out);
    // A worse route: nothing changes.
    rib.announce(a, p, attrs(|x| x.med = Some(7)), &reachable, &mut out);
    assert!(out.is_empty());
    // The best is withdrawn: the other takes over, then none is left.
    rib.withdraw(b, p, &reachable, &mut out);
    assert!(matches!(&out[..], [RibChange::Best { selected, .. }] if selected.best().peer == a));
    out.clear();
    rib.withdraw(a, p, &reachable, &mut out);
    assert_eq!(out, vec![RibChange::Withdrawn { prefix: p }]);
    assert_eq!(rib.loc_rib_len(), 0);
    // Withdrawing what is not there is silent.
    out.clear();
    rib.withdraw(a, p, &reachable, &mut out);
    assert!(out.is_empty());
}

/// IGP costs for `multipath_rib`: peer 5's next hop is far.
fn mp_costs(ip: IpAddr) -> Option<u32> {
    Some(if ip.to_string() == "192.0.2.5" { 9 } else { 1 })
}

fn multipath_rib(max_paths: usize, relax: bool) -> (Rib, Vec<PeerId>, Prefix) {
    let mut config = cfg();
    config.select.max_paths = max_paths;
    config.select.multipath_relax = relax;
    let mut rib = Rib::new(config);
    let p = pfx("203.0.113.0/24");
    let mut out = Vec::new();
    let mut ids = Vec::new();
    // Peers 1-3: AS 65001 equal routes; 4: AS 65002 same length; 5: AS
    // 65001 but a costlier next hop; 6: AS 65001 with a longer path.
    let specs: [(u32, &[u32]); 6] = [
        (65001, &[65001, 65100]),
        (65001, &[65001, 65100]),
        (65001, &[65001, 65200]),
        (65002, &[65002, 65100]),
        (65001, &[65001, 65100]),
        (65001, &[65001, 65100, 65100]),
    ];
    // Insert in reverse id order to show the set is sorted, not arrival-ordered.
    for (i, (asn, asns)) in specs.iter().enumerate().rev() {
        let addr = format!("192.0.2.{}", i + 1);
        // Ids fall with the index, except the AS 65002 peer's (highest).
        let bgp_id = if *asn == 65002 { 20 } else { 10 - i };
        let id = rib.add_peer(peer(&addr, &format!("{bgp_id}.0.0.1"), *asn));
        let route = attrs(|x| {
            x.as_path = path(asns);
            x.next_hop = Some(addr.parse().unwrap());
        });
        rib.announce(id, p, route, &mp_costs, &mut out);
        ids.push((i, id));
    }
    ids.sort();
    (rib, ids.into_iter().map(|(_, id)| id).collect(), p)
}

fn set(rib: &Rib, p: &Prefix) -> Vec<PeerId> {
    rib.selected(p)
        .unwrap()
        .paths
        .iter()
        .map(|x| x.peer)
        .collect()
}

#[test]
fn multipath_set_holds_equal_routes_from_the_same_neighbour_as() {
    let (rib, ids, p) = multipath_rib(8, false);
    // Best = lowest BGP id among the equal ones (peer 3: id 8.0.0.1).
    assert_eq!(set(&rib, &p), vec![ids[2], ids[1], ids[0]]);
    // Relaxed: the other neighbour AS joins (its id sorts last).
    let (rib, ids, p) = multipath_rib(8, true);
    assert_eq!(set(&rib, &p), vec![ids[2], ids[1], ids[0], ids[3]]);
    let (rib, ids, p) = multipath_rib(2, true);
    assert_eq!(set(&rib, &p), vec![ids[2], ids[1]]);
    let (rib, ids, p) = multipath_rib(1, false);
    assert_eq!(set(&rib, &p), vec![ids[2]]);
    // Every member's IGP cost equals the best's.
    let (rib, _, p) = multipath_rib(8, true);
    assert!(rib
        .selected(&p)
        .unwrap()
        .paths
        .iter()
        .all(|x| x.igp_cost == 1));
}

#[test]
fn multipath_changes_are_reported_even_when_the_best_stays() {
    let (mut rib, ids, p) = multipath_rib(8, false);
    let mut out = Vec::new();
    rib.withdraw(ids[0], p, &mp_costs, &mut out);
    assert_eq!(out.len(), 1);
    match &out[0] {
        RibChange::Best { selected, .. } => {
            let peers: Vec<PeerId> = selected.paths.iter().map(|x| x.peer).collect();
            assert_eq!(peers, vec![ids[2], ids[1]]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn graceful_restart_keeps_routes_stale_and_sweeps_them() {
    let v4p = pfx("198.51.100.0/24");
    let v4q = pfx("198.51.101.0/24");
    let v6p = pfx("2001:db8::/32");
    let mut rib = Rib::new(cfg());
    let a = rib.add_peer(ebgp_a());
    let b = rib.add_peer(ebgp_b());
    let mut out = Vec::new();
    for p in [v4p, v4q, v6p] {
        rib.announce(a, p, attrs(|_| {}), &reachable, &mut out);
    }
    rib.announce(b, v4q, attrs(|x| x.med = Some(9)), &reachable, &mut out);
    out.clear();
    // a restarts with IPv4 preserved: IPv4 stays (stale), IPv6 goes.
    rib.peer_down(a, AfiSet::IPV4, &reachable, &mut out);
    assert_eq!(out, vec![RibChange::Withdrawn { prefix: v6p }]);
    assert_eq!(rib.adj_rib_in(a).unwrap().stale_count(), 2);
    assert_eq!(rib.selected(&v4p).unwrap().best().peer, a);
    assert_eq!(rib.selected(&v4q).unwrap().best().peer, a);
    // a comes back and re-announces v4p only: fresh again, no change.
    out.clear();
    rib.announce(a, v4p, attrs(|_| {}), &reachable, &mut out);
    assert!(out.is_empty());
    assert!(!rib.adj_rib_in(a).unwrap().get(&v4p).unwrap().stale);
    // End-of-RIB: v4q (still stale) is swept; b's route takes over.
    rib.sweep_stale(a, Afi::Ipv6, &reachable, &mut out);
    assert!(out.is_empty());
    rib.sweep_stale(a, Afi::Ipv4, &reachable, &mut out);
    assert!(
        matches!(&out[..], [RibChange::Best { prefix, selected }] if *prefix == v4q && selected.best().peer == b)
    );
    let adj = rib.adj_rib_in(a).unwrap();
    assert_eq!((adj.len(), adj.stale_count()), (1, 0));
    let listed: Vec<Prefix> = adj.iter().map(|(p, _)| *p).collect();
    assert_eq!(listed, vec![v4p]);
    assert_eq!(rib.adj_rib_in(b).unwrap().len(), 1);
    assert_eq!(rib.selected(&v4p).unwrap().best().peer, a);
}

#[test]
fn peer_down_without_graceful_restart_withdraws_everything() {
    let mut rib = Rib::new(cfg());
    let a = rib.add_peer(ebgp_a());
    let mut out = Vec::new();
    for i in 0..10u8 {
        let p = Prefix::new(IpAddr::V4(Ipv4Addr::new(10, i, 0, 0)), 16).unwrap();
        rib.announce(a, p, attrs(|_| {}), &reachable, &mut out);
    }
    assert_eq!(rib.loc_rib_len(), 10);
    out.clear();
    rib.remove_peer(a, &reachable, &mut out);
    assert_eq!(out.len(), 10);
    assert!(out.iter().all(|c| matches!(c, RibChange::Withdrawn { .. })));
    assert_eq!(rib.loc_rib_len(), 0);
    assert!(rib.adj_rib_in(a).is_none());
    // The freed handle is reused.
    assert_eq!(rib.add_peer(ebgp_b()), a);
}

#[test]
fn learning_the_peer_id_reselects() {
    let p = pfx("203.0.113.0/24");
    let mut rib = Rib::new(cfg());
    let a = rib.add_peer(ebgp_a());
    let b = rib.add_peer(ebgp_b());
    let mut out = Vec::new();
    rib.announce(a, p, attrs(|_| {}), &reachable, &mut out);
    rib.announce(b, p, attrs(|_| {}), &reachable, &mut out);
    assert_eq!(rib.selected(&p).unwrap().best().peer, a);
    out.clear();
    let info = PeerInfo {
        bgp_id: v4("9.9.9.9"),
        ..ebgp_a()
    };
    rib.set_peer_info(a, info, &reachable, &mut out);
    assert_eq!(rib.selected(&p).unwrap().best().peer, b);
    assert_eq!(out.len(), 1);
}

/// A route drawn from small domains so that many ties happen.
#[derive(Clone, Debug)]
struct Spec {
    local_pref: Option<u32>,
    path_len: usize,
    first_as: u32,
    origin: u8,
    med: Option<u32>,
    ibgp: bool,
    cost: Option<u32>,
    id: u8,
    originator: Option<u8>,
    clusters: usize,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        (
            // Mostly equal early steps so that the later ones get exercised.
            prop::option::weighted(0.2, prop::sample::select(vec![90u32, 100, 200])),
            prop::sample::select(vec![1usize, 1, 1, 2]),
            65001u32..65004,
            prop::sample::select(vec![0u8, 0, 0, 1, 2]),
            prop::option::of(0u32..3),
        ),
        (
            any::<bool>(),
            prop::option::weighted(0.9, 0u32..3),
            1u8..5,
            prop::option::weighted(0.2, 1u8..5),
            0usize..3,
        ),
    )
        .prop_map(
            |(
                (local_pref, path_len, first_as, origin, med),
                (ibgp, cost, id, originator, clusters),
            )| {
                Spec {
                    local_pref,
                    path_len,
                    first_as,
                    origin,
                    med,
                    ibgp,
                    cost,
                    id,
                    originator,
                    clusters,
                }
            },
        )
}

fn build(specs: &[Spec], order: &[usize], config: RibConfig) -> Option<Vec<(usize, u32)>> {
    let p = pfx("203.0.113.0/24");
    let mut rib = Rib::new(config);
    let ids: Vec<PeerId> = specs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            rib.add_peer(PeerInfo {
                address: IpAddr::V4(Ipv4Addr::new(192, 0, 2, i as u8 + 1)),
                bgp_id: Ipv4Addr::new(s.id, 0, 0, 1),
                asn: if s.ibgp { LOCAL_AS } else { s.first_as },
            })
        })
        .collect();
    let resolver = |ip: IpAddr| match ip {
        IpAddr::V4(a) => specs[a.octets()[3] as usize - 1].cost,
        IpAddr::V6(_) => None,
    };
    let mut out = Vec::new();
    for &i in order {
        let s = &specs[i];
        let mut asns = vec![s.first_as];
        asns.extend(std::iter::repeat_n(65100, s.path_len - 1));
        let route = Arc::new(PathAttributes {
            origin: [Origin::Igp, Origin::Egp, Origin::Incomplete][s.origin as usize],
            as_path: path(&asns),
            next_hop: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, i as u8 + 1))),
            med: s.med,
            local_pref: s.local_pref,
            originator_id: s.originator.map(|o| Ipv4Addr::new(o, 0, 0, 1)),
            cluster_list: vec![Ipv4Addr::new(10, 0, 0, 1); s.clusters],
            ..PathAttributes::default()
        });
        rib.announce(ids[i], p, route, &resolver, &mut out);
    }
    let sel = rib.selected(&p)?;
    Some(
        sel.paths
            .iter()
            .map(|x| (ids.iter().position(|id| *id == x.peer).unwrap(), x.igp_cost))
            .collect(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]
    #[test]
    fn selection_ignores_arrival_order(
        (specs, order) in prop::collection::vec(spec(), 1..9).prop_flat_map(|specs| {
            let n = specs.len();
            (Just(specs), Just((0..n).collect::<Vec<usize>>()).prop_shuffle())
        }),
        max_paths in 1usize..4,
        relax in any::<bool>(),
        always_med in any::<bool>(),
    ) {
        let mut config = cfg();
        config.select.max_paths = max_paths;
        config.select.multipath_relax = relax;
        config.select.always_compare_med = always_med;
        let natural: Vec<usize> = (0..specs.len()).collect();
        let a = build(&specs, &natural, config);
        let b = build(&specs, &order, config);
        prop_assert_eq!(&a, &b);
        // Something usable is always selected, and only usable routes.
        let usable = specs.iter().any(|s| s.cost.is_some());
        prop_assert_eq!(a.is_some(), usable);
        if let Some(set) = a {
            prop_assert!(set.len() <= max_paths);
            prop_assert!(set.iter().all(|(i, _)| specs[*i].cost.is_some()));
            // Nothing usable has a higher LOCAL_PREF than the best.
            let lp = |s: &Spec| s.local_pref.unwrap_or(100);
            let best = lp(&specs[set[0].0]);
            prop_assert!(specs.iter().filter(|s| s.cost.is_some()).all(|s| lp(s) <= best));
        }
    }
}

/// One step of a random history: peer, prefix, and the route (None =
/// withdraw; Some(med)), or a peer going down with IPv4 kept stale.
#[derive(Clone, Debug)]
enum Op {
    Route(usize, usize, Option<u32>),
    Down(usize),
    Sweep(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0usize..4, 0usize..4, prop::option::of(0u32..3)).prop_map(|(p, x, m)| Op::Route(p, x, m)),
        1 => (0usize..4).prop_map(Op::Down),
        1 => (0usize..4).prop_map(Op::Sweep),
    ]
}

proptest! {
    #[test]
    fn incremental_updates_match_a_fresh_table(ops in prop::collection::vec(op(), 0..60)) {
        let prefixes = [
            pfx("10.0.0.0/8"),
            pfx("10.1.0.0/16"),
            pfx("2001:db8::/32"),
            pfx("2001:db8:1::/48"),
        ];
        let mut config = cfg();
        config.select.max_paths = 2;
        let peers = |rib: &mut Rib| -> Vec<PeerId> {
            (0..4u8)
                .map(|i| rib.add_peer(PeerInfo {
                    address: IpAddr::V4(Ipv4Addr::new(192, 0, 2, i + 1)),
                    bgp_id: Ipv4Addr::new(i + 1, 0, 0, 1),
                    asn: 65001,
                }))
                .collect()
        };
        let route = |med: u32| attrs(|x| x.med = Some(med));
        let mut rib = Rib::new(config);
        let ids = peers(&mut rib);
        // The model: what each peer has, and whether it is stale.
        let mut model: Vec<Vec<Option<(u32, bool)>>> = vec![vec![None; 4]; 4];
        let mut out = Vec::new();
        for op in &ops {
            match *op {
                Op::Route(p, x, Some(m)) => {
                    rib.announce(ids[p], prefixes[x], route(m), &reachable, &mut out);
                    model[p][x] = Some((m, false));
                }
                Op::Route(p, x, None) => {
                    rib.withdraw(ids[p], prefixes[x], &reachable, &mut out);
                    model[p][x] = None;
                }
                Op::Down(p) => {
                    rib.peer_down(ids[p], AfiSet::IPV4, &reachable, &mut out);
                    for (x, r) in model[p].iter_mut().enumerate() {
                        match prefixes[x].afi() {
                            Afi::Ipv4 => { if let Some(r) = r { r.1 = true } }
                            Afi::Ipv6 => *r = None,
                        }
                    }
                }
                Op::Sweep(p) => {
                    rib.sweep_stale(ids[p], Afi::Ipv4, &reachable, &mut out);
                    for r in model[p].iter_mut() {
                        if r.is_some_and(|r| r.1) { *r = None }
                    }
                }
            }
        }
        // The last change reported per prefix is the current selection.
        let mut last = std::collections::HashMap::new();
        for c in &out {
            match c {
                RibChange::Best { prefix, selected } => last.insert(*prefix, Some(selected.clone())),
                RibChange::Withdrawn { prefix } => last.insert(*prefix, None),
            };
        }
        let mut fresh = Rib::new(config);
        let fresh_ids = peers(&mut fresh);
        let mut sink = Vec::new();
        for (p, routes) in model.iter().enumerate() {
            for (x, r) in routes.iter().enumerate() {
                if let Some((m, _)) = r {
                    fresh.announce(fresh_ids[p], prefixes[x], route(*m), &reachable, &mut sink);
                }
            }
            let adj = rib.adj_rib_in(ids[p]).unwrap();
            prop_assert_eq!(adj.len(), routes.iter().flatten().count());
            prop_assert_eq!(adj.stale_count(), routes.iter().flatten().filter(|r| r.1).count());
            prop_assert_eq!(adj.iter().count(), adj.len());
        }
        for x in prefixes {
            prop_assert_eq!(rib.selected(&x), fresh.selected(&x));
            prop_assert_eq!(last.get(&x).cloned().flatten(), rib.selected(&x));
        }
        prop_assert_eq!(rib.loc_rib_len(), fresh.loc_rib_len());
        prop_assert_eq!(rib.loc_rib().count(), rib.loc_rib_len());
    }
}
