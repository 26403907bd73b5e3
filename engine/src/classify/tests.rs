//! The workers' classifier against the offline one, on the real captures
//! of the nDPI corpus: replayed packet by packet through
//! [`Classifier::observe`] (with [`Classifier::poll`] between packets, as
//! the workers run it), every flow must end with the class, method and
//! application name that `patronus_ml::classifier::classify_file` gives it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use patronus_classify::pcap::Capture;
use patronus_classify::{corpus, Class};

use super::infer::Model;
use super::key::{self, FlowKey};
use super::table::FlowMethod;
use super::{Classifier, Params};

fn model_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/flow-mlp.bin")
}

fn model() -> Arc<Model> {
    let bytes = std::fs::read(model_path()).expect("models/flow-mlp.bin");
    Arc::new(Model::from_bytes(&bytes).expect("a valid model"))
}

fn params(batch: usize) -> Params {
    // Some captures jump ahead in time: nothing ages out while replaying.
    let never = u64::MAX / 4;
    Params {
        flows: 1 << 16,
        dpi_slots: 1 << 12,
        batch,
        batch_wait_ns: 5_000_000,
        // Offline, a flow is decided on all it has: never early here.
        decide_after_ns: never,
        idle_tcp_ns: never,
        idle_tcp_closed_ns: never,
        idle_udp_ns: never,
    }
}

/// Replays the capture's IPv4 packets; None when one is cut short by the
/// capture's snap length (the offline reader uses what is there, the
/// engine never receives such a packet: not comparable).
fn replay(c: &mut Classifier, path: &Path) -> Option<()> {
    let cap = Capture::read(path).ok()?;
    // Not always in time order: the engine clock starts at the earliest.
    let t0 = cap.frames.iter().map(|f| f.ts_ns).min()?;
    for f in &cap.frames {
        let Some(ip) = cap.ip(f) else { continue };
        if ip.first().map(|b| b >> 4) != Some(4) || ip.len() < 20 {
            continue;
        }
        if usize::from(u16::from_be_bytes([ip[2], ip[3]])) > ip.len() {
            return None;
        }
        let now = f.ts_ns.saturating_sub(t0);
        c.observe(ip, now);
        c.poll(now);
    }
    Some(())
}

fn engine_key(f: &patronus_classify::flows::Flow) -> Option<FlowKey> {
    let (std::net::IpAddr::V4(ca), std::net::IpAddr::V4(sa)) = (f.client.ip(), f.server.ip())
    else {
        return None;
    };
    let (c, s) = (
        (u32::from(ca), f.client.port()),
        (u32::from(sa), f.server.port()),
    );
    let (lo, hi) = if c <= s { (c, s) } else { (s, c) };
    let proto = if f.l4 == patronus_classify::L4::Tcp {
        6
    } else {
        17
    };
    Some(FlowKey::new(lo.0, lo.1, hi.0, hi.1, proto))
}

fn find(c: &Classifier, k: &FlowKey) -> Option<usize> {
    let t = c.table();
    (0..t.capacity()).find(|&i| t.key(i) == k)
}

#[test]
fn replayed_captures_classify_as_offline() {
    let m = model();
    let caps = corpus::captures(&corpus::pcap_dir()).expect("the nDPI corpus");
    let (mut compared, mut files, mut inferred) = (0, 0, 0);
    let mut classes = std::collections::BTreeSet::new();
    for path in caps {
        let mut c = Classifier::new(params(16), Some(m.clone()));
        if replay(&mut c, &path).is_none() {
            continue;
        }
        c.settle(u64::MAX / 2);
        let Ok(offline) = patronus_ml::classifier::classify_file(&path, Some(&m.mlp)) else {
            continue;
        };
        files += 1;
        for (cl, d) in offline {
            let Some(k) = engine_key(&cl.flow) else {
                continue;
            };
            let i = find(&c, &k)
                .unwrap_or_else(|| panic!("{}: flow {k:?} not in the table", path.display()));
            let f = c.table().flow(i);
            assert_ne!(f.method, FlowMethod::Pending, "{}: {k:?}", path.display());
            assert_eq!(
                (
                    f.class,
                    f.method.label(),
                    c.table().name(i).map(|n| n.as_str().to_string())
                ),
                (
                    d.class,
                    d.method.label(),
                    d.name.map(|n| n.as_str().to_string())
                ),
                "{}: flow {k:?}",
                path.display()
            );
            compared += 1;
            inferred += usize::from(f.method == FlowMethod::Ml);
            classes.insert(f.class);
        }
    }
    // The comparison covered the corpus, both methods and every class.
    assert!(files > 100, "{files} captures");
    assert!(
        compared > 1000 && inferred > 100,
        "{compared} flows, {inferred} by the model"
    );
    assert_eq!(classes.len(), Class::ALL.len(), "{classes:?}");
}

