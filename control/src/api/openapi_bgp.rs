//! BGP's part of the OpenAPI document: paths, schemas and parameters.

use serde_json::{json, Map, Value};

use super::openapi::{ok, op, schema_ref, with_errors, BODY_ERRORS};
use super::paths;
use crate::bgp::model::{
    DEFAULT_CONNECT_RETRY_SECS, DEFAULT_HOLD_TIME_SECS, DEFAULT_LISTEN_PORT,
    DEFAULT_RESTART_TIME_SECS, MAX_DESCRIPTION_LEN, MAX_RESTART_TIME_SECS,
};
use crate::bgp::status::{DEFAULT_RIB_LIMIT, MAX_RIB_LIMIT};

const POLICY_NAME_PATTERN: &str = "^[A-Za-z0-9._-]{1,64}$";

/// BGP's schemas.
pub fn schemas() -> Value {
    let asn = json!({ "type": "integer", "format": "int64", "minimum": 1, "maximum": 4294967295u32,
        "description": "4-octet AS number; not 23456 (AS_TRANS)" });
    let ip =
        json!({ "type": "string", "description": "IPv4 or IPv6 unicast address (not link-local)" });
    let prefix = json!({ "type": "string", "example": "10.0.0.0/24", "description": "ADDRESS/LENGTH, IPv4 or IPv6, no host bits" });
    let count = json!({ "type": "integer", "format": "int64", "minimum": 0 });
    let family = json!({ "type": "string", "enum": ["ipv4-unicast", "ipv6-unicast"] });
    let policy_name = json!({ "type": "string", "pattern": POLICY_NAME_PATTERN });
    let nullable_policy = json!({ "type": "string", "pattern": POLICY_NAME_PATTERN, "nullable": true,
        "description": "a stored policy's name (400 when none is); without one an eBGP neighbor exchanges nothing in that direction (RFC 8212)" });
    let hold = json!({ "type": "integer", "minimum": 0, "maximum": 65535, "default": DEFAULT_HOLD_TIME_SECS,
        "description": "0 (no keepalives) or 3..=65535" });
    let retry = json!({ "type": "integer", "minimum": 1, "maximum": 65535, "default": DEFAULT_CONNECT_RETRY_SECS });
    let restart = json!({ "type": "integer", "minimum": 0, "maximum": MAX_RESTART_TIME_SECS, "default": DEFAULT_RESTART_TIME_SECS });
    let description =
        json!({ "type": "string", "maxLength": MAX_DESCRIPTION_LEN, "nullable": true });
    let neighbor_props = |spec: bool| {
        let mut p = json!({
            "remote_as": asn, "description": description,
            "local_address": { "type": "string", "nullable": true, "description": "source address; same family as the neighbor's" },
            "hold_time_secs": hold, "connect_retry_secs": retry,
            "passive": { "type": "boolean", "default": false, "description": "only wait for the peer to connect" },
            "families": { "type": "array", "items": family, "minItems": 1, "description": "default: the neighbor address's family" },
            "graceful_restart": { "type": "boolean", "default": false, "description": "announce graceful restart (RFC 4724) and act as its helper" },
            "restart_time_secs": restart,
            "import_policy": nullable_policy, "export_policy": nullable_policy,
            "enabled": { "type": "boolean", "default": true } });
        if spec {
            p["address"] = ip.clone();
        }
        p
    };
    let mut neighbor = neighbor_props(true);
    neighbor["ebgp"] = json!({ "type": "boolean", "nullable": true, "description": "null while the local AS is not set" });
    neighbor["warnings"] = json!({ "type": "array", "items": { "type": "string" },
        "description": "e.g. RFC 8212 will deny every route to or from an eBGP neighbor without an export or import policy" });
    json!({
        "BgpGlobalSpec": { "type": "object", "additionalProperties": false, "required": ["asn", "router_id"],
            "properties": { "asn": asn, "router_id": { "type": "string", "format": "ipv4", "description": "BGP identifier, not 0.0.0.0" },
                "listen_port": { "type": "integer", "minimum": 1, "maximum": 65535, "default": DEFAULT_LISTEN_PORT },
                "enabled": { "type": "boolean", "default": true, "description": "false: no session runs" } } },
        "BgpGlobal": { "type": "object", "required": ["asn", "router_id", "listen_port", "enabled"],
            "properties": { "asn": asn, "router_id": { "type": "string", "format": "ipv4" },
                "listen_port": { "type": "integer" }, "enabled": { "type": "boolean" } } },
        "BgpNeighborSpec": { "type": "object", "additionalProperties": false, "required": ["address", "remote_as"],
            "properties": neighbor_props(true) },
        "BgpNeighborPatch": { "type": "object", "additionalProperties": false,
            "description": "absent fields stay; null clears description, local_address and the policies; the address cannot change",
            "properties": neighbor_props(false) },
        "BgpNeighbor": { "type": "object",
            "required": ["address", "remote_as", "description", "local_address", "hold_time_secs", "connect_retry_secs",
                "passive", "families", "graceful_restart", "restart_time_secs", "import_policy", "export_policy",
                "enabled", "ebgp", "warnings"],
            "properties": neighbor },
        "BgpNeighborList": { "type": "object", "required": ["neighbors"],
            "properties": { "neighbors": { "type": "array", "items": schema_ref("BgpNeighbor") } } },
        "BgpPolicy": { "type": "object", "required": ["name", "terms", "default"],
            "description": "patronus_bgp::policy::PolicyConfig: terms of match (prefix_list with ge/le, as_path_length, as_path_regex, origin_as, neighbor_as, contains_as, community_any, community_all), actions (set_local_pref, set_med, prepend, set_next_hop, set_communities, add_communities, delete_communities) and then accept|reject|next; errors name the field (terms[2].match.prefix_list[0].le). Returned in canonical form.",
            "properties": { "name": policy_name,
                "terms": { "type": "array", "items": { "type": "object" } },
                "default": { "type": "string", "enum": ["accept", "reject"], "default": "reject" } } },
        "BgpPolicyList": { "type": "object", "required": ["policies"],
            "properties": { "policies": { "type": "array", "items": schema_ref("BgpPolicy") } } },
        "BgpNetworkSpec": { "type": "object", "additionalProperties": false, "required": ["prefix"],
            "properties": { "prefix": prefix } },
        "BgpNetwork": { "type": "object", "required": ["prefix"], "properties": { "prefix": prefix } },
        "BgpNetworkList": { "type": "object", "required": ["networks"],
            "properties": { "networks": { "type": "array", "items": schema_ref("BgpNetwork") } } },
        "BgpNeighborState": { "type": "object",
            "required": ["address", "state", "uptime_secs", "remote_router_id", "hold_time_secs", "families",
                "graceful_restart_active", "last_error", "counters"],
            "properties": { "address": ip,
                "state": { "type": "string", "enum": ["idle", "connect", "active", "open_sent", "open_confirm", "established"] },
                "uptime_secs": { "type": "integer", "nullable": true, "description": "seconds in Established" },
                "remote_router_id": { "type": "string", "format": "ipv4", "nullable": true },
                "hold_time_secs": { "type": "integer", "nullable": true, "description": "negotiated" },
                "families": { "type": "array", "items": family, "description": "negotiated" },
                "graceful_restart_active": { "type": "boolean", "description": "the peer restarts; its routes are kept as stale" },
                "last_error": { "type": "string", "nullable": true },
                "counters": { "type": "object", "properties": {
                    "messages_received": count, "messages_sent": count, "updates_received": count,
                    "updates_sent": count, "notifications_received": count, "notifications_sent": count,
                    "established_transitions": count, "prefixes_received": count,
                    "prefixes_accepted": count, "prefixes_advertised": count } } } },
        "BgpRibRoute": { "type": "object",
            "required": ["prefix", "peer", "best", "multipath", "next_hop", "as_path", "origin", "local_pref", "med", "communities", "stale"],
            "properties": { "prefix": prefix,
                "peer": { "type": "string", "nullable": true, "description": "null: an originated network" },
                "best": { "type": "boolean" }, "multipath": { "type": "boolean" },
                "next_hop": { "type": "string", "nullable": true },
                "as_path": { "type": "string", "example": "65001 65002 {65003,65004}" },
                "origin": { "type": "string", "enum": ["igp", "egp", "incomplete"] },
                "local_pref": { "type": "integer", "nullable": true }, "med": { "type": "integer", "nullable": true },
                "communities": { "type": "array", "items": { "type": "string" } },
                "stale": { "type": "boolean" } } },
        "BgpFamilyCounts": { "type": "object", "required": ["ipv4", "ipv6"],
            "properties": { "ipv4": count, "ipv6": count } },
        "BgpSummary": { "type": "object",
            "required": ["running", "local_as", "router_id", "neighbors", "selected_routes", "installed_routes", "installed_generation"],
            "properties": {
                "running": { "type": "boolean", "description": "a speaker runs (global settings set and enabled)" },
                "local_as": { "type": "integer", "format": "int64", "description": "0 while not running" },
                "router_id": { "type": "string", "format": "ipv4" },
                "neighbors": { "type": "object", "required": ["configured", "established"],
                    "properties": { "configured": count, "established": count } },
                "selected_routes": schema_ref("BgpFamilyCounts"),
                "installed_routes": { "allOf": [schema_ref("BgpFamilyCounts")],
                    "description": "BGP routes in the newest table every live engine worker acknowledged (0 without an engine)" },
                "installed_generation": { "type": "integer", "format": "int64", "description": "that IPv4 table generation (0: none)" } } },
        "BgpRibPage": { "type": "object", "required": ["routes"],
            "properties": { "routes": { "type": "array", "items": schema_ref("BgpRibRoute") },
                "next_cursor": { "type": "string", "description": "pass as cursor for the next page; absent on the last" } } },
    })
}

