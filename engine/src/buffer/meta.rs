//! Per-packet metadata carried beside the buffer through the pipeline.

use crate::counters::DropReason;

/// What the pipeline decided for a packet so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Disposition {
    /// Not decided yet: the next stage looks at it.
    #[default]
    Continue,
    /// Send out of the port with this index (the frame is complete).
    Tx(u16),
    /// Drop and count under this reason.
    Drop(DropReason),
    /// Handled entirely by a stage (e.g. an ARP reply learnt): free it
    /// without counting a drop.
    Consumed,
    /// Addressed to one of our own addresses: local delivery decides.
    Local,
    /// Next hop not resolved yet: hold in the ARP queue under this
    /// neighbor-table slot.
    AwaitArp(u32),
    /// Belongs to another worker (NAT session owner): hand it, unchanged
    /// since it was received, to worker `n`.
    Handoff(u16),
    /// Into WireGuard tunnel `n` (peer in `next_hop`), TTL decremented.
    Encap(u16),
    /// An IPv6 packet (`rx_iface` = its IPv6 interface): the IPv4 stages
    /// pass it by and the IPv6 path takes it at dispatch.
    Ipv6,
}

/// Metadata a stage reads or writes; reset when a buffer is allocated.
#[derive(Clone, Copy, Debug, Default)]
pub struct PacketMeta {
    /// Index of the port the packet came in on.
    pub rx_port: u16,
    /// Offset of the L3 header in the data (after Ethernet and VLAN tags).
    pub l3_offset: u16,
    /// 802.1Q VLAN id of the frame as received (0 = untagged).
    pub vlan: u16,
    /// Index of the interface (port + VLAN) the packet arrived on.
    pub rx_iface: u16,
    /// Flow hash (symmetric in the 5-tuple) for ECMP and fan-out.
    pub flow_hash: u32,
    /// Index of the egress interface chosen by the route lookup.
    pub tx_iface: u16,
    /// Next hop (host-order IPv4) to resolve on the egress interface.
    pub next_hop: u32,
    /// Set for packets the engine built itself (no TTL decrement).
    pub local_origin: bool,
    /// The IPv4 header already passed `ipv4_input`'s checks (the Ethernet
    /// stage's fast path did them while the header was at hand).
    pub l3_checked: bool,
    /// Came from another worker through the handoff rings (must not be
    /// handed on again).
    pub handed_off: bool,
    /// Translated or encapsulated by the load balancer: NAT leaves it alone.
    pub lb_done: bool,
    /// The WAN policy steering chose for it, plus one (0: not steered).
    pub wan_policy: u8,
    /// The pipeline's decision.
    pub disposition: Disposition,
}
