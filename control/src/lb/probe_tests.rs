//! Probe tests against real servers on loopback: tokio listeners for TCP and
//! hand-made HTTP answers, `python3 -m http.server` for real HTTP.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;
use crate::lb::health::StatusRange;
use crate::lb::test_util::{free_addr, guard, PyHttp, WebRoot};

fn tcp_check() -> HealthCheck {
    HealthCheck::tcp()
}

fn http_check(path: &str, expect: Option<u16>) -> HealthCheck {
    let mut http = HttpCheck::get(path);
    if let Some(code) = expect {
        http.expect = StatusRange::exact(code);
    }
    let check = HealthCheck::http(http);
    check.validate().unwrap();
    check
}

/// A listener that answers every connection with `answer` after reading the
/// request head, and hands the request it read to the test.
async fn canned_server(answer: &'static [u8]) -> (SocketAddr, tokio::task::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut req = Vec::new();
        let mut buf = [0u8; 512];
        while !req.ends_with(b"\r\n\r\n") {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "client closed before the end of its request");
            req.extend_from_slice(&buf[..n]);
        }
        // The probe may hang up early (long answers): write errors are fine.
        let _ = s.write_all(answer).await;
        let _ = s.shutdown().await;
        String::from_utf8(req).unwrap()
    });
    (addr, task)
}

#[tokio::test]
async fn tcp_connect_to_listener_succeeds() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = tokio::spawn(async move { listener.accept().await.map(|(_, peer)| peer) });
    let r = guard("tcp probe", probe(addr, &tcp_check())).await;
    assert_eq!(r, Ok(ProbeOk::Connected));
    let peer = guard("accept", accepted).await.unwrap().unwrap();
    assert!(peer.ip().is_loopback());
}

#[tokio::test]
async fn tcp_to_closed_port_is_refused() {
    let addr = free_addr();
    let r = guard("tcp probe", probe(addr, &tcp_check())).await;
    assert_eq!(r, Err(ProbeFailure::Refused));
}

#[tokio::test]
async fn http_against_python_server() {
    let root = WebRoot::new();
    let server = PyHttp::start(&root, free_addr()).await;
    let ok = guard(
        "probe /health",
        probe(server.addr, &http_check("/health", Some(200))),
    )
    .await;
    assert_eq!(ok, Ok(ProbeOk::Status(200)));
    // Default expectation (2xx-3xx) also passes.
    let ok = guard(
        "probe /health",
        probe(server.addr, &http_check("/health", None)),
    )
    .await;
    assert_eq!(ok, Ok(ProbeOk::Status(200)));
    let missing = guard(
        "probe /missing",
        probe(server.addr, &http_check("/missing", Some(200))),
    )
    .await;
    assert_eq!(missing, Err(ProbeFailure::Status(404)));
    // Expecting the 404 makes it a success: the range is honoured both ways.
    let want_404 = guard(
        "probe /missing",
        probe(server.addr, &http_check("/missing", Some(404))),
    )
    .await;
    assert_eq!(want_404, Ok(ProbeOk::Status(404)));
    let addr = server.addr;
    server.stop();
    let gone = guard(
        "probe stopped server",
        probe(addr, &http_check("/health", Some(200))),
    )
    .await;
    assert_eq!(gone, Err(ProbeFailure::Refused));
}

#[tokio::test]
async fn http_to_closed_port_is_refused() {
    let r = guard("probe", probe(free_addr(), &http_check("/", None))).await;
    assert_eq!(r, Err(ProbeFailure::Refused));
}

#[tokio::test]
async fn silent_server_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Accepts and reads but never answers; holds the connection open.
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink).await;
    });
    let mut check = http_check("/health", None);
    check.timeout = Duration::from_millis(200);
    let r = guard("probe silent server", probe(addr, &check)).await;
    assert_eq!(r, Err(ProbeFailure::Timeout));
    server.abort();
}

#[tokio::test]
async fn request_is_well_formed_and_status_checked() {
    let (addr, server) =
        canned_server(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n").await;
    let r = guard("probe", probe(addr, &http_check("/ready?deep=1", None))).await;
    assert_eq!(r, Err(ProbeFailure::Status(503)));
    let req = guard("server", server).await.unwrap();
    assert!(req.starts_with("GET /ready?deep=1 HTTP/1.1\r\n"), "{req:?}");
    assert!(req.contains(&format!("\r\nHost: {addr}\r\n")), "{req:?}");
    assert!(req.contains("\r\nConnection: close\r\n"), "{req:?}");
}

#[tokio::test]
async fn host_header_is_sent_when_configured() {
    let (addr, server) = canned_server(b"HTTP/1.1 204 No Content\r\n\r\n").await;
    let mut http = HttpCheck::get("/");
    http.host = Some("svc.example".into());
    let r = guard("probe", probe(addr, &HealthCheck::http(http))).await;
    assert_eq!(r, Ok(ProbeOk::Status(204)));
    let req = guard("server", server).await.unwrap();
    assert!(req.contains("\r\nHost: svc.example\r\n"), "{req:?}");
}

#[tokio::test]
async fn malformed_answers_fail() {
    let (addr, _s) = canned_server(b"SSH-2.0-OpenSSH_9.2\r\n").await;
    let r = guard("probe", probe(addr, &http_check("/", None))).await;
    assert!(matches!(r, Err(ProbeFailure::BadStatusLine(_))), "{r:?}");

    let (addr, _s) = canned_server(b"HTTP/1.1 200").await; // no line end, then EOF
    let r = guard("probe", probe(addr, &http_check("/", None))).await;
    assert_eq!(r, Err(ProbeFailure::Closed));

    static LONG: [u8; 4096] = [b'A'; 4096];
    let (addr, _s) = canned_server(&LONG).await;
    let r = guard("probe", probe(addr, &http_check("/", None))).await;
    assert_eq!(r, Err(ProbeFailure::StatusLineTooLong));
}

#[test]
fn status_line_parsing() {
    assert_eq!(parse_status_line(b"HTTP/1.1 200 OK\r"), Ok(200));
    assert_eq!(parse_status_line(b"HTTP/1.0 404 File not found"), Ok(404));
    assert_eq!(parse_status_line(b"HTTP/1.1 204"), Ok(204));
    assert_eq!(parse_status_line(b"HTTP/1.1 302 \r"), Ok(302));
    for bad in [
        &b""[..],
        b"HTTP/1.1",
        b"HTTP/1.1 20",
        b"HTTP/1.1 2000 OK",
        b"HTTP/1.1 abc OK",
        b"HTTP/2 200",
        b"HTTP/1.1 099 Low",
        b"HTTP/1.1 600 High",
        b"http/1.1 200 OK",
    ] {
        assert!(
            matches!(parse_status_line(bad), Err(ProbeFailure::BadStatusLine(_))),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn failure_reasons_read_well() {
    assert_eq!(ProbeFailure::Refused.to_string(), "connection refused");
    assert_eq!(
        ProbeFailure::Status(404).to_string(),
        "unexpected http status 404"
    );
    assert_eq!(ProbeOk::Status(200).to_string(), "http status 200");
}
