//! Handlers for the engine's flow classification on `/flows`: the live
//! flows, paged and filtered (through the engine's flow socket), and a
//! summary per class with the classification counters (from the engine's
//! shared-memory counters).

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use patronus_shm::flow_query::{
    FlowErrorCode, FlowRecord, FlowReply, FlowRequest, FLOW_CLASSES, MAX_FLOW_LIMIT,
};
use serde::Serialize;

use super::engine_pages::{engine_unavailable, ipv4_param, only_params, page_params};
use super::error::ApiError;
use super::AppState;
use crate::engine_query::{ask, QUERY_TIMEOUT};
use crate::flows::summary::{summary as classify_summary, FlowSummary};

/// Flows per page when `limit` is absent.
pub const DEFAULT_FLOW_LIMIT: u32 = 100;

/// The class filter's extra value: flows still being classified.
pub const PENDING: &str = "pending";

/// A page of flows.
#[derive(Debug, Serialize)]
pub struct FlowPage {
    pub items: Vec<FlowRecord>,
    /// Pass as `cursor` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// Workers the engine runs.
    pub workers: u32,
}

/// `?class=C&host=ADDR&cursor=C&limit=N`.
pub fn flow_request(q: &HashMap<String, String>) -> Result<FlowRequest, ApiError> {
    only_params(q, &["class", "host", "cursor", "limit"])?;
    let class = match q.get("class") {
        None => None,
        Some(c) if FLOW_CLASSES.contains(&c.as_str()) || c == PENDING => Some(c.clone()),
        Some(c) => {
            return Err(ApiError::invalid(
                "class",
                format!(
                    "{c:?} is not a flow class (one of {}, {PENDING})",
                    FLOW_CLASSES.join(", ")
                ),
            ))
        }
    };
    let host = ipv4_param(q, "host")?;
    let (cursor, limit) = page_params(q, DEFAULT_FLOW_LIMIT, MAX_FLOW_LIMIT)?;
    Ok(FlowRequest {
        class,
        host,
        cursor,
        limit,
    })
}

fn disabled(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "classify_disabled", None, message)
}

pub async fn list(
    State(st): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<impl IntoResponse, ApiError> {
    let req = flow_request(&q)?;
    let Some(socket) = st.engine.as_ref().and_then(|e| e.flows_socket()) else {
        return Err(engine_unavailable(
            "this control process has no engine link".to_string(),
        ));
    };
    let reply: FlowReply = ask(&socket, &req, QUERY_TIMEOUT).await.map_err(|e| {
        engine_unavailable(format!(
            "{e} (is the engine running with [classify] and [control]?)"
        ))
    })?;
    match reply {
        FlowReply::Page {
            flows,
            next_cursor,
            workers,
        } => Ok(Json(FlowPage {
            items: flows,
            next_cursor,
            workers,
        })),
        FlowReply::Error { code, message } => Err(match code {
            FlowErrorCode::ClassifyDisabled => disabled(message),
            // What we validated passed; the engine refuses a cursor past
            // its workers or slots.
            FlowErrorCode::BadRequest => ApiError::invalid("cursor", message),
            FlowErrorCode::WorkerTimeout => engine_unavailable(message),
        }),
    }
}

pub async fn summary(State(st): State<AppState>) -> Result<Json<FlowSummary>, ApiError> {
    let Some(engine) = st.engine.clone() else {
        return Err(engine_unavailable(
            "this control process has no engine link".to_string(),
        ));
    };
    let snap = tokio::task::spawn_blocking(move || engine.snapshot())
        .await
        .ok()
        .flatten()
        .ok_or_else(|| engine_unavailable("no engine is attached (no live worker)".to_string()))?;
    classify_summary(&snap.classify).map(Json).ok_or_else(|| {
        disabled("the engine exports no classification counters (it runs without [classify])")
    })
}
