//! The WireGuard file: publication and the cheap poll, its own numbering
//! across publisher restarts, 0600 permissions (it holds private keys), a
//! corrupt file, and routes into tunnels in the route generations.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{sample_generation, TestDir};
use patronus_shm::wg::WG_PEER_HAS_PSK;
use patronus_shm::{
    GenerationBuilder, Publisher, RouteEntry, Subscriber, TableBuilder, WgAllowedIpEntry,
    WgPeerEntry, WgTables, WgTunnelEntry, ROUTE_KIND_TUNNEL,
};

fn tables(port: u16) -> WgTables {
    WgTables {
        tunnels: vec![WgTunnelEntry::new(1, "wg0", port, [0xa5; 32], [0x5a; 32]).unwrap()],
        peers: vec![WgPeerEntry {
            tunnel_id: 1,
            peer_id: 2,
            endpoint_addr: 0xc000_0201,
            endpoint_port: 51820,
            persistent_keepalive_secs: 0,
            flags: WG_PEER_HAS_PSK,
            reserved: 0,
            public_key: [0x42; 32],
            preshared_key: [0x99; 32],
        }],
        allowed_ips: vec![
            WgAllowedIpEntry {
                peer_id: 2,
                prefix: 0x0a02_0000,
                prefix_len: 16,
                reserved: [0; 7],
            },
            WgAllowedIpEntry {
                peer_id: 2,
                prefix: 0xc0a8_0101,
                prefix_len: 32,
                reserved: [0; 7],
            },
        ],
    }
}

#[test]
fn published_wg_reaches_the_subscriber_once() {
    let t = TestDir::new("wg");
    let mut sub = Subscriber::open(t.path()).unwrap();
    assert_eq!(sub.poll_wg().unwrap(), None, "nothing published yet");
    let mut p = Publisher::open(t.path()).unwrap();
    assert_eq!(p.publish_wg(&tables(51820)).unwrap(), 1);
    assert_eq!(sub.poll_wg().unwrap(), Some((1, tables(51820))));
    assert_eq!(sub.poll_wg().unwrap(), None, "seen");
    // Route generations and NAT files do not disturb it, nor it them.
    p.publish(&sample_generation(2)).unwrap();
    p.publish_nat(&Default::default()).unwrap();
    assert_eq!(sub.poll_wg().unwrap(), None);
    assert_eq!(p.current_generation(), 1);
    assert_eq!(p.nat_generation(), 1);
    assert_eq!(sub.poll_nat().unwrap().map(|n| n.0), Some(1));
    // No tunnels, then tunnels again: each newest file wins.
    assert_eq!(p.publish_wg(&WgTables::default()).unwrap(), 2);
    assert_eq!(p.publish_wg(&tables(51821)).unwrap(), 3);
    assert_eq!(sub.poll_wg().unwrap(), Some((3, tables(51821))));
    // A restarted publisher numbers on.
    drop(p);
    let mut p = Publisher::open(t.path()).unwrap();
    assert_eq!(p.wg_generation(), 3);
    assert_eq!(p.publish_wg(&WgTables::default()).unwrap(), 4);
    assert_eq!(sub.poll_wg().unwrap(), Some((4, WgTables::default())));
}

#[test]
fn the_wg_file_is_private() {
    let t = TestDir::new("wgmode");
    let mut p = Publisher::open(t.path()).unwrap();
    p.publish_wg(&tables(51820)).unwrap();
    let mode = std::fs::metadata(t.path().join("wg.bin"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "wg.bin mode {mode:o}");
    let dir = std::fs::metadata(t.path()).unwrap().permissions().mode();
    assert_eq!(dir & 0o777, 0o700, "runtime dir mode {dir:o}");
    // No temp file with the keys is left behind.
    let names: Vec<String> = std::fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.contains(".tmp.")), "{names:?}");
}

#[test]
fn a_corrupt_wg_file_is_reported_once() {
    let t = TestDir::new("wgbad");
    let mut p = Publisher::open(t.path()).unwrap();
    let mut sub = Subscriber::open(t.path()).unwrap();
    p.publish_wg(&tables(51820)).unwrap();
    let path = t.path().join("wg.bin");
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.windows(3).position(|w| w == b"wg0").unwrap();
    bytes[at] = b'x';
    std::fs::write(&path, &bytes).unwrap();
    assert!(sub.poll_wg().is_err(), "checksum mismatch");
    assert_eq!(sub.poll_wg().unwrap(), None);
    p.publish_wg(&tables(51820)).unwrap();
    assert_eq!(sub.poll_wg().unwrap(), Some((2, tables(51820))));
}

#[test]
fn dangling_references_are_refused_on_both_sides() {
    let t = TestDir::new("wgref");
    let mut p = Publisher::open(t.path()).unwrap();
    let mut bad = tables(51820);
    bad.allowed_ips[0].peer_id = 9;
    assert!(p.publish_wg(&bad).is_err());
    assert_eq!(p.wg_generation(), 0, "nothing published");
}

#[test]
fn routes_into_tunnels_travel_in_route_generations() {
    let t = TestDir::new("wgroute");
    let mut p = Publisher::open(t.path()).unwrap();
    let mut sub = Subscriber::open(t.path()).unwrap();
    let mut routes = TableBuilder::<RouteEntry>::new();
    routes.push(RouteEntry::tunnel(0x0a02_0000, 16, 1)).unwrap();
    let mut g = GenerationBuilder::new();
    g.add(routes).unwrap();
    p.publish(&g).unwrap();
    let gen = sub.poll().unwrap().unwrap();
    let r = gen.view().routes()[0];
    assert_eq!(r.kind, ROUTE_KIND_TUNNEL);
    assert_eq!(r.tunnel_id(), Some(1));
    // Engines that only know RouteKind skip it rather than misroute.
    assert_eq!(r.route_kind(), None);
    // A tunnel route without a tunnel id is refused by the builder.
    let mut routes = TableBuilder::<RouteEntry>::new();
    assert!(routes.push(RouteEntry::tunnel(0x0a02_0000, 16, 0)).is_err());
}
