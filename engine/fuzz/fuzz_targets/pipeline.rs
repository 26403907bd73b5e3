//! Fuzzes the whole forwarding pipeline: the input is split into frames
//! (2-byte length prefixes) that arrive on two ports, with a clock that
//! advances between bursts so ARP timers, ICMP rate limits and the pending
//! queue all run. The pipeline must never panic and never leak buffers.
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
[[interface]]
port = "b"
vlan = 7
address = "10.3.0.1/24"
[[route]]
prefix = "0.0.0.0/0"
via = ["10.2.0.254", "10.3.0.254"]
[arp]
queue_len = 16
"#;

/// Built once: filling the default route writes all 16 M tbl24 entries.
static SETUP: std::sync::OnceLock<(EngineConfig, Arc<Fib>)> = std::sync::OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let (cfg, fib) = SETUP.get_or_init(|| {
        let cfg = EngineConfig::parse(CFG).unwrap();
        let fib = Arc::new(Fib::build(&cfg).unwrap());
        (cfg, fib)
    });
    let fib = fib.clone();
    let qa: Queue = Default::default();
    let qb: Queue = Default::default();
    let ports: Vec<Box<dyn Port>> = vec![
        Box::new(FuzzPort { mac: [2, 0, 0, 0, 0, 0xa], rx: qa.clone() }),
        Box::new(FuzzPort { mac: [2, 0, 0, 0, 0, 0xb], rx: qb.clone() }),
    ];
    let counters = Arc::new(WorkerCounters::new(2));
    let sync = NeighborSync::mesh(1, 16).pop().unwrap();
    let pool = PacketPool::new(1024);
    let mut p = Pipeline::new(cfg, fib, ports, pool, sync, counters);
    let mut rx = Batch::new();
    let mut rest = data;
    let mut now = 1u64;
    let mut k = 0usize;
    while rest.len() >= 2 {
        let len = (u16::from_le_bytes([rest[0], rest[1]]) as usize) % 2100;
        rest = &rest[2..];
        let take = len.min(rest.len());
        let frame = rest[..take].to_vec();
        rest = &rest[take..];
        if k % 2 == 0 { qa.borrow_mut().push_back(frame) } else { qb.borrow_mut().push_back(frame) }
        k += 1;
        if k % 8 == 0 {
            p.poll(&mut rx, now);
            now += 150_000_000;
        }
    }
    for _ in 0..20 {
        p.poll(&mut rx, now);
        now += 150_000_000;
    }
});
