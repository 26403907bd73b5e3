//! What each `patronusctl` subcommand does: build the request, call the API
//! through [`Client`], and print either the API's JSON (`--json`) or tables.
//! Output is returned as a string so the caller decides where it goes.

use std::io::Read;
use std::net::Ipv4Addr;
use std::path::Path;

use serde_json::{json, Value};

use super::args::{Command, InterfaceCmd, OrgCmd, RouteCmd};
use super::client::{Client, CtlError};
use super::table::{items_table, render_document};
use crate::model::Cidr;

/// Columns shown first in each list (the rest follow in the API's order).
const ROUTE_COLUMNS: &[&str] = &["id", "prefix", "next_hops", "blackhole", "tunnel"];
const INTERFACE_COLUMNS: &[&str] = &["id", "port", "address", "vlan"];
const ORG_COLUMNS: &[&str] = &["name"];
/// Redundant with `--org` in per-organization lists.
const HIDDEN: &[&str] = &["org"];

/// Runs one command; returns the text for stdout.
pub fn run(client: &Client, org: &str, json_out: bool, cmd: &Command) -> Result<String, CtlError> {
    let out = Output { json: json_out };
    let org_path = format!("/api/v1/orgs/{}", encode_segment(org));
    match cmd {
        Command::Status => Ok(out.document(&client.get("/api/v1/status")?)),
        Command::Stats => stats(client, out),
        Command::Route(c) => route(client, &org_path, out, c),
        Command::Interface(c) => interface(client, &org_path, out, c),
        Command::Org(c) => orgs(client, out, c),
        Command::Nat(c) => super::nat::run(client, out.json, c),
        Command::Wg(c) => super::wg::run(client, out.json, c),
        Command::Lb(c) => super::lb::run(client, out.json, c),
        Command::Bgp(c) => super::bgp::run(client, out.json, c),
        Command::Model(c) => super::models::run(client, out.json, c),
        Command::Flows(a) => super::flows::run(client, out.json, a),
        Command::Wan(c) => super::wan::run(client, out.json, c),
    }
}

#[derive(Clone, Copy)]
struct Output {
    json: bool,
}

impl Output {
    fn json(v: &Value) -> String {
        let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
        s.push('\n');
        s
    }

    fn document(self, v: &Value) -> String {
        if self.json {
            Self::json(v)
        } else {
            render_document(v)
        }
    }

    /// A `{"items": [...]}` answer as a table.
    fn list(self, v: &Value, columns: &[&str]) -> Result<String, CtlError> {
        if self.json {
            return Ok(Self::json(v));
        }
        Ok(items_table(items(v)?, columns, HIDDEN).render())
    }

    /// One created or replaced object as a one-row table.
    fn one(self, v: &Value, columns: &[&str]) -> String {
        if self.json {
            Self::json(v)
        } else {
            items_table(std::slice::from_ref(v), columns, HIDDEN).render()
        }
    }

