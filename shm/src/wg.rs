//! The WireGuard configuration the control process pushes: `wg.bin` in the
//! runtime directory, in the generation-file format (header, table
//! directory, checksummed tables) with WireGuard tables only, numbered by
//! the control block's `wg_generation` (its own sequence). Written
//! atomically (temp file 0600, rename), then the number is bumped; the
//! engine notices the bump with one atomic load
//! ([`crate::Subscriber::poll_wg`]).
//!
//! The file holds private keys: it is created 0600 in a 0700 directory
//! like every runtime file, and the `Debug` of its entries redacts keys.
//!
//! What a WireGuard file says: exactly these tunnels, peers and allowed
//! IPs (all three tables are always present, maybe empty: no tunnels).
//! Tunnels and peers carry stable ids chosen by the control process; a
//! route into a tunnel ([`crate::RouteEntry::tunnel`]) names the tunnel id,
//! peers name their tunnel's id, allowed IPs name their peer's id.

use std::collections::HashSet;

use crate::error::ShmError;
use crate::generation::{GenerationBuilder, GenerationView};
use crate::layout::{decode_name, encode_name, TableEntry, TableKind, PORT_NAME_LEN};
use crate::pod::Pod;
use crate::table::TableBuilder;

/// Name of the WireGuard file in the runtime directory.
pub const WG_FILE: &str = "wg.bin";
/// Bytes of a Curve25519 key (and of a preshared key).
pub const WG_KEY_LEN: usize = 32;
/// [`WgPeerEntry::flags`]: `preshared_key` is set.
pub const WG_PEER_HAS_PSK: u32 = 1;

/// One tunnel (a WireGuard interface terminated in the engine).
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct WgTunnelEntry {
    /// Stable id (non-zero); routes and peers refer to it.
    pub id: u32,
    /// UDP port the engine receives this tunnel's packets on (non-zero).
    pub listen_port: u16,
    /// Prefix length of `address` (0 with `address` 0: none).
    pub address_len: u8,
    pub reserved0: u8,
    /// The tunnel's own inner address, host order (0 = none).
    pub address: u32,
    pub reserved1: u32,
    /// Tunnel name, NUL-padded (as in metrics and the API).
    pub name: [u8; PORT_NAME_LEN],
    /// X25519 private key (secret).
    pub private_key: [u8; WG_KEY_LEN],
    /// The public key derived from it.
    pub public_key: [u8; WG_KEY_LEN],
}

impl WgTunnelEntry {
    /// The tunnel's name.
    pub fn name(&self) -> &str {
        decode_name(&self.name).unwrap_or("")
    }
}

/// One peer of a tunnel.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct WgPeerEntry {
    /// The tunnel's [`WgTunnelEntry::id`].
    pub tunnel_id: u32,
    /// Stable id (non-zero); allowed IPs refer to it.
    pub peer_id: u32,
    /// Endpoint address, host order (0 = none: wait for the peer).
    pub endpoint_addr: u32,
    /// Endpoint UDP port (0 exactly when `endpoint_addr` is 0).
    pub endpoint_port: u16,
    /// Persistent keepalive interval in seconds (0 = off).
    pub persistent_keepalive_secs: u16,
    /// `WG_PEER_*` flags.
    pub flags: u32,
    pub reserved: u32,
    /// The peer's X25519 public key.
    pub public_key: [u8; WG_KEY_LEN],
    /// Preshared key (secret; zero unless [`WG_PEER_HAS_PSK`]).
    pub preshared_key: [u8; WG_KEY_LEN],
}

impl WgPeerEntry {
    /// The preshared key, if the peer has one.
    pub fn psk(&self) -> Option<&[u8; WG_KEY_LEN]> {
        (self.flags & WG_PEER_HAS_PSK != 0).then_some(&self.preshared_key)
    }
}

