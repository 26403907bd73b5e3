//! Next-hop resolution over what the control process pushes to the
//! engine: [`NexthopView`] holds the connected IPv4 subnets of the pushed
//! interfaces, the static IPv4 routes (kept by the route pusher, which
//! also reads them to merge BGP routes under them) and the IPv6 connected
//! subnets of the kernel (the engine's punt TAPs carry the engine's IPv6
//! subnets). [`FibResolver`] answers the RIB's IGP cost over it; the
//! pusher uses [`NexthopView::gateways4`] to turn a BGP next hop into the
//! gateways the engine forwards to (a recursive next hop resolves through
//! a static route to that route's gateways).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use patronus_bgp::rib::NextHopResolver;
use patronus_shm::{RouteEntry, RouteKind};
use tokio::sync::watch;

/// A route's key in the engine's IPv4 table: network and length.
pub type RouteKey = (u32, u8);

/// IGP cost of a next hop on a connected subnet.
pub const CONNECTED_COST: u32 = 0;
/// IGP cost of a next hop reached through a static route.
pub const STATIC_COST: u32 = 1;

fn mask4(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len.min(32)))
    }
}

fn mask6(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len.min(128)))
    }
}

/// What resolution reads.
#[derive(Debug)]
pub struct ViewData {
    /// Pushed interfaces' subnets (network, length).
    pub connected4: Vec<RouteKey>,
    /// Every static route of the pushed organization, compiled.
    pub statics: HashMap<RouteKey, RouteEntry>,
    /// Static routes per prefix length (the lengths a lookup probes).
    static_lens: [u32; 33],
    /// The kernel's connected IPv6 subnets (network, length).
    pub connected6: Vec<(u128, u8)>,
}

impl Default for ViewData {
    fn default() -> Self {
        ViewData {
            connected4: Vec::new(),
            statics: HashMap::new(),
            static_lens: [0; 33],
            connected6: Vec::new(),
        }
    }
}

impl ViewData {
    fn on_connected4(&self, a: u32) -> bool {
        self.connected4
            .iter()
            .any(|&(net, len)| a & mask4(len) == net & mask4(len))
    }

    /// Sets (or removes) the static route of `key`.
    pub fn set_static(&mut self, key: RouteKey, e: Option<RouteEntry>) {
        let len = usize::from(key.1.min(32));
        let had = match e {
            Some(e) => self.statics.insert(key, e).is_some(),
            None => {
                if self.statics.remove(&key).is_none() {
                    return;
                }
                self.static_lens[len] -= 1;
                return;
            }
        };
        if !had {
            self.static_lens[len] += 1;
        }
    }

    /// Replaces every static route.
    pub fn replace_statics(&mut self, statics: HashMap<RouteKey, RouteEntry>) {
        self.static_lens = [0; 33];
        for k in statics.keys() {
            self.static_lens[usize::from(k.1.min(32))] += 1;
        }
        self.statics = statics;
    }

    /// The gateways (on connected subnets) the engine would forward to
    /// for next hop `nh`, and the cost: `nh` itself on a connected subnet;
    /// else the gateways of the longest static route covering it (a
    /// blackhole or tunnel route there: unreachable).
    pub fn gateways4(&self, nh: Ipv4Addr) -> Option<(u32, Vec<u32>)> {
        let a = u32::from(nh);
        if self.on_connected4(a) {
            return Some((CONNECTED_COST, vec![a]));
        }
        for len in (0..=32u8).rev() {
            if self.static_lens[usize::from(len)] == 0 {
                continue;
            }
            let Some(e) = self.statics.get(&(a & mask4(len), len)) else {
                continue;
            };
            if e.kind != RouteKind::Via as u8 {
                return None;
            }
            let gws: Vec<u32> = e.nexthops[..usize::from(e.nexthop_count).min(e.nexthops.len())]
                .iter()
                .copied()
                .filter(|&g| self.on_connected4(g))
                .collect();
            return (!gws.is_empty()).then_some((STATIC_COST, gws));
        }
        None
    }

    fn cost6(&self, nh: Ipv6Addr) -> Option<u32> {
        let a = u128::from(nh);
        self.connected6
            .iter()
            .any(|&(net, len)| a & mask6(len) == net)
            .then_some(CONNECTED_COST)
    }
}

/// The view, shared by the route pusher (writer) and the speaker's
/// resolver (reader), with a version that moves on every change of what
/// resolution depends on.
#[derive(Debug)]
pub struct NexthopView {
    data: RwLock<ViewData>,
    version: watch::Sender<u64>,
}

impl Default for NexthopView {
    fn default() -> Self {
        NexthopView {
            data: RwLock::new(ViewData::default()),
            version: watch::channel(0).0,
        }
    }
}

impl NexthopView {
    pub fn new() -> Arc<NexthopView> {
        Arc::new(NexthopView::default())
    }