#[test]
fn later_stages_see_each_packets_flow_class_and_name() {
    let mut c = Classifier::new(params(4), Some(model()));
    let path = corpus::pcap_dir().join("443-curl.pcap");
    replay(&mut c, &path).expect("complete packets");
    let cap = Capture::read(&path).unwrap();
    let packets: Vec<&[u8]> = cap.frames.iter().filter_map(|f| cap.ip(f)).collect();
    // A packet of the capture's TLS flow: its class and SNI.
    let tls = packets
        .iter()
        .find(|ip| c.flow_of(ip).is_some_and(|(f, _)| f.class == Class::Tls))
        .expect("a TLS flow");
    let (f, name) = c.flow_of(tls).unwrap();
    assert_eq!(f.method, FlowMethod::Signature);
    assert_eq!(name.map(|n| n.as_str()), Some("www.ntop.org"));
    // The other direction finds the same flow.
    let reply = packets
        .iter()
        .find(|ip| ip[12..16] == tls[16..20] && ip[16..20] == tls[12..16] && ip[9] == tls[9])
        .expect("a reply");
    assert!(std::ptr::eq(c.flow_of(reply).unwrap().0, f));
    assert!(c.flow_of(&first_packet("443-chrome.pcap")).is_none());
}

#[test]
fn counters_add_up_and_slots_come_back() {
    let m = model();
    let path = corpus::pcap_dir().join("443-chrome.pcap");
    let mut c = Classifier::new(params(4), Some(m));
    replay(&mut c, &path).expect("complete packets");
    c.settle(u64::MAX / 2);
    let n = c.counts();
    let active = c.table().active() as u64;
    assert_eq!(n[super::C_CREATED], active);
    let classified: u64 = (0..Class::ALL.len())
        .map(|k| n[super::C_CLASS + 3 * k])
        .sum();
    assert_eq!(classified, active, "every flow decided once");
    assert_eq!(c.slots.in_use(), 0, "every slot freed");
    assert_eq!(
        n[super::C_INFERRED],
        (0..c.table().capacity())
            .filter(|&i| !c.table().key(i).is_empty() && c.table().flow(i).method == FlowMethod::Ml)
            .count() as u64
    );
    // Everything ages out.
    for _ in 0..(1 << 16) / super::SWEEP_BUDGET + 1 {
        c.poll(u64::MAX);
    }
    assert_eq!(c.table().active(), 0);
    assert_eq!(c.counts()[super::C_EXPIRED], active);
}

/// The first IPv4 packet of a capture of the corpus.
fn first_packet(name: &str) -> Vec<u8> {
    let cap = Capture::read(&corpus::pcap_dir().join(name)).unwrap();
    cap.frames.iter().find_map(|f| cap.ip(f)).unwrap().to_vec()
}

/// Every IPv4 packet of a capture of the corpus.
fn packets(name: &str) -> Vec<Vec<u8>> {
    let cap = Capture::read(&corpus::pcap_dir().join(name)).unwrap();
    cap.frames
        .iter()
        .filter_map(|f| cap.ip(f))
        .map(<[u8]>::to_vec)
        .collect()
}

