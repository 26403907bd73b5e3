//! Request extractors whose rejections are [`ApiError`]s naming the field:
//! [`JsonBody`] (content type, size, syntax, unknown/missing/mistyped fields)
//! and [`Scope`] (organization and resource id from the path).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::model::DEFAULT_ORG;

/// A JSON request body of type `T` (strict: `Content-Type: application/json`,
/// no trailing data, unknown fields rejected by `T`).
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

fn is_json(content_type: &str) -> bool {
    let mime = content_type.split(';').next().unwrap_or("").trim();
    mime.eq_ignore_ascii_case("application/json")
        || (mime.len() > 5 && mime[mime.len() - 5..].eq_ignore_ascii_case("+json"))
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = typed_body(
            req,
            state,
            is_json,
            "expected Content-Type: application/json",
        )
        .await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// The body of a request whose `Content-Type` passes `accept` (else 415
/// with `expected`), within the body limit (else 413).
pub async fn typed_body<S: Send + Sync>(
    req: Request,
    state: &S,
    accept: fn(&str) -> bool,
    expected: &str,
) -> Result<Bytes, ApiError> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !accept(ct) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            None,
            expected,
        ));
    }
    Bytes::from_request(req, state).await.map_err(|r| {
        let status = r.status();
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "payload_too_large"
        } else {
            "invalid_body"
        };
        ApiError::new(status, code, None, r.body_text())
    })
}

/// Deserializes `bytes`, mapping serde errors to a field path.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // serde's derived structs also accept arrays; request bodies are objects.
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if matches!(first, Some(b) if *b != b'{')
        && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok()
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_field",
            None,
            "the request body must be a JSON object",
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        json_error(path, e.into_inner())
    })?;
    de.end().map_err(|e| json_error(".".into(), e))?;
    Ok(value)
}

fn json_error(path: String, e: serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    if matches!(
        e.classify(),
        Category::Syntax | Category::Eof | Category::Io
    ) {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            None,
            format!("malformed JSON: {e}"),
        );
    }
    // Data errors: serde names unknown/missing fields only in the message.
    let msg = e.to_string();
    let named = |prefix: &str| {
        msg.strip_prefix(prefix)
            .and_then(|rest| rest.split('`').next())
            .map(str::to_owned)
    };
    let base = if path == "." { String::new() } else { path };
    let join = |name: &str| {
        if base.is_empty() {
            name.to_owned()
        } else if base == name || base.ends_with(&format!(".{name}")) {
            base.clone()
        } else {
            format!("{base}.{name}")
        }
    };
    let message = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
    if let Some(name) = named("unknown field `") {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "unknown_field",
            Some(join(&name)),
            message,
        );
    }
    if let Some(name) = named("missing field `") {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "missing_field",
            Some(join(&name)),
            message,
        );
    }
    let field = if base.is_empty() { None } else { Some(base) };
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_field", field, message)
}

/// The organization and (for item paths) the resource id named by the path.
/// Paths without `{org}` are the default organization's shortcuts.
#[derive(Debug, Clone)]
pub struct Scope {
    pub org: String,
    pub id: Option<i64>,
}

impl Scope {
    /// The id of an item path (the router only uses this on `{id}` paths).
    pub fn id(&self) -> Result<i64, ApiError> {
        self.id
            .ok_or_else(|| ApiError::invalid("id", "missing resource id"))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Scope {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|r| {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", None, r.body_text())
            })?;
        let org = params
            .get("org")
            .cloned()
            .unwrap_or_else(|| DEFAULT_ORG.to_owned());
        let id = match params.get("id") {
            None => None,
            Some(text) => match text.parse::<i64>() {
                Ok(id) if id > 0 => Some(id),
                _ => {
                    return Err(ApiError::invalid(
                        "id",
                        format!("{text:?} is not a resource id (a positive integer)"),
                    ))
                }
            },
        };
        Ok(Scope { org, id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RouteSpec;

    fn err(json: &str) -> ApiError {
        parse_json::<RouteSpec>(json.as_bytes()).unwrap_err()
    }

    #[test]
    fn json_errors_name_fields() {
        let e = err(r#"{"prefix": "10.0.0.0/8", "bogus": 1}"#);
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("unknown_field", Some("bogus"))
        );
        let e = err(r#"{"prefix": "10.0.0.0/8", "next_hops": [{"via": "1.1.1.1", "x": 2}]}"#);
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("unknown_field", Some("next_hops[0].x"))
        );
        let e = err(r#"{"next_hops": []}"#);
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("missing_field", Some("prefix"))
        );
        let e = err(r#"{"prefix": "10.0.0.0/8", "next_hops": [{}]}"#);
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("missing_field", Some("next_hops[0].via"))
        );
        let e = err(r#"{"prefix": 8}"#);
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("invalid_field", Some("prefix"))
        );
        let e = err(r#"{"prefix": "10.0.0.0/8", "blackhole": "yes"}"#);
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("invalid_field", Some("blackhole"))
        );
        let e = err(r#"{"prefix": "10.0.0.0/8""#);
        assert_eq!((e.code, e.field), ("invalid_json", None));
        let e = err(r#"{"prefix": "10.0.0.0/8"} {}"#);
        assert_eq!((e.code, e.field), ("invalid_json", None));
        let e = err(r#"[1]"#);
        assert_eq!(e.code, "invalid_field");
    }

    #[test]
    fn content_types() {
        assert!(is_json("application/json"));
        assert!(is_json("Application/JSON; charset=utf-8"));
        assert!(is_json("application/merge-patch+json"));
        assert!(!is_json("text/plain"));
        assert!(!is_json(""));
        assert!(!is_json("+json"));
    }
}