/// One allowed-IP prefix of a peer (decapsulated packets must come from
/// it; encapsulation picks the peer by longest match in its tunnel).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct WgAllowedIpEntry {
    /// The peer's [`WgPeerEntry::peer_id`].
    pub peer_id: u32,
    /// Network address, host order.
    pub prefix: u32,
    /// 0..=32.
    pub prefix_len: u8,
    pub reserved: [u8; 7],
}

/// Hex of the first bytes of a public key, enough to tell peers apart in
/// logs without printing whole keys.
fn key_prefix(k: &[u8; WG_KEY_LEN]) -> String {
    k[..4].iter().map(|b| format!("{b:02x}")).collect()
}

impl std::fmt::Debug for WgTunnelEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WgTunnelEntry")
            .field("id", &self.id)
            .field("name", &self.name())
            .field("listen_port", &self.listen_port)
            .field("address", &self.address)
            .field("address_len", &self.address_len)
            .field("private_key", &"<redacted>")
            .field("public_key", &key_prefix(&self.public_key))
            .finish()
    }
}

impl std::fmt::Debug for WgPeerEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WgPeerEntry")
            .field("tunnel_id", &self.tunnel_id)
            .field("peer_id", &self.peer_id)
            .field("endpoint_addr", &self.endpoint_addr)
            .field("endpoint_port", &self.endpoint_port)
            .field("persistent_keepalive_secs", &self.persistent_keepalive_secs)
            .field("public_key", &key_prefix(&self.public_key))
            .field(
                "preshared_key",
                &self.psk().map(|_| "<redacted>").unwrap_or("none"),
            )
            .finish()
    }
}

// SAFETY: repr(C), only integers and arrays of integers, sizes add up to
// size_of (asserted below), so no padding; every bit pattern is valid.
unsafe impl Pod for WgTunnelEntry {}
// SAFETY: as above.
unsafe impl Pod for WgPeerEntry {}
// SAFETY: as above.
unsafe impl Pod for WgAllowedIpEntry {}

// Golden sizes: a change here is an ABI change.
const _: () = {
    use std::mem::{align_of, size_of};
    assert!(size_of::<WgTunnelEntry>() == 112 && align_of::<WgTunnelEntry>() == 4);
    assert!(size_of::<WgPeerEntry>() == 88 && align_of::<WgPeerEntry>() == 4);
    assert!(size_of::<WgAllowedIpEntry>() == 16 && align_of::<WgAllowedIpEntry>() == 4);
};

fn host_bits_clear(prefix: u32, len: u8) -> bool {
    let host_mask = u32::MAX.checked_shr(u32::from(len)).unwrap_or(0);
    prefix & host_mask == 0
}

impl TableEntry for WgTunnelEntry {
    const KIND: TableKind = TableKind::WgTunnel;
    const DEFAULT_MAX: u64 = 1024;
    fn validate(&self) -> Result<(), &'static str> {
        if self.id == 0 {
            return Err("tunnel id 0");
        }
        if self.listen_port == 0 {
            return Err("listen port 0");
        }
        if decode_name(&self.name).is_none_or(str::is_empty) {
            return Err("tunnel name empty or not UTF-8");
        }
        if self.address_len > 32 || (self.address == 0) != (self.address_len == 0) {
            return Err("tunnel address without length, or the reverse");
        }
        Ok(())
    }
}

impl TableEntry for WgPeerEntry {
    const KIND: TableKind = TableKind::WgPeer;
    const DEFAULT_MAX: u64 = 1 << 16;
    fn validate(&self) -> Result<(), &'static str> {
        if self.tunnel_id == 0 || self.peer_id == 0 {
            return Err("peer or tunnel id 0");
        }
        if (self.endpoint_addr == 0) != (self.endpoint_port == 0) {
            return Err("endpoint address without port, or the reverse");
        }
        if self.flags & !WG_PEER_HAS_PSK != 0 {
            return Err("unknown peer flags");
        }
        if self.psk().is_none() && self.preshared_key != [0; WG_KEY_LEN] {
            return Err("preshared key set without its flag");
        }
        Ok(())
    }
}

