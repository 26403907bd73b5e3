//! Handlers for organizations (tenants): list, create, get, delete.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;

use super::error::ApiError;
use super::extract::JsonBody;
use super::{AppState, List};
use crate::model::OrgSpec;

pub async fn list(State(st): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(List::new(st.store.list_orgs().await?)))
}

pub async fn create(
    State(st): State<AppState>,
    JsonBody(spec): JsonBody<OrgSpec>,
) -> Result<impl IntoResponse, ApiError> {
    let org = st.store.create_org(spec).await?;
    let location = format!("/api/v1/orgs/{}", org.name);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(org),
    ))
}

pub async fn get(
    State(st): State<AppState>,
    Path(org): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(st.store.get_org(org).await?))
}

pub async fn delete(
    State(st): State<AppState>,
    Path(org): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    st.store.delete_org(org).await?;
    Ok(StatusCode::NO_CONTENT)
}
