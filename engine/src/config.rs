//! The engine's TOML configuration: parsing, defaults and validation.
//!
//! Parsing rejects unknown keys and wrong types (serde names the key);
//! [`EngineConfig::validate`] then checks what types cannot express
//! (references between sections, driver-specific keys, address ranges) and
//! names the offending key in its error, e.g. `route[2].via: ...`.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

mod classify;
mod dpdk;
pub mod ipv6;
mod lb;
mod nat;
mod punt;
pub mod wan;
mod wireguard;
pub use classify::{ClassifySection, IdleTimeouts};
pub use dpdk::DpdkSection;
pub use lb::{BackendSection, LbSection, VipSection};
pub use nat::{FilteringName, ForwardSection, NatSection, OneToOneSection, TimeoutsSection};
pub use punt::PuntSection;
pub use wireguard::{config_tunnels, tunnel_index, wg_plan, WgPeerSection, WireguardSection};

/// A configuration error that names the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Parse(String),
    #[error("{key}: {msg}")]
    Invalid { key: String, msg: String },
}

fn invalid(key: impl Into<String>, msg: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        msg: msg.into(),
    }
}

/// How idle workers wait.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PollMode {
    /// Spin without pause, like DPDK (lowest latency, one full core each).
    Busy,
    /// Spin while busy; back off (pause, then short sleeps) when idle.
    #[default]
    Adaptive,
}

/// Top-level configuration file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    #[serde(default)]
    pub engine: EngineSection,
    #[serde(default, rename = "port")]
    pub ports: Vec<PortConfig>,
    #[serde(default, rename = "interface")]
    pub interfaces: Vec<InterfaceConfig>,
    #[serde(default, rename = "route")]
    pub routes: Vec<RouteConfig>,
    #[serde(default, rename = "neighbor")]
    pub neighbors: Vec<NeighborConfig>,
    #[serde(default)]
    pub arp: ArpSection,
    #[serde(default)]
    pub icmp: IcmpSection,
    /// Link to the control process; absent = the engine runs on its file alone.
    pub control: Option<ControlSection>,
    /// DPDK's EAL, for ports with `driver = "dpdk"`.
    pub dpdk: Option<DpdkSection>,
    /// NAT44 on one outside interface.
    pub nat: Option<NatSection>,
    /// WireGuard tunnels the engine terminates.
    #[serde(default)]
    pub wireguard: Vec<WireguardSection>,
    /// Flow table and application classification.
    pub classify: Option<ClassifySection>,
    /// L4 load balancer: VIPs and their backends.
    pub lb: Option<LbSection>,
    /// Punt path: TAP interfaces mirroring the ports.
    pub punt: Option<PuntSection>,
    /// WAN paths to other sites, probing and steering policies.
    pub wan: Option<wan::WanSection>,
    /// The IPv6 entries of `interface`, `route` and `neighbor`, moved out
    /// of those lists by [`EngineConfig::parse`] (see [`ipv6`]).
    #[serde(skip)]
    pub ipv6: ipv6::Ipv6Config,
}

/// `[control]`: where the control process publishes table generations.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlSection {
    /// Runtime directory shared with patronus-control (e.g. "/run/patronus").
    pub runtime_dir: PathBuf,
}

/// `[engine]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineSection {
    /// Worker threads (each pinned to a core).
    #[serde(default = "default_workers")]
    pub workers: usize,
    #[serde(default)]
    pub poll: PollMode,
    /// Cores to pin workers to, in order; default: cores 0..workers.
    #[serde(default)]
    pub cores: Vec<usize>,
    /// Packet buffers per worker.
    #[serde(default = "default_pool_size")]
    pub pool_size: u32,
    /// Print counters every N seconds (0 = only at exit and on SIGUSR1).
    #[serde(default)]
    pub stats_interval_secs: u64,
    /// tbl8 groups of the LPM table (each holds the /25–/32 routes of one /24).
    #[serde(default = "default_tbl8_groups")]
    pub fib_tbl8_groups: u32,
}

fn default_workers() -> usize {
    1
}
fn default_pool_size() -> u32 {
    16384
}
/// Enough for a full Internet table (≈ 27 k /24s carry longer prefixes in a
/// 1 M-route table); 32 MiB, touched only as groups are used.
fn default_tbl8_groups() -> u32 {
    32768
}

