//! Keys of the NAT tables: the translated protocols, endpoints (address +
//! port or ICMP query id) and the hashes the open-addressing tables use.

use std::net::{Ipv4Addr, SocketAddrV4};

use crate::wire::ipv4::{PROTO_ICMP, PROTO_TCP, PROTO_UDP};

/// A protocol NAT translates ports (or query ids) for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Proto {
    /// ICMP query messages (echo); the "port" is the query identifier.
    Icmp = PROTO_ICMP,
    Tcp = PROTO_TCP,
    Udp = PROTO_UDP,
}

impl Proto {
    /// Number of protocols (per-protocol port spaces).
    pub const COUNT: usize = 3;

    /// From the IPv4 protocol number.
    #[inline]
    pub fn from_ip(proto: u8) -> Option<Proto> {
        match proto {
            PROTO_TCP => Some(Proto::Tcp),
            PROTO_UDP => Some(Proto::Udp),
            PROTO_ICMP => Some(Proto::Icmp),
            _ => None,
        }
    }

    /// Dense index 0..COUNT (port-space tables).
    #[inline]
    pub fn index(self) -> usize {
        match self {
            Proto::Icmp => 0,
            Proto::Tcp => 1,
            Proto::Udp => 2,
        }
    }

    /// Lower-case name for listings and errors.
    pub fn name(self) -> &'static str {
        match self {
            Proto::Icmp => "icmp",
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// An address and a port (or ICMP query id; 0 for the remote side of an
/// ICMP query). The address is kept as a host-order `u32`, as it is compared
/// and hashed on every packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    pub addr: u32,
    pub port: u16,
}

impl Endpoint {
    #[inline]
    pub const fn new(addr: u32, port: u16) -> Self {
        Self { addr, port }
    }

    pub fn from_socket(s: SocketAddrV4) -> Self {
        Self::new(u32::from(*s.ip()), s.port())
    }

    pub fn socket(self) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::from(self.addr), self.port)
    }
}

/// 64 -> 32 bit mix (murmur3's finaliser): cheap and spreads every input
/// bit, so linear probing sees few clusters.
#[inline]
fn mix(x: u64) -> u32 {
    let x = (x ^ (x >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    let x = (x ^ (x >> 33)).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    (x ^ (x >> 33)) as u32
}

/// Hash of a session key: one local endpoint (inside or outside), the remote
/// endpoint and the protocol.
#[inline]
pub fn session_hash(local: Endpoint, remote: Endpoint, proto: Proto) -> u32 {
    let a = (u64::from(local.addr) << 32) | u64::from(remote.addr);
    let b = (u64::from(local.port) << 32) | (u64::from(remote.port) << 8) | proto as u64;
    mix(a ^ b.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// Hash of an endpoint-and-protocol key (mappings).
#[inline]
pub fn endpoint_hash(ep: Endpoint, proto: Proto) -> u32 {
    mix((u64::from(ep.addr) << 32) | (u64::from(ep.port) << 8) | proto as u64)
}

/// Hash of an address alone (per-host counts, pool address choice, inside
/// worker choice).
#[inline]
pub fn addr_hash(addr: u32) -> u32 {
    mix(u64::from(addr) | (0x5a << 40))
}
