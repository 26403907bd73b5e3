//! Tests of the `mem` driver through its `Port` interface: frame validity
//! (checked with an independent checksum), flow and size patterns, count,
//! rate limit, sink and capture.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use super::*;
use crate::config::{FlowPattern, PortDriver};

fn generator(flows: u32, sizes: &[u16]) -> GeneratorConfig {
    GeneratorConfig {
        flows,
        pattern: FlowPattern::Fixed,
        sizes: sizes.to_vec(),
        rate_pps: 0,
        count: 0,
        src: "10.1.0.0/24".into(),
        dst: "10.2.0.0/16".into(),
        dst_mac: None,
        src_mac: None,
        src_port: 1024,
        dst_port: 9,
        seed: 0,
    }
}

fn port_cfg(g: Option<GeneratorConfig>) -> PortConfig {
    PortConfig {
        name: "gen0".into(),
        driver: PortDriver::Mem,
        kernel_ingress: None,
        iface: None,
        mac: None,
        mtu: None,
        rx_ring: None,
        ring_block_size: None,
        ring_blocks: None,
        afxdp: None,
        input: None,
        output: None,
        generator: g,
        device: None,
    }
}

/// Receives `n` frames (several bursts if needed) and returns their bytes.
fn frames(port: &mut MemPort, n: usize) -> Vec<Vec<u8>> {
    let mut pool = PacketPool::new(512);
    let mut batch = Batch::new();
    let mut out = Vec::new();
    while out.len() < n {
        let got = port.rx_burst(&mut pool, &mut batch);
        assert!(got > 0, "generator stopped after {} frames", out.len());
        out.extend(batch.drain().map(|p| p.data().to_vec()));
    }
    out.truncate(n);
    out
}

/// Internet checksum written independently of the driver's.
fn inet_csum(data: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for i in (0..data.len()).step_by(2) {
        let lo = data.get(i + 1).copied().unwrap_or(0);
        s += (u32::from(data[i]) << 8) | u32::from(lo);
    }
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Tuple {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
}

/// Checks every header field and both checksums; returns the 5-tuple.
fn check_frame(f: &[u8], dst_mac: [u8; 6], src_mac: [u8; 6]) -> Tuple {
    assert!(f.len() >= 42, "frame too short: {}", f.len());
    assert_eq!(&f[0..6], &dst_mac);
    assert_eq!(&f[6..12], &src_mac);
    assert_eq!(&f[12..14], &[0x08, 0x00]);
    let ip = &f[14..34];
    assert_eq!(ip[0], 0x45);
    assert_eq!(
        u16::from_be_bytes([ip[2], ip[3]]) as usize,
        f.len() - 14,
        "IPv4 total length"
    );
    assert_eq!(ip[6] & 0x3f, 0, "not a fragment");
    assert_eq!(ip[7], 0, "not a fragment");
    assert!(ip[8] > 0, "TTL");
    assert_eq!(ip[9], 17);
    assert_eq!(inet_csum(ip), 0, "IPv4 header checksum");
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let udp = &f[34..];
    let udp_len = u16::from_be_bytes([udp[4], udp[5]]) as usize;
    assert_eq!(udp_len, udp.len(), "UDP length");
    assert_ne!(&udp[6..8], &[0, 0], "UDP checksum present");
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&ip[12..20]);
    pseudo.extend_from_slice(&[0, 17]);
    pseudo.extend_from_slice(&(udp_len as u16).to_be_bytes());
    pseudo.extend_from_slice(udp);
    assert_eq!(inet_csum(&pseudo), 0, "UDP checksum");
    Tuple {
        src,
        dst,
        sport: u16::from_be_bytes([udp[0], udp[1]]),
        dport: u16::from_be_bytes([udp[2], udp[3]]),
    }
}

fn in_prefix(a: Ipv4Addr, net: [u8; 4], len: u32) -> bool {
    let mask = u32::MAX << (32 - len);
    u32::from(a) & mask == u32::from(Ipv4Addr::from(net))
}

