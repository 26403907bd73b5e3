//! Engine status and counters, read from the engine view (shared memory)
//! at each request. Without an engine (none configured, or no live worker)
//! the status reports `attached: false` with null / empty fields and the
//! counters only `{"attached": false}`; the status always carries the
//! desired-state generation from the store.

use axum::extract::State;
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;

use super::error::ApiError;
use super::AppState;
use crate::metrics::{EngineSnapshot, PortCounters, WorkerSnapshot};

/// One engine port, summed over the workers' queues.
#[derive(Debug, Clone, Serialize)]
pub struct PortStatus {
    pub name: String,
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub rx_missed: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
}

impl From<&PortCounters> for PortStatus {
    fn from(p: &PortCounters) -> Self {
        PortStatus {
            name: p.name.clone(),
            rx_packets: p.rx_packets,
            rx_bytes: p.rx_bytes,
            tx_packets: p.tx_packets,
            tx_bytes: p.tx_bytes,
            rx_missed: p.rx_missed,
            rx_errors: p.rx_errors,
            tx_errors: p.tx_errors,
        }
    }
}

/// One worker thread.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerStatus {
    pub index: u32,
    /// Table generation the worker forwards with.
    pub acked_generation: u64,
    /// Beat recently.
    pub live: bool,
    pub busy_polls: u64,
    pub idle_polls: u64,
    pub rx_packets: u64,
    pub tx_packets: u64,
}

impl From<&WorkerSnapshot> for WorkerStatus {
    fn from(w: &WorkerSnapshot) -> Self {
        WorkerStatus {
            index: w.index,
            acked_generation: w.acked_generation,
            live: w.live,
            busy_polls: w.busy_polls,
            idle_polls: w.idle_polls,
            rx_packets: w.rx_packets,
            tx_packets: w.tx_packets,
        }
    }
}

/// What the engine reports about itself (null / empty while detached).
#[derive(Debug, Clone, Serialize)]
pub struct EngineStatus {
    pub attached: bool,
    pub workers: Option<Vec<WorkerStatus>>,
    pub ports: Vec<PortStatus>,
    /// Generation of the tables last published to the engine.
    pub table_generation: Option<u64>,
    /// Generation every live worker has switched to.
    pub table_generation_acked: Option<u64>,
}

impl EngineStatus {
    fn of(snapshot: Option<&EngineSnapshot>) -> Self {
        match snapshot {
            None => EngineStatus {
                attached: false,
                workers: None,
                ports: Vec::new(),
                table_generation: None,
                table_generation_acked: None,
            },
            Some(s) => EngineStatus {
                attached: true,
                workers: Some(s.workers.iter().map(WorkerStatus::from).collect()),
                ports: s.ports.iter().map(PortStatus::from).collect(),
                table_generation: Some(s.table_generation),
                table_generation_acked: Some(s.table_generation_acked),
            },
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub engine: EngineStatus,
    /// Desired-state generation: increases by one on every successful change.
    pub generation: u64,
}

/// The engine's snapshot, read off the async executor (shared-memory reads
/// are quick but may open the counters file).
async fn snapshot(st: &AppState) -> Option<EngineSnapshot> {
    let engine = st.engine.clone()?;
    tokio::task::spawn_blocking(move || engine.snapshot())
        .await
        .ok()
        .flatten()
}

pub async fn status(State(st): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let generation = st.store.generation().await?;
    Ok(Json(Status {
        engine: EngineStatus::of(snapshot(&st).await.as_ref()),
        generation,
    }))
}

/// Engine counters; only `attached` while detached.
#[derive(Debug, Clone, Serialize)]
pub struct Counters {
    pub attached: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<PortStatus>>,
    /// Drops by reason (every reason, zeros included).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drops: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workers: Option<Vec<WorkerStatus>>,
}

pub async fn counters(State(st): State<AppState>) -> impl IntoResponse {
    let Some(s) = snapshot(&st).await else {
        return Json(Counters {
            attached: false,
            ports: None,
            drops: None,
            workers: None,
        });
    };
    let mut drops = serde_json::Map::new();
    for (reason, n) in &s.drops {
        let total = drops.get(reason).and_then(|v| v.as_u64()).unwrap_or(0);
        drops.insert(reason.clone(), total.saturating_add(*n).into());
    }
    Json(Counters {
        attached: true,
        ports: Some(s.ports.iter().map(PortStatus::from).collect()),
        drops: Some(drops),
        workers: Some(s.workers.iter().map(WorkerStatus::from).collect()),
    })
}