/// BGP's parameters.
pub fn parameters() -> Value {
    json!({
        "bgp_address": { "name": "address", "in": "path", "required": true,
            "schema": { "type": "string", "example": "192.0.2.1" }, "description": "the neighbor's address" },
        "bgp_policy": { "name": "name", "in": "path", "required": true,
            "schema": { "type": "string", "pattern": POLICY_NAME_PATTERN } },
        "bgp_prefix": { "name": "prefix", "in": "path", "required": true,
            "schema": { "type": "string", "example": "10.0.0.0%2F24" }, "description": "ADDRESS/LENGTH with the slash URL-encoded" },
        "rib_prefix": { "name": "prefix", "in": "query", "required": false,
            "schema": { "type": "string", "example": "10.0.0.0/8" }, "description": "only routes within this prefix (itself included)" },
        "rib_cursor": { "name": "cursor", "in": "query", "required": false,
            "schema": { "type": "string" }, "description": "next_cursor of the previous page" },
        "rib_limit": { "name": "limit", "in": "query", "required": false,
            "schema": { "type": "integer", "minimum": 1, "maximum": MAX_RIB_LIMIT, "default": DEFAULT_RIB_LIMIT } },
    })
}

/// A response the speaker gives when it does not run.
fn speaker_down(mut responses: Value) -> Value {
    responses["503"] = json!({ "description": "BGP speaker not running or not answering (code bgp_unavailable), or the store shutting down",
        "content": { "application/json": { "schema": schema_ref("Error") } } });
    responses
}

