//! UPDATE (RFC 4271 4.3, RFC 4760 MP_REACH/MP_UNREACH): the typed message,
//! its encoder, and a decoder that applies RFC 7606's revised error
//! handling, so one bad attribute costs a route, not the session.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::attributes::{
    attr_type, decode_as_path, encode_attributes, flag, flags_ok, merge_as4, origin_from, put_attr,
};
use super::error::{AttrError, AttrFault, EncodeError};
use super::nlri::{decode_prefixes, encode_prefixes};
use super::notification::{code, update_subcode, Notification};
use super::open::SessionContext;
use super::reader::Reader;
use crate::types::{Afi, AsPath, PathAttributes, Prefix, RawAttribute, SAFI_UNICAST};

/// MP_REACH_NLRI (RFC 4760 3) for IPv4 or IPv6 unicast.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MpReach {
    pub afi: Afi,
    /// IPv4 for AFI 1, the global IPv6 address for AFI 2.
    pub next_hop: IpAddr,
    /// The link-local address of a 32-byte IPv6 next hop (RFC 2545 3).
    pub link_local_next_hop: Option<Ipv6Addr>,
    pub prefixes: Vec<Prefix>,
}

/// MP_UNREACH_NLRI (RFC 4760 4).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MpUnreach {
    pub afi: Afi,
    pub prefixes: Vec<Prefix>,
}

/// An UPDATE message.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Update {
    /// IPv4 prefixes of the Withdrawn Routes field.
    pub withdrawn: Vec<Prefix>,
    /// The path attributes but MP_REACH/MP_UNREACH (`next_hop` holds the
    /// NEXT_HOP attribute); None when the message carries none.
    pub attributes: Option<PathAttributes>,
    pub mp_reach: Option<MpReach>,
    pub mp_unreach: Option<MpUnreach>,
    /// IPv4 prefixes of the NLRI field.
    pub nlri: Vec<Prefix>,
}

/// The result of decoding an UPDATE under RFC 7606.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// Well formed.
    Parsed(Update),
    /// Usable once the listed attributes are dropped (they are already
    /// left out of `update`).
    AttributeDiscard {
        update: Update,
        discarded: Vec<AttrError>,
    },
    /// The attributes cannot be trusted: withdraw every prefix the message
    /// carried (announced or withdrawn).
    TreatAsWithdraw {
        withdrawn: Vec<Prefix>,
        errors: Vec<AttrError>,
    },
    /// Send this NOTIFICATION and reset the session.
    SessionReset(Notification),
}

impl Update {
    /// End-of-RIB marker for `afi` (RFC 4724 2).
    pub fn end_of_rib(afi: Afi) -> Update {
        match afi {
            Afi::Ipv4 => Update::default(),
            Afi::Ipv6 => Update {
                mp_unreach: Some(MpUnreach {
                    afi,
                    prefixes: Vec::new(),
                }),
                ..Update::default()
            },
        }
    }

    /// The family whose End-of-RIB this is, if it is one.
    pub fn end_of_rib_afi(&self) -> Option<Afi> {
        if !self.withdrawn.is_empty() || !self.nlri.is_empty() || self.mp_reach.is_some() {
            return None;
        }
        match (&self.attributes, &self.mp_unreach) {
            (None, None) => Some(Afi::Ipv4),
            (None, Some(u)) if u.prefixes.is_empty() => Some(u.afi),
            _ => None,
        }
    }

    /// Every prefix withdrawn, both families.
    pub fn withdrawn_prefixes(&self) -> impl Iterator<Item = &Prefix> {
        let mp = self.mp_unreach.iter().flat_map(|u| u.prefixes.iter());
        self.withdrawn.iter().chain(mp)
    }

    /// Every prefix announced, both families.
    pub fn announced_prefixes(&self) -> impl Iterator<Item = &Prefix> {
        let mp = self.mp_reach.iter().flat_map(|r| r.prefixes.iter());
        self.nlri.iter().chain(mp)
    }

