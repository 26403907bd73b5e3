//! The load balancer's part of the OpenAPI document: paths, schemas and
//! parameters.

use serde_json::{json, Map, Value};

use super::openapi::{ok, op, schema_ref, with_errors, BODY_ERRORS};
use super::paths;
use crate::lb::model::{
    DEFAULT_FALL, DEFAULT_INTERVAL_MS, DEFAULT_RISE, DEFAULT_TABLE_SIZE, DEFAULT_TIMEOUT_MS,
    MAX_CHECK_MS, MAX_RISE_FALL, MIN_CHECK_MS, MIN_TABLE_SIZE,
};

const NAME_PATTERN: &str = "^[A-Za-z0-9_-]{1,32}$";

/// The balancer's schemas.
pub fn schemas() -> Value {
    let name = json!({ "type": "string", "pattern": NAME_PATTERN });
    let port = json!({ "type": "integer", "minimum": 1, "maximum": 65535 });
    let ipv4 = json!({ "type": "string", "format": "ipv4", "description": "unicast IPv4 address" });
    let count = json!({ "type": "integer", "format": "int64", "minimum": 0 });
    let ms = |default: u32| json!({ "type": "integer", "minimum": MIN_CHECK_MS, "maximum": MAX_CHECK_MS, "default": default });
    let threshold = |default: u32| json!({ "type": "integer", "minimum": 1, "maximum": MAX_RISE_FALL, "default": default });
    let table_size = json!({ "type": "integer", "minimum": MIN_TABLE_SIZE, "maximum": patronus_shm::lb::LB_MAX_TABLE_SIZE,
        "default": DEFAULT_TABLE_SIZE, "description": "Maglev table size: a prime larger than 100 × backends" });
    let protocol = json!({ "type": "string", "enum": ["tcp", "udp"], "default": "tcp" });
    let mode = json!({ "type": "string", "enum": ["nat", "dsr"], "default": "nat",
        "description": "nat: destination rewritten, replies return through the engine; dsr: IP-in-IP to the backend, which holds the VIP on a loopback and replies directly" });
    let settings = |with_backends: bool| {
        let mut props = json!({ "name": name, "address": ipv4, "port": port, "protocol": protocol,
            "mode": mode, "table_size": table_size, "health_check": schema_ref("LbHealthCheckSpec") });
        if with_backends {
            props["backends"] =
                json!({ "type": "array", "items": schema_ref("LbBackendSpec"), "default": [] });
        }
        props
    };
    json!({
        "LbHealthCheckSpec": { "type": "object", "additionalProperties": false, "required": ["type"],
            "description": "absent: backends are taken as up",
            "properties": { "type": { "type": "string", "enum": ["tcp", "http"], "description": "tcp: the handshake completes; http: a GET answers 2xx/3xx" },
                "path": { "type": "string", "description": "http only; default /" },
                "port": { "type": "integer", "minimum": 1, "maximum": 65535, "nullable": true, "description": "port probed; default the backend's" },
                "interval_ms": ms(DEFAULT_INTERVAL_MS), "timeout_ms": ms(DEFAULT_TIMEOUT_MS),
                "rise": threshold(DEFAULT_RISE), "fall": threshold(DEFAULT_FALL) } },
        "LbHealthCheck": { "type": "object", "required": ["type", "interval_ms", "timeout_ms", "rise", "fall"],
            "properties": { "type": { "type": "string", "enum": ["tcp", "http"] },
                "path": { "type": "string", "nullable": true }, "port": { "type": "integer", "nullable": true },
                "interval_ms": { "type": "integer" }, "timeout_ms": { "type": "integer" },
                "rise": { "type": "integer" }, "fall": { "type": "integer" } } },
        "LbBackendSpec": { "type": "object", "additionalProperties": false, "required": ["address"],
            "properties": { "address": ipv4,
                "port": { "type": "integer", "minimum": 1, "maximum": 65535, "description": "default the VIP's; in DSR mode it must be the VIP's" },
                "weight": { "type": "integer", "minimum": 0, "maximum": 65535, "default": 1, "description": "0: draining (keeps its flows, takes no new ones)" } } },
        "LbBackendPatch": { "type": "object", "additionalProperties": false, "required": ["weight"],
            "properties": { "weight": { "type": "integer", "minimum": 0, "maximum": 65535 } } },
        "LbBackend": { "type": "object", "required": ["id", "address", "port", "weight", "health", "flows", "active_flows", "packets", "bytes"],
            "properties": { "id": { "type": "integer", "format": "int64" }, "address": ipv4, "port": port,
                "weight": { "type": "integer" },
                "health": { "type": "string", "enum": ["up", "down", "unchecked"] },
                "flows": count, "active_flows": count, "packets": count, "bytes": count } },
        "LbVipSpec": { "type": "object", "additionalProperties": false, "required": ["name", "address", "port"],
            "properties": settings(true) },
        "LbVipUpdate": { "type": "object", "additionalProperties": false, "required": ["address", "port"],
            "description": "replaces the VIP's settings; its backends stay (a name renames it)",
            "properties": settings(false) },
        "LbVip": { "type": "object", "required": ["id", "name", "address", "port", "protocol", "mode", "table_size", "health_check", "backends"],
            "properties": { "id": { "type": "integer", "format": "int64" }, "name": name, "address": ipv4, "port": port,
                "protocol": { "type": "string", "enum": ["tcp", "udp"] }, "mode": { "type": "string", "enum": ["nat", "dsr"] },
                "table_size": { "type": "integer" },
                "health_check": { "allOf": [schema_ref("LbHealthCheck")], "nullable": true },
                "backends": { "type": "array", "items": schema_ref("LbBackend"),
                    "description": "with their health and the engine's counters (zeros when the engine does not answer)" } } },
        "LbVipList": { "type": "object", "required": ["vips"],
            "properties": { "vips": { "type": "array", "items": schema_ref("LbVip") } } },
    })
}

