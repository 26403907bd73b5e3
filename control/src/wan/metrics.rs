//! The WAN families (`patronus_wan_*`), built at each scrape from the
//! engine snapshot's `wan.` counters by the engine collector: per path
//! quality (seconds and ratios, from the engine's µs and ppm), probes,
//! traffic and FEC (label `path`), per policy path choice (`policy`,
//! `path`) and moves (`policy`), and the global compression and bad-packet
//! counters.

use prometheus::proto::{MetricFamily, MetricType};

use super::counters::WanCounter;
use super::view::combine;
use crate::metrics::family::{FamilySpec, Scrape};

pub const WAN_PATH_STATE: &str = "patronus_wan_path_state";
pub const WAN_PATH_RTT: &str = "patronus_wan_path_rtt_seconds";
pub const WAN_PATH_RTT_P95: &str = "patronus_wan_path_rtt_p95_seconds";
pub const WAN_PATH_JITTER: &str = "patronus_wan_path_jitter_seconds";
pub const WAN_PATH_LOSS: &str = "patronus_wan_path_loss_ratio";
pub const WAN_PATH_PROBES_SENT: &str = "patronus_wan_path_probes_sent_total";
pub const WAN_PATH_PROBES_REPLIED: &str = "patronus_wan_path_probes_replied_total";
pub const WAN_PATH_PROBES_REFLECTED: &str = "patronus_wan_path_probes_reflected_total";
pub const WAN_PATH_TRANSITIONS: &str = "patronus_wan_path_transitions_total";
pub const WAN_PATH_TX_PACKETS: &str = "patronus_wan_path_tx_packets_total";
pub const WAN_PATH_TX_BYTES: &str = "patronus_wan_path_tx_bytes_total";
pub const WAN_PATH_FEC_ACTIVE: &str = "patronus_wan_path_fec_active";
pub const WAN_FEC_DATA_SENT: &str = "patronus_wan_fec_data_sent_total";
pub const WAN_FEC_PARITY_SENT: &str = "patronus_wan_fec_parity_sent_total";
pub const WAN_FEC_RECOVERED: &str = "patronus_wan_fec_recovered_total";
pub const WAN_FEC_UNRECOVERABLE: &str = "patronus_wan_fec_unrecoverable_total";
pub const WAN_POLICY_PATH_PACKETS: &str = "patronus_wan_policy_path_packets_total";
pub const WAN_POLICY_MOVES: &str = "patronus_wan_policy_moves_total";
pub const WAN_COMPRESS_IN_BYTES: &str = "patronus_wan_compress_in_bytes_total";
pub const WAN_COMPRESS_OUT_BYTES: &str = "patronus_wan_compress_out_bytes_total";
pub const WAN_COMPRESS_SKIPPED: &str = "patronus_wan_compress_skipped_total";
pub const WAN_DECOMPRESS_ERRORS: &str = "patronus_wan_decompress_errors_total";
pub const WAN_BAD_PACKETS: &str = "patronus_wan_bad_packets_total";
pub const WAN_DUP_SENT: &str = "patronus_wan_dup_sent_total";
pub const WAN_DUP_DROPPED: &str = "patronus_wan_dup_dropped_total";

/// Where each per-path counter goes (label `path`) and the divisor from
/// the engine's unit (µs, ppm) to the family's (seconds, ratio). Every name of the contract's
/// per-path lists is here (a test checks).
pub const PATH_METRICS: &[(&str, &str, f64)] = &[
    ("state", WAN_PATH_STATE, 1.0),
    ("rtt_us", WAN_PATH_RTT, 1e6),
    ("rtt_p95_us", WAN_PATH_RTT_P95, 1e6),
    ("jitter_us", WAN_PATH_JITTER, 1e6),
    ("loss_ppm", WAN_PATH_LOSS, 1e6),
    ("fec_active", WAN_PATH_FEC_ACTIVE, 1.0),
    ("probes_sent", WAN_PATH_PROBES_SENT, 1.0),
    ("probes_replied", WAN_PATH_PROBES_REPLIED, 1.0),
    ("probes_reflected", WAN_PATH_PROBES_REFLECTED, 1.0),
    ("transitions", WAN_PATH_TRANSITIONS, 1.0),
    ("tx_packets", WAN_PATH_TX_PACKETS, 1.0),
    ("tx_bytes", WAN_PATH_TX_BYTES, 1.0),
    ("fec_data_sent", WAN_FEC_DATA_SENT, 1.0),
    ("fec_parity_sent", WAN_FEC_PARITY_SENT, 1.0),
    ("fec_recovered", WAN_FEC_RECOVERED, 1.0),
    ("fec_unrecoverable", WAN_FEC_UNRECOVERABLE, 1.0),
];

