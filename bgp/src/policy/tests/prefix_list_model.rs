//! Property tests: a prefix list built from the JSON form matches exactly
//! what a brute-force reading of the ge/le rules says, for IPv4 and IPv6;
//! and validation accepts exactly the legal ge/le combinations.

use crate::policy::config::{MatchConfig, PolicyConfig, PrefixEntryConfig, TermConfig};
use crate::policy::prefix_list::{ListAction, PrefixList};
use crate::policy::Then;
use crate::types::Prefix;
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An entry as the model sees it: address bytes, length, ge, le.
#[derive(Clone, Debug)]
struct ModelEntry {
    permit: bool,
    bytes: Vec<u8>,
    len: u8,
    ge: Option<u8>,
    le: Option<u8>,
}

fn bit(bytes: &[u8], i: usize) -> bool {
    bytes[i / 8] & (0x80 >> (i % 8)) != 0
}

/// The rules as operators' manuals state them, one case at a time.
fn model_entry_matches(e: &ModelEntry, route: &[u8], route_len: u8, max: u8) -> bool {
    let len_ok = match (e.ge, e.le) {
        (None, None) => route_len == e.len,
        (Some(ge), None) => ge <= route_len && route_len <= max,
        (None, Some(le)) => e.len <= route_len && route_len <= le,
        (Some(ge), Some(le)) => ge <= route_len && route_len <= le,
    };
    len_ok && (0..usize::from(e.len)).all(|i| bit(&e.bytes, i) == bit(route, i))
}

fn model_permits(entries: &[ModelEntry], route: &[u8], route_len: u8, max: u8) -> bool {
    entries
        .iter()
        .find(|e| model_entry_matches(e, route, route_len, max))
        .is_some_and(|e| e.permit)
}

/// Clears the bits past `len` (byte arithmetic, apart from `Prefix`).
fn clear_host_bits(bytes: &mut [u8], len: u8) {
    for i in usize::from(len)..bytes.len() * 8 {
        bytes[i / 8] &= !(0x80 >> (i % 8));
    }
}

fn to_ip(bytes: &[u8]) -> IpAddr {
    match bytes.len() {
        4 => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(bytes).expect("4 bytes"))),
        _ => IpAddr::V6(Ipv6Addr::from(
            <[u8; 16]>::try_from(bytes).expect("16 bytes"),
        )),
    }
}

/// Addresses drawn from a few shared stems so that entries and routes
/// overlap often; `width` bytes (4 or 16).
fn address(width: usize) -> impl Strategy<Value = Vec<u8>> {
    let stems: Vec<Vec<u8>> = if width == 4 {
        vec![vec![10, 0], vec![10, 1], vec![192, 168]]
    } else {
        vec![vec![0x20, 0x01, 0x0d, 0xb8], vec![0x20, 0x01, 0x0d, 0xb9]]
    };
    let rest = width - stems[0].len();
    (
        proptest::sample::select(stems),
        proptest::collection::vec(
            prop_oneof![Just(0u8), Just(0x80), Just(0x01), any::<u8>()],
            rest,
        ),
    )
        .prop_map(|(mut stem, tail)| {
            stem.extend(tail);
            stem
        })
}

/// A legal entry: ge in len..=max, le in (ge or len)..=max.
fn entry(width: usize) -> impl Strategy<Value = ModelEntry> {
    let max = (width * 8) as u8;
    (address(width), 0..=max, any::<bool>())
        .prop_flat_map(move |(bytes, len, permit)| {
            (
                Just(bytes),
                Just(len),
                Just(permit),
                proptest::option::of(len..=max),
            )
        })
        .prop_flat_map(move |(bytes, len, permit, ge)| {
            let floor = ge.unwrap_or(len);
            (
                Just(bytes),
                Just(len),
                Just(permit),
                Just(ge),
                proptest::option::of(floor..=max),
            )
        })
        .prop_map(|(mut bytes, len, permit, ge, le)| {
            clear_host_bits(&mut bytes, len);
            ModelEntry {
                permit,
                bytes,
                len,
                ge,
                le,
            }
        })
}

fn route(width: usize) -> impl Strategy<Value = (Vec<u8>, u8)> {
    let max = (width * 8) as u8;
    (address(width), 0..=max).prop_map(|(mut bytes, len)| {
        clear_host_bits(&mut bytes, len);
        (bytes, len)
    })
}

