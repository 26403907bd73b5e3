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
    /// A stage kept the packet (e.g. queued awaiting ARP); nothing to do.
    Consumed,
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
    /// Next-hop adjacency chosen by the route lookup.
    pub adjacency: u32,
    /// The pipeline's decision.
    pub disposition: Disposition,
}
