//! Plain-text output for `patronusctl`: an aligned-column [`Table`], and
//! renderers that turn any JSON the API returns into tables and key/value
//! sections without knowing its fields (so new counters show up by themselves).

use std::fmt::Write as _;

use serde_json::{Map, Value};

/// Spaces between columns.
const GAP: usize = 2;
/// Indentation per nesting level in [`render_document`].
const INDENT: usize = 2;

/// Rows of cells under a header line; numbers are right-aligned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<S: Into<String>>(headers: impl IntoIterator<Item = S>) -> Table {
        Table {
            headers: headers.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells are blank, extra cells are kept (and get no header).
    pub fn push<S: Into<String>>(&mut self, row: impl IntoIterator<Item = S>) {
        self.rows.push(row.into_iter().map(Into::into).collect());
    }

    /// The table as text, each line ending in `\n`, no trailing spaces.
    pub fn render(&self) -> String {
        self.render_indented(0)
    }

    fn render_indented(&self, indent: usize) -> String {
        let ncols = self
            .rows
            .iter()
            .map(Vec::len)
            .chain([self.headers.len()])
            .max()
            .unwrap_or(0);
        let mut width = vec![0usize; ncols];
        let mut numeric = vec![true; ncols];
        for row in &self.rows {
            for (i, c) in row.iter().enumerate() {
                width[i] = width[i].max(text_width(c));
                numeric[i] &= is_number(c);
            }
        }
        for (i, h) in self.headers.iter().enumerate() {
            width[i] = width[i].max(text_width(h));
        }
        // A column of nothing but blanks is not numeric.
        for (i, n) in numeric.iter_mut().enumerate() {
            *n &= self
                .rows
                .iter()
                .any(|r| r.get(i).is_some_and(|c| !c.is_empty()));
        }
        let mut out = String::new();
        let lines = std::iter::once(&self.headers).chain(&self.rows);
        for row in lines {
            let mut line = " ".repeat(indent);
            for (i, w) in width.iter().enumerate() {
                let c = row.get(i).map(String::as_str).unwrap_or("");
                let pad = w - text_width(c);
                if i > 0 {
                    line.push_str(&" ".repeat(GAP));
                }
                if numeric[i] {
                    line.push_str(&" ".repeat(pad));
                    line.push_str(c);
                } else {
                    line.push_str(c);
                    line.push_str(&" ".repeat(pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Display width of a cell (characters; control characters were replaced by [`cell`]).
fn text_width(s: &str) -> usize {
    s.chars().count()
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.parse::<f64>().is_ok()
}

/// One JSON value as a single table cell.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect(),
        Value::Array(a) if a.is_empty() => "-".into(),
        Value::Array(a) => a.iter().map(cell).collect::<Vec<_>>().join(", "),
        // `{"via": "10.0.0.1"}` reads best as just its value.
        Value::Object(m) if m.len() == 1 => cell(m.values().next().unwrap_or(&Value::Null)),
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| format!("{k}={}", cell(v)))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// Header text for a JSON key: `next_hops` -> `NEXT_HOPS`.
pub fn header(key: &str) -> String {
    key.to_uppercase()
}

/// A table of JSON objects: columns `first` (those present) then every other
/// key in order of first appearance, minus `hide`. Non-objects get a `VALUE` column.
pub fn items_table(items: &[Value], first: &[&str], hide: &[&str]) -> Table {
    let mut keys: Vec<String> = Vec::new();
    let present = |k: &str| items.iter().any(|i| i.get(k).is_some());
    for k in first {
        if present(k) && !hide.contains(k) {
            keys.push((*k).to_owned());
        }
    }
    let mut scalars = false;
    for item in items {
        match item {
            Value::Object(m) => {
                for k in m.keys() {
                    if !keys.iter().any(|x| x == k) && !hide.contains(&k.as_str()) {
                        keys.push(k.clone());
                    }
                }
            }
            _ => scalars = true,
        }
    }
    let mut t = Table::new(keys.iter().map(|k| header(k)));
    if scalars {
        t.headers.push("VALUE".into());
    }
    for item in items {
        let mut row: Vec<String> = keys
            .iter()
            .map(|k| item.get(k).map(cell).unwrap_or_default())
            .collect();
        if scalars {
            row.push(if item.is_object() {
                String::new()
            } else {
                cell(item)
            });
        }
        t.push(row);
    }
    t
}

/// Any JSON document as readable text: scalars as aligned `key  value`
/// lines, nested objects as indented sections, arrays of objects as tables.
pub fn render_document(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Object(m) => render_object(&mut out, m, 0),
        Value::Array(a) => render_array(&mut out, a, 0),
        other => {
            let _ = writeln!(out, "{}", cell(other));
        }
    }
    out
}

fn render_object(out: &mut String, m: &Map<String, Value>, indent: usize) {
    // Scalars (and lists of scalars) first, as one aligned block.
    let mut kv = Table::default();
    for (k, v) in m {
        if !is_section(v) {
            kv.push([k.clone(), cell(v)]);
        }
    }
    if !kv.rows.is_empty() {
        // Values may mix numbers and words; keep them left-aligned.
        for line in kv.rows.iter_mut() {
            line[1] = format!("{} ", line[1]);
        }
        for line in kv.render_indented(indent).lines().skip(1) {
            let _ = writeln!(out, "{}", line.trim_end());
        }
    }
    for (k, v) in m {
        if !is_section(v) {
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        let _ = writeln!(out, "{}{k}:", " ".repeat(indent));
        match v {
            Value::Object(inner) => render_object(out, inner, indent + INDENT),
            Value::Array(a) => render_array(out, a, indent + INDENT),
            _ => {}
        }
    }
}

fn render_array(out: &mut String, a: &[Value], indent: usize) {
    out.push_str(&items_table(a, &["name", "id"], &[]).render_indented(indent));
}

/// Does this value get its own section (non-empty object, or list holding objects)?
fn is_section(v: &Value) -> bool {
    match v {
        Value::Object(m) => !m.is_empty(),
        Value::Array(a) => a.iter().any(Value::is_object),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn columns_align_and_numbers_right_align() {
        let mut t = Table::new(["ID", "PREFIX", "VIA"]);
        t.push(["1", "0.0.0.0/0", "10.2.0.254"]);
        t.push(["12", "192.168.100.0/24", "-"]);
        assert_eq!(
            t.render(),
            "ID  PREFIX            VIA\n\
             \x201  0.0.0.0/0         10.2.0.254\n\
             12  192.168.100.0/24  -\n"
        );
    }

    #[test]
    fn header_wider_than_cells_and_ragged_rows() {
        let mut t = Table::new(["NAME", "RX_PACKETS"]);
        t.push(["lan0", "5"]);
        t.push(["wan0"]);
        t.push(["x", "7", "extra"]);
        assert_eq!(
            t.render(),
            "NAME  RX_PACKETS\n\
             lan0           5\n\
             wan0\n\
             x              7  extra\n"
        );
    }

    #[test]
    fn empty_table_is_just_the_header() {
        assert_eq!(Table::new(["ID", "PREFIX"]).render(), "ID  PREFIX\n");
        assert_eq!(Table::default().render(), "\n");
    }

    #[test]
    fn width_counts_characters_not_bytes() {
        let mut t = Table::new(["A", "B"]);
        t.push(["héé", "x"]);
        t.push(["abcd", "y"]);
        assert_eq!(t.render(), "A     B\nhéé   x\nabcd  y\n");
    }

    #[test]
    fn cells_render_json_readably() {
        assert_eq!(cell(&json!(null)), "-");
        assert_eq!(cell(&json!(true)), "yes");
        assert_eq!(cell(&json!(42)), "42");
        assert_eq!(cell(&json!("a\tb")), "a b");
        assert_eq!(cell(&json!([])), "-");
        assert_eq!(
            cell(&json!([{"via": "10.0.0.1"}, {"via": "10.0.0.2"}])),
            "10.0.0.1, 10.0.0.2"
        );
        assert_eq!(cell(&json!({"a": 1, "b": "x"})), "a=1 b=x");
    }

    #[test]
    fn items_table_orders_and_hides_columns() {
        let items = vec![
            json!({"org": "default", "prefix": "10.0.0.0/8", "id": 2, "blackhole": true}),
            json!({"org": "default", "prefix": "0.0.0.0/0", "id": 10, "extra": "new"}),
        ];
        let t = items_table(&items, &["id", "prefix", "missing"], &["org"]);
        assert_eq!(t.headers, ["ID", "PREFIX", "BLACKHOLE", "EXTRA"]);
        assert_eq!(t.rows[0], ["2", "10.0.0.0/8", "yes", ""]);
        assert_eq!(t.rows[1], ["10", "0.0.0.0/0", "", "new"]);
    }

    #[test]
    fn document_sections_and_tables() {
        let v = json!({
            "attached": true,
            "workers": 2,
            "ports": [{"name": "lan0", "rx_packets": 10}, {"name": "wan0", "rx_packets": 7}],
            "drops": {"no_route": 3, "ttl_exceeded": 0},
            "labels": ["a", "b"]
        });
        assert_eq!(
            render_document(&v),
            "attached  yes\n\
             labels    a, b\n\
             workers   2\n\
             \n\
             drops:\n\
             \x20 no_route      3\n\
             \x20 ttl_exceeded  0\n\
             \n\
             ports:\n\
             \x20 NAME  RX_PACKETS\n\
             \x20 lan0          10\n\
             \x20 wan0           7\n"
        );
    }

    #[test]
    fn document_of_scalars_and_empty_lists() {
        assert_eq!(
            render_document(&json!({"attached": false})),
            "attached  no\n"
        );
        assert_eq!(
            render_document(&json!({"ports": [], "n": null})),
            "n      -\nports  -\n"
        );
        assert_eq!(render_document(&json!("x")), "x\n");
    }
}
