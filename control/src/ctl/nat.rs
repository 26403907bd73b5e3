//! `patronusctl nat ...`: show and change the NAT configuration (`set`
//! reads the current one and changes only what the options name), port
//! forwards and pool addresses one by one, and the engine's live sessions
//! (one page, or every page with `--all`).

use std::io::Read;
use std::net::Ipv4Addr;

use serde_json::{json, Map, Value};

use super::args::{NatCmd, NatForwardCmd, NatPoolCmd, NatSetArgs};
use super::client::{Client, CtlError};
use super::table::{items_table, render_document};

const NAT: &str = "/api/v1/nat";
const FORWARDS: &str = "/api/v1/nat/forwards";
const FORWARD_COLUMNS: &[&str] = &["id", "proto", "outside", "inside"];
const SESSION_COLUMNS: &[&str] = &[
    "worker",
    "proto",
    "inside",
    "outside",
    "remote",
    "state",
    "static",
    "age_ms",
    "expires_in_ms",
];
/// Timeout names `--timeout` accepts.
const TIMEOUTS: &[&str] = &[
    "tcp_established",
    "tcp_transitory",
    "tcp_initial",
    "udp",
    "icmp_query",
    "fragment",
];

fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
    s.push('\n');
    s
}

fn usage(m: impl Into<String>) -> CtlError {
    CtlError::Usage(m.into())
}

/// Runs one `nat` command; returns the text for stdout.
pub fn run(client: &Client, json_out: bool, cmd: &NatCmd) -> Result<String, CtlError> {
    let doc = |v: &Value| {
        if json_out {
            pretty(v)
        } else {
            render_document(v)
        }
    };
    let table = |items: &[Value], cols: &[&str]| items_table(items, cols, &[]).render();
    match cmd {
        NatCmd::Show => Ok(doc(&client.get(NAT)?)),
        NatCmd::Set(a) => {
            let body = set_body(client, a)?;
            Ok(doc(&client.put(NAT, &body)?))
        }
        NatCmd::Delete => {
            client.delete(NAT)?;
            Ok(if json_out {
                pretty(&json!({ "deleted": "nat" }))
            } else {
                "deleted the NAT configuration\n".into()
            })
        }
        NatCmd::Forward(NatForwardCmd::List) => {
            let v = client.get(FORWARDS)?;
            Ok(if json_out {
                pretty(&v)
            } else {
                table(items(&v)?, FORWARD_COLUMNS)
            })
        }
        NatCmd::Forward(NatForwardCmd::Add {
            proto,
            outside,
            inside,
        }) => {
            let body = json!({ "proto": proto, "outside": outside, "inside": inside });
            let v = client.post(FORWARDS, &body)?;
            Ok(if json_out {
                pretty(&v)
            } else {
                table(std::slice::from_ref(&v), FORWARD_COLUMNS)
            })
        }
        NatCmd::Forward(NatForwardCmd::Del { forward }) => {
            let (id, label) = forward_id(client, forward)?;
            client.delete(&format!("{FORWARDS}/{id}"))?;
            Ok(if json_out {
                pretty(&json!({ "deleted": id }))
            } else {
                format!("deleted forward {label}\n")
            })
        }
        NatCmd::Pool(NatPoolCmd::Add { address }) => Ok(doc(
            &client.post("/api/v1/nat/pool", &json!({ "address": address }))?
        )),
        NatCmd::Pool(NatPoolCmd::Del { address }) => {
            let a: Ipv4Addr = address
                .parse()
                .map_err(|_| usage(format!("{address:?} is not an IPv4 address")))?;
            let path = format!("/api/v1/nat/pool/{a}");
            Ok(doc(&client.delete(&path)?))
        }
        NatCmd::Sessions {
            inside,
            limit,
            cursor,
            all,
        } => sessions(
            client,
            json_out,
            inside.as_deref(),
            *limit,
            cursor.clone(),
            *all,
        ),
    }
}

fn items(v: &Value) -> Result<&[Value], CtlError> {
    v.get("items")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .ok_or_else(|| CtlError::Api {
            status: 0,
            code: "bad_response".into(),
            field: Some("items".into()),
            message: format!("expected a list {{\"items\": [...]}}, got {v}"),
        })
}

/// `ID` or `PROTO OUTSIDE`: the forward's id and a label.
fn forward_id(client: &Client, words: &[String]) -> Result<(i64, String), CtlError> {
    match words {
        [id] => id.parse::<i64>().map(|n| (n, id.clone())).map_err(|_| {
            usage(format!(
                "{id:?} is not a forward id (or give PROTO OUTSIDE)"
            ))
        }),
        [proto, outside] => {
            let listed = client.get(FORWARDS)?;
            let found: Vec<i64> = items(&listed)?
                .iter()
                .filter(|f| {
                    f.get("proto").and_then(Value::as_str) == Some(proto.as_str())
                        && f.get("outside").and_then(Value::as_str) == Some(outside.as_str())
                })
                .filter_map(|f| f.get("id").and_then(Value::as_i64))
                .collect();
            match found.as_slice() {
                [id] => Ok((*id, format!("{id} ({proto} {outside})"))),
                _ => Err(CtlError::not_found(
                    "forward",
                    format!("no {proto} forward of {outside}"),
                )),
            }
        }
        _ => Err(usage("give a forward id, or PROTO OUTSIDE_ADDR:PORT")),
    }
}

