//! The load-balancer topology: a client, the engine (afpacket, two
//! workers), and three backend namespaces on a switch behind the engine,
//! each running its own nginx (page = its name, a large file for long
//! downloads) and a UDP server that answers with its name. The backends'
//! default route goes through the engine, so NAT-mode replies return
//! through it and DSR replies (source = VIP) are routed back through it as
//! plain packets. Optionally the control process, in the client namespace
//! (its health checks reach the backends through the engine, and its API
//! ports are the namespace's own).
//!
//! ```text
//!                                                                ┌─ be1 10.2.0.11
//!  client 10.1.0.2 ── lan0 10.1.0.1  R (engine)  wan0 10.2.0.1 ── sw ─ be2 10.2.0.12
//!  (control)                                                     └─ be3 10.2.0.13
//! ```
//!
//! DSR backends also hold the VIP on `lo` (not answering ARP for it),
//! have rp_filter off, and decapsulate IP-in-IP with a tc BPF program
//! (`tests/bpf/decap.c`: this kernel has no ipip module).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cmd::run;
use crate::control::Control;
use crate::engine::{workspace_root, Engine};
use crate::nat_topology::{path_str, pseudo_random, sha256, wait_listening};
use crate::netns::{veth, Netns};
use crate::process::BgProcess;
use crate::scapy::PYTHON;
use crate::tempdir::TempDir;

/// The client's address (behind the engine's `lan0`).
pub const CLIENT: &str = "10.1.0.2";
/// The engine's address on the client's side (the client's gateway).
pub const R_LAN: &str = "10.1.0.1";
/// The engine's address on the backends' side (their gateway; the outer
/// source of DSR packets).
pub const R_BACK: &str = "10.2.0.1";
/// The virtual address (routed to the engine: it is the client's gateway).
pub const VIP: &str = "10.9.0.100";
/// The backends' names and addresses.
pub const BACKENDS: [(&str, &str); 3] = [
    ("be1", "10.2.0.11"),
    ("be2", "10.2.0.12"),
    ("be3", "10.2.0.13"),
];
/// The port nginx listens on (all addresses, so the VIP on `lo` too).
pub const HTTP_PORT: u16 = 80;
/// A second port nginx listens on, for health checks that must not look
/// like service traffic on the wire.
pub const CHECK_PORT: u16 = 8080;
/// The port the UDP name servers listen on.
pub const UDP_PORT: u16 = 5353;
/// The large file each nginx serves (`http://HOST/BIG_FILE`), and its size:
/// downloads of it with `curl --limit-rate` are the long-lived connections.
pub const BIG_FILE: &str = "big.bin";
pub const BIG_FILE_SIZE: usize = 2 << 20;
/// nginx's per-connection rate for `BIG_FILE` (bytes/s; ~6 s a download).
pub const BIG_FILE_RATE: usize = 350_000;
/// The control's API port in the client namespace (metrics on the next).
pub const API_PORT: u16 = 7070;
/// Engine workers: two, so a flow's two directions may arrive on
/// different workers.
pub const WORKERS: usize = 2;

const LB_CLIENT_PY: &str = include_str!("../py/lb_client.py");
const UDP_SERVER_PY: &str = include_str!("../py/udp_name_server.py");
const IPIP_SUMMARY_PY: &str = include_str!("../py/ipip_summary.py");

/// How the backends expect the balancer's packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Destination rewritten to the backend; replies return through the
    /// engine (their default route), which rewrites them back.
    Nat,
    /// IP-in-IP to the backend, which holds the VIP on `lo` and answers the
    /// client directly from it.
    Dsr,
}

/// One backend namespace with its servers.
#[derive(Debug)]
pub struct Backend {
    pub name: &'static str,
    pub addr: &'static str,
    nginx: Option<BgProcess>,
    udp: Option<BgProcess>,
    pub ns: Netns,
    /// Its nginx's prefix: config, pid file, logs, `www/`.
    pub dir: PathBuf,
}

