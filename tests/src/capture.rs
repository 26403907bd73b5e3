//! tcpdump captures inside a namespace, read back with scapy.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::netns::Netns;
use crate::process::BgProcess;
use crate::scapy::pcap_summary;

/// A running tcpdump writing to a pcap file.
#[derive(Debug)]
pub struct Capture {
    proc: BgProcess,
    file: PathBuf,
}

impl Capture {
    /// Starts `tcpdump -i IFACE FILTER` in `ns`, writing `<dir>/<name>.pcap`,
    /// and waits until it is listening.
    pub fn start(ns: &Netns, iface: &str, filter: &str, dir: &std::path::Path, name: &str) -> Self {
        let file = dir.join(format!("{name}.pcap"));
        let f = file.to_str().expect("utf-8 path").to_string();
        // --immediate-mode: without it tcpdump holds frames in its buffer for
        // up to ~1 s, so a short capture stopped by `finish` could see
        // nothing, and an assertion that something is absent would pass.
        let mut args = vec![
            "-Z",
            "root",
            "-U",
            "--immediate-mode",
            "-n",
            "-i",
            iface,
            "-w",
            &f,
        ];
        args.extend(filter.split_whitespace());
        let mut proc = ns.spawn("tcpdump", &args, dir, name);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !proc.stderr().contains("listening on") {
            if proc.try_wait().is_some() || Instant::now() > deadline {
                panic!("tcpdump did not start: {}", proc.report());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Capture { proc, file }
    }

    /// Stops the capture and returns its frames (see `py/pcap_summary.py`).
    pub fn finish(mut self) -> Vec<Value> {
        // Give frames in flight a moment to reach the socket.
        std::thread::sleep(Duration::from_millis(200));
        self.proc.stop(libc::SIGINT, Duration::from_secs(5));
        pcap_summary(&self.file)
    }
}
