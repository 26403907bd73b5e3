//! `patronusctl lb vip|backend ...`: load-balancer VIPs and their backends.
//! `vip list` shows one line per VIP with how many backends are up;
//! `vip show` the VIP's settings and a table of its backends with their
//! health and the engine's counters.

use serde_json::{json, Map, Value};

use super::args::{LbBackendCmd, LbCmd, LbVipCmd};
use super::client::{Client, CtlError};
use super::table::{items_table, render_document};

const VIPS: &str = "/api/v1/lb/vips";
const VIP_COLUMNS: &[&str] = &[
    "name",
    "address",
    "port",
    "protocol",
    "mode",
    "table_size",
    "check",
    "backends",
    "up",
];
const BACKEND_COLUMNS: &[&str] = &[
    "address",
    "port",
    "weight",
    "health",
    "flows",
    "active_flows",
    "packets",
    "bytes",
];

fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
    s.push('\n');
    s
}

/// `ADDRESS:PORT` split (the API checks the address).
pub fn split_endpoint(text: &str) -> Result<(String, u16), CtlError> {
    let bad = || CtlError::Usage(format!("{text:?} is not ADDRESS:PORT"));
    let (a, p) = text.rsplit_once(':').ok_or_else(bad)?;
    let port = p.parse::<u16>().map_err(|_| bad())?;
    if a.is_empty() {
        return Err(bad());
    }
    Ok((a.to_owned(), port))
}

/// `--check tcp` / `--check http` / `--check http:/path`.
fn check_kind(text: &str) -> Result<(&'static str, Option<String>), CtlError> {
    match text.split_once(':') {
        None if text == "tcp" => Ok(("tcp", None)),
        None if text == "http" => Ok(("http", None)),
        Some(("http", path)) => Ok(("http", Some(path.to_owned()))),
        _ => Err(CtlError::Usage(format!(
            "--check {text:?}: tcp, http or http:PATH"
        ))),
    }
}

/// A check's short form for a table cell: `http:/healthz 500ms` or `-`.
fn check_cell(c: &Value) -> Value {
    if c.is_null() {
        return Value::Null;
    }
    let kind = c["type"].as_str().unwrap_or("?");
    let mut s = match c["path"].as_str() {
        Some(p) => format!("{kind}:{p}"),
        None => kind.to_owned(),
    };
    if let Some(p) = c["port"].as_u64() {
        s.push_str(&format!(" port {p}"));
    }
    if let Some(ms) = c["interval_ms"].as_u64() {
        s.push_str(&format!(" every {ms}ms"));
    }
    Value::String(s)
}

/// One row per VIP: its settings, the check in short, backends and how
/// many are up (or unchecked).
fn vip_rows(v: &Value) -> Vec<Value> {
    v["vips"]
        .as_array()
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .map(|vip| {
            let backends = vip["backends"].as_array().map_or(&[][..], Vec::as_slice);
            let up = backends.iter().filter(|b| b["health"] != "down").count();
            json!({
                "name": vip["name"], "address": vip["address"], "port": vip["port"],
                "protocol": vip["protocol"], "mode": vip["mode"], "table_size": vip["table_size"],
                "check": check_cell(&vip["health_check"]),
                "backends": backends.len(), "up": up,
            })
        })
        .collect()
}

/// A VIP: its settings as `key value` lines, then its backends as a table.
fn show(v: &Value) -> String {
    let mut head = v.clone();
    let backends = head
        .as_object_mut()
        .and_then(|m| m.remove("backends"))
        .unwrap_or(Value::Null);
    if let Some(m) = head.as_object_mut() {
        let c = check_cell(&m["health_check"]);
        m.insert("health_check".into(), c);
    }
    let mut out = render_document(&head);
    out.push_str("\nbackends:\n");
    let rows = backends.as_array().map_or(&[][..], Vec::as_slice);
    out.push_str(&items_table(rows, BACKEND_COLUMNS, &["id"]).render());
    out
}

fn vip_path(name: &str) -> String {
    format!("{VIPS}/{name}")
}

