//! Values shared by the codec, the state machine, the RIB and policy.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Address family (RFC 4760).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Afi {
    Ipv4 = 1,
    Ipv6 = 2,
}

/// Subsequent address family: unicast only.
pub const SAFI_UNICAST: u8 = 1;

/// An IP prefix with its host bits clear.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Prefix {
    V4 { addr: Ipv4Addr, len: u8 },
    V6 { addr: Ipv6Addr, len: u8 },
}

/// Why a prefix was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    #[error("prefix length {0} too long")]
    TooLong(u8),
}

impl Prefix {
    /// `addr/len` with the host bits cleared.
    pub fn new(addr: IpAddr, len: u8) -> Result<Prefix, PrefixError> {
        match addr {
            IpAddr::V4(a) => {
                if len > 32 {
                    return Err(PrefixError::TooLong(len));
                }
                let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
                Ok(Prefix::V4 {
                    addr: Ipv4Addr::from(u32::from(a) & mask),
                    len,
                })
            }
            IpAddr::V6(a) => {
                if len > 128 {
                    return Err(PrefixError::TooLong(len));
                }
                let mask = if len == 0 {
                    0
                } else {
                    u128::MAX << (128 - len)
                };
                Ok(Prefix::V6 {
                    addr: Ipv6Addr::from(u128::from(a) & mask),
                    len,
                })
            }
        }
    }

    pub fn afi(&self) -> Afi {
        match self {
            Prefix::V4 { .. } => Afi::Ipv4,
            Prefix::V6 { .. } => Afi::Ipv6,
        }
    }

    pub fn prefix_len(&self) -> u8 {
        match *self {
            Prefix::V4 { len, .. } | Prefix::V6 { len, .. } => len,
        }
    }

    pub fn addr(&self) -> IpAddr {
        match *self {
            Prefix::V4 { addr, .. } => IpAddr::V4(addr),
            Prefix::V6 { addr, .. } => IpAddr::V6(addr),
        }
    }

    /// True when `other` lies within this prefix (or equals it).
    pub fn contains(&self, other: &Prefix) -> bool {
        match (*self, *other) {
            (Prefix::V4 { addr, len }, Prefix::V4 { addr: o, len: ol }) => {
                ol >= len && Prefix::new(IpAddr::V4(o), len).ok() == Some(Prefix::V4 { addr, len })
            }
            (Prefix::V6 { addr, len }, Prefix::V6 { addr: o, len: ol }) => {
                ol >= len && Prefix::new(IpAddr::V6(o), len).ok() == Some(Prefix::V6 { addr, len })
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr(), self.prefix_len())
    }
}

/// ORIGIN attribute values, in preference order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Origin {
    Igp = 0,
    Egp = 1,
    Incomplete = 2,
}

/// One AS_PATH segment (4-octet AS numbers throughout; RFC 6793).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AsSegment {
    Sequence(Vec<u32>),
    Set(Vec<u32>),
}

/// An AS_PATH.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct AsPath {
    pub segments: Vec<AsSegment>,
}

impl AsPath {
    /// Path length for best-path selection: each AS of a sequence counts,
    /// a set counts as one (RFC 4271 9.1.2.2 a).
    pub fn path_len(&self) -> usize {
        self.segments
            .iter()
            .map(|s| match s {
                AsSegment::Sequence(v) => v.len(),
                AsSegment::Set(_) => 1,
            })
            .sum()
    }

    /// The neighbouring AS: the first AS of a leading sequence.
    pub fn first_as(&self) -> Option<u32> {
        match self.segments.first() {
            Some(AsSegment::Sequence(v)) => v.first().copied(),
            _ => None,
        }
    }

    /// This path with `asn` prepended (as an eBGP speaker does).
    pub fn prepend(&self, asn: u32) -> AsPath {
        let mut segments = self.segments.clone();
        match segments.first_mut() {
            Some(AsSegment::Sequence(v)) if v.len() < 255 => v.insert(0, asn),
            _ => segments.insert(0, AsSegment::Sequence(vec![asn])),
        }
        AsPath { segments }
    }

    /// True when `asn` appears anywhere (loop detection).
    pub fn contains(&self, asn: u32) -> bool {
        self.segments.iter().any(|s| match s {
            AsSegment::Sequence(v) | AsSegment::Set(v) => v.contains(&asn),
        })
    }
}

/// A standard community (RFC 1997) as its 32-bit value (ASN << 16 | value).
pub type Community = u32;
/// NO_EXPORT.
pub const COMMUNITY_NO_EXPORT: Community = 0xFFFF_FF01;
/// NO_ADVERTISE.
pub const COMMUNITY_NO_ADVERTISE: Community = 0xFFFF_FF02;

/// An attribute the speaker does not interpret, kept to pass on when it is
/// optional transitive (with the Partial bit set).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RawAttribute {
    pub flags: u8,
    pub type_code: u8,
    pub value: Vec<u8>,
}

/// The path attributes of a route (the NLRI and MP_REACH/MP_UNREACH travel
/// beside them, not inside).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PathAttributes {
    pub origin: Origin,
    pub as_path: AsPath,
    /// NEXT_HOP for IPv4, or the MP_REACH next hop (global IPv6 address).
    pub next_hop: Option<IpAddr>,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    pub atomic_aggregate: bool,
    /// (AS, address).
    pub aggregator: Option<(u32, Ipv4Addr)>,
    pub communities: Vec<Community>,
    /// ORIGINATOR_ID and CLUSTER_LIST (route reflection; carried only).
    pub originator_id: Option<Ipv4Addr>,
    pub cluster_list: Vec<Ipv4Addr>,
    /// Optional transitive attributes not understood.
    pub unknown: Vec<RawAttribute>,
}

impl Default for PathAttributes {
    fn default() -> Self {
        PathAttributes {
            origin: Origin::Igp,
            as_path: AsPath::default(),
            next_hop: None,
            med: None,
            local_pref: None,
            atomic_aggregate: false,
            aggregator: None,
            communities: Vec::new(),
            originator_id: None,
            cluster_list: Vec::new(),
            unknown: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_clear_host_bits_and_nest() {
        let p = Prefix::new("10.1.2.3".parse().unwrap(), 16).unwrap();
        assert_eq!(p.to_string(), "10.1.0.0/16");
        let q = Prefix::new("10.1.200.0".parse().unwrap(), 24).unwrap();
        assert!(p.contains(&q) && !q.contains(&p));
        let v6 = Prefix::new("2001:db8::1".parse().unwrap(), 32).unwrap();
        assert_eq!(v6.to_string(), "2001:db8::/32");
        assert!(!p.contains(&v6));
        assert_eq!(
            Prefix::new("::".parse().unwrap(), 129),
            Err(PrefixError::TooLong(129))
        );
    }

    #[test]
    fn as_paths_count_sets_once_and_prepend() {
        let p = AsPath {
            segments: vec![
                AsSegment::Sequence(vec![65001, 65002]),
                AsSegment::Set(vec![1, 2, 3]),
            ],
        };
        assert_eq!(p.path_len(), 3);
        assert_eq!(p.first_as(), Some(65001));
        let q = p.prepend(64512);
        assert_eq!(q.first_as(), Some(64512));
        assert_eq!(q.path_len(), 4);
        assert!(q.contains(3) && !q.contains(4));
    }
}