impl Default for EngineSection {
    fn default() -> Self {
        EngineSection {
            workers: default_workers(),
            poll: PollMode::default(),
            cores: Vec::new(),
            pool_size: default_pool_size(),
            stats_interval_secs: 0,
            fib_tbl8_groups: default_tbl8_groups(),
        }
    }
}

/// Port driver.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PortDriver {
    Afpacket,
    Afxdp,
    Mem,
    Pcap,
    /// A DPDK ethdev (needs the cargo feature `dpdk`).
    Dpdk,
}

/// `[[port]]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortConfig {
    pub name: String,
    pub driver: PortDriver,
    /// afpacket: the Linux interface.
    pub iface: Option<String>,
    /// MAC address override ("02:00:00:00:00:01"); default: the interface's
    /// (afpacket) or a locally administered one derived from the port index.
    pub mac: Option<String>,
    /// IP MTU; default 1500.
    pub mtu: Option<u16>,
    /// afpacket: what the kernel's own stack does with frames arriving on
    /// the interface: "drop" (default: a tc ingress filter drops them after
    /// the engine's socket saw them) or "pass" (the kernel processes them too).
    pub kernel_ingress: Option<KernelIngress>,
    /// afpacket: RX ring layout: "v2" (default: frames are seen as soon as
    /// the kernel writes them) or "v3" (blocks handed over when full or
    /// after 1 ms, fewer cache misses at high rates, up to 1 ms more
    /// latency per crossing under light traffic).
    pub rx_ring: Option<RxRingKind>,
    /// afpacket: RX ring block size in bytes (power of two, ≥ 4096; v3 only).
    pub ring_block_size: Option<u32>,
    /// afpacket: RX ring blocks.
    pub ring_blocks: Option<u32>,
    /// afxdp: the `[port.afxdp]` options (attach mode, bind mode, what the
    /// kernel keeps); absent = defaults.
    pub afxdp: Option<AfXdpConfig>,
    /// pcap: capture to read (pcap or pcapng).
    pub input: Option<PathBuf>,
    /// pcap: file that receives every frame sent out of the port.
    pub output: Option<PathBuf>,
    /// mem: the synthetic generator; absent = the port only sinks.
    pub generator: Option<GeneratorConfig>,
    /// dpdk: the DPDK device, a vdev name from `dpdk.vdevs` ("net_null0")
    /// or a PCI address from `dpdk.pci_allow`.
    pub device: Option<String>,
}

/// The afpacket RX ring's layout (`PACKET_VERSION`).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RxRingKind {
    /// TPACKET_V2: one slot per frame, handed over frame by frame.
    #[default]
    V2,
    /// TPACKET_V3: frames packed into blocks, handed over block by block.
    V3,
}

/// What the kernel does with frames on an interface the engine owns.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum KernelIngress {
    Drop,
    Pass,
}

/// How the afxdp driver attaches its XDP program.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum XdpAttachMode {
    /// Native (driver) mode, else generic (skb) mode if the driver has none.
    #[default]
    Auto,
    /// Native mode only.
    Native,
    /// Generic mode only (any interface, slower).
    Generic,
}

/// How the afxdp driver binds its sockets.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum XskBindMode {
    /// Zero-copy where the driver allows it, else copy.
    #[default]
    Auto,
    /// Zero-copy or fail.
    Zerocopy,
    /// Copy mode.
    Copy,
}

/// `[port.afxdp]`: options of an `afxdp` port.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AfXdpConfig {
    #[serde(default)]
    pub xdp_mode: XdpAttachMode,
    #[serde(default)]
    pub bind: XskBindMode,
    /// EtherTypes the XDP program hands to the kernel's stack instead of the
    /// engine (e.g. 0x88cc for LLDP); default none: every frame is the engine's.
    #[serde(default)]
    pub kernel_ethertypes: Vec<u16>,
    /// IPv4 protocol numbers handed to the kernel (e.g. 89 for OSPF).
    #[serde(default)]
    pub kernel_ip_protocols: Vec<u8>,
    /// Entries of each AF_XDP ring (power of two, 64..=16384; default 2048).
    /// Each queue's UMEM holds twice as many 4 KiB frames.
    pub ring_size: Option<u32>,
}

/// How 5-tuples of generated traffic vary.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FlowPattern {
    /// Cycle through `flows` fixed 5-tuples.
    #[default]
    Fixed,
    /// Draw each packet's flow at random among `flows`.
    Random,
}

