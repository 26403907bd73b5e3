//! Handlers for the model registry on `/models`: list, upload (the raw
//! model file as `application/octet-stream`, optional `?name=`), show,
//! delete, promote, roll back, deactivate. Uploading a file whose SHA-256
//! is already registered is a 409 naming the existing id.

use std::collections::HashMap;

use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;

use super::error::ApiError;
use super::extract::typed_body;
use super::{AppState, List};
use crate::models::model::validate_upload;

/// A raw request body sent as `application/octet-stream`.
#[derive(Debug)]
pub struct OctetBody(pub Vec<u8>);

impl<S: Send + Sync> FromRequest<S> for OctetBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = typed_body(
            req,
            state,
            |ct| {
                let mime = ct.split(';').next().unwrap_or("").trim();
                mime.eq_ignore_ascii_case("application/octet-stream")
            },
            "expected Content-Type: application/octet-stream (the model file's bytes)",
        )
        .await?;
        Ok(OctetBody(bytes.to_vec()))
    }
}

fn model_id(text: &str) -> Result<i64, ApiError> {
    match text.parse::<i64>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(ApiError::invalid(
            "id",
            format!("{text:?} is not a model id (a positive integer)"),
        )),
    }
}

pub async fn list(State(st): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(List::new(st.store.list_models().await?)))
}

pub async fn upload(
    State(st): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    OctetBody(bytes): OctetBody,
) -> Result<impl IntoResponse, ApiError> {
    if let Some(k) = query.keys().find(|k| k.as_str() != "name") {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "unknown_field",
            Some(k.clone()),
            format!("unknown query parameter {k:?} (only `name`)"),
        ));
    }
    let name = query.get("name").cloned();
    // Parsing a large file takes a while: off the async workers.
    let up = tokio::task::spawn_blocking(move || validate_upload(name, bytes))
        .await
        .map_err(|_| ApiError::from(crate::Error::Storage("model validation failed".into())))??;
    let m = st.store.upload_model(up).await?;
    let location = format!("/api/v1/models/{}", m.id);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(m)))
}

pub async fn get(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(st.store.get_model(model_id(&id)?).await?))
}

pub async fn delete(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    st.store.delete_model(model_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn promote(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(st.store.promote_model(model_id(&id)?).await?))
}

pub async fn rollback(State(st): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(st.store.rollback_model().await?))
}

pub async fn deactivate(State(st): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(st.store.deactivate_model().await?))
}
