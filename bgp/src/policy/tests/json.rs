//! The JSON form: a golden policy round-trips byte for byte and behaves as
//! written; bad documents are refused with the field's path.

use super::{attrs_with_path, ebgp, path, pfx, seq, set};
use crate::policy::community::COMMUNITY_BLACKHOLE;
use crate::policy::{apply, DecidedBy, Policy, PolicyConfig, PolicyError, Problem, Verdict};
use crate::types::{COMMUNITY_NO_ADVERTISE, COMMUNITY_NO_EXPORT};
use std::net::IpAddr;

const GOLDEN: &str = include_str!("golden_policy.json");

fn golden() -> Policy {
    Policy::from_json(GOLDEN).expect("golden policy validates")
}

#[test]
fn golden_policy_round_trips() {
    let p = golden();
    assert_eq!(p.name, "from-transit");
    assert_eq!(p.terms.len(), 7);
    assert_eq!(p.to_json(), GOLDEN.trim_end());
    // Through serde directly, as the REST API will embed it.
    let via_serde: Policy = serde_json::from_str(GOLDEN).expect("deserialize");
    assert_eq!(via_serde, p);
    let back = serde_json::to_value(&via_serde).expect("serialize");
    let original: serde_json::Value = serde_json::from_str(GOLDEN).expect("json");
    assert_eq!(back, original);
    // And the plain config form.
    let config: PolicyConfig = serde_json::from_str(GOLDEN).expect("config");
    assert_eq!(config.validate().expect("valid"), p);
}

#[test]
fn golden_policy_behaves_as_written() {
    let p = golden();
    let ctx = ebgp();
    let run = |prefix: &str, attrs: &mut crate::types::PathAttributes| {
        apply(&p, &pfx(prefix), attrs, &ctx)
    };
    let c = |asn: u32, v: u32| asn << 16 | v;

    let mut a = attrs_with_path(path(&[seq(&[65001])]));
    assert_eq!(
        run("10.20.0.0/16", &mut a),
        Verdict::Reject(DecidedBy::Term(0))
    );
    assert_eq!(
        run("fd00:1::/48", &mut a),
        Verdict::Reject(DecidedBy::Term(0))
    );
    assert_eq!(
        run("203.0.113.128/25", &mut a),
        Verdict::Reject(DecidedBy::Term(1))
    );
    assert_eq!(
        run("2001:db8::/56", &mut a),
        Verdict::Reject(DecidedBy::Term(1))
    );
    let long: Vec<u32> = (1..=50).collect();
    let mut a = attrs_with_path(path(&[seq(&long)]));
    assert_eq!(
        run("203.0.113.0/24", &mut a),
        Verdict::Reject(DecidedBy::Term(2))
    );

    let mut a = attrs_with_path(path(&[seq(&[65001, 64512])]));
    a.communities = vec![COMMUNITY_BLACKHOLE, c(65001, 7)];
    assert_eq!(
        run("203.0.113.0/24", &mut a),
        Verdict::Accept(DecidedBy::Term(3))
    );
    assert_eq!(a.communities, [COMMUNITY_NO_EXPORT, COMMUNITY_NO_ADVERTISE]);
    assert_eq!(a.next_hop, Some("192.0.2.254".parse().expect("address")));

    let mut a = attrs_with_path(path(&[seq(&[65001, 65001])]));
    a.communities = vec![c(65001, 100), c(3356, 1)];
    assert_eq!(
        run("198.51.100.0/24", &mut a),
        Verdict::Accept(DecidedBy::Term(4))
    );
    assert_eq!(a.local_pref, Some(200));
    assert_eq!(a.communities, [c(3356, 1), c(65000, 1)]);
    // Missing the `*:100` community: falls through to "rest".
    let mut a = attrs_with_path(path(&[seq(&[65001])]));
    a.communities = vec![c(65001, 5)];
    assert_eq!(
        run("198.51.100.0/24", &mut a),
        Verdict::Accept(DecidedBy::Term(6))
    );
    assert_eq!(a.local_pref, None);

    // "depref-via-3356" continues into "rest", which sets MED 10 last.
    let mut a = attrs_with_path(path(&[seq(&[174, 3356, 15169])]));
    a.med = Some(1);
    assert_eq!(
        run("8.8.8.0/24", &mut a),
        Verdict::Accept(DecidedBy::Term(6))
    );
    assert_eq!(a.med, Some(10));
    assert_eq!(
        a.as_path,
        path(&[seq(&[64999, 65000, 65000, 174, 3356, 15169])])
    );
    assert_eq!(a.next_hop, ctx.local_v4.map(IpAddr::V4));
    // The same path with an AS_SET origin has no origin AS: not depref'd.
    let mut a = attrs_with_path(path(&[seq(&[174, 3356]), set(&[15169])]));
    assert_eq!(
        run("8.8.8.0/24", &mut a),
        Verdict::Accept(DecidedBy::Term(6))
    );
    assert_eq!(a.as_path.path_len(), 3);
}