/// `[port.generator]` of a `mem` port.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneratorConfig {
    /// Distinct UDP flows.
    #[serde(default = "default_flows")]
    pub flows: u32,
    #[serde(default)]
    pub pattern: FlowPattern,
    /// Frame sizes in bytes (without FCS), used in turn; default [64].
    #[serde(default = "default_sizes")]
    pub sizes: Vec<u16>,
    /// Packets per second per worker (0 = as fast as possible).
    #[serde(default)]
    pub rate_pps: u64,
    /// Stop after this many packets per worker (0 = never).
    #[serde(default)]
    pub count: u64,
    /// Source addresses are taken from this prefix.
    pub src: String,
    /// Destination addresses are taken from this prefix.
    pub dst: String,
    /// Destination MAC of generated frames (the engine port's own MAC by default).
    pub dst_mac: Option<String>,
    /// Source MAC of generated frames.
    pub src_mac: Option<String>,
    #[serde(default = "default_src_port")]
    pub src_port: u16,
    #[serde(default = "default_dst_port")]
    pub dst_port: u16,
    /// Seed of the flow choice (pattern = "random").
    #[serde(default)]
    pub seed: u64,
}

fn default_flows() -> u32 {
    1
}
fn default_sizes() -> Vec<u16> {
    vec![64]
}
fn default_src_port() -> u16 {
    1024
}
fn default_dst_port() -> u16 {
    9
}

/// `[[interface]]`: an L3 address on a port (optionally on a VLAN).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterfaceConfig {
    pub port: String,
    /// "A.B.C.D/LEN", or an IPv6 "ADDR/LEN" (moved to [`ipv6::Ipv6Config`]
    /// by [`EngineConfig::parse`]; a port may carry one IPv4 and several IPv6).
    pub address: String,
    /// 802.1Q VLAN id (1–4094); absent = untagged.
    pub vlan: Option<u16>,
}

/// Where a route sends packets.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum ViaConfig {
    One(String),
    Many(Vec<String>),
}

/// `[[route]]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// "A.B.C.D/LEN", or IPv6 "ADDR/LEN" with IPv6 `via`s (a link-local one
    /// as "fe80::1%PORT"); see [`ipv6`].
    pub prefix: String,
    /// Next hop(s); several = ECMP by flow hash.
    pub via: Option<ViaConfig>,
    /// Drop matching packets (counted as blackhole).
    #[serde(default)]
    pub blackhole: bool,
    /// Into this `[[wireguard]]` tunnel (its peers' allowed IPs pick the peer).
    pub tunnel: Option<String>,
}

/// `[[neighbor]]`: a permanent ARP entry (never expires, never probed).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NeighborConfig {
    /// Port the neighbor is reached on.
    pub port: String,
    /// Its IPv4 address (on a subnet of one of the port's interfaces), or
    /// an IPv6 one (a permanent ND entry; see [`ipv6`]).
    pub address: String,
    /// Its MAC address.
    pub mac: String,
    /// VLAN of the interface (absent = untagged).
    pub vlan: Option<u16>,
}

/// `[arp]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArpSection {
    /// Seconds a resolved entry stays usable before it is refreshed.
    #[serde(default = "default_arp_reachable")]
    pub reachable_secs: u64,
    /// Seconds to wait for a reply before dropping queued packets.
    #[serde(default = "default_arp_resolve_timeout_ms")]
    pub resolve_timeout_ms: u64,
    /// Requests sent before giving up.
    #[serde(default = "default_arp_retries")]
    pub retries: u32,
    /// Packets held per worker while waiting for resolution.
    #[serde(default = "default_arp_queue")]
    pub queue_len: usize,
}

fn default_arp_reachable() -> u64 {
    300
}
fn default_arp_resolve_timeout_ms() -> u64 {
    1000
}
fn default_arp_retries() -> u32 {
    3
}
fn default_arp_queue() -> usize {
    256
}

impl Default for ArpSection {
    fn default() -> Self {
        ArpSection {
            reachable_secs: default_arp_reachable(),
            resolve_timeout_ms: default_arp_resolve_timeout_ms(),
            retries: default_arp_retries(),
            queue_len: default_arp_queue(),
        }
    }
}

/// `[icmp]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IcmpSection {
    /// ICMP errors per second per worker (token bucket).
    #[serde(default = "default_icmp_rate")]
    pub errors_per_sec: u32,
    /// Burst of the token bucket.
    #[serde(default = "default_icmp_burst")]
    pub burst: u32,
}

