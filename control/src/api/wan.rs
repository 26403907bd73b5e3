//! Handlers for WAN paths and steering on `/wan`: path quality and
//! traffic, and per-policy path choice with compression totals, both from
//! the engine's `wan.` counters in shared memory (see [`crate::wan`]). An
//! engine without `[wan]` exports none: empty lists.

use axum::extract::State;
use axum::Json;

use super::engine_pages::engine_unavailable;
use super::error::ApiError;
use super::AppState;
use crate::metrics::EngineSnapshot;
use crate::wan::view::{self, WanPaths, WanPolicies};

/// The engine's snapshot, or 503 as the other engine-backed endpoints do.
async fn snapshot(st: &AppState) -> Result<EngineSnapshot, ApiError> {
    let Some(engine) = st.engine.clone() else {
        return Err(engine_unavailable(
            "this control process has no engine link".to_string(),
        ));
    };
    tokio::task::spawn_blocking(move || engine.snapshot())
        .await
        .ok()
        .flatten()
        .ok_or_else(|| engine_unavailable("no engine is attached (no live worker)".to_string()))
}

pub async fn paths(State(st): State<AppState>) -> Result<Json<WanPaths>, ApiError> {
    Ok(Json(view::paths(&snapshot(&st).await?.wan)))
}

pub async fn policies(State(st): State<AppState>) -> Result<Json<WanPolicies>, ApiError> {
    Ok(Json(view::policies(&snapshot(&st).await?.wan)))
}
