//! Where the nDPI capture corpus is: `$PATRONUS_NDPI_DIR`, else
//! `shared/datasets/ndpi` beside the repository (as laid out for the
//! developers and for CI).

use std::path::PathBuf;

/// The corpus root (holding `pcap/` and `result/`).
pub fn root() -> PathBuf {
    if let Some(d) = std::env::var_os("PATRONUS_NDPI_DIR") {
        return PathBuf::from(d);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/ndpi")
}

pub fn pcap_dir() -> PathBuf {
    root().join("pcap")
}

pub fn result_dir() -> PathBuf {
    root().join("result")
}

/// The corpus's captures (`.pcap`, `.pcapng`, `.cap`), sorted by name.
pub fn captures(pcap_dir: &std::path::Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(pcap_dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e, "pcap" | "pcapng" | "cap"))
        })
        .collect();
    out.sort();
    Ok(out)
}
