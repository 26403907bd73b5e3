//! Handlers for static routes, on `/orgs/{org}/routes[/{id}]` and the
//! default organization's `/routes[/{id}]`. `PUT` on the collection replaces
//! the whole route set atomically.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;

use super::error::ApiError;
use super::extract::{JsonBody, Scope};
use super::{AppState, List};
use crate::model::{RouteSetSpec, RouteSpec};

pub async fn list(State(st): State<AppState>, scope: Scope) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(List::new(st.store.list_routes(scope.org).await?)))
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
