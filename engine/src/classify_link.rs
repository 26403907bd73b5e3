//! The link thread's side of classification: the flow query server on
//! `flows.sock` (protocol in `patronus_shm::flow_query`), which pages
//! through the workers' flow tables by asking each worker in turn
//! ([`ClassifySlot::ask`]), and model adoption — a model file (from the
//! configuration, or pushed by the control process as `model.bin`) parsed
//! and checked here, off the packet path, then published to the workers.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use patronus_shm::flow_query::{
    decode_cursor, encode_cursor, FlowErrorCode, FlowReply, FlowRequest, FLOW_CLASSES,
    MAX_FLOW_LIMIT,
};

use crate::classify::infer::Model;
use crate::classify::list::FlowFilter;
use crate::classify_slot::{ClassifySlot, FlowQuery};

/// How long one worker may take to answer a flow query.
pub const WORKER_ANSWER_TIMEOUT: Duration = Duration::from_secs(1);

/// Answers one page request.
pub fn answer(
    slot: &ClassifySlot,
    workers: usize,
    req: &FlowRequest,
    timeout: Duration,
) -> FlowReply {
    let bad = |message: String| FlowReply::Error {
        code: FlowErrorCode::BadRequest,
        message,
    };
    if req.limit == 0 || req.limit > MAX_FLOW_LIMIT {
        return bad(format!(
            "limit {} is not in 1..={MAX_FLOW_LIMIT}",
            req.limit
        ));
    }
    if let Some(c) = req.class.as_deref() {
        if c != "pending" && !FLOW_CLASSES.contains(&c) {
            return bad(format!(
                "class {c:?} is not one of {} or \"pending\"",
                FLOW_CLASSES.join(", ")
            ));
        }
    }
    let (mut worker, mut cursor) = match req.cursor.as_deref() {
        None => (0, 0),
        Some(c) => match decode_cursor(c) {
            Some(wc) => wc,
            None => return bad(format!("cursor {c:?} is not one this engine gave out")),
        },
    };
    if !slot.enabled {
        return FlowReply::Error {
            code: FlowErrorCode::ClassifyDisabled,
            message: "the engine runs no classification (no [classify] section)".into(),
        };
    }
    let filter = FlowFilter {
        class: req.class.clone(),
        host: req.host,
    };
    let limit = req.limit as usize;
    let mut flows = Vec::new();
    while worker < workers {
        let q = FlowQuery {
            filter: filter.clone(),
            cursor,
            limit: limit - flows.len(),
        };
        let Some(a) = slot.ask(worker, q, timeout) else {
            return FlowReply::Error {
                code: FlowErrorCode::WorkerTimeout,
                message: format!("worker {worker} did not answer within {timeout:?}"),
            };
        };
        flows.extend(a.flows);
        match a.next {
            // A worker that made no progress would loop forever.
            Some(n) if n > cursor => cursor = n,
            _ => {
                worker += 1;
                cursor = 0;
            }
        }
        if flows.len() >= limit {
            break;
        }
    }
    FlowReply::Page {
        flows,
        next_cursor: (worker < workers).then(|| encode_cursor(worker, cursor)),
        workers: workers as u32,
    }
}

/// Starts the flow query server on `dir/flows.sock`.
pub fn spawn_flow_server(
    dir: &Path,
    slot: Arc<ClassifySlot>,
    workers: usize,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    crate::line_server::spawn(
        dir,
        patronus_shm::runtime_dir::FLOWS_SOCKET,
        "patronus-flowq",
        stop,
        move |line| {
            let reply = match serde_json::from_str::<FlowRequest>(line) {
                Ok(req) => answer(&slot, workers, &req, WORKER_ANSWER_TIMEOUT),
                Err(e) => FlowReply::Error {
                    code: FlowErrorCode::BadRequest,
                    message: format!("request: {e}"),
                },
            };
            serde_json::to_string(&reply).unwrap_or_default()
        },
    )
}

/// Reads and checks the model file at `path`.
pub fn load_model_file(path: &Path) -> Result<Model, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Model::from_bytes(&bytes, 0).map_err(|e| format!("{}: {e}", path.display()))
}

/// Adopts a pushed model (`bytes` empty: none) numbered `generation`;
/// a model that does not parse is refused and the running one kept.
pub fn adopt_pushed(slot: &ClassifySlot, generation: u64, bytes: &[u8]) -> Result<String, String> {
    if bytes.is_empty() {
        let g = slot.publish(None);
        return Ok(format!("no model (signatures only), plan {g}"));
    }
    let m = Model::from_bytes(bytes, generation)?;
    let desc = format!("model {} (push {generation})", m.sha256);
    slot.publish(Some(m));
    Ok(desc)
}