    /// The attributes of the routes of `afi` in this message, with
    /// `next_hop` set from NEXT_HOP (IPv4 NLRI field) or MP_REACH.
    pub fn attributes_for(&self, afi: Afi) -> Option<PathAttributes> {
        let mut attrs = self.attributes.clone()?;
        match &self.mp_reach {
            Some(r) if r.afi == afi => attrs.next_hop = Some(r.next_hop),
            _ if afi == Afi::Ipv4 => {}
            _ => attrs.next_hop = None,
        }
        Some(attrs)
    }

    /// The body (after the header) under the session's context.
    pub fn decode(body: &[u8], ctx: &SessionContext) -> UpdateOutcome {
        match decode_inner(body, ctx) {
            Ok(o) => o,
            Err(n) => UpdateOutcome::SessionReset(n),
        }
    }

    pub(crate) fn encode_body(
        &self,
        ctx: &SessionContext,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        let v4_only = |ps: &[Prefix]| ps.iter().all(|p| p.afi() == Afi::Ipv4);
        if !v4_only(&self.withdrawn) || !v4_only(&self.nlri) {
            return Err(EncodeError::WrongFamily);
        }
        if (!self.nlri.is_empty() || !self.withdrawn.is_empty()) && !ctx.ipv4_unicast {
            return Err(EncodeError::FamilyNotNegotiated(Afi::Ipv4));
        }
        let mut pieces: Vec<(u8, Vec<u8>)> = Vec::new();
        if let Some(attrs) = &self.attributes {
            if !self.nlri.is_empty() && !matches!(attrs.next_hop, Some(IpAddr::V4(_))) {
                return Err(EncodeError::MissingNextHop);
            }
            encode_attributes(attrs, ctx, &mut pieces)?;
        } else if !self.nlri.is_empty() || self.mp_reach.is_some() {
            return Err(EncodeError::MissingAttributes);
        }
        if let Some(r) = &self.mp_reach {
            pieces.push((attr_type::MP_REACH_NLRI, encode_mp_reach(r, ctx)?));
        }
        if let Some(u) = &self.mp_unreach {
            pieces.push((attr_type::MP_UNREACH_NLRI, encode_mp_unreach(u, ctx)?));
        }
        pieces.sort_by_key(|(code, _)| mp_first(*code));

        let w_at = out.len();
        out.extend_from_slice(&[0, 0]);
        encode_prefixes(&self.withdrawn, out);
        let wlen = u16::try_from(out.len() - w_at - 2).map_err(|_| EncodeError::TooLong)?;
        out[w_at..w_at + 2].copy_from_slice(&wlen.to_be_bytes());
        let a_at = out.len();
        out.extend_from_slice(&[0, 0]);
        for (_, p) in &pieces {
            out.extend_from_slice(p);
        }
        let alen = u16::try_from(out.len() - a_at - 2).map_err(|_| EncodeError::TooLong)?;
        out[a_at..a_at + 2].copy_from_slice(&alen.to_be_bytes());
        encode_prefixes(&self.nlri, out);
        Ok(())
    }
}

/// Attribute order on the wire: MP_REACH/MP_UNREACH first (as BIRD and FRR
/// send them), then by type code.
fn mp_first(code: u8) -> (bool, u8) {
    let mp = code == attr_type::MP_REACH_NLRI || code == attr_type::MP_UNREACH_NLRI;
    (!mp, code)
}

fn check_family(afi: Afi, prefixes: &[Prefix], ctx: &SessionContext) -> Result<(), EncodeError> {
    if !ctx.carries(afi) {
        return Err(EncodeError::FamilyNotNegotiated(afi));
    }
    if prefixes.iter().any(|p| p.afi() != afi) {
        return Err(EncodeError::WrongFamily);
    }
    Ok(())
}

