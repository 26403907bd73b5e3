//! Engine status and counters. The engine link (shared memory) comes later;
//! until then the engine is reported as not attached and the status carries
//! the desired-state generation from the store.

use axum::extract::State;
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;

use super::error::ApiError;
use super::AppState;

/// One engine port as the engine reports it.
#[derive(Debug, Clone, Serialize)]
pub struct PortStatus {
    pub name: String,
    pub link_up: bool,
    pub speed_mbps: Option<u32>,
}

/// What the engine reports about itself (all empty while not attached).
#[derive(Debug, Clone, Serialize)]
pub struct EngineStatus {
    pub attached: bool,
    pub workers: Option<u32>,
    pub ports: Vec<PortStatus>,
    /// Generation of the tables the engine currently forwards with.
    pub table_generation: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub engine: EngineStatus,
    /// Desired-state generation: increases by one on every successful change.
    pub generation: u64,
}

pub async fn status(State(st): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let generation = st.store.generation().await?;
    Ok(Json(Status {
        engine: EngineStatus {
            attached: false,
            workers: None,
            ports: Vec::new(),
            table_generation: None,
        },
        generation,
    }))
}

#[derive(Debug, Clone, Serialize)]
pub struct Counters {
    pub attached: bool,
}

pub async fn counters() -> impl IntoResponse {
    Json(Counters { attached: false })
}
