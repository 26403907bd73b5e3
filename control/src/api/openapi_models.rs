//! The model registry's part of the OpenAPI document: paths and schemas.

use serde_json::{json, Map, Value};

use super::openapi::{ok, op, schema_ref, with_errors};
use super::paths;

/// The registry's schemas.
pub fn schemas() -> Value {
    let int = json!({ "type": "integer", "format": "int64", "minimum": 0 });
    json!({
        "Model": { "type": "object",
            "required": ["id", "version", "sha256", "classes", "dims", "size_bytes", "uploaded_at", "active"],
            "properties": {
                "id": { "type": "integer", "format": "int64" },
                "name": { "type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$", "description": "given at upload (`?name=`)" },
                "version": { "type": "integer", "format": "int64", "minimum": 1, "description": "registry counter: +1 per upload, never reused" },
                "sha256": { "type": "string", "pattern": "^[0-9a-f]{64}$", "description": "SHA-256 of the model file (its trailer)" },
                "classes": { "type": "array", "items": { "type": "string" }, "description": "class labels in output order" },
                "dims": { "type": "array", "items": int, "description": "layer widths, inputs first" },
                "size_bytes": int,
                "uploaded_at": { "type": "integer", "format": "int64", "description": "Unix seconds" },
                "active": { "type": "boolean", "description": "the model pushed to the engine" } } },
        "ModelList": { "type": "object", "required": ["items"],
            "properties": { "items": { "type": "array", "items": schema_ref("Model") } } },
        "ActiveModel": { "type": "object", "required": ["active"],
            "properties": { "active": { "allOf": [schema_ref("Model")], "nullable": true,
                "description": "null: no model (the engine classifies with signatures only)" } } },
    })
}

/// The registry's paths.
pub fn insert_paths(p: &mut Map<String, Value>) {
    let mut upload = op(
        "Upload a model file (the raw bytes of `patronus-ml` output). 400: not a valid model file (the parser's message); 409: the same file (SHA-256) is already registered, the message names its id",
        &[],
        None,
        with_errors(
            json!({ "201": ok("registered (Location header names it); not active until promoted", "Model") }),
            &["400", "409", "413", "415"],
        ),
    );
    upload["parameters"] = json!([{ "name": "name", "in": "query", "required": false,
        "schema": { "type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$" } }]);
    upload["requestBody"] = json!({ "required": true, "content": {
        "application/octet-stream": { "schema": { "type": "string", "format": "binary",
            "maxLength": crate::models::model::MAX_MODEL_BYTES } } } });
    p.insert(
        paths::MODELS.into(),
        json!({
            "get": op("List registered models", &[], None,
                with_errors(json!({ "200": ok("models", "ModelList") }), &[])),
            "post": upload }),
    );
    p.insert(paths::MODEL.into(), json!({
        "get": op("A model", &["id"], None,
            with_errors(json!({ "200": ok("model", "Model") }), &["400", "404"])),
        "delete": op("Delete a model that is not active (409 if it is); it leaves the promotion history", &["id"], None,
            with_errors(json!({ "204": { "description": "deleted" } }), &["400", "404", "409"])) }));
    p.insert(paths::MODEL_PROMOTE.into(), json!({
        "post": op("Make a model active and push it to the engine (already active: no change)", &["id"], None,
            with_errors(json!({ "200": ok("the model, now active", "Model") }), &["400", "404"])) }));
    p.insert(paths::MODELS_ROLLBACK.into(), json!({
        "post": op("Go back to what was active before the newest promotion (repeat to walk further back) and push it", &[], None,
            with_errors(json!({ "200": ok("what is active now", "ActiveModel") }), &["409"])) }));
    p.insert(paths::MODELS_DEACTIVATE.into(), json!({
        "post": op("Run no model (signatures only); recorded in the history, so a rollback undoes it", &[], None,
            with_errors(json!({ "200": ok("what is active now (null)", "ActiveModel") }), &[])) }));
}