fn encode_mp_reach(r: &MpReach, ctx: &SessionContext) -> Result<Vec<u8>, EncodeError> {
    check_family(r.afi, &r.prefixes, ctx)?;
    let mut v = Vec::new();
    v.extend_from_slice(&(r.afi as u16).to_be_bytes());
    v.push(SAFI_UNICAST);
    match (r.afi, r.next_hop, r.link_local_next_hop) {
        (Afi::Ipv4, IpAddr::V4(nh), None) => {
            v.push(4);
            v.extend_from_slice(&nh.octets());
        }
        (Afi::Ipv6, IpAddr::V6(nh), None) => {
            v.push(16);
            v.extend_from_slice(&nh.octets());
        }
        (Afi::Ipv6, IpAddr::V6(nh), Some(ll)) => {
            v.push(32);
            v.extend_from_slice(&nh.octets());
            v.extend_from_slice(&ll.octets());
        }
        _ => return Err(EncodeError::WrongFamily),
    }
    v.push(0);
    encode_prefixes(&r.prefixes, &mut v);
    let mut out = Vec::with_capacity(v.len() + 4);
    put_attr(&mut out, flag::OPTIONAL, attr_type::MP_REACH_NLRI, &v)?;
    Ok(out)
}

fn encode_mp_unreach(u: &MpUnreach, ctx: &SessionContext) -> Result<Vec<u8>, EncodeError> {
    check_family(u.afi, &u.prefixes, ctx)?;
    let mut v = Vec::new();
    v.extend_from_slice(&(u.afi as u16).to_be_bytes());
    v.push(SAFI_UNICAST);
    encode_prefixes(&u.prefixes, &mut v);
    let mut out = Vec::with_capacity(v.len() + 4);
    put_attr(&mut out, flag::OPTIONAL, attr_type::MP_UNREACH_NLRI, &v)?;
    Ok(out)
}

fn update_error(subcode: u8, data: Vec<u8>) -> Notification {
    Notification::new(code::UPDATE_MESSAGE, subcode, data)
}

/// How bad an attribute fault is (RFC 7606 7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Severity {
    Discard,
    Withdraw,
}

/// Attributes as they are found, before the mandatory checks.
struct Found {
    seen: [bool; 256],
    any_path_attr: bool,
    attrs: PathAttributes,
    as_path: Option<AsPath>,
    as4_path: Option<AsPath>,
    as4_aggregator: Option<(u32, Ipv4Addr)>,
    mp_reach: Option<MpReach>,
    mp_unreach: Option<MpUnreach>,
    errors: Vec<(AttrError, Severity)>,
}

impl Default for Found {
    fn default() -> Found {
        Found {
            seen: [false; 256],
            any_path_attr: false,
            attrs: PathAttributes::default(),
            as_path: None,
            as4_path: None,
            as4_aggregator: None,
            mp_reach: None,
            mp_unreach: None,
            errors: Vec::new(),
        }
    }
}

impl Found {
    fn fault(&mut self, type_code: u8, fault: AttrFault, severity: Severity) {
        self.errors.push((AttrError { type_code, fault }, severity));
    }
}

