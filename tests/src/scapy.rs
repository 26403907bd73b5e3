//! Frames crafted and read with scapy (`/usr/bin/python3`, python3-scapy);
//! the scripts live in `tests/py/` and are compiled into the helpers.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::cmd::run;
use crate::netns::Netns;

/// The Python with scapy (Debian's python3-scapy is for /usr/bin/python3).
pub const PYTHON: &str = "/usr/bin/python3";

const MALFORMED_PY: &str = include_str!("../py/malformed.py");
const PCAP_SUMMARY_PY: &str = include_str!("../py/pcap_summary.py");

/// Sends `per_kind` frames of each malformed kind from `iface` in `ns` to
/// `dst_mac`; returns how many of each kind were sent.
pub fn send_malformed(
    ns: &Netns,
    iface: &str,
    dst_mac: &str,
    src_ip: &str,
    dst_ip: &str,
    per_kind: u32,
) -> BTreeMap<String, u64> {
    let n = per_kind.to_string();
    let out = ns.exec(
        PYTHON,
        &["-c", MALFORMED_PY, iface, dst_mac, src_ip, dst_ip, &n],
    );
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("malformed.py printed {out:?}: {e}"))
}

/// The frames of a pcap file, summarised (see `py/pcap_summary.py`).
pub fn pcap_summary(path: &Path) -> Vec<Value> {
    let out = run(std::process::Command::new(PYTHON)
        .args(["-c", PCAP_SUMMARY_PY])
        .arg(path));
    serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("pcap_summary.py printed {out:?}: {e}"))
}

/// Runs a Python/scapy snippet (host namespace) with arguments; returns stdout.
pub fn python(script: &str, args: &[&str]) -> String {
    run(std::process::Command::new(PYTHON)
        .args(["-c", script])
        .args(args))
}
