//! Handlers for NAT44 on `/nat`: the whole configuration (`GET`, `PUT`,
//! `DELETE`: back to the engine's own), port forwards one by one, pool
//! addresses one by one, and the engine's live sessions (paged, through
//! the engine's session socket).

use std::collections::HashMap;
use std::net::Ipv4Addr;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use patronus_shm::nat_query::{
    QueryErrorCode, SessionRecord, SessionReply, SessionRequest, MAX_LIMIT,
};
use serde::Serialize;

use super::engine_pages::{engine_unavailable, ipv4_param, only_params, page_params};
use super::error::ApiError;
use super::extract::{JsonBody, Scope};
use super::{AppState, List};
use crate::engine_query::{ask, QUERY_TIMEOUT};
use crate::nat::model::{parse_unicast, ForwardSpec, NatSpec, PoolAddressSpec};

/// Sessions per page when `limit` is absent.
pub const DEFAULT_SESSION_LIMIT: u32 = 100;

/// Ports the attached engine runs, if one is attached.
fn engine_ports(st: &AppState) -> Option<Vec<String>> {
    let snap = st.engine.as_ref()?.snapshot()?;
    Some(snap.ports.into_iter().map(|p| p.name).collect())
}

pub async fn get(State(st): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(st.store.get_nat().await?))
}

pub async fn replace(
    State(st): State<AppState>,
    JsonBody(spec): JsonBody<NatSpec>,
) -> Result<impl IntoResponse, ApiError> {
    let (settings, forwards) = spec.validate()?;
    let ports = engine_ports(&st);
    Ok(Json(st.store.put_nat(settings, forwards, ports).await?))
}

pub async fn delete(State(st): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    st.store.delete_nat().await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_forwards(State(st): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(List::new(st.store.list_nat_forwards().await?)))
}

pub async fn add_forward(
    State(st): State<AppState>,
    JsonBody(spec): JsonBody<ForwardSpec>,
) -> Result<impl IntoResponse, ApiError> {
    let def = spec.validate()?;
    let f = st.store.add_nat_forward(def).await?;
    let location = format!("/api/v1/nat/forwards/{}", f.id);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(f)))
}

pub async fn delete_forward(
    State(st): State<AppState>,
    scope: Scope,
) -> Result<impl IntoResponse, ApiError> {
    st.store.delete_nat_forward(scope.id()?).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn add_pool_address(
    State(st): State<AppState>,
    JsonBody(spec): JsonBody<PoolAddressSpec>,
) -> Result<impl IntoResponse, ApiError> {
    let a = parse_unicast("address", &spec.address)?;
    Ok((
        StatusCode::CREATED,
        Json(st.store.add_nat_pool_address(a).await?),
    ))
}

pub async fn delete_pool_address(
    State(st): State<AppState>,
    Path(address): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let a: Ipv4Addr = address
        .parse()
        .map_err(|_| ApiError::invalid("address", format!("{address:?} is not an IPv4 address")))?;
    Ok(Json(st.store.delete_nat_pool_address(a).await?))
}

/// A page of sessions.
#[derive(Debug, Serialize)]
pub struct SessionPage {
    pub items: Vec<SessionRecord>,
    /// Pass as `cursor` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// `?inside=ADDR&cursor=C&limit=N`.
fn session_request(q: &HashMap<String, String>) -> Result<SessionRequest, ApiError> {
    only_params(q, &["inside", "cursor", "limit"])?;
    let inside = ipv4_param(q, "inside")?;
    let (cursor, limit) = page_params(q, DEFAULT_SESSION_LIMIT, MAX_LIMIT)?;
    Ok(SessionRequest {
        inside,
        cursor,
        limit,
    })
}

pub async fn sessions(
    State(st): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<impl IntoResponse, ApiError> {
    let req = session_request(&q)?;
    let Some(socket) = st.engine.as_ref().and_then(|e| e.nat_socket()) else {
        return Err(engine_unavailable(
            "this control process has no engine link".to_string(),
        ));
    };
    let reply: SessionReply = ask(&socket, &req, QUERY_TIMEOUT)
        .await
        .map_err(|e| engine_unavailable(e.to_string()))?;
    match reply {
        SessionReply::Page {
            sessions,
            next_cursor,
            ..
        } => Ok(Json(SessionPage {
            items: sessions,
            next_cursor,
        })),
        SessionReply::Error { code, message } => Err(match code {
            QueryErrorCode::NatDisabled => {
                ApiError::new(StatusCode::NOT_FOUND, "nat_disabled", None, message)
            }
            QueryErrorCode::BadRequest => ApiError::invalid("cursor", message),
            QueryErrorCode::WorkerTimeout => engine_unavailable(message),
        }),
    }
}