fn decode_inner(body: &[u8], ctx: &SessionContext) -> Result<UpdateOutcome, Notification> {
    let malformed_list = || update_error(update_subcode::MALFORMED_ATTRIBUTE_LIST, Vec::new());
    let mut r = Reader::new(body);
    let wlen = r.u16().ok_or_else(malformed_list)?;
    let wfield = r.take(usize::from(wlen)).ok_or_else(malformed_list)?;
    let alen = r.u16().ok_or_else(malformed_list)?;
    let afield = r.take(usize::from(alen)).ok_or_else(malformed_list)?;
    let nfield = r.rest();
    let invalid_network = || update_error(update_subcode::INVALID_NETWORK_FIELD, Vec::new());
    let withdrawn = decode_prefixes(wfield, Afi::Ipv4).map_err(|_| invalid_network())?;
    let nlri = decode_prefixes(nfield, Afi::Ipv4).map_err(|_| invalid_network())?;

    let mut f = Found::default();
    let mut ar = Reader::new(afield);
    while !ar.is_empty() {
        let start = ar.rest();
        let (Some(flags), Some(type_code)) = (ar.u8(), ar.u8()) else {
            overrun(&mut f, 0, ctx)?;
            break;
        };
        let len = if flags & flag::EXTENDED_LENGTH != 0 {
            ar.u16().map(usize::from)
        } else {
            ar.u8().map(usize::from)
        };
        let Some(value) = len.and_then(|l| ar.take(l)) else {
            overrun(&mut f, type_code, ctx)?;
            break;
        };
        let whole = &start[..start.len() - ar.remaining()];
        if f.seen[usize::from(type_code)] {
            if type_code == attr_type::MP_REACH_NLRI || type_code == attr_type::MP_UNREACH_NLRI {
                return Err(malformed_list());
            }
            f.fault(type_code, AttrFault::Duplicate, Severity::Discard);
            continue;
        }
        f.seen[usize::from(type_code)] = true;
        decode_attribute(&mut f, flags, type_code, value, whole, ctx)?;
    }

    // Mandatory well-known attributes, needed only when routes are announced.
    let reach = f.mp_reach.as_ref().is_some_and(|r| !r.prefixes.is_empty());
    if !nlri.is_empty() || reach {
        for (code, present) in [
            (attr_type::ORIGIN, f.seen[usize::from(attr_type::ORIGIN)]),
            (attr_type::AS_PATH, f.seen[usize::from(attr_type::AS_PATH)]),
            (
                attr_type::NEXT_HOP,
                f.seen[usize::from(attr_type::NEXT_HOP)] || nlri.is_empty(),
            ),
        ] {
            if !present {
                f.fault(code, AttrFault::Missing, Severity::Withdraw);
            }
        }
    }

    let Found {
        any_path_attr,
        mut attrs,
        as_path,
        as4_path,
        as4_aggregator,
        mp_reach,
        mp_unreach,
        errors,
        ..
    } = f;
    if errors.iter().any(|(_, s)| *s == Severity::Withdraw) {
        let mut all = withdrawn;
        all.extend(nlri);
        all.extend(mp_unreach.into_iter().flat_map(|u| u.prefixes));
        all.extend(mp_reach.into_iter().flat_map(|r| r.prefixes));
        return Ok(UpdateOutcome::TreatAsWithdraw {
            withdrawn: all,
            errors: errors.into_iter().map(|(e, _)| e).collect(),
        });
    }
    if let Some(mut path) = as_path {
        if !ctx.four_octet_as {
            merge_as4(&mut path, as4_path, &mut attrs.aggregator, as4_aggregator);
        }
        attrs.as_path = path;
    }
    let update = Update {
        withdrawn,
        attributes: any_path_attr.then_some(attrs),
        mp_reach,
        mp_unreach,
        nlri,
    };
    if errors.is_empty() {
        Ok(UpdateOutcome::Parsed(update))
    } else {
        Ok(UpdateOutcome::AttributeDiscard {
            update,
            discarded: errors.into_iter().map(|(e, _)| e).collect(),
        })
    }
}

/// An attribute runs past the field (RFC 7606 4): treat-as-withdraw, unless
/// an MP_REACH/MP_UNREACH could hide in the unparsable rest (a session
/// with more than IPv4 and none found yet), whose prefixes then could not
/// be withdrawn: reset.
fn overrun(f: &mut Found, type_code: u8, ctx: &SessionContext) -> Result<(), Notification> {
    let mp_found = f.mp_reach.is_some() || f.mp_unreach.is_some();
    if ctx.ipv6_unicast && !mp_found {
        return Err(update_error(
            update_subcode::MALFORMED_ATTRIBUTE_LIST,
            Vec::new(),
        ));
    }
    f.fault(type_code, AttrFault::Overrun, Severity::Withdraw);
    Ok(())
}

