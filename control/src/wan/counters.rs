//! The engine's WAN counters in `counters.shm`, read by name (issue 10's
//! contract, prefix `wan.`): per path `wan.path.<P>.<counter>`, per policy
//! and path `wan.policy.<Q>.path.<P>.packets`, per policy
//! `wan.policy.<Q>.moves`, and the global `wan.<counter>`. The engine
//! validates path and policy names as `[A-Za-z0-9_-]+`, so the dots split
//! a name unambiguously. The engine view strips the prefix and combines
//! each name over workers: counters by sum, gauges ([`is_gauge`]) by
//! maximum (one worker owns a path's prober, so that equals the sum; if
//! several ever wrote one a sum of states or RTTs would mean nothing).

/// The prefix of every WAN counter in `counters.shm`.
pub const PREFIX: &str = "wan.";

/// Per-path gauges: state (0 unknown, 1 alive, 2 dead), window RTT,
/// p95 RTT and jitter in µs, loss in parts per million, FEC on (0/1).
pub const PATH_GAUGES: &[&str] = &[
    "state",
    "rtt_us",
    "rtt_p95_us",
    "jitter_us",
    "loss_ppm",
    "fec_active",
];

/// Per-path monotonic counters.
pub const PATH_COUNTERS: &[&str] = &[
    "probes_sent",
    "probes_replied",
    "probes_reflected",
    "transitions",
    "tx_packets",
    "tx_bytes",
    "fec_data_sent",
    "fec_parity_sent",
    "fec_recovered",
    "fec_unrecoverable",
];

/// Global monotonic counters.
pub const GLOBAL_COUNTERS: &[&str] = &[
    "compress_in_bytes",
    "compress_out_bytes",
    "compress_skipped",
    "decompress_errors",
    "bad_packets",
    "dup_sent",
    "dup_dropped",
];

/// One WAN counter name, without the `wan.` prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WanCounter<'a> {
    /// `path.<path>.<counter>`, `<counter>` one of [`PATH_GAUGES`] or
    /// [`PATH_COUNTERS`].
    Path { path: &'a str, counter: &'a str },
    /// `policy.<policy>.path.<path>.packets`.
    PolicyPath { policy: &'a str, path: &'a str },
    /// `policy.<policy>.moves`.
    PolicyMoves { policy: &'a str },
    /// One of [`GLOBAL_COUNTERS`].
    Global(&'a str),
}

/// Whether `name` is a path or policy name the engine accepts.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Parses a name without the `wan.` prefix; `None` for a name outside the
/// contract (a newer engine's counter: left out, not misread).
pub fn parse(rest: &str) -> Option<WanCounter<'_>> {
    if let Some(tail) = rest.strip_prefix("path.") {
        let (path, counter) = tail.split_once('.')?;
        let known = PATH_GAUGES.contains(&counter) || PATH_COUNTERS.contains(&counter);
        return (valid_name(path) && known).then_some(WanCounter::Path { path, counter });
    }
    if let Some(tail) = rest.strip_prefix("policy.") {
        let (policy, what) = tail.split_once('.')?;
        if !valid_name(policy) {
            return None;
        }
        if what == "moves" {
            return Some(WanCounter::PolicyMoves { policy });
        }
        let path = what.strip_prefix("path.")?.strip_suffix(".packets")?;
        return valid_name(path).then_some(WanCounter::PolicyPath { policy, path });
    }
    GLOBAL_COUNTERS
        .contains(&rest)
        .then_some(WanCounter::Global(rest))
}

/// Whether values of this counter (name without `wan.`) are gauges, which
/// combine over workers by maximum rather than by sum.
pub fn is_gauge(rest: &str) -> bool {
    matches!(parse(rest), Some(WanCounter::Path { counter, .. }) if PATH_GAUGES.contains(&counter))
}

/// The value of `name` (without prefix) in `wan`, repeats summed (gauges:
/// the largest); `None` when absent.
pub fn lookup(wan: &[(String, u64)], name: &str) -> Option<u64> {
    let gauge = is_gauge(name);
    wan.iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| *v)
        .reduce(|a, b| if gauge { a.max(b) } else { a.saturating_add(b) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_contract_name_parses_to_its_parts() {
        for c in PATH_GAUGES.iter().chain(PATH_COUNTERS) {
            assert_eq!(
                parse(&format!("path.fibre-1.{c}")),
                Some(WanCounter::Path {
                    path: "fibre-1",
                    counter: c
                })
            );
        }
        assert_eq!(
            parse("policy.voice.path.lte_2.packets"),
            Some(WanCounter::PolicyPath {
                policy: "voice",
                path: "lte_2"
            })
        );
        assert_eq!(
            parse("policy.bulk.moves"),
            Some(WanCounter::PolicyMoves { policy: "bulk" })
        );
        for g in GLOBAL_COUNTERS {
            assert_eq!(parse(g), Some(WanCounter::Global(g)));
        }
        // A policy or path may be called "path", "policy" or "moves".
        assert_eq!(
            parse("policy.path.path.moves.packets"),
            Some(WanCounter::PolicyPath {
                policy: "path",
                path: "moves"
            })
        );
        assert_eq!(
            parse("path.policy.state"),
            Some(WanCounter::Path {
                path: "policy",
                counter: "state"
            })
        );
    }

    #[test]
    fn names_outside_the_contract_are_left_out() {
        for name in [
            "",
            "path",
            "path.",
            "path.fibre",
            "path.fibre.",
            "path..state",
            "path.fibre.future_counter",
            "path.fi bre.state",
            "path.fibre.state.extra",
            "policy.voice",
            "policy.voice.",
            "policy..moves",
            "policy.voice.path.lte",
            "policy.voice.path.lte.bytes",
            "policy.voice.path..packets",
            "policy.voice.path.a.b.packets",
            "policy.voice.future",
            "compress_in",
            "future_global",
        ] {
            assert_eq!(parse(name), None, "{name:?}");
        }
    }

    #[test]
    fn gauges_are_the_per_path_window_values() {
        assert!(is_gauge("path.lte.state"));
        assert!(is_gauge("path.lte.rtt_p95_us"));
        assert!(is_gauge("path.lte.fec_active"));
        assert!(!is_gauge("path.lte.tx_bytes"));
        assert!(!is_gauge("policy.voice.moves"));
        assert!(!is_gauge("compress_in_bytes"));
        let wan = vec![
            ("path.lte.rtt_us".to_string(), 40),
            ("path.lte.rtt_us".to_string(), 30),
            ("path.lte.tx_bytes".to_string(), 40),
            ("path.lte.tx_bytes".to_string(), 30),
        ];
        assert_eq!(lookup(&wan, "path.lte.rtt_us"), Some(40));
        assert_eq!(lookup(&wan, "path.lte.tx_bytes"), Some(70));
        assert_eq!(lookup(&wan, "path.lte.state"), None);
    }
}