/// One line of a backend's access log.
#[derive(Clone, Debug, PartialEq)]
pub struct Access {
    /// When the request ended (nginx `$msec`, epoch seconds).
    pub t: f64,
    pub client: String,
    pub client_port: u16,
    pub status: u16,
    pub uri: String,
    /// Which request of its connection this was (1 = a new connection).
    pub nth_on_connection: u32,
    /// The port it came to (`HTTP_PORT`, or `CHECK_PORT` for checks).
    pub server_port: u16,
}

impl Backend {
    fn build(name: &'static str, addr: &'static str, sw: &Netns, mode: Mode, root: &Path) -> Self {
        let ns = Netns::new(name);
        veth(&ns, "eth0", sw, name);
        sw.ip(&["link", "set", name, "master", "br0"]);
        ns.addr_add("eth0", &format!("{addr}/24"));
        ns.route_add(&["default", "via", R_BACK]);
        let dir = root.join(name);
        std::fs::create_dir_all(dir.join("www")).expect("backend www");
        let mut b = Backend {
            name,
            addr,
            nginx: None,
            udp: None,
            ns,
            dir,
        };
        if mode == Mode::Dsr {
            b.dsr_setup(root);
        }
        b.write_site();
        b.start_nginx();
        let bind = if mode == Mode::Dsr { VIP } else { "0.0.0.0" };
        let port = UDP_PORT.to_string();
        let p = b.ns.spawn(
            PYTHON,
            &["-c", UDP_SERVER_PY, bind, &port, name],
            &b.dir,
            "udp",
        );
        b.udp = Some(wait_listening(&b.ns, p, "udp", UDP_PORT));
        b
    }

    /// The VIP on `lo` without answering ARP for it, rp_filter off (packets
    /// to the VIP arrive on eth0 while the VIP is on lo), and the IP-in-IP
    /// decapsulator on eth0's ingress.
    fn dsr_setup(&mut self, root: &Path) {
        let ns = &self.ns;
        ns.addr_add("lo", &format!("{VIP}/32"));
        for (k, v) in [
            ("net.ipv4.conf.all.arp_ignore", "1"),
            ("net.ipv4.conf.all.arp_announce", "2"),
            ("net.ipv4.conf.eth0.arp_ignore", "1"),
            ("net.ipv4.conf.eth0.arp_announce", "2"),
            ("net.ipv4.conf.all.rp_filter", "0"),
            ("net.ipv4.conf.default.rp_filter", "0"),
            ("net.ipv4.conf.eth0.rp_filter", "0"),
            ("net.ipv4.conf.lo.rp_filter", "0"),
        ] {
            ns.sysctl(k, v);
        }
        let obj = decap_object(root);
        ns.exec("tc", &["qdisc", "add", "dev", "eth0", "clsact"]);
        ns.exec(
            "tc",
            &[
                "filter",
                "add",
                "dev",
                "eth0",
                "ingress",
                "bpf",
                "da",
                "obj",
                path_str(&obj),
                "sec",
                "tc",
            ],
        );
    }

