//! The control process's client of the engine's query sockets (`nat.sock`,
//! `flows.sock` in the runtime directory; protocols in
//! `patronus_shm::nat_query` and `patronus_shm::flow_query`): one JSON line
//! out, one JSON line back, one connection per page.

use std::path::Path;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// How long a page may take (the engine gives each worker a second).
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(30);

/// Why no reply came back.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// Nobody listens: no engine runs on this runtime directory (or, for
    /// flows, it runs without `[classify]`).
    #[error("the engine is not serving queries (no socket at {path}: {source})")]
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

/// Sends `req` to the engine listening on `socket` and reads its reply.
pub async fn ask<Req: Serialize, Rep: DeserializeOwned>(
    socket: &Path,
    req: &Req,
    timeout: Duration,
) -> Result<Rep, QueryError> {
    let stream = UnixStream::connect(socket)
        .await
        .map_err(|source| QueryError::NoEngine {
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
        serde_json::from_str::<Rep>(&reply).map_err(|e| format!("bad reply: {e}"))
    };
    match tokio::time::timeout(timeout, exchange).await {
        Err(_) => Err(QueryError::Timeout(timeout)),
        Ok(r) => r.map_err(QueryError::Protocol),
    }
}
