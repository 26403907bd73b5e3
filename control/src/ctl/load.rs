//! `patronusctl route load FILE`: a route file (one route a line,
//! `PREFIX via GW[,GW...]` or `PREFIX blackhole`, `#` comments) parsed whole
//! first (a bad line is reported by number and nothing is sent), then sent
//! as `POST .../routes/bulk` requests of `chunk` routes each.

use std::io::Read;
use std::net::Ipv4Addr;
use std::path::Path;

use serde_json::{json, Value};

use super::client::{Client, CtlError};
use crate::model::{Cidr, MAX_NEXT_HOPS};

/// Routes per bulk request unless `--chunk` says otherwise.
pub const DEFAULT_CHUNK: usize = 100_000;

/// One parsed line (compact: a million of them are held at once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub number: usize,
    pub prefix: Cidr,
    /// Empty for a blackhole route.
    pub via: Vec<Ipv4Addr>,
}

impl Line {
    /// The API's route body.
    pub fn route(&self) -> Value {
        if self.via.is_empty() {
            json!({ "prefix": self.prefix.to_string(), "blackhole": true })
        } else {
            let hops: Vec<Value> = self
                .via
                .iter()
                .map(|ip| json!({ "via": ip.to_string() }))
                .collect();
            json!({ "prefix": self.prefix.to_string(), "next_hops": hops })
        }
    }
}

fn bad(number: usize, msg: impl std::fmt::Display) -> String {
    format!("line {number}: {msg}")
}

/// Parses one line's words (comments already stripped, not empty) into the
/// prefix and next hops (none: blackhole).
fn parse_words(words: &[&str]) -> Result<(Cidr, Vec<Ipv4Addr>), String> {
    let (prefix, rest) = words.split_first().ok_or("empty line")?;
    let prefix = Cidr::parse_prefix("prefix", prefix).map_err(|e| match e {
        crate::error::Error::Invalid { message, .. } => format!("bad prefix: {message}"),
        other => other.to_string(),
    })?;
    match rest {
        ["blackhole"] => Ok((prefix, Vec::new())),
        [] => Err("expected `via GW[,GW...]` or `blackhole` after the prefix".into()),
        _ => {
            let mut hops: Vec<Ipv4Addr> = Vec::new();
            let mut it = rest.iter();
            while let Some(w) = it.next() {
                if *w != "via" {
                    return Err(format!(
                        "unexpected {w:?}: expected `via GW[,GW...]` or `blackhole`"
                    ));
                }
                let list = it.next().ok_or("`via` needs an address")?;
                for gw in list.split(',').filter(|g| !g.is_empty()) {
                    let ip: Ipv4Addr = gw
                        .parse()
                        .map_err(|_| format!("{gw:?} is not an IPv4 address"))?;
                    if hops.contains(&ip) {
                        return Err(format!("next hop {ip} is listed twice"));
                    }
                    hops.push(ip);
                }
            }
            if hops.is_empty() {
                return Err("`via` needs an address".into());
            }
            if hops.len() > MAX_NEXT_HOPS {
                return Err(format!("at most {MAX_NEXT_HOPS} next hops"));
            }
            Ok((prefix, hops))
        }
    }
}

/// Parses a whole route file; the first bad line is an error naming it.
pub fn parse(text: &str) -> Result<Vec<Line>, String> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let number = i + 1;
        let content = raw.split('#').next().unwrap_or("");
        let words: Vec<&str> = content.split_whitespace().collect();
        if words.is_empty() {
            continue;
        }
        let (prefix, via) = parse_words(&words).map_err(|m| bad(number, m))?;
        out.push(Line {
            number,
            prefix,
            via,
        });
    }
    Ok(out)
}