/// Where each global counter goes (no labels).
pub const GLOBAL_METRICS: &[(&str, &str)] = &[
    ("compress_in_bytes", WAN_COMPRESS_IN_BYTES),
    ("compress_out_bytes", WAN_COMPRESS_OUT_BYTES),
    ("compress_skipped", WAN_COMPRESS_SKIPPED),
    ("decompress_errors", WAN_DECOMPRESS_ERRORS),
    ("bad_packets", WAN_BAD_PACKETS),
    ("dup_sent", WAN_DUP_SENT),
    ("dup_dropped", WAN_DUP_DROPPED),
];

const PATH: &[&str] = &["path"];

pub const FAMILIES: &[FamilySpec] = &[
    (
        WAN_PATH_STATE,
        "WAN path state from the engine's probes: 0 unknown (not yet decided), 1 alive, 2 dead.",
        MetricType::GAUGE,
        PATH,
    ),
    (
        WAN_PATH_RTT,
        "WAN path round-trip time over the probe window (mean of answered probes).",
        MetricType::GAUGE,
        PATH,
    ),
    (
        WAN_PATH_RTT_P95,
        "WAN path round-trip time over the probe window, 95th percentile.",
        MetricType::GAUGE,
        PATH,
    ),
    (
        WAN_PATH_JITTER,
        "WAN path jitter (RTT variation) over the probe window.",
        MetricType::GAUGE,
        PATH,
    ),
    (
        WAN_PATH_LOSS,
        "WAN path probe loss over the probe window (0 to 1).",
        MetricType::GAUGE,
        PATH,
    ),
    (
        WAN_PATH_PROBES_SENT,
        "Probes sent on a WAN path.",
        MetricType::COUNTER,
        PATH,
    ),
    (
        WAN_PATH_PROBES_REPLIED,
        "Probe replies received on a WAN path.",
        MetricType::COUNTER,
        PATH,
    ),
    (
        WAN_PATH_PROBES_REFLECTED,
        "Probes of the far engine answered on a WAN path.",
        MetricType::COUNTER,
        PATH,
    ),
    (
        WAN_PATH_TRANSITIONS,
        "Alive/dead state changes of a WAN path.",
        MetricType::COUNTER,
        PATH,
    ),
    (
        WAN_PATH_TX_PACKETS,
        "Data packets steered onto a WAN path.",
        MetricType::COUNTER,
        PATH,
    ),
    (
        WAN_PATH_TX_BYTES,
        "Data bytes steered onto a WAN path.",
        MetricType::COUNTER,
        PATH,
    ),
    (
        WAN_PATH_FEC_ACTIVE,
        "1 while forward error correction is on for traffic sent on a WAN path.",
        MetricType::GAUGE,
        PATH,
    ),
    (
        WAN_FEC_DATA_SENT,
        "Data packets sent in FEC groups on a WAN path.",
        MetricType::COUNTER,
        PATH,
    ),
    (
        WAN_FEC_PARITY_SENT,
        "FEC parity packets sent on a WAN path.",
        MetricType::COUNTER,
        PATH,
    ),
    (
        WAN_FEC_RECOVERED,
        "Lost packets rebuilt by FEC, received on a WAN path.",
        MetricType::COUNTER,
        PATH,
    ),
    (
        WAN_FEC_UNRECOVERABLE,
        "Losses FEC could not repair (more than m lost in a group), received on a WAN path.",
        MetricType::COUNTER,
        PATH,
    ),
    (
        WAN_POLICY_PATH_PACKETS,
        "Packets of a steering policy sent on a WAN path (the policy's path choice).",
        MetricType::COUNTER,
        &["policy", "path"],
    ),
    (
        WAN_POLICY_MOVES,
        "Flows of a steering policy moved to another path (path dead or SLA breached).",
        MetricType::COUNTER,
        &["policy"],
    ),
    (
        WAN_COMPRESS_IN_BYTES,
        "Bytes offered to WAN compression.",
        MetricType::COUNTER,
        &[],
    ),
    (
        WAN_COMPRESS_OUT_BYTES,
        "Bytes sent for what was offered to WAN compression (compressed, or as is when skipped).",
        MetricType::COUNTER,
        &[],
    ),
    (
        WAN_COMPRESS_SKIPPED,
        "Packets sent uncompressed because compression did not shrink them.",
        MetricType::COUNTER,
        &[],
    ),
    (
        WAN_DECOMPRESS_ERRORS,
        "Compressed WAN packets received that did not decompress.",
        MetricType::COUNTER,
        &[],
    ),
    (
        WAN_BAD_PACKETS,
        "WAN packets received that could not be parsed.",
        MetricType::COUNTER,
        &[],
    ),
    (
        WAN_DUP_SENT,
        "Packets of duplicating policies sent on a second path too.",
        MetricType::COUNTER,
        &[],
    ),
    (
        WAN_DUP_DROPPED,
        "Second copies of duplicated packets received and dropped.",
        MetricType::COUNTER,
        &[],
    ),
];

