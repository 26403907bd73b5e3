//! `patronusctl wg tunnel|peer ...`: WireGuard tunnels and peers. Private
//! and preshared keys are read from files (or stdin), never taken on the
//! command line, and never printed: the API returns public keys only.

use std::io::Read;
use std::path::Path;

use serde_json::{json, Map, Value};

use super::args::{WgCmd, WgPeerCmd, WgTunnelCmd};
use super::client::{Client, CtlError};
use super::table::{items_table, render_document};

const TUNNELS: &str = "/api/v1/wg/tunnels";
const TUNNEL_COLUMNS: &[&str] = &["name", "listen_port", "public_key", "address", "peers"];
const PEER_COLUMNS: &[&str] = &[
    "id",
    "public_key",
    "endpoint",
    "allowed_ips",
    "persistent_keepalive",
    "preshared_key",
];

fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
    s.push('\n');
    s
}

/// A key file's text, trimmed (`-` reads stdin). The error names the file,
/// never its content.
fn read_key(path: &Path) -> Result<String, CtlError> {
    let mut text = String::new();
    let read = if path == Path::new("-") {
        std::io::stdin().read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::read_to_string(path).map(|t| text = t)
    };
    read.map_err(|e| CtlError::Usage(format!("reading key file {}: {e}", path.display())))?;
    Ok(text.trim().to_owned())
}

fn items(v: &Value) -> &[Value] {
    v.get("items")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn tunnel_path(name: &str) -> String {
    format!("{TUNNELS}/{name}")
}

/// Runs one `wg` command; returns the text for stdout.
pub fn run(client: &Client, json_out: bool, cmd: &WgCmd) -> Result<String, CtlError> {
    let doc = |v: &Value| {
        if json_out {
            pretty(v)
        } else {
            render_document(v)
        }
    };
    let list = |v: &Value, cols: &[&str]| {
        if json_out {
            pretty(v)
        } else {
            items_table(items(v), cols, &["counters"]).render()
        }
    };
    let done = |what: String| {
        if json_out {
            pretty(&json!({ "deleted": what }))
        } else {
            format!("deleted {what}\n")
        }
    };
    match cmd {
        WgCmd::Tunnel(WgTunnelCmd::Add {
            name,
            listen_port,
            private_key_file,
            address,
        }) => {
            let mut body = Map::new();
            body.insert("name".into(), json!(name));
            body.insert("listen_port".into(), json!(listen_port));
            if let Some(f) = private_key_file {
                body.insert("private_key".into(), json!(read_key(f)?));
            }
            if let Some(a) = address {
                body.insert("address".into(), json!(a));
            }
            Ok(doc(&client.post(TUNNELS, &Value::Object(body))?))
        }
        WgCmd::Tunnel(WgTunnelCmd::Del { name }) => {
            client.delete(&tunnel_path(name))?;
            Ok(done(format!("tunnel {name}")))
        }
        WgCmd::Tunnel(WgTunnelCmd::List) => Ok(list(&client.get(TUNNELS)?, TUNNEL_COLUMNS)),
        WgCmd::Tunnel(WgTunnelCmd::Show { name }) => Ok(doc(&client.get(&tunnel_path(name))?)),
        WgCmd::Peer(WgPeerCmd::Add {
            tunnel,
            public_key,
            endpoint,
            allowed_ips,
            keepalive,
            preshared_key_file,
        }) => {
            let mut body = Map::new();
            body.insert("public_key".into(), json!(public_key));
            body.insert("allowed_ips".into(), json!(allowed_ips));
            if let Some(e) = endpoint {
                body.insert("endpoint".into(), json!(e));
            }
            if let Some(k) = keepalive {
                body.insert("persistent_keepalive".into(), json!(k));
            }
            if let Some(f) = preshared_key_file {
                body.insert("preshared_key".into(), json!(read_key(f)?));
            }
            let path = format!("{}/peers", tunnel_path(tunnel));
            Ok(doc(&client.post(&path, &Value::Object(body))?))
        }
        WgCmd::Peer(WgPeerCmd::Del { tunnel, peer }) => {
            let peers = format!("{}/peers", tunnel_path(tunnel));
            let id = match peer.parse::<i64>() {
                Ok(id) => id,
                Err(_) => {
                    let all = client.get(&peers)?;
                    items(&all)
                        .iter()
                        .find(|p| p["public_key"].as_str() == Some(peer.as_str()))
                        .and_then(|p| p["id"].as_i64())
                        .ok_or_else(|| {
                            CtlError::not_found(
                                "peer",
                                format!("tunnel {tunnel} has no peer with public key {peer}"),
                            )
                        })?
                }
            };
            client.delete(&format!("{peers}/{id}"))?;
            Ok(done(format!("peer {id} of tunnel {tunnel}")))
        }
        WgCmd::Peer(WgPeerCmd::List { tunnel }) => {
            let v = client.get(&format!("{}/peers", tunnel_path(tunnel)))?;
            Ok(list(&v, PEER_COLUMNS))
        }
    }
}
