//! The load-balancer configuration the control process pushes: `lb.bin` in
//! the runtime directory, in the generation-file format with LB tables only,
//! numbered by the control block's `lb_generation` (its own sequence).
//! Written atomically (temp file, rename), then the number is bumped; the
//! engine notices the bump with one atomic load
//! ([`crate::Subscriber::poll_lb`]).
//!
//! What an LB file says:
//! - no [`LbSettingsEntry`] table: the control process manages no balancer;
//!   the engine runs its own configuration's `[[lb.vip]]` (if any);
//! - otherwise exactly these VIPs and backends (none = balancing off).
//!
//! The control process pushes every backend with its health (`up`); the
//! engine compiles each VIP's Maglev table from the backends that are up
//! with a non-zero weight. A backend down or gone loses its flows; one at
//! weight 0 (draining) keeps its established flows and takes no new ones.
//!
//! Zero in an optional numeric field means "the engine's default".

use crate::error::ShmError;
use crate::generation::{GenerationBuilder, GenerationView};
use crate::layout::{TableEntry, TableKind};
use crate::pod::Pod;
use crate::table::TableBuilder;

/// Name of the LB file in the runtime directory.
pub const LB_FILE: &str = "lb.bin";

/// [`LbVipEntry::mode`]: destination NAT; replies return through the engine.
pub const LB_MODE_NAT: u8 = 1;
/// [`LbVipEntry::mode`]: direct server return, IP-in-IP to the backend.
pub const LB_MODE_DSR: u8 = 2;

/// IP protocol numbers a VIP may use.
pub const LB_PROTO_TCP: u8 = 6;
/// UDP.
pub const LB_PROTO_UDP: u8 = 17;

/// Largest Maglev table size a VIP may ask for (a prime below it is used).
pub const LB_MAX_TABLE_SIZE: u32 = 1 << 22;

/// The balancer settings: one entry (its presence = managed by control).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct LbSettingsEntry {
    /// Pinned flows per worker; 0 = default.
    pub max_flows: u32,
    /// Idle seconds before a pinned TCP flow is forgotten; 0 = default.
    pub tcp_timeout_secs: u32,
    /// Idle seconds after a FIN or RST; 0 = default.
    pub tcp_closing_timeout_secs: u32,
    /// Idle seconds for UDP; 0 = default.
    pub udp_timeout_secs: u32,
}

/// One VIP (service): `addr:port` over `proto`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct LbVipEntry {
    /// Stable id chosen by the control process (backends refer to it).
    pub id: u32,
    /// Host order.
    pub addr: u32,
    pub port: u16,
    /// [`LB_PROTO_TCP`] or [`LB_PROTO_UDP`].
    pub proto: u8,
    /// `LB_MODE_*`.
    pub mode: u8,
    /// Maglev table size (prime); 0 = 65537.
    pub table_size: u32,
}

/// One backend of a VIP's pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct LbBackendEntry {
    /// Stable id chosen by the control process (names its counters).
    pub id: u32,
    /// [`LbVipEntry::id`] of its VIP.
    pub vip_id: u32,
    /// Host order.
    pub addr: u32,
    /// Port on the backend (NAT mode; DSR keeps the VIP's port).
    pub port: u16,
    /// 0 = draining (no new flows).
    pub weight: u16,
    /// 1 = healthy (or not checked), 0 = down.
    pub up: u8,
    pub reserved: [u8; 3],
}

// SAFETY: repr(C), only integers and arrays of integers, sizes add up to
// size_of (asserted below), so no padding; every bit pattern is valid.
unsafe impl Pod for LbSettingsEntry {}
// SAFETY: as above.
unsafe impl Pod for LbVipEntry {}
// SAFETY: as above.
unsafe impl Pod for LbBackendEntry {}

const _: () = {
    use std::mem::size_of;
    assert!(size_of::<LbSettingsEntry>() == 16);
    assert!(size_of::<LbVipEntry>() == 16);
    assert!(size_of::<LbBackendEntry>() == 20);
};

impl TableEntry for LbSettingsEntry {
    const KIND: TableKind = TableKind::LbSettings;
    const DEFAULT_MAX: u64 = 1;
    fn validate(&self) -> Result<(), &'static str> {
        Ok(())
    }
}

impl TableEntry for LbVipEntry {
    const KIND: TableKind = TableKind::LbVip;
    const DEFAULT_MAX: u64 = 4096;
    fn validate(&self) -> Result<(), &'static str> {
        if self.addr == 0 {
            return Err("VIP address 0.0.0.0");
        }
        if self.port == 0 {
            return Err("VIP port 0");
        }
        if !matches!(self.proto, LB_PROTO_TCP | LB_PROTO_UDP) {
            return Err("VIP protocol is neither tcp nor udp");
        }
        if !matches!(self.mode, LB_MODE_NAT | LB_MODE_DSR) {
            return Err("unknown VIP mode");
        }
        if self.table_size > LB_MAX_TABLE_SIZE {
            return Err("Maglev table size too large");
        }
        Ok(())
    }
}

impl TableEntry for LbBackendEntry {
    const KIND: TableKind = TableKind::LbBackend;
    const DEFAULT_MAX: u64 = 1 << 16;
    fn validate(&self) -> Result<(), &'static str> {
        if self.addr == 0 {
            return Err("backend address 0.0.0.0");
        }
        if self.port == 0 {
            return Err("backend port 0");
        }
        if self.up > 1 {
            return Err("backend up is neither 0 nor 1");
        }
        Ok(())
    }
}

