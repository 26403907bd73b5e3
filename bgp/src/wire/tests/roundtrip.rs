//! Property tests: random UPDATEs encode and decode back to themselves (or
//! to what RFC 6793 says a 2-octet session makes of them), and no input,
//! random or a mutated valid message, makes the decoder panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;

use crate::types::{Afi, AsPath, AsSegment, Origin, PathAttributes, Prefix, RawAttribute};
use crate::wire::*;

const FOUR: SessionContext = SessionContext::MODERN;
const TWO: SessionContext = SessionContext {
    four_octet_as: false,
    ipv4_unicast: true,
    ipv6_unicast: true,
};

fn v4_prefix() -> impl Strategy<Value = Prefix> {
    (any::<u32>(), 0..=32u8)
        .prop_map(|(a, l)| Prefix::new(IpAddr::V4(Ipv4Addr::from(a)), l).unwrap())
}

fn v6_prefix() -> impl Strategy<Value = Prefix> {
    (any::<u128>(), 0..=128u8)
        .prop_map(|(a, l)| Prefix::new(IpAddr::V6(Ipv6Addr::from(a)), l).unwrap())
}

/// AS numbers: small ones, AS_TRANS itself, and 4-octet ones.
fn asn() -> impl Strategy<Value = u32> {
    prop_oneof![1..65536u32, Just(u32::from(AS_TRANS)), 65536..=u32::MAX]
}

fn as_path() -> impl Strategy<Value = AsPath> {
    vec(
        (any::<bool>(), vec(asn(), 1..8)).prop_map(|(set, v)| {
            if set {
                AsSegment::Set(v)
            } else {
                AsSegment::Sequence(v)
            }
        }),
        0..4,
    )
    .prop_map(|segments| AsPath { segments })
}

fn attributes(next_hop: bool) -> impl Strategy<Value = PathAttributes> {
    let origin = prop_oneof![
        Just(Origin::Igp),
        Just(Origin::Egp),
        Just(Origin::Incomplete)
    ];
    let nh = if next_hop {
        any::<u32>()
            .prop_map(|a| Some(IpAddr::V4(Ipv4Addr::from(a))))
            .boxed()
    } else {
        proptest::option::of(any::<u32>().prop_map(|a| IpAddr::V4(Ipv4Addr::from(a)))).boxed()
    };
    // Unknown optional transitive attributes, as received from us (Partial).
    let unknown = btree_map(19..=255u8, vec(any::<u8>(), 0..300), 0..3).prop_map(|m| {
        m.into_iter()
            .map(|(type_code, value)| RawAttribute {
                flags: 0xe0,
                type_code,
                value,
            })
            .collect::<Vec<_>>()
    });
    (
        (
            origin,
            as_path(),
            nh,
            any::<Option<u32>>(),
            any::<Option<u32>>(),
        ),
        (
            any::<bool>(),
            proptest::option::of((asn(), any::<u32>())),
            vec(any::<u32>(), 0..6),
            proptest::option::of(any::<u32>()),
            vec(any::<u32>(), 0..4),
            unknown,
        ),
    )
        .prop_map(
            |(
                (origin, as_path, next_hop, med, local_pref),
                (atomic, agg, comms, orig, cl, unknown),
            )| {
                PathAttributes {
                    origin,
                    as_path,
                    next_hop,
                    med,
                    local_pref,
                    atomic_aggregate: atomic,
                    aggregator: agg.map(|(a, ip)| (a, Ipv4Addr::from(ip))),
                    communities: comms,
                    originator_id: orig.map(Ipv4Addr::from),
                    cluster_list: cl.into_iter().map(Ipv4Addr::from).collect(),
                    unknown,
                }
            },
        )
}

fn mp_reach() -> impl Strategy<Value = MpReach> {
    (
        any::<u128>(),
        proptest::option::of(any::<u128>()),
        vec(v6_prefix(), 0..20),
    )
        .prop_map(|(nh, ll, prefixes)| MpReach {
            afi: Afi::Ipv6,
            next_hop: IpAddr::V6(Ipv6Addr::from(nh)),
            link_local_next_hop: ll.map(Ipv6Addr::from),
            prefixes,
        })
}

