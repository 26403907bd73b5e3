//! The OpenAPI 3.0 document, hand-written with `serde_json::json!` (no
//! codegen dependency) and served at `/api/v1/openapi.json` without auth.
//! A test checks that every served path and method is documented and vice versa.

use std::sync::OnceLock;

use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

use super::paths;

pub(super) fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// A monotonic engine counter.
fn counter() -> Value {
    json!({ "type": "integer", "format": "int64", "minimum": 0 })
}

fn json_content(schema: Value) -> Value {
    json!({ "application/json": { "schema": schema } })
}

pub(super) fn ok(description: &str, schema: &str) -> Value {
    json!({ "description": description, "content": json_content(schema_ref(schema)) })
}

fn err(description: &str) -> Value {
    json!({ "description": description, "content": json_content(schema_ref("Error")) })
}

/// Error responses every authenticated operation can return.
pub(super) fn with_errors(mut responses: Value, codes: &[&str]) -> Value {
    let map = responses.as_object_mut().expect("responses is an object");
    map.insert("401".into(), err("missing or wrong bearer token"));
    map.insert("500".into(), err("store error; nothing was changed"));
    map.insert("503".into(), err("store shutting down"));
    for code in codes {
        let text = match *code {
            "400" => "bad input; `error.field` names the field (invalid_json, unknown_field, missing_field, invalid_field)",
            "404" => "the organization (`org`) or resource (`id`) does not exist",
            "409" => "conflicts with existing state (duplicate, still referenced)",
            "413" => "request body too large",
            "415" => "Content-Type is not application/json",
            other => unreachable!("no description for {other}"),
        };
        map.insert((*code).into(), err(text));
    }
    responses
}

pub(super) fn op(summary: &str, params: &[&str], body: Option<&str>, responses: Value) -> Value {
    let mut o = json!({
        "summary": summary,
        "parameters": params.iter().map(|p| json!({ "$ref": format!("#/components/parameters/{p}") })).collect::<Vec<_>>(),
        "responses": responses,
    });
    if let Some(b) = body {
        o["requestBody"] = json!({ "required": true, "content": json_content(schema_ref(b)) });
    }
    o
}

pub(super) const BODY_ERRORS: &[&str] = &["400", "404", "409", "413", "415"];

/// Collection operations (list, create, and for routes replace-all) for a resource.
fn collection(kind: &str, item: &str, spec: &str, params: &[&str], replace_all: bool) -> Value {
    let mut v = json!({
        "get": op(&format!("List {kind}"), params, None,
            with_errors(json!({ "200": ok(&format!("all {kind}"), &format!("{item}List")) }), &["404"])),
        "post": op(&format!("Create one of the {kind}"), params, Some(spec),
            with_errors(json!({ "201": ok("created (Location header names it)", item) }), BODY_ERRORS)),
    });
    if replace_all {
        // Route lists page (a million routes do not fit one answer).
        let get = v["get"]["parameters"].as_array_mut().expect("parameters");
        get.push(json!({ "$ref": "#/components/parameters/limit" }));
        get.push(json!({ "$ref": "#/components/parameters/offset" }));
        v["get"]["responses"]
            .as_object_mut()
            .expect("responses")
            .insert(
                "400".into(),
                err("bad `limit` or `offset` (the field names it)"),
            );
        v["put"] = op(
            &format!("Replace all {kind} atomically (kept prefixes keep their id)"),
            params,
            Some("RouteSet"),
            with_errors(
                json!({ "200": ok(&format!("the new {kind}"), &format!("{item}List")) }),
                BODY_ERRORS,
            ),
        );
    }
    v
}

/// `POST .../routes/bulk`.
fn bulk(kind: &str, params: &[&str]) -> Value {
    json!({ "post": op(
        &format!("Add and delete many {kind} in one transaction (deletions first; all or nothing). \
            Errors name the entry: add[12].prefix (400 bad, 409 duplicate or existing prefix), \
            delete[3] / delete_prefixes[3] (404 missing, 409 listed twice). Body limit 256 MiB."),
        params,
        Some("BulkRoutes"),
        with_errors(json!({ "200": ok("counts and the new desired-state generation", "BulkResult") }), BODY_ERRORS),
    ) })
}

fn item(kind: &str, item: &str, spec: &str, params: &[&str]) -> Value {
    json!({
        "get": op(&format!("Get one {kind}"), params, None,
            with_errors(json!({ "200": ok(kind, item) }), &["400", "404"])),
        "put": op(&format!("Replace one {kind}"), params, Some(spec),
            with_errors(json!({ "200": ok(&format!("the updated {kind}"), item) }), BODY_ERRORS)),
        "delete": op(&format!("Delete one {kind}"), params, None,
            with_errors(json!({ "204": { "description": "deleted" } }), &["400", "404", "409"])),
    })
}

