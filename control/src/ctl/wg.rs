//! `patronusctl wg tunnel|peer ...`: WireGuard tunnels and peers. Private
//! and preshared keys are read from files (or stdin), never taken on the
//! command line, and never printed: the API returns public keys only.
//! Lists show the engine's counters (when it exports them) as columns:
//! per peer its traffic, handshakes and drops, per tunnel its cookie
//! replies and the drops no peer can be blamed for.

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

/// Counter columns of a list, in this order, taken from each item's
/// `counters` object; `drops` is the sum over reasons.
const PEER_COUNTER_COLUMNS: &[&str] = &[
    "rx_bytes",
    "tx_bytes",
    "rx_packets",
    "tx_packets",
    "handshakes",
    "last_handshake_secs",
    "drops",
];
const TUNNEL_COUNTER_COLUMNS: &[&str] = &["cookie_replies_sent", "drops"];

/// `items` with their `counters` flattened into the `columns` (absent when
/// the engine exports none: the table leaves the columns out).
fn with_counter_columns(items: &[Value], columns: &[&str]) -> Vec<Value> {
    items
        .iter()
        .map(|item| {
            let mut item = item.clone();
            let Some(Value::Object(c)) = item.get("counters").cloned() else {
                return item;
            };
            if let Value::Object(m) = &mut item {
                m.remove("counters");
                for col in columns {
                    let v = if *col == "drops" {
                        let sum = c
                            .get("drops")
                            .and_then(Value::as_object)
                            .map_or(0, |d| d.values().filter_map(Value::as_u64).sum::<u64>());
                        json!(sum)
                    } else {
                        c.get(*col).cloned().unwrap_or(Value::Null)
                    };
                    m.insert((*col).to_owned(), v);
                }
            }
            item
        })
        .collect()
}

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
    let list = |v: &Value, cols: &[&str], counter_cols: &[&str]| {
        if json_out {
            pretty(v)
        } else {
            let rows = with_counter_columns(items(v), counter_cols);
            let mut all = cols.to_vec();
            all.extend_from_slice(counter_cols);
            items_table(&rows, &all, &["counters"]).render()
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
        WgCmd::Tunnel(WgTunnelCmd::List) => Ok(list(
            &client.get(TUNNELS)?,
            TUNNEL_COLUMNS,
            TUNNEL_COUNTER_COLUMNS,
        )),
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
            Ok(list(&v, PEER_COLUMNS, PEER_COUNTER_COLUMNS))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_become_columns_when_the_engine_exports_them() {
        let items = vec![
            json!({ "id": 1, "public_key": "K1", "counters": {
                "rx_bytes": 100, "tx_bytes": 200, "rx_packets": 1, "tx_packets": 2,
                "handshakes": 3, "last_handshake_secs": 1_700_000_000u64,
                "drops": { "replay": 4, "bad_mac": 5, "no_peer": 0 } } }),
            json!({ "id": 2, "public_key": "K2" }),
        ];
        let rows = with_counter_columns(&items, PEER_COUNTER_COLUMNS);
        assert_eq!(rows[0]["drops"], json!(9));
        assert_eq!(rows[0]["tx_packets"], json!(2));
        assert!(rows[0].get("counters").is_none());
        assert_eq!(rows[1], items[1], "no counters: unchanged");
        let mut cols = PEER_COLUMNS.to_vec();
        cols.extend_from_slice(PEER_COUNTER_COLUMNS);
        let text = items_table(&rows, &cols, &["counters"]).render();
        let mut lines = text.lines();
        let head: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
        assert_eq!(
            head,
            [
                "ID",
                "PUBLIC_KEY",
                "RX_BYTES",
                "TX_BYTES",
                "RX_PACKETS",
                "TX_PACKETS",
                "HANDSHAKES",
                "LAST_HANDSHAKE_SECS",
                "DROPS"
            ]
        );
        let first: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
        assert_eq!(
            first,
            ["1", "K1", "100", "200", "1", "2", "3", "1700000000", "9"]
        );

        // No engine: no counter columns at all.
        let plain = with_counter_columns(&items[1..], PEER_COUNTER_COLUMNS);
        let text = items_table(&plain, &cols, &["counters"]).render();
        assert!(!text.contains("DROPS"), "{text}");
    }
}
