//! The flow classification part of the OpenAPI document: paths, schemas
//! and parameters.

use patronus_shm::flow_query::{FLOW_CLASSES, MAX_FLOW_LIMIT};
use serde_json::{json, Map, Value};

use super::openapi::{ok, op, schema_ref, with_errors};
use super::paths;

fn count() -> Value {
    json!({ "type": "integer", "format": "int64", "minimum": 0 })
}

/// The flow schemas.
pub fn schemas() -> Value {
    let endpoint = |d: &str| json!({ "type": "string", "pattern": "^\\d+\\.\\d+\\.\\d+\\.\\d+:\\d+$", "description": d });
    let mut classes: Vec<&str> = FLOW_CLASSES.to_vec();
    classes.push(super::flows::PENDING);
    let class_counters = json!({ "type": "object", "required": ["flows", "packets", "bytes"],
        "properties": { "flows": count(), "packets": count(), "bytes": count() } });
    json!({
        "Flow": { "type": "object",
            "required": ["worker", "proto", "client", "server", "class", "method", "confidence",
                "packets_orig", "packets_reply", "bytes_orig", "bytes_reply", "age_ms", "idle_ms"],
            "properties": {
                "worker": { "type": "integer", "description": "worker holding the flow" },
                "proto": { "type": "string", "description": "tcp, udp, icmp, or the IP protocol number" },
                "client": endpoint("sender of the first packet the engine saw"),
                "server": endpoint("the other end"),
                "class": { "type": "string", "enum": classes, "description": "pending: still being classified" },
                "app_name": { "type": "string", "description": "TLS SNI, HTTP Host or DNS query name; absent when the protocol carried none" },
                "method": { "type": "string", "enum": ["signature", "ml", "none", "pending"],
                    "description": "what decided the class (none: no confident signature and no model)" },
                "confidence": { "type": "number", "minimum": 0, "maximum": 1 },
                "packets_orig": count(), "packets_reply": count(),
                "bytes_orig": { "type": "integer", "format": "int64", "minimum": 0, "description": "IP bytes from the client" },
                "bytes_reply": { "type": "integer", "format": "int64", "minimum": 0, "description": "IP bytes from the server" },
                "age_ms": { "type": "integer", "format": "int64", "description": "since the first packet" },
                "idle_ms": { "type": "integer", "format": "int64", "description": "since the last packet" } } },
        "FlowPage": { "type": "object", "required": ["items", "workers"],
            "properties": { "items": { "type": "array", "items": schema_ref("Flow") },
                "next_cursor": { "type": "string", "description": "absent on the last page" },
                "workers": { "type": "integer", "description": "workers the engine runs" } } },
        "FlowClassCounters": class_counters,
        "FlowSummary": { "type": "object",
            "required": ["classes", "flows_active", "flows_created", "flows_expired", "flows_evicted",
                "flows_untracked", "dpi_slots_exhausted", "inference_batches", "inferred_flows", "model_generation"],
            "properties": {
                "classes": { "type": "object", "additionalProperties": schema_ref("FlowClassCounters"),
                    "description": "per class (every class, zeros included): flows classified as it, and packets and IP bytes of its flows from the verdict on" },
                "flows_active": { "type": "integer", "format": "int64", "description": "flows in the tables now (all workers)" },
                "flows_created": count(),
                "flows_expired": { "type": "integer", "format": "int64", "description": "removed after idling" },
                "flows_evicted": { "type": "integer", "format": "int64", "description": "removed to make room in a full bucket" },
                "flows_untracked": { "type": "integer", "format": "int64", "description": "packets forwarded without a flow (no room)" },
                "dpi_slots_exhausted": { "type": "integer", "format": "int64", "description": "new flows left unknown: no classification slot free" },
                "inference_batches": count(),
                "inferred_flows": count(),
                "model_generation": { "type": "integer", "format": "int64", "description": "the model every worker runs (0: none)" } } },
    })
}

/// The flow query parameters (`cursor` is shared with NAT sessions).
pub fn parameters() -> Value {
    let mut classes: Vec<&str> = FLOW_CLASSES.to_vec();
    classes.push(super::flows::PENDING);
    json!({
        "flow_class": { "name": "class", "in": "query", "required": false,
            "schema": { "type": "string", "enum": classes }, "description": "only flows of this class" },
        "flow_host": { "name": "host", "in": "query", "required": false,
            "schema": { "type": "string", "format": "ipv4" }, "description": "only flows with this address at either end" },
        "flow_limit": { "name": "limit", "in": "query", "required": false,
            "schema": { "type": "integer", "minimum": 1, "maximum": MAX_FLOW_LIMIT,
                "default": super::flows::DEFAULT_FLOW_LIMIT } },
    })
}

/// The flow paths.
pub fn insert_paths(p: &mut Map<String, Value>) {
    let engine_down = json!({ "description": "no engine link, the engine is not running or serving flows, or a worker did not answer (engine_unavailable)",
        "content": { "application/json": { "schema": schema_ref("Error") } } });
    let disabled = json!({ "description": "the engine runs no classification (classify_disabled)",
        "content": { "application/json": { "schema": schema_ref("Error") } } });
    let mut list = op(
        "The engine's classified flows, paged (400: bad class, host, limit or cursor; 404 classify_disabled; 503 engine_unavailable)",
        &["flow_class", "flow_host", "cursor", "flow_limit"],
        None,
        with_errors(json!({ "200": ok("one page", "FlowPage") }), &["400"]),
    );
    list["responses"]["404"] = disabled.clone();
    list["responses"]["503"] = engine_down.clone();
    p.insert(paths::FLOWS.into(), json!({ "get": list }));
    let mut summary = op(
        "Flows, packets and bytes per class and the classification counters, summed over the engine's workers (404 classify_disabled; 503 engine_unavailable)",
        &[],
        None,
        with_errors(json!({ "200": ok("the summary", "FlowSummary") }), &[]),
    );
    summary["responses"]["404"] = disabled;
    summary["responses"]["503"] = engine_down;
    p.insert(paths::FLOWS_SUMMARY.into(), json!({ "get": summary }));
}
