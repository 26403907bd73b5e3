//! Handlers for WireGuard on `/wg/tunnels[/{tunnel}[/peers[/{id}]]]`:
//! tunnels by name, their peers by id. Responses carry public keys only;
//! a peer carries the engine's counters for it, and a tunnel its
//! tunnel-level counters (drops no peer can be blamed for, cookie
//! replies), when an engine is attached.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;

use super::error::ApiError;
use super::extract::JsonBody;
use super::{AppState, List};
use crate::wg::counters::{peer_counters, peer_label, tunnel_counters};
use crate::wg::model::{
    validate_tunnel_name, Peer, PeerSpec, Tunnel, TunnelSpec, TunnelUpdateSpec, TunnelView,
};

fn tunnel_name(name: &str) -> Result<(), ApiError> {
    // A name that cannot exist is a 404, like any tunnel that does not.
    validate_tunnel_name("tunnel", name).map_err(|_| {
        ApiError::from(crate::Error::not_found(
            "tunnel",
            format!("no tunnel named {name:?}"),
        ))
    })
}

fn peer_id(text: &str) -> Result<i64, ApiError> {
    match text.parse::<i64>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(ApiError::invalid(
            "id",
            format!("{text:?} is not a resource id (a positive integer)"),
        )),
    }
}

/// Adds the engine's counters to `peers` when it exports any for them.
fn with_counters(st: &AppState, mut peers: Vec<Peer>) -> Vec<Peer> {
    let Some(snap) = st.engine.as_ref().and_then(|e| e.snapshot()) else {
        return peers;
    };
    for p in &mut peers {
        p.counters = peer_counters(&snap.wg, &p.tunnel, &peer_label(&p.public_key));
    }
    peers
}

/// `tunnels` with the engine's tunnel-level counters when it exports any.
fn with_tunnel_counters(st: &AppState, tunnels: Vec<Tunnel>) -> Vec<TunnelView> {
    let snap = st.engine.as_ref().and_then(|e| e.snapshot());
    tunnels
        .into_iter()
        .map(|tunnel| TunnelView {
            counters: snap
                .as_ref()
                .and_then(|s| tunnel_counters(&s.wg, &tunnel.name)),
            tunnel,
        })
        .collect()
}

pub async fn list_tunnels(State(st): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let tunnels = st.store.list_tunnels().await?;
    Ok(Json(List::new(with_tunnel_counters(&st, tunnels))))
}

pub async fn create_tunnel(
    State(st): State<AppState>,
    JsonBody(spec): JsonBody<TunnelSpec>,
) -> Result<impl IntoResponse, ApiError> {
    let def = spec.validate()?;
    let t = st.store.create_tunnel(def).await?;
    let location = format!("/api/v1/wg/tunnels/{}", t.name);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(t)))
}

pub async fn get_tunnel(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    tunnel_name(&name)?;
    let t = st.store.get_tunnel(name).await?;
    Ok(Json(with_tunnel_counters(&st, vec![t]).remove(0)))
}

pub async fn update_tunnel(
    State(st): State<AppState>,
    Path(name): Path<String>,
    JsonBody(spec): JsonBody<TunnelUpdateSpec>,
) -> Result<impl IntoResponse, ApiError> {
    tunnel_name(&name)?;
    let up = spec.validate()?;
    Ok(Json(st.store.update_tunnel(name, up).await?))
}

pub async fn delete_tunnel(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    tunnel_name(&name)?;
    st.store.delete_tunnel(name).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_peers(
    State(st): State<AppState>,
    Path(tunnel): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    tunnel_name(&tunnel)?;
    let peers = st.store.list_peers(tunnel).await?;
    Ok(Json(List::new(with_counters(&st, peers))))
}

pub async fn create_peer(
    State(st): State<AppState>,
    Path(tunnel): Path<String>,
    JsonBody(spec): JsonBody<PeerSpec>,
) -> Result<impl IntoResponse, ApiError> {
    tunnel_name(&tunnel)?;
    let def = spec.validate()?;
    let p = st.store.create_peer(tunnel, def).await?;
    let location = format!("/api/v1/wg/tunnels/{}/peers/{}", p.tunnel, p.id);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(p)))
}

pub async fn get_peer(
    State(st): State<AppState>,
    Path((tunnel, id)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    tunnel_name(&tunnel)?;
    let p = st.store.get_peer(tunnel, peer_id(&id)?).await?;
    Ok(Json(with_counters(&st, vec![p]).remove(0)))
}

pub async fn replace_peer(
    State(st): State<AppState>,
    Path((tunnel, id)): Path<(String, String)>,
    JsonBody(spec): JsonBody<PeerSpec>,
) -> Result<impl IntoResponse, ApiError> {
    tunnel_name(&tunnel)?;
    let id = peer_id(&id)?;
    let def = spec.validate()?;
    Ok(Json(st.store.replace_peer(tunnel, id, def).await?))
}

pub async fn delete_peer(
    State(st): State<AppState>,
    Path((tunnel, id)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    tunnel_name(&tunnel)?;
    st.store.delete_peer(tunnel, peer_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
