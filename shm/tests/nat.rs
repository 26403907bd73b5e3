//! The NAT file: publication, the cheap poll, numbering across publisher
//! restarts, independence from the route generations, a corrupt file.

mod common;

use common::{sample_generation, TestDir};
use patronus_shm::nat::PROTO_UDP;
use patronus_shm::{
    NatForwardEntry, NatPoolEntry, NatSettingsEntry, NatTables, Publisher, Subscriber,
};

fn tables(port: &str) -> NatTables {
    NatTables {
        settings: NatSettingsEntry::new(port, 0),
        pool: vec![NatPoolEntry {
            addr: 0xc633_6401,
            reserved: 0,
        }],
        forwards: vec![NatForwardEntry {
            outside_addr: 0xc633_6401,
            inside_addr: 0x0a00_0002,
            outside_port: 53,
            inside_port: 5353,
            proto: PROTO_UDP,
            reserved: [0; 3],
        }],
        one_to_one: Vec::new(),
    }
}

#[test]
fn published_nat_reaches_the_subscriber_once() {
    let t = TestDir::new("nat");
    let mut sub = Subscriber::open(t.path()).unwrap();
    assert_eq!(sub.poll_nat().unwrap(), None, "nothing published yet");
    let mut p = Publisher::open(t.path()).unwrap();
    assert_eq!(p.publish_nat(&tables("wan0")).unwrap(), 1);
    assert_eq!(sub.poll_nat().unwrap(), Some((1, tables("wan0"))));
    assert_eq!(sub.poll_nat().unwrap(), None, "seen");
    // Route generations do not disturb it, nor it them.
    p.publish(&sample_generation(2)).unwrap();
    assert_eq!(sub.poll_nat().unwrap(), None);
    assert_eq!(p.current_generation(), 1);
    // Unmanaged, then managed again: each newest file wins.
    assert_eq!(p.publish_nat(&NatTables::default()).unwrap(), 2);
    assert_eq!(p.publish_nat(&tables("wan1")).unwrap(), 3);
    assert_eq!(sub.poll_nat().unwrap(), Some((3, tables("wan1"))));
    // A restarted publisher numbers on.
    drop(p);
    let mut p = Publisher::open(t.path()).unwrap();
    assert_eq!(p.nat_generation(), 3);
    assert_eq!(p.publish_nat(&NatTables::default()).unwrap(), 4);
    assert_eq!(sub.poll_nat().unwrap(), Some((4, NatTables::default())));
}

#[test]
fn a_corrupt_nat_file_is_reported_once() {
    let t = TestDir::new("natbad");
    let mut p = Publisher::open(t.path()).unwrap();
    let mut sub = Subscriber::open(t.path()).unwrap();
    p.publish_nat(&tables("wan0")).unwrap();
    let path = t.path().join("nat.bin");
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.windows(4).position(|w| w == b"wan0").unwrap();
    bytes[at] = b'x';
    std::fs::write(&path, &bytes).unwrap();
    assert!(sub.poll_nat().is_err());
    assert_eq!(sub.poll_nat().unwrap(), None);
    p.publish_nat(&tables("wan0")).unwrap();
    assert_eq!(sub.poll_nat().unwrap(), Some((2, tables("wan0"))));
}
