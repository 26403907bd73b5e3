//! The NAT configuration the control process pushes: `nat.bin` in the
//! runtime directory, in the generation-file format (header, table
//! directory, checksummed tables) with NAT tables only, numbered by the
//! control block's `nat_generation` (its own sequence, independent of the
//! route generations). Written atomically (temp file, rename), then the
//! number is bumped; the engine notices the bump with one atomic load
//! ([`crate::Subscriber::poll_nat`]).
//!
//! What a NAT file says:
//! - no [`NatSettingsEntry`] table: the control process manages no NAT;
//!   the engine runs its own configuration's `[nat]` (if any);
//! - a settings entry with `enabled == 0`: NAT off;
//! - otherwise NAT on with these settings, pool, forwards and 1:1 mappings.
//!
//! Zero in an optional numeric field means "the engine's default".

use crate::error::ShmError;
use crate::generation::{GenerationBuilder, GenerationView};
use crate::layout::{decode_name, encode_name, TableEntry, TableKind, PORT_NAME_LEN};
use crate::pod::Pod;
use crate::table::TableBuilder;

/// Name of the NAT file in the runtime directory.
pub const NAT_FILE: &str = "nat.bin";

/// [`NatSettingsEntry::filtering`]: endpoint-independent.
pub const FILTERING_ENDPOINT_INDEPENDENT: u8 = 1;
/// [`NatSettingsEntry::filtering`]: address-and-port-dependent.
pub const FILTERING_ADDRESS_AND_PORT_DEPENDENT: u8 = 2;

/// [`NatSettingsEntry::inbound_refresh`]: the engine's default.
pub const REFRESH_DEFAULT: u8 = 0;
/// [`NatSettingsEntry::inbound_refresh`]: off.
pub const REFRESH_OFF: u8 = 1;
/// [`NatSettingsEntry::inbound_refresh`]: on.
pub const REFRESH_ON: u8 = 2;

/// Names of [`NatSettingsEntry::timeouts_secs`], in order.
pub const TIMEOUT_NAMES: [&str; 6] = [
    "tcp_established",
    "tcp_transitory",
    "tcp_initial",
    "udp",
    "icmp_query",
    "fragment",
];

/// IP protocol numbers a forward may use.
pub const PROTO_TCP: u8 = 6;
/// UDP.
pub const PROTO_UDP: u8 = 17;

/// The NAT settings: one entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct NatSettingsEntry {
    /// Port of the outside interface, NUL-padded.
    pub outside_port: [u8; PORT_NAME_LEN],
    /// VLAN of the outside interface, 0 = untagged.
    pub outside_vlan: u16,
    /// `FILTERING_*`.
    pub filtering: u8,
    /// `REFRESH_*`.
    pub inbound_refresh: u8,
    /// 1 = NAT on, 0 = NAT off.
    pub enabled: u8,
    pub reserved0: [u8; 3],
    /// 0 = default.
    pub max_sessions_per_host: u32,
    /// Seconds per [`TIMEOUT_NAMES`]; 0 = default.
    pub timeouts_secs: [u32; 6],
    pub reserved1: u32,
}

impl NatSettingsEntry {
    /// Settings for NAT on `port`/`vlan` with every default; `None` when
    /// the port name does not fit.
    pub fn new(port: &str, vlan: u16) -> Option<Self> {
        Some(NatSettingsEntry {
            outside_port: encode_name(port)?,
            outside_vlan: vlan,
            filtering: FILTERING_ADDRESS_AND_PORT_DEPENDENT,
            inbound_refresh: REFRESH_DEFAULT,
            enabled: 1,
            reserved0: [0; 3],
            max_sessions_per_host: 0,
            timeouts_secs: [0; 6],
            reserved1: 0,
        })
    }

    /// The outside port's name.
    pub fn port(&self) -> &str {
        decode_name(&self.outside_port).unwrap_or("")
    }
}

/// One pool address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct NatPoolEntry {
    /// Host order.
    pub addr: u32,
    pub reserved: u32,
}

/// One port forward: outside `outside_addr:outside_port` (`proto`) reaches
/// `inside_addr:inside_port`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct NatForwardEntry {
    /// Host order.
    pub outside_addr: u32,
    /// Host order.
    pub inside_addr: u32,
    pub outside_port: u16,
    pub inside_port: u16,
    /// [`PROTO_TCP`] or [`PROTO_UDP`].
    pub proto: u8,
    pub reserved: [u8; 3],
}

/// One 1:1 mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct NatOneToOneEntry {
    /// Host order.
    pub outside: u32,
    /// Host order.
    pub inside: u32,
}

// SAFETY: repr(C), only integers and arrays of integers, sizes add up to
// size_of (asserted below), so no padding; every bit pattern is valid.
unsafe impl Pod for NatSettingsEntry {}
// SAFETY: as above.
unsafe impl Pod for NatPoolEntry {}
// SAFETY: as above.
unsafe impl Pod for NatForwardEntry {}
// SAFETY: as above.
unsafe impl Pod for NatOneToOneEntry {}

const _: () = {
    use std::mem::{align_of, size_of};
    assert!(size_of::<NatSettingsEntry>() == 72 && align_of::<NatSettingsEntry>() == 4);
    assert!(size_of::<NatPoolEntry>() == 8);
    assert!(size_of::<NatForwardEntry>() == 16);
    assert!(size_of::<NatOneToOneEntry>() == 8);
};