    fn write_site(&self) {
        let www = self.dir.join("www");
        write(
            &www.join("index.html"),
            format!("{}\n", self.name).as_bytes(),
        );
        write(&www.join(BIG_FILE), &big_file());
        let d = self.dir.display().to_string();
        for sub in ["body", "proxy", "fastcgi", "uwsgi", "scgi"] {
            std::fs::create_dir_all(self.dir.join("tmp").join(sub)).expect("nginx tmp");
        }
        let conf = format!(
            r#"daemon off;
master_process off;
worker_processes 1;
user root;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 512; }}
http {{
    log_format lb '$msec $remote_addr $remote_port $status $request_uri $connection_requests $server_port';
    access_log {d}/access.log lb;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    default_type text/plain;
    server {{
        listen {HTTP_PORT};
        listen {CHECK_PORT};
        root {d}/www;
        add_header X-Backend {name} always;
        # Downloads of the large file last ~BIG_FILE_SIZE / rate seconds.
        location = /{BIG_FILE} {{
            limit_rate {BIG_FILE_RATE};
        }}
    }}
}}
"#,
            name = self.name
        );
        write(&self.dir.join("nginx.conf"), conf.as_bytes());
    }

    /// Starts nginx (again) and waits until it listens.
    pub fn start_nginx(&mut self) {
        assert!(self.nginx.is_none(), "{}'s nginx already runs", self.name);
        let d = self.dir.display().to_string();
        let err = format!("{d}/error.log");
        let conf = format!("{d}/nginx.conf");
        let p = self.ns.spawn(
            "nginx",
            &["-p", &d, "-e", &err, "-c", &conf],
            &self.dir,
            "nginx",
        );
        self.nginx = Some(wait_listening(&self.ns, p, "tcp", HTTP_PORT));
    }

    /// Stops nginx the fast way (SIGTERM: open connections are closed) and
    /// waits until nothing listens on its port.
    pub fn stop_nginx(&mut self) {
        let mut p = self
            .nginx
            .take()
            .unwrap_or_else(|| panic!("{}'s nginx does not run", self.name));
        p.stop(libc::SIGTERM, Duration::from_secs(5));
        let filter = format!("sport = :{HTTP_PORT}");
        assert!(
            self.ns.exec("ss", &["-Hltn", &filter]).trim().is_empty(),
            "{} still listens after nginx stopped",
            self.name
        );
    }

    /// The access log so far.
    pub fn access_log(&self) -> Vec<Access> {
        std::fs::read_to_string(self.dir.join("access.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                Some(Access {
                    t: f.first()?.parse().ok()?,
                    client: f.get(1)?.to_string(),
                    client_port: f.get(2)?.parse().ok()?,
                    status: f.get(3)?.parse().ok()?,
                    uri: f.get(4)?.to_string(),
                    nth_on_connection: f.get(5)?.parse().ok()?,
                    server_port: f.get(6)?.parse().ok()?,
                })
            })
            .collect()
    }

    /// The access log's requests to the service port (`HTTP_PORT`): not
    /// the health checks.
    pub fn service_log(&self) -> Vec<Access> {
        let mut v = self.access_log();
        v.retain(|a| a.server_port == HTTP_PORT);
        v
    }

    /// `"addr:port"` as the API names it.
    pub fn endpoint(&self) -> String {
        format!("{}:{HTTP_PORT}", self.addr)
    }
}

/// The content of `BIG_FILE` (the same on every backend).
pub fn big_file() -> Vec<u8> {
    pseudo_random(BIG_FILE_SIZE, 0x1b_e2e)
}

/// Compiles `tests/bpf/decap.c` into `<dir>/decap.o` once per directory.
pub fn decap_object(dir: &Path) -> PathBuf {
    let obj = dir.join("decap.o");
    if obj.exists() {
        return obj;
    }
    let src = workspace_root().join("tests/bpf/decap.c");
    // <asm/types.h> lives in the multiarch include directory.
    let multiarch = format!("/usr/include/{}-linux-gnu", std::env::consts::ARCH);
    run(Command::new("clang")
        .args(["-O2", "-g", "-target", "bpf", "-I", &multiarch, "-c"])
        .arg(&src)
        .arg("-o")
        .arg(&obj));
    obj
}

/// The engine configuration: afpacket `lan0`/`wan0`, the two interfaces,
/// then `extra` (`[control]`, `[lb]`).
pub fn engine_config(extra: &str) -> String {
    format!(
        r#"[engine]
workers = {WORKERS}
poll = "adaptive"

[[port]]
name = "lan0"
driver = "afpacket"
iface = "lan0"

[[port]]
name = "wan0"
driver = "afpacket"
iface = "wan0"

[[interface]]
port = "lan0"
address = "{R_LAN}/24"

[[interface]]
port = "wan0"
address = "{R_BACK}/24"
{extra}"#
    )
}

/// The built topology. Fields drop in order: control, engine, backends,
/// namespaces, then the scratch directories (kept when a test panics).
#[derive(Debug)]
pub struct LbTopology {
    pub control: Option<Control>,
    pub engine: Option<Engine>,
    pub backends: Vec<Backend>,
    pub client: Netns,
    pub r: Netns,
    pub sw: Netns,
    pub mode: Mode,
    /// The engine's (and the control's) runtime directory.
    pub runtime: PathBuf,
    /// sha256 (hex) of `BIG_FILE`.
    pub big_sha256: String,
    pub dir: TempDir,
}

