//! `patronusctl bgp ...`: the global settings, neighbors (settings and
//! session state), policies (JSON files), originated networks and the RIB.
//! Warnings the API returns with a neighbor (RFC 8212's default deny) are
//! printed after it as `warning: ...` lines.

use std::io::Read;
use std::path::Path;

use serde_json::{json, Map, Value};

use super::args::{
    BgpCmd, BgpNeighborCmd, BgpNeighborOptions, BgpNetworkCmd, BgpPolicyCmd, BgpRibArgs,
};
use super::client::{Client, CtlError};
use super::table::{items_table, render_document};

const BGP: &str = "/api/v1/bgp";
const NEIGHBORS: &str = "/api/v1/bgp/neighbors";
const POLICIES: &str = "/api/v1/bgp/policies";
const NETWORKS: &str = "/api/v1/bgp/networks";
const RIB: &str = "/api/v1/bgp/rib";
const SUMMARY: &str = "/api/v1/bgp/summary";
const NEIGHBOR_COLUMNS: &[&str] = &[
    "address",
    "remote_as",
    "ebgp",
    "families",
    "import_policy",
    "export_policy",
    "enabled",
    "passive",
    "hold_time_secs",
    "graceful_restart",
    "description",
];
const RIB_COLUMNS: &[&str] = &[
    "prefix",
    "peer",
    "best",
    "next_hop",
    "as_path",
    "local_pref",
    "med",
    "origin",
    "communities",
];

fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
    s.push('\n');
    s
}

/// Percent-encodes a path segment (`10.0.0.0/24` → `10.0.0.0%2F24`).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `--family ipv4,ipv6` → `["ipv4-unicast", "ipv6-unicast"]`.
pub fn families(text: &str) -> Result<Vec<&'static str>, CtlError> {
    text.split(',')
        .map(|f| match f.trim() {
            "ipv4" | "ipv4-unicast" => Ok("ipv4-unicast"),
            "ipv6" | "ipv6-unicast" => Ok("ipv6-unicast"),
            other => Err(CtlError::Usage(format!(
                "--family {other:?}: ipv4 or ipv6 (comma-separated)"
            ))),
        })
        .collect()
}

/// Puts the options given into `body`.
fn options(body: &mut Map<String, Value>, o: &BgpNeighborOptions) -> Result<(), CtlError> {
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            body.insert(k.into(), v);
        }
    };
    put("hold_time_secs", o.hold.map(Value::from));
    put("connect_retry_secs", o.connect_retry.map(Value::from));
    put("import_policy", o.import.clone().map(Value::from));
    put("export_policy", o.export.clone().map(Value::from));
    put("restart_time_secs", o.restart_time.map(Value::from));
    put("description", o.description.clone().map(Value::from));
    put("local_address", o.local_address.clone().map(Value::from));
    if let Some(f) = &o.family {
        body.insert("families".into(), json!(families(f)?));
    }
    Ok(())
}

/// The `warning: ...` lines of neighbor `n`.
fn warnings(n: &Value, with_address: bool) -> String {
    let mut out = String::new();
    for w in n["warnings"].as_array().map_or(&[][..], Vec::as_slice) {
        let text = w.as_str().unwrap_or_default();
        if with_address {
            out.push_str(&format!(
                "warning: {}: {text}\n",
                n["address"].as_str().unwrap_or("?")
            ));
        } else {
            out.push_str(&format!("warning: {text}\n"));
        }
    }
    out
}

/// A neighbor's settings, then its warnings.
fn neighbor_text(n: &Value) -> String {
    let mut head = n.clone();
    if let Some(m) = head.as_object_mut() {
        m.remove("warnings");
    }
    let mut out = render_document(&head);
    out.push_str(&warnings(n, false));
    out
}

fn read_file(path: &Path) -> Result<String, CtlError> {
    if path == Path::new("-") {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| CtlError::Usage(format!("cannot read stdin: {e}")))?;
        Ok(s)
    } else {
        std::fs::read_to_string(path)
            .map_err(|e| CtlError::Usage(format!("cannot read {}: {e}", path.display())))
    }
}

fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v[key].as_array().map_or(&[][..], Vec::as_slice)
}

