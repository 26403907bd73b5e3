//! The on-file layout of table generations: `#[repr(C)]` plain data only, no
//! pointers, native-endian integers, explicit reserved fields instead of
//! implicit padding, every offset and length in bytes from the file start.

use crate::pod::Pod;

/// Version of this layout. Bump on any incompatible change.
pub const ABI_VERSION: u32 = 2;

/// Magic of a table header; reads "PTRNSTBL" in a hex dump.
pub const TABLE_MAGIC: u64 = u64::from_ne_bytes(*b"PTRNSTBL");
/// Magic of a generation file header; reads "PTRNSGEN".
pub const GENERATION_MAGIC: u64 = u64::from_ne_bytes(*b"PTRNSGEN");

/// Most next hops of one route (ECMP width).
pub const MAX_NEXTHOPS: usize = 16;
/// Bytes of a port name (NUL-padded UTF-8).
pub const PORT_NAME_LEN: usize = 32;
/// Most tables in one generation file.
pub const MAX_TABLES: usize = 8;
/// Tables inside a generation file start at multiples of this.
pub const TABLE_ALIGN: usize = 64;

/// What a table holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum TableKind {
    Route = 1,
    Interface = 2,
    Neighbor = 3,
    /// Route changes relative to the generation named by
    /// [`GenerationHeader::delta_of`].
    RouteChange = 4,
    /// NAT settings (one entry), in the NAT file only.
    NatSettings = 5,
    /// NAT pool addresses, in the NAT file only.
    NatPool = 6,
    /// NAT port forwards, in the NAT file only.
    NatForward = 7,
    /// NAT 1:1 mappings, in the NAT file only.
    NatOneToOne = 8,
    /// WireGuard tunnels, in the WireGuard file only.
    WgTunnel = 9,
    /// WireGuard peers, in the WireGuard file only.
    WgPeer = 10,
    /// WireGuard peers' allowed IPs, in the WireGuard file only.
    WgAllowedIp = 11,
    /// Load-balancer settings (one entry), in the LB file only.
    LbSettings = 12,
    /// Load-balancer VIPs, in the LB file only.
    LbVip = 13,
    /// Load-balancer backends, in the LB file only.
    LbBackend = 14,
    /// IPv6 routes, in the IPv6 route file only.
    Route6 = 15,
}

impl TableKind {
    /// The kind for a raw value, if known.
    pub fn from_u32(raw: u32) -> Option<TableKind> {
        match raw {
            1 => Some(TableKind::Route),
            2 => Some(TableKind::Interface),
            3 => Some(TableKind::Neighbor),
            4 => Some(TableKind::RouteChange),
            5 => Some(TableKind::NatSettings),
            6 => Some(TableKind::NatPool),
            7 => Some(TableKind::NatForward),
            8 => Some(TableKind::NatOneToOne),
            9 => Some(TableKind::WgTunnel),
            10 => Some(TableKind::WgPeer),
            11 => Some(TableKind::WgAllowedIp),
            12 => Some(TableKind::LbSettings),
            13 => Some(TableKind::LbVip),
            14 => Some(TableKind::LbBackend),
            15 => Some(TableKind::Route6),
            _ => None,
        }
    }
}

/// Header in front of every table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct TableHeader {
    /// [`TABLE_MAGIC`].
    pub magic: u64,
    /// [`ABI_VERSION`].
    pub abi_version: u32,
    /// A [`TableKind`] as u32.
    pub kind: u32,
    /// Generation this table belongs to.
    pub generation: u64,
    /// Bytes of payload after this header.
    pub len: u64,
    /// Number of entries in the payload.
    pub count: u64,
    /// `size_of` one entry, so a reader notices a layout change.
    pub entry_size: u32,
    pub reserved0: u32,
    /// [`crate::checksum`] of the header (with this field zero) and payload.
    pub checksum: u64,
    pub reserved1: u64,
}

/// One slot of a generation file's table directory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct TableDirEntry {
    /// A [`TableKind`] as u32; 0 = unused slot.
    pub kind: u32,
    pub reserved: u32,
    /// Offset of the table's [`TableHeader`] from the file start.
    pub offset: u64,
    /// Bytes of header and payload.
    pub len: u64,
}

