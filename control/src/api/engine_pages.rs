//! What the paged lists the engine answers (NAT sessions, flows) share:
//! their query parameters (`cursor`, `limit`, an IPv4 filter) checked
//! before the engine is asked, and the error when no engine answers.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use axum::http::StatusCode;
use patronus_shm::nat_query::decode_cursor;

use super::error::ApiError;

/// Refuses any parameter not in `known`.
pub fn only_params(q: &HashMap<String, String>, known: &[&str]) -> Result<(), ApiError> {
    match q.keys().find(|k| !known.contains(&k.as_str())) {
        Some(other) => Err(ApiError::invalid(
            other.as_str(),
            format!("unknown query parameter (expected {})", known.join(", ")),
        )),
        None => Ok(()),
    }
}

/// An optional IPv4 address parameter.
pub fn ipv4_param(q: &HashMap<String, String>, name: &str) -> Result<Option<Ipv4Addr>, ApiError> {
    q.get(name)
        .map(|t| {
            t.parse::<Ipv4Addr>()
                .map_err(|_| ApiError::invalid(name, format!("{t:?} is not an IPv4 address")))
        })
        .transpose()
}

/// `cursor` (one the engine gave out) and `limit` (1..=`max`, `default`
/// when absent).
pub fn page_params(
    q: &HashMap<String, String>,
    default: u32,
    max: u32,
) -> Result<(Option<String>, u32), ApiError> {
    let cursor = q.get("cursor").cloned();
    if let Some(c) = &cursor {
        if decode_cursor(c).is_none() {
            return Err(ApiError::invalid(
                "cursor",
                format!("{c:?} is not a cursor this API gave out"),
            ));
        }
    }
    let limit = match q.get("limit") {
        None => default,
        Some(t) => match t.parse::<u32>() {
            Ok(n) if (1..=max).contains(&n) && !t.starts_with('+') => n,
            _ => {
                return Err(ApiError::invalid(
                    "limit",
                    format!("{t:?} is not an integer in 1..={max}"),
                ))
            }
        },
    };
    Ok((cursor, limit))
}

/// 503: no engine answered.
pub fn engine_unavailable(message: String) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "engine_unavailable",
        None,
        message,
    )
}
