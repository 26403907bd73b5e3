//! Path attributes (RFC 4271 4.3, 5): type codes, flags, and the encoder of
//! a [`PathAttributes`] for a session (2-octet AS_PATH with AS4_PATH and
//! AS4_AGGREGATOR when the session lacks 4-octet AS, RFC 6793 4.2.2).

use std::net::{IpAddr, Ipv4Addr};

use super::error::EncodeError;
use super::open::{SessionContext, AS_TRANS};
use super::reader::Reader;
use crate::types::{AsPath, AsSegment, Origin, PathAttributes, RawAttribute};

/// Attribute flag bits.
pub mod flag {
    pub const OPTIONAL: u8 = 0x80;
    pub const TRANSITIVE: u8 = 0x40;
    pub const PARTIAL: u8 = 0x20;
    pub const EXTENDED_LENGTH: u8 = 0x10;
}

/// Attribute type codes.
pub mod attr_type {
    pub const ORIGIN: u8 = 1;
    pub const AS_PATH: u8 = 2;
    pub const NEXT_HOP: u8 = 3;
    pub const MULTI_EXIT_DISC: u8 = 4;
    pub const LOCAL_PREF: u8 = 5;
    pub const ATOMIC_AGGREGATE: u8 = 6;
    pub const AGGREGATOR: u8 = 7;
    pub const COMMUNITIES: u8 = 8;
    pub const ORIGINATOR_ID: u8 = 9;
    pub const CLUSTER_LIST: u8 = 10;
    pub const MP_REACH_NLRI: u8 = 14;
    pub const MP_UNREACH_NLRI: u8 = 15;
    pub const AS4_PATH: u8 = 17;
    pub const AS4_AGGREGATOR: u8 = 18;
}

/// AS_PATH segment types.
pub const AS_SET: u8 = 1;
pub const AS_SEQUENCE: u8 = 2;

/// The flags (optional, transitive) an attribute this codec knows must
/// carry; None for codes it does not know.
pub(crate) fn expected_flags(code: u8) -> Option<u8> {
    use attr_type::*;
    use flag::*;
    Some(match code {
        ORIGIN | AS_PATH | NEXT_HOP | LOCAL_PREF | ATOMIC_AGGREGATE => TRANSITIVE,
        MULTI_EXIT_DISC | ORIGINATOR_ID | CLUSTER_LIST | MP_REACH_NLRI | MP_UNREACH_NLRI => {
            OPTIONAL
        }
        AGGREGATOR | COMMUNITIES | AS4_PATH | AS4_AGGREGATOR => OPTIONAL | TRANSITIVE,
        _ => return None,
    })
}

/// True when the flags fit the attribute's category: the optional and
/// transitive bits as expected, Partial only on optional transitive ones.
pub(crate) fn flags_ok(code: u8, flags: u8) -> bool {
    match expected_flags(code) {
        None => true,
        Some(want) => {
            let got = flags & (flag::OPTIONAL | flag::TRANSITIVE);
            let partial_ok =
                want == flag::OPTIONAL | flag::TRANSITIVE || flags & flag::PARTIAL == 0;
            got == want && partial_ok
        }
    }
}

/// Appends one attribute: flags, type, length, value. Extended length
/// when the value needs it, and always for MP_REACH_NLRI (as BIRD and FRR
/// both send it, so golden bytes re-encode the same).
pub(crate) fn put_attr(
    out: &mut Vec<u8>,
    flags: u8,
    code: u8,
    value: &[u8],
) -> Result<(), EncodeError> {
    let len = u16::try_from(value.len()).map_err(|_| EncodeError::TooLong)?;
    let short = u8::try_from(len)
        .ok()
        .filter(|_| code != attr_type::MP_REACH_NLRI);
    match short {
        Some(short) => {
            out.extend_from_slice(&[flags & !flag::EXTENDED_LENGTH, code, short]);
        }
        None => {
            out.extend_from_slice(&[flags | flag::EXTENDED_LENGTH, code]);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
    out.extend_from_slice(value);
    Ok(())
}

/// Parses an AS_PATH or AS4_PATH value with `as_size`-byte AS numbers.
/// Confederation segments (3, 4) are refused: this speaker is in no
/// confederation, and an eBGP peer must not send them (RFC 5065 5).
pub(crate) fn decode_as_path(value: &[u8], as_size: usize) -> Option<AsPath> {
    let mut r = Reader::new(value);
    let mut segments = Vec::new();
    while !r.is_empty() {
        let seg_type = r.u8()?;
        let count = usize::from(r.u8()?);
        if count == 0 {
            return None;
        }
        let raw = r.take(count * as_size)?;
        let asns: Vec<u32> = raw
            .chunks_exact(as_size)
            .map(|c| c.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)))
            .collect();
        segments.push(match seg_type {
            AS_SET => AsSegment::Set(asns),
            AS_SEQUENCE => AsSegment::Sequence(asns),
            _ => return None,
        });
    }
    Some(AsPath { segments })
}