fn u32_of(value: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(value.try_into().ok()?))
}

fn ipv4_of(value: &[u8]) -> Option<Ipv4Addr> {
    u32_of(value).map(Ipv4Addr::from)
}

fn ipv4_list(value: &[u8]) -> Option<Vec<Ipv4Addr>> {
    if value.len() % 4 != 0 {
        return None;
    }
    Some(value.chunks_exact(4).filter_map(ipv4_of).collect())
}

fn aggregator_of(value: &[u8], as_size: usize) -> Option<(u32, Ipv4Addr)> {
    if value.len() != as_size + 4 {
        return None;
    }
    let (asn, addr) = value.split_at(as_size);
    let asn = asn.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
    Some((asn, ipv4_of(addr)?))
}

/// One attribute into `f`; Err only for faults that reset the session.
fn decode_attribute(
    f: &mut Found,
    flags: u8,
    type_code: u8,
    value: &[u8],
    whole: &[u8],
    ctx: &SessionContext,
) -> Result<(), Notification> {
    use attr_type::*;
    use Severity::{Discard, Withdraw};
    let as_size = if ctx.four_octet_as { 4 } else { 2 };
    // RFC 7606 7: the fate of each known attribute when it is malformed.
    let severity = match type_code {
        ATOMIC_AGGREGATE | AGGREGATOR | AS4_PATH | AS4_AGGREGATOR => Discard,
        _ => Withdraw,
    };
    let is_mp = type_code == MP_REACH_NLRI || type_code == MP_UNREACH_NLRI;
    if !is_mp && type_code != AS4_PATH && type_code != AS4_AGGREGATOR {
        f.any_path_attr = true;
    }
    if !flags_ok(type_code, flags) {
        if is_mp {
            return Err(update_error(
                update_subcode::ATTRIBUTE_FLAGS_ERROR,
                whole.to_vec(),
            ));
        }
        f.fault(type_code, AttrFault::Flags, severity);
        return Ok(());
    }
    let mut bad = |fault| f.fault(type_code, fault, severity);
    match type_code {
        ORIGIN => match *value {
            [b] => match origin_from(b) {
                Some(o) => f.attrs.origin = o,
                None => bad(AttrFault::Value),
            },
            _ => bad(AttrFault::Length),
        },
        AS_PATH => match decode_as_path(value, as_size) {
            Some(p) => f.as_path = Some(p),
            None => bad(AttrFault::Value),
        },
        NEXT_HOP => match ipv4_of(value) {
            Some(nh) => f.attrs.next_hop = Some(IpAddr::V4(nh)),
            None => bad(AttrFault::Length),
        },
        MULTI_EXIT_DISC => match u32_of(value) {
            Some(v) => f.attrs.med = Some(v),
            None => bad(AttrFault::Length),
        },
        LOCAL_PREF => match u32_of(value) {
            Some(v) => f.attrs.local_pref = Some(v),
            None => bad(AttrFault::Length),
        },
        ATOMIC_AGGREGATE => match value.len() {
            0 => f.attrs.atomic_aggregate = true,
            _ => bad(AttrFault::Length),
        },
        AGGREGATOR => match aggregator_of(value, as_size) {
            Some(a) => f.attrs.aggregator = Some(a),
            None => bad(AttrFault::Length),
        },
        COMMUNITIES => match value.len() % 4 {
            0 => {
                f.attrs.communities = value.chunks_exact(4).filter_map(u32_of).collect();
            }
            _ => bad(AttrFault::Length),
        },
        ORIGINATOR_ID => match ipv4_of(value) {
            Some(id) => f.attrs.originator_id = Some(id),
            None => bad(AttrFault::Length),
        },
        CLUSTER_LIST => match ipv4_list(value) {
            Some(l) => f.attrs.cluster_list = l,
            None => bad(AttrFault::Length),
        },
        AS4_PATH => {
            // A 4-octet session ignores it (RFC 6793 4.1).
            if !ctx.four_octet_as {
                match decode_as_path(value, 4) {
                    Some(p) => f.as4_path = Some(p),
                    None => bad(AttrFault::Value),
                }
            }
        }
        AS4_AGGREGATOR => {
            if !ctx.four_octet_as {
                match aggregator_of(value, 4) {
                    Some(a) => f.as4_aggregator = Some(a),
                    None => bad(AttrFault::Length),
                }
            }
        }
        MP_REACH_NLRI => decode_mp_reach(f, value, whole)?,
        MP_UNREACH_NLRI => decode_mp_unreach(f, value, whole)?,
        _ => {
            if flags & flag::OPTIONAL == 0 {
                return Err(update_error(
                    update_subcode::UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE,
                    whole.to_vec(),
                ));
            }
            // Unknown optional non-transitive ones are quietly dropped.
            if flags & flag::TRANSITIVE != 0 {
                f.attrs.unknown.push(RawAttribute {
                    flags: flags & !flag::EXTENDED_LENGTH,
                    type_code,
                    value: value.to_vec(),
                });
            }
        }
    }
    Ok(())
}

