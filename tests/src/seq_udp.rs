//! Sequence-numbered UDP flows for the WAN tests (`tools/seq_udp.py`): a
//! sender of one flow at a fixed rate (a WebRTC-looking RTP stream that
//! opens with a STUN binding request, an unrecognisable bulk flow, or a
//! compressible one), and a receiver that reports what arrived, what was
//! lost, duplicated or corrupted, and the longest silence between two
//! arrivals (the outage a failover causes).

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::netns::Netns;
use crate::process::BgProcess;
use crate::scapy::PYTHON;

const SEQ_UDP_PY: &str = include_str!("../tools/seq_udp.py");

/// What a flow's datagrams look like to the engine's classifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowKind {
    /// STUN binding request (magic cookie), then RTP: class webrtc.
    Webrtc,
    /// Pseudo-random payload: class unknown.
    Bulk,
    /// Repeated text (lz4 shrinks it), checked byte for byte on arrival:
    /// class unknown.
    Compressible,
}

impl FlowKind {
    fn arg(self) -> &'static str {
        match self {
            FlowKind::Webrtc => "webrtc",
            FlowKind::Bulk => "bulk",
            FlowKind::Compressible => "compressible",
        }
    }
}

/// The receiver's account of one flow.
#[derive(Clone, Debug)]
pub struct Received {
    /// Distinct sequence numbers that arrived.
    pub received: u64,
    pub duplicates: u64,
    /// Highest sequence number seen (-1: none).
    pub highest: i64,
    /// Sequence numbers below the highest that never arrived.
    pub missing: u64,
    /// Compressible datagrams whose bytes differ from what was sent.
    pub corrupt: u64,
    /// STUN messages seen (the webrtc flow's first datagram).
    pub stun: u64,
    /// Datagrams of no known kind.
    pub bad: u64,
    /// Longest time between two consecutive arrivals, in seconds.
    pub max_gap_s: f64,
    /// The receiver's whole report.
    pub json: Value,
}

impl Received {
    /// Datagrams of `sent` that never arrived.
    pub fn lost(&self, sent: u64) -> u64 {
        sent.saturating_sub(self.received)
    }

    /// Lost fraction of `sent`, in percent.
    pub fn loss_pct(&self, sent: u64) -> f64 {
        100.0 * self.lost(sent) as f64 / sent.max(1) as f64
    }
}

fn start(ns: &Netns, args: &[&str], dir: &Path, name: &str, ready: &str) -> BgProcess {
    let mut full = vec!["-u", "-c", SEQ_UDP_PY];
    full.extend_from_slice(args);
    let mut p = ns.spawn(PYTHON, &full, dir, name);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !p.stderr().contains(ready) {
        assert!(
            p.try_wait().is_none() && Instant::now() < deadline,
            "seq_udp {name} did not start: {}",
            p.report()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    p
}

fn parse(p: &BgProcess, what: &str) -> Value {
    let out = p.stdout();
    serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("seq_udp {what} printed {out:?}: {e}"))
}

/// A running receiver bound to a UDP port.
#[derive(Debug)]
pub struct FlowReceiver(BgProcess);

impl FlowReceiver {
    pub fn start(ns: &Netns, port: u16, dir: &Path) -> Self {
        let name = format!("seq-udp-recv-{port}");
        FlowReceiver(start(
            ns,
            &["recv", &port.to_string()],
            dir,
            &name,
            "listening",
        ))
    }

    /// Stops it (after in-flight datagrams had time to land) and returns
    /// its report.
    pub fn finish(mut self) -> Received {
        std::thread::sleep(Duration::from_millis(300));
        let (status, clean) = self.0.stop(libc::SIGINT, Duration::from_secs(10));
        assert!(
            clean && status.success(),
            "seq_udp recv: {}",
            self.0.report()
        );
        let v = parse(&self.0, "recv");
        let n = |k: &str| {
            v[k].as_u64()
                .unwrap_or_else(|| panic!("no {k} in the receiver's report {v}"))
        };
        Received {
            received: n("received"),
            duplicates: n("duplicates"),
            highest: v["highest"].as_i64().expect("highest"),
            missing: n("missing"),
            corrupt: n("corrupt"),
            stun: n("stun"),
            bad: n("bad"),
            max_gap_s: v["max_gap_s"].as_f64().expect("max_gap_s"),
            json: v,
        }
    }
}

/// A running sender of one flow.
#[derive(Debug)]
pub struct FlowSender(BgProcess);

/// What a flow sends.
#[derive(Clone, Copy, Debug)]
pub struct FlowSpec {
    pub kind: FlowKind,
    /// Datagrams per second.
    pub pps: u32,
    /// Datagrams in all (the sender exits after the last).
    pub count: u32,
    /// UDP payload bytes.
    pub size: u32,
    /// Source port (0: any).
    pub sport: u16,
}

impl FlowSender {
    /// Starts sending `spec` from `ns` to `dst:port`.
    pub fn start(ns: &Netns, dst: &str, port: u16, spec: FlowSpec, dir: &Path) -> Self {
        let args = [
            "send".to_string(),
            dst.to_string(),
            port.to_string(),
            spec.kind.arg().to_string(),
            spec.pps.to_string(),
            spec.count.to_string(),
            spec.size.to_string(),
            spec.sport.to_string(),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let name = format!("seq-udp-send-{port}");
        FlowSender(start(ns, &args, dir, &name, "sending"))
    }

    /// True while it is still sending.
    pub fn running(&mut self) -> bool {
        self.0.try_wait().is_none()
    }

    /// Waits for it to send its last datagram; returns how many it sent.
    pub fn wait(self, timeout: Duration) -> u64 {
        let v = self.wait_report(timeout);
        v["sent"]
            .as_u64()
            .unwrap_or_else(|| panic!("sender printed {v}"))
    }

    /// Waits for it to send its last datagram; returns its whole report
    /// (`sent`, `errors`, `elapsed_s`: first to last datagram).
    pub fn wait_report(mut self, timeout: Duration) -> Value {
        let status = self.0.wait_timeout(timeout).unwrap_or_else(|| {
            panic!(
                "seq_udp send did not finish in {timeout:?}: {}",
                self.0.report()
            )
        });
        assert!(status.success(), "seq_udp send: {}", self.0.report());
        parse(&self.0, "send")
    }
}