/// The balancer's path parameters.
pub fn parameters() -> Value {
    json!({
        "vip": { "name": "name", "in": "path", "required": true,
            "schema": { "type": "string", "pattern": NAME_PATTERN } },
        "backend": { "name": "backend", "in": "path", "required": true,
            "schema": { "type": "string", "example": "10.2.0.11:80" }, "description": "ADDRESS:PORT" },
    })
}

/// The balancer's paths.
pub fn insert_paths(p: &mut Map<String, Value>) {
    let item_errors = &["400", "404"];
    p.insert(paths::LB_VIPS.into(), json!({
        "get": op("List VIPs with their backends", &[], None,
            with_errors(json!({ "200": ok("VIPs", "LbVipList") }), &[])),
        "post": op("Create a VIP (409: name or address:port/protocol taken)", &[], Some("LbVipSpec"),
            with_errors(json!({ "201": ok("created (Location header names it)", "LbVip") }), BODY_ERRORS)) }));
    p.insert(paths::LB_VIP.into(), json!({
        "get": op("A VIP, its backends' health and the engine's counters", &["vip"], None,
            with_errors(json!({ "200": ok("VIP", "LbVip") }), item_errors)),
        "put": op("Replace a VIP's settings (backends stay; 409 when they no longer fit)", &["vip"], Some("LbVipUpdate"),
            with_errors(json!({ "200": ok("VIP", "LbVip") }), BODY_ERRORS)),
        "delete": op("Delete a VIP and its backends", &["vip"], None,
            with_errors(json!({ "204": { "description": "deleted" } }), item_errors)) }));
    p.insert(paths::LB_BACKENDS.into(), json!({
        "post": op("Add a backend (409: already there, or the table is too small for one more)", &["vip"], Some("LbBackendSpec"),
            with_errors(json!({ "201": ok("created (Location header names it)", "LbBackend") }), BODY_ERRORS)) }));
    p.insert(paths::LB_BACKEND.into(), json!({
        "patch": op("Set a backend's weight (0: drain)", &["vip", "backend"], Some("LbBackendPatch"),
            with_errors(json!({ "200": ok("backend", "LbBackend") }), &["400", "404", "413", "415"])),
        "delete": op("Remove a backend", &["vip", "backend"], None,
            with_errors(json!({ "204": { "description": "deleted" } }), item_errors)) }));
}