impl TableEntry for WgAllowedIpEntry {
    const KIND: TableKind = TableKind::WgAllowedIp;
    const DEFAULT_MAX: u64 = 1 << 20;
    fn validate(&self) -> Result<(), &'static str> {
        if self.peer_id == 0 {
            return Err("peer id 0");
        }
        if self.prefix_len > 32 {
            return Err("prefix length above 32");
        }
        if !host_bits_clear(self.prefix, self.prefix_len) {
            return Err("host bits set in prefix");
        }
        Ok(())
    }
}

/// The WireGuard configuration as pushed. `Debug` redacts keys (through
/// the entries' `Debug`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WgTables {
    pub tunnels: Vec<WgTunnelEntry>,
    pub peers: Vec<WgPeerEntry>,
    pub allowed_ips: Vec<WgAllowedIpEntry>,
}

impl WgTables {
    /// Checks what single entries cannot: unique ids, tunnel names, ports
    /// and peer keys per tunnel, and that every reference resolves.
    pub fn check_references(&self) -> Result<(), ShmError> {
        let bad = |reason| Err(ShmError::BadDirectory { reason });
        let mut ids = HashSet::new();
        let mut names = HashSet::new();
        let mut ports = HashSet::new();
        for t in &self.tunnels {
            if !ids.insert(t.id) {
                return bad("two tunnels with one id");
            }
            if !names.insert(t.name) {
                return bad("two tunnels with one name");
            }
            if !ports.insert(t.listen_port) {
                return bad("two tunnels on one listen port");
            }
        }
        let mut peers = HashSet::new();
        let mut keys = HashSet::new();
        for p in &self.peers {
            if !ids.contains(&p.tunnel_id) {
                return bad("peer of an unknown tunnel");
            }
            if !peers.insert(p.peer_id) {
                return bad("two peers with one id");
            }
            if !keys.insert((p.tunnel_id, p.public_key)) {
                return bad("two peers of a tunnel with one public key");
            }
        }
        if self.allowed_ips.iter().any(|a| !peers.contains(&a.peer_id)) {
            return bad("allowed IP of an unknown peer");
        }
        Ok(())
    }

    /// The file's tables (every entry and reference validated).
    pub fn builder(&self) -> Result<GenerationBuilder, ShmError> {
        self.check_references()?;
        let mut g = GenerationBuilder::new();
        let mut t = TableBuilder::<WgTunnelEntry>::new();
        t.extend_from_slice(&self.tunnels)?;
        g.add(t)?;
        let mut t = TableBuilder::<WgPeerEntry>::new();
        t.extend_from_slice(&self.peers)?;
        g.add(t)?;
        let mut t = TableBuilder::<WgAllowedIpEntry>::new();
        t.extend_from_slice(&self.allowed_ips)?;
        g.add(t)?;
        Ok(g)
    }

    /// The tables of a parsed WireGuard file, references checked.
    pub fn from_view(v: &GenerationView<'_>) -> Result<WgTables, ShmError> {
        let t = WgTables {
            tunnels: v
                .table::<WgTunnelEntry>()
                .map_or_else(Vec::new, |t| t.entries().to_vec()),
            peers: v
                .table::<WgPeerEntry>()
                .map_or_else(Vec::new, |t| t.entries().to_vec()),
            allowed_ips: v
                .table::<WgAllowedIpEntry>()
                .map_or_else(Vec::new, |t| t.entries().to_vec()),
        };
        t.check_references()?;
        Ok(t)
    }

    /// The allowed IPs of peer `peer_id`.
    pub fn allowed_ips_of(&self, peer_id: u32) -> impl Iterator<Item = &WgAllowedIpEntry> + '_ {
        self.allowed_ips
            .iter()
            .filter(move |a| a.peer_id == peer_id)
    }
}

