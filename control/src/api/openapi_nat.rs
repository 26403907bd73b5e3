//! The NAT part of the OpenAPI document: paths, schemas and parameters.

use serde_json::{json, Map, Value};

use super::openapi::{ok, op, schema_ref, with_errors, BODY_ERRORS};
use super::paths;

/// NAT's schemas.
pub fn schemas() -> Value {
    let ipv4 = json!({ "type": "string", "format": "ipv4" });
    let endpoint = |d: &str| json!({ "type": "string", "pattern": "^\\d+\\.\\d+\\.\\d+\\.\\d+:\\d+$", "description": d });
    let secs =
        json!({ "type": "integer", "minimum": 1, "maximum": crate::nat::model::MAX_TIMEOUT_SECS });
    let timeouts = json!({ "type": "object", "additionalProperties": false,
        "description": "idle timeouts in seconds; an absent one is the engine's RFC default",
        "properties": { "tcp_established": secs, "tcp_transitory": secs, "tcp_initial": secs,
            "udp": secs, "icmp_query": secs, "fragment": secs } });
    let outside = json!({ "type": "object", "additionalProperties": false, "required": ["port"],
        "description": "the outside interface: one of organization default's interfaces, or a port the engine runs",
        "properties": { "port": { "type": "string", "pattern": "^[A-Za-z0-9._-]{1,15}$" },
            "vlan": { "type": "integer", "minimum": 1, "maximum": 4094, "nullable": true } } });
    let filtering =
        json!({ "type": "string", "enum": ["endpoint-independent", "address-and-port-dependent"] });
    let one_to_one = json!({ "type": "object", "additionalProperties": false, "required": ["outside", "inside"],
        "properties": { "outside": ipv4, "inside": ipv4 } });
    json!({
        "NatSpec": { "type": "object", "additionalProperties": false, "required": ["outside", "pool"],
            "properties": {
                "enabled": { "type": "boolean", "default": true, "description": "false: NAT off, configuration kept" },
                "outside": outside,
                "pool": { "type": "array", "minItems": 1, "items": ipv4, "description": "outside addresses for dynamic mappings" },
                "filtering": { "type": "string", "enum": ["endpoint-independent", "address-and-port-dependent"], "default": "address-and-port-dependent" },
                "timeouts": timeouts,
                "max_sessions_per_host": { "type": "integer", "minimum": 1, "nullable": true },
                "inbound_refresh": { "type": "boolean", "nullable": true },
                "forwards": { "type": "array", "items": schema_ref("NatForwardSpec"), "default": [] },
                "one_to_one": { "type": "array", "items": one_to_one, "default": [] } } },
        "NatConfig": { "type": "object",
            "required": ["enabled", "outside", "pool", "filtering", "timeouts", "max_sessions_per_host", "inbound_refresh", "forwards", "one_to_one"],
            "properties": { "enabled": { "type": "boolean" }, "outside": outside,
                "pool": { "type": "array", "items": ipv4 }, "filtering": filtering, "timeouts": timeouts,
                "max_sessions_per_host": { "type": "integer", "nullable": true },
                "inbound_refresh": { "type": "boolean", "nullable": true },
                "forwards": { "type": "array", "items": schema_ref("NatForward") },
                "one_to_one": { "type": "array", "items": one_to_one } } },
        "NatForwardSpec": { "type": "object", "additionalProperties": false, "required": ["proto", "outside", "inside"],
            "properties": { "proto": { "type": "string", "enum": ["tcp", "udp"] },
                "outside": endpoint("ADDR:PORT on the outside; unique per protocol"),
                "inside": endpoint("ADDR:PORT of the inside server") } },
        "NatForward": { "type": "object", "required": ["id", "proto", "outside", "inside"],
            "properties": { "id": { "type": "integer", "format": "int64" },
                "proto": { "type": "string", "enum": ["tcp", "udp"] },
                "outside": endpoint("ADDR:PORT"), "inside": endpoint("ADDR:PORT") } },
        "NatForwardList": { "type": "object", "required": ["items"],
            "properties": { "items": { "type": "array", "items": schema_ref("NatForward") } } },
        "NatPoolAddress": { "type": "object", "additionalProperties": false, "required": ["address"],
            "properties": { "address": ipv4 } },
        "NatSession": { "type": "object",
            "required": ["worker", "proto", "inside", "outside", "remote", "state", "static", "age_ms", "expires_in_ms"],
            "properties": { "worker": { "type": "integer" },
                "proto": { "type": "string", "enum": ["tcp", "udp", "icmp"] },
                "inside": endpoint("inside host and port (ICMP: query id)"),
                "outside": endpoint("translated address and port"),
                "remote": endpoint("the remote endpoint"),
                "state": { "type": "string", "description": "TCP state, or active" },
                "static": { "type": "boolean", "description": "created by a port forward" },
                "age_ms": { "type": "integer", "format": "int64" },
                "expires_in_ms": { "type": "integer", "format": "int64" } } },
        "NatSessionPage": { "type": "object", "required": ["items"],
            "properties": { "items": { "type": "array", "items": schema_ref("NatSession") },
                "next_cursor": { "type": "string", "description": "absent on the last page" } } },
    })
}