/// Reads `path` (`-` is stdin).
fn read(path: &Path) -> Result<String, CtlError> {
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

/// Rewrites an API error about entry `add[i]` of a chunk to name the line.
fn locate(e: CtlError, lines: &[Line], loaded: usize) -> CtlError {
    let CtlError::Api {
        status,
        code,
        field,
        message,
    } = e
    else {
        return e;
    };
    let line = field
        .as_deref()
        .and_then(|f| f.strip_prefix("add["))
        .and_then(|f| f.split(']').next())
        .and_then(|i| i.parse::<usize>().ok())
        .and_then(|i| lines.get(i));
    let before = if loaded > 0 {
        format!(" ({loaded} routes of earlier requests stay loaded)")
    } else {
        String::new()
    };
    let message = match line {
        Some(l) => format!("line {}: {message}{before}", l.number),
        None => format!("{message}{before}"),
    };
    CtlError::Api {
        status,
        code,
        field,
        message,
    }
}

/// Loads the file into collection `coll` (`/api/v1/orgs/X/routes`).
/// Returns the totals as the API's JSON shape plus the request count.
pub fn load(client: &Client, coll: &str, path: &Path, chunk: usize) -> Result<Value, CtlError> {
    let text = read(path)?;
    let lines = parse(&text).map_err(|m| CtlError::Usage(format!("{}: {m}", path.display())))?;
    let chunk = chunk.max(1);
    let url = format!("{coll}/bulk");
    let (mut added, mut requests, mut generation) = (0u64, 0u64, Value::Null);
    for part in lines.chunks(chunk) {
        let body = json!({ "add": part.iter().map(Line::route).collect::<Vec<_>>() });
        let r = client
            .post(&url, &body)
            .map_err(|e| locate(e, part, added as usize))?;
        added += r.get("added").and_then(Value::as_u64).unwrap_or(0);
        generation = r.get("generation").cloned().unwrap_or(Value::Null);
        requests += 1;
    }
    Ok(json!({ "added": added, "requests": requests, "generation": generation }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_to_route_bodies() {
        let text = "# routes\n\n10.0.0.0/8 via 10.2.0.1\n  192.0.2.0/24 blackhole # drop\n\
                    10.1.0.0/16 via 10.2.0.1,10.2.0.2\n10.3.0.0/16 via 10.2.0.1 via 10.2.0.3\n";
        let lines = parse(text).unwrap();
        assert_eq!(
            lines.iter().map(|l| l.number).collect::<Vec<_>>(),
            vec![3, 4, 5, 6]
        );
        assert_eq!(
            lines[0].route(),
            json!({"prefix": "10.0.0.0/8", "next_hops": [{"via": "10.2.0.1"}]})
        );
        assert_eq!(
            lines[1].route(),
            json!({"prefix": "192.0.2.0/24", "blackhole": true})
        );
        assert_eq!(lines[2].route()["next_hops"].as_array().unwrap().len(), 2);
        assert_eq!(lines[3].route()["next_hops"][1]["via"], "10.2.0.3");
    }

    #[test]
    fn a_bad_line_is_named() {
        for (text, line) in [
            ("10.0.0.0/8 via 10.2.0.1\n10.0.0.1/8 blackhole\n", 2),
            ("10.0.0.0/8\n", 1),
            ("# c\n10.0.0.0/8 via\n", 2),
            ("10.0.0.0/8 via 10.2.0.1\n\n10.1.0.0/16 via 10.2.0.x\n", 3),
            ("10.0.0.0/8 gateway 10.2.0.1\n", 1),
            ("10.0.0.0/8 via 10.2.0.1 blackhole\n", 1),
            ("10.0.0.0/8 via 1.1.1.1,1.1.1.1\n", 1),
            ("nonsense blackhole\n", 1),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.starts_with(&format!("line {line}: ")), "{text:?}: {e}");
        }
    }

    #[test]
    fn api_errors_are_located_on_their_line() {
        let lines = parse("# x\n10.0.0.0/8 blackhole\n10.1.0.0/16 blackhole\n").unwrap();
        let e = CtlError::Api {
            status: 409,
            code: "conflict".into(),
            field: Some("add[1].prefix".into()),
            message: "taken".into(),
        };
        let CtlError::Api { message, .. } = locate(e, &lines, 5) else {
            panic!()
        };
        assert!(message.starts_with("line 3: taken"), "{message}");
        assert!(message.contains("5 routes"), "{message}");
    }
}
