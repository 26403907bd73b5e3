//! L3 interfaces: an address on a port (optionally on a VLAN), with the
//! port's MAC and MTU. Each worker holds its own small copy.

use crate::config::{parse_prefix, EngineConfig, InterfaceConfig, PortConfig};
use crate::ports::LinkInfo;

/// One interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interface {
    /// Port index.
    pub port: u16,
    /// 802.1Q VLAN id, 0 = untagged.
    pub vlan: u16,
    /// Our address (host order) and prefix length.
    pub addr: u32,
    pub prefix_len: u8,
    /// The port's MAC.
    pub mac: [u8; 6],
    /// IP MTU.
    pub mtu: u16,
}

impl Interface {
    /// True when `ip` is on this interface's subnet.
    pub fn on_subnet(&self, ip: u32) -> bool {
        let m = if self.prefix_len == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix_len)
        };
        ip & m == self.addr & m
    }
}

/// All interfaces, indexed as in the configuration.
#[derive(Clone, Debug, Default)]
pub struct Interfaces {
    list: Vec<Interface>,
    /// Per port: (vlan, interface index).
    by_port: Vec<Vec<(u16, u16)>>,
    /// Per port: its MAC.
    port_macs: Vec<[u8; 6]>,
    /// Per port: (its MAC, its untagged interface), for the per-packet fast
    /// path; `u16::MAX` when the port has no untagged interface.
    fast: Vec<([u8; 6], u16)>,
}

impl Interfaces {
    /// Builds the table of the configured interfaces; `links[i]` describes
    /// port `i`.
    pub fn build(cfg: &EngineConfig, links: &[LinkInfo]) -> Self {
        Self::build_from(&cfg.ports, &cfg.interfaces, links)
    }

    /// Builds the table of `list` (validated: known ports, good addresses,
    /// one interface per port and VLAN) over `ports`.
    pub fn build_from(ports: &[PortConfig], list: &[InterfaceConfig], links: &[LinkInfo]) -> Self {
        let mut t = Interfaces {
            list: Vec::with_capacity(list.len()),
            by_port: vec![Vec::new(); ports.len()],
            port_macs: links.iter().map(|l| l.mac).collect(),
            fast: Vec::new(),
        };
        for (i, itf) in list.iter().enumerate() {
            let port = ports
                .iter()
                .position(|p| p.name == itf.port)
                .expect("interfaces validated") as u16;
            let (a, len) = parse_prefix(&itf.address, false).expect("interfaces validated");
            let link = links[port as usize];
            let mtu = ports[port as usize]
                .mtu
                .unwrap_or(link.mtu)
                .min(link.mtu.max(576));
            t.list.push(Interface {
                port,
                vlan: itf.vlan.unwrap_or(0),
                addr: u32::from(a),
                prefix_len: len,
                mac: link.mac,
                mtu,
            });
            t.by_port[port as usize].push((itf.vlan.unwrap_or(0), i as u16));
        }
        t.fast = (0..ports.len() as u16)
            .map(|p| (t.port_macs[p as usize], t.lookup(p, 0).unwrap_or(u16::MAX)))
            .collect();
        t
    }

    /// A port's MAC and its untagged interface (`u16::MAX`: none), in one
    /// read for the per-packet fast path.
    #[inline]
    pub fn untagged(&self, port: u16) -> Option<([u8; 6], u16)> {
        self.fast.get(port as usize).copied()
    }

    /// The interface a frame on `port` with `vlan` (0 = untagged) belongs to.
    #[inline]
    pub fn lookup(&self, port: u16, vlan: u16) -> Option<u16> {
        self.by_port
            .get(port as usize)?
            .iter()
            .find(|(v, _)| *v == vlan)
            .map(|(_, i)| *i)
    }

    /// Interface by index.
    #[inline]
    pub fn get(&self, idx: u16) -> &Interface {
        &self.list[idx as usize]
    }

    /// MAC of a port.
    #[inline]
    pub fn port_mac(&self, port: u16) -> [u8; 6] {
        self.port_macs[port as usize]
    }

    /// Number of interfaces.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// All interfaces.
    pub fn iter(&self) -> impl Iterator<Item = &Interface> {
        self.list.iter()
    }
}