#[test]
fn without_a_slot_or_a_model_flows_are_still_tracked() {
    let mut p = params(4);
    p.dpi_slots = 1;
    let mut c = Classifier::new(p, None);
    // Two TCP SYNs: the first flow takes the only slot, the second waits
    // without one.
    let (a, b) = (
        first_packet("443-chrome.pcap"),
        first_packet("443-curl.pcap"),
    );
    c.observe(&a, 1);
    c.observe(&b, 2);
    let n = c.counts();
    assert_eq!((n[super::C_CREATED], n[super::C_SLOTS_EXHAUSTED]), (2, 1));
    let t = c.table();
    let of = |ip: &[u8]| {
        let k = key::parse(ip).unwrap().key;
        *t.flow(find(&c, &k).unwrap())
    };
    assert_eq!(of(&a).method, FlowMethod::Pending);
    assert!(of(&b).starved && of(&b).method == FlowMethod::Pending);
    assert_eq!(of(&b).packets, [1, 0]);
    // No model: settling decides the first by its signatures alone, and
    // the starved one as unknown.
    c.settle(3);
    let t = c.table();
    for ip in [&a, &b] {
        let k = key::parse(ip).unwrap().key;
        let f = t.flow(find(&c, &k).unwrap());
        assert_eq!(f.method, FlowMethod::None);
    }
    assert_eq!(c.counts()[super::C_INFERRED], 0);
    assert_eq!(c.slots.in_use(), 0);
}

/// A classifier with one slot, held by the flow of 443-firefox.pcap (its
/// SYN seen), and that capture's and 443-curl.pcap's packets.
fn one_slot_taken() -> (Classifier, Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut p = params(4);
    p.dpi_slots = 1;
    let mut c = Classifier::new(p, None);
    let (firefox, curl) = (packets("443-firefox.pcap"), packets("443-curl.pcap"));
    c.observe(&firefox[0], 1);
    (c, firefox, curl)
}

#[test]
fn a_starved_flow_takes_a_slot_freed_before_its_payload() {
    let (mut c, firefox, curl) = one_slot_taken();
    // curl's SYN finds no slot.
    c.observe(&curl[0], 2);
    assert!(
        c.table()
            .flow(find(&c, &key::parse(&curl[0]).unwrap().key).unwrap())
            .starved
    );
    // firefox's ClientHello decides its flow and frees the slot...
    for (t, ip) in firefox.iter().enumerate().skip(1) {
        c.observe(ip, 10 + t as u64);
    }
    // ...which curl's flow takes before its own ClientHello.
    for (t, ip) in curl.iter().enumerate().skip(1) {
        c.observe(ip, 1000 + t as u64);
    }
    for (ip, name) in [(&firefox[0], "firefox"), (&curl[0], "curl")] {
        let (f, sni) = c.flow_of(ip).unwrap();
        assert_eq!(
            (f.class, f.method, sni.map(|n| n.as_str())),
            (Class::Tls, FlowMethod::Signature, Some("www.ntop.org")),
            "{name}"
        );
    }
    assert_eq!(c.counts()[super::C_SLOTS_EXHAUSTED], 1);
}

#[test]
fn a_starved_flow_whose_payload_passes_uninspected_is_unknown() {
    let (mut c, _, curl) = one_slot_taken();
    // curl's whole flow while firefox's holds the slot.
    for (t, ip) in curl.iter().enumerate() {
        c.observe(ip, 2 + t as u64);
    }
    let (f, sni) = c.flow_of(&curl[0]).unwrap();
    assert_eq!(
        (f.class, f.method, sni),
        (Class::Unknown, FlowMethod::None, None)
    );
    assert!(!f.starved);
}

#[test]
fn malformed_packets_are_not_tracked() {
    let mut c = Classifier::new(params(4), None);
    let ip = first_packet("443-chrome.pcap");
    for cut in 0..ip.len() {
        c.observe(&ip[..cut], 1);
    }
    // Version 0, version 5, a 16-byte header.
    for bad in [0u8, 0x55, 0x44] {
        let mut b = ip.clone();
        b[0] = bad;
        c.observe(&b, 1);
    }
    assert_eq!(c.counts()[super::C_CREATED], 0);
    assert!(key::parse(&ip).is_some());
    c.observe(&ip, 1);
    assert_eq!(c.counts()[super::C_CREATED], 1);
}