fn default_icmp_rate() -> u32 {
    100
}
fn default_icmp_burst() -> u32 {
    50
}

impl Default for IcmpSection {
    fn default() -> Self {
        IcmpSection {
            errors_per_sec: default_icmp_rate(),
            burst: default_icmp_burst(),
        }
    }
}

/// Parses "A.B.C.D/LEN" into (network address, length); the host bits must be zero
/// when `strict`.
pub fn parse_prefix(s: &str, strict: bool) -> Result<(Ipv4Addr, u8), String> {
    let (a, l) = s
        .split_once('/')
        .ok_or_else(|| format!("{s:?} is not A.B.C.D/LEN"))?;
    let addr: Ipv4Addr = a
        .parse()
        .map_err(|_| format!("{a:?} is not an IPv4 address"))?;
    let len: u8 = l
        .parse()
        .ok()
        .filter(|l| *l <= 32)
        .ok_or_else(|| format!("prefix length {l:?} is not 0..=32"))?;
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    if strict && u32::from(addr) & !mask != 0 {
        return Err(format!(
            "{s} has host bits set (did you mean {}/{len}?)",
            Ipv4Addr::from(u32::from(addr) & mask)
        ));
    }
    Ok((addr, len))
}

/// Parses "aa:bb:cc:dd:ee:ff".
pub fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let mut out = [0u8; 6];
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return Err(format!("{s:?} is not a MAC address (aa:bb:cc:dd:ee:ff)"));
    }
    for (o, p) in out.iter_mut().zip(parts) {
        *o = u8::from_str_radix(p, 16).map_err(|_| format!("{s:?} is not a MAC address"))?;
    }
    Ok(out)
}

