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
    Model::from_bytes(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// Adopts a pushed model numbered `generation`; a model that does not
/// parse (or does not take this engine's features) is refused and the
/// running one kept. An empty push means the control process manages no
/// model: the engine runs its configured one (`configured`, the
/// `[classify] model` file), or none (signatures only) — as NAT and
/// WireGuard fall back to the configuration file.
pub fn adopt_pushed(
    slot: &ClassifySlot,
    generation: u64,
    bytes: &[u8],
    configured: Option<&Path>,
) -> Result<String, String> {
    if bytes.is_empty() {
        return Ok(match configured {
            Some(path) => {
                let m = load_model_file(path)?;
                let desc = format!("the configured model {} ({})", path.display(), m.sha256);
                slot.publish(generation, Some(m));
                desc
            }
            None => {
                slot.publish(generation, None);
                "no model (signatures only)".to_string()
            }
        });
    }
    let m = Model::from_bytes(bytes)?;
    let desc = format!("model {} (push {generation})", m.sha256);
    slot.publish(generation, Some(m));
    Ok(desc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn model_path() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/flow-mlp.bin")
    }

    fn m_sha(bytes: &[u8]) -> String {
        patronus_ml::model::sha256_hex(bytes).unwrap_or_default()
    }

    #[test]
    fn pushed_models_are_checked_and_an_empty_push_falls_back_to_the_configured_one() {
        let slot = ClassifySlot::new(true, None, 2);
        let bytes = std::fs::read(model_path()).unwrap();
        let what = adopt_pushed(&slot, 7, &bytes, None).unwrap();
        let (g, push, m) = slot.load();
        let m = m.expect("a model");
        assert_eq!(push, 7);
        assert!(what.contains(&m.sha256), "{what}");
        // Garbage and a cut file are refused; the running model stays.
        for bad in [&b"not a model"[..], &bytes[..bytes.len() / 2]] {
            assert!(adopt_pushed(&slot, 8, bad, None).is_err());
            assert_eq!(slot.load().0, g);
        }
        // Empty: the configured model, or none.
        adopt_pushed(&slot, 9, &[], Some(&model_path())).unwrap();
        let (_, push, m) = slot.load();
        assert_eq!((push, m.unwrap().sha256.clone()), (9, m_sha(&bytes)));
        adopt_pushed(&slot, 10, &[], None).unwrap();
        assert_eq!((slot.load().1, slot.load().2.is_none()), (10, true));
        assert!(adopt_pushed(&slot, 11, &[], Some(Path::new("/nonexistent"))).is_err());
    }

    #[test]
    fn bad_requests_and_a_disabled_engine_get_clear_errors() {
        let req = |class: Option<&str>, cursor: Option<&str>, limit| FlowRequest {
            class: class.map(str::to_string),
            host: None,
            cursor: cursor.map(str::to_string),
            limit,
        };
        let on = ClassifySlot::new(true, None, 1);
        let t = Duration::from_millis(10);
        for (r, want) in [
            (req(None, None, 0), "limit 0"),
            (req(None, None, MAX_FLOW_LIMIT + 1), "limit"),
            (req(Some("gopher"), None, 5), "class \"gopher\""),
            (req(None, Some("x"), 5), "cursor"),
        ] {
            match answer(&on, 1, &r, t) {
                FlowReply::Error {
                    code: FlowErrorCode::BadRequest,
                    message,
                } => assert!(message.contains(want), "{message}"),
                other => panic!("{other:?}"),
            }
        }
        // Nobody answers for worker 0: a timeout, not a hang.
        assert!(matches!(
            answer(&on, 1, &req(Some("tls"), None, 5), t),
            FlowReply::Error {
                code: FlowErrorCode::WorkerTimeout,
                ..
            }
        ));
        let off = ClassifySlot::new(false, None, 1);
        assert!(matches!(
            answer(&off, 1, &req(None, None, 5), t),
            FlowReply::Error {
                code: FlowErrorCode::ClassifyDisabled,
                ..
            }
        ));
    }
}
