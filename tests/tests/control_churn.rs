//! Route churn through the REST API under traffic: sequence-numbered UDP
//! flows cross the engine while the route set is changed 100 times in ways
//! that keep the flows' path (h1 → engine → h2); every datagram must arrive
//! exactly once and in order within its flow, and the engine must have
//! adopted a new table generation for every change.

use std::time::{Duration, Instant};

use patronus_e2e::control::Control;
use patronus_e2e::seqflow::{Receiver, Sender};
use patronus_e2e::topology::{RouterKind, H2};
use patronus_e2e::{EngineStats, TempDir, Topology};
use serde_json::json;

const READY: Duration = Duration::from_secs(15);
/// A destination behind h2 that only the pushed route reaches.
const DST: &str = "10.9.0.1";
const PREFIX: &str = "10.9.0.0/24";
/// A second address of h2 on the wan link: the other ECMP next hop.
const H2_B: &str = "10.2.0.3";
const UDP_PORT: u16 = 9999;
const FLOWS: u32 = 4;
const PPS: u32 = 2000;
const CHANGES: usize = 100;
/// Drops that traffic other than the test's may cause (the hosts' IPv6
/// multicast, ARP between other hosts); any other drop fails the test.
const EXPECTED_DROPS: &[&str] = &["eth_unsupported_type", "eth_not_for_us", "arp_not_for_us"];

fn ping_ok(t: &Topology, dst: &str) -> bool {
    t.h1.exec_output("ping", &["-n", "-c", "1", "-W", "1", dst])
        .status
        .success()
}

fn route_body(vias: &[&str]) -> serde_json::Value {
    let hops: Vec<_> = vias.iter().map(|v| json!({ "via": v })).collect();
    json!({ "prefix": PREFIX, "next_hops": hops })
}