/// The balancer configuration as pushed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LbTables {
    /// None: not managed by the control process (the engine's own config).
    pub settings: Option<LbSettingsEntry>,
    pub vips: Vec<LbVipEntry>,
    pub backends: Vec<LbBackendEntry>,
}

impl LbTables {
    /// Every backend names a VIP of the file; VIP ids and
    /// (address, port, protocol) are unique; backend ids are unique.
    pub fn check_references(&self) -> Result<(), ShmError> {
        let bad = |reason| Err(ShmError::BadDirectory { reason });
        let mut ids: Vec<u32> = self.vips.iter().map(|v| v.id).collect();
        ids.sort_unstable();
        if ids.windows(2).any(|w| w[0] == w[1]) {
            return bad("two VIPs with one id");
        }
        let mut eps: Vec<(u32, u16, u8)> = self
            .vips
            .iter()
            .map(|v| (v.addr, v.port, v.proto))
            .collect();
        eps.sort_unstable();
        if eps.windows(2).any(|w| w[0] == w[1]) {
            return bad("two VIPs with one address, port and protocol");
        }
        let mut bids: Vec<u32> = self.backends.iter().map(|b| b.id).collect();
        bids.sort_unstable();
        if bids.windows(2).any(|w| w[0] == w[1]) {
            return bad("two backends with one id");
        }
        if self
            .backends
            .iter()
            .any(|b| ids.binary_search(&b.vip_id).is_err())
        {
            return bad("backend of an unknown VIP");
        }
        Ok(())
    }

    /// The file's tables (every entry validated, references checked).
    pub fn builder(&self) -> Result<GenerationBuilder, ShmError> {
        let mut g = GenerationBuilder::new();
        if let Some(s) = self.settings {
            self.check_references()?;
            let mut t = TableBuilder::<LbSettingsEntry>::new();
            t.push(s)?;
            g.add(t)?;
            let mut t = TableBuilder::<LbVipEntry>::new();
            t.extend_from_slice(&self.vips)?;
            g.add(t)?;
            let mut t = TableBuilder::<LbBackendEntry>::new();
            t.extend_from_slice(&self.backends)?;
            g.add(t)?;
        }
        Ok(g)
    }

    /// The tables of a parsed LB file (references checked).
    pub fn from_view(v: &GenerationView<'_>) -> Result<LbTables, ShmError> {
        let t = LbTables {
            settings: v
                .table::<LbSettingsEntry>()
                .and_then(|t| t.entries().first().copied()),
            vips: v
                .table::<LbVipEntry>()
                .map_or_else(Vec::new, |t| t.entries().to_vec()),
            backends: v
                .table::<LbBackendEntry>()
                .map_or_else(Vec::new, |t| t.entries().to_vec()),
        };
        t.check_references()?;
        Ok(t)
    }

    /// The backends of VIP `vip_id`, in file order.
    pub fn backends_of(&self, vip_id: u32) -> impl Iterator<Item = &LbBackendEntry> + '_ {
        self.backends.iter().filter(move |b| b.vip_id == vip_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> LbTables {
        LbTables {
            settings: Some(LbSettingsEntry {
                max_flows: 0,
                tcp_timeout_secs: 300,
                tcp_closing_timeout_secs: 0,
                udp_timeout_secs: 0,
            }),
            vips: vec![LbVipEntry {
                id: 7,
                addr: 0xc633_6464,
                port: 80,
                proto: LB_PROTO_TCP,
                mode: LB_MODE_NAT,
                table_size: 0,
            }],
            backends: vec![LbBackendEntry {
                id: 1,
                vip_id: 7,
                addr: 0x0a0a_0002,
                port: 8080,
                weight: 2,
                up: 1,
                reserved: [0; 3],
            }],
        }
    }

    #[test]
    fn tables_round_trip_through_the_file_format() {
        let t = sample();
        let bytes = crate::AlignedBuf::copy_from(&t.builder().unwrap().encode(4));
        let v = GenerationView::parse(bytes.as_bytes()).unwrap();
        assert_eq!(v.generation(), 4);
        assert_eq!(LbTables::from_view(&v).unwrap(), t);
        assert_eq!(t.backends_of(7).count(), 1);
        assert_eq!(t.backends_of(8).count(), 0);
    }

    #[test]
    fn unmanaged_is_an_empty_file() {
        let t = LbTables::default();
        let bytes = crate::AlignedBuf::copy_from(&t.builder().unwrap().encode(1));
        let v = GenerationView::parse(bytes.as_bytes()).unwrap();
        assert_eq!(LbTables::from_view(&v).unwrap(), t);
    }

    #[test]
    fn bad_entries_and_references_are_refused() {
        let mut t = sample();
        t.vips[0].mode = 9;
        assert!(t.builder().is_err());
        let mut t = sample();
        t.vips[0].proto = 1;
        assert!(t.builder().is_err());
        let mut t = sample();
        t.backends[0].vip_id = 8;
        assert!(t.builder().is_err());
        let mut t = sample();
        t.backends[0].port = 0;
        assert!(t.builder().is_err());
        let mut t = sample();
        let mut v2 = t.vips[0];
        v2.id = 8;
        t.vips.push(v2);
        assert!(t.builder().is_err(), "same endpoint twice");
        let mut t = sample();
        let b = t.backends[0];
        t.backends.push(b);
        assert!(t.builder().is_err(), "same backend id twice");
    }
}