#[test]
fn frames_are_valid_udp_with_default_macs() {
    let cfg = port_cfg(Some(generator(7, &[60, 61, 64, 127, 1500, 2048])));
    let mut port = MemPort::open(&cfg, 0, 1).unwrap();
    let own = port.link().mac;
    assert_eq!(own, mac::mac_from_name("gen0"));
    for f in frames(&mut port, 300) {
        let t = check_frame(&f, own, [0x02, 0, 0, 0, 0, 0xfe]);
        assert!(in_prefix(t.src, [10, 1, 0, 0], 24), "{t:?}");
        assert!(in_prefix(t.dst, [10, 2, 0, 0], 16), "{t:?}");
        assert_eq!(t.dport, 9);
    }
}

#[test]
fn configured_macs_and_link() {
    let mut g = generator(1, &[64]);
    g.dst_mac = Some("02:aa:bb:cc:dd:ee".into());
    g.src_mac = Some("02:11:22:33:44:55".into());
    let mut cfg = port_cfg(Some(g));
    cfg.mac = Some("02:00:00:00:00:01".into());
    cfg.mtu = Some(9000);
    let mut port = MemPort::open(&cfg, 0, 1).unwrap();
    let link = port.link();
    assert!(link.up);
    assert_eq!(link.mtu, 9000);
    assert_eq!(link.mac, [2, 0, 0, 0, 0, 1]);
    let f = &frames(&mut port, 1)[0];
    check_frame(
        f,
        [0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee],
        [0x02, 0x11, 0x22, 0x33, 0x44, 0x55],
    );
    // Without a generator dst_mac, frames go to the port's own MAC.
    let mut port = MemPort::open(&port_cfg(Some(generator(1, &[64]))), 0, 1).unwrap();
    assert_eq!(port.link().mtu, 1500);
    let mac = port.link().mac;
    assert_eq!(&frames(&mut port, 1)[0][0..6], &mac);
}

#[test]
fn fixed_pattern_cycles_exactly_the_flows() {
    let flows = 5;
    let mut port = MemPort::open(&port_cfg(Some(generator(flows, &[64]))), 0, 1).unwrap();
    let mac = port.link().mac;
    let tuples: Vec<Tuple> = frames(&mut port, 600)
        .iter()
        .map(|f| check_frame(f, mac, [2, 0, 0, 0, 0, 0xfe]))
        .collect();
    let distinct: HashSet<Tuple> = tuples.iter().copied().collect();
    assert_eq!(distinct.len(), flows as usize);
    for (i, t) in tuples.iter().enumerate().skip(flows as usize) {
        assert_eq!(*t, tuples[i - flows as usize], "period is flows");
    }
    // Addresses and the source port vary, not just one field.
    let srcs: HashSet<_> = tuples.iter().map(|t| t.src).collect();
    let sports: HashSet<_> = tuples.iter().map(|t| t.sport).collect();
    assert_eq!(srcs.len(), flows as usize);
    assert_eq!(sports.len(), flows as usize);
}

#[test]
fn many_flows_in_tiny_prefixes_stay_distinct() {
    let mut g = generator(1000, &[64]);
    g.src = "192.0.2.7/32".into();
    g.dst = "198.51.100.0/31".into();
    let mut port = MemPort::open(&port_cfg(Some(g)), 0, 1).unwrap();
    let mac = port.link().mac;
    let distinct: HashSet<Tuple> = frames(&mut port, 1000)
        .iter()
        .map(|f| check_frame(f, mac, [2, 0, 0, 0, 0, 0xfe]))
        .collect();
    assert_eq!(distinct.len(), 1000);
    assert!(distinct
        .iter()
        .all(|t| t.src == Ipv4Addr::new(192, 0, 2, 7)));
    assert!(distinct
        .iter()
        .all(|t| in_prefix(t.dst, [198, 51, 100, 0], 31)));
}

#[test]
fn queues_generate_different_flows() {
    let cfg = port_cfg(Some(generator(16, &[64])));
    let set = |q: usize| -> HashSet<Tuple> {
        let mut port = MemPort::open(&cfg, q, 2).unwrap();
        let mac = port.link().mac;
        frames(&mut port, 64)
            .iter()
            .map(|f| check_frame(f, mac, [2, 0, 0, 0, 0, 0xfe]))
            .collect()
    };
    let (a, b) = (set(0), set(1));
    assert_eq!(a.len(), 16);
    assert_eq!(b.len(), 16);
    assert!(a.is_disjoint(&b));
}

