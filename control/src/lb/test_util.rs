//! Test helpers: free loopback ports, a real HTTP server (`python3 -m
//! http.server` on 127.0.0.1) that is killed on drop, and a hang guard.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// Generous limit on anything a test waits for; only catches hangs.
pub const HANG_GUARD: Duration = Duration::from_secs(30);

/// Awaits `fut`, panicking with `what` if it hangs.
pub async fn guard<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(HANG_GUARD, fut).await {
        Ok(v) => v,
        Err(_) => panic!("hang guard: {what} did not finish within {HANG_GUARD:?}"),
    }
}

/// A loopback address whose port was free a moment ago (bound to 0, closed).
pub fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local_addr")
}

/// A directory of files served over HTTP, removed on drop.
pub struct WebRoot(pub PathBuf);

impl WebRoot {
    /// A fresh directory holding `health` ("ok").
    pub fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "patronus-lb-health-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create web root");
        std::fs::write(dir.join("health"), "ok\n").expect("write health file");
        WebRoot(dir)
    }
}

impl Drop for WebRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `python3 -m http.server` on `addr`, killed on drop.
pub struct PyHttp {
    child: Child,
    pub addr: SocketAddr,
}

impl PyHttp {
    /// Starts the server and waits until it accepts connections.
    pub async fn start(root: &WebRoot, addr: SocketAddr) -> Self {
        let child = Command::new("/usr/bin/python3")
            .args(["-m", "http.server", "--bind", "127.0.0.1", "--directory"])
            .arg(&root.0)
            .arg(addr.port().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn python3 -m http.server");
        let mut server = PyHttp { child, addr };
        guard("python http.server start", server.wait_ready()).await;
        server
    }

    async fn wait_ready(&mut self) {
        loop {
            if tokio::net::TcpStream::connect(self.addr).await.is_ok() {
                return;
            }
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                panic!("python http.server on {} exited: {status}", self.addr);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Kills the server and waits for it to exit (its port is closed after).
    pub fn stop(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PyHttp {
    fn drop(&mut self) {
        self.kill();
    }
}
