//! The WAN API's answers built from the engine's `wan.` counters (names
//! without the prefix, as the engine view collects them): per path
//! quality and traffic ([`paths`]), per policy path choice and the
//! compression totals ([`policies`]). Units are the API's: milliseconds
//! and percent, where the engine counts µs and parts per million.

use std::collections::BTreeMap;

use serde::Serialize;

use super::counters::{is_gauge, parse, WanCounter};

/// A path's liveness as the engine's prober sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PathState {
    /// Not yet decided (no probe answered or lost yet).
    Unknown,
    Alive,
    Dead,
}

impl PathState {
    /// The engine's gauge: 1 alive, 2 dead, anything else unknown.
    pub fn from_gauge(v: u64) -> PathState {
        match v {
            1 => PathState::Alive,
            2 => PathState::Dead,
            _ => PathState::Unknown,
        }
    }
}

/// One path: quality over the probe window and what was sent on it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PathView {
    pub name: String,
    pub state: PathState,
    pub rtt_ms: f64,
    pub rtt_p95_ms: f64,
    pub jitter_ms: f64,
    pub loss_pct: f64,
    pub probes_sent: u64,
    pub probes_replied: u64,
    /// Probes of the far engine this engine answered.
    pub probes_reflected: u64,
    /// Alive/dead changes.
    pub transitions: u64,
    /// Data packets and bytes steered onto the path.
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub fec_active: bool,
    pub fec_data_sent: u64,
    pub fec_parity_sent: u64,
    /// Receive side: packets FEC rebuilt, and groups it could not repair.
    pub fec_recovered: u64,
    pub fec_unrecoverable: u64,
}

impl PathView {
    fn new(name: &str) -> PathView {
        PathView {
            name: name.to_owned(),
            state: PathState::Unknown,
            rtt_ms: 0.0,
            rtt_p95_ms: 0.0,
            jitter_ms: 0.0,
            loss_pct: 0.0,
            probes_sent: 0,
            probes_replied: 0,
            probes_reflected: 0,
            transitions: 0,
            tx_packets: 0,
            tx_bytes: 0,
            fec_active: false,
            fec_data_sent: 0,
            fec_parity_sent: 0,
            fec_recovered: 0,
            fec_unrecoverable: 0,
        }
    }

    fn set(&mut self, counter: &str, v: u64) {
        let us_to_ms = |v: u64| v as f64 / 1000.0;
        match counter {
            "state" => self.state = PathState::from_gauge(v),
            "rtt_us" => self.rtt_ms = us_to_ms(v),
            "rtt_p95_us" => self.rtt_p95_ms = us_to_ms(v),
            "jitter_us" => self.jitter_ms = us_to_ms(v),
            // 10 000 ppm = 1 %.
            "loss_ppm" => self.loss_pct = v as f64 / 10_000.0,
            "fec_active" => self.fec_active = v != 0,
            "probes_sent" => self.probes_sent = v,
            "probes_replied" => self.probes_replied = v,
            "probes_reflected" => self.probes_reflected = v,
            "transitions" => self.transitions = v,
            "tx_packets" => self.tx_packets = v,
            "tx_bytes" => self.tx_bytes = v,
            "fec_data_sent" => self.fec_data_sent = v,
            "fec_parity_sent" => self.fec_parity_sent = v,
            "fec_recovered" => self.fec_recovered = v,
            "fec_unrecoverable" => self.fec_unrecoverable = v,
            // A name added to the contract without a field here (a test
            // keeps the two in step).
            _ => {}
        }
    }
}

/// `GET /api/v1/wan/paths`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WanPaths {
    /// By name.
    pub paths: Vec<PathView>,
    /// WAN packets the engine received and could not parse.
    pub bad_packets: u64,
}

/// Packets of one policy sent on one path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PolicyPath {
    pub path: String,
    pub packets: u64,
}

/// One steering policy: where its packets went and how often flows moved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PolicyView {
    pub name: String,
    /// Flows moved to another path (failure or SLA breach).
    pub moves: u64,
    /// By path name.
    pub paths: Vec<PolicyPath>,
}

/// Compression over every policy that has it on.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Compression {
    /// Bytes offered to the compressor, and what was sent for them.
    pub in_bytes: u64,
    pub out_bytes: u64,
    /// Packets sent as they were because compressing did not shrink them.
    pub skipped: u64,
    /// `out_bytes / in_bytes`; `null` before anything was offered.
    pub ratio: Option<f64>,
    /// `in_bytes - out_bytes` (0 if compression ever cost bytes overall).
    pub saved_bytes: u64,
    /// Compressed packets received that did not decompress.
    pub decompress_errors: u64,
}

/// Duplication over every policy that has it on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Duplication {
    /// Packets also sent on a second path.
    pub sent: u64,
    /// Second copies received and dropped.
    pub dropped: u64,
}

