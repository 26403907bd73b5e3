//! Every modification, applied to a route in place.

use super::{attrs_with_path, ebgp, path, pfx, seq, set};
use crate::policy::action::{MedChange, Modify, NextHopChange};
use crate::policy::community::CommunityPattern;
use crate::types::{AsSegment, PathAttributes};
use std::net::IpAddr;

fn run(m: &Modify, attrs: &mut PathAttributes, prefix: &str) -> bool {
    m.apply(&pfx(prefix), attrs, &ebgp())
}

#[test]
fn local_pref_is_set() {
    let mut a = attrs_with_path(path(&[seq(&[65001])]));
    assert!(!run(&Modify::SetLocalPref(250), &mut a, "10.0.0.0/8"));
    assert_eq!(a.local_pref, Some(250));
    run(&Modify::SetLocalPref(50), &mut a, "10.0.0.0/8");
    assert_eq!(a.local_pref, Some(50));
}

#[test]
fn med_set_add_subtract_saturate() {
    let mut a = attrs_with_path(path(&[]));
    run(&Modify::Med(MedChange::Add(10)), &mut a, "10.0.0.0/8");
    assert_eq!(a.med, Some(10), "a missing MED counts as 0");
    run(&Modify::Med(MedChange::Sub(3)), &mut a, "10.0.0.0/8");
    assert_eq!(a.med, Some(7));
    run(&Modify::Med(MedChange::Sub(100)), &mut a, "10.0.0.0/8");
    assert_eq!(a.med, Some(0));
    run(
        &Modify::Med(MedChange::Set(u32::MAX - 1)),
        &mut a,
        "10.0.0.0/8",
    );
    run(&Modify::Med(MedChange::Add(5)), &mut a, "10.0.0.0/8");
    assert_eq!(a.med, Some(u32::MAX));
}

#[test]
fn prepend_own_or_given_as() {
    let mut a = attrs_with_path(path(&[seq(&[65001, 65002])]));
    let own = Modify::Prepend {
        asn: None,
        count: 2,
    };
    assert!(run(&own, &mut a, "10.0.0.0/8"), "path changed");
    assert_eq!(a.as_path, path(&[seq(&[65000, 65000, 65001, 65002])]));
    let other = Modify::Prepend {
        asn: Some(64999),
        count: 1,
    };
    run(&other, &mut a, "10.0.0.0/8");
    assert_eq!(a.as_path.first_as(), Some(64999));
    assert_eq!(a.as_path.path_len(), 5);
}

#[test]
fn prepend_opens_segments_where_needed() {
    // Before a set: a new sequence in front.
    let mut a = attrs_with_path(path(&[set(&[1, 2])]));
    run(
        &Modify::Prepend {
            asn: None,
            count: 3,
        },
        &mut a,
        "10.0.0.0/8",
    );
    assert_eq!(
        a.as_path,
        path(&[seq(&[65000, 65000, 65000]), set(&[1, 2])])
    );
    // Empty path.
    let mut a = attrs_with_path(path(&[]));
    run(
        &Modify::Prepend {
            asn: None,
            count: 1,
        },
        &mut a,
        "10.0.0.0/8",
    );
    assert_eq!(a.as_path, path(&[seq(&[65000])]));
    // A full 255-AS sequence: the overflow opens a new leading segment.
    let full: Vec<u32> = (1..=254).collect();
    let mut a = attrs_with_path(path(&[seq(&full)]));
    run(
        &Modify::Prepend {
            asn: None,
            count: 3,
        },
        &mut a,
        "10.0.0.0/8",
    );
    let lens: Vec<usize> = a
        .as_path
        .segments
        .iter()
        .map(|s| match s {
            AsSegment::Sequence(v) | AsSegment::Set(v) => v.len(),
        })
        .collect();
    assert_eq!(lens, [2, 255]);
    assert_eq!(a.as_path.path_len(), 257);
    assert_eq!(a.as_path.first_as(), Some(65000));
}

#[test]
fn next_hop_self_follows_the_route_family() {
    let ctx = ebgp();
    let mut a = attrs_with_path(path(&[]));
    let me = Modify::NextHop(NextHopChange::SelfAddress);
    run(&me, &mut a, "10.0.0.0/8");
    assert_eq!(a.next_hop, ctx.local_v4.map(IpAddr::V4));
    run(&me, &mut a, "2001:db8::/32");
    assert_eq!(a.next_hop, ctx.local_v6.map(IpAddr::V6));
    // No local address of that family: left alone.
    let no_v6 = crate::policy::RouteContext {
        local_v6: None,
        ..ctx
    };
    let before = a.next_hop;
    me.apply(&pfx("2001:db8::/32"), &mut a, &no_v6);
    assert_eq!(a.next_hop, before);
    let fixed: IpAddr = "203.0.113.9".parse().expect("address");
    run(
        &Modify::NextHop(NextHopChange::Address(fixed)),
        &mut a,
        "10.0.0.0/8",
    );
    assert_eq!(a.next_hop, Some(fixed));
}

#[test]
fn community_changes() {
    let mut a = attrs_with_path(path(&[]));
    a.communities = vec![1 << 16 | 1];
    run(
        &Modify::AddCommunities(vec![2 << 16 | 2]),
        &mut a,
        "10.0.0.0/8",
    );
    assert_eq!(a.communities, [1 << 16 | 1, 2 << 16 | 2]);
    run(
        &Modify::DeleteCommunities(vec![CommunityPattern::AnyValue(1)]),
        &mut a,
        "10.0.0.0/8",
    );
    assert_eq!(a.communities, [2 << 16 | 2]);
    run(
        &Modify::SetCommunities(vec![3 << 16 | 3]),
        &mut a,
        "10.0.0.0/8",
    );
    assert_eq!(a.communities, [3 << 16 | 3]);
}