/// Header of a generation file `tables/gen-N.bin`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct GenerationHeader {
    /// [`GENERATION_MAGIC`].
    pub magic: u64,
    /// [`ABI_VERSION`].
    pub abi_version: u32,
    /// Used slots of `tables` (the first `table_count`).
    pub table_count: u32,
    /// N of `gen-N.bin`.
    pub generation: u64,
    /// Bytes of the whole file.
    pub file_len: u64,
    pub tables: [TableDirEntry; MAX_TABLES],
    /// 0, or the generation this one's [`RouteChange`] table applies to (a
    /// delta). A generation holds a full route table, a delta, or both (a
    /// checkpoint: a reader at `delta_of` applies the delta; a reader with
    /// nothing takes the full table).
    pub delta_of: u64,
    pub reserved: [u64; 3],
}

/// What a route does with matching packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum RouteKind {
    /// A connected subnet: the destination is the next hop (`iface[0]`).
    Connected = 1,
    /// Through one or more gateways (`nexthops[..nexthop_count]`); several =
    /// ECMP.
    Via = 2,
    /// Drop.
    Blackhole = 3,
    /// One of our own addresses (`iface[0]`).
    Local = 4,
}

impl RouteKind {
    /// The kind for a raw value, if known.
    pub fn from_u8(raw: u8) -> Option<RouteKind> {
        match raw {
            1 => Some(RouteKind::Connected),
            2 => Some(RouteKind::Via),
            3 => Some(RouteKind::Blackhole),
            4 => Some(RouteKind::Local),
            _ => None,
        }
    }
}

/// Interface index meaning "resolve from the gateway's connected subnet".
pub const IFACE_ANY: u16 = u16::MAX;

/// Raw [`RouteEntry::kind`] of a route into a WireGuard tunnel: one next
/// hop whose `nexthops[0]` is the tunnel's id
/// ([`crate::wg::WgTunnelEntry::id`]) and `iface[0]` is [`IFACE_ANY`]; the
/// tunnel picks the peer by its allowed IPs. Not (yet) a [`RouteKind`]
/// variant, so engines that match `RouteKind` exhaustively keep building
/// and skip these routes (`route_kind()` is `None`) until they handle them;
/// use [`RouteEntry::tunnel_id`].
pub const ROUTE_KIND_TUNNEL: u8 = 5;

/// One IPv4 route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct RouteEntry {
    /// Network address, host order (`u32::from(Ipv4Addr)`).
    pub prefix: u32,
    /// 0..=32.
    pub prefix_len: u8,
    /// A [`RouteKind`] as u8.
    pub kind: u8,
    /// Used slots of `nexthops`/`iface` (0 for blackhole).
    pub nexthop_count: u16,
    /// Lower wins among equal prefixes (informational for the engine).
    pub metric: u32,
    pub reserved: u32,
    /// Gateway addresses, host order.
    pub nexthops: [u32; MAX_NEXTHOPS],
    /// Interface index (into the interface table) per next hop, or
    /// [`IFACE_ANY`].
    pub iface: [u16; MAX_NEXTHOPS],
}

impl RouteEntry {
    /// A route with no next hops yet.
    pub fn new(prefix: u32, prefix_len: u8, kind: RouteKind) -> Self {
        RouteEntry {
            prefix,
            prefix_len,
            kind: kind as u8,
            nexthop_count: 0,
            metric: 0,
            reserved: 0,
            nexthops: [0; MAX_NEXTHOPS],
            iface: [IFACE_ANY; MAX_NEXTHOPS],
        }
    }

    /// Appends a next hop; `false` when all [`MAX_NEXTHOPS`] are used.
    pub fn push_nexthop(&mut self, gw: u32, iface: u16) -> bool {
        let i = self.nexthop_count as usize;
        if i >= MAX_NEXTHOPS {
            return false;
        }
        self.nexthops[i] = gw;
        self.iface[i] = iface;
        self.nexthop_count += 1;
        true
    }

    /// The route's kind, if valid (always so in a parsed table).
    pub fn route_kind(&self) -> Option<RouteKind> {
        RouteKind::from_u8(self.kind)
    }

    /// A route into WireGuard tunnel `tunnel_id` (see [`ROUTE_KIND_TUNNEL`]).
    pub fn tunnel(prefix: u32, prefix_len: u8, tunnel_id: u32) -> Self {
        let mut e = RouteEntry::new(prefix, prefix_len, RouteKind::Blackhole);
        e.kind = ROUTE_KIND_TUNNEL;
        e.push_nexthop(tunnel_id, IFACE_ANY);
        e
    }