/// What to run beside the namespaces.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Appended to the engine config (e.g. an `[lb]` section).
    pub engine_extra: String,
    /// Start the control process (and give the engine `[control]`).
    pub control: bool,
    /// Start no engine at all (`R` stays an empty namespace).
    pub no_engine: bool,
}

impl LbTopology {
    /// Builds the namespaces and servers, starts the engine (waits until
    /// it routes from the client to every backend) and the control process
    /// if asked.
    pub fn build(tag: &str, mode: Mode, opts: Options) -> Self {
        crate::require_root();
        let dir = TempDir::new(tag);
        let runtime = dir.join("shm");
        let client = Netns::new("cl");
        let r = Netns::new("r");
        let sw = Netns::new("sw");
        sw.ip(&["link", "add", "br0", "type", "bridge"]);
        sw.link_up("br0");
        veth(&client, "eth0", &r, "lan0");
        veth(&r, "wan0", &sw, "up0");
        sw.ip(&["link", "set", "up0", "master", "br0"]);
        client.addr_add("eth0", &format!("{CLIENT}/24"));
        client.route_add(&["default", "via", R_LAN]);
        for i in ["lan0", "wan0"] {
            r.disable_ipv6(i);
        }
        let backends = BACKENDS
            .iter()
            .map(|&(name, addr)| Backend::build(name, addr, &sw, mode, dir.path()))
            .collect();
        let mut t = LbTopology {
            control: None,
            engine: None,
            backends,
            client,
            r,
            sw,
            mode,
            runtime,
            big_sha256: String::new(),
            dir,
        };
        t.big_sha256 = sha256(&t.backends[0].dir.join("www").join(BIG_FILE));
        if !opts.no_engine {
            let mut extra = String::new();
            if opts.control {
                extra += &format!("\n[control]\nruntime_dir = \"{}\"\n", t.runtime.display());
            }
            extra += &opts.engine_extra;
            let mut e = Engine::start(
                Some(&t.r),
                &engine_config(&extra),
                t.dir.path(),
                "engine",
                &[],
            );
            e.wait_ready();
            t.engine = Some(e);
            t.wait_routing(Duration::from_secs(20));
        }
        if opts.control {
            t.control = Some(Control::start_in(
                Some(&t.client),
                t.dir.path(),
                &t.runtime,
                API_PORT,
                "control",
            ));
        }
        t
    }

    /// The control process (fails the test if it was not started).
    pub fn control(&self) -> &Control {
        self.control.as_ref().expect("built with a control process")
    }

    /// The engine (fails the test if it was not started).
    pub fn engine(&mut self) -> &mut Engine {
        self.engine.as_mut().expect("built with an engine")
    }

    /// The backend called `name`.
    pub fn backend(&mut self, name: &str) -> &mut Backend {
        self.backends
            .iter_mut()
            .find(|b| b.name == name)
            .unwrap_or_else(|| panic!("no backend {name}"))
    }

    /// Pings every backend from the client (through the engine, plain
    /// routing) until all answer; panics with the engine's output after
    /// `timeout`.
    pub fn wait_routing(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        for (_, addr) in BACKENDS {
            loop {
                let out = self
                    .client
                    .exec_output("ping", &["-n", "-c", "1", "-W", "1", addr]);
                if out.status.success() {
                    break;
                }
                if let Some(e) = self.engine.as_mut() {
                    e.assert_running();
                }
                if Instant::now() >= deadline {
                    let log = self
                        .engine
                        .as_mut()
                        .map(|e| e.process().report())
                        .unwrap_or_default();
                    panic!("the client cannot ping {addr} after {timeout:?}\n{log}");
                }
            }
        }
    }

    /// Runs `py/lb_client.py ARGS` in the client namespace; returns its
    /// JSON results.
    pub fn client_py(&self, args: &[&str]) -> Vec<Value> {
        let mut a = vec!["-c", LB_CLIENT_PY];
        a.extend_from_slice(args);
        let out = self.client.exec(PYTHON, &a);
        serde_json::from_str::<Value>(out.trim())
            .unwrap_or_else(|e| panic!("lb_client.py printed {out:?}: {e}"))
            .as_array()
            .expect("a JSON list")
            .clone()
    }

