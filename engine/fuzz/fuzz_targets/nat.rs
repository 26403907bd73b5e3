//! Fuzzes the pipeline with NAT44 on: the input is split into IPv4 packets
//! (a direction byte and a 2-byte length each) that arrive on the inside or
//! the outside port behind a fixed Ethernet header, with the IPv4 header
//! checksum fixed up so that most of them get past the header checks and
//! into NAT (sessions, forwards, 1:1, hairpins, ICMP errors, fragments).
//! The clock advances between bursts so sessions expire. Nothing may panic,
//! and every buffer must come back.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use patronus_engine::buffer::{Batch, PacketPool};
use patronus_engine::config::EngineConfig;
use patronus_engine::counters::WorkerCounters;
use patronus_engine::fib::Fib;
use patronus_engine::pipeline::{NeighborSync, Pipeline};
use patronus_engine::ports::Port;

#[path = "../common/fuzz_port.rs"]
mod fuzz_port;
use fuzz_port::{FuzzPort, Queue};

const CFG: &str = r#"
[engine]
pool_size = 1024
[[port]]
name = "a"
driver = "mem"
[[port]]
name = "b"
driver = "mem"
[[interface]]
port = "a"
address = "10.1.0.1/24"
[[interface]]
port = "b"
address = "10.2.0.1/24"
[[route]]
prefix = "10.0.0.0/8"
via = "10.2.0.254"
[[neighbor]]
port = "b"
address = "10.2.0.254"
mac = "02:00:00:00:02:fe"
[[neighbor]]
port = "a"
address = "10.1.0.2"
mac = "02:00:00:00:01:02"
[arp]
queue_len = 16
[nat]
outside = "b"
pool = ["10.2.0.1", "10.2.0.2"]
max_sessions = 64
max_sessions_per_host = 8
[nat.timeouts]
udp = 2
tcp_transitory = 1
tcp_initial = 2
icmp_query = 1
fragment = 1
[[nat.forward]]
proto = "udp"
outside = "10.2.0.1:53"
inside = "10.1.0.2:53"
[[nat.one_to_one]]
outside = "10.2.0.9"
inside = "10.1.0.9"
"#;

const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 0xa];
const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 0xb];

/// Built once (a 10/8 route fills 64 K tbl24 entries).
static SETUP: std::sync::OnceLock<(EngineConfig, Arc<Fib>)> = std::sync::OnceLock::new();

/// An Ethernet frame to `mac` around `ip`, its header checksum fixed.
fn frame(mac: [u8; 6], ip: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + ip.len());
    f.extend_from_slice(&mac);
    f.extend_from_slice(&[2, 0, 0, 0, 9, 9, 0x08, 0x00]);
    f.extend_from_slice(ip);
    let ihl = usize::from(ip.first().copied().unwrap_or(0) & 0x0f) * 4;
    if ihl >= 20 && 14 + ihl <= f.len() {
        f[24] = 0;
        f[25] = 0;
        let mut s = 0u32;
        for w in f[14..14 + ihl].chunks(2) {
            s += u32::from(u16::from_be_bytes([w[0], w[1]]));
        }
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        f[24..26].copy_from_slice(&(!(s as u16)).to_be_bytes());
    }
    f
}

fuzz_target!(|data: &[u8]| {
    let (cfg, fib) = SETUP.get_or_init(|| {
        let cfg = EngineConfig::parse(CFG).unwrap();
        let fib = Arc::new(Fib::build(&cfg).unwrap());
        (cfg, fib)
    });
    let plan = cfg.nat.as_ref().unwrap().to_plan(cfg).unwrap();
    let qa: Queue = Default::default();
    let qb: Queue = Default::default();
    let ports: Vec<Box<dyn Port>> = vec![
        Box::new(FuzzPort { mac: MAC_A, rx: qa.clone() }),
        Box::new(FuzzPort { mac: MAC_B, rx: qb.clone() }),
    ];
    let counters = Arc::new(WorkerCounters::new(2));
    let sync = NeighborSync::mesh(1, 16).pop().unwrap();
    let pool = PacketPool::new(1024);
    let mut p = Pipeline::new(cfg, fib.clone(), ports, pool, sync, counters);
    p.set_nat(Some(&plan), 0).unwrap();
    let mut rx = Batch::new();
    let mut rest = data;
    let mut now = 1u64;
    let mut k = 0usize;
    while rest.len() >= 3 {
        let inside = rest[0] & 1 == 0;
        let len = (u16::from_le_bytes([rest[1], rest[2]]) as usize) % 1600;
        rest = &rest[3..];
        let take = len.min(rest.len());
        let ip = &rest[..take];
        rest = &rest[take..];
        if inside {
            qa.borrow_mut().push_back(frame(MAC_A, ip))
        } else {
            qb.borrow_mut().push_back(frame(MAC_B, ip))
        }
        k += 1;
        if k % 4 == 0 {
            p.poll(&mut rx, now);
            now += 700_000_000;
        }
    }
    for _ in 0..4 {
        p.poll(&mut rx, now);
        now += 700_000_000;
    }
    drop(p);
});
