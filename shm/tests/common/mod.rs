//! Helpers shared by the integration tests: a unique temporary runtime
//! directory removed on drop, and sample tables.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use patronus_shm::layout::{encode_name, NEIGHBOR_PERMANENT};
use patronus_shm::{
    GenerationBuilder, InterfaceEntry, NeighborEntry, RouteEntry, RouteKind, TableBuilder,
};

/// A fresh directory path (not created) under the system temp dir, removed
/// with everything in it when dropped.
pub struct TestDir(PathBuf);

impl TestDir {
    pub fn new(tag: &str) -> Self {
        static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p =
            std::env::temp_dir().join(format!("patronus-shm-{tag}-{}-{seq}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        TestDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `n` distinct valid routes: /24s, alternating via (ECMP of 2) and
/// connected, one blackhole at the end.
pub fn routes(n: u32) -> Vec<RouteEntry> {
    (0..n)
        .map(|i| {
            let prefix = 0x0a00_0000 | (i << 8);
            if i + 1 == n && n > 1 {
                RouteEntry::new(prefix, 24, RouteKind::Blackhole)
            } else if i % 2 == 0 {
                let mut r = RouteEntry::new(prefix, 24, RouteKind::Via);
                assert!(r.push_nexthop(0xc0a8_0001, 1));
                assert!(r.push_nexthop(0xc0a8_0002, 1));
                r
            } else {
                let mut r = RouteEntry::new(prefix, 24, RouteKind::Connected);
                assert!(r.push_nexthop(0, 0));
                r
            }
        })
        .collect()
}

pub fn interface(port: &str, addr: u32, prefix_len: u8, vlan: u16) -> InterfaceEntry {
    InterfaceEntry {
        port_name: encode_name(port).unwrap(),
        addr,
        vlan,
        mtu: 1500,
        prefix_len,
        reserved: [0; 7],
    }
}

pub fn neighbor(port: &str, addr: u32, mac: [u8; 6]) -> NeighborEntry {
    NeighborEntry {
        addr,
        vlan: 0,
        flags: NEIGHBOR_PERMANENT,
        mac,
        reserved: [0; 2],
        port_name: encode_name(port).unwrap(),
    }
}

/// A generation with `n` routes, two interfaces and one neighbor.
pub fn sample_generation(n: u32) -> GenerationBuilder {
    let mut r = TableBuilder::<RouteEntry>::new();
    r.extend_from_slice(&routes(n)).unwrap();
    let mut i = TableBuilder::<InterfaceEntry>::new();
    i.push(interface("lan0", 0x0a01_0001, 24, 0)).unwrap();
    i.push(interface("wan0", 0x0a02_0001, 24, 100)).unwrap();
    let mut nb = TableBuilder::<NeighborEntry>::new();
    nb.push(neighbor("wan0", 0x0a02_00fe, [2, 0, 0, 0, 0, 1]))
        .unwrap();
    let mut g = GenerationBuilder::new();
    g.add(r).unwrap().add(i).unwrap().add(nb).unwrap();
    g
}