fn afi_of(afi: u16, safi: u8) -> Option<Afi> {
    match (afi, safi) {
        (1, SAFI_UNICAST) => Some(Afi::Ipv4),
        (2, SAFI_UNICAST) => Some(Afi::Ipv6),
        _ => None,
    }
}

/// A malformed MP_REACH/MP_UNREACH resets the session (RFC 7606 7.11).
fn mp_error(whole: &[u8]) -> Notification {
    update_error(update_subcode::OPTIONAL_ATTRIBUTE_ERROR, whole.to_vec())
}

fn decode_mp_reach(f: &mut Found, value: &[u8], whole: &[u8]) -> Result<(), Notification> {
    let mut r = Reader::new(value);
    let (Some(afi), Some(safi), Some(nh_len)) = (r.u16(), r.u8(), r.u8()) else {
        return Err(mp_error(whole));
    };
    let nh = r.take(usize::from(nh_len)).ok_or_else(|| mp_error(whole))?;
    r.u8().ok_or_else(|| mp_error(whole))?;
    let Some(afi) = afi_of(afi, safi) else {
        f.fault(
            attr_type::MP_REACH_NLRI,
            AttrFault::UnsupportedFamily,
            Severity::Discard,
        );
        return Ok(());
    };
    let mut nr = Reader::new(nh);
    let (next_hop, link_local_next_hop) = match (afi, nh.len()) {
        (Afi::Ipv4, 4) => (nr.ipv4().map(IpAddr::V4), None),
        (Afi::Ipv6, 16) => (nr.ipv6().map(IpAddr::V6), None),
        (Afi::Ipv6, 32) => (nr.ipv6().map(IpAddr::V6), nr.ipv6()),
        _ => (None, None),
    };
    let next_hop = next_hop.ok_or_else(|| mp_error(whole))?;
    let prefixes = decode_prefixes(r.rest(), afi).map_err(|_| mp_error(whole))?;
    f.mp_reach = Some(MpReach {
        afi,
        next_hop,
        link_local_next_hop,
        prefixes,
    });
    Ok(())
}

fn decode_mp_unreach(f: &mut Found, value: &[u8], whole: &[u8]) -> Result<(), Notification> {
    let mut r = Reader::new(value);
    let (Some(afi), Some(safi)) = (r.u16(), r.u8()) else {
        return Err(mp_error(whole));
    };
    let Some(afi) = afi_of(afi, safi) else {
        f.fault(
            attr_type::MP_UNREACH_NLRI,
            AttrFault::UnsupportedFamily,
            Severity::Discard,
        );
        return Ok(());
    };
    let prefixes = decode_prefixes(r.rest(), afi).map_err(|_| mp_error(whole))?;
    f.mp_unreach = Some(MpUnreach { afi, prefixes });
    Ok(())
}