/// Builds the list through the JSON form and its validation.
fn compile(entries: &[ModelEntry]) -> PrefixList {
    let config = PolicyConfig {
        name: "model".into(),
        terms: vec![TermConfig {
            name: None,
            matches: MatchConfig {
                prefix_list: Some(
                    entries
                        .iter()
                        .map(|e| PrefixEntryConfig {
                            action: if e.permit {
                                ListAction::Permit
                            } else {
                                ListAction::Deny
                            },
                            prefix: format!("{}/{}", to_ip(&e.bytes), e.len),
                            ge: e.ge,
                            le: e.le,
                        })
                        .collect(),
                ),
                ..MatchConfig::default()
            },
            actions: vec![],
            then: Then::Accept,
        }],
        default: crate::policy::DefaultAction::Reject,
    };
    let policy = config.validate().expect("legal entries validate");
    policy.terms[0]
        .matches
        .prefix_list
        .clone()
        .expect("prefix list")
}

fn check(entries: &[ModelEntry], routes: &[(Vec<u8>, u8)], width: usize) {
    let list = compile(entries);
    let max = (width * 8) as u8;
    for (bytes, len) in routes {
        let p = Prefix::new(to_ip(bytes), *len).expect("route prefix");
        assert_eq!(
            list.permits(&p),
            model_permits(entries, bytes, *len, max),
            "route {p} against {entries:?}"
        );
    }
}

proptest! {
    #[test]
    fn v4_lists_match_the_model(
        entries in proptest::collection::vec(entry(4), 1..6),
        routes in proptest::collection::vec(route(4), 1..40),
    ) {
        check(&entries, &routes, 4);
    }

    #[test]
    fn v6_lists_match_the_model(
        entries in proptest::collection::vec(entry(16), 1..6),
        routes in proptest::collection::vec(route(16), 1..40),
    ) {
        check(&entries, &routes, 16);
    }

    /// Routes built as more-specifics of an entry, so ge/le ranges are
    /// exercised on routes the entry covers.
    #[test]
    fn v4_more_specifics_match_the_model(
        e in entry(4),
        extra in proptest::collection::vec((any::<u32>(), 0u8..=32), 1..30),
    ) {
        let base = u32::from_be_bytes(<[u8; 4]>::try_from(&e.bytes[..]).expect("4 bytes"));
        let routes: Vec<(Vec<u8>, u8)> = extra
            .iter()
            .map(|&(noise, add)| {
                let len = e.len.saturating_add(add).min(32);
                let host_mask = u32::MAX.checked_shr(u32::from(e.len)).unwrap_or(0);
                let mut bytes = (base | (noise & host_mask)).to_be_bytes().to_vec();
                clear_host_bits(&mut bytes, len);
                (bytes, len)
            })
            .collect();
        check(std::slice::from_ref(&e), &routes, 4);
    }

    /// Validation accepts ge/le exactly when len <= ge <= le <= max.
    #[test]
    fn validation_accepts_exactly_legal_bounds(
        len in 0u8..=32,
        ge in proptest::option::of(0u8..=40),
        le in proptest::option::of(0u8..=40),
    ) {
        let mut bytes = vec![10, 1, 2, 3];
        clear_host_bits(&mut bytes, len);
        let entry = PrefixEntryConfig {
            action: ListAction::Permit,
            prefix: format!("{}/{len}", to_ip(&bytes)),
            ge,
            le,
        };
        let config = PolicyConfig {
            name: "v".into(),
            terms: vec![TermConfig {
                name: None,
                matches: MatchConfig { prefix_list: Some(vec![entry]), ..MatchConfig::default() },
                actions: vec![],
                then: Then::Accept,
            }],
            default: crate::policy::DefaultAction::Reject,
        };
        let legal = ge.is_none_or(|g| len <= g && g <= 32)
            && le.is_none_or(|l| ge.unwrap_or(len) <= l && l <= 32);
        let result = config.validate();
        prop_assert_eq!(result.is_ok(), legal, "{:?}", result);
        if let Err(e) = result {
            prop_assert!(
                e.field == "terms[0].match.prefix_list[0].ge"
                    || e.field == "terms[0].match.prefix_list[0].le",
                "{}", e
            );
        }
    }
}