/// NAT's query and path parameters.
pub fn parameters() -> Value {
    json!({
        "inside": { "name": "inside", "in": "query", "required": false,
            "schema": { "type": "string", "format": "ipv4" }, "description": "only this inside host's sessions" },
        "cursor": { "name": "cursor", "in": "query", "required": false,
            "schema": { "type": "string" }, "description": "next_cursor of the previous page" },
        "session_limit": { "name": "limit", "in": "query", "required": false,
            "schema": { "type": "integer", "minimum": 1, "maximum": patronus_shm::nat_query::MAX_LIMIT,
                "default": super::nat::DEFAULT_SESSION_LIMIT } },
        "address": { "name": "address", "in": "path", "required": true,
            "schema": { "type": "string", "format": "ipv4" } },
    })
}

/// NAT's paths.
pub fn insert_paths(p: &mut Map<String, Value>) {
    let not_configured = &["404"];
    p.insert(paths::NAT.into(), json!({
        "get": op("The NAT44 configuration (404: none; the engine runs its own [nat], if any)", &[], None,
            with_errors(json!({ "200": ok("configuration", "NatConfig") }), not_configured)),
        "put": op("Replace the NAT44 configuration; pushed to the engine without disturbing established sessions", &[], Some("NatSpec"),
            with_errors(json!({ "200": ok("the configuration", "NatConfig") }), BODY_ERRORS)),
        "delete": op("Remove the NAT44 configuration (the engine goes back to its own [nat], if any)", &[], None,
            with_errors(json!({ "204": { "description": "removed" } }), not_configured)) }));
    p.insert(paths::NAT_FORWARDS.into(), json!({
        "get": op("List port forwards", &[], None,
            with_errors(json!({ "200": ok("forwards", "NatForwardList") }), not_configured)),
        "post": op("Add a port forward (409: clashes with a forward or 1:1 mapping)", &[], Some("NatForwardSpec"),
            with_errors(json!({ "201": ok("created (Location header names it)", "NatForward") }), BODY_ERRORS)) }));
    p.insert(
        paths::NAT_FORWARD.into(),
        json!({
        "delete": op("Delete a port forward", &["id"], None,
            with_errors(json!({ "204": { "description": "deleted" } }), &["400", "404"])) }),
    );
    p.insert(
        paths::NAT_POOL.into(),
        json!({
        "post": op("Add a pool address", &[], Some("NatPoolAddress"),
            with_errors(json!({ "201": ok("the configuration", "NatConfig") }), BODY_ERRORS)) }),
    );
    p.insert(paths::NAT_POOL_ADDRESS.into(), json!({
        "delete": op("Remove a pool address (409: the last one)", &["address"], None,
            with_errors(json!({ "200": ok("the configuration", "NatConfig") }), &["400", "404", "409"])) }));
    let mut sessions = op(
        "The engine's live NAT sessions, paged (404 nat_disabled: the engine runs no NAT; 503 engine_unavailable: no engine, or a worker did not answer)",
        &["inside", "cursor", "session_limit"],
        None,
        with_errors(json!({ "200": ok("one page", "NatSessionPage") }), &["400", "404"]),
    );
    sessions["responses"]["503"] = json!({ "description": "the engine is not running or did not answer",
        "content": { "application/json": { "schema": schema_ref("Error") } } });
    p.insert(paths::NAT_SESSIONS.into(), json!({ "get": sessions }));
}