impl TableEntry for NatSettingsEntry {
    const KIND: TableKind = TableKind::NatSettings;
    const DEFAULT_MAX: u64 = 1;
    fn validate(&self) -> Result<(), &'static str> {
        if decode_name(&self.outside_port).is_none_or(str::is_empty) {
            return Err("outside port name empty or not UTF-8");
        }
        if self.outside_vlan > 4094 {
            return Err("VLAN id above 4094");
        }
        if !matches!(
            self.filtering,
            FILTERING_ENDPOINT_INDEPENDENT | FILTERING_ADDRESS_AND_PORT_DEPENDENT
        ) {
            return Err("unknown filtering");
        }
        if self.inbound_refresh > REFRESH_ON {
            return Err("unknown inbound_refresh");
        }
        if self.enabled > 1 {
            return Err("enabled is neither 0 nor 1");
        }
        Ok(())
    }
}

impl TableEntry for NatPoolEntry {
    const KIND: TableKind = TableKind::NatPool;
    const DEFAULT_MAX: u64 = 4096;
    fn validate(&self) -> Result<(), &'static str> {
        if self.addr == 0 {
            return Err("pool address 0.0.0.0");
        }
        Ok(())
    }
}

impl TableEntry for NatForwardEntry {
    const KIND: TableKind = TableKind::NatForward;
    const DEFAULT_MAX: u64 = 1 << 20;
    fn validate(&self) -> Result<(), &'static str> {
        if !matches!(self.proto, PROTO_TCP | PROTO_UDP) {
            return Err("forward protocol is neither tcp nor udp");
        }
        if self.outside_port == 0 || self.inside_port == 0 {
            return Err("forward port 0");
        }
        Ok(())
    }
}

impl TableEntry for NatOneToOneEntry {
    const KIND: TableKind = TableKind::NatOneToOne;
    const DEFAULT_MAX: u64 = 1 << 16;
    fn validate(&self) -> Result<(), &'static str> {
        if self.outside == 0 || self.inside == 0 {
            return Err("1:1 address 0.0.0.0");
        }
        Ok(())
    }
}

/// The NAT configuration as pushed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NatTables {
    /// None: not managed by the control process (the engine's own config).
    pub settings: Option<NatSettingsEntry>,
    pub pool: Vec<NatPoolEntry>,
    pub forwards: Vec<NatForwardEntry>,
    pub one_to_one: Vec<NatOneToOneEntry>,
}

impl NatTables {
    /// The file's tables (every entry validated).
    pub fn builder(&self) -> Result<GenerationBuilder, ShmError> {
        let mut g = GenerationBuilder::new();
        if let Some(s) = self.settings {
            let mut t = TableBuilder::<NatSettingsEntry>::new();
            t.push(s)?;
            g.add(t)?;
            let mut t = TableBuilder::<NatPoolEntry>::new();
            t.extend_from_slice(&self.pool)?;
            g.add(t)?;
            let mut t = TableBuilder::<NatForwardEntry>::new();
            t.extend_from_slice(&self.forwards)?;
            g.add(t)?;
            let mut t = TableBuilder::<NatOneToOneEntry>::new();
            t.extend_from_slice(&self.one_to_one)?;
            g.add(t)?;
        }
        Ok(g)
    }

    /// The tables of a parsed NAT file.
    pub fn from_view(v: &GenerationView<'_>) -> NatTables {
        NatTables {
            settings: v
                .table::<NatSettingsEntry>()
                .and_then(|t| t.entries().first().copied()),
            pool: v
                .table::<NatPoolEntry>()
                .map_or_else(Vec::new, |t| t.entries().to_vec()),
            forwards: v
                .table::<NatForwardEntry>()
                .map_or_else(Vec::new, |t| t.entries().to_vec()),
            one_to_one: v
                .table::<NatOneToOneEntry>()
                .map_or_else(Vec::new, |t| t.entries().to_vec()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> NatTables {
        let mut s = NatSettingsEntry::new("wan0", 7).unwrap();
        s.timeouts_secs[3] = 120;
        s.inbound_refresh = REFRESH_OFF;
        NatTables {
            settings: Some(s),
            pool: vec![NatPoolEntry {
                addr: 0xc633_6401,
                reserved: 0,
            }],
            forwards: vec![NatForwardEntry {
                outside_addr: 0xc633_6401,
                inside_addr: 0x0a0a_0002,
                outside_port: 8080,
                inside_port: 80,
                proto: PROTO_TCP,
                reserved: [0; 3],
            }],
            one_to_one: vec![NatOneToOneEntry {
                outside: 0xc633_640a,
                inside: 0x0a0a_000a,
            }],
        }
    }

    #[test]
    fn tables_round_trip_through_the_file_format() {
        let t = sample();
        let bytes = crate::AlignedBuf::copy_from(&t.builder().unwrap().encode(3));
        let v = GenerationView::parse(bytes.as_bytes()).unwrap();
        assert_eq!(v.generation(), 3);
        assert_eq!(NatTables::from_view(&v), t);
        assert_eq!(t.settings.unwrap().port(), "wan0");
    }

    #[test]
    fn unmanaged_is_an_empty_file() {
        let t = NatTables::default();
        let bytes = crate::AlignedBuf::copy_from(&t.builder().unwrap().encode(1));
        let v = GenerationView::parse(bytes.as_bytes()).unwrap();
        assert_eq!(NatTables::from_view(&v), t);
    }

    #[test]
    fn bad_entries_are_refused_by_the_builder() {
        let mut t = sample();
        t.forwards[0].proto = 1;
        assert!(t.builder().is_err());
        let mut t = sample();
        t.settings.as_mut().unwrap().filtering = 9;
        assert!(t.builder().is_err());
        assert!(NatSettingsEntry::new(&"x".repeat(40), 0).is_none());
    }
}