/// Waits until every worker forwards with a table newer than `after`;
/// returns the new generation.
fn wait_adopted(t: &mut Topology, after: u64, change: &str) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = t.engine().stats();
        let acked = s.counter("table_generation_min_acked");
        if acked > after {
            return acked;
        }
        assert!(
            Instant::now() < deadline,
            "the engine did not adopt a table after {change} within 10 s \
             (generation {}, acked {acked}, before {after})",
            s.counter("table_generation")
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn drops_delta(before: &EngineStats, after: &EngineStats) -> Vec<(String, u64)> {
    after
        .drop_labels()
        .into_iter()
        .filter_map(|l| {
            let d = after.drop_count(&l) - before.drop_count(&l);
            (d > 0).then_some((l, d))
        })
        .collect()
}

#[test]
fn routes_change_100_times_without_loss_or_reordering() {
    let scratch = TempDir::new("churnrt");
    let runtime = scratch.path().join("shm");
    let extra = format!("[control]\nruntime_dir = \"{}\"\n", runtime.display());
    let mut t = Topology::build_workers("churn", RouterKind::from_env(), &extra, 1);
    t.wait_forwarding(READY);
    t.h2.ip(&["addr", "add", &format!("{DST}/32"), "dev", "lo"]);
    t.h2.addr_add("eth0", &format!("{H2_B}/24"));
    let dir = t.dir.path().to_path_buf();
    let port = 40000 + (std::process::id() % 20000) as u16;
    let c = Control::start(&dir, &runtime, port, "control");

    c.ctl_ok(&["interface", "add", "wan0", "10.2.0.1/24"]);
    assert!(!ping_ok(&t, DST), "{DST} reachable before any route");
    let route = c.request("POST", "routes", Some(&route_body(&[H2])));
    let id = route["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("POST routes answered {route}"));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !ping_ok(&t, DST) {
        assert!(
            Instant::now() < deadline,
            "{PREFIX} via {H2} never took effect"
        );
    }
    // Resolve the second next hop's MAC once, as a real ECMP path would have
    // been, so the churn tests table changes rather than ARP.
    assert!(t
        .h1
        .exec_output("ping", &["-n", "-c", "1", "-W", "1", H2_B])
        .status
        .success());

    let receiver = Receiver::start(&t.h2, UDP_PORT, &dir);
    let sender = Sender::start(&t.h1, DST, UDP_PORT, FLOWS, PPS, &dir);
    let before = t.engine().stats();
    let gen_before = before.counter("table_generation");
    let mut gen = before.counter("table_generation_min_acked");

    // Five kinds of change per round, all keeping PREFIX via h2: an
    // unrelated route added, PREFIX replaced by an identical route (a no-op
    // for the engine), PREFIX
    // made ECMP over h2's two addresses, back to one next hop, the unrelated
    // route removed.
    let route_path = format!("routes/{id}");
    let mut changed = 0;
    for i in 0.. {
        if changed == CHANGES {
            break;
        }
        let round = i / 5;
        let other = format!("10.77.{round}.0/24");
        let change = match i % 5 {
            0 => {
                c.ctl_ok(&["route", "add", &other, "via", H2]);
                format!("add {other}")
            }
            1 => {
                // Nothing changes: the control process publishes nothing
                // (a delta holds only real changes), so no table to wait for.
                c.request("PUT", &route_path, Some(&route_body(&[H2])));
                continue;
            }
            2 => {
                c.request("PUT", &route_path, Some(&route_body(&[H2, H2_B])));
                format!("ECMP PUT of {PREFIX}")
            }
            3 => {
                c.request("PUT", &route_path, Some(&route_body(&[H2_B])));
                format!("PUT of {PREFIX} via {H2_B}")
            }
            _ => {
                c.ctl_ok(&["route", "del", &other]);
                c.request("PUT", &route_path, Some(&route_body(&[H2])));
                format!("del {other} + PUT of {PREFIX} via {H2}")
            }
        };
        gen = wait_adopted(&mut t, gen, &format!("change {i} ({change})"));
        changed += 1;
    }

    // Traffic after the last change too, then stop and let the last
    // datagrams land before the receiver reports.
    std::thread::sleep(Duration::from_millis(300));
    let (sent, send_errors) = sender.finish();
    std::thread::sleep(Duration::from_millis(500));
    let (flows, bad) = receiver.finish();
    let after = t.engine().stats();
    let list = c.ctl_ok(&["route", "list"]);
    eprintln!("sent per flow {sent:?}, refused sends {send_errors}\nroutes:\n{list}");

    assert_eq!(sent.len(), FLOWS as usize);
    assert_eq!(send_errors, 0, "sends refused by an ICMP error");
    assert!(bad.is_null(), "short datagrams arrived: {bad}");
    let ids: Vec<u32> = flows.iter().map(|(f, _)| *f).collect();
    assert_eq!(
        ids,
        (0..FLOWS).collect::<Vec<_>>(),
        "flows seen by the receiver"
    );
    for ((f, r), &n) in flows.iter().zip(&sent) {
        assert!(n > 0, "flow {f} sent nothing");
        assert!(
            r.received == n
                && r.highest == n as i64 - 1
                && r.missing == 0
                && r.duplicates == 0
                && r.out_of_order == 0,
            "flow {f}: sent {n}, receiver saw {r:?}"
        );
    }
    let total: u64 = sent.iter().sum();
    eprintln!(
        "{total} datagrams in {FLOWS} flows, all delivered once and in order; \
         table generation {gen_before} -> {}",
        after.counter("table_generation")
    );

    let advanced = after.counter("table_generation") - gen_before;
    assert!(
        advanced >= CHANGES as u64,
        "table generation advanced by {advanced} over {CHANGES} changes (and the no-op PUTs between them)"
    );
    assert_eq!(
        after.counter("table_generation_min_acked"),
        after.counter("table_generation"),
        "a worker still uses an old table"
    );
    let unexpected: Vec<_> = drops_delta(&before, &after)
        .into_iter()
        .filter(|(l, _)| !EXPECTED_DROPS.contains(&l.as_str()))
        .collect();
    assert!(
        unexpected.is_empty(),
        "drops during the churn: {unexpected:?}"
    );
    let (status, _) = t.engine().stop();
    assert!(status.success(), "engine exit status {status}");
}