#[test]
fn random_pattern_is_reproducible_and_uses_the_same_flows() {
    let flows = 8;
    let run = |seed: u64| -> Vec<Tuple> {
        let mut g = generator(flows, &[64]);
        g.pattern = FlowPattern::Random;
        g.seed = seed;
        let mut port = MemPort::open(&port_cfg(Some(g)), 0, 1).unwrap();
        let mac = port.link().mac;
        frames(&mut port, 500)
            .iter()
            .map(|f| check_frame(f, mac, [2, 0, 0, 0, 0, 0xfe]))
            .collect()
    };
    let a = run(42);
    assert_eq!(a, run(42), "same seed, same sequence");
    assert_ne!(a, run(43), "another seed, another sequence");
    let fixed: HashSet<Tuple> = {
        let mut port = MemPort::open(&port_cfg(Some(generator(flows, &[64]))), 0, 1).unwrap();
        let mac = port.link().mac;
        frames(&mut port, flows as usize)
            .iter()
            .map(|f| check_frame(f, mac, [2, 0, 0, 0, 0, 0xfe]))
            .collect()
    };
    let drawn: HashSet<Tuple> = a.iter().copied().collect();
    assert_eq!(
        drawn, fixed,
        "random draws among exactly the configured flows"
    );
    // Not a cycle: some flow repeats back to back in 500 draws of 8.
    assert!(a.windows(2).any(|w| w[0] == w[1]));
}

#[test]
fn sizes_are_used_in_turn() {
    let sizes = [60u16, 128, 1514, 99];
    let mut port = MemPort::open(&port_cfg(Some(generator(3, &sizes))), 0, 1).unwrap();
    let got: Vec<usize> = frames(&mut port, 400).iter().map(|f| f.len()).collect();
    for (i, len) in got.iter().enumerate() {
        assert_eq!(*len, sizes[i % sizes.len()] as usize, "frame {i}");
    }
}

#[test]
fn count_stops_the_generator() {
    let mut g = generator(2, &[64]);
    g.count = 300;
    let mut port = MemPort::open(&port_cfg(Some(g)), 0, 1).unwrap();
    let mut pool = PacketPool::new(1024);
    let mut batch = Batch::new();
    assert!(!port.rx_exhausted());
    assert_eq!(port.rx_burst(&mut pool, &mut batch), 256);
    batch.clear();
    assert!(!port.rx_exhausted());
    assert_eq!(port.rx_burst(&mut pool, &mut batch), 44);
    batch.clear();
    assert!(port.rx_exhausted());
    assert_eq!(port.rx_burst(&mut pool, &mut batch), 0);
}

#[test]
fn empty_pool_limits_a_burst_without_losing_count() {
    let mut g = generator(1, &[64]);
    g.count = 20;
    let mut port = MemPort::open(&port_cfg(Some(g)), 0, 1).unwrap();
    let mut pool = PacketPool::new(8);
    let mut batch = Batch::new();
    assert_eq!(port.rx_burst(&mut pool, &mut batch), 8);
    assert_eq!(port.rx_burst(&mut pool, &mut batch), 0);
    batch.clear();
    assert_eq!(port.rx_burst(&mut pool, &mut batch), 8);
    batch.clear();
    assert_eq!(port.rx_burst(&mut pool, &mut batch), 4);
    assert!(port.rx_exhausted());
}

#[test]
fn rate_limit_approximates_the_rate() {
    // A correctness check of the limiter (loose band), not a speed test.
    let rate = 5000u64;
    let mut g = generator(1, &[64]);
    g.rate_pps = rate;
    let mut port = MemPort::open(&port_cfg(Some(g)), 0, 1).unwrap();
    let mut pool = PacketPool::new(512);
    let mut batch = Batch::new();
    let start = Instant::now();
    let mut got = 0u64;
    while start.elapsed() < Duration::from_millis(200) {
        got += port.rx_burst(&mut pool, &mut batch) as u64;
        batch.clear();
        std::thread::sleep(Duration::from_micros(200));
    }
    let expected = rate as f64 * start.elapsed().as_secs_f64();
    let ratio = got as f64 / expected;
    assert!(
        (0.5..=1.5).contains(&ratio),
        "got {got} packets, expected about {expected:.0}"
    );
}

