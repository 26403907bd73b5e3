//! A JSON-lines server on a Unix stream socket in the runtime directory
//! (the engine's query sockets: `nat.sock`, `flows.sock`): mode 0600, a
//! stale socket file replaced, one connection at a time, one reply line
//! per request line, until `stop`; the socket file is removed when it
//! ends.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the accept loop looks at the stop flag.
const ACCEPT_POLL: Duration = Duration::from_millis(20);
/// A client that sends nothing for this long is dropped (one connection
/// at a time: it must not hold the server).
const CLIENT_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Lines longer than this are not requests.
const MAX_LINE: u64 = 1 << 20;

/// Serves `dir/file` on thread `thread`: `reply` turns each request line
/// into its reply line (without the newline).
pub fn spawn(
    dir: &Path,
    file: &str,
    thread: &str,
    stop: Arc<AtomicBool>,
    reply: impl Fn(&str) -> String + Send + 'static,
) -> std::io::Result<JoinHandle<()>> {
    let path = dir.join(file);
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    let guard = SocketFile(path.clone());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    listener.set_nonblocking(true)?;
    let name = file.to_string();
    std::thread::Builder::new()
        .name(thread.into())
        .spawn(move || {
            let _guard = guard;
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => serve(stream, &reply, &stop),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(ACCEPT_POLL)
                    }
                    Err(e) => {
                        eprintln!("patronus-engine: {name}: {e}");
                        std::thread::sleep(ACCEPT_POLL);
                    }
                }
            }
        })
}

/// Serves one connection: a reply line per request line.
fn serve(stream: UnixStream, reply: &impl Fn(&str) -> String, stop: &AtomicBool) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(CLIENT_READ_TIMEOUT));
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    let mut lines = BufReader::new(std::io::Read::take(stream, MAX_LINE)).lines();
    while !stop.load(Ordering::Relaxed) {
        let Some(Ok(line)) = lines.next() else {
            return;
        };
        let mut text = reply(&line);
        text.push('\n');
        if out.write_all(text.as_bytes()).is_err() {
            return;
        }
    }
}

/// Removes the socket file when the server stops.
struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