impl EngineConfig {
    /// Reads, parses and validates a file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Parses and validates TOML text.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let mut cfg: EngineConfig =
            toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        cfg.validate()?;
        let v6 = ipv6::validate(&cfg)?;
        ipv6::split(&mut cfg, v6);
        Ok(cfg)
    }

    /// Index of a port by name.
    pub fn port_index(&self, name: &str) -> Option<usize> {
        self.ports.iter().position(|p| p.name == name)
    }

    /// Checks everything types cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let e = &self.engine;
        if e.workers == 0 || e.workers > 256 {
            return Err(invalid("engine.workers", "must be 1..=256"));
        }
        let ncores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        if !e.cores.is_empty() && e.cores.len() != e.workers {
            return Err(invalid(
                "engine.cores",
                format!("lists {} cores for {} workers", e.cores.len(), e.workers),
            ));
        }
        if let Some(c) = e.cores.iter().find(|c| **c >= ncores) {
            return Err(invalid(
                "engine.cores",
                format!("core {c} does not exist (this machine has {ncores})"),
            ));
        }
        if e.pool_size < 1024 {
            return Err(invalid("engine.pool_size", "must be at least 1024 buffers"));
        }
        if e.fib_tbl8_groups == 0 || e.fib_tbl8_groups > (1 << 24) {
            return Err(invalid("engine.fib_tbl8_groups", "must be 1..=16777216"));
        }
        if self.ports.is_empty() {
            return Err(invalid("port", "at least one [[port]] is required"));
        }
        if self.ports.len() > 64 {
            return Err(invalid("port", "at most 64 ports"));
        }
        let mut names = HashSet::new();
        for (i, p) in self.ports.iter().enumerate() {
            let key = |k: &str| format!("port[{i}].{k}");
            if p.name.is_empty() || p.name.len() > 32 {
                return Err(invalid(key("name"), "must be 1..=32 characters"));
            }
            if !names.insert(p.name.as_str()) {
                return Err(invalid(
                    key("name"),
                    format!("duplicate port name {:?}", p.name),
                ));
            }
            if let Some(m) = &p.mac {
                parse_mac(m).map_err(|msg| invalid(key("mac"), msg))?;
            }
            if let Some(mtu) = p.mtu {
                if !(576..=crate::buffer::BUF_DATA_ROOM as u16 - 18).contains(&mtu) {
                    return Err(invalid(
                        key("mtu"),
                        format!("must be 576..={}", crate::buffer::BUF_DATA_ROOM - 18),
                    ));
                }
            }
            let only = |k: &str, set: bool, drv: &str| -> Result<(), ConfigError> {
                if set {
                    Err(invalid(
                        key(k),
                        format!("only valid with driver = \"{drv}\""),
                    ))
                } else {
                    Ok(())
                }
            };
            if p.afxdp.is_some() && p.driver != PortDriver::Afxdp {
                return Err(invalid(key("afxdp"), "only valid with driver = \"afxdp\""));
            }
            match p.driver {
                PortDriver::Dpdk => {} // checked in dpdk::validate
                PortDriver::Afxdp => {
                    match &p.iface {
                        None => {
                            return Err(invalid(key("iface"), "required with driver = \"afxdp\""))
                        }
                        Some(n) if n.is_empty() || n.len() > 15 => {
                            return Err(invalid(
                                key("iface"),
                                "Linux interface names are 1..=15 characters",
                            ))
                        }
                        _ => {}
                    }
                    if let Some(x) = &p.afxdp {
                        if x.kernel_ethertypes.len() + x.kernel_ip_protocols.len() > 32 {
                            return Err(invalid(
                                key("afxdp.kernel_ethertypes"),
                                "at most 32 EtherTypes and IP protocols in all",
                            ));
                        }
                        if let Some(r) = x.ring_size {
                            if !r.is_power_of_two() || !(64..=16384).contains(&r) {
                                return Err(invalid(
                                    key("afxdp.ring_size"),
                                    "must be a power of two in 64..=16384",
                                ));
                            }
                        }
                        if let Some(t) = x.kernel_ethertypes.iter().find(|t| **t < 0x0600) {
                            return Err(invalid(
                                key("afxdp.kernel_ethertypes"),
                                format!("{t:#06x} is a length, not an EtherType (≥ 0x0600)"),
                            ));
                        }
                    }
                    only("kernel_ingress", p.kernel_ingress.is_some(), "afpacket")?;
                    only("rx_ring", p.rx_ring.is_some(), "afpacket")?;
                    only("ring_block_size", p.ring_block_size.is_some(), "afpacket")?;
                    only("ring_blocks", p.ring_blocks.is_some(), "afpacket")?;
                    only("input", p.input.is_some(), "pcap")?;
                    only("output", p.output.is_some(), "pcap")?;
                    only("generator", p.generator.is_some(), "mem")?;
                }
                PortDriver::Afpacket => {
                    match &p.iface {
                        None => {
                            return Err(invalid(
                                key("iface"),
                                "required with driver = \"afpacket\"",
                            ))
                        }
                        Some(n) if n.is_empty() || n.len() > 15 => {
                            return Err(invalid(
                                key("iface"),
                                "Linux interface names are 1..=15 characters",
                            ))
                        }
                        _ => {}
                    }
                    if let Some(b) = p.ring_block_size {
                        if !b.is_power_of_two() || b < 4096 {
                            return Err(invalid(
                                key("ring_block_size"),
                                "must be a power of two ≥ 4096",
                            ));
                        }
                    }
                    if let Some(n) = p.ring_blocks {
                        if n == 0 || n > 4096 {
                            return Err(invalid(key("ring_blocks"), "must be 1..=4096"));
                        }
                    }
                    only("input", p.input.is_some(), "pcap")?;
                    only("output", p.output.is_some(), "pcap")?;
                    only("generator", p.generator.is_some(), "mem")?;
                }
                PortDriver::Pcap | PortDriver::Mem if p.kernel_ingress.is_some() => {
                    return Err(invalid(
                        key("kernel_ingress"),
                        "only valid with driver = \"afpacket\"",
                    ));
                }
                PortDriver::Pcap => {
                    if p.input.is_none() && p.output.is_none() {
                        return Err(invalid(
                            key("input"),
                            "a pcap port needs input, output or both",
                        ));
                    }
                    only("iface", p.iface.is_some(), "afpacket")?;
                    only("generator", p.generator.is_some(), "mem")?;
                }
                PortDriver::Mem => {
                    only("iface", p.iface.is_some(), "afpacket")?;
                    only("input", p.input.is_some(), "pcap")?;
                    only("output", p.output.is_some(), "pcap")?;
                    if let Some(g) = &p.generator {
                        let gk = |k: &str| format!("port[{i}].generator.{k}");
                        if g.flows == 0 || g.flows > 1 << 20 {
                            return Err(invalid(gk("flows"), "must be 1..=1048576"));
                        }
                        if g.sizes.is_empty() {
                            return Err(invalid(gk("sizes"), "needs at least one size"));
                        }
                        if let Some(s) = g
                            .sizes
                            .iter()
                            .find(|s| **s < 60 || **s as usize > crate::buffer::BUF_DATA_ROOM)
                        {
                            return Err(invalid(
                                gk("sizes"),
                                format!("{s} is not 60..={}", crate::buffer::BUF_DATA_ROOM),
                            ));
                        }
                        parse_prefix(&g.src, false).map_err(|m| invalid(gk("src"), m))?;
                        parse_prefix(&g.dst, false).map_err(|m| invalid(gk("dst"), m))?;
                        if let Some(m) = &g.dst_mac {
                            parse_mac(m).map_err(|msg| invalid(gk("dst_mac"), msg))?;
                        }
                        if let Some(m) = &g.src_mac {
                            parse_mac(m).map_err(|msg| invalid(gk("src_mac"), msg))?;
                        }
                    }
                }
            }
        }
        dpdk::validate(self)?;
        ipv6::validate(self)?;
        let mut seen_if = HashSet::new();
        let mut ifaddrs: Vec<(Ipv4Addr, u8)> = Vec::new();
        for (i, itf) in self.interfaces.iter().enumerate() {
            if ipv6::is_v6(&itf.address) {
                continue;
            }
            let key = |k: &str| format!("interface[{i}].{k}");
            if self.port_index(&itf.port).is_none() {
                return Err(invalid(
                    key("port"),
                    format!("no [[port]] named {:?}", itf.port),
                ));
            }
            let (addr, len) =
                parse_prefix(&itf.address, false).map_err(|m| invalid(key("address"), m))?;
            if len == 0 || len > 31 && len != 32 {
                return Err(invalid(key("address"), "prefix length must be 1..=32"));
            }
            if addr.is_unspecified()
                || addr.is_multicast()
                || addr.is_broadcast()
                || addr.is_loopback()
            {
                return Err(invalid(
                    key("address"),
                    format!("{addr} cannot be an interface address"),
                ));
            }
            if let Some(v) = itf.vlan {
                if !(1..=4094).contains(&v) {
                    return Err(invalid(key("vlan"), "must be 1..=4094"));
                }
            }
            if !seen_if.insert((itf.port.clone(), itf.vlan.unwrap_or(0))) {
                return Err(invalid(
                    key("port"),
                    "a port/VLAN pair can carry one address in this version",
                ));
            }
            if ifaddrs.iter().any(|(a, _)| *a == addr) {
                return Err(invalid(
                    key("address"),
                    format!("{addr} is already assigned"),
                ));
            }
            ifaddrs.push((addr, len));
        }
        for (i, r) in self.routes.iter().enumerate() {
            if ipv6::is_v6(&r.prefix) {
                continue;
            }
            let key = |k: &str| format!("route[{i}].{k}");
            parse_prefix(&r.prefix, true).map_err(|m| invalid(key("prefix"), m))?;
            let vias: Vec<&String> = match &r.via {
                None => Vec::new(),
                Some(ViaConfig::One(v)) => vec![v],
                Some(ViaConfig::Many(v)) => v.iter().collect(),
            };
            match (r.blackhole, vias.is_empty()) {
                (true, false) => {
                    return Err(invalid(key("via"), "a blackhole route has no next hop"))
                }
                (false, true) if r.tunnel.is_none() => {
                    return Err(invalid(
                        key("via"),
                        "required unless blackhole = true or tunnel = \"NAME\"",
                    ))
                }
                _ => {}
            }
            if vias.len() > 16 {
                return Err(invalid(key("via"), "at most 16 ECMP next hops"));
            }
            for v in vias {
                let nh: Ipv4Addr = v
                    .parse()
                    .map_err(|_| invalid(key("via"), format!("{v:?} is not an IPv4 address")))?;
                let connected = ifaddrs.iter().any(|(a, l)| {
                    let m = if *l == 0 { 0 } else { u32::MAX << (32 - l) };
                    u32::from(*a) & m == u32::from(nh) & m
                });
                if !connected {
                    return Err(invalid(
                        key("via"),
                        format!("next hop {nh} is not on any interface's subnet"),
                    ));
                }
            }
        }
        for (i, n) in self.neighbors.iter().enumerate() {
            if ipv6::is_v6(&n.address) {
                continue;
            }
            let key = |k: &str| format!("neighbor[{i}].{k}");
            if self.port_index(&n.port).is_none() {
                return Err(invalid(
                    key("port"),
                    format!("no [[port]] named {:?}", n.port),
                ));
            }
            let a: Ipv4Addr = n.address.parse().map_err(|_| {
                invalid(
                    key("address"),
                    format!("{:?} is not an IPv4 address", n.address),
                )
            })?;
            parse_mac(&n.mac).map_err(|m| invalid(key("mac"), m))?;
            let on_subnet = self.interfaces.iter().any(|itf| {
                itf.port == n.port
                    && itf.vlan == n.vlan
                    && parse_prefix(&itf.address, false)
                        .map(|(ia, l)| {
                            let m = if l == 0 { 0 } else { u32::MAX << (32 - l) };
                            u32::from(ia) & m == u32::from(a) & m
                        })
                        .unwrap_or(false)
            });
            if !on_subnet {
                return Err(invalid(
                    key("address"),
                    format!("{a} is not on a subnet of port {:?}", n.port),
                ));
            }
        }
        if self.arp.queue_len == 0 || self.arp.queue_len > 65536 {
            return Err(invalid("arp.queue_len", "must be 1..=65536"));
        }
        if self.arp.retries == 0 {
            return Err(invalid("arp.retries", "must be at least 1"));
        }
        if self.arp.resolve_timeout_ms == 0 {
            return Err(invalid("arp.resolve_timeout_ms", "must be positive"));
        }
        nat::validate(self)?;
        if let Some(c) = &self.classify {
            c.validate()?;
        }
        wireguard::validate(self)?;
        lb::validate(self)?;
        punt::validate(self)?;
        wan::validate(self)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[engine]
