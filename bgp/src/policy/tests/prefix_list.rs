//! Prefix-list semantics on hand-picked examples.

use super::pfx;
use crate::policy::prefix_list::{ListAction, PrefixList, PrefixListEntry};

fn entry(action: ListAction, prefix: &str, ge: Option<u8>, le: Option<u8>) -> PrefixListEntry {
    PrefixListEntry {
        action,
        prefix: pfx(prefix),
        ge,
        le,
    }
}

#[test]
fn without_ge_le_only_the_exact_prefix_matches() {
    let e = entry(ListAction::Permit, "10.1.0.0/16", None, None);
    assert!(e.matches(&pfx("10.1.0.0/16")));
    assert!(!e.matches(&pfx("10.1.2.0/24")));
    assert!(!e.matches(&pfx("10.0.0.0/8")));
    assert!(!e.matches(&pfx("10.2.0.0/16")));
}

#[test]
fn ge_alone_reaches_to_host_routes() {
    let e = entry(ListAction::Permit, "10.0.0.0/8", Some(24), None);
    assert_eq!(e.length_range(), (24, 32));
    assert!(e.matches(&pfx("10.9.9.0/24")));
    assert!(e.matches(&pfx("10.9.9.9/32")));
    assert!(!e.matches(&pfx("10.9.0.0/16")));
    assert!(!e.matches(&pfx("10.0.0.0/8")));
    assert!(!e.matches(&pfx("11.9.9.0/24")));
}

#[test]
fn le_alone_starts_at_the_entry_length() {
    let e = entry(ListAction::Permit, "10.0.0.0/8", None, Some(16));
    assert_eq!(e.length_range(), (8, 16));
    assert!(e.matches(&pfx("10.0.0.0/8")));
    assert!(e.matches(&pfx("10.200.0.0/16")));
    assert!(!e.matches(&pfx("10.200.1.0/24")));
}

#[test]
fn ge_and_le_bound_both_sides() {
    let e = entry(ListAction::Permit, "2001:db8::/32", Some(40), Some(48));
    assert!(e.matches(&pfx("2001:db8:ff00::/40")));
    assert!(e.matches(&pfx("2001:db8:1::/48")));
    assert!(!e.matches(&pfx("2001:db8::/32")));
    assert!(!e.matches(&pfx("2001:db8:1::/56")));
    assert!(!e.matches(&pfx("2001:db9::/48")));
}

#[test]
fn default_route_entries_and_families() {
    let any4 = entry(ListAction::Permit, "0.0.0.0/0", None, Some(32));
    assert!(any4.matches(&pfx("0.0.0.0/0")));
    assert!(any4.matches(&pfx("203.0.113.7/32")));
    assert!(!any4.matches(&pfx("::/0")), "a v4 entry never matches v6");
    let only_default = entry(ListAction::Permit, "::/0", None, None);
    assert!(only_default.matches(&pfx("::/0")));
    assert!(!only_default.matches(&pfx("2001:db8::/32")));
}

#[test]
fn first_match_wins_and_no_match_is_denied() {
    let list = PrefixList {
        entries: vec![
            entry(ListAction::Deny, "10.1.0.0/16", None, Some(32)),
            entry(ListAction::Permit, "10.0.0.0/8", None, Some(24)),
        ],
    };
    assert_eq!(
        list.lookup(&pfx("10.1.2.0/24")),
        Some((0, ListAction::Deny))
    );
    assert!(!list.permits(&pfx("10.1.2.0/24")));
    assert_eq!(
        list.lookup(&pfx("10.2.0.0/16")),
        Some((1, ListAction::Permit))
    );
    assert!(list.permits(&pfx("10.2.0.0/16")));
    assert_eq!(list.lookup(&pfx("10.2.3.4/32")), None);
    assert!(!list.permits(&pfx("10.2.3.4/32")), "implicit deny");
    assert!(!PrefixList::default().permits(&pfx("10.0.0.0/8")));
}
