//! Fuzzes the whole forwarding pipeline: the input is split into frames
//! (2-byte length prefixes) that arrive on two ports, with a clock that
//! advances between bursts so ARP timers, ICMP rate limits and the pending
//! queue all run. Classification is on (a small flow table, few slots, the
//! repository's model in batches of 4, short timeouts), so forwarded frames
//! also go through the flow table, the dissectors, inference and aging;
//! and the load balancer (a NAT-mode and a DSR VIP, a tiny pin table).
//! IPv6 is on too (addresses on both ports and a VLAN, an ECMP default
//! route, a blackhole, a permanent neighbor): ND, echo, ICMPv6 errors.
//! The pipeline must never panic and never leak buffers.
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
[[interface]]
port = "a"
address = "2001:db8:1::1/64"
[[interface]]
port = "b"
address = "2001:db8:2::1/64"
[[interface]]
port = "b"
vlan = 7
address = "2001:db8:3::1/64"
[[route]]
prefix = "::/0"
via = ["2001:db8:2::254", "2001:db8:3::254"]
[[route]]
prefix = "2001:db8:dead::/48"
blackhole = true
[[neighbor]]
port = "b"
address = "2001:db8:2::9"
mac = "02:00:00:00:02:09"
[arp]
queue_len = 16
[classify]
flows = 64
dpi_slots = 8
batch = 4
decide_after_ms = 200
[classify.idle_timeouts]
tcp = 2
tcp_closed = 1
udp = 1
[lb]
max_flows = 32
tcp_timeout_secs = 2
tcp_closing_timeout_secs = 1
udp_timeout_secs = 1
[[lb.vip]]
address = "10.9.0.1"
port = 80
[[lb.vip.backend]]
address = "10.2.0.11"
port = 8080
[[lb.vip.backend]]
address = "10.3.0.12"
port = 8080
weight = 2
[[lb.vip]]
address = "10.9.0.1"
port = 53
protocol = "udp"
mode = "dsr"
[[lb.vip.backend]]
address = "10.2.0.13"
"#;

/// Built once: filling the default route writes all 16 M tbl24 entries.
type Model = Option<Arc<patronus_engine::classify::infer::Model>>;
static SETUP: std::sync::OnceLock<(EngineConfig, Arc<Fib>, Model)> = std::sync::OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let (cfg, fib, model) = SETUP.get_or_init(|| {
        let cfg = EngineConfig::parse(CFG).unwrap();
        let fib = Arc::new(Fib::build(&cfg).unwrap());
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/flow-mlp.bin");
        let model = patronus_engine::classify_link::load_model_file(&path).ok().map(Arc::new);
        assert!(model.is_some(), "the model at {}", path.display());
        (cfg, fib, model)
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
    p.enable_classify(cfg.classify.as_ref().unwrap(), model.clone(), 0);
    let lb = patronus_engine::lb_link::LbShared::new(cfg, 1).unwrap();
    p.set_lb(lb.plans.load().1, 0, 1);
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
