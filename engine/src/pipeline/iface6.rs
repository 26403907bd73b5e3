//! IPv6 interfaces of one worker: per port (and VLAN) its link-local
//! address (EUI-64 of the port's MAC), its global addresses, MAC and MTU.
//! Indices are those of [`crate::config::ipv6::ipv6_interfaces`], which the
//! IPv6 FIB's next hops use too.

use std::net::Ipv6Addr;

use crate::config::ipv6::{ipv6_interfaces, link_local, mask6};
use crate::config::EngineConfig;
use crate::ports::LinkInfo;
use crate::wire::icmpv6::solicited_node;

/// One IPv6 interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface6 {
    pub port: u16,
    /// 0 = untagged.
    pub vlan: u16,
    pub mac: [u8; 6],
    /// IPv6 MTU of the link.
    pub mtu: u16,
    pub link_local: Ipv6Addr,
    /// Global addresses and prefix lengths.
    pub addrs: Vec<(Ipv6Addr, u8)>,
}

impl Interface6 {
    /// True when `a` is assigned to this interface (link-local included).
    #[inline]
    pub fn has(&self, a: Ipv6Addr) -> bool {
        a == self.link_local || self.addrs.iter().any(|(x, _)| *x == a)
    }

    /// True when `a` is one of the multicast groups this interface has
    /// joined: all-nodes, all-routers and the solicited-node groups of its
    /// addresses.
    pub fn joined(&self, a: Ipv6Addr) -> bool {
        let s = a.segments();
        if s[0] != 0xff02 {
            return false;
        }
        a == ALL_NODES
            || a == ALL_ROUTERS
            || a == solicited_node(self.link_local)
            || self.addrs.iter().any(|(x, _)| solicited_node(*x) == a)
    }

    /// The source address for a packet to `dst` from this interface: the
    /// link-local one towards link-local (or multicast) destinations, else
    /// the global address sharing the longest prefix with `dst` (the
    /// link-local one when there is none).
    pub fn source_for(&self, dst: Ipv6Addr) -> Ipv6Addr {
        if dst.is_unicast_link_local() || dst.is_multicast() {
            return self.link_local;
        }
        let d = u128::from(dst);
        self.addrs
            .iter()
            .max_by_key(|(a, _)| (u128::from(*a) ^ d).leading_zeros())
            .map_or(self.link_local, |(a, _)| *a)
    }

    /// True when `a` lies on one of this interface's subnets.
    pub fn on_link(&self, a: Ipv6Addr) -> bool {
        a.is_unicast_link_local()
            || self
                .addrs
                .iter()
                .any(|(x, l)| u128::from(*x) & mask6(*l) == u128::from(a) & mask6(*l))
    }
}

/// ff02::1.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// ff02::2.
pub const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);

/// All IPv6 interfaces (empty: IPv6 off).
#[derive(Clone, Debug, Default)]
pub struct Interfaces6 {
    list: Vec<Interface6>,
}

impl Interfaces6 {
    /// The interfaces of `cfg` over ports described by `links`.
    pub fn build(cfg: &EngineConfig, links: &[LinkInfo]) -> Self {
        let list = ipv6_interfaces(cfg)
            .into_iter()
            .map(|s| {
                let link = links[s.port as usize];
                let mtu = cfg.ports[s.port as usize]
                    .mtu
                    .unwrap_or(link.mtu)
                    .min(link.mtu.max(1280));
                Interface6 {
                    port: s.port,
                    vlan: s.vlan,
                    mac: link.mac,
                    mtu,
                    link_local: link_local(link.mac),
                    addrs: s.addrs,
                }
            })
            .collect();
        Interfaces6 { list }
    }

    /// True when IPv6 is on.
    #[inline]
    pub fn enabled(&self) -> bool {
        !self.list.is_empty()
    }

    /// The interface of frames on `port` with `vlan` (0 = untagged).
    #[inline]
    pub fn lookup(&self, port: u16, vlan: u16) -> Option<u16> {
        self.list
            .iter()
            .position(|i| i.port == port && i.vlan == vlan)
            .map(|i| i as u16)
    }

    #[inline]
    pub fn get(&self, idx: u16) -> &Interface6 {
        &self.list[idx as usize]
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Interface6> {
        self.list.iter()
    }

    /// Any global address of ours (a source when the interface has none).
    pub fn any_global(&self) -> Option<Ipv6Addr> {
        self.list
            .iter()
            .flat_map(|i| i.addrs.first())
            .map(|a| a.0)
            .next()
    }
}
