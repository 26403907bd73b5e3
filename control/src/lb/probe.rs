//! One health probe of one backend: a TCP connect, or an HTTP/1.1 GET written
//! by hand over a plain TCP stream (only the status line is read, bounded).
//! The check's timeout covers connect and response together.

use std::fmt;
use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::health::{CheckKind, HealthCheck, HttpCheck};

/// Most bytes read while looking for the end of the status line.
pub const MAX_STATUS_LINE: usize = 1024;

/// A passed probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeOk {
    /// The TCP handshake completed.
    Connected,
    /// The HTTP answer had this (expected) status.
    Status(u16),
}

impl fmt::Display for ProbeOk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeOk::Connected => f.write_str("tcp connect succeeded"),
            ProbeOk::Status(s) => write!(f, "http status {s}"),
        }
    }
}

/// A failed probe; `Display` is the reason reported in health events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeFailure {
    /// Connect plus response took longer than the check's timeout.
    Timeout,
    /// The connection was refused (nothing listening).
    Refused,
    /// Another connect error.
    Connect(io::ErrorKind),
    /// Error while writing the request or reading the answer.
    Io(io::ErrorKind),
    /// The peer closed before a full status line arrived.
    Closed,
    /// No line end within [`MAX_STATUS_LINE`] bytes.
    StatusLineTooLong,
    /// The first line is not `HTTP/1.x NNN ...`.
    BadStatusLine(String),
    /// A valid answer with a status outside the expected range.
    Status(u16),
}

impl fmt::Display for ProbeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeFailure::Timeout => f.write_str("timed out"),
            ProbeFailure::Refused => f.write_str("connection refused"),
            ProbeFailure::Connect(k) => write!(f, "connect failed: {k}"),
            ProbeFailure::Io(k) => write!(f, "i/o error: {k}"),
            ProbeFailure::Closed => f.write_str("connection closed before a status line"),
            ProbeFailure::StatusLineTooLong => f.write_str("status line too long"),
            ProbeFailure::BadStatusLine(l) => write!(f, "bad status line {l:?}"),
            ProbeFailure::Status(s) => write!(f, "unexpected http status {s}"),
        }
    }
}

/// Runs one probe of `addr` as `check` says, within `check.timeout`.
pub async fn probe(addr: SocketAddr, check: &HealthCheck) -> Result<ProbeOk, ProbeFailure> {
    match tokio::time::timeout(check.timeout, probe_untimed(addr, &check.kind)).await {
        Ok(r) => r,
        Err(_) => Err(ProbeFailure::Timeout),
    }
}

async fn probe_untimed(addr: SocketAddr, kind: &CheckKind) -> Result<ProbeOk, ProbeFailure> {
    let stream = TcpStream::connect(addr).await.map_err(|e| match e.kind() {
        io::ErrorKind::ConnectionRefused => ProbeFailure::Refused,
        k => ProbeFailure::Connect(k),
    })?;
    match kind {
        CheckKind::Tcp => Ok(ProbeOk::Connected),
        CheckKind::Http(http) => http_get(stream, addr, http).await,
    }
}

/// The request bytes of an HTTP check (path and host were validated).
pub fn http_request(addr: SocketAddr, http: &HttpCheck) -> String {
    let host = match &http.host {
        Some(h) => h.clone(),
        None => addr.to_string(), // IPv6 comes out bracketed, as Host wants
    };
    format!(
        "GET {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: patronus-health/1\r\n\
         Accept: */*\r\nConnection: close\r\n\r\n",
        http.path
    )
}

async fn http_get(
    mut stream: TcpStream,
    addr: SocketAddr,
    http: &HttpCheck,
) -> Result<ProbeOk, ProbeFailure> {
    let io_err = |e: io::Error| ProbeFailure::Io(e.kind());
    stream
        .write_all(http_request(addr, http).as_bytes())
        .await
        .map_err(io_err)?;
    let mut buf = [0u8; MAX_STATUS_LINE];
    let mut len = 0;
    let line_end = loop {
        if let Some(i) = buf[..len].iter().position(|&b| b == b'\n') {
            break i;
        }
        if len == buf.len() {
            return Err(ProbeFailure::StatusLineTooLong);
        }
        let n = stream.read(&mut buf[len..]).await.map_err(io_err)?;
        if n == 0 {
            return Err(ProbeFailure::Closed);
        }
        len += n;
    };
    let status = parse_status_line(&buf[..line_end])?;
    if http.expect.contains(status) {
        Ok(ProbeOk::Status(status))
    } else {
        Err(ProbeFailure::Status(status))
    }
}

/// `HTTP/1.x NNN [reason]` (a trailing `\r` allowed) to the status code.
pub fn parse_status_line(line: &[u8]) -> Result<u16, ProbeFailure> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let bad = || {
        let shown: String = String::from_utf8_lossy(&line[..line.len().min(64)]).into();
        ProbeFailure::BadStatusLine(shown)
    };
    let rest = line
        .strip_prefix(b"HTTP/1.")
        .filter(|r| r.len() >= 5 && r[0].is_ascii_digit() && r[1] == b' ')
        .ok_or_else(bad)?;
    let code = &rest[2..5];
    if !code.iter().all(u8::is_ascii_digit) || rest.get(5).is_some_and(|&b| b != b' ') {
        return Err(bad());
    }
    let status = code.iter().fold(0u16, |a, &d| a * 10 + u16::from(d - b'0'));
    if !(100..=599).contains(&status) {
        return Err(bad());
    }
    Ok(status)
}

#[cfg(test)]
#[path = "probe_tests.rs"]
mod tests;
