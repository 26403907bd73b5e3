//! Interleaved rounds: each system's median row and the median of the
//! same-round ratios (slow drifts in a shared machine's load hit all alike).

use crate::report::Row;

/// The figure rounds are ranked and compared by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// Delivered packets per second.
    Pps,
    /// Delivered bits per second (for TCP streams, whose packet counts
    /// depend on segmentation offloads).
    Bps,
    /// Completed connections per second.
    Cps,
}

impl Key {
    fn of(self, r: &Row) -> Option<f64> {
        match self {
            Key::Pps => r.pps,
            Key::Bps => r.bps,
            Key::Cps => r.connections_per_sec,
        }
    }

    /// (name, scale) in the rounds note.
    fn unit(self) -> (&'static str, f64) {
        match self {
            Key::Pps => ("Mpps", 1e6),
            Key::Bps => ("Gbit/s", 1e9),
            Key::Cps => ("k conn/s", 1e3),
        }
    }
}

/// pps(system) / pps(baseline) of each round where both were measured.
pub fn same_round_ratios(rounds: &[Vec<Row>], system: &str, baseline: &str) -> Vec<f64> {
    same_round_ratios_by(rounds, system, baseline, Key::Pps)
}

/// key(system) / key(baseline) of each round where both were measured.
pub fn same_round_ratios_by(
    rounds: &[Vec<Row>],
    system: &str,
    baseline: &str,
    key: Key,
) -> Vec<f64> {
    rounds
        .iter()
        .filter_map(|rows| {
            let val = |n: &str| rows.iter().find(|r| r.system == n).and_then(|r| key.of(r));
            match (val(system), val(baseline)) {
                (Some(p), Some(k)) if k > 0.0 => Some(p / k),
                _ => None,
            }
        })
        .collect()
}

pub fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// One row per system: the round whose pps is the median (so its fields stay
/// consistent with each other), noting every round's pps and CPU.
pub fn merge_rounds(rounds: &[Vec<Row>], notes: &mut Vec<String>) -> Vec<Row> {
    merge_rounds_by(rounds, notes, Key::Pps)
}

/// [`merge_rounds`] ranking rounds by `key`.
pub fn merge_rounds_by(rounds: &[Vec<Row>], notes: &mut Vec<String>, key: Key) -> Vec<Row> {
    if rounds.len() == 1 {
        return rounds[0].clone();
    }
    let (unit, scale) = key.unit();
    let mut out = Vec::new();
    for (i, first) in rounds[0].iter().enumerate() {
        let mut all: Vec<&Row> = rounds.iter().filter_map(|r| r.get(i)).collect();
        all.sort_by(|a, b| {
            key.of(a)
                .unwrap_or(-1.0)
                .total_cmp(&key.of(b).unwrap_or(-1.0))
        });
        let mut row = all[all.len() / 2].clone();
        let fmt =
            |v: Option<f64>, scale: f64| v.map_or("-".into(), |x| format!("{:.3}", x / scale));
        row.notes.insert(
            0,
            format!(
                "median of {} rounds by {}; rounds ({unit} / cpu ns): {}",
                rounds.len(),
                match key {
                    Key::Pps => "pps",
                    Key::Bps => "bit rate",
                    Key::Cps => "connection rate",
                },
                rounds
                    .iter()
                    .filter_map(|r| r.get(i))
                    .map(|r| format!(
                        "{} / {}",
                        fmt(key.of(r), scale),
                        fmt(r.cpu_ns_per_packet, 1.0)
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
        debug_assert_eq!(row.system, first.system);
        out.push(row);
    }
    notes.push(format!("{} interleaved rounds", rounds.len()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(system: &str, pps: f64) -> Row {
        let mut r = Row {
            system: system.into(),
            packet_size: 64,
            ..Row::default()
        };
        r.set_rate((pps * 10.0) as u64, 10.0);
        r
    }

    #[test]
    fn median_of_rounds() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), Some(2.5));
        let rounds = vec![
            vec![row("gen", 1e6), row("k", 5e6)],
            vec![row("gen", 3e6), row("k", 4e6)],
            vec![row("gen", 2e6), row("k", 6e6)],
        ];
        let mut notes = Vec::new();
        let merged = merge_rounds(&rounds, &mut notes);
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0].pps, Some(2e6));
        assert_eq!(merged[1].pps, Some(5e6));
        assert!(merged[1].notes[0].contains("5.000"));
    }

    #[test]
    fn ratios_pair_rows_of_the_same_round() {
        let rounds = vec![
            vec![row("a", 2e6), row("b", 1e6)],
            vec![row("a", 3e6), row("b", 0.0)],
            vec![row("a", 3e6), row("b", 2e6)],
        ];
        assert_eq!(same_round_ratios(&rounds, "a", "b"), vec![2.0, 1.5]);
        assert!(same_round_ratios(&rounds, "a", "c").is_empty());
    }

    #[test]
    fn rounds_by_bit_rate() {
        let with_bps = |system: &str, bps: f64| Row {
            system: system.into(),
            bps: Some(bps),
            ..Row::default()
        };
        let rounds = vec![
            vec![with_bps("a", 3e9), with_bps("b", 2e9)],
            vec![with_bps("a", 1e9), with_bps("b", 4e9)],
            vec![with_bps("a", 2e9), with_bps("b", 1e9)],
        ];
        let mut notes = Vec::new();
        let merged = merge_rounds_by(&rounds, &mut notes, Key::Bps);
        assert_eq!(merged[0].bps, Some(2e9));
        assert_eq!(merged[1].bps, Some(2e9));
        assert!(
            merged[0].notes[0].contains("Gbit/s"),
            "{:?}",
            merged[0].notes
        );
        assert_eq!(
            same_round_ratios_by(&rounds, "a", "b", Key::Bps),
            vec![1.5, 0.25, 2.0]
        );
    }
}
