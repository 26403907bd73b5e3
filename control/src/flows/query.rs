//! The control process's client of the engine's flow socket (`flows.sock`
//! in the runtime directory; protocol in `patronus_shm::flow_query`): one
//! connection per page.

use std::path::Path;
use std::time::Duration;

use patronus_shm::flow_query::{FlowReply, FlowRequest};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// How long a page may take (the engine gives each worker a second).
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(30);

/// Why no page came back.
#[derive(Debug, thiserror::Error)]
pub enum FlowsError {
    /// Nobody listens: no engine runs on this runtime directory, or it
    /// runs without classification.
    #[error("the engine is not serving flows (no flow socket at {path}: {source}); is it running with [classify]?")]
    NoEngine {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the engine did not answer within {0:?}")]
    Timeout(Duration),
    #[error("talking to the engine: {0}")]
    Protocol(String),
}

/// Asks the engine listening on `socket` for one page.
pub async fn query(
    socket: &Path,
    req: &FlowRequest,
    timeout: Duration,
) -> Result<FlowReply, FlowsError> {
    let stream = UnixStream::connect(socket)
        .await
        .map_err(|source| FlowsError::NoEngine {
            path: socket.display().to_string(),
            source,
        })?;
    let exchange = async {
        let (r, mut w) = stream.into_split();
        let mut line = serde_json::to_string(req).map_err(|e| e.to_string())?;
        line.push('\n');
        w.write_all(line.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut reply = String::new();
        BufReader::new(r)
            .read_line(&mut reply)
            .await
            .map_err(|e| e.to_string())?;
        if reply.is_empty() {
            return Err("the engine closed the connection".to_string());
        }
        serde_json::from_str::<FlowReply>(&reply).map_err(|e| format!("bad reply: {e}"))
    };
    match tokio::time::timeout(timeout, exchange).await {
        Err(_) => Err(FlowsError::Timeout(timeout)),
        Ok(r) => r.map_err(FlowsError::Protocol),
    }
}
