//! Accepts TCP connections on the BGP port and hands them to the instance,
//! which routes each to its neighbour's session (or closes it).

use std::io;
use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::messages::{Connection, InstanceMsg};

/// Binds `addr` (an IPv6 wildcard accepts IPv4 too).
pub async fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Accepts until the instance is gone.
pub async fn run(listener: TcpListener, instance: mpsc::Sender<InstanceMsg>) {
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "BGP: accept failed");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let local = stream.local_addr().ok().map(|a| a.ip().to_canonical());
        let conn = Connection {
            stream: Box::new(stream),
            remote: remote.ip().to_canonical(),
            local,
        };
        if instance.send(InstanceMsg::Incoming(conn)).await.is_err() {
            return;
        }
    }
}
