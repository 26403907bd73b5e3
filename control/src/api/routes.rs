//! Handlers for static routes, on `/orgs/{org}/routes[/{id}]` and the
//! default organization's `/routes[/{id}]`. `PUT` on the collection replaces
//! the whole route set atomically; `POST .../routes/bulk` adds and deletes
//! many routes in one transaction; `GET` on the collection pages with
//! `?limit=N&offset=M`.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;

use super::error::ApiError;
use super::extract::{JsonBody, Scope};
use super::{AppState, List};
use crate::model::{BulkResult, BulkRoutesSpec, RouteSetSpec, RouteSpec};
use crate::store::Page;

/// Largest page a list returns.
pub const MAX_PAGE: u64 = 1_000_000;

/// `?limit=N&offset=M` (both optional; no limit: everything from `offset`).
fn page(q: &HashMap<String, String>) -> Result<Option<Page>, ApiError> {
    let num = |name: &str, min: u64, max: u64| -> Result<Option<u64>, ApiError> {
        q.get(name)
            .map(|t| match t.parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) && !t.starts_with('+') => Ok(n),
                _ => Err(ApiError::invalid(
                    name,
                    format!("{t:?} is not an integer in {min}..={max}"),
                )),
            })
            .transpose()
    };
    if let Some(other) = q.keys().find(|k| !matches!(k.as_str(), "limit" | "offset")) {
        return Err(ApiError::invalid(
            other.as_str(),
            "unknown query parameter (expected limit, offset)",
        ));
    }
    let limit = num("limit", 1, MAX_PAGE)?;
    let offset = num("offset", 0, i64::MAX as u64)?;
    Ok(match (limit, offset) {
        (None, None) => None,
        (limit, offset) => Some(Page {
            limit: limit.unwrap_or(i64::MAX as u64),
            offset: offset.unwrap_or(0),
        }),
    })
}

pub async fn list(
    State(st): State<AppState>,
    scope: Scope,
    Query(q): Query<HashMap<String, String>>,
) -> Result<impl IntoResponse, ApiError> {
    let page = page(&q)?;
    let items = st.store.list_routes_page(scope.org, page).await?;
    let mut list = List::new(items);
    if let Some(p) = page {
        if list.items.len() as u64 == p.limit {
            list.next_offset = Some(p.offset + p.limit);
        }
    }
    Ok(Json(list))
}

pub async fn get(State(st): State<AppState>, scope: Scope) -> Result<impl IntoResponse, ApiError> {
    let id = scope.id()?;
    Ok(Json(st.store.get_route(scope.org, id).await?))
}

pub async fn create(
    State(st): State<AppState>,
    scope: Scope,
    JsonBody(spec): JsonBody<RouteSpec>,
) -> Result<impl IntoResponse, ApiError> {
    let def = spec.validate()?;
    let r = st.store.create_route(scope.org, def).await?;
    let location = format!("/api/v1/orgs/{}/routes/{}", r.org, r.id);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(r)))
}

pub async fn replace(
    State(st): State<AppState>,
    scope: Scope,
    JsonBody(spec): JsonBody<RouteSpec>,
) -> Result<impl IntoResponse, ApiError> {
    let id = scope.id()?;
    let def = spec.validate()?;
    Ok(Json(st.store.replace_route(scope.org, id, def).await?))
}

pub async fn replace_all(
    State(st): State<AppState>,
    scope: Scope,
    JsonBody(set): JsonBody<RouteSetSpec>,
) -> Result<impl IntoResponse, ApiError> {
    let defs = set
        .routes
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            spec.validate()
                .map_err(|e| e.nested(&format!("routes[{i}].")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(List::new(
        st.store.replace_all_routes(scope.org, defs).await?,
    )))
}

pub async fn delete(
    State(st): State<AppState>,
    scope: Scope,
) -> Result<impl IntoResponse, ApiError> {
    let id = scope.id()?;
    st.store.delete_route(scope.org, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Adds and deletes many routes at once (deletions first), all or nothing;
/// answers with counts, not the routes.
pub async fn bulk(
    State(st): State<AppState>,
    scope: Scope,
    JsonBody(spec): JsonBody<BulkRoutesSpec>,
) -> Result<impl IntoResponse, ApiError> {
    let req = spec.validate()?;
    drop(spec);
    let o = st.store.bulk_routes(scope.org, req).await?;
    Ok(Json(BulkResult {
        added: o.added,
        deleted: o.deleted,
        generation: o.generation,
    }))
}