    /// The tunnel id of a route into a tunnel, else `None`.
    pub fn tunnel_id(&self) -> Option<u32> {
        (self.kind == ROUTE_KIND_TUNNEL && self.nexthop_count == 1).then_some(self.nexthops[0])
    }

    /// The used next hops as (gateway, interface) pairs.
    pub fn nexthops(&self) -> impl Iterator<Item = (u32, u16)> + '_ {
        let n = (self.nexthop_count as usize).min(MAX_NEXTHOPS);
        self.nexthops[..n]
            .iter()
            .copied()
            .zip(self.iface[..n].iter().copied())
    }
}

/// [`RouteChange::op`]: add the route, or replace the one with its prefix.
pub const ROUTE_UPSERT: u32 = 1;
/// [`RouteChange::op`]: remove the route with this prefix (only `prefix`
/// and `prefix_len` of `route` count).
pub const ROUTE_WITHDRAW: u32 = 2;

/// One change of a delta generation, applied in table order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct RouteChange {
    /// [`ROUTE_UPSERT`] or [`ROUTE_WITHDRAW`].
    pub op: u32,
    pub reserved: u32,
    pub route: RouteEntry,
}

impl RouteChange {
    /// Adds or replaces `route`.
    pub fn upsert(route: RouteEntry) -> Self {
        RouteChange {
            op: ROUTE_UPSERT,
            reserved: 0,
            route,
        }
    }

    /// Removes the route `prefix/prefix_len`.
    pub fn withdraw(prefix: u32, prefix_len: u8) -> Self {
        RouteChange {
            op: ROUTE_WITHDRAW,
            reserved: 0,
            route: RouteEntry::new(prefix, prefix_len, RouteKind::Blackhole),
        }
    }

    /// True for a withdrawal.
    pub fn is_withdraw(&self) -> bool {
        self.op == ROUTE_WITHDRAW
    }
}

/// One L3 interface: an address on a port, optionally on a VLAN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct InterfaceEntry {
    /// Port name, NUL-padded.
    pub port_name: [u8; PORT_NAME_LEN],
    /// Address, host order.
    pub addr: u32,
    /// 802.1Q VLAN id, 0 = untagged.
    pub vlan: u16,
    /// 0 = the port's MTU.
    pub mtu: u16,
    /// 0..=32.
    pub prefix_len: u8,
    pub reserved: [u8; 7],
}

/// Neighbor entry flag: permanent (never expires, never probed).
pub const NEIGHBOR_PERMANENT: u16 = 1;

/// One static neighbor (IPv4 → MAC).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct NeighborEntry {
    /// Address, host order.
    pub addr: u32,
    /// 802.1Q VLAN id, 0 = untagged.
    pub vlan: u16,
    /// `NEIGHBOR_*` flags.
    pub flags: u16,
    pub mac: [u8; 6],
    pub reserved: [u8; 2],
    /// Port name, NUL-padded.
    pub port_name: [u8; PORT_NAME_LEN],
}

/// Encodes a port name as a NUL-padded field; `None` when it does not fit
/// or contains a NUL.
pub fn encode_name(name: &str) -> Option<[u8; PORT_NAME_LEN]> {
    let bytes = name.as_bytes();
    if bytes.len() > PORT_NAME_LEN || bytes.contains(&0) {
        return None;
    }
    let mut out = [0u8; PORT_NAME_LEN];
    out[..bytes.len()].copy_from_slice(bytes);
    Some(out)
}

/// Decodes a NUL-padded name field; `None` when it is not UTF-8.
pub fn decode_name(field: &[u8]) -> Option<&str> {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    std::str::from_utf8(&field[..end]).ok()
}

// SAFETY: repr(C), only integer fields and arrays of integers, field sizes
// add up to size_of (asserted below), so there is no padding; every bit
// pattern is a valid value.
unsafe impl Pod for TableHeader {}
// SAFETY: as above.
unsafe impl Pod for TableDirEntry {}
// SAFETY: as above.
unsafe impl Pod for GenerationHeader {}
// SAFETY: as above.
unsafe impl Pod for RouteEntry {}
// SAFETY: as above.
unsafe impl Pod for RouteChange {}
// SAFETY: as above.
unsafe impl Pod for InterfaceEntry {}
// SAFETY: as above.
unsafe impl Pod for NeighborEntry {}

