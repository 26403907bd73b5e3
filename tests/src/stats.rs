//! The engine's JSON counters (`--stats-json`), read by label.

use serde_json::Value;

/// One snapshot of the engine's counters.
#[derive(Clone, Debug)]
pub struct EngineStats {
    /// The parsed document, for anything the accessors do not cover.
    pub json: Value,
    /// Counters of the kernel stand-in, which has none: every counter reads
    /// 0 (so tests that expect counts fail there, as they should).
    standin: bool,
}

impl EngineStats {
    /// Parses a stats document; `None` if it is not (yet) complete JSON.
    pub fn parse(text: &str) -> Option<Self> {
        let json: Value = serde_json::from_str(text).ok()?;
        json.get("drops")?;
        Some(EngineStats {
            json,
            standin: false,
        })
    }

    /// All-zero counters, for the kernel stand-in.
    pub fn standin() -> Self {
        EngineStats {
            json: serde_json::json!({"stand-in": "kernel, no engine counters"}),
            standin: true,
        }
    }

    fn get(&self, v: &Value, what: &str) -> u64 {
        if self.standin {
            return 0;
        }
        v.as_u64()
            .unwrap_or_else(|| panic!("stats have no {what}: {}", self.json))
    }

    /// A top-level counter (`icmp_sent`, `arp_requests_sent`, `drops_total`…).
    pub fn counter(&self, key: &str) -> u64 {
        self.get(&self.json[key], &format!("counter {key:?}"))
    }

    /// Drops counted under a reason label (`ipv4_bad_checksum`, …).
    pub fn drop_count(&self, reason: &str) -> u64 {
        self.get(
            &self.json["drops"][reason],
            &format!("drop reason {reason:?}"),
        )
    }

    /// A counter of a named port (`rx_packets`, `tx_packets`, …).
    pub fn port(&self, name: &str, key: &str) -> u64 {
        if self.standin {
            return 0;
        }
        let ports = self.json["ports"]
            .as_array()
            .unwrap_or_else(|| panic!("stats have no ports array: {}", self.json));
        let p = ports
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("stats have no port {name:?}: {}", self.json));
        p[key]
            .as_u64()
            .unwrap_or_else(|| panic!("port {name:?} has no counter {key:?}: {}", self.json))
    }

    /// Every drop reason label present in the document.
    pub fn drop_labels(&self) -> Vec<String> {
        self.json["drops"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }
}