/// BGP's paths.
pub fn insert_paths(p: &mut Map<String, Value>) {
    let item_errors = &["400", "404"];
    p.insert(paths::BGP.into(), json!({
        "get": op("BGP's global settings (404 until set)", &[], None,
            with_errors(json!({ "200": ok("settings", "BgpGlobal") }), &["404"])),
        "put": op("Set BGP's global settings: local AS, router id, listen port, enabled", &[], Some("BgpGlobalSpec"),
            with_errors(json!({ "200": ok("settings", "BgpGlobal") }), BODY_ERRORS)) }));
    p.insert(paths::BGP_NEIGHBORS.into(), json!({
        "get": op("List neighbors (with eBGP/iBGP and warnings)", &[], None,
            with_errors(json!({ "200": ok("neighbors", "BgpNeighborList") }), &[])),
        "post": op("Add a neighbor (409: already there; 400 on import_policy/export_policy naming no stored policy)", &[], Some("BgpNeighborSpec"),
            with_errors(json!({ "201": ok("created (Location header names it); warnings carry RFC 8212's default deny", "BgpNeighbor") }), BODY_ERRORS)) }));
    p.insert(paths::BGP_NEIGHBOR.into(), json!({
        "get": op("A neighbor", &["bgp_address"], None,
            with_errors(json!({ "200": ok("neighbor", "BgpNeighbor") }), item_errors)),
        "patch": op("Change a neighbor's settings (absent fields stay)", &["bgp_address"], Some("BgpNeighborPatch"),
            with_errors(json!({ "200": ok("neighbor", "BgpNeighbor") }), BODY_ERRORS)),
        "delete": op("Delete a neighbor (its session closes)", &["bgp_address"], None,
            with_errors(json!({ "204": { "description": "deleted" } }), item_errors)) }));
    p.insert(paths::BGP_NEIGHBOR_STATE.into(), json!({
        "get": op("A neighbor's session: state, uptime, counters (from the running speaker)", &["bgp_address"], None,
            speaker_down(with_errors(json!({ "200": ok("session", "BgpNeighborState") }), item_errors))) }));
    p.insert(
        paths::BGP_POLICIES.into(),
        json!({
        "get": op("List policies", &[], None,
            with_errors(json!({ "200": ok("policies", "BgpPolicyList") }), &[])) }),
    );
    p.insert(paths::BGP_POLICY.into(), json!({
        "get": op("A policy (canonical form)", &["bgp_policy"], None,
            with_errors(json!({ "200": ok("policy", "BgpPolicy") }), item_errors)),
        "put": op("Create (201) or replace (200) a policy; the body's name may be left out and must be the path's when given", &["bgp_policy"], Some("BgpPolicy"),
            with_errors(json!({ "200": ok("replaced", "BgpPolicy"), "201": ok("created", "BgpPolicy") }), BODY_ERRORS)),
        "delete": op("Delete a policy (409 while a neighbor uses it)", &["bgp_policy"], None,
            with_errors(json!({ "204": { "description": "deleted" } }), &["400", "404", "409"])) }));
    p.insert(paths::BGP_NETWORKS.into(), json!({
        "get": op("List originated networks", &[], None,
            with_errors(json!({ "200": ok("networks", "BgpNetworkList") }), &[])),
        "post": op("Originate a network (409: already originated)", &[], Some("BgpNetworkSpec"),
            with_errors(json!({ "201": ok("created (Location header names it)", "BgpNetwork") }), BODY_ERRORS)) }));
    p.insert(
        paths::BGP_NETWORK.into(),
        json!({
        "delete": op("Stop originating a network", &["bgp_prefix"], None,
            with_errors(json!({ "204": { "description": "deleted" } }), item_errors)) }),
    );
    p.insert(paths::BGP_RIB.into(), json!({
        "get": op("A page of the RIB, in prefix order (from the running speaker)", &["rib_prefix", "rib_cursor", "rib_limit"], None,
            speaker_down(with_errors(json!({ "200": ok("routes", "BgpRibPage") }), &["400"]))) }));
    p.insert(paths::BGP_SUMMARY.into(), json!({
        "get": op("Speaker summary: sessions, selected and installed routes (503 when the control process runs without --bgp)", &[], None,
            speaker_down(with_errors(json!({ "200": ok("summary", "BgpSummary") }), &[]))) }));
}