/// Replaces the first `from` in the golden text with `to` and returns the
/// error the result gets.
fn broken(from: &str, to: &str) -> PolicyError {
    assert!(GOLDEN.contains(from), "{from:?} not in the golden text");
    let text = GOLDEN.replacen(from, to, 1);
    Policy::from_json(&text).expect_err("should be refused")
}

#[test]
fn errors_name_the_field() {
    let cases: &[(&str, &str, &str)] = &[
        (
            r#""prefix": "0.0.0.0/0",
            "ge": 25"#,
            r#""prefix": "0.0.0.0/0",
            "ge": 25, "le": 24"#,
            "terms[1].match.prefix_list[0].le",
        ),
        (
            r#""prefix": "fc00::/7",
            "le": 128"#,
            r#""prefix": "fc00::/7",
            "le": 129"#,
            "terms[0].match.prefix_list[2].le",
        ),
        (
            r#""prefix": "10.0.0.0/8",
            "le": 32"#,
            r#""prefix": "10.0.0.0/8",
            "ge": 7"#,
            "terms[0].match.prefix_list[0].ge",
        ),
        (
            r#""prefix": "10.0.0.0/8","#,
            r#""prefix": "10.0.0.1/8","#,
            "terms[0].match.prefix_list[0].prefix",
        ),
        (
            r#""prefix": "192.168.0.0/16","#,
            r#""prefix": "192.168.0.0/33","#,
            "terms[0].match.prefix_list[1].prefix",
        ),
        (
            r#""ge": 50"#,
            r#""ge": 50, "le": 40"#,
            "terms[2].match.as_path_length.le",
        ),
        (
            r#""eq": 3"#,
            r#""eq": 3, "le": 4"#,
            "terms[5].match.as_path_length",
        ),
        (
            r#""^65001(_65001)*$""#,
            r#""^65001(_65001*$""#,
            "terms[4].match.as_path_regex",
        ),
        (
            r#""*:100""#,
            r#""*:100000""#,
            "terms[4].match.community_all[1]",
        ),
        (
            r#""65000:1""#,
            r#""65000:*""#,
            "terms[4].actions[2].add_communities[0]",
        ),
        (r#""+50""#, r#""*50""#, "terms[5].actions[0].set_med"),
        (
            r#""count": 2"#,
            r#""count": 0"#,
            "terms[5].actions[2].prepend.count",
        ),
        (
            r#""192.0.2.254""#,
            r#""192.0.2.999""#,
            "terms[3].actions[1].set_next_hop",
        ),
        (r#""name": "rest""#, r#""name": "bogons""#, "terms[6].name"),
        (r#""from-transit""#, r#""from transit""#, "name"),
        // Type and shape errors come through serde with their path too.
        (
            r#""then": "continue""#,
            r#""then": "maybe""#,
            "terms[5].then",
        ),
        (
            r#""le": 32"#,
            r#""le": 300"#,
            "terms[0].match.prefix_list[0].le",
        ),
        (
            r#""origin_as": 15169"#,
            r#""origin": 15169"#,
            "terms[5].match.origin",
        ),
    ];
    for (from, to, field) in cases {
        let e = broken(from, to);
        assert_eq!(e.field, *field, "{e}");
        assert!(e.to_string().starts_with(field), "{e}");
    }
    // The problem itself is typed.
    let e = broken(r#""prefix": "10.0.0.0/8","#, r#""prefix": "10.0.0.1/8","#);
    assert_eq!(e.problem, Problem::HostBitsSet(pfx("10.0.0.0/8")));
    let e = broken(
        r#""prefix": "0.0.0.0/0",
            "ge": 25"#,
        r#""prefix": "0.0.0.0/0",
            "ge": 25, "le": 24"#,
    );
    assert_eq!(e.problem, Problem::LeBelowGe { le: 24, ge: 25 });
}

#[test]
fn minimal_documents() {
    let p = Policy::from_json(r#"{"name": "deny-all"}"#).expect("valid");
    assert!(p.terms.is_empty());
    let mut a = attrs_with_path(path(&[]));
    assert_eq!(
        apply(&p, &pfx("10.0.0.0/8"), &mut a, &ebgp()),
        Verdict::Reject(DecidedBy::Default),
        "default is reject when omitted"
    );
    let p = Policy::from_json(r#"{"name": "any", "default": "accept"}"#).expect("valid");
    assert!(apply(&p, &pfx("10.0.0.0/8"), &mut a, &ebgp()).is_accept());
    let e = Policy::from_json(
        r#"{"name": "x", "terms": [{"match": {"prefix_list": []}, "then": "accept"}]}"#,
    )
    .expect_err("empty list");
    assert_eq!(e.field, "terms[0].match.prefix_list");
    assert_eq!(e.problem, Problem::EmptyPrefixList);
    let e = Policy::from_json("{").expect_err("truncated");
    assert!(matches!(e.problem, Problem::Json(_)), "{e}");
}
