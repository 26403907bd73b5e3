//! After start-up the packet path allocates nothing: a counting global
//! allocator watches thousands of batches through the full pipeline
//! (mem generator → Ethernet/IPv4 checks → LPM → TTL → rewrite → mem sink),
//! including ICMP errors and ARP traffic the engine originates.

use std::sync::Arc;

use patronus_engine::buffer::{Batch, PacketPool};
use patronus_engine::config::EngineConfig;
use patronus_engine::counters::{read, DropReason, WorkerCounters};
use patronus_engine::fib::Fib;
use patronus_engine::pipeline::{NeighborSync, Pipeline};
use patronus_engine::ports;

mod common;

#[global_allocator]
static GLOBAL: common::Counting = common::Counting;

const CFG: &str = r#"
[engine]
pool_size = 4096
[[port]]
name = "gen"
driver = "mem"
[port.generator]
flows = 128
pattern = "random"
sizes = [64, 512, 1500]
src = "10.1.0.4/30"
dst = "10.2.0.0/16"
[[port]]
name = "sink"
driver = "mem"
[[interface]]
port = "gen"
address = "10.1.0.1/24"
[[interface]]
port = "sink"
address = "10.9.0.1/24"
[[route]]
prefix = "10.2.0.0/27"
via = "10.9.0.2"
[[neighbor]]
port = "sink"
address = "10.9.0.2"
mac = "02:00:00:00:09:02"
"#;

#[test]
fn packet_path_allocates_nothing_after_start() {
    let cfg = EngineConfig::parse(CFG).unwrap();
    let fib = Arc::new(Fib::build(&cfg).unwrap());
    let opened: Vec<_> = cfg
        .ports
        .iter()
        .map(|p| ports::open(p, 0, 1).unwrap())
        .collect();
    let counters = Arc::new(WorkerCounters::new(2));
    let sync = NeighborSync::mesh(1, 16).pop().unwrap();
    let mut p = Pipeline::new(
        &cfg,
        fib,
        opened,
        PacketPool::new(4096),
        sync,
        counters.clone(),
    );
    let mut rx = Batch::new();
    // Warm up: first ARP requests and ICMP errors, neighbor entries.
    let mut now = 1u64;
    for _ in 0..200 {
        p.poll(&mut rx, now);
        now += 100_000;
    }
    common::self_check();
    common::start();
    for _ in 0..5000 {
        p.poll(&mut rx, now);
        now += 100_000;
    }
    let allocs = common::stop();
    let forwarded = read(&counters.ports[1].tx_packets);
    // Half the destinations (10.2.0.32 and up) have no route: those exercise the
    // ICMP error path (rate-limited) and the drop counters.
    let no_route = counters.drop_count(DropReason::NoRoute);
    assert!(forwarded > 100_000, "traffic flowed: {forwarded}");
    assert!(no_route > 10_000, "drops exercised: {no_route}");
    assert!(read(&counters.icmp_sent) > 0, "ICMP errors were built");
    assert_eq!(allocs, 0, "allocations on the packet path");
}