impl WgTunnelEntry {
    /// A tunnel without address; `None` when the name does not fit.
    pub fn new(
        id: u32,
        name: &str,
        listen_port: u16,
        private_key: [u8; WG_KEY_LEN],
        public_key: [u8; WG_KEY_LEN],
    ) -> Option<Self> {
        Some(WgTunnelEntry {
            id,
            listen_port,
            address_len: 0,
            reserved0: 0,
            address: 0,
            reserved1: 0,
            name: encode_name(name)?,
            private_key,
            public_key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> WgTables {
        let mut t = WgTunnelEntry::new(7, "wg0", 51820, [0x11; 32], [0x22; 32]).unwrap();
        t.address = 0x0a63_0001;
        t.address_len = 24;
        WgTables {
            tunnels: vec![t],
            peers: vec![WgPeerEntry {
                tunnel_id: 7,
                peer_id: 3,
                endpoint_addr: 0xc000_0202,
                endpoint_port: 51820,
                persistent_keepalive_secs: 25,
                flags: WG_PEER_HAS_PSK,
                reserved: 0,
                public_key: [0x33; 32],
                preshared_key: [0x44; 32],
            }],
            allowed_ips: vec![WgAllowedIpEntry {
                peer_id: 3,
                prefix: 0x0a09_0000,
                prefix_len: 16,
                reserved: [0; 7],
            }],
        }
    }

    #[test]
    fn tables_round_trip_through_the_file_format() {
        let t = sample();
        let bytes = crate::AlignedBuf::copy_from(&t.builder().unwrap().encode(4));
        let v = GenerationView::parse(bytes.as_bytes()).unwrap();
        assert_eq!(v.generation(), 4);
        let back = WgTables::from_view(&v).unwrap();
        assert_eq!(back, t);
        assert_eq!(back.tunnels[0].name(), "wg0");
        assert_eq!(back.peers[0].psk(), Some(&[0x44; 32]));
        assert_eq!(back.allowed_ips_of(3).count(), 1);
    }

    #[test]
    fn debug_redacts_keys() {
        let text = format!("{:?}", sample());
        assert!(text.contains("redacted"), "{text}");
        // 0x11 (private) and 0x44 (preshared) bytes would print as 17 / 68
        // in a derived Debug, or as 1111 / 4444 in hex.
        for leak in ["17, 17", "68, 68", "1111", "4444"] {
            assert!(!text.contains(leak), "{leak} in {text}");
        }
    }

    #[test]
    fn bad_entries_and_dangling_references_are_refused() {
        let mut t = sample();
        t.peers[0].tunnel_id = 8;
        assert!(t.builder().is_err());
        let mut t = sample();
        t.allowed_ips[0].peer_id = 4;
        assert!(t.builder().is_err());
        let mut t = sample();
        t.allowed_ips[0].prefix_len = 8;
        assert!(t.builder().is_err(), "host bits");
        let mut t = sample();
        t.peers[0].flags = 0;
        assert!(t.builder().is_err(), "psk without flag");
        let mut t = sample();
        t.peers[0].endpoint_port = 0;
        assert!(t.builder().is_err(), "endpoint without port");
        let mut t = sample();
        let mut second = t.tunnels[0];
        second.id = 8;
        second.name = encode_name("wg1").unwrap();
        t.tunnels.push(second);
        assert!(t.builder().is_err(), "one listen port twice");
        t.tunnels[1].listen_port = 51821;
        assert!(t.builder().is_ok());
        let mut p = t.peers[0];
        p.peer_id = 9;
        t.peers.push(p);
        assert!(t.builder().is_err(), "one key twice in a tunnel");
        t.peers[1].tunnel_id = 8;
        assert!(t.builder().is_ok(), "one key in two tunnels is fine");
        assert!(WgTunnelEntry::new(1, &"x".repeat(40), 1, [0; 32], [0; 32]).is_none());
    }
}