/// Runs one `lb` command; returns the text for stdout.
pub fn run(client: &Client, json_out: bool, cmd: &LbCmd) -> Result<String, CtlError> {
    let done = |what: String| {
        if json_out {
            pretty(&json!({ "deleted": what }))
        } else {
            format!("deleted {what}\n")
        }
    };
    let one = |v: &Value| {
        if json_out {
            pretty(v)
        } else {
            show(v)
        }
    };
    let backend = |v: &Value| {
        if json_out {
            pretty(v)
        } else {
            items_table(std::slice::from_ref(v), BACKEND_COLUMNS, &["id"]).render()
        }
    };
    match cmd {
        LbCmd::Vip(LbVipCmd::Add {
            name,
            endpoint,
            proto,
            mode,
            table_size,
            check,
            check_port,
            interval_ms,
            timeout_ms,
            rise,
            fall,
        }) => {
            let (address, port) = split_endpoint(endpoint)?;
            let mut body = Map::new();
            body.insert("name".into(), json!(name));
            body.insert("address".into(), json!(address));
            body.insert("port".into(), json!(port));
            body.insert("protocol".into(), json!(proto));
            body.insert("mode".into(), json!(mode));
            if let Some(n) = table_size {
                body.insert("table_size".into(), json!(n));
            }
            if let Some(c) = check {
                let (kind, path) = check_kind(c)?;
                let mut hc = Map::new();
                hc.insert("type".into(), json!(kind));
                for (k, v) in [
                    ("path", path.map(Value::from)),
                    ("port", check_port.map(Value::from)),
                    ("interval_ms", interval_ms.map(Value::from)),
                    ("timeout_ms", timeout_ms.map(Value::from)),
                    ("rise", rise.map(Value::from)),
                    ("fall", fall.map(Value::from)),
                ] {
                    if let Some(v) = v {
                        hc.insert(k.into(), v);
                    }
                }
                body.insert("health_check".into(), Value::Object(hc));
            }
            Ok(one(&client.post(VIPS, &Value::Object(body))?))
        }
        LbCmd::Vip(LbVipCmd::List) => {
            let v = client.get(VIPS)?;
            Ok(if json_out {
                pretty(&v)
            } else {
                items_table(&vip_rows(&v), VIP_COLUMNS, &[]).render()
            })
        }
        LbCmd::Vip(LbVipCmd::Show { name }) => Ok(one(&client.get(&vip_path(name))?)),
        LbCmd::Vip(LbVipCmd::Delete { name }) => {
            client.delete(&vip_path(name))?;
            Ok(done(format!("VIP {name}")))
        }
        LbCmd::Backend(LbBackendCmd::Add {
            vip,
            endpoint,
            weight,
        }) => {
            let (address, port) = split_endpoint(endpoint)?;
            let body = json!({ "address": address, "port": port, "weight": weight });
            Ok(backend(
                &client.post(&format!("{}/backends", vip_path(vip)), &body)?,
            ))
        }
        LbCmd::Backend(LbBackendCmd::Set {
            vip,
            endpoint,
            weight,
        }) => {
            let (address, port) = split_endpoint(endpoint)?;
            let path = format!("{}/backends/{address}:{port}", vip_path(vip));
            Ok(backend(&client.patch(&path, &json!({ "weight": weight }))?))
        }
        LbCmd::Backend(LbBackendCmd::Remove { vip, endpoint }) => {
            let (address, port) = split_endpoint(endpoint)?;
            client.delete(&format!("{}/backends/{address}:{port}", vip_path(vip)))?;
            Ok(done(format!("backend {address}:{port} of VIP {vip}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_and_checks_parse() {
        assert_eq!(
            split_endpoint("10.2.0.1:80").unwrap(),
            ("10.2.0.1".to_owned(), 80)
        );
        for bad in ["10.2.0.1", "10.2.0.1:", ":80", "10.2.0.1:70000"] {
            assert!(split_endpoint(bad).is_err(), "{bad}");
        }
        assert_eq!(check_kind("tcp").unwrap(), ("tcp", None));
        assert_eq!(check_kind("http").unwrap(), ("http", None));
        assert_eq!(
            check_kind("http:/healthz").unwrap(),
            ("http", Some("/healthz".to_owned()))
        );
        assert!(check_kind("tcp:/x").is_err());
        assert!(check_kind("icmp").is_err());
    }

    #[test]
    fn lists_count_backends_up() {
        let v = json!({ "vips": [{ "name": "web", "address": "10.9.0.100", "port": 80,
            "protocol": "tcp", "mode": "nat", "table_size": 65537,
            "health_check": { "type": "http", "path": "/", "port": null, "interval_ms": 500,
                              "timeout_ms": 400, "rise": 2, "fall": 2 },
            "backends": [{ "health": "up" }, { "health": "down" }, { "health": "up" }] }] });
        let text = items_table(&vip_rows(&v), VIP_COLUMNS, &[]).render();
        let mut lines = text.lines();
        let head: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
        assert_eq!(
            head,
            [
                "NAME",
                "ADDRESS",
                "PORT",
                "PROTOCOL",
                "MODE",
                "TABLE_SIZE",
                "CHECK",
                "BACKENDS",
                "UP"
            ]
        );
        let row = lines.next().unwrap();
        assert!(row.contains("http:/ every 500ms"), "{row}");
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cells[cells.len() - 2..], ["3", "2"]);
    }
}