    /// New-connection HTTP GETs to `addr:port` from the client, one after
    /// another, for `seconds` or `most` requests (see `py/lb_client.py`).
    pub fn http_requests(&self, addr: &str, port: u16, seconds: f64, most: usize) -> Vec<Value> {
        let (p, s, m) = (port.to_string(), seconds.to_string(), most.to_string());
        self.client_py(&["http", addr, &p, &s, &m])
    }

    /// `count` UDP flows (one datagram each) from the client to
    /// `addr:port`, each answered with the backend's name.
    pub fn udp_requests(&self, addr: &str, port: u16, count: usize) -> Vec<Value> {
        let (p, c) = (port.to_string(), count.to_string());
        self.client_py(&["udp", addr, &p, &c])
    }

    /// `count` curl requests to `http://VIP/`, each on a new connection
    /// (`Connection: close`); returns the responding backend of each (a
    /// failed request is `"fail:<code>"`).
    pub fn curl_many(&self, count: usize) -> Vec<String> {
        let url = format!("http://{VIP}/?n=[1-{count}]");
        let out = self.client.exec_output(
            "curl",
            &[
                "-s",
                "--max-time",
                "5",
                "-H",
                "Connection: close",
                "-w",
                " %{http_code}\n",
                &url,
            ],
        );
        let text = String::from_utf8_lossy(&out.stdout);
        // Each response is "<body>\n <code>\n"; a failed one is " 000\n".
        let mut res = Vec::new();
        let mut body: Option<&str> = None;
        for line in text.lines() {
            if let Some(code) = line.strip_prefix(' ') {
                match (body.take(), code) {
                    (Some(b), "200") => res.push(b.to_string()),
                    (_, c) => res.push(format!("fail:{c}")),
                }
            } else {
                body = Some(line);
            }
        }
        res
    }

    /// Starts a download of `BIG_FILE` (rate-limited by nginx) from `addr`
    /// (the VIP) in the client namespace.
    pub fn start_download(&self, addr: &str, n: usize) -> Download {
        let name = format!("dl{n}");
        let out = self.dir.join(&format!("{name}.bin"));
        let headers = self.dir.join(&format!("{name}.hdr"));
        let url = format!("http://{addr}/{BIG_FILE}");
        let proc = self.client.spawn(
            "curl",
            &[
                "-sS",
                "--fail",
                "-D",
                path_str(&headers),
                "-o",
                path_str(&out),
                &url,
            ],
            self.dir.path(),
            &name,
        );
        Download { proc, out, headers }
    }

    /// Summarises a pcap written in this topology (see `py/ipip_summary.py`).
    pub fn ipip_summary(&self, pcap: &Path) -> Vec<Value> {
        let out = run(Command::new(PYTHON).args(["-c", IPIP_SUMMARY_PY]).arg(pcap));
        serde_json::from_str::<Value>(out.trim())
            .unwrap_or_else(|e| panic!("ipip_summary.py printed {out:?}: {e}"))
            .as_array()
            .expect("a JSON list")
            .clone()
    }
}

/// A download running in the client namespace.
#[derive(Debug)]
pub struct Download {
    pub proc: BgProcess,
    out: PathBuf,
    headers: PathBuf,
}

impl Download {
    /// The backend that answers (its `X-Backend` header) once the headers
    /// arrived; `None` if the download ended without them within 10 s.
    pub fn backend(&mut self) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let h = std::fs::read_to_string(&self.headers).unwrap_or_default();
            if let Some(v) = h.lines().find_map(|l| {
                l.strip_prefix("X-Backend:")
                    .or_else(|| l.strip_prefix("x-backend:"))
            }) {
                return Some(v.trim().to_string());
            }
            if self.proc.try_wait().is_some() || Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for the download to end; returns whether curl succeeded and
    /// the sha256 of what it wrote.
    pub fn finish(mut self, timeout: Duration) -> (bool, String) {
        let status = self
            .proc
            .wait_timeout(timeout)
            .unwrap_or_else(|| panic!("download did not end: {}", self.proc.report()));
        let sum = if self.out.exists() {
            sha256(&self.out)
        } else {
            String::new()
        };
        (status.success(), sum)
    }
}