    fn deleted(self, what: &str, key: Value, detail: &str) -> String {
        if self.json {
            Self::json(&json!({ "deleted": key }))
        } else {
            format!("deleted {what} {detail}\n")
        }
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

fn stats(client: &Client, out: Output) -> Result<String, CtlError> {
    let v = client.get("/api/v1/counters")?;
    if out.json {
        return Ok(Output::json(&v));
    }
    let only_attached = v.as_object().is_some_and(|m| m.len() == 1);
    if v.get("attached") == Some(&Value::Bool(false)) && only_attached {
        return Ok("engine not attached: no counters yet\n".into());
    }
    Ok(render_document(&v))
}

fn route(client: &Client, org: &str, out: Output, cmd: &RouteCmd) -> Result<String, CtlError> {
    let coll = format!("{org}/routes");
    match cmd {
        RouteCmd::List => out.list(&client.get(&coll)?, ROUTE_COLUMNS),
        RouteCmd::Add { prefix, target } => {
            let body = route_body(prefix, target)?;
            Ok(out.one(&client.post(&coll, &body)?, ROUTE_COLUMNS))
        }
        RouteCmd::Del { route } => {
            // By prefix: one bulk deletion, without listing the table.
            if let Key::Cidr(c) = parse_key(route) {
                let body = json!({ "delete_prefixes": [c.to_string()] });
                client
                    .post(&format!("{coll}/bulk"), &body)
                    .map_err(|e| match e {
                        CtlError::Api {
                            status: 404,
                            code,
                            message,
                            ..
                        } => CtlError::Api {
                            status: 404,
                            code,
                            field: Some("prefix".into()),
                            message,
                        },
                        other => other,
                    })?;
                return Ok(out.deleted("route", json!(c.to_string()), route));
            }
            let (id, label) = resolve(client, &coll, route, "prefix", |item, key| {
                match (key, item.get("prefix").and_then(Value::as_str)) {
                    (Key::Cidr(c), Some(p)) => Cidr::parse("prefix", p).ok() == Some(*c),
                    _ => false,
                }
            })?;
            client.delete(&format!("{coll}/{id}"))?;
            Ok(out.deleted("route", json!(id), &label))
        }
        RouteCmd::Replace { file } => {
            let body = route_set_from_file(file)?;
            out.list(&client.put(&coll, &body)?, ROUTE_COLUMNS)
        }
        RouteCmd::Load { file, chunk } => {
            let v = super::load::load(client, &coll, file, *chunk as usize)?;
            if out.json {
                Ok(Output::json(&v))
            } else {
                Ok(format!(
                    "loaded {} routes in {} requests (generation {})\n",
                    v["added"], v["requests"], v["generation"]
                ))
            }
        }
    }
}

fn interface(
    client: &Client,
    org: &str,
    out: Output,
    cmd: &InterfaceCmd,
) -> Result<String, CtlError> {
    let coll = format!("{org}/interfaces");
    match cmd {
        InterfaceCmd::List => out.list(&client.get(&coll)?, INTERFACE_COLUMNS),
        InterfaceCmd::Add {
            port,
            address,
            vlan,
        } => {
            let body = json!({ "port": port, "address": address, "vlan": vlan });
            Ok(out.one(&client.post(&coll, &body)?, INTERFACE_COLUMNS))
        }
        InterfaceCmd::Del { interface } => {
            let (id, label) = resolve(client, &coll, interface, "interface", |item, key| {
                let s = |k: &str| item.get(k).and_then(Value::as_str);
                match key {
                    Key::Cidr(c) => s("address").and_then(|a| Cidr::parse("a", a).ok()) == Some(*c),
                    Key::Name(n) => s("port") == Some(n),
                    Key::Id(_) => false,
                }
            })?;
            client.delete(&format!("{coll}/{id}"))?;
            Ok(out.deleted("interface", json!(id), &label))
        }
    }
}

fn orgs(client: &Client, out: Output, cmd: &OrgCmd) -> Result<String, CtlError> {
    match cmd {
        OrgCmd::List => out.list(&client.get("/api/v1/orgs")?, ORG_COLUMNS),
        OrgCmd::Add { name } => Ok(out.one(
            &client.post("/api/v1/orgs", &json!({ "name": name }))?,
            ORG_COLUMNS,
        )),
        OrgCmd::Del { name } => {
            client.delete(&format!("/api/v1/orgs/{}", encode_segment(name)))?;
            Ok(out.deleted("organization", json!(name), name))
        }
    }
}

/// How the user named a resource to delete.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Key {
    Id(i64),
    Cidr(Cidr),
    Name(String),
}

fn parse_key(text: &str) -> Key {
    if let Ok(id) = text.parse::<i64>() {
        return Key::Id(id);
    }
    match Cidr::parse("", text) {
        Ok(c) => Key::Cidr(c),
        Err(_) => Key::Name(text.to_owned()),
    }
}

/// Finds the id of the one item in `coll` that `text` names: a number is the
/// id itself; anything else is matched against the list. Returns the id and
/// a label for the confirmation message.
fn resolve(
    client: &Client,
    coll: &str,
    text: &str,
    field: &str,
    matches: impl Fn(&Value, &Key) -> bool,
) -> Result<(i64, String), CtlError> {
    let key = parse_key(text);
    if let Key::Id(id) = key {
        return Ok((id, id.to_string()));
    }
    if let (Key::Name(_), "prefix") = (&key, field) {
        return Err(CtlError::Usage(format!(
            "{text:?} is neither a route id nor a prefix a.b.c.d/len"
        )));
    }
    let listed = client.get(coll)?;
    let found: Vec<i64> = items(&listed)?
        .iter()
        .filter(|i| matches(i, &key))
        .filter_map(|i| i.get("id").and_then(Value::as_i64))
        .collect();
    match found.as_slice() {
        [id] => Ok((*id, format!("{id} ({text})"))),
        [] => Err(CtlError::not_found(
            field,
            format!("nothing matches {text}"),
        )),
        many => Err(CtlError::Usage(format!(
            "{text} matches several ({}); give the id",
            many.iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// `PREFIX via A [via B ...]`, `PREFIX blackhole` or `PREFIX tunnel NAME`
/// as the API's route body.
/// Addresses are checked by the API (so its error names the field); here only
/// the word structure is checked.
fn route_body(prefix: &str, words: &[String]) -> Result<Value, CtlError> {
    if let [w] = words {
        if w == "blackhole" {
            return Ok(json!({ "prefix": prefix, "blackhole": true }));
        }
    }
    if let [w, name] = words {
        if w == "tunnel" {
            return Ok(json!({ "prefix": prefix, "tunnel": name }));
        }
    }
    let mut hops = Vec::new();
    let mut it = words.iter();
    while let Some(w) = it.next() {
        match w.as_str() {
            "via" => match it.next() {
                Some(a) => hops.push(json!({ "via": a })),
                None => return Err(CtlError::Usage("`via` needs an address".into())),
            },
            "blackhole" | "tunnel" => {
                return Err(CtlError::Usage(
                    "a route has `via` next hops, or is `blackhole`, or `tunnel NAME`".into(),
                ))
            }
            other => {
                let hint = if other.parse::<Ipv4Addr>().is_ok() {
                    format!(" (write `via {other}`)")
                } else {
                    String::new()
                };
                return Err(CtlError::Usage(format!(
                    "unexpected {other:?}: expected `via A.B.C.D`, `blackhole` or `tunnel NAME`{hint}"
                )));
            }
        }
    }
    Ok(json!({ "prefix": prefix, "next_hops": hops }))
}

/// Reads a route set: `{"routes": [...]}` or a bare array; `-` is stdin.
fn route_set_from_file(path: &Path) -> Result<Value, CtlError> {
    let text = if path == Path::new("-") {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| CtlError::Usage(format!("cannot read stdin: {e}")))?;
        s
    } else {
        std::fs::read_to_string(path)
            .map_err(|e| CtlError::Usage(format!("cannot read {}: {e}", path.display())))?
    };
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| CtlError::Usage(format!("{} is not valid JSON: {e}", path.display())))?;
    match v {
        Value::Array(_) => Ok(json!({ "routes": v })),
        Value::Object(_) => Ok(v),
        _ => Err(CtlError::Usage(format!(
            "{}: expected {{\"routes\": [...]}} or an array of routes",
            path.display()
        ))),
    }
}

/// Percent-encodes one path segment (organization names are DNS labels,
/// but a typo must not turn into another path).
fn encode_segment(s: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn route_words() {
        assert_eq!(
            route_body("10.0.0.0/8", &words("via 10.2.0.1 via 10.2.0.2")).unwrap(),
            json!({"prefix": "10.0.0.0/8", "next_hops": [{"via": "10.2.0.1"}, {"via": "10.2.0.2"}]})
        );
        assert_eq!(
            route_body("10.0.0.0/8", &words("blackhole")).unwrap(),
            json!({"prefix": "10.0.0.0/8", "blackhole": true})
        );
        assert_eq!(
            route_body("10.0.0.0/8", &words("tunnel wg0")).unwrap(),
            json!({"prefix": "10.0.0.0/8", "tunnel": "wg0"})
        );
        for bad in [
            "via",
            "tunnel",
            "via 1.2.3.4 tunnel wg0",
            "10.2.0.1",
            "via 1.2.3.4 blackhole",
            "gateway 1.2.3.4",
        ] {
            let e = route_body("10.0.0.0/8", &words(bad)).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}: {e}");
        }
    }

    #[test]
    fn keys() {
        assert_eq!(parse_key("12"), Key::Id(12));
        assert_eq!(
            parse_key("10.0.0.0/8"),
            Key::Cidr(Cidr::parse("", "10.0.0.0/8").unwrap())
        );
        assert_eq!(parse_key("lan0"), Key::Name("lan0".into()));
    }

    #[test]
    fn segments_are_encoded() {
        assert_eq!(encode_segment("acme-1"), "acme-1");
        assert_eq!(encode_segment("a/b c"), "a%2Fb%20c");
    }
}
