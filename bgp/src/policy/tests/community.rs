//! Community patterns, matching and changes.

use crate::policy::community::{
    add, community_text, delete, match_all, match_any, parse_community, set, CommunityPattern,
    COMMUNITY_BLACKHOLE, COMMUNITY_NO_EXPORT_SUBCONFED,
};
use crate::types::{COMMUNITY_NO_ADVERTISE, COMMUNITY_NO_EXPORT};

fn c(asn: u32, v: u32) -> u32 {
    asn << 16 | v
}

fn pat(text: &str) -> CommunityPattern {
    CommunityPattern::parse(text).expect("pattern")
}

#[test]
fn patterns_parse_and_print() {
    assert_eq!(pat("65001:100"), CommunityPattern::Exact(c(65001, 100)));
    assert_eq!(pat("65001:*"), CommunityPattern::AnyValue(65001));
    assert_eq!(pat("*:666"), CommunityPattern::AnyAsn(666));
    assert_eq!(
        pat("no-export"),
        CommunityPattern::Exact(COMMUNITY_NO_EXPORT)
    );
    assert_eq!(
        pat("NO_EXPORT"),
        CommunityPattern::Exact(COMMUNITY_NO_EXPORT)
    );
    assert_eq!(
        pat("no-advertise"),
        CommunityPattern::Exact(COMMUNITY_NO_ADVERTISE)
    );
    assert_eq!(
        pat("NO_EXPORT_SUBCONFED"),
        CommunityPattern::Exact(COMMUNITY_NO_EXPORT_SUBCONFED)
    );
    assert_eq!(
        pat("blackhole"),
        CommunityPattern::Exact(COMMUNITY_BLACKHOLE)
    );
    // The numeric spelling of a well-known community prints as its name.
    assert_eq!(pat("65535:65281").to_string(), "no-export");
    assert_eq!(pat("65001:*").to_string(), "65001:*");
    assert_eq!(pat("*:666").to_string(), "*:666");
    assert_eq!(community_text(c(0, 0)), "0:0");
    for bad in [
        "",
        "65536:1",
        "1:65536",
        "*:*",
        "1",
        "a:b",
        "1:2:3",
        "no export",
    ] {
        assert_eq!(CommunityPattern::parse(bad), None, "{bad:?}");
    }
    assert_eq!(parse_community("65001:*"), None);
    assert_eq!(parse_community("1:2"), Some(c(1, 2)));
}

#[test]
fn wildcards_match_their_half() {
    assert!(pat("65001:*").matches(c(65001, 0)));
    assert!(pat("65001:*").matches(c(65001, 65535)));
    assert!(!pat("65001:*").matches(c(65002, 1)));
    assert!(pat("*:666").matches(c(3356, 666)));
    assert!(!pat("*:666").matches(c(666, 3356)));
    // Well-known values live under ASN 65535.
    assert!(pat("65535:*").matches(COMMUNITY_NO_EXPORT));
}

#[test]
fn any_and_all() {
    let route = [c(65001, 100), COMMUNITY_NO_EXPORT];
    let p = |v: &[&str]| v.iter().map(|t| pat(t)).collect::<Vec<_>>();
    assert!(match_any(&p(&["65002:1", "no-export"]), &route));
    assert!(!match_any(&p(&["65002:1", "no-advertise"]), &route));
    assert!(!match_any(&p(&["65001:*"]), &[]));
    assert!(match_all(&p(&["65001:*", "no-export"]), &route));
    assert!(!match_all(&p(&["65001:*", "no-advertise"]), &route));
    assert!(match_all(&[], &route), "no pattern: nothing required");
}

#[test]
fn set_add_delete() {
    let mut v = vec![c(1, 1), c(65001, 5), c(65001, 6), COMMUNITY_NO_EXPORT];
    delete(&mut v, &[pat("65001:*")]);
    assert_eq!(v, [c(1, 1), COMMUNITY_NO_EXPORT]);
    add(&mut v, &[c(2, 2), c(1, 1), c(2, 2)]);
    assert_eq!(v, [c(1, 1), COMMUNITY_NO_EXPORT, c(2, 2)], "no duplicates");
    delete(&mut v, &[pat("no-export"), pat("*:2")]);
    assert_eq!(v, [c(1, 1)]);
    set(&mut v, &[c(9, 9), c(9, 9), c(8, 8)]);
    assert_eq!(v, [c(9, 9), c(8, 8)]);
    set(&mut v, &[]);
    assert!(v.is_empty());
}
