//! Handlers for the load balancer on `/lb/vips[/{name}[/backends[/{address}:{port}]]]`:
//! VIPs by name, their backends by endpoint. A VIP's backends carry their
//! health and the engine's counters (zeros when the engine does not
//! answer on `lb.sock`).

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;

use super::error::ApiError;
use super::extract::JsonBody;
use super::AppState;
use crate::lb::counters::{query, BackendCounters, EngineLbCounters, LB_QUERY_TIMEOUT};
use crate::lb::model::{
    parse_backend_key, validate_vip_name, Backend, BackendPatch, BackendSpec, CheckDef, Vip,
    VipSpec, VipUpdateSpec,
};

/// A backend as the API returns it.
#[derive(Debug, Serialize)]
pub struct BackendView {
    pub id: i64,
    pub address: String,
    pub port: u16,
    pub weight: u16,
    /// `up`, `down`, or `unchecked` (no health check: taken as up).
    pub health: &'static str,
    #[serde(flatten)]
    pub counters: BackendCounters,
}

/// A VIP as the API returns it.
#[derive(Debug, Serialize)]
pub struct VipView {
    pub id: i64,
    pub name: String,
    pub address: String,
    pub port: u16,
    pub protocol: &'static str,
    pub mode: &'static str,
    pub table_size: u32,
    pub health_check: Option<CheckDef>,
    pub backends: Vec<BackendView>,
}

#[derive(Debug, Serialize)]
struct VipList {
    vips: Vec<VipView>,
}

fn health(up: Option<bool>) -> &'static str {
    match up {
        None => "unchecked",
        Some(true) => "up",
        Some(false) => "down",
    }
}

fn backend_view(vip_id: i64, b: &Backend, c: Option<&EngineLbCounters>) -> BackendView {
    BackendView {
        id: b.id,
        address: b.def.address.to_string(),
        port: b.def.port,
        weight: b.def.weight,
        health: health(b.up),
        counters: c.map(|c| c.of(vip_id, b)).unwrap_or_default(),
    }
}

fn vip_view(v: &Vip, c: Option<&EngineLbCounters>) -> VipView {
    VipView {
        id: v.id,
        name: v.def.name.clone(),
        address: v.def.address.to_string(),
        port: v.def.port,
        protocol: v.def.protocol.name(),
        mode: v.def.mode.name(),
        table_size: v.def.table_size,
        health_check: v.def.health_check.clone(),
        backends: v
            .backends
            .iter()
            .map(|b| backend_view(v.id, b, c))
            .collect(),
    }
}

/// The engine's counters, when it answers.
async fn counters(st: &AppState) -> Option<EngineLbCounters> {
    let socket = st.engine.as_ref()?.lb_socket()?;
    query(&socket, LB_QUERY_TIMEOUT).await
}

fn vip_name(name: &str) -> Result<(), ApiError> {
    // A name that cannot exist is a 404, like any VIP that does not.
    validate_vip_name("vip", name).map_err(|_| {
        ApiError::from(crate::Error::not_found(
            "vip",
            format!("no VIP named {name:?}"),
        ))
    })
}

fn location(name: &str) -> String {
    format!("/api/v1/lb/vips/{name}")
}

pub async fn list_vips(State(st): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let vips = st.store.list_vips().await?;
    let c = if vips.is_empty() {
        None
    } else {
        counters(&st).await
    };
    Ok(Json(VipList {
        vips: vips.iter().map(|v| vip_view(v, c.as_ref())).collect(),
    }))
}

pub async fn create_vip(
    State(st): State<AppState>,
    JsonBody(spec): JsonBody<VipSpec>,
) -> Result<impl IntoResponse, ApiError> {
    let (def, backends) = spec.validate()?;
    let v = st.store.create_vip(def, backends).await?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location(&v.def.name))],
        Json(vip_view(&v, None)),
    ))
}

pub async fn get_vip(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    vip_name(&name)?;
    let v = st.store.get_vip(name).await?;
    let c = counters(&st).await;
    Ok(Json(vip_view(&v, c.as_ref())))
}

pub async fn update_vip(
    State(st): State<AppState>,
    Path(name): Path<String>,
    JsonBody(spec): JsonBody<VipUpdateSpec>,
) -> Result<impl IntoResponse, ApiError> {
    vip_name(&name)?;
    let def = spec.validate(&name)?;
    let v = st.store.update_vip(name, def).await?;
    Ok(Json(vip_view(&v, None)))
}

pub async fn delete_vip(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    vip_name(&name)?;
    st.store.delete_vip(name).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn add_backend(
    State(st): State<AppState>,
    Path(name): Path<String>,
    JsonBody(spec): JsonBody<BackendSpec>,
) -> Result<impl IntoResponse, ApiError> {
    vip_name(&name)?;
    // The port default and the DSR rule need the VIP's settings.
    let vip = st.store.get_vip(name.clone()).await?;
    let def = spec.validate(&vip.def)?;
    let b = st.store.add_backend(name.clone(), def).await?;
    let location = format!("{}/backends/{}", location(&name), b.def.endpoint());
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(backend_view(vip.id, &b, None)),
    ))
}

pub async fn set_backend(
    State(st): State<AppState>,
    Path((name, backend)): Path<(String, String)>,
    JsonBody(patch): JsonBody<BackendPatch>,
) -> Result<impl IntoResponse, ApiError> {
    vip_name(&name)?;
    let key = parse_backend_key(&backend)?;
    let b = st.store.set_backend_weight(name, key, patch.weight).await?;
    Ok(Json(backend_view(0, &b, None)))
}

pub async fn remove_backend(
    State(st): State<AppState>,
    Path((name, backend)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    vip_name(&name)?;
    let key = parse_backend_key(&backend)?;
    st.store.remove_backend(name, key).await?;
    Ok(StatusCode::NO_CONTENT)
}