/// Encodes an AS path, splitting segments longer than 255 and writing
/// AS_TRANS for 4-octet numbers when `four_octet` is false.
pub(crate) fn encode_as_path(path: &AsPath, four_octet: bool, out: &mut Vec<u8>) {
    for seg in &path.segments {
        let (t, asns) = match seg {
            AsSegment::Set(v) => (AS_SET, v),
            AsSegment::Sequence(v) => (AS_SEQUENCE, v),
        };
        for chunk in asns.chunks(255) {
            out.push(t);
            out.push(chunk.len() as u8);
            for &a in chunk {
                if four_octet {
                    out.extend_from_slice(&a.to_be_bytes());
                } else {
                    out.extend_from_slice(&u16::try_from(a).unwrap_or(AS_TRANS).to_be_bytes());
                }
            }
        }
    }
}

fn path_has_4_octet_as(path: &AsPath) -> bool {
    path.segments.iter().any(|s| match s {
        AsSegment::Set(v) | AsSegment::Sequence(v) => v.iter().any(|&a| a > 0xffff),
    })
}

/// RFC 6793 4.2.3: rebuild the real path of a 2-octet session from AS_PATH
/// and AS4_PATH, and the real aggregator from AGGREGATOR and AS4_AGGREGATOR.
pub(crate) fn merge_as4(
    as_path: &mut AsPath,
    as4_path: Option<AsPath>,
    aggregator: &mut Option<(u32, Ipv4Addr)>,
    as4_aggregator: Option<(u32, Ipv4Addr)>,
) {
    if let Some((agg_as, _)) = *aggregator {
        if agg_as != u32::from(AS_TRANS) {
            // A 2-octet speaker aggregated after the path left 4-octet land:
            // AS4_PATH and AS4_AGGREGATOR are stale.
            return;
        }
        if let Some(a4) = as4_aggregator {
            *aggregator = Some(a4);
        }
    }
    let Some(as4) = as4_path else {
        return;
    };
    let n = as_path.path_len();
    let m = as4.path_len();
    if n < m {
        return;
    }
    let mut keep = n - m;
    let mut segments = Vec::new();
    for seg in &as_path.segments {
        if keep == 0 {
            break;
        }
        match seg {
            AsSegment::Set(v) => {
                segments.push(AsSegment::Set(v.clone()));
                keep -= 1;
            }
            AsSegment::Sequence(v) => {
                let take = keep.min(v.len());
                segments.push(AsSegment::Sequence(v[..take].to_vec()));
                keep -= take;
            }
        }
    }
    // A kept sequence and a leading AS4 sequence are one sequence.
    let mut rest = as4.segments.into_iter().peekable();
    if let (Some(AsSegment::Sequence(last)), Some(AsSegment::Sequence(first))) =
        (segments.last_mut(), rest.peek())
    {
        if last.len() + first.len() <= 255 {
            last.extend_from_slice(first);
            rest.next();
        }
    }
    segments.extend(rest);
    as_path.segments = segments;
}

