//! Policy evaluation: term order, continue, defaults, re-rendered paths
//! after a prepend, and RFC 8212 without a policy.

use super::{attrs_with_path, ebgp, ibgp, path, pfx, seq};
use crate::policy::action::{MedChange, Modify};
use crate::policy::as_path::AsPathRegex;
use crate::policy::prefix_list::{ListAction, PrefixList, PrefixListEntry};
use crate::policy::{
    apply, evaluate, without_policy, DecidedBy, DefaultAction, Match, Policy, PolicyCounters, Term,
    Then, Verdict,
};

fn term(matches: Match, modify: Vec<Modify>, then: Then) -> Term {
    Term {
        name: None,
        matches,
        modify,
        then,
    }
}

fn only(prefix: &str, le: Option<u8>) -> Match {
    Match {
        prefix_list: Some(PrefixList {
            entries: vec![PrefixListEntry {
                action: ListAction::Permit,
                prefix: pfx(prefix),
                ge: None,
                le,
            }],
        }),
        ..Match::default()
    }
}

fn sample() -> Policy {
    Policy {
        name: "sample".into(),
        terms: vec![
            // Everything from 65001 gets a MED bump and goes on.
            term(
                Match {
                    neighbor_as: Some(65001),
                    ..Match::default()
                },
                vec![Modify::Med(MedChange::Add(10))],
                Then::Continue,
            ),
            term(only("10.0.0.0/8", Some(32)), vec![], Then::Reject),
            term(
                only("192.0.2.0/24", None),
                vec![Modify::SetLocalPref(300)],
                Then::Accept,
            ),
        ],
        default: DefaultAction::Accept,
    }
}

#[test]
fn terms_run_in_order_and_continue_keeps_changes() {
    let p = sample();
    let mut a = attrs_with_path(path(&[seq(&[65001])]));
    let v = apply(&p, &pfx("192.0.2.0/24"), &mut a, &ebgp());
    assert_eq!(v, Verdict::Accept(DecidedBy::Term(2)));
    assert_eq!((a.med, a.local_pref), (Some(10), Some(300)));

    let mut a = attrs_with_path(path(&[seq(&[65001])]));
    let v = apply(&p, &pfx("10.1.0.0/16"), &mut a, &ebgp());
    assert_eq!(v, Verdict::Reject(DecidedBy::Term(1)));

    let mut a = attrs_with_path(path(&[seq(&[65002])]));
    let v = apply(&p, &pfx("198.51.100.0/24"), &mut a, &ebgp());
    assert_eq!(v, Verdict::Accept(DecidedBy::Default));
    assert_eq!((a.med, a.local_pref), (None, None), "no term matched");

    let strict = Policy {
        default: DefaultAction::Reject,
        ..sample()
    };
    let mut a = attrs_with_path(path(&[seq(&[65002])]));
    assert_eq!(
        apply(&strict, &pfx("198.51.100.0/24"), &mut a, &ebgp()),
        Verdict::Reject(DecidedBy::Default)
    );
}

#[test]
fn a_prepend_is_seen_by_later_regex_terms() {
    let p = Policy {
        name: "prepend-then-match".into(),
        terms: vec![
            term(
                Match {
                    as_path_regex: Some(AsPathRegex::new("^65001_").expect("regex")),
                    ..Match::default()
                },
                vec![Modify::Prepend {
                    asn: None,
                    count: 1,
                }],
                Then::Continue,
            ),
            term(
                Match {
                    as_path_regex: Some(AsPathRegex::new("^65000 65001$").expect("regex")),
                    ..Match::default()
                },
                vec![],
                Then::Accept,
            ),
        ],
        default: DefaultAction::Reject,
    };
    let mut a = attrs_with_path(path(&[seq(&[65001])]));
    assert_eq!(
        apply(&p, &pfx("10.0.0.0/8"), &mut a, &ebgp()),
        Verdict::Accept(DecidedBy::Term(1))
    );
}

#[test]
fn rfc_8212_ebgp_without_policy_denies_ibgp_accepts() {
    assert_eq!(
        without_policy(&ebgp()),
        Verdict::Reject(DecidedBy::NoPolicy)
    );
    assert_eq!(
        without_policy(&ibgp()),
        Verdict::Accept(DecidedBy::NoPolicy)
    );

    let mut counters = PolicyCounters::default();
    let mut a = attrs_with_path(path(&[seq(&[65001])]));
    let untouched = a.clone();
    for prefix in ["10.0.0.0/8", "192.0.2.0/24", "2001:db8::/32"] {
        let v = evaluate(None, &pfx(prefix), &mut a, &ebgp(), &mut counters);
        assert!(!v.is_accept());
    }
    assert_eq!(a, untouched);
    assert_eq!(
        counters,
        PolicyCounters {
            accepted: 0,
            rejected: 3,
            rejected_no_policy: 3,
        }
    );

    let mut ibgp_counters = PolicyCounters::default();
    let v = evaluate(
        None,
        &pfx("10.0.0.0/8"),
        &mut a,
        &ibgp(),
        &mut ibgp_counters,
    );
    assert!(v.is_accept());
    assert_eq!(ibgp_counters.accepted, 1);

    // With a policy, eBGP follows it and nothing counts as "no policy".
    let mut with = PolicyCounters::default();
    let p = sample();
    evaluate(Some(&p), &pfx("10.0.0.0/8"), &mut a, &ebgp(), &mut with);
    evaluate(Some(&p), &pfx("192.0.2.0/24"), &mut a, &ebgp(), &mut with);
    assert_eq!(
        with,
        PolicyCounters {
            accepted: 1,
            rejected: 1,
            rejected_no_policy: 0,
        }
    );
}