/// A Prometheus sample's value: the first line of `text` that starts with
/// `name{` and contains every label pair in `labels`.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .find(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn write(file: &Path, bytes: &[u8]) {
    std::fs::write(file, bytes).unwrap_or_else(|e| panic!("write {}: {e}", file.display()));
}

/// Asks the engine's `lb.sock` in `runtime` for its per-backend counters
/// (`shm/src/lb_query.rs`); `None` while it does not answer.
pub fn lb_query(runtime: &Path) -> Option<Value> {
    use std::io::{BufRead, BufReader, Write};
    let mut s = std::os::unix::net::UnixStream::connect(runtime.join("lb.sock")).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"{}\n").ok()?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).ok()?;
    serde_json::from_str(&line).ok()
}

impl LbTopology {
    /// `GET /api/v1/lb/vips/NAME`.
    pub fn vip(&self, name: &str) -> Value {
        self.control()
            .request("GET", &format!("lb/vips/{name}"), None)
    }

    /// The API's entry for backend `addr:port` of VIP `name`.
    pub fn api_backend(&self, name: &str, endpoint: &str) -> Value {
        let v = self.vip(name);
        v["backends"]
            .as_array()
            .and_then(|bs| {
                bs.iter()
                    .find(|b| {
                        format!("{}:{}", b["address"].as_str().unwrap_or(""), b["port"]) == endpoint
                    })
                    .cloned()
            })
            .unwrap_or_else(|| panic!("no backend {endpoint} in {v}"))
    }

    /// Waits (up to 30 s) until the API shows `health` for every backend
    /// `endpoints` of VIP `name`; returns the VIP.
    pub fn wait_health(&self, name: &str, endpoints: &[String], health: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let v = self.vip(name);
            let all = endpoints
                .iter()
                .all(|e| self.api_backend(name, e)["health"] == health);
            if all {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "backends {endpoints:?} of {name} never all {health}: {v}"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// The engine's backends (from `lb.sock`) once `want` holds for them
    /// (waits up to 30 s).
    pub fn wait_engine(&self, what: &str, want: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let reply = lb_query(&self.runtime);
            let backends = reply
                .as_ref()
                .and_then(|r| r["backends"]["backends"].as_array().cloned());
            if let Some(b) = &backends {
                if want(b) {
                    return b.clone();
                }
            }
            assert!(
                Instant::now() < deadline,
                "the engine never ran {what}: lb.sock says {reply:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The control's /metrics text (scraped in its namespace).
    pub fn metrics(&self) -> String {
        let c = self.control();
        let out = c
            .command(Path::new("curl"))
            .args(["-sS", "--fail", &c.metrics])
            .output()
            .expect("run curl");
        assert!(out.status.success(), "scrape {}: {:?}", c.metrics, out);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// The engine's entry for `addr:port` in an `lb.sock` backend list.
pub fn engine_backend<'a>(backends: &'a [Value], endpoint: &str) -> Option<&'a Value> {
    backends
        .iter()
        .find(|b| format!("{}:{}", b["addr"].as_str().unwrap_or(""), b["port"]) == endpoint)
}

/// Checks that `counts[i]` of `total` answers are within ±10 % of backend
/// `i`'s weighted share; panics with the numbers otherwise.
pub fn assert_spread(counts: &[usize], weights: &[u32]) {
    let total: usize = counts.iter().sum();
    let wsum: u32 = weights.iter().sum();
    for (i, (&c, &w)) in counts.iter().zip(weights).enumerate() {
        let want = total as f64 * f64::from(w) / f64::from(wsum);
        assert!(
            (c as f64 - want).abs() <= 0.10 * want,
            "backend {i}: {c} of {total} answers, weighted share {want:.0} ± 10 % \
             (counts {counts:?}, weights {weights:?})"
        );
    }
}
