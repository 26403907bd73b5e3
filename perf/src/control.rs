//! Driving the `patronus-control` binary for scenarios: the process
//! (optionally inside a network namespace, with extra flags such as
//! `--bgp`), killed on drop, and a minimal keep-alive HTTP client for its
//! REST API (a socket opened inside that namespace when it has one).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::netns::{self, sleep_checked};

/// CLOCK_REALTIME in ns (comparable with kernel packet timestamps).
pub fn realtime_ns() -> u64 {
    // SAFETY: timespec is plain data filled by the kernel.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// A TCP connection to 127.0.0.1:`port` of namespace `netns` (this
/// process's own namespace when `None`): a socket keeps the namespace it
/// was created in, so a short-lived thread enters it to connect.
pub fn connect_local(netns: Option<&str>, port: u16) -> anyhow::Result<TcpStream> {
    let Some(ns) = netns else {
        return Ok(TcpStream::connect(("127.0.0.1", port))?);
    };
    let ns = ns.to_string();
    std::thread::spawn(move || -> anyhow::Result<TcpStream> {
        netns::enter(&ns)?;
        Ok(TcpStream::connect(("127.0.0.1", port))?)
    })
    .join()
    .map_err(|_| anyhow::anyhow!("connect thread panicked"))?
}

/// A minimal HTTP/1.1 keep-alive client for the control API.
pub struct Api {
    port: u16,
    token: String,
    conn: BufReader<TcpStream>,
}

impl Api {
    pub fn connect(port: u16, token: &str) -> anyhow::Result<Api> {
        Api::connect_in(None, port, token)
    }

    /// Connects to the API of a control process running in `netns`.
    pub fn connect_in(netns: Option<&str>, port: u16, token: &str) -> anyhow::Result<Api> {
        let s = connect_local(netns, port).context("connecting to the control API")?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(600)))?;
        Ok(Api {
            port,
            token: token.into(),
            conn: BufReader::new(s),
        })
    }

    /// Sends a request; returns (status, body, CLOCK_REALTIME when the
    /// status line and headers had been read).
    pub fn call(
        &mut self,
        method: &str,
        path: &str,
        body: &str,
    ) -> anyhow::Result<(u16, String, u64)> {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.port,
            self.token,
            body.len()
        );
        let s = self.conn.get_mut();
        s.write_all(head.as_bytes())?;
        s.write_all(body.as_bytes())?;
        let mut line = String::new();
        self.conn.read_line(&mut line)?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|x| x.parse().ok())
            .with_context(|| format!("bad status line {line:?}"))?;
        let mut len = 0usize;
        loop {
            line.clear();
            if self.conn.read_line(&mut line)? == 0 {
                bail!("connection closed in headers");
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let got = realtime_ns();
        let mut buf = vec![0u8; len];
        self.conn.read_exact(&mut buf)?;
        Ok((status, String::from_utf8_lossy(&buf).into_owned(), got))
    }

    /// [`Api::call`] that fails unless the status is 2xx; returns the body.
    pub fn call_ok(&mut self, method: &str, path: &str, body: &str) -> anyhow::Result<String> {
        let (status, resp, _) = self.call(method, path, body)?;
        if !(200..300).contains(&status) {
            bail!("{method} {path}: {status} {resp}");
        }
        Ok(resp)
    }
}

/// How to start the control process.
pub struct ControlSpec<'a> {
    pub bin: &'a Path,
    /// Holds control.db, api-token and control.log.
    pub dir: &'a Path,
    /// `--runtime-dir` (the engine's `[control] runtime_dir`).
    pub runtime: &'a Path,
    /// API port; the metrics listener gets `port + 1`.
    pub port: u16,
    /// Run inside this network namespace (`ip netns exec`, which execs, so
    /// the child's pid is the control process's own).
    pub netns: Option<&'a str>,
    /// Further flags (e.g. `--bgp`).
    pub extra_args: &'a [&'a str],
}

/// The control process; killed on drop.
pub struct ControlProcess {
    child: Child,
    pub token: String,
    log: PathBuf,
}

impl ControlProcess {
    /// Starts it in this process's namespace.
    pub fn start(
        bin: &Path,
        dir: &Path,
        runtime: &Path,
        port: u16,
    ) -> anyhow::Result<ControlProcess> {
        ControlProcess::start_with(&ControlSpec {
            bin,
            dir,
            runtime,
            port,
            netns: None,
            extra_args: &[],
        })
    }

    /// Starts it and waits (up to 15 s) until the token exists and the API
    /// accepts connections.
    pub fn start_with(spec: &ControlSpec) -> anyhow::Result<ControlProcess> {
        let dir = spec.dir;
        let log = dir.join("control.log");
        let f = std::fs::File::create(&log)?;
        let mut cmd = match spec.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(spec.bin);
                c
            }
            None => Command::new(spec.bin),
        };
        cmd.arg("--listen")
            .arg(format!("127.0.0.1:{}", spec.port))
            .arg("--metrics-listen")
            .arg(format!("127.0.0.1:{}", spec.port + 1))
            .arg("--db")
            .arg(dir.join("control.db"))
            .arg("--runtime-dir")
            .arg(spec.runtime)
            .args(spec.extra_args)
            .stdin(Stdio::null())
            .stdout(f.try_clone()?)
            .stderr(f);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", spec.bin.display()))?;
        let mut c = ControlProcess {
            child,
            token: String::new(),
            log,
        };
        let start = Instant::now();
        loop {
            if let Some(e) = c.exited() {
                bail!("control exited: {e}");
            }
            if let Ok(t) = std::fs::read_to_string(dir.join("api-token")) {
                if !t.trim().is_empty() && connect_local(spec.netns, spec.port).is_ok() {
                    c.token = t.trim().to_string();
                    return Ok(c);
                }
            }
            if start.elapsed() > Duration::from_secs(15) {
                bail!("control not ready after 15 s");
            }
            sleep_checked(Duration::from_millis(50))?;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Some(description) when it has exited.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(st)) => Some(format!(
                "{st}: {}",
                std::fs::read_to_string(&self.log)
                    .unwrap_or_default()
                    .trim()
            )),
            _ => None,
        }
    }

    /// SIGTERM and wait; Some(problem) when it had died before.
    pub fn stop(&mut self) -> Option<String> {
        let died = self.exited();
        // SAFETY: signals our own unreaped child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return died.map(|d| format!("control had exited during the run: {d}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        died
    }
}

impl Drop for ControlProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