workers = 1
poll = "adaptive"
[[port]]
name = "lan0"
driver = "afpacket"
iface = "veth-lan"
[[port]]
name = "wan0"
driver = "afpacket"
iface = "veth-wan"
[[interface]]
port = "lan0"
address = "10.1.0.1/24"
[[interface]]
port = "wan0"
address = "10.2.0.1/24"
[[route]]
prefix = "0.0.0.0/0"
via = "10.2.0.254"
"#;

    fn err(text: &str) -> String {
        EngineConfig::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn example_config_parses() {
        let c = EngineConfig::parse(GOOD).unwrap();
        assert_eq!(c.ports.len(), 2);
        assert_eq!(c.engine.poll, PollMode::Adaptive);
    }

    #[test]
    fn unknown_key_is_named() {
        let e = err(&GOOD.replace("workers = 1", "workerz = 1"));
        assert!(e.contains("workerz"), "{e}");
    }

    #[test]
    fn bad_route_is_named() {
        let e = err(&GOOD.replace("0.0.0.0/0", "10.0.0.1/8"));
        assert!(e.starts_with("route[0].prefix"), "{e}");
        let e = err(&GOOD.replace("10.2.0.254", "192.168.9.9"));
        assert!(
            e.starts_with("route[0].via") && e.contains("not on any interface"),
            "{e}"
        );
    }

    #[test]
    fn missing_iface_and_unknown_port() {
        let e = err(&GOOD.replace("iface = \"veth-lan\"", ""));
        assert!(e.starts_with("port[0].iface"), "{e}");
        let e = err(&GOOD.replace("port = \"lan0\"", "port = \"lan9\""));
        assert!(e.starts_with("interface[0].port"), "{e}");
    }

    #[test]
    fn wrong_type_is_named() {
        let e = err(&GOOD.replace("workers = 1", "workers = \"one\""));
        assert!(e.contains("workers"), "{e}");
        let e = err(&GOOD.replace("poll = \"adaptive\"", "poll = \"lazy\""));
        assert!(e.contains("poll") || e.contains("lazy"), "{e}");
    }

    #[test]
    fn prefixes() {
        assert_eq!(parse_prefix("10.0.0.0/8", true).unwrap().1, 8);
        assert!(parse_prefix("10.0.0.0/33", true).is_err());
        assert!(parse_prefix("10.0.0.0", true).is_err());
        assert!(parse_prefix("10.0.0.1/8", true).is_err());
        assert!(parse_prefix("10.0.0.1/8", false).is_ok());
        assert_eq!(parse_mac("02:00:00:00:00:0a").unwrap()[5], 10);
        assert!(parse_mac("02:00:00:00:00").is_err());
    }
}