fn read_file(path: &std::path::Path) -> Result<Value, CtlError> {
    let text = if path == std::path::Path::new("-") {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| usage(format!("cannot read stdin: {e}")))?;
        s
    } else {
        std::fs::read_to_string(path)
            .map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?
    };
    serde_json::from_str(&text)
        .map_err(|e| usage(format!("{} is not valid JSON: {e}", path.display())))
}

/// The current configuration as a request body (forwards without ids), or
/// `None` when there is none.
fn current_body(client: &Client) -> Result<Option<Map<String, Value>>, CtlError> {
    let mut v = match client.get(NAT) {
        Ok(v) => v,
        Err(CtlError::Api { status: 404, .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    if let Some(fs) = v.get_mut("forwards").and_then(Value::as_array_mut) {
        for f in fs.iter_mut() {
            if let Some(m) = f.as_object_mut() {
                m.remove("id");
            }
        }
    }
    Ok(v.as_object().cloned())
}

/// `PUT /nat`'s body for `nat set`.
fn set_body(client: &Client, a: &NatSetArgs) -> Result<Value, CtlError> {
    if let Some(f) = &a.file {
        return read_file(f);
    }
    let mut body = match current_body(client)? {
        Some(b) => b,
        None => {
            if a.outside.is_none() || a.pool.is_empty() {
                return Err(usage(
                    "there is no NAT configuration yet: give at least --outside PORT and --pool ADDR",
                ));
            }
            Map::new()
        }
    };
    if let Some(port) = &a.outside {
        let vlan = body
            .get("outside")
            .and_then(|o| o.get("vlan"))
            .cloned()
            .unwrap_or(Value::Null);
        body.insert("outside".into(), json!({ "port": port, "vlan": vlan }));
    }
    if let Some(v) = a.vlan {
        let port = body
            .get("outside")
            .and_then(|o| o.get("port"))
            .cloned()
            .ok_or_else(|| usage("--vlan needs --outside"))?;
        let vlan = if v == 0 { Value::Null } else { json!(v) };
        body.insert("outside".into(), json!({ "port": port, "vlan": vlan }));
    }
    if !a.pool.is_empty() {
        body.insert("pool".into(), json!(a.pool));
    }
    if let Some(f) = &a.filtering {
        body.insert("filtering".into(), json!(f));
    }
    if !a.timeout.is_empty() {
        let mut t = body
            .get("timeouts")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for item in &a.timeout {
            let (name, secs) = item
                .split_once('=')
                .ok_or_else(|| usage(format!("--timeout {item:?}: expected NAME=SECONDS")))?;
            if !TIMEOUTS.contains(&name) {
                return Err(usage(format!(
                    "--timeout {name:?}: one of {}",
                    TIMEOUTS.join(", ")
                )));
            }
            if secs == "default" {
                t.remove(name);
            } else {
                let n: u64 = secs.parse().map_err(|_| {
                    usage(format!(
                        "--timeout {item:?}: SECONDS is a number or `default`"
                    ))
                })?;
                t.insert(name.into(), json!(n));
            }
        }
        body.insert("timeouts".into(), Value::Object(t));
    }
    if let Some(m) = &a.max_sessions_per_host {
        let v = match m.as_str() {
            "default" => Value::Null,
            n => json!(n.parse::<u64>().map_err(|_| usage(format!(
                "--max-sessions-per-host {n:?}: a number or `default`"
            )))?),
        };
        body.insert("max_sessions_per_host".into(), v);
    }
    if let Some(r) = &a.inbound_refresh {
        let v = match r.as_str() {
            "true" => json!(true),
            "false" => json!(false),
            "default" => Value::Null,
            other => {
                return Err(usage(format!(
                    "--inbound-refresh {other:?}: true, false or default"
                )))
            }
        };
        body.insert("inbound_refresh".into(), v);
    }
    if !a.one_to_one.is_empty() {
        let maps = a
            .one_to_one
            .iter()
            .map(|m| {
                m.split_once('=')
                    .map(|(o, i)| json!({ "outside": o, "inside": i }))
                    .ok_or_else(|| usage(format!("--one-to-one {m:?}: expected OUTSIDE=INSIDE")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        body.insert("one_to_one".into(), json!(maps));
    }
    if let Some(e) = a.enabled {
        body.insert("enabled".into(), json!(e));
    }
    Ok(Value::Object(body))
}

/// Percent-encodes a query value.
pub(super) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn sessions(
    client: &Client,
    json_out: bool,
    inside: Option<&str>,
    limit: u32,
    mut cursor: Option<String>,
    all: bool,
) -> Result<String, CtlError> {
    let mut collected: Vec<Value> = Vec::new();
    loop {
        let mut path = format!("/api/v1/nat/sessions?limit={limit}");
        if let Some(i) = inside {
            path.push_str(&format!("&inside={}", encode(i)));
        }
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={}", encode(c)));
        }
        let page = client.get(&path)?;
        let next = page
            .get("next_cursor")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if !all {
            if json_out {
                return Ok(pretty(&page));
            }
            let mut text = items_table(items(&page)?, SESSION_COLUMNS, &[]).render();
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
        let mut text = items_table(&collected, SESSION_COLUMNS, &[]).render();
        text.push_str(&format!("{} sessions\n", collected.len()));
        text
    })
}
