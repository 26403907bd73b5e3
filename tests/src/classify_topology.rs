//! The classification topology: a client namespace, the engine (afpacket,
//! with `[classify]` and a `[control]` runtime directory), and a server
//! namespace running real servers — nginx with HTTP and HTTPS (a
//! self-signed certificate made by openssl for the test), dnsmasq
//! answering one name, and sshd — plus the control process on the same
//! runtime directory.
//!
//! ```text
//!  client 10.1.0.2 ── lan0 10.1.0.1  R (engine)  wan0 10.2.0.1 ── 10.2.0.2 server
//! ```
//!
//! `PATRONUS_ENGINE=PATH` runs another engine binary (e.g. a branch's
//! build) against this workspace's control process.

use std::path::{Path, PathBuf};

use crate::control::Control;
use crate::engine::workspace_root;
use crate::nat_topology::{path_str, wait_listening};
use crate::process::BgProcess;
use crate::topology::{RouterKind, Topology, H1, H2};

/// The client (h1) and the server (h2).
pub const CLIENT: &str = H1;
pub const SERVER: &str = H2;
/// The Host the HTTP request names (curl `--resolve`s it to the server).
pub const HTTP_NAME: &str = "web.patronus.test";
/// The TLS server name (SNI) of the HTTPS request, and the certificate's.
pub const TLS_NAME: &str = "www.patronus.test";
/// The name dnsmasq answers, and its address.
pub const DNS_NAME: &str = "name.patronus.test";
pub const DNS_ANSWER: &str = "10.2.0.80";
/// Engine workers (flows hash to either; paging crosses both).
pub const WORKERS: usize = 2;

/// The repository's model file.
pub fn model_path() -> std::path::PathBuf {
    workspace_root().join("models/flow-mlp.bin")
}

/// The `[classify]` and `[control]` sections of the engine config.
pub fn classify_config(runtime: &Path) -> String {
    let model = model_path();
    format!(
        r#"
[control]
runtime_dir = "{}"

[classify]
flows = 4096
dpi_slots = 256
model = "{}"
batch = 64
batch_wait_ms = 5
"#,
        runtime.display(),
        model.display()
    )
}

/// The built topology. Fields drop in order: the servers, the control
/// process, the router topology (engine, namespaces, scratch directory),
/// then the runtime directory.
#[derive(Debug)]
pub struct ClassifyTopology {
    servers: Vec<BgProcess>,
    pub control: Control,
    pub t: Topology,
    /// The engine's and the control's runtime directory.
    pub runtime: PathBuf,
    _runtime_dir: crate::TempDir,
}

impl ClassifyTopology {
    /// Builds the namespaces, starts the engine (waits until it forwards),
    /// the servers and the control process on `api_port` (metrics on the
    /// next port).
    pub fn build(api_port: u16) -> Self {
        // Its path goes into the engine config, so it is made first.
        let runtime_dir = crate::TempDir::new("classify-rt");
        let runtime = runtime_dir.join("shm");
        let mut t = Topology::build_workers(
            "classify",
            RouterKind::Engine,
            &classify_config(&runtime),
            WORKERS,
        );
        t.wait_forwarding(std::time::Duration::from_secs(15));
        let dir = t.dir.path().to_path_buf();
        let servers = vec![
            start_nginx(&t, &dir),
            start_dnsmasq(&t, &dir),
            start_sshd(&t, &dir),
        ];
        let control = Control::start(&dir, &runtime, api_port, "control");
        ClassifyTopology {
            servers,
            control,
            t,
            runtime,
            _runtime_dir: runtime_dir,
        }
    }