/// A type stored as the entries of one table kind.
pub trait TableEntry: Pod {
    /// The table kind holding these entries.
    const KIND: TableKind;
    /// Default most entries a builder accepts.
    const DEFAULT_MAX: u64;
    /// Semantic check of one entry (structure is already guaranteed).
    fn validate(&self) -> Result<(), &'static str>;
}

impl TableEntry for RouteEntry {
    const KIND: TableKind = TableKind::Route;
    const DEFAULT_MAX: u64 = 4 << 20;
    fn validate(&self) -> Result<(), &'static str> {
        if self.prefix_len > 32 {
            return Err("prefix length above 32");
        }
        let host_mask = u32::MAX
            .checked_shr(u32::from(self.prefix_len))
            .unwrap_or(0);
        if self.prefix & host_mask != 0 {
            return Err("host bits set in prefix");
        }
        if self.nexthop_count as usize > MAX_NEXTHOPS {
            return Err("more than 16 next hops");
        }
        if self.kind == ROUTE_KIND_TUNNEL {
            return match self.tunnel_id() {
                Some(0) | None => Err("tunnel route without a tunnel id"),
                Some(_) => Ok(()),
            };
        }
        match RouteKind::from_u8(self.kind) {
            None => Err("unknown route kind"),
            Some(RouteKind::Via) if self.nexthop_count == 0 => Err("via route without next hop"),
            Some(RouteKind::Connected | RouteKind::Local) if self.nexthop_count > 1 => {
                Err("connected/local route with several next hops")
            }
            Some(RouteKind::Blackhole) if self.nexthop_count != 0 => {
                Err("blackhole route with next hops")
            }
            Some(_) => Ok(()),
        }
    }
}

impl TableEntry for RouteChange {
    const KIND: TableKind = TableKind::RouteChange;
    const DEFAULT_MAX: u64 = 4 << 20;
    fn validate(&self) -> Result<(), &'static str> {
        match self.op {
            ROUTE_UPSERT => self.route.validate(),
            ROUTE_WITHDRAW if self.route.prefix_len > 32 => Err("prefix length above 32"),
            ROUTE_WITHDRAW => Ok(()),
            _ => Err("unknown route change op"),
        }
    }
}

impl TableEntry for InterfaceEntry {
    const KIND: TableKind = TableKind::Interface;
    const DEFAULT_MAX: u64 = 4096;
    fn validate(&self) -> Result<(), &'static str> {
        if self.prefix_len > 32 {
            return Err("prefix length above 32");
        }
        if self.vlan > 4094 {
            return Err("VLAN id above 4094");
        }
        if decode_name(&self.port_name).is_none_or(str::is_empty) {
            return Err("port name empty or not UTF-8");
        }
        Ok(())
    }
}

impl TableEntry for NeighborEntry {
    const KIND: TableKind = TableKind::Neighbor;
    const DEFAULT_MAX: u64 = 1 << 20;
    fn validate(&self) -> Result<(), &'static str> {
        if self.vlan > 4094 {
            return Err("VLAN id above 4094");
        }
        if decode_name(&self.port_name).is_none_or(str::is_empty) {
            return Err("port name empty or not UTF-8");
        }
        Ok(())
    }
}

// Golden sizes and alignments: a change here is an ABI change.
const _: () = {
    use std::mem::{align_of, size_of};
    assert!(size_of::<TableHeader>() == 64 && align_of::<TableHeader>() == 8);
    assert!(size_of::<TableDirEntry>() == 24 && align_of::<TableDirEntry>() == 8);
    assert!(size_of::<GenerationHeader>() == 32 + 24 * MAX_TABLES + 32);
    assert!(size_of::<GenerationHeader>().is_multiple_of(TABLE_ALIGN));
    assert!(size_of::<RouteEntry>() == 112 && align_of::<RouteEntry>() == 4);
    assert!(size_of::<RouteChange>() == 120 && align_of::<RouteChange>() == 4);
    assert!(size_of::<InterfaceEntry>() == 48 && align_of::<InterfaceEntry>() == 4);
    assert!(size_of::<NeighborEntry>() == 48 && align_of::<NeighborEntry>() == 4);
    // Payloads are whole 8-byte words, so the checksum runs word by word.
    assert!(size_of::<RouteEntry>().is_multiple_of(8));
    assert!(size_of::<RouteChange>().is_multiple_of(8));
    assert!(size_of::<InterfaceEntry>().is_multiple_of(8));
    assert!(size_of::<NeighborEntry>().is_multiple_of(8));
};