fn update() -> impl Strategy<Value = Update> {
    (
        vec(v4_prefix(), 0..20),
        vec(v4_prefix(), 0..20),
        proptest::option::of(mp_reach()),
        proptest::option::of(vec(v6_prefix(), 0..20)),
        any::<bool>(),
    )
        .prop_flat_map(|(withdrawn, nlri, mp_reach, unreach, with_attrs)| {
            let needs = !nlri.is_empty() || mp_reach.is_some();
            let attrs = if needs || with_attrs {
                attributes(!nlri.is_empty()).prop_map(Some).boxed()
            } else {
                Just(None).boxed()
            };
            attrs.prop_map(move |attributes| Update {
                withdrawn: withdrawn.clone(),
                attributes,
                mp_reach: mp_reach.clone(),
                mp_unreach: unreach.clone().map(|prefixes| MpUnreach {
                    afi: Afi::Ipv6,
                    prefixes,
                }),
                nlri: nlri.clone(),
            })
        })
}

/// What the peer decodes: the same UPDATE, except where RFC 6793 4.2.3
/// makes a 2-octet session lose the 4-octet path (a 2-octet AGGREGATOR
/// other than AS_TRANS voids AS4_PATH).
fn model(u: &Update, ctx: &SessionContext) -> Update {
    let mut want = u.clone();
    if let Some(a) = &mut want.attributes {
        let agg_2_octet = a
            .aggregator
            .is_some_and(|(asn, _)| asn <= 0xffff && asn != u32::from(AS_TRANS));
        if !ctx.four_octet_as && agg_2_octet {
            for seg in &mut a.as_path.segments {
                let (AsSegment::Set(v) | AsSegment::Sequence(v)) = seg;
                for asn in v.iter_mut() {
                    if *asn > 0xffff {
                        *asn = u32::from(AS_TRANS);
                    }
                }
            }
        }
    }
    want
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn updates_round_trip(u in update(), four in any::<bool>()) {
        let ctx = if four { FOUR } else { TWO };
        let Ok(bytes) = Message::Update(u.clone()).to_bytes(&ctx) else {
            // Over 4096 bytes: refused, never truncated.
            prop_assert!(u.withdrawn.len() + u.nlri.len() > 10);
            return Ok(());
        };
        prop_assert_eq!(frame(&bytes), Ok(Some(bytes.len())));
        let got = decode_message(&bytes, &ctx);
        prop_assert_eq!(got, Ok(Received::Update(UpdateOutcome::Parsed(model(&u, &ctx)))));
    }

    #[test]
    fn random_bytes_never_panic(body in vec(any::<u8>(), 0..600), t in 1..=5u8, four in any::<bool>()) {
        let mut m = vec![0xff; 16];
        m.extend_from_slice(&((body.len() + 19) as u16).to_be_bytes());
        m.push(t);
        m.extend_from_slice(&body);
        let ctx = if four { FOUR } else { TWO };
        let _ = decode_message(&m, &ctx);
    }

    #[test]
    fn mutated_updates_never_panic_and_reencode(
        u in update(),
        flips in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        four in any::<bool>(),
    ) {
        let ctx = if four { FOUR } else { TWO };
        let Ok(mut bytes) = Message::Update(u).to_bytes(&ctx) else { return Ok(()); };
        for (i, x) in flips {
            let at = 19 + i.index(bytes.len() - 19);
            bytes[at] ^= x;
        }
        // Whatever parses cleanly encodes again and decodes the same, but
        // for Partial bits our encoder sets on unknown attributes.
        if let Ok(Received::Update(UpdateOutcome::Parsed(p))) = decode_message(&bytes, &ctx) {
            if let Ok(again) = Message::Update(p.clone()).to_bytes(&ctx) {
                let Ok(Received::Update(UpdateOutcome::Parsed(q))) = decode_message(&again, &ctx) else {
                    return Err(TestCaseError::fail("re-encoded UPDATE does not parse"));
                };
                prop_assert_eq!(q.announced_prefixes().count(), p.announced_prefixes().count());
                prop_assert_eq!(q.withdrawn_prefixes().count(), p.withdrawn_prefixes().count());
            }
        }
    }
}