/// The WAN families of one snapshot's `wan.` counters (names without the
/// prefix); only families with samples.
pub fn families(wan: &[(String, u64)]) -> Vec<MetricFamily> {
    let mut out = Scrape::new(FAMILIES);
    for (name, v) in combine(wan) {
        match super::counters::parse(name) {
            Some(WanCounter::Path { path, counter }) => {
                if let Some((_, family, divisor)) = PATH_METRICS.iter().find(|m| m.0 == counter) {
                    out.add(family, &[("path", path)], v as f64 / divisor);
                }
            }
            Some(WanCounter::PolicyPath { policy, path }) => out.add(
                WAN_POLICY_PATH_PACKETS,
                &[("policy", policy), ("path", path)],
                v as f64,
            ),
            Some(WanCounter::PolicyMoves { policy }) => {
                out.add(WAN_POLICY_MOVES, &[("policy", policy)], v as f64)
            }
            Some(WanCounter::Global(g)) => {
                if let Some((_, family)) = GLOBAL_METRICS.iter().find(|m| m.0 == g) {
                    out.add(family, &[], v as f64);
                }
            }
            None => {}
        }
    }
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wan::counters::{GLOBAL_COUNTERS, PATH_COUNTERS, PATH_GAUGES};

    #[test]
    fn every_contract_name_has_a_family_of_the_right_type() {
        for c in PATH_GAUGES.iter().chain(PATH_COUNTERS) {
            let (_, family, _) = PATH_METRICS
                .iter()
                .find(|m| m.0 == *c)
                .unwrap_or_else(|| panic!("{c} has no family"));
            let spec = FAMILIES.iter().find(|f| f.0 == *family).unwrap();
            let want = if PATH_GAUGES.contains(c) {
                MetricType::GAUGE
            } else {
                MetricType::COUNTER
            };
            assert_eq!(spec.2, want, "{family}");
            assert_eq!(spec.3, PATH, "{family}");
        }
        for g in GLOBAL_COUNTERS {
            assert!(GLOBAL_METRICS.iter().any(|m| m.0 == *g), "{g}");
        }
        assert_eq!(
            FAMILIES.len(),
            PATH_METRICS.len() + GLOBAL_METRICS.len() + 2,
            "every family is reached from a counter"
        );
    }

    fn sample(fams: &[MetricFamily], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let fam = fams.iter().find(|f| f.get_name() == name)?;
        let m = fam.get_metric().iter().find(|m| {
            let got: Vec<(&str, &str)> = m
                .get_label()
                .iter()
                .map(|l| (l.get_name(), l.get_value()))
                .collect();
            labels.iter().all(|l| got.contains(l)) && got.len() == labels.len()
        })?;
        Some(if fam.get_field_type() == MetricType::COUNTER {
            m.get_counter().get_value()
        } else {
            m.get_gauge().get_value()
        })
    }

    #[test]
    fn engine_units_become_seconds_and_ratios() {
        let wan: Vec<(String, u64)> = [
            ("path.lte.state", 2),
            ("path.lte.rtt_us", 48_000),
            ("path.lte.rtt_p95_us", 250_000),
            ("path.lte.jitter_us", 1_500),
            ("path.lte.loss_ppm", 50_000),
            ("path.lte.tx_bytes", 9_000),
            ("path.lte.fec_recovered", 4),
            ("policy.voice.path.lte.packets", 12),
            ("policy.voice.moves", 1),
            ("compress_in_bytes", 1_000),
            ("path.lte.future_gauge", 1),
            ("future_global", 1),
        ]
        .iter()
        .map(|(n, v)| ((*n).to_owned(), *v))
        .collect();
        let fams = families(&wan);
        let lte = [("path", "lte")];
        assert_eq!(sample(&fams, WAN_PATH_STATE, &lte), Some(2.0));
        assert_eq!(sample(&fams, WAN_PATH_RTT, &lte), Some(0.048));
        assert_eq!(sample(&fams, WAN_PATH_RTT_P95, &lte), Some(0.25));
        assert_eq!(sample(&fams, WAN_PATH_JITTER, &lte), Some(0.0015));
        assert_eq!(sample(&fams, WAN_PATH_LOSS, &lte), Some(0.05));
        assert_eq!(sample(&fams, WAN_PATH_TX_BYTES, &lte), Some(9000.0));
        assert_eq!(sample(&fams, WAN_FEC_RECOVERED, &lte), Some(4.0));
        assert_eq!(
            sample(
                &fams,
                WAN_POLICY_PATH_PACKETS,
                &[("policy", "voice"), ("path", "lte")]
            ),
            Some(12.0)
        );
        assert_eq!(
            sample(&fams, WAN_POLICY_MOVES, &[("policy", "voice")]),
            Some(1.0)
        );
        assert_eq!(sample(&fams, WAN_COMPRESS_IN_BYTES, &[]), Some(1000.0));
        let samples: usize = fams.iter().map(|f| f.get_metric().len()).sum();
        assert_eq!(samples, 10, "unknown names left out");
        assert!(families(&[]).is_empty());
    }
}
