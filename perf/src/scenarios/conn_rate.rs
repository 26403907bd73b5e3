//! Short TCP connections for connection-rate tests: a tiny request/response
//! server in one namespace (threads that enter it) and client threads in
//! another that connect, send a request, read the answer to EOF and close,
//! one connection after another. The server closes first, so the clients'
//! ports never sit in TIME_WAIT.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::netns;

pub const REQUEST: &[u8] = b"GET /\n";
/// Response length: a small page, several times the request.
pub const RESPONSE_LEN: usize = 256;
/// How often blocked server threads look at the stop flag.
const ACCEPT_TIMEOUT: Duration = Duration::from_millis(100);
const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);

/// Server threads listening on `0.0.0.0:port` inside a namespace; stopped
/// and joined on drop. Counts the connections served per local address
/// (the backend a balancer chose).
pub struct Server {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    served: Arc<Mutex<BTreeMap<IpAddr, u64>>>,
}

impl Server {
    pub fn start(netns_name: &str, port: u16, threads: usize) -> anyhow::Result<Server> {
        let ns = netns_name.to_string();
        // Bind in a thread that entered the namespace; the socket stays there.
        let listener = std::thread::spawn(move || -> anyhow::Result<TcpListener> {
            netns::enter(&ns)?;
            let l = TcpListener::bind(("0.0.0.0", port)).context("binding the server")?;
            set_recv_timeout(&l, ACCEPT_TIMEOUT)?;
            Ok(l)
        })
        .join()
        .map_err(|_| anyhow::anyhow!("server bind thread panicked"))??;
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(Mutex::new(BTreeMap::new()));
        let mut handles = Vec::new();
        for _ in 0..threads.max(1) {
            let l = listener.try_clone()?;
            let (stop, served) = (Arc::clone(&stop), Arc::clone(&served));
            handles.push(std::thread::spawn(move || serve(l, &stop, &served)));
        }
        Ok(Server {
            stop,
            threads: handles,
            served,
        })
    }

    /// Connections served so far, per local (backend) address.
    pub fn served(&self) -> BTreeMap<IpAddr, u64> {
        self.served.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// accept() honours SO_RCVTIMEO on Linux, so a blocked accept wakes up to
/// look at the stop flag.
fn set_recv_timeout(l: &TcpListener, d: Duration) -> anyhow::Result<()> {
    let tv = libc::timeval {
        tv_sec: d.as_secs() as libc::time_t,
        tv_usec: d.subsec_micros() as libc::suseconds_t,
    };
    // SAFETY: a valid socket fd and a timeval of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            l.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            std::ptr::addr_of!(tv).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        bail!("SO_RCVTIMEO: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

fn serve(l: TcpListener, stop: &AtomicBool, served: &Mutex<BTreeMap<IpAddr, u64>>) {
    let response = [b'x'; RESPONSE_LEN];
    let mut local: BTreeMap<IpAddr, u64> = BTreeMap::new();
    let mut pending = 0u32;
    while !stop.load(Ordering::Relaxed) {
        let Ok((mut s, _)) = l.accept() else {
            flush(&mut local, served);
            pending = 0;
            continue;
        };
        let _ = s.set_read_timeout(Some(CLIENT_TIMEOUT));
        let mut buf = [0u8; 64];
        let mut got = 0;
        while got < REQUEST.len() {
            match s.read(&mut buf[got..]) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
        if got >= REQUEST.len() && s.write_all(&response).is_ok() {
            if let Ok(a) = s.local_addr() {
                *local.entry(a.ip()).or_default() += 1;
            }
        }
        pending += 1;
        if pending >= 256 {
            flush(&mut local, served);
            pending = 0;
        }
        // Dropping `s` closes it: the server sends the first FIN.
    }
    flush(&mut local, served);
}

fn flush(local: &mut BTreeMap<IpAddr, u64>, served: &Mutex<BTreeMap<IpAddr, u64>>) {
    if local.is_empty() {
        return;
    }
    if let Ok(mut m) = served.lock() {
        for (a, n) in std::mem::take(local) {
            *m.entry(a).or_default() += n;
        }
    }
}

/// Client threads in a namespace, each running connections to `target`
/// back to back until stopped (joined on drop).
pub struct Clients {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    pub done: Arc<AtomicU64>,
    pub failed: Arc<AtomicU64>,
}

impl Clients {
    pub fn start(netns_name: &str, target: SocketAddr, threads: usize) -> Clients {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let handles = (0..threads.max(1))
            .map(|_| {
                let ns = netns_name.to_string();
                let (stop, done, failed) =
                    (Arc::clone(&stop), Arc::clone(&done), Arc::clone(&failed));
                std::thread::spawn(move || {
                    if netns::enter(&ns).is_err() {
                        failed.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    while !stop.load(Ordering::Relaxed) {
                        let c = if one_connection(target) {
                            &done
                        } else {
                            &failed
                        };
                        c.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        Clients {
            stop,
            threads: handles,
            done,
            failed,
        }
    }

    /// (completed, failed) so far.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.done.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

impl Drop for Clients {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Connect, send the request, read the whole response until the server's
/// FIN, close. True when the full response arrived.
fn one_connection(target: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&target, CLIENT_TIMEOUT) else {
        // Do not spin on an unreachable target.
        std::thread::sleep(Duration::from_millis(10));
        return false;
    };
    let _ = s.set_read_timeout(Some(CLIENT_TIMEOUT));
    let _ = s.set_nodelay(true);
    if s.write_all(REQUEST).is_err() {
        return false;
    }
    let mut buf = [0u8; RESPONSE_LEN + 64];
    let mut got = 0;
    loop {
        match s.read(&mut buf[got.min(RESPONSE_LEN)..]) {
            Ok(0) => return got == RESPONSE_LEN,
            Ok(n) => got += n,
            Err(_) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Server and client in this process's own namespace would need root
    /// and `ip netns`; the pieces without namespaces are tested here.
    #[test]
    fn one_connection_reads_the_whole_response() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        set_recv_timeout(&l, ACCEPT_TIMEOUT).unwrap();
        let addr = l.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(Mutex::new(BTreeMap::new()));
        let (s2, v2) = (Arc::clone(&stop), Arc::clone(&served));
        let t = std::thread::spawn(move || serve(l, &s2, &v2));
        assert!(one_connection(addr));
        assert!(one_connection(addr));
        stop.store(true, Ordering::Relaxed);
        t.join().unwrap();
        let m = served.lock().unwrap();
        assert_eq!(m.get(&addr.ip()), Some(&2));
    }

    #[test]
    fn a_closed_port_is_a_failure() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        assert!(!one_connection(addr));
    }
}
