//! AS-path conditions: text form, regex conveniences, length, origin,
//! neighbour and contains.

use super::{attrs_with_path, ebgp, path, pfx, seq, set};
use crate::policy::as_path::{origin_as, render_as_path, AsPathRegex, PathText, RegexError};
use crate::policy::eval::RouteContext;
use crate::policy::term::{LazyPathText, Match};
use crate::policy::LengthMatch;
use crate::types::AsPath;

fn text(p: &AsPath) -> String {
    let mut s = String::new();
    render_as_path(p, &mut s);
    s
}

#[test]
fn paths_render_as_text() {
    assert_eq!(text(&path(&[])), "");
    assert_eq!(text(&path(&[seq(&[65001])])), "65001");
    assert_eq!(
        text(&path(&[seq(&[65001, 65002]), set(&[1, 2])])),
        "65001 65002 {1 2}"
    );
    assert_eq!(
        text(&path(&[set(&[7]), seq(&[0, 4_294_967_295])])),
        "{7} 0 4294967295"
    );
}

#[test]
fn long_paths_spill_from_the_stack_buffer() {
    // 400 five-digit ASes: ~2.4 KB of text, more than the inline 2 KiB.
    let asns: Vec<u32> = (0..400).map(|i| 10_000 + i).collect();
    let p = path(&[seq(&asns)]);
    let mut t = PathText::new();
    t.render(&p);
    assert_eq!(t.as_str(), text(&p));
    // Reused for a short path afterwards.
    let short = path(&[seq(&[65001])]);
    t.render(&short);
    assert_eq!(t.as_str(), "65001");
    let r = AsPathRegex::new("_10399$").expect("regex");
    t.render(&p);
    assert!(r.is_match_text(t.as_str()));
}

/// (regex, path text, expected)
const REGEX_CASES: &[(&str, &str, bool)] = &[
    // `^$`: only the empty path (a route of our own AS).
    ("^$", "", true),
    ("^$", "65001", false),
    // `_X_`: X as a whole AS anywhere.
    ("_65001_", "65001", true),
    ("_65001_", "65002 65001", true),
    ("_65001_", "65002 65001 65003", true),
    ("_65001_", "165001 650011", false),
    ("_65001_", "65002 {65001 7}", true),
    ("_7_", "65002 {65001 7}", true),
    // `^X_`: received from neighbour X.
    ("^65001_", "65001 65002", true),
    ("^65001_", "65001", true),
    ("^65001_", "650012 65002", false),
    ("^65001_", "65002 65001", false),
    // `_X$`: originated by X.
    ("_65002$", "65001 65002", true),
    ("_65002$", "65001 165002", false),
    ("_65002$", "65002 65001", false),
    // Consecutive delimiters share the space between two ASes.
    ("_65001_65002_", "64512 65001 65002 64513", true),
    ("_65001_65002_", "65001 65003 65002", false),
    // `^[0-9]+$`: exactly one AS.
    ("^[0-9]+$", "65001", true),
    ("^[0-9]+$", "65001 65002", false),
    // An `_` inside a class or escaped is left alone.
    ("^[_0-9]+$", "65001", true),
    ("\\_", "65001 65002", false),
    // Unanchored plain text matches substrings, as on Cisco/FRR.
    ("6500", "165001", true),
    // Private ASN range via alternation.
    (
        "_(6451[2-9]|645[2-9][0-9]|64[6-9][0-9][0-9]|65[0-4][0-9][0-9]|655[0-2][0-9]|6553[0-4])_",
        "3356 64512 1299",
        true,
    ),
    (
        "_(6451[2-9]|645[2-9][0-9]|64[6-9][0-9][0-9]|65[0-4][0-9][0-9]|655[0-2][0-9]|6553[0-4])_",
        "3356 174 1299",
        false,
    ),
];