/// Runs one `bgp` command; returns the text for stdout.
pub fn run(client: &Client, json_out: bool, cmd: &BgpCmd) -> Result<String, CtlError> {
    let doc = |v: &Value| {
        if json_out {
            pretty(v)
        } else {
            render_document(v)
        }
    };
    let neighbor = |v: &Value| {
        if json_out {
            pretty(v)
        } else {
            neighbor_text(v)
        }
    };
    let done = |what: String| {
        if json_out {
            pretty(&json!({ "deleted": what }))
        } else {
            format!("deleted {what}\n")
        }
    };
    let neighbor_path = |a: &str| format!("{NEIGHBORS}/{}", encode(a));
    match cmd {
        BgpCmd::Show => Ok(doc(&client.get(BGP)?)),
        BgpCmd::Set {
            asn,
            router_id,
            listen_port,
            enabled,
        } => {
            let mut body = json!({ "asn": asn, "router_id": router_id });
            if let Some(p) = listen_port {
                body["listen_port"] = json!(p);
            }
            if let Some(e) = enabled {
                body["enabled"] = json!(e);
            }
            Ok(doc(&client.put(BGP, &body)?))
        }
        BgpCmd::Neighbor(c) => match c {
            BgpNeighborCmd::Add {
                address,
                remote_as,
                passive,
                graceful_restart,
                disabled,
                opts,
            } => {
                let mut body = Map::new();
                body.insert("address".into(), json!(address));
                body.insert("remote_as".into(), json!(remote_as));
                if *passive {
                    body.insert("passive".into(), json!(true));
                }
                if *graceful_restart {
                    body.insert("graceful_restart".into(), json!(true));
                }
                if *disabled {
                    body.insert("enabled".into(), json!(false));
                }
                options(&mut body, opts)?;
                Ok(neighbor(&client.post(NEIGHBORS, &Value::Object(body))?))
            }
            BgpNeighborCmd::List => {
                let v = client.get(NEIGHBORS)?;
                if json_out {
                    return Ok(pretty(&v));
                }
                let rows = list(&v, "neighbors");
                let mut text = items_table(rows, NEIGHBOR_COLUMNS, &["warnings"]).render();
                for n in rows {
                    text.push_str(&warnings(n, true));
                }
                Ok(text)
            }
            BgpNeighborCmd::Show { address } => Ok(neighbor(&client.get(&neighbor_path(address))?)),
            BgpNeighborCmd::State { address } => Ok(doc(
                &client.get(&format!("{}/state", neighbor_path(address)))?
            )),
            BgpNeighborCmd::Set {
                address,
                remote_as,
                enabled,
                passive,
                graceful_restart,
                no_import,
                no_export,
                opts,
            } => {
                let mut body = Map::new();
                for (k, v) in [
                    ("remote_as", remote_as.map(Value::from)),
                    ("enabled", enabled.map(Value::from)),
                    ("passive", passive.map(Value::from)),
                    ("graceful_restart", graceful_restart.map(Value::from)),
                    ("import_policy", no_import.then_some(Value::Null)),
                    ("export_policy", no_export.then_some(Value::Null)),
                ] {
                    if let Some(v) = v {
                        body.insert(k.into(), v);
                    }
                }
                options(&mut body, opts)?;
                if body.is_empty() {
                    return Err(CtlError::Usage(
                        "nothing to change: give at least one option (see --help)".into(),
                    ));
                }
                Ok(neighbor(
                    &client.patch(&neighbor_path(address), &Value::Object(body))?,
                ))
            }
            BgpNeighborCmd::Delete { address } => {
                client.delete(&neighbor_path(address))?;
                Ok(done(format!("BGP neighbor {address}")))
            }
        },
        BgpCmd::Policy(c) => match c {
            BgpPolicyCmd::Set { name, file } => {
                let text = read_file(file)?;
                let body: Value = serde_json::from_str(&text)
                    .map_err(|e| CtlError::Usage(format!("{} is not JSON: {e}", file.display())))?;
                let path = format!("{POLICIES}/{}", encode(name));
                Ok(pretty(&client.put(&path, &body)?))
            }
            BgpPolicyCmd::List => {
                let v = client.get(POLICIES)?;
                if json_out {
                    return Ok(pretty(&v));
                }
                let rows: Vec<Value> = list(&v, "policies")
                    .iter()
                    .map(|p| {
                        json!({ "name": p["name"], "terms": list(p, "terms").len(),
                                "default": p["default"] })
                    })
                    .collect();
                Ok(items_table(&rows, &["name", "terms", "default"], &[]).render())
            }
            BgpPolicyCmd::Show { name } => Ok(pretty(
                &client.get(&format!("{POLICIES}/{}", encode(name)))?,
            )),
            BgpPolicyCmd::Delete { name } => {
                client.delete(&format!("{POLICIES}/{}", encode(name)))?;
                Ok(done(format!("BGP policy {name}")))
            }
        },
        BgpCmd::Network(c) => match c {
            BgpNetworkCmd::Add { prefix } => {
                Ok(doc(&client.post(NETWORKS, &json!({ "prefix": prefix }))?))
            }
            BgpNetworkCmd::List => {
                let v = client.get(NETWORKS)?;
                Ok(if json_out {
                    pretty(&v)
                } else {
                    items_table(list(&v, "networks"), &["prefix"], &[]).render()
                })
            }
            BgpNetworkCmd::Delete { prefix } => {
                client.delete(&format!("{NETWORKS}/{}", encode(prefix)))?;
                Ok(done(format!("BGP network {prefix}")))
            }
        },
        BgpCmd::Rib(a) => rib(client, json_out, a),
        BgpCmd::Summary => {
            let v = client.get(SUMMARY)?;
            Ok(if json_out {
                pretty(&v)
            } else {
                summary_text(&v)
            })
        }
    }
}