#[test]
fn sink_counts_and_captures_without_growing() {
    let mut source = MemPort::open(&port_cfg(Some(generator(3, &[64, 100]))), 0, 1).unwrap();
    let mut sink = MemPort::open(&port_cfg(None), 0, 1).unwrap();
    assert!(sink.rx_exhausted(), "a sink has no input");
    sink.capture_tx(5);
    let mut pool = PacketPool::new(512);
    let mut batch = Batch::new();
    let mut sent = Vec::new();
    for _ in 0..3 {
        source.rx_burst(&mut pool, &mut batch);
        sent.extend(batch.packets().iter().map(|p| p.data().to_vec()));
        assert_eq!(sink.tx_burst(&mut batch).packets, 256);
        assert!(batch.is_empty());
    }
    assert_eq!(pool.available(), 512, "sink returned every buffer");
    let bytes: u64 = sent.iter().map(|f| f.len() as u64).sum();
    assert_eq!(sink.sink_counts(), (768, bytes));
    assert_eq!(sink.captured(), &sent[..5]);
    assert!(sink.captured().iter().all(|c| c.capacity() == BUF_SIZE));
    // A port without a generator receives nothing.
    assert_eq!(sink.rx_burst(&mut pool, &mut batch), 0);
}

#[test]
fn bad_generator_config_is_refused() {
    let cases: Vec<(GeneratorConfig, &str)> = vec![
        (generator(1, &[30]), "sizes"),
        (generator(1, &[4000]), "sizes"),
        (generator(1, &[]), "sizes"),
        (generator(0, &[64]), "flows"),
        (
            GeneratorConfig {
                src: "10.0.0.0/40".into(),
                ..generator(1, &[64])
            },
            "src",
        ),
        (
            GeneratorConfig {
                dst_mac: Some("zz".into()),
                ..generator(1, &[64])
            },
            "dst_mac",
        ),
    ];
    for (g, key) in cases {
        let e = MemPort::open(&port_cfg(Some(g)), 0, 1).err().unwrap();
        assert!(e.to_string().contains(key), "{e}");
    }
    let mut cfg = port_cfg(None);
    cfg.mac = Some("nope".into());
    assert!(MemPort::open(&cfg, 0, 1).is_err());
}

#[test]
fn a_million_flows_have_distinct_inside_endpoints() {
    // nat-mem relies on this: with a /16 source the (address, port) pairs of
    // the generator's largest flow count never repeat, so each flow is a
    // new NAT mapping and session on the first pass.
    use super::template::{flow_addrs, HostRange};
    let src = HostRange::new(Ipv4Addr::new(10, 16, 0, 0), 16);
    let dst = HostRange::new(Ipv4Addr::new(192, 0, 2, 0), 24);
    let flows = 1u64 << 20;
    let mut seen = HashSet::with_capacity(flows as usize);
    for g in 0..flows {
        let a = flow_addrs(g, src, dst, 1024, 9);
        assert!(in_prefix(a.src, [10, 16, 0, 0], 16), "{a:?}");
        assert!(
            seen.insert((u32::from(a.src), a.sport)),
            "flow {g} repeats inside endpoint {}:{}",
            a.src,
            a.sport
        );
    }
    // And through the port: a fixed pattern walks the flows in order, so the
    // first frames are the first flows and the next pass starts over.
    let mut g = generator(1 << 20, &[64]);
    g.src = "10.16.0.0/16".into();
    g.dst = "192.0.2.0/24".into();
    let mut port = MemPort::open(&port_cfg(Some(g)), 0, 1).unwrap();
    let mac = port.link().mac;
    let got: Vec<Tuple> = frames(&mut port, 600)
        .iter()
        .map(|f| check_frame(f, mac, [2, 0, 0, 0, 0, 0xfe]))
        .collect();
    for (i, t) in got.iter().enumerate() {
        let a = flow_addrs(i as u64, src, dst, 1024, 9);
        assert_eq!(
            (t.src, t.sport, t.dst),
            (a.src, a.sport, a.dst),
            "frame {i}"
        );
    }
}
