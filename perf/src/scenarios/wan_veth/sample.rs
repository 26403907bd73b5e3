//! One measured flow of `wan-veth`: the sequence-numbered UDP flow from hA
//! to hB over the running two-site topology, with the engines' WAN counters
//! and the carriers' link counters read before and after it.

use std::time::Duration;

use patronus_e2e::seq_udp::{FlowKind, FlowReceiver, FlowSender, FlowSpec};
use patronus_e2e::wan_topology::{wan, Site, WanPath, WanTopology, HB};
use patronus_e2e::{EngineStats, Netns};
use serde_json::Value;

/// What one flow measured (deltas over the flow).
#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    /// Datagrams the sender sent, and the time from its first to its last.
    pub sent: u64,
    pub send_secs: f64,
    /// Distinct datagrams (and their UDP payload bytes) that arrived, and
    /// the time from the first arrival to the last.
    pub received: u64,
    pub received_bytes: u64,
    pub span_secs: f64,
    pub duplicates: u64,
    /// Engine A, both paths: data packets that went through a FEC encoder
    /// and the parity packets it added.
    pub fec_data_sent: u64,
    pub fec_parity_sent: u64,
    /// Engine B, both paths.
    pub fec_recovered: u64,
    pub fec_unrecoverable: u64,
    /// Carriers, site A toward site B, both paths: frames and bytes
    /// (Ethernet frames without FCS) handed to the lossy hop, and those
    /// that came out of it toward engine B.
    pub wire_sent_packets: u64,
    pub wire_sent_bytes: u64,
    pub wire_delivered_packets: u64,
    pub wire_delivered_bytes: u64,
}

/// Frame and byte counters of the carriers' A→B hop.
#[derive(Clone, Copy, Debug, Default)]
struct Wire {
    sent_packets: u64,
    sent_bytes: u64,
    delivered_packets: u64,
    delivered_bytes: u64,
}

/// `(tx_packets, tx_bytes)` of `iface` in `ns` (`ip -s -j link`).
fn tx_counters(ns: &Netns, iface: &str) -> (u64, u64) {
    let out = ns.ip(&["-s", "-j", "link", "show", "dev", iface]);
    let v: Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("ip -s -j link show {iface}: {e}: {out}"));
    let tx = &v[0]["stats64"]["tx"];
    let n = |k: &str| {
        tx[k]
            .as_u64()
            .unwrap_or_else(|| panic!("no tx {k} for {iface} in {out}"))
    };
    (n("packets"), n("bytes"))
}

impl Wire {
    /// A→B: what carrier side `a` sends over `mid` (the loss rule sits in
    /// side `b`'s forward hook, on what comes in over `mid`) and what side
    /// `b` sends on to engine B (`to-b`).
    fn read(t: &WanTopology) -> Wire {
        let mut w = Wire::default();
        for c in &t.carriers {
            let (p, b) = tx_counters(&c.a, "mid");
            w.sent_packets += p;
            w.sent_bytes += b;
            let (p, b) = tx_counters(&c.b, "to-b");
            w.delivered_packets += p;
            w.delivered_bytes += b;
        }
        w
    }
}

/// `leaf` of `wan.path.P.*` summed over both paths.
fn paths_sum(s: &EngineStats, leaf: &str) -> u64 {
    WanPath::BOTH
        .iter()
        .map(|p| wan(s, &format!("path.{}.{leaf}", p.name())))
        .sum()
}

fn u64_of(v: &Value, k: &str) -> u64 {
    v[k].as_u64()
        .unwrap_or_else(|| panic!("seq_udp report has no {k}: {v}"))
}

fn f64_of(v: &Value, k: &str) -> f64 {
    v[k].as_f64()
        .unwrap_or_else(|| panic!("seq_udp report has no {k}: {v}"))
}

