//! Sequence-numbered UDP flows (`py/seqflow.py`): a sender in one namespace,
//! a receiver in another that reports per flow what arrived, in which order.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::netns::Netns;
use crate::process::BgProcess;
use crate::scapy::PYTHON;

const SEQFLOW_PY: &str = include_str!("../py/seqflow.py");

/// Per-flow outcome reported by the receiver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowReport {
    pub received: u64,
    pub highest: i64,
    pub duplicates: u64,
    pub out_of_order: u64,
    pub missing: u64,
    /// The first anomalies (gap/late/duplicate), for messages.
    pub anomalies: Value,
}

fn start(ns: &Netns, args: &[&str], dir: &Path, name: &str, ready: &str) -> BgProcess {
    let mut full = vec!["-u", "-c", SEQFLOW_PY];
    full.extend_from_slice(args);
    let mut p = ns.spawn(PYTHON, &full, dir, name);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !p.stderr().contains(ready) {
        assert!(
            p.try_wait().is_none() && Instant::now() < deadline,
            "seqflow {name} did not start: {}",
            p.report()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    p
}

/// Stops a seqflow process with SIGINT and parses the JSON it prints.
fn finish(mut p: BgProcess) -> Value {
    let (status, clean) = p.stop(libc::SIGINT, Duration::from_secs(10));
    assert!(clean && status.success(), "seqflow: {}", p.report());
    let out = p.stdout();
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("seqflow printed {out:?}: {e}"))
}

/// A running receiver bound to a UDP port.
#[derive(Debug)]
pub struct Receiver(BgProcess);

impl Receiver {
    pub fn start(ns: &Netns, port: u16, dir: &Path) -> Self {
        Receiver(start(
            ns,
            &["recv", &port.to_string()],
            dir,
            "seq-recv",
            "listening",
        ))
    }

    /// Stops it and returns its per-flow report (flow id -> report) and
    /// the sizes of datagrams too short to carry a sequence number.
    pub fn finish(self) -> (Vec<(u32, FlowReport)>, Value) {
        let v = finish(self.0);
        let mut flows = Vec::new();
        let obj = v.as_object().expect("receiver prints an object");
        for (k, r) in obj {
            if k == "bad" {
                continue;
            }
            let n = |key: &str| r[key].as_u64().unwrap_or_else(|| panic!("{key} in {r}"));
            flows.push((
                k.parse().expect("flow id"),
                FlowReport {
                    received: n("received"),
                    highest: r["highest"].as_i64().expect("highest"),
                    duplicates: n("duplicates"),
                    out_of_order: n("out_of_order"),
                    missing: n("missing"),
                    anomalies: r["anomalies"].clone(),
                },
            ));
        }
        flows.sort_by_key(|(f, _)| *f);
        (flows, v.get("bad").cloned().unwrap_or(Value::Null))
    }
}

/// A running sender: `flows` flows to `dst:port` at `pps` datagrams per
/// second in total.
#[derive(Debug)]
pub struct Sender(BgProcess);

impl Sender {
    pub fn start(ns: &Netns, dst: &str, port: u16, flows: u32, pps: u32, dir: &Path) -> Self {
        let (port, flows, pps) = (port.to_string(), flows.to_string(), pps.to_string());
        Sender(start(
            ns,
            &["send", dst, &port, &flows, &pps],
            dir,
            "seq-send",
            "sending",
        ))
    }

    /// Stops it and returns how many datagrams each flow sent, and how
    /// many sends a pending ICMP error refused (nothing sent then).
    pub fn finish(self) -> (Vec<u64>, u64) {
        let v = finish(self.0);
        let sent = v["sent"]
            .as_array()
            .unwrap_or_else(|| panic!("sender printed {v}"))
            .iter()
            .map(|n| n.as_u64().expect("count"))
            .collect();
        (sent, v["errors"].as_u64().expect("errors"))
    }
}