#[test]
fn regex_conveniences_match_like_cisco() {
    for (re, path_text, expected) in REGEX_CASES {
        let r = AsPathRegex::new(re).expect("valid regex");
        assert_eq!(
            r.is_match_text(path_text),
            *expected,
            "{re:?} on {path_text:?}"
        );
    }
}

#[test]
fn bad_or_huge_regexes_are_refused() {
    assert!(matches!(
        AsPathRegex::new("(65001"),
        Err(RegexError::Invalid(_))
    ));
    assert_eq!(
        AsPathRegex::new(&"1".repeat(2000)).err(),
        Some(RegexError::TooLong)
    );
    // Within the text limit but a program too large for the size limit.
    assert!(matches!(
        AsPathRegex::new("(((\\d{1,100}){1,100}){1,100})"),
        Err(RegexError::Invalid(_))
    ));
}

#[test]
fn length_bounds_count_a_set_as_one() {
    let p = path(&[seq(&[1, 2]), set(&[3, 4, 5])]);
    assert!(LengthMatch::Eq(3).matches(&p));
    assert!(!LengthMatch::Eq(5).matches(&p));
    let range = |ge, le| LengthMatch::Range { ge, le };
    assert!(range(Some(3), None).matches(&p));
    assert!(!range(Some(4), None).matches(&p));
    assert!(range(None, Some(3)).matches(&p));
    assert!(!range(None, Some(2)).matches(&p));
    assert!(range(Some(1), Some(3)).matches(&p));
    assert!(LengthMatch::Eq(0).matches(&path(&[])));
}

#[test]
fn origin_as_follows_rfc_6811() {
    assert_eq!(origin_as(&path(&[seq(&[1, 2, 3])]), 65000), Some(3));
    assert_eq!(origin_as(&path(&[]), 65000), Some(65000));
    assert_eq!(origin_as(&path(&[seq(&[1]), set(&[2, 3])]), 65000), None);
    assert_eq!(origin_as(&path(&[set(&[2, 3]), seq(&[9])]), 65000), Some(9));
}

fn check(m: &Match, p: AsPath, ctx: &RouteContext) -> bool {
    let attrs = attrs_with_path(p);
    m.matches(&pfx("10.0.0.0/8"), &attrs, ctx, &mut LazyPathText::new())
}

#[test]
fn as_conditions_in_a_term() {
    let ctx = ebgp();
    let p = || path(&[seq(&[65001, 3356, 15169])]);
    let neighbor = |a| Match {
        neighbor_as: Some(a),
        ..Match::default()
    };
    assert!(check(&neighbor(65001), p(), &ctx));
    assert!(!check(&neighbor(3356), p(), &ctx));
    assert!(!check(&neighbor(65001), path(&[]), &ctx));
    let origin = |a| Match {
        origin_as: Some(a),
        ..Match::default()
    };
    assert!(check(&origin(15169), p(), &ctx));
    assert!(!check(&origin(3356), p(), &ctx));
    assert!(check(&origin(ctx.local_as), path(&[]), &ctx));
    let contains = |a| Match {
        contains_as: Some(a),
        ..Match::default()
    };
    assert!(check(&contains(3356), p(), &ctx));
    assert!(check(&contains(7), path(&[seq(&[1]), set(&[7])]), &ctx));
    assert!(!check(&contains(174), p(), &ctx));
    let regex = |r: &str| Match {
        as_path_regex: Some(AsPathRegex::new(r).expect("regex")),
        ..Match::default()
    };
    assert!(check(&regex("_3356_"), p(), &ctx));
    assert!(!check(&regex("^3356_"), p(), &ctx));
    assert!(check(&regex("^$"), path(&[]), &ctx));
    // All conditions AND-ed.
    let both = Match {
        neighbor_as: Some(65001),
        as_path_length: Some(LengthMatch::Eq(2)),
        ..Match::default()
    };
    assert!(!check(&both, p(), &ctx));
    assert!(check(&both, path(&[seq(&[65001, 1])]), &ctx));
    assert!(
        check(&Match::default(), p(), &ctx),
        "no condition matches all"
    );
}