/// Runs one bulk flow of `count` datagrams of `size` payload bytes at `pps`
/// from hA to hB (UDP port `port`) and returns its figures. Panics (with
/// the tools' output) when a tool or an engine fails.
pub fn flow(t: &mut WanTopology, port: u16, pps: u32, count: u32, size: u32) -> Sample {
    let a0 = t.stats(Site::A);
    let b0 = t.stats(Site::B);
    let w0 = Wire::read(t);
    let spec = FlowSpec {
        kind: FlowKind::Bulk,
        pps,
        count,
        size,
        sport: 0,
    };
    let rx = FlowReceiver::start(&t.hb, port, t.dir());
    let tx = FlowSender::start(&t.ha, HB, port, spec, t.dir());
    let timeout = Duration::from_secs(u64::from(count / pps.max(1)) * 3 + 20);
    let s = tx.wait_report(timeout);
    let r = rx.finish();
    // Workers publish their counters every housekeeping interval.
    std::thread::sleep(Duration::from_millis(200));
    let a1 = t.stats(Site::A);
    let b1 = t.stats(Site::B);
    let w1 = Wire::read(t);
    let d = |x1: &EngineStats, x0: &EngineStats, leaf: &str| {
        paths_sum(x1, leaf).saturating_sub(paths_sum(x0, leaf))
    };
    Sample {
        sent: u64_of(&s, "sent"),
        send_secs: f64_of(&s, "elapsed_s"),
        received: r.received,
        received_bytes: u64_of(&r.json, "bytes"),
        span_secs: f64_of(&r.json, "span_s"),
        duplicates: r.duplicates,
        fec_data_sent: d(&a1, &a0, "fec_data_sent"),
        fec_parity_sent: d(&a1, &a0, "fec_parity_sent"),
        fec_recovered: d(&b1, &b0, "fec_recovered"),
        fec_unrecoverable: d(&b1, &b0, "fec_unrecoverable"),
        wire_sent_packets: w1.sent_packets - w0.sent_packets,
        wire_sent_bytes: w1.sent_bytes - w0.sent_bytes,
        wire_delivered_packets: w1.delivered_packets - w0.delivered_packets,
        wire_delivered_bytes: w1.delivered_bytes - w0.delivered_bytes,
    }
}

impl Sample {
    /// Adds another round's sample (figures are then pooled).
    pub fn add(&mut self, o: &Sample) {
        self.sent += o.sent;
        self.send_secs += o.send_secs;
        self.received += o.received;
        self.received_bytes += o.received_bytes;
        self.span_secs += o.span_secs;
        self.duplicates += o.duplicates;
        self.fec_data_sent += o.fec_data_sent;
        self.fec_parity_sent += o.fec_parity_sent;
        self.fec_recovered += o.fec_recovered;
        self.fec_unrecoverable += o.fec_unrecoverable;
        self.wire_sent_packets += o.wire_sent_packets;
        self.wire_sent_bytes += o.wire_sent_bytes;
        self.wire_delivered_packets += o.wire_delivered_packets;
        self.wire_delivered_bytes += o.wire_delivered_bytes;
    }

    /// Datagrams sent that never arrived, in percent of those sent.
    pub fn delivered_loss_pct(&self) -> f64 {
        100.0 * self.sent.saturating_sub(self.received) as f64 / self.sent.max(1) as f64
    }

    /// Delivered UDP payload, Mbit/s over the receiver's arrival span.
    pub fn goodput_mbit_s(&self) -> f64 {
        if self.span_secs > 0.0 {
            self.received_bytes as f64 * 8.0 / self.span_secs / 1e6
        } else {
            0.0
        }
    }

    /// Delivered UDP payload bytes per byte the carriers took in from site A.
    pub fn delivered_per_wire_byte(&self) -> f64 {
        self.received_bytes as f64 / self.wire_sent_bytes.max(1) as f64
    }

    /// Frames the lossy hop dropped, in percent of those it took in.
    pub fn wire_loss_pct(&self) -> f64 {
        let lost = self
            .wire_sent_packets
            .saturating_sub(self.wire_delivered_packets);
        100.0 * lost as f64 / self.wire_sent_packets.max(1) as f64
    }

    /// Parity packets per data packet the engine's FEC encoders sent.
    pub fn parity_per_data(&self) -> f64 {
        self.fec_parity_sent as f64 / self.fec_data_sent.max(1) as f64
    }

    /// Datagrams the sender sustained per second.
    pub fn offered_pps(&self) -> f64 {
        if self.send_secs > 0.0 {
            self.sent as f64 / self.send_secs
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_of_pooled_samples() {
        let a = Sample {
            sent: 1000,
            send_secs: 0.5,
            received: 950,
            received_bytes: 950_000,
            span_secs: 0.5,
            fec_data_sent: 1000,
            fec_parity_sent: 200,
            wire_sent_packets: 1200,
            wire_sent_bytes: 1_300_000,
            wire_delivered_packets: 1140,
            ..Sample::default()
        };
        let mut p = a;
        p.add(&Sample {
            received: 1000,
            received_bytes: 1_000_000,
            ..a
        });
        assert_eq!(p.sent, 2000);
        assert!((p.delivered_loss_pct() - 2.5).abs() < 1e-9);
        assert!((p.goodput_mbit_s() - 15.6).abs() < 1e-9);
        assert!((p.offered_pps() - 2000.0).abs() < 1e-9);
        assert!((p.wire_loss_pct() - 5.0).abs() < 1e-9);
        assert!((p.parity_per_data() - 0.2).abs() < 1e-9);
        assert!((p.delivered_per_wire_byte() - 0.75).abs() < 1e-9);
        // Nothing sent or received: zeros, not NaN.
        let z = Sample::default();
        assert_eq!(z.delivered_loss_pct(), 0.0);
        assert_eq!(z.goodput_mbit_s(), 0.0);
        assert_eq!(z.offered_pps(), 0.0);
    }
}