fn build() -> Value {
    let error = json!({
        "type": "object", "required": ["error"], "additionalProperties": false,
        "properties": { "error": {
            "type": "object", "required": ["code", "field", "message"],
            "properties": {
                "code": { "type": "string", "enum": [
                    "invalid_json", "unknown_field", "missing_field", "invalid_field", "invalid_body",
                    "invalid_path", "unauthorized", "not_found", "no_such_path", "method_not_allowed",
                    "conflict", "payload_too_large", "unsupported_media_type", "internal", "unavailable",
                    "nat_disabled", "engine_unavailable", "classify_disabled"] },
                "field": { "type": "string", "nullable": true,
                    "description": "path of the offending field, e.g. prefix, next_hops[0].via, routes[2].prefix, add[12].prefix, delete[3], limit, org, id" },
                "message": { "type": "string" }
            }
        }}
    });
    let cidr = |d: &str| json!({ "type": "string", "pattern": "^\\d+\\.\\d+\\.\\d+\\.\\d+/\\d+$", "description": d });
    let ipv4 = json!({ "type": "string", "format": "ipv4" });
    let list = |item: &str| {
        json!({ "type": "object", "required": ["items"],
        "properties": { "items": { "type": "array", "items": schema_ref(item) } } })
    };
    let schemas = json!({
        "Error": error,
        "OrgSpec": { "type": "object", "additionalProperties": false, "required": ["name"],
            "properties": { "name": { "type": "string", "pattern": "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$" } } },
        "Organization": { "type": "object", "required": ["name"], "properties": { "name": { "type": "string" } } },
        "OrganizationList": list("Organization"),
        "InterfaceSpec": { "type": "object", "additionalProperties": false, "required": ["port", "address"],
            "properties": {
                "port": { "type": "string", "pattern": "^[A-Za-z0-9._-]{1,15}$", "description": "engine port name; (port, vlan) is unique on the box" },
                "address": cidr("own address and subnet length 1..=32, e.g. 10.1.0.1/24; subnets of one organization may not overlap"),
                "vlan": { "type": "integer", "minimum": 1, "maximum": 4094, "nullable": true, "description": "absent or null: untagged" } } },
        "Interface": { "type": "object", "required": ["id", "org", "port", "address", "vlan"],
            "properties": { "id": { "type": "integer", "format": "int64" }, "org": { "type": "string" },
                "port": { "type": "string" }, "address": cidr("address/len"),
                "vlan": { "type": "integer", "nullable": true } } },
        "InterfaceList": list("Interface"),
        "NextHopSpec": { "type": "object", "additionalProperties": false, "required": ["via"],
            "properties": { "via": { "type": "string", "format": "ipv4", "description": "must lie on a subnet of one of the organization's interfaces" } } },
        "NextHop": { "type": "object", "required": ["via"], "properties": { "via": ipv4 } },
        "RouteSpec": { "type": "object", "additionalProperties": false, "required": ["prefix"],
            "properties": {
                "prefix": cidr("destination without host bits, length 0..=32; unique per organization"),
                "next_hops": { "type": "array", "maxItems": 16, "items": schema_ref("NextHopSpec"), "default": [],
                    "description": "ECMP next hops; empty exactly when blackhole is true or tunnel is given" },
                "blackhole": { "type": "boolean", "default": false },
                "tunnel": { "type": "string", "pattern": "^[A-Za-z0-9_-]{1,15}$",
                    "description": "a WireGuard tunnel to send matching traffic into (its peers' allowed IPs pick the peer); excludes next_hops and blackhole" } } },
        "Route": { "type": "object", "required": ["id", "org", "prefix", "next_hops", "blackhole"],
            "properties": { "id": { "type": "integer", "format": "int64" }, "org": { "type": "string" },
                "prefix": cidr("prefix"), "next_hops": { "type": "array", "items": schema_ref("NextHop") },
                "blackhole": { "type": "boolean" },
                "tunnel": { "type": "string", "description": "present for a route into a WireGuard tunnel" } } },
        "RouteList": { "type": "object", "required": ["items"],
            "properties": { "items": { "type": "array", "items": schema_ref("Route") },
                "next_offset": { "type": "integer", "format": "int64",
                    "description": "present on a paged list whose page was full: the offset of the next page" } } },
        "BulkRoutes": { "type": "object", "additionalProperties": false,
            "properties": {
                "add": { "type": "array", "items": schema_ref("RouteSpec"), "default": [],
                    "description": "routes to add; a prefix may not exist already (unless deleted by this request)" },
                "delete": { "type": "array", "items": { "type": "integer", "format": "int64", "minimum": 1 }, "default": [],
                    "description": "ids of routes to delete" },
                "delete_prefixes": { "type": "array", "items": cidr("prefix of a route to delete"), "default": [] } } },
        "BulkResult": { "type": "object", "required": ["added", "deleted", "generation"],
            "properties": { "added": counter(), "deleted": counter(),
                "generation": { "type": "integer", "format": "int64",
                    "description": "desired-state generation after the change" } } },
        "RouteSet": { "type": "object", "additionalProperties": false, "required": ["routes"],
            "properties": { "routes": { "type": "array", "items": schema_ref("RouteSpec") } } },
        "PortCounters": { "type": "object",
            "required": ["name", "rx_packets", "rx_bytes", "tx_packets", "tx_bytes", "rx_missed", "rx_errors", "tx_errors"],
            "properties": { "name": { "type": "string" },
                "rx_packets": counter(), "rx_bytes": counter(), "tx_packets": counter(), "tx_bytes": counter(),
                "rx_missed": counter(), "rx_errors": counter(), "tx_errors": counter() } },
        "WorkerStatus": { "type": "object",
            "required": ["index", "acked_generation", "live", "busy_polls", "idle_polls", "rx_packets", "tx_packets"],
            "properties": { "index": { "type": "integer" },
                "acked_generation": { "type": "integer", "format": "int64",
                    "description": "table generation the worker forwards with" },
                "live": { "type": "boolean", "description": "the worker beat recently" },
                "busy_polls": counter(), "idle_polls": counter(), "rx_packets": counter(), "tx_packets": counter() } },
        "Status": { "type": "object", "required": ["engine", "generation"], "properties": {
            "engine": { "type": "object",
                "required": ["attached", "workers", "ports", "table_generation", "table_generation_acked"],
                "description": "the engine as seen through shared memory; null / empty fields while not attached",
                "properties": {
                "attached": { "type": "boolean" },
                "workers": { "type": "array", "nullable": true, "items": schema_ref("WorkerStatus") },
                "ports": { "type": "array", "items": schema_ref("PortCounters") },
                "table_generation": { "type": "integer", "format": "int64", "nullable": true,
                    "description": "table generation last published to the engine" },
                "table_generation_acked": { "type": "integer", "format": "int64", "nullable": true,
                    "description": "table generation every live worker has switched to" } } },
            "generation": { "type": "integer", "format": "int64",
                "description": "desired-state generation; +1 on every successful change" } } },
        "Counters": { "type": "object", "required": ["attached"],
            "description": "only `attached` while the engine is not attached",
            "properties": { "attached": { "type": "boolean" },
                "ports": { "type": "array", "items": schema_ref("PortCounters") },
                "drops": { "type": "object", "additionalProperties": counter(),
                    "description": "packets dropped, by reason (every reason, zeros included)" },
                "workers": { "type": "array", "items": schema_ref("WorkerStatus") } } },
    });
    let org_param =
        json!({ "name": "org", "in": "path", "required": true, "schema": { "type": "string" } });
    let id_param = json!({ "name": "id", "in": "path", "required": true, "schema": { "type": "integer", "format": "int64", "minimum": 1 } });

    let mut schemas = schemas;
    if let (Some(all), Value::Object(nat)) =
        (schemas.as_object_mut(), super::openapi_nat::schemas())
    {
        all.extend(nat);
    }
    if let (Some(all), Value::Object(wg)) = (schemas.as_object_mut(), super::openapi_wg::schemas())
    {
        all.extend(wg);
    }
    if let (Some(all), Value::Object(flows)) =
        (schemas.as_object_mut(), super::openapi_flows::schemas())
    {
        all.extend(flows);
    }
    if let (Some(all), Value::Object(m)) =
        (schemas.as_object_mut(), super::openapi_models::schemas())
    {
        all.extend(m);
    }
    if let (Some(all), Value::Object(m)) = (schemas.as_object_mut(), super::openapi_lb::schemas()) {
        all.extend(m);
    }
    if let (Some(all), Value::Object(m)) = (schemas.as_object_mut(), super::openapi_bgp::schemas())
    {
        all.extend(m);
    }
    if let (Some(all), Value::Object(m)) = (schemas.as_object_mut(), super::openapi_wan::schemas())
    {
        all.extend(m);
    }
    let mut p = serde_json::Map::new();
    super::openapi_wan::insert_paths(&mut p);
    super::openapi_lb::insert_paths(&mut p);
    super::openapi_bgp::insert_paths(&mut p);
    super::openapi_models::insert_paths(&mut p);
    super::openapi_nat::insert_paths(&mut p);
    super::openapi_flows::insert_paths(&mut p);
    super::openapi_wg::insert_paths(&mut p);
    p.insert(paths::OPENAPI.into(), json!({ "get": {
        "summary": "This document", "security": [],
        "responses": { "200": { "description": "OpenAPI 3.0 document", "content": { "application/json": {} } } } } }));
    p.insert(
        paths::STATUS.into(),
        json!({ "get": op("Engine status and desired-state generation", &[], None,
        with_errors(json!({ "200": ok("status", "Status") }), &[])) }),
    );
    p.insert(
        paths::COUNTERS.into(),
        json!({ "get": op("Engine counters (ports, drops by reason, workers)", &[], None,
        with_errors(json!({ "200": ok("counters", "Counters") }), &[])) }),
    );
    p.insert(paths::ORGS.into(), json!({
        "get": op("List organizations", &[], None, with_errors(json!({ "200": ok("organizations", "OrganizationList") }), &[])),
        "post": op("Create an organization", &[], Some("OrgSpec"),
            with_errors(json!({ "201": ok("created", "Organization") }), &["400", "409", "413", "415"])) }));
    p.insert(paths::ORG.into(), json!({
        "get": op("Get an organization", &["org"], None, with_errors(json!({ "200": ok("organization", "Organization") }), &["404"])),
        "delete": op("Delete an empty organization (not `default`)", &["org"], None,
            with_errors(json!({ "204": { "description": "deleted" } }), &["404", "409"])) }));
    p.insert(
        paths::ORG_INTERFACES.into(),
        collection("interfaces", "Interface", "InterfaceSpec", &["org"], false),
    );
    p.insert(
        paths::INTERFACES.into(),
        collection(
            "interfaces (organization default)",
            "Interface",
            "InterfaceSpec",
            &[],
            false,
        ),
    );
    p.insert(
        paths::ORG_INTERFACE.into(),
        item("interface", "Interface", "InterfaceSpec", &["org", "id"]),
    );
    p.insert(
        paths::INTERFACE.into(),
        item(
            "interface (organization default)",
            "Interface",
            "InterfaceSpec",
            &["id"],
        ),
    );
    p.insert(
        paths::ORG_ROUTES.into(),
        collection("routes", "Route", "RouteSpec", &["org"], true),
    );
    p.insert(
        paths::ROUTES.into(),
        collection(
            "routes (organization default)",
            "Route",
            "RouteSpec",
            &[],
            true,
        ),
    );
    p.insert(paths::ORG_ROUTES_BULK.into(), bulk("routes", &["org"]));
    p.insert(
        paths::ROUTES_BULK.into(),
        bulk("routes (organization default)", &[]),
    );
    p.insert(
        paths::ORG_ROUTE.into(),
        item("route", "Route", "RouteSpec", &["org", "id"]),
    );
    p.insert(
        paths::ROUTE.into(),
        item(
            "route (organization default)",
            "Route",
            "RouteSpec",
            &["id"],
        ),
    );

    let mut doc = json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Patronus control API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Desired state of a Patronus appliance. Every resource belongs to an organization; paths without /orgs/{org} address the organization `default`. Resources are addressed by numeric id. Every call except this document needs `Authorization: Bearer <token>`. Errors are {\"error\": {\"code\", \"field\", \"message\"}}."
        },
        "servers": [{ "url": "/" }],
        "security": [{ "bearerAuth": [] }],
        "paths": p,
        "components": {
            "securitySchemes": { "bearerAuth": { "type": "http", "scheme": "bearer" } },
            "parameters": { "org": org_param, "id": id_param,
                "limit": { "name": "limit", "in": "query", "required": false,
                    "schema": { "type": "integer", "minimum": 1, "maximum": super::routes::MAX_PAGE },
                    "description": "at most this many items (default: all)" },
                "offset": { "name": "offset", "in": "query", "required": false,
                    "schema": { "type": "integer", "minimum": 0, "default": 0 },
                    "description": "skip this many items (in id order)" } },
            "schemas": schemas,
        }
    });
    if let (Some(all), Value::Object(nat)) = (
        doc["components"]["parameters"].as_object_mut(),
        super::openapi_nat::parameters(),
    ) {
        all.extend(nat);
    }
    if let (Some(all), Value::Object(wg)) = (
        doc["components"]["parameters"].as_object_mut(),
        super::openapi_wg::parameters(),
    ) {
        all.extend(wg);
    }
    if let (Some(all), Value::Object(flows)) = (
        doc["components"]["parameters"].as_object_mut(),
        super::openapi_flows::parameters(),
    ) {
        all.extend(flows);
    }
    if let (Some(all), Value::Object(lb)) = (
        doc["components"]["parameters"].as_object_mut(),
        super::openapi_lb::parameters(),
    ) {
        all.extend(lb);
    }
    if let (Some(all), Value::Object(bgp)) = (
        doc["components"]["parameters"].as_object_mut(),
        super::openapi_bgp::parameters(),
    ) {
        all.extend(bgp);
    }
    doc
}

/// The document (built once).
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(build)
}

pub async fn serve() -> impl IntoResponse {
    Json(document())
}
