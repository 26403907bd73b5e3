//! Scenario reports: rows of measured figures, the machine they came from,
//! a printed table and the JSON file (`--json`).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use serde::Serialize;

/// One measured system in a scenario.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Row {
    /// "patronus", "linux-kernel", "generator-only", ...
    pub system: String,
    /// Delivered packets per second (`None` = the row could not be run).
    pub pps: Option<f64>,
    /// Delivered bits per second of Ethernet frames (without FCS/preamble).
    pub bps: Option<f64>,
    /// Frame size in bytes (without FCS).
    pub packet_size: usize,
    /// Wall time per delivered packet, 1e9 / pps.
    pub ns_per_packet: Option<f64>,
    /// CPU time the forwarding system spent per delivered packet (method per
    /// scenario, see perf/RESULTS.md).
    pub cpu_ns_per_packet: Option<f64>,
    /// Whole-machine CPU per delivered packet minus the generator's own cost
    /// and the background load (same method for every system).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machine_cpu_ns_per_packet: Option<f64>,
    /// Estimated CPU per packet of the engine's non-empty polls only: its CPU
    /// minus its empty polls times the cost of one empty poll (measured idle).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub busy_cpu_ns_per_packet: Option<f64>,
    /// Packets per second the generator handed to the kernel in this run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offered_pps: Option<f64>,
    /// Completed connections per second (connection-rate rows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connections_per_sec: Option<f64>,
    /// Packets counted at the receiving end during the window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packets: Option<u64>,
    /// Length of the measured window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_secs: Option<f64>,
    /// What capped this row's rate (or why it was not run).
    pub limited_by: String,
    /// Anything else a reader needs to interpret the row.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Named figures of scenarios that measure something else than packet
    /// rates (times, memory), the unit in the name (`..._secs`, `..._mib`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub figures: BTreeMap<String, f64>,
}

impl Row {
    /// A row that could not be measured, with the reason.
    pub fn not_run(system: &str, packet_size: usize, why: impl Into<String>) -> Row {
        Row {
            system: system.into(),
            packet_size,
            limited_by: format!("not run: {}", why.into()),
            ..Row::default()
        }
    }

    /// Fills pps, bps and ns_per_packet from a delivered packet count.
    pub fn set_rate(&mut self, packets: u64, secs: f64) {
        self.packets = Some(packets);
        self.window_secs = Some(secs);
        if secs > 0.0 && packets > 0 {
            let pps = packets as f64 / secs;
            self.pps = Some(pps);
            self.bps = Some(pps * self.packet_size as f64 * 8.0);
            self.ns_per_packet = Some(1e9 / pps);
        } else {
            self.pps = Some(0.0);
            self.bps = Some(0.0);
        }
    }
}

/// A scenario's result, as written to `--json`.
#[derive(Debug, Serialize)]
pub struct Report {
    pub scenario: String,
    pub date: String,
    pub machine: String,
    /// 1-, 5- and 15-minute load averages when the scenario started (the
    /// machine is shared; a high load means noisy figures).
    pub loadavg_at_start: String,
    pub command: String,
    pub rows: Vec<Row>,
    /// patronus pps / baseline pps (`None` when either side is missing).
    pub ratio: Option<f64>,
    /// Further named ratios, when a scenario has several systems or baselines.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ratios: Vec<Ratio>,
    pub notes: Vec<String>,
}

/// pps(system) / pps(baseline) in the same run.
#[derive(Clone, Debug, Serialize)]
pub struct Ratio {
    pub system: String,
    pub baseline: String,
    pub ratio: f64,
}

