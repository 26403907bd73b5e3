//! `patronusctl model ...`: the ML model registry. `upload` sends the
//! model file's raw bytes (the control process validates them); `promote`,
//! `rollback` and `deactivate` change what the engine runs.

use std::path::Path;

use serde_json::{json, Value};

use super::args::ModelCmd;
use super::client::{Client, CtlError};
use super::table::{items_table, render_document};

const MODELS: &str = "/api/v1/models";
const COLUMNS: &[&str] = &[
    "id",
    "version",
    "name",
    "active",
    "sha256",
    "dims",
    "size_bytes",
    "uploaded_at",
];
/// Long lists, left to `show`.
const HIDDEN: &[&str] = &["classes"];

fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
    s.push('\n');
    s
}

/// A model id: a positive integer (checked here so a typo is a usage error).
fn id_path(id: &str, suffix: &str) -> Result<String, CtlError> {
    match id.parse::<i64>() {
        Ok(n) if n > 0 => Ok(format!("{MODELS}/{n}{suffix}")),
        _ => Err(CtlError::Usage(format!(
            "{id:?} is not a model id (a positive integer; see `patronusctl model list`)"
        ))),
    }
}

/// The bytes of a model file (`-` reads stdin).
fn read_file(path: &Path) -> Result<Vec<u8>, CtlError> {
    use std::io::Read;
    let mut bytes = Vec::new();
    let read = if path == Path::new("-") {
        std::io::stdin().read_to_end(&mut bytes).map(|_| ())
    } else {
        std::fs::read(path).map(|b| bytes = b)
    };
    read.map_err(|e| CtlError::Usage(format!("reading model file {}: {e}", path.display())))?;
    Ok(bytes)
}

/// Percent-encodes a query value (names are `[A-Za-z0-9._-]`; anything
/// else is encoded so the server's check names it).
fn encode_query(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// What is active, in words.
fn active_text(v: &Value) -> String {
    match v.get("active") {
        Some(Value::Object(m)) => format!(
            "active: model {} (version {}, sha256 {})\n",
            m.get("id").unwrap_or(&Value::Null),
            m.get("version").unwrap_or(&Value::Null),
            m.get("sha256").and_then(Value::as_str).unwrap_or("?")
        ),
        _ => "active: none (signatures only)\n".into(),
    }
}

/// Runs one `model` command; returns the text for stdout.
pub fn run(client: &Client, json_out: bool, cmd: &ModelCmd) -> Result<String, CtlError> {
    let one = |v: &Value| {
        if json_out {
            pretty(v)
        } else {
            items_table(std::slice::from_ref(v), COLUMNS, HIDDEN).render()
        }
    };
    match cmd {
        ModelCmd::List => {
            let v = client.get(MODELS)?;
            if json_out {
                return Ok(pretty(&v));
            }
            let items = v
                .get("items")
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice);
            Ok(items_table(items, COLUMNS, HIDDEN).render())
        }
        ModelCmd::Upload { file, name } => {
            let bytes = read_file(file)?;
            let path = match name {
                Some(n) => format!("{MODELS}?name={}", encode_query(n)),
                None => MODELS.to_owned(),
            };
            Ok(one(&client.post_bytes(
                &path,
                "application/octet-stream",
                &bytes,
            )?))
        }
        ModelCmd::Show { id } => {
            let v = client.get(&id_path(id, "")?)?;
            Ok(if json_out {
                pretty(&v)
            } else {
                render_document(&v)
            })
        }
        ModelCmd::Promote { id } => Ok(one(&client.post(&id_path(id, "/promote")?, &json!({}))?)),
        ModelCmd::Rollback | ModelCmd::Deactivate => {
            let what = if matches!(cmd, ModelCmd::Rollback) {
                "rollback"
            } else {
                "deactivate"
            };
            let v = client.post(&format!("{MODELS}/{what}"), &json!({}))?;
            Ok(if json_out {
                pretty(&v)
            } else {
                active_text(&v)
            })
        }
        ModelCmd::Delete { id } => {
            client.delete(&id_path(id, "")?)?;
            Ok(if json_out {
                pretty(&json!({ "deleted": id }))
            } else {
                format!("deleted model {id}\n")
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names_are_checked_and_encoded() {
        assert_eq!(
            id_path("3", "/promote").unwrap(),
            "/api/v1/models/3/promote"
        );
        assert!(id_path("x", "").is_err());
        assert!(id_path("0", "").is_err());
        assert_eq!(encode_query("flow-v1.2"), "flow-v1.2");
        assert_eq!(encode_query("a b&c"), "a%20b%26c");
        assert_eq!(
            active_text(&json!({ "active": null })),
            "active: none (signatures only)\n"
        );
    }
}
