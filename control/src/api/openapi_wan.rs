//! The WAN part of the OpenAPI document: the read-only path and policy
//! views and their schemas.

use serde_json::{json, Map, Value};

use super::openapi::{ok, op, schema_ref, with_errors};
use super::paths;

const NAME_PATTERN: &str = "^[A-Za-z0-9_-]+$";

fn count(description: &str) -> Value {
    json!({ "type": "integer", "format": "int64", "minimum": 0, "description": description })
}

fn number(description: &str) -> Value {
    json!({ "type": "number", "minimum": 0, "description": description })
}

/// The WAN schemas.
pub fn schemas() -> Value {
    let name = json!({ "type": "string", "pattern": NAME_PATTERN });
    json!({
        "WanPath": { "type": "object",
            "required": ["name", "state", "rtt_ms", "rtt_p95_ms", "jitter_ms", "loss_pct", "probes_sent",
                "probes_replied", "probes_reflected", "transitions", "tx_packets", "tx_bytes", "fec_active",
                "fec_data_sent", "fec_parity_sent", "fec_recovered", "fec_unrecoverable"],
            "properties": {
                "name": name,
                "state": { "type": "string", "enum": ["unknown", "alive", "dead"],
                    "description": "from the engine's probes; unknown until decided" },
                "rtt_ms": number("mean round-trip time of the answered probes in the window"),
                "rtt_p95_ms": number("95th percentile round-trip time in the window"),
                "jitter_ms": number("round-trip time variation in the window"),
                "loss_pct": { "type": "number", "minimum": 0, "maximum": 100, "description": "probes lost in the window" },
                "probes_sent": count("probes sent on the path"),
                "probes_replied": count("probe replies received"),
                "probes_reflected": count("probes of the far engine answered"),
                "transitions": count("alive/dead changes"),
                "tx_packets": count("data packets steered onto the path"),
                "tx_bytes": count("data bytes steered onto the path"),
                "fec_active": { "type": "boolean", "description": "FEC on for traffic sent on the path" },
                "fec_data_sent": count("data packets sent in FEC groups"),
                "fec_parity_sent": count("parity packets sent"),
                "fec_recovered": count("receive side: lost packets rebuilt"),
                "fec_unrecoverable": count("receive side: losses FEC could not repair") } },
        "WanPaths": { "type": "object", "required": ["paths", "bad_packets"],
            "properties": {
                "paths": { "type": "array", "items": schema_ref("WanPath"), "description": "by name; empty when the engine runs without [wan]" },
                "bad_packets": count("WAN packets received that could not be parsed") } },
        "WanPolicyPath": { "type": "object", "required": ["path", "packets"],
            "properties": { "path": name, "packets": count("packets of the policy sent on the path") } },
        "WanPolicy": { "type": "object", "required": ["name", "moves", "paths"],
            "properties": { "name": name,
                "moves": count("flows moved to another path (path dead or SLA breached)"),
                "paths": { "type": "array", "items": schema_ref("WanPolicyPath"), "description": "by path name" } } },
        "WanCompression": { "type": "object",
            "required": ["in_bytes", "out_bytes", "skipped", "ratio", "saved_bytes", "decompress_errors"],
            "properties": {
                "in_bytes": count("bytes offered to compression"),
                "out_bytes": count("bytes sent for them (compressed, or as is when skipped)"),
                "skipped": count("packets sent uncompressed: compression did not shrink them"),
                "ratio": { "type": "number", "nullable": true, "minimum": 0, "description": "out_bytes / in_bytes; null before anything was offered" },
                "saved_bytes": count("in_bytes - out_bytes (0 if compression cost bytes overall)"),
                "decompress_errors": count("compressed packets received that did not decompress") } },
        "WanDuplication": { "type": "object", "required": ["sent", "dropped"],
            "properties": {
                "sent": count("packets of duplicating policies also sent on a second path"),
                "dropped": count("second copies received and dropped") } },
        "WanPolicies": { "type": "object", "required": ["policies", "compression", "duplication"],
            "properties": {
                "policies": { "type": "array", "items": schema_ref("WanPolicy"), "description": "by name; empty when the engine runs without [wan]" },
                "compression": schema_ref("WanCompression"),
                "duplication": schema_ref("WanDuplication") } },
    })
}

/// The WAN paths.
pub fn insert_paths(p: &mut Map<String, Value>) {
    let engine_down = json!({ "description": "no engine link or no engine attached (engine_unavailable)",
        "content": { "application/json": { "schema": schema_ref("Error") } } });
    let mut list = op(
        "WAN paths: state, RTT, jitter and loss over the probe window, probes, traffic and FEC, from the engine's counters (503 engine_unavailable)",
        &[],
        None,
        with_errors(json!({ "200": ok("the paths", "WanPaths") }), &[]),
    );
    list["responses"]["503"] = engine_down.clone();
    p.insert(paths::WAN_PATHS.into(), json!({ "get": list }));
    let mut policies = op(
        "WAN steering policies: packets per path (the path choice), flows moved, and compression totals, from the engine's counters (503 engine_unavailable)",
        &[],
        None,
        with_errors(json!({ "200": ok("the policies", "WanPolicies") }), &[]),
    );
    policies["responses"]["503"] = engine_down;
    p.insert(paths::WAN_POLICIES.into(), json!({ "get": policies }));
}
