//! Handlers for interfaces, on `/orgs/{org}/interfaces[/{id}]` and the
//! default organization's `/interfaces[/{id}]`.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;

use super::error::ApiError;
use super::extract::{JsonBody, Scope};
use super::{AppState, List};
use crate::model::InterfaceSpec;

pub async fn list(State(st): State<AppState>, scope: Scope) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(List::new(st.store.list_interfaces(scope.org).await?)))
}

pub async fn get(State(st): State<AppState>, scope: Scope) -> Result<impl IntoResponse, ApiError> {
    let id = scope.id()?;
    Ok(Json(st.store.get_interface(scope.org, id).await?))
}

pub async fn create(
    State(st): State<AppState>,
    scope: Scope,
    JsonBody(spec): JsonBody<InterfaceSpec>,
) -> Result<impl IntoResponse, ApiError> {
    let def = spec.validate()?;
    let i = st.store.create_interface(scope.org, def).await?;
    let location = format!("/api/v1/orgs/{}/interfaces/{}", i.org, i.id);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(i)))
}

pub async fn replace(
    State(st): State<AppState>,
    scope: Scope,
    JsonBody(spec): JsonBody<InterfaceSpec>,
) -> Result<impl IntoResponse, ApiError> {
    let id = scope.id()?;
    let def = spec.validate()?;
    Ok(Json(st.store.replace_interface(scope.org, id, def).await?))
}

pub async fn delete(
    State(st): State<AppState>,
    scope: Scope,
) -> Result<impl IntoResponse, ApiError> {
    let id = scope.id()?;
    st.store.delete_interface(scope.org, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