    pub fn read(&self) -> RwLockReadGuard<'_, ViewData> {
        self.data.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Write access; call [`NexthopView::changed`] after a change that
    /// may move next hops.
    pub fn write(&self) -> RwLockWriteGuard<'_, ViewData> {
        self.data.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Tells the subscribers (the speaker re-resolves).
    pub fn changed(&self) {
        self.version.send_modify(|v| *v += 1);
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// Replaces the IPv6 connected subnets; true when they changed.
    pub fn set_connected6(&self, mut subnets: Vec<(u128, u8)>) -> bool {
        subnets.sort_unstable();
        subnets.dedup();
        let mut d = self.write();
        if d.connected6 == subnets {
            return false;
        }
        d.connected6 = subnets;
        drop(d);
        self.changed();
        true
    }
}

/// The RIB's resolver over a [`NexthopView`].
#[derive(Debug, Clone)]
pub struct FibResolver(pub Arc<NexthopView>);

impl NextHopResolver for FibResolver {
    fn igp_cost(&self, next_hop: IpAddr) -> Option<u32> {
        let d = self.0.read();
        match next_hop.to_canonical() {
            IpAddr::V4(a) => d.gateways4(a).map(|(c, _)| c),
            IpAddr::V6(a) => d.cost6(a),
        }
    }
}

/// RTF_GATEWAY, RTF_LOCAL of `/proc/net/ipv6_route`'s flags.
const RTF_GATEWAY: u32 = 0x2;
const RTF_LOCAL: u32 = 0x8000_0000;

/// The connected subnets in the text of `/proc/net/ipv6_route`: routes
/// without a gateway, not local, not on `lo`, neither multicast nor
/// link-local (peers on link-local addresses are not supported).
pub fn parse_ipv6_route(text: &str) -> Vec<(u128, u8)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 10 {
            continue;
        }
        let (Ok(net), Ok(len), Ok(flags)) = (
            u128::from_str_radix(f[0], 16),
            u8::from_str_radix(f[1], 16),
            u32::from_str_radix(f[8], 16),
        ) else {
            continue;
        };
        if len > 128 || flags & (RTF_GATEWAY | RTF_LOCAL) != 0 || f[9] == "lo" {
            continue;
        }
        let a = Ipv6Addr::from(net);
        let seg0 = a.segments()[0];
        if a.is_multicast() || seg0 & 0xffc0 == 0xfe80 || len == 0 {
            continue;
        }
        out.push((net & mask6(len), len));
    }
    out
}

/// Reads the namespace's IPv6 connected subnets (none when IPv6 is off).
pub fn read_connected6() -> Vec<(u128, u8)> {
    std::fs::read_to_string("/proc/net/ipv6_route")
        .map(|t| parse_ipv6_route(&t))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use patronus_shm::layout::IFACE_ANY;

    fn via(net: [u8; 4], len: u8, gws: &[[u8; 4]]) -> (RouteKey, RouteEntry) {
        let mut e = RouteEntry::new(u32::from_be_bytes(net), len, RouteKind::Via);
        for g in gws {
            assert!(e.push_nexthop(u32::from_be_bytes(*g), IFACE_ANY));
        }
        ((u32::from_be_bytes(net), len), e)
    }

    #[test]
    fn connected_then_longest_static_then_nothing() {
        let mut d = ViewData {
            connected4: vec![(u32::from_be_bytes([10, 2, 0, 0]), 24)],
            ..Default::default()
        };
        let (k, e) = via([192, 0, 2, 0], 24, &[[10, 2, 0, 7], [10, 2, 0, 8]]);
        d.set_static(k, Some(e));
        let (k, e) = via([192, 0, 2, 128], 25, &[[10, 2, 0, 9]]);
        d.set_static(k, Some(e));
        let (k, _) = via([198, 51, 100, 0], 24, &[]);
        d.set_static(k, Some(RouteEntry::new(k.0, k.1, RouteKind::Blackhole)));
        let g = |a: [u8; 4]| d.gateways4(Ipv4Addr::from(a));
        assert_eq!(
            g([10, 2, 0, 5]),
            Some((0, vec![u32::from_be_bytes([10, 2, 0, 5])]))
        );
        assert_eq!(
            g([192, 0, 2, 1]),
            Some((
                1,
                vec![
                    u32::from_be_bytes([10, 2, 0, 7]),
                    u32::from_be_bytes([10, 2, 0, 8])
                ]
            ))
        );
        assert_eq!(
            g([192, 0, 2, 200]),
            Some((1, vec![u32::from_be_bytes([10, 2, 0, 9])]))
        );
        assert_eq!(g([198, 51, 100, 1]), None, "blackholed");
        assert_eq!(g([203, 0, 113, 1]), None, "no route");
        // Removing the /25 falls back to the /24.
        d.set_static((u32::from_be_bytes([192, 0, 2, 128]), 25), None);
        assert_eq!(
            d.gateways4(Ipv4Addr::new(192, 0, 2, 200))
                .map(|x| x.1.len()),
            Some(2)
        );
    }

    #[test]
    fn proc_ipv6_route_gives_connected_subnets_only() {
        let text = "\
fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001   veth0
20010db8000900000000000000000000 30 00000000000000000000000000000000 00 fd000000000000000000000000000002 00000400 00000001 00000000 00000003   veth0
fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001   veth0
00000000000000000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000002 00000000 80200001       lo
fd000000000000000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000002 00000000 80200001   veth0
ff000000000000000000000000000000 08 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001   veth0
";
        let v = parse_ipv6_route(text);
        assert_eq!(v, vec![(0xfd00u128 << 112, 64)]);
        let view = NexthopView::new();
        assert!(view.set_connected6(v.clone()));
        assert!(!view.set_connected6(v), "unchanged");
        let r = FibResolver(view);
        assert_eq!(r.igp_cost("fd00::2".parse().unwrap()), Some(0));
        assert_eq!(r.igp_cost("fd01::2".parse().unwrap()), None);
    }
}
