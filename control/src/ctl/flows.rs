//! `patronusctl flows ...`: the flows the engine classified (one page, or
//! every page with `--all`; filtered by class and host) as a table, and
//! `flows summary`: per-class counts and the classification counters.

use serde_json::{json, Value};

use super::args::{FlowListArgs, FlowsArgs, FlowsCmd};
use super::client::{Client, CtlError};
use super::nat::encode;
use super::table::{render_document, Table};

const FLOWS: &str = "/api/v1/flows";
const SUMMARY: &str = "/api/v1/flows/summary";
const HEADERS: &[&str] = &[
    "WORKER",
    "PROTO",
    "CLIENT",
    "SERVER",
    "CLASS",
    "APP",
    "METHOD",
    "CONFIDENCE",
    "PACKETS (C/S)",
    "BYTES (C/S)",
    "AGE",
];

fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
    s.push('\n');
    s
}

/// Runs one `flows` command; returns the text for stdout.
pub fn run(client: &Client, json_out: bool, args: &FlowsArgs) -> Result<String, CtlError> {
    match args.cmd {
        Some(FlowsCmd::Summary) => {
            let v = client.get(SUMMARY)?;
            Ok(if json_out {
                pretty(&v)
            } else {
                summary_text(&v)
            })
        }
        None => list(client, json_out, &args.list),
    }
}

fn bad_response(what: &str, v: &Value) -> CtlError {
    CtlError::Api {
        status: 0,
        code: "bad_response".into(),
        field: Some(what.into()),
        message: format!("unexpected answer from the API: {v}"),
    }
}

fn items(v: &Value) -> Result<&[Value], CtlError> {
    v.get("items")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .ok_or_else(|| bad_response("items", v))
}

fn list(client: &Client, json_out: bool, a: &FlowListArgs) -> Result<String, CtlError> {
    let mut cursor = a.cursor.clone();
    let mut collected: Vec<Value> = Vec::new();
    loop {
        let mut path = format!("{FLOWS}?limit={}", a.limit);
        if let Some(c) = &a.class {
            path.push_str(&format!("&class={}", encode(c)));
        }
        if let Some(h) = &a.host {
            path.push_str(&format!("&host={}", encode(h)));
        }
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={}", encode(c)));
        }
        let page = client.get(&path)?;
        let next = page
            .get("next_cursor")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if !a.all {
            if json_out {
                return Ok(pretty(&page));
            }
            let mut text = flow_table(items(&page)?).render();
            if let Some(n) = next {
                text.push_str(&format!("more: --cursor {n}\n"));
            }
            return Ok(text);
        }
        collected.extend(items(&page)?.iter().cloned());
        match next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    Ok(if json_out {
        pretty(&json!({ "items": collected }))
    } else {
        let mut text = flow_table(&collected).render();
        text.push_str(&format!("{} flows\n", collected.len()));
        text
    })
}

/// A field as text (`-` when absent).
fn text(f: &Value, key: &str) -> String {
    match f.get(key) {
        None | Some(Value::Null) => "-".into(),
        Some(Value::String(s)) => s.chars().filter(|c| !c.is_control()).collect(),
        Some(v) => v.to_string(),
    }
}

fn number(f: &Value, key: &str) -> u64 {
    f.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// `850ms`, `12.3s`, `4m05s`, `2h07m`.
pub fn age(ms: u64) -> String {
    match ms {
        0..=999 => format!("{ms}ms"),
        1_000..=59_999 => format!("{:.1}s", ms as f64 / 1000.0),
        60_000..=3_599_999 => format!("{}m{:02}s", ms / 60_000, ms / 1000 % 60),
        _ => format!("{}h{:02}m", ms / 3_600_000, ms / 60_000 % 60),
    }
}

/// One row per flow, in the API's order.
pub fn flow_table(flows: &[Value]) -> Table {
    let mut t = Table::new(HEADERS.iter().copied());
    for f in flows {
        let confidence = f
            .get("confidence")
            .and_then(Value::as_f64)
            .map_or_else(|| "-".into(), |c| format!("{c:.2}"));
        t.push([
            text(f, "worker"),
            text(f, "proto"),
            text(f, "client"),
            text(f, "server"),
            text(f, "class"),
            text(f, "app_name"),
            text(f, "method"),
            confidence,
            format!(
                "{}/{}",
                number(f, "packets_orig"),
                number(f, "packets_reply")
            ),
            format!("{}/{}", number(f, "bytes_orig"), number(f, "bytes_reply")),
            age(number(f, "age_ms")),
        ]);
    }
    t
}

/// The per-class table (classes with flows first, by flows), then the
/// counters.
fn summary_text(v: &Value) -> String {
    let mut classes: Vec<(&String, &Value)> = v
        .get("classes")
        .and_then(Value::as_object)
        .map(|m| m.iter().collect())
        .unwrap_or_default();
    classes.sort_by_key(|(name, c)| (std::cmp::Reverse(number(c, "flows")), name.as_str()));
    let mut t = Table::new(["CLASS", "FLOWS", "PACKETS", "BYTES"]);
    for (name, c) in classes {
        t.push([
            name.clone(),
            number(c, "flows").to_string(),
            number(c, "packets").to_string(),
            number(c, "bytes").to_string(),
        ]);
    }
    let mut rest = v.clone();
    if let Some(m) = rest.as_object_mut() {
        m.remove("classes");
    }
    let mut out = t.render();
    out.push('\n');
    out.push_str(&render_document(&rest));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_at_a_glance() {
        assert_eq!(age(0), "0ms");
        assert_eq!(age(850), "850ms");
        assert_eq!(age(12_340), "12.3s");
        assert_eq!(age(245_000), "4m05s");
        assert_eq!(age(7_620_000), "2h07m");
    }

    #[test]
    fn a_flow_row_shows_both_directions() {
        let f = json!({
            "worker": 1, "proto": "tcp", "client": "10.1.0.2:40000", "server": "10.2.0.2:443",
            "class": "tls", "app_name": "www.patronus.test", "method": "signature",
            "confidence": 0.9, "packets_orig": 12, "packets_reply": 10, "bytes_orig": 1500,
            "bytes_reply": 4200, "age_ms": 250, "idle_ms": 3
        });
        let mut pending = f.clone();
        pending.as_object_mut().unwrap().remove("app_name");
        let text = flow_table(&[f, pending]).render();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("WORKER"), "{text}");
        let row: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(
            row,
            [
                "1",
                "tcp",
                "10.1.0.2:40000",
                "10.2.0.2:443",
                "tls",
                "www.patronus.test",
                "signature",
                "0.90",
                "12/10",
                "1500/4200",
                "250ms"
            ]
        );
        assert_eq!(lines[2].split_whitespace().nth(5), Some("-"));
    }
}