impl Report {
    pub fn new(scenario: &str) -> Report {
        Report {
            scenario: scenario.into(),
            date: utc_now(),
            machine: machine_description(),
            loadavg_at_start: std::fs::read_to_string("/proc/loadavg")
                .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
                .unwrap_or_default(),
            command: std::env::args().collect::<Vec<_>>().join(" "),
            rows: Vec::new(),
            ratio: None,
            ratios: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Sets `ratio` = pps(system) / pps(baseline) when both were measured.
    pub fn set_ratio(&mut self, system: &str, baseline: &str) {
        self.ratio = self.pps_ratio(system, baseline);
    }

    /// pps(system) / pps(baseline) of this report's rows, when both were measured.
    pub fn pps_ratio(&self, system: &str, baseline: &str) -> Option<f64> {
        let pps = |name: &str| {
            self.rows
                .iter()
                .find(|r| r.system == name)
                .and_then(|r| r.pps)
        };
        match (pps(system), pps(baseline)) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        }
    }

    /// Adds a named ratio (when it could be computed).
    pub fn push_ratio(&mut self, system: &str, baseline: &str, ratio: Option<f64>) {
        if let Some(ratio) = ratio {
            self.ratios.push(Ratio {
                system: system.into(),
                baseline: baseline.into(),
                ratio,
            });
        }
    }

    /// Prints the table to stdout.
    pub fn print(&self) {
        println!("scenario {}  ({})", self.scenario, self.date);
        println!("machine  {}  load {}", self.machine, self.loadavg_at_start);
        println!(
            "{:<16} {:>6} {:>10} {:>10} {:>9} {:>9} {:>9}  limited by",
            "system", "size", "Mpps", "Gbit/s", "ns/pkt", "cpu ns", "mach ns"
        );
        let f = |v: Option<f64>, scale: f64, prec: usize| {
            v.map(|x| format!("{:.*}", prec, x / scale))
                .unwrap_or_else(|| "-".into())
        };
        for r in &self.rows {
            println!(
                "{:<16} {:>6} {:>10} {:>10} {:>9} {:>9} {:>9}  {}",
                r.system,
                r.packet_size,
                f(r.pps, 1e6, 3),
                f(r.bps, 1e9, 2),
                f(r.ns_per_packet, 1.0, 0),
                f(r.cpu_ns_per_packet, 1.0, 0),
                f(r.machine_cpu_ns_per_packet, 1.0, 0),
                r.limited_by
            );
            if let Some(cps) = r.connections_per_sec {
                println!("{:<16} connections: {:.0} per second", "", cps);
            }
            for (k, v) in &r.figures {
                println!("{:<16} {k} = {v:.3}", "");
            }
            for n in &r.notes {
                println!("{:<16} note: {}", "", n);
            }
        }
        if let Some(ratio) = self.ratio {
            println!("ratio    {ratio:.3}");
        }
        for r in &self.ratios {
            println!("ratio    {} / {} = {:.3}", r.system, r.baseline, r.ratio);
        }
        for n in &self.notes {
            println!("note: {n}");
        }
    }

    /// Writes the JSON report.
    pub fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
    }
}

/// "2 x Intel(R) Xeon(R) Processor, Linux 6.18.44" from /proc and uname.
pub fn machine_description() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let nproc = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    format!("nproc {nproc}, {model}, Linux {kernel}")
}

/// The current UTC time as RFC 3339 ("2026-11-26T09:08:36Z").
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) — H. Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_537), (2026, 3, 25));
    }

    #[test]
    fn rate_and_ratio() {
        let mut a = Row {
            system: "patronus".into(),
            packet_size: 64,
            ..Row::default()
        };
        a.set_rate(2_000_000, 2.0);
        assert_eq!(a.pps, Some(1e6));
        assert_eq!(a.bps, Some(512e6));
        assert_eq!(a.ns_per_packet, Some(1000.0));
        let mut b = a.clone();
        b.system = "linux-kernel".into();
        b.set_rate(1_000_000, 2.0);
        let mut r = Report::new("t");
        r.rows = vec![a, b];
        r.set_ratio("patronus", "linux-kernel");
        assert_eq!(r.ratio, Some(2.0));
        r.rows[1] = Row::not_run("linux-kernel", 64, "x");
        r.set_ratio("patronus", "linux-kernel");
        assert_eq!(r.ratio, None);
    }
}