/// The summary as lines of text.
fn summary_text(v: &Value) -> String {
    let n = |a: &str, b: &str| v[a][b].as_u64().unwrap_or(0);
    if v["running"] != json!(true) {
        return "BGP speaker: not running\n".into();
    }
    format!(
        "BGP speaker: running, AS {}, router id {}\n\
         neighbors: {} configured, {} established\n\
         selected routes: {} IPv4, {} IPv6\n\
         installed routes: {} IPv4, {} IPv6 (generation {})\n",
        v["local_as"],
        v["router_id"].as_str().unwrap_or(""),
        n("neighbors", "configured"),
        n("neighbors", "established"),
        n("selected_routes", "ipv4"),
        n("selected_routes", "ipv6"),
        n("installed_routes", "ipv4"),
        n("installed_routes", "ipv6"),
        v["installed_generation"],
    )
}

/// One page of the RIB, or every page with `--all`.
fn rib(client: &Client, json_out: bool, a: &BgpRibArgs) -> Result<String, CtlError> {
    let mut cursor = a.cursor.clone();
    let mut routes: Vec<Value> = Vec::new();
    loop {
        let mut path = format!("{RIB}?limit={}", a.limit);
        if let Some(p) = &a.prefix {
            path.push_str(&format!("&prefix={}", encode(p)));
        }
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={}", encode(c)));
        }
        let page = client.get(&path)?;
        let next = page["next_cursor"].as_str().map(str::to_owned);
        if !a.all {
            if json_out {
                return Ok(pretty(&page));
            }
            let mut text = items_table(list(&page, "routes"), RIB_COLUMNS, &[]).render();
            if let Some(n) = next {
                text.push_str(&format!("more: --cursor {n}\n"));
            }
            return Ok(text);
        }
        routes.extend(list(&page, "routes").iter().cloned());
        match next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    Ok(if json_out {
        pretty(&json!({ "routes": routes }))
    } else {
        let mut text = items_table(&routes, RIB_COLUMNS, &[]).render();
        text.push_str(&format!("{} routes\n", routes.len()));
        text
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_and_segments() {
        assert_eq!(
            families("ipv4,ipv6").unwrap(),
            ["ipv4-unicast", "ipv6-unicast"]
        );
        assert_eq!(families("ipv6-unicast").unwrap(), ["ipv6-unicast"]);
        assert!(families("ipv4,vpnv4").is_err());
        assert_eq!(encode("10.0.0.0/24"), "10.0.0.0%2F24");
        assert_eq!(encode("2001:db8::/32"), "2001:db8::%2F32");
        assert_eq!(encode("from-transit"), "from-transit");
    }

    #[test]
    fn warnings_follow_the_neighbor() {
        let n = json!({ "address": "192.0.2.1", "remote_as": 65001, "ebgp": true,
            "warnings": ["eBGP neighbor without import_policy: RFC 8212 ..."] });
        let text = neighbor_text(&n);
        assert!(text.contains("192.0.2.1"), "{text}");
        assert!(
            text.ends_with("warning: eBGP neighbor without import_policy: RFC 8212 ...\n"),
            "{text}"
        );
        assert_eq!(
            warnings(&n, true),
            "warning: 192.0.2.1: eBGP neighbor without import_policy: RFC 8212 ...\n"
        );
    }
}