/// `GET /api/v1/wan/policies`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WanPolicies {
    /// By name.
    pub policies: Vec<PolicyView>,
    pub compression: Compression,
    pub duplication: Duplication,
}

/// Every name of the contract once, repeats combined (sum; gauges: the
/// largest), sorted; names outside the contract left out.
pub fn combine(wan: &[(String, u64)]) -> BTreeMap<&str, u64> {
    let mut out: BTreeMap<&str, u64> = BTreeMap::new();
    for (name, v) in wan {
        if parse(name).is_none() {
            continue;
        }
        let gauge = is_gauge(name);
        out.entry(name.as_str())
            .and_modify(|t| {
                *t = if gauge {
                    (*t).max(*v)
                } else {
                    t.saturating_add(*v)
                }
            })
            .or_insert(*v);
    }
    out
}

/// The paths the engine exports counters for.
pub fn paths(wan: &[(String, u64)]) -> WanPaths {
    let mut paths: BTreeMap<&str, PathView> = BTreeMap::new();
    let mut bad_packets = 0;
    for (name, v) in combine(wan) {
        match parse(name) {
            Some(WanCounter::Path { path, counter }) => paths
                .entry(path)
                .or_insert_with(|| PathView::new(path))
                .set(counter, v),
            Some(WanCounter::Global("bad_packets")) => bad_packets = v,
            _ => {}
        }
    }
    WanPaths {
        paths: paths.into_values().collect(),
        bad_packets,
    }
}

/// The policies the engine exports counters for, and compression.
pub fn policies(wan: &[(String, u64)]) -> WanPolicies {
    let mut policies: BTreeMap<&str, PolicyView> = BTreeMap::new();
    let mut globals: BTreeMap<&str, u64> = BTreeMap::new();
    for (name, v) in combine(wan) {
        match parse(name) {
            Some(WanCounter::PolicyMoves { policy }) => {
                policy_entry(&mut policies, policy).moves = v;
            }
            Some(WanCounter::PolicyPath { policy, path }) => {
                policy_entry(&mut policies, policy).paths.push(PolicyPath {
                    path: path.to_owned(),
                    packets: v,
                });
            }
            Some(WanCounter::Global(g)) => {
                globals.insert(g, v);
            }
            _ => {}
        }
    }
    for p in policies.values_mut() {
        // By path name (the full names sort "a-b" before "a").
        p.paths.sort_by(|a, b| a.path.cmp(&b.path));
    }
    let g = |k: &str| globals.get(k).copied().unwrap_or(0);
    let (in_bytes, out_bytes) = (g("compress_in_bytes"), g("compress_out_bytes"));
    WanPolicies {
        policies: policies.into_values().collect(),
        compression: Compression {
            in_bytes,
            out_bytes,
            skipped: g("compress_skipped"),
            ratio: (in_bytes > 0).then(|| out_bytes as f64 / in_bytes as f64),
            saved_bytes: in_bytes.saturating_sub(out_bytes),
            decompress_errors: g("decompress_errors"),
        },
        duplication: Duplication {
            sent: g("dup_sent"),
            dropped: g("dup_dropped"),
        },
    }
}

