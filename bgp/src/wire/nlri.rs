//! NLRI prefixes (RFC 4271 4.3, RFC 4760 5): a length in bits, then just
//! enough bytes to hold it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::reader::Reader;
use crate::types::{Afi, Prefix};

/// A prefix list that does not parse: length beyond the family's width or
/// bytes running past the field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadNlri;

/// Every prefix of a withdrawn-routes or NLRI field of family `afi`.
pub fn decode_prefixes(field: &[u8], afi: Afi) -> Result<Vec<Prefix>, BadNlri> {
    let max_bits = match afi {
        Afi::Ipv4 => 32,
        Afi::Ipv6 => 128,
    };
    let mut r = Reader::new(field);
    let mut out = Vec::new();
    while let Some(len) = r.u8() {
        if len > max_bits {
            return Err(BadNlri);
        }
        let bytes = r.take(usize::from(len).div_ceil(8)).ok_or(BadNlri)?;
        let addr = match afi {
            Afi::Ipv4 => {
                let mut a = [0u8; 4];
                a[..bytes.len()].copy_from_slice(bytes);
                IpAddr::V4(Ipv4Addr::from(a))
            }
            Afi::Ipv6 => {
                let mut a = [0u8; 16];
                a[..bytes.len()].copy_from_slice(bytes);
                IpAddr::V6(Ipv6Addr::from(a))
            }
        };
        out.push(Prefix::new(addr, len).map_err(|_| BadNlri)?);
    }
    Ok(out)
}

/// Appends one prefix in NLRI form.
pub fn encode_prefix(p: &Prefix, out: &mut Vec<u8>) {
    let len = p.prefix_len();
    let n = usize::from(len).div_ceil(8);
    out.push(len);
    match p.addr() {
        IpAddr::V4(a) => out.extend_from_slice(&a.octets()[..n.min(4)]),
        IpAddr::V6(a) => out.extend_from_slice(&a.octets()[..n.min(16)]),
    }
}

/// Appends every prefix.
pub fn encode_prefixes(ps: &[Prefix], out: &mut Vec<u8>) {
    for p in ps {
        encode_prefix(p, out);
    }
}