/// Appends every path attribute of `attrs` but MP_REACH/MP_UNREACH, in
/// type-code order (unknown transitive ones with Partial set), as
/// `(type code, bytes)` pieces for the UPDATE encoder to order.
pub(crate) fn encode_attributes(
    attrs: &PathAttributes,
    ctx: &SessionContext,
    pieces: &mut Vec<(u8, Vec<u8>)>,
) -> Result<(), EncodeError> {
    use attr_type::*;
    use flag::*;
    let mut piece = |code: u8, flags: u8, value: &[u8]| -> Result<(), EncodeError> {
        let mut out = Vec::with_capacity(value.len() + 4);
        put_attr(&mut out, flags, code, value)?;
        pieces.push((code, out));
        Ok(())
    };
    piece(ORIGIN, TRANSITIVE, &[attrs.origin as u8])?;
    let mut path = Vec::new();
    encode_as_path(&attrs.as_path, ctx.four_octet_as, &mut path);
    piece(AS_PATH, TRANSITIVE, &path)?;
    match attrs.next_hop {
        Some(IpAddr::V4(nh)) => piece(NEXT_HOP, TRANSITIVE, &nh.octets())?,
        Some(IpAddr::V6(_)) => return Err(EncodeError::WrongFamily),
        None => {}
    }
    if let Some(med) = attrs.med {
        piece(MULTI_EXIT_DISC, OPTIONAL, &med.to_be_bytes())?;
    }
    if let Some(lp) = attrs.local_pref {
        piece(LOCAL_PREF, TRANSITIVE, &lp.to_be_bytes())?;
    }
    if attrs.atomic_aggregate {
        piece(ATOMIC_AGGREGATE, TRANSITIVE, &[])?;
    }
    if let Some((asn, addr)) = attrs.aggregator {
        let mut v = Vec::with_capacity(8);
        if ctx.four_octet_as {
            v.extend_from_slice(&asn.to_be_bytes());
        } else {
            v.extend_from_slice(&u16::try_from(asn).unwrap_or(AS_TRANS).to_be_bytes());
        }
        v.extend_from_slice(&addr.octets());
        piece(AGGREGATOR, OPTIONAL | TRANSITIVE, &v)?;
        if !ctx.four_octet_as && asn > 0xffff {
            let mut v4 = asn.to_be_bytes().to_vec();
            v4.extend_from_slice(&addr.octets());
            piece(AS4_AGGREGATOR, OPTIONAL | TRANSITIVE, &v4)?;
        }
    }
    if !attrs.communities.is_empty() {
        let v: Vec<u8> = attrs
            .communities
            .iter()
            .flat_map(|c| c.to_be_bytes())
            .collect();
        piece(COMMUNITIES, OPTIONAL | TRANSITIVE, &v)?;
    }
    if let Some(id) = attrs.originator_id {
        piece(ORIGINATOR_ID, OPTIONAL, &id.octets())?;
    }
    if !attrs.cluster_list.is_empty() {
        let v: Vec<u8> = attrs.cluster_list.iter().flat_map(|c| c.octets()).collect();
        piece(CLUSTER_LIST, OPTIONAL, &v)?;
    }
    if !ctx.four_octet_as && path_has_4_octet_as(&attrs.as_path) {
        let mut v = Vec::new();
        encode_as_path(&attrs.as_path, true, &mut v);
        piece(AS4_PATH, OPTIONAL | TRANSITIVE, &v)?;
    }
    for raw in &attrs.unknown {
        piece(raw.type_code, passed_on_flags(raw), &raw.value)?;
    }
    Ok(())
}

/// The flags an unknown attribute leaves with: Partial set when it is
/// optional transitive (RFC 4271 5), which is all `unknown` ever holds.
pub fn passed_on_flags(raw: &RawAttribute) -> u8 {
    let f = raw.flags & !flag::EXTENDED_LENGTH;
    if f & flag::OPTIONAL != 0 && f & flag::TRANSITIVE != 0 {
        f | flag::PARTIAL
    } else {
        f
    }
}

/// An ORIGIN value from its byte.
pub(crate) fn origin_from(b: u8) -> Option<Origin> {
    match b {
        0 => Some(Origin::Igp),
        1 => Some(Origin::Egp),
        2 => Some(Origin::Incomplete),
        _ => None,
    }
}
