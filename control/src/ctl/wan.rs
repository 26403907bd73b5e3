//! `patronusctl wan ...`: the engine's WAN paths (state, quality over the
//! probe window, probes, traffic, FEC) and steering policies (packets per
//! path with each path's share, flows moved) followed by compression.

use serde_json::{json, Value};

use super::args::WanCmd;
use super::client::{Client, CtlError};
use super::table::{render_document, Table};

const PATHS: &str = "/api/v1/wan/paths";
const POLICIES: &str = "/api/v1/wan/policies";

fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
    s.push('\n');
    s
}

/// Runs one `wan` command; returns the text for stdout.
pub fn run(client: &Client, json_out: bool, cmd: &WanCmd) -> Result<String, CtlError> {
    let (path, render): (&str, fn(&Value) -> String) = match cmd {
        WanCmd::Paths => (PATHS, paths_text),
        WanCmd::Policies => (POLICIES, policies_text),
    };
    let v = client.get(path)?;
    Ok(if json_out { pretty(&v) } else { render(&v) })
}

fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.chars().filter(|c| !c.is_control()).collect(),
        None | Some(Value::Null) => "-".into(),
        Some(other) => other.to_string(),
    }
}

fn number(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// Milliseconds or percent with two decimals.
fn decimal(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_f64)
        .map_or_else(|| "-".into(), |x| format!("{x:.2}"))
}

/// One row per path, then the bad-packet count.
pub fn paths_text(v: &Value) -> String {
    let mut t = Table::new([
        "PATH",
        "STATE",
        "RTT MS",
        "P95 MS",
        "JITTER MS",
        "LOSS %",
        "PROBES SENT",
        "REPLIED",
        "TRANSITIONS",
        "TX PACKETS",
        "TX BYTES",
        "FEC",
        "FEC RECOVERED",
        "UNRECOVERABLE",
    ]);
    for p in list(v, "paths") {
        let fec = match p.get("fec_active") {
            Some(Value::Bool(true)) => "on",
            _ => "off",
        };
        t.push([
            text(p, "name"),
            text(p, "state"),
            decimal(p, "rtt_ms"),
            decimal(p, "rtt_p95_ms"),
            decimal(p, "jitter_ms"),
            decimal(p, "loss_pct"),
            number(p, "probes_sent").to_string(),
            number(p, "probes_replied").to_string(),
            number(p, "transitions").to_string(),
            number(p, "tx_packets").to_string(),
            number(p, "tx_bytes").to_string(),
            fec.to_string(),
            number(p, "fec_recovered").to_string(),
            number(p, "fec_unrecoverable").to_string(),
        ]);
    }
    let mut out = if t.rows.is_empty() {
        "no WAN paths (the engine runs without [wan])\n".to_string()
    } else {
        t.render()
    };
    out.push_str(&format!("bad packets: {}\n", number(v, "bad_packets")));
    out
}

/// One row per policy and path (its share of the policy's packets), then
/// compression.
pub fn policies_text(v: &Value) -> String {
    let mut t = Table::new(["POLICY", "MOVES", "PATH", "PACKETS", "SHARE %"]);
    for p in list(v, "policies") {
        let paths = list(p, "paths");
        let total: u64 = paths.iter().map(|x| number(x, "packets")).sum();
        if paths.is_empty() {
            t.push([text(p, "name"), number(p, "moves").to_string(), "-".into()]);
        }
        for x in paths {
            let share = if total == 0 {
                "-".to_string()
            } else {
                format!("{:.1}", number(x, "packets") as f64 * 100.0 / total as f64)
            };
            t.push([
                text(p, "name"),
                number(p, "moves").to_string(),
                text(x, "path"),
                number(x, "packets").to_string(),
                share,
            ]);
        }
    }
    let mut out = if t.rows.is_empty() {
        "no WAN policies (the engine runs without [wan])\n".to_string()
    } else {
        t.render()
    };
    out.push('\n');
    out.push_str(&render_document(
        &json!({ "compression": v.get("compression").cloned().unwrap_or(Value::Null) }),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_row_reads_in_ms_and_percent() {
        let v = json!({ "paths": [{ "name": "lte", "state": "dead", "rtt_ms": 48.25,
            "rtt_p95_ms": 90.0, "jitter_ms": 1.5, "loss_pct": 5.25, "probes_sent": 100,
            "probes_replied": 94, "probes_reflected": 99, "transitions": 3, "tx_packets": 7,
            "tx_bytes": 7000, "fec_active": true, "fec_data_sent": 50, "fec_parity_sent": 10,
            "fec_recovered": 4, "fec_unrecoverable": 1 }], "bad_packets": 2 });
        let text = paths_text(&v);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("PATH"), "{text}");
        let row: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(
            row,
            [
                "lte", "dead", "48.25", "90.00", "1.50", "5.25", "100", "94", "3", "7", "7000",
                "on", "4", "1"
            ]
        );
        assert_eq!(lines[2], "bad packets: 2");
        let empty = paths_text(&json!({ "paths": [], "bad_packets": 0 }));
        assert!(empty.starts_with("no WAN paths"), "{empty}");
    }

    #[test]
    fn policy_rows_show_each_paths_share() {
        let v = json!({ "policies": [
            { "name": "bulk", "moves": 0, "paths": [] },
            { "name": "voice", "moves": 2, "paths": [
                { "path": "fibre", "packets": 75 }, { "path": "lte", "packets": 25 } ] } ],
            "compression": { "in_bytes": 1000, "out_bytes": 400, "skipped": 3, "ratio": 0.4,
                "saved_bytes": 600, "decompress_errors": 0 } });
        let text = policies_text(&v);
        let rows: Vec<Vec<&str>> = text
            .lines()
            .take(4)
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(rows[1], ["bulk", "0", "-"]);
        assert_eq!(rows[2], ["voice", "2", "fibre", "75", "75.0"]);
        assert_eq!(rows[3], ["voice", "2", "lte", "25", "25.0"]);
        assert!(text.contains("compression"), "{text}");
        assert!(
            text.lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["saved_bytes", "600"]),
            "{text}"
        );
    }
}
