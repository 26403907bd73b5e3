//! nDPI's results (`result/NAME.out`) as ground truth: every flow line
//! `\tN\tTCP 1.2.3.4:5 <-> 6.7.8.9:10 [proto: 91.178/TLS.Amazon][...]`
//! (also `->`, IPv6 endpoints in brackets) gives a flow key and a label.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;

use crate::class::Class;
use crate::flows::FlowKey;
use crate::view::L4;

/// One labelled flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    pub key: FlowKey,
    /// As nDPI printed it, e.g. `TLS.Amazon`.
    pub ndpi: String,
    pub class: Class,
}

fn endpoint(s: &str) -> Option<SocketAddr> {
    // `1.2.3.4:5` or `[v6]:5`: SocketAddr parses both.
    s.parse().ok()
}

/// Parses one flow line (None for any other line).
pub fn parse_line(line: &str) -> Option<Label> {
    let line = line.trim_start();
    // "N<TAB>PROTO A <-> B [proto: X/LABEL]..."
    let (_, rest) = line.split_once('\t')?;
    let mut words = rest.split_whitespace();
    let l4 = match words.next()? {
        "TCP" => L4::Tcp,
        "UDP" => L4::Udp,
        _ => return None,
    };
    let a = endpoint(words.next()?)?;
    if !matches!(words.next()?, "<->" | "->") {
        return None;
    }
    let b = endpoint(words.next()?)?;
    let at = rest.find("[proto: ")? + "[proto: ".len();
    let tail = &rest[at..];
    let label = &tail[..tail.find(']')?];
    let ndpi = label.split_once('/')?.1.to_string();
    Some(Label {
        key: FlowKey::new(l4, a, b),
        class: Class::from_ndpi(&ndpi),
        ndpi,
    })
}

/// Every labelled TCP/UDP flow of a result file, by key.
pub fn read_labels(path: &Path) -> anyhow::Result<HashMap<FlowKey, Label>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    // Some results quote bytes of hostile captures: not always UTF-8.
    let text = String::from_utf8_lossy(&bytes);
    Ok(text
        .lines()
        .filter_map(parse_line)
        .map(|l| (l.key, l))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_lines_of_both_families_parse() {
        let l = parse_line("\t1\tTCP 192.168.1.13:55523 <-> 178.62.197.130:443 [proto: 91.26/TLS.ntop][IP: 26/ntop][Encrypted]").unwrap();
        assert_eq!(l.ndpi, "TLS.ntop");
        assert_eq!(l.class, Class::Tls);
        assert!(l.key.tcp);
        let l = parse_line(
            "\t1\tUDP [dead::beef]:30000 -> [cafe::babe]:13000 [proto: 0/Unknown][IP: 0/Unknown]",
        )
        .unwrap();
        assert_eq!(l.class, Class::Unknown);
        assert_eq!(l.key.lo.port(), 13000);
        assert!(parse_line("Undetected flows:").is_none());
        assert!(parse_line("\t1\tICMP 1.2.3.4:0 <-> 5.6.7.8:0 [proto: 81/ICMP]").is_none());
    }

    #[test]
    fn the_corpus_results_hold_thousands_of_labelled_flows() {
        let mut n = 0;
        for e in std::fs::read_dir(crate::corpus::result_dir()).unwrap() {
            n += read_labels(&e.unwrap().path()).unwrap().len();
        }
        assert!(n > 3000, "{n}");
    }
}