    /// Runs a program in the client namespace; returns (success, stdout,
    /// stderr).
    pub fn client(&self, program: &str, args: &[&str]) -> (bool, String, String) {
        let out = self.t.h1.exec_output(program, args);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// dnsmasq's log lines for queries of `DNS_NAME`.
    pub fn dns_queries(&self) -> usize {
        self.servers
            .iter()
            .find(|p| p.what().contains("dnsmasq"))
            .map_or(0, |p| {
                p.stderr()
                    .lines()
                    .filter(|l| l.contains("query[") && l.contains(DNS_NAME))
                    .count()
            })
    }
}

fn write(file: &Path, text: &str) {
    std::fs::write(file, text).unwrap_or_else(|e| panic!("write {}: {e}", file.display()));
}

/// nginx on the server: HTTP on 80 and HTTPS on 443 with a self-signed
/// certificate for `TLS_NAME`.
fn start_nginx(t: &Topology, dir: &Path) -> BgProcess {
    let d = dir.display().to_string();
    for sub in ["body", "proxy", "fastcgi", "uwsgi", "scgi"] {
        std::fs::create_dir_all(dir.join("nginx-tmp").join(sub)).expect("nginx tmp");
    }
    let www = dir.join("www");
    std::fs::create_dir_all(&www).expect("www");
    write(
        &www.join("index.html"),
        "<html><body>patronus</body></html>\n",
    );
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    crate::cmd::run_args(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={TLS_NAME}"),
            "-keyout",
            path_str(&key),
            "-out",
            path_str(&cert),
        ],
    );
    let conf = format!(
        r#"daemon off;
master_process off;
worker_processes 1;
user root;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log;
events {{ worker_connections 64; }}
http {{
    access_log {d}/nginx-access.log;
    client_body_temp_path {d}/nginx-tmp/body;
    proxy_temp_path {d}/nginx-tmp/proxy;
    fastcgi_temp_path {d}/nginx-tmp/fastcgi;
    uwsgi_temp_path {d}/nginx-tmp/uwsgi;
    scgi_temp_path {d}/nginx-tmp/scgi;
    default_type text/html;
    server {{
        listen {SERVER}:80;
        listen {SERVER}:443 ssl;
        server_name {HTTP_NAME} {TLS_NAME};
        ssl_certificate {cert};
        ssl_certificate_key {key};
        root {d}/www;
    }}
}}
"#,
        cert = cert.display(),
        key = key.display(),
    );
    let file = dir.join("nginx.conf");
    write(&file, &conf);
    let err = format!("{d}/nginx-error.log");
    let p = t.h2.spawn(
        "nginx",
        &["-p", &d, "-e", &err, "-c", path_str(&file)],
        dir,
        "nginx",
    );
    let p = wait_listening(&t.h2, p, "tcp", 80);
    wait_listening(&t.h2, p, "tcp", 443)
}

/// dnsmasq on the server answering `DNS_NAME` with `DNS_ANSWER`.
fn start_dnsmasq(t: &Topology, dir: &Path) -> BgProcess {
    let record = format!("--host-record={DNS_NAME},{DNS_ANSWER}");
    let listen = format!("--listen-address={SERVER}");
    let p = t.h2.spawn(
        "dnsmasq",
        &[
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            "--except-interface=lo",
            &listen,
            "--user=root",
            "--pid-file=",
            "--log-queries",
            "--log-facility=-",
            &record,
        ],
        dir,
        "dnsmasq",
    );
    wait_listening(&t.h2, p, "udp", 53)
}

/// OpenSSH's sshd on the server, port 22, with a host key made for the
/// test; it lets nobody in (a refused login still exchanges banners and
/// keys).
fn start_sshd(t: &Topology, dir: &Path) -> BgProcess {
    let key = dir.join("ssh_host_ed25519_key");
    crate::cmd::run_args(
        "ssh-keygen",
        &["-q", "-t", "ed25519", "-N", "", "-f", path_str(&key)],
    );
    // sshd insists on its privilege separation directory.
    std::fs::create_dir_all("/run/sshd").expect("create /run/sshd");
    let conf = format!(
        "ListenAddress {SERVER}:22\nHostKey {}\nPidFile none\nUsePAM no\nStrictModes no\n\
         PasswordAuthentication no\nKbdInteractiveAuthentication no\nAuthorizedKeysFile none\n",
        key.display()
    );
    let file = dir.join("sshd_config");
    write(&file, &conf);
    let p = t.h2.spawn(
        "/usr/sbin/sshd",
        &["-D", "-e", "-f", path_str(&file)],
        dir,
        "sshd",
    );
    wait_listening(&t.h2, p, "tcp", 22)
}