fn policy_entry<'a, 'm>(
    policies: &'m mut BTreeMap<&'a str, PolicyView>,
    policy: &'a str,
) -> &'m mut PolicyView {
    policies.entry(policy).or_insert_with(|| PolicyView {
        name: policy.to_owned(),
        moves: 0,
        paths: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wan::counters::{GLOBAL_COUNTERS, PATH_COUNTERS, PATH_GAUGES};

    fn counters(list: &[(&str, u64)]) -> Vec<(String, u64)> {
        list.iter().map(|(n, v)| ((*n).to_owned(), *v)).collect()
    }

    #[test]
    fn paths_in_api_units_by_name() {
        let wan = counters(&[
            ("path.lte.state", 2),
            ("path.lte.rtt_us", 48_250),
            ("path.lte.rtt_p95_us", 90_000),
            ("path.lte.jitter_us", 1_500),
            ("path.lte.loss_ppm", 52_500),
            ("path.lte.probes_sent", 100),
            ("path.lte.probes_replied", 94),
            ("path.lte.probes_reflected", 99),
            ("path.lte.transitions", 3),
            ("path.lte.tx_packets", 7),
            ("path.lte.tx_bytes", 7_000),
            ("path.lte.fec_active", 1),
            ("path.lte.fec_data_sent", 50),
            ("path.lte.fec_parity_sent", 10),
            ("path.lte.fec_recovered", 4),
            ("path.lte.fec_unrecoverable", 1),
            ("path.fibre.state", 1),
            ("path.fibre.tx_packets", 5),
            ("path.fibre.tx_packets", 6),
            ("path.fibre.rtt_us", 900),
            ("path.fibre.rtt_us", 1_000),
            ("path.fibre.some_future_counter", 8),
            ("path.sat.state", 0),
            ("bad_packets", 2),
        ]);
        let p = paths(&wan);
        let names: Vec<&str> = p.paths.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["fibre", "lte", "sat"]);
        assert_eq!(p.bad_packets, 2);
        let fibre = &p.paths[0];
        assert_eq!(fibre.state, PathState::Alive);
        assert_eq!(fibre.tx_packets, 11, "counters summed");
        assert_eq!(fibre.rtt_ms, 1.0, "gauges: the largest");
        assert!(!fibre.fec_active);
        assert_eq!(p.paths[2].state, PathState::Unknown);
        let lte = serde_json::to_value(&p.paths[1]).unwrap();
        assert_eq!(
            lte,
            serde_json::json!({
                "name": "lte", "state": "dead", "rtt_ms": 48.25, "rtt_p95_ms": 90.0,
                "jitter_ms": 1.5, "loss_pct": 5.25, "probes_sent": 100, "probes_replied": 94,
                "probes_reflected": 99, "transitions": 3, "tx_packets": 7, "tx_bytes": 7000,
                "fec_active": true, "fec_data_sent": 50, "fec_parity_sent": 10,
                "fec_recovered": 4, "fec_unrecoverable": 1
            })
        );
    }

    /// Every per-path name of the contract lands in its own field.
    #[test]
    fn every_path_counter_has_a_field() {
        let names: Vec<String> = PATH_GAUGES
            .iter()
            .chain(PATH_COUNTERS)
            .map(|c| format!("path.p.{c}"))
            .collect();
        for (i, name) in names.iter().enumerate() {
            let p = paths(&[(name.clone(), 2)]);
            let mut v = serde_json::to_value(&p.paths[0]).unwrap();
            let fields = v.as_object_mut().unwrap();
            fields.remove("name");
            let set: Vec<&String> = fields
                .iter()
                .filter(|(_, v)| {
                    !matches!(v, serde_json::Value::Number(n) if n.as_f64() == Some(0.0))
                        && **v != serde_json::json!(false)
                        && **v != serde_json::json!("unknown")
                })
                .map(|(k, _)| k)
                .collect();
            assert_eq!(set.len(), 1, "{name} ({i}) set {set:?}");
        }
    }

    #[test]
    fn policies_with_their_paths_and_compression() {
        let wan = counters(&[
            ("policy.voice.path.lte.packets", 10),
            ("policy.voice.path.fibre.packets", 90),
            ("policy.voice.path.fibre-2.packets", 5),
            ("policy.voice.moves", 2),
            ("policy.bulk.path.lte.packets", 400),
            ("policy.default.moves", 0),
            ("compress_in_bytes", 10_000),
            ("compress_out_bytes", 4_000),
            ("compress_skipped", 7),
            ("decompress_errors", 1),
            ("bad_packets", 3),
            ("dup_sent", 12),
            ("dup_dropped", 11),
            ("path.lte.state", 1),
        ]);
        let v = serde_json::to_value(policies(&wan)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "policies": [
                    { "name": "bulk", "moves": 0, "paths": [{ "path": "lte", "packets": 400 }] },
                    { "name": "default", "moves": 0, "paths": [] },
                    { "name": "voice", "moves": 2, "paths": [
                        { "path": "fibre", "packets": 90 },
                        { "path": "fibre-2", "packets": 5 },
                        { "path": "lte", "packets": 10 } ] }
                ],
                "compression": { "in_bytes": 10000, "out_bytes": 4000, "skipped": 7,
                    "ratio": 0.4, "saved_bytes": 6000, "decompress_errors": 1 },
                "duplication": { "sent": 12, "dropped": 11 }
            })
        );
    }

    #[test]
    fn nothing_compressed_has_no_ratio() {
        let p = policies(&[]);
        assert!(p.policies.is_empty());
        assert_eq!(p.compression.ratio, None);
        assert_eq!(p.compression.saved_bytes, 0);
        let v = serde_json::to_value(&p).unwrap();
        assert!(v["compression"]["ratio"].is_null());
        // Every global name is read by one of the two answers.
        for g in GLOBAL_COUNTERS {
            let wan = vec![((*g).to_owned(), 5)];
            let p = policies(&wan);
            let holds_5 = |v: serde_json::Value| v.as_object().unwrap().values().any(|v| v == 5);
            let seen = paths(&wan).bad_packets == 5
                || holds_5(serde_json::to_value(p.compression).unwrap())
                || holds_5(serde_json::to_value(p.duplication).unwrap());
            assert!(seen, "{g}");
        }
    }
}
