//! The NAT44 topology: two inside hosts on a switch behind a NAT router, and
//! an outside server (nginx, dnsmasq) that has no route back to the inside
//! subnet, so whatever comes back works only through the translation. The
//! router is nftables masquerade (the reference) or the engine (two workers,
//! so packets cross between them to reach their session's owner).
//!
//! ```text
//!  in1 10.10.0.2 ─┐
//!                 sw (bridge) ── lan0 10.10.0.1  R  wan0 198.51.100.1 ── eth0 198.51.100.2 server
//!  in2 10.10.0.3 ─┘
//! ```

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::engine::Engine;
use crate::netns::{veth, Netns};
use crate::process::BgProcess;
use crate::tempdir::TempDir;

/// The inside subnet, behind the router's `lan0`.
pub const INSIDE_PREFIX: &str = "10.10.0.";
/// The router's inside address (the inside hosts' gateway).
pub const R_INSIDE: &str = "10.10.0.1";
/// The first inside host.
pub const IN1: &str = "10.10.0.2";
/// The second inside host.
pub const IN2: &str = "10.10.0.3";
/// The router's outside address (on `wan0`); also the nftables pool.
pub const R_OUTSIDE: &str = "198.51.100.1";
/// The outside server.
pub const SERVER: &str = "198.51.100.2";
/// The name dnsmasq on the server answers, and its address.
pub const DNS_NAME: &str = "www.nat.test";
pub const DNS_ANSWER: &str = "198.51.100.80";
/// The file nginx serves (`http://SERVER/FILE_NAME`), and its size.
pub const FILE_NAME: &str = "payload.bin";
pub const FILE_SIZE: usize = 3 << 20;
/// The port forward: TCP `R_OUTSIDE:FORWARD_PORT` reaches `IN1:INSIDE_HTTP_PORT`.
pub const FORWARD_PORT: u16 = 8080;
pub const INSIDE_HTTP_PORT: u16 = 8000;

/// Which inbound packets may use an existing mapping (RFC 4787 §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filtering {
    /// Any remote endpoint may reach a mapped inside endpoint.
    EndpointIndependent,
    /// Only the remote address and port the inside endpoint has sent to; new
    /// inbound connections (other than port forwards) are dropped.
    AddressAndPortDependent,
}

/// What translates between the inside and the outside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NatRouter {
    /// The Linux kernel with nftables masquerade on `wan0`, a `dnat` rule for
    /// the port forward, and (dependent filtering) a policy dropping new
    /// connections from the outside. The reference.
    Nftables,
    /// patronus-engine on afpacket ports `lan0`/`wan0` with `[nat]`.
    Engine,
}

/// Why a topology could not be built for a router kind.
#[derive(Debug, PartialEq, Eq)]
pub enum Unsupported {
    /// The router kind has no implementation in this topology yet.
    NotImplemented(NatRouter),
    /// The router cannot do this filtering mode.
    Filtering(NatRouter, Filtering),
}

/// The built topology. Fields drop in order: the servers, the namespaces,
/// then the scratch directory (kept when the test panics).
#[derive(Debug)]
pub struct NatTopology {
    servers: Vec<BgProcess>,
    /// The engine (router kind `Engine`).
    pub engine: Option<Engine>,
    pub in1: Netns,
    pub in2: Netns,
    pub sw: Netns,
    pub r: Netns,
    pub server: Netns,
    pub kind: NatRouter,
    pub filtering: Filtering,
    /// sha256 (hex) of the file nginx serves.
    pub file_sha256: String,
    pub dir: TempDir,
}

impl NatTopology {
    /// Builds the namespaces, starts nginx and dnsmasq on the server and
    /// configures the router; fails only if the router kind cannot do it.
    pub fn build(kind: NatRouter, filtering: Filtering) -> Result<Self, Unsupported> {
        crate::require_root();
        let dir = TempDir::new("nat");
        let in1 = Netns::new("in1");
        let in2 = Netns::new("in2");
        let sw = Netns::new("sw");
        let r = Netns::new("r");
        let server = Netns::new("srv");

        sw.ip(&["link", "add", "br0", "type", "bridge"]);
        sw.link_up("br0");
        veth(&r, "lan0", &sw, "p0");
        veth(&in1, "eth0", &sw, "p1");
        veth(&in2, "eth0", &sw, "p2");
        for p in ["p0", "p1", "p2"] {
            sw.ip(&["link", "set", p, "master", "br0"]);
        }
        veth(&r, "wan0", &server, "eth0");
        for (ns, addr) in [(&in1, IN1), (&in2, IN2)] {
            ns.addr_add("eth0", &format!("{addr}/24"));
            ns.route_add(&["default", "via", R_INSIDE]);
        }
        // Only the connected route: the server cannot reach 10.10.0.0/24.
        server.addr_add("eth0", &format!("{SERVER}/24"));
        for i in ["lan0", "wan0"] {
            r.disable_ipv6(i);
        }

        let mut t = NatTopology {
            servers: Vec::new(),
            engine: None,
            in1,
            in2,
            sw,
            r,
            server,
            kind,
            filtering,
            file_sha256: String::new(),
            dir,
        };
        match kind {
            NatRouter::Nftables => t.nftables()?,
            NatRouter::Engine => t.engine()?,
        }
        t.file_sha256 = t.write_payload();
        t.start_nginx();
        t.start_dnsmasq();
        Ok(t)
    }

    /// The outside addresses translated traffic may leave from.
    pub fn pool(&self) -> Vec<&'static str> {
        match self.kind {
            NatRouter::Nftables | NatRouter::Engine => vec![R_OUTSIDE],
        }
    }

    /// The inside hosts with their addresses.
    pub fn inside(&self) -> [(&Netns, &'static str); 2] {
        [(&self.in1, IN1), (&self.in2, IN2)]
    }

    /// Kernel forwarding plus the nftables ruleset in R.
    fn nftables(&mut self) -> Result<(), Unsupported> {
        let r = &self.r;
        r.addr_add("lan0", &format!("{R_INSIDE}/24"));
        r.addr_add("wan0", &format!("{R_OUTSIDE}/24"));
        r.sysctl("net.ipv4.ip_forward", "1");
        let filter = match self.filtering {
            // Conntrack only lets replies of the exact 5-tuple back in.
            Filtering::EndpointIndependent => {
                return Err(Unsupported::Filtering(self.kind, self.filtering))
            }
            // New connections from the outside are dropped, whether they
            // would be forwarded or delivered to R itself (which would
            // otherwise answer with a RST or a port unreachable).
            Filtering::AddressAndPortDependent => {
                r#"
table ip patronus_filter {
    chain forward {
        type filter hook forward priority filter; policy accept;
        iifname "wan0" ct status dnat accept
        iifname "wan0" ct state new,invalid drop
    }
    chain input {
        type filter hook input priority filter; policy accept;
        iifname "wan0" ct state new,invalid drop
    }
}
"#
            }
        };
        let rules = format!(
            r#"
table ip patronus_nat {{
    chain prerouting {{
        type nat hook prerouting priority dstnat; policy accept;
        iifname "wan0" ip daddr {R_OUTSIDE} tcp dport {FORWARD_PORT} dnat to {IN1}:{INSIDE_HTTP_PORT}
    }}
    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        oifname "wan0" masquerade
    }}
}}
{filter}"#
        );
        let file = self.dir.join("ruleset.nft");
        write(&file, rules.as_bytes());
        r.exec("nft", &["-f", path_str(&file)]);
        Ok(())
    }

    /// The engine in R with source NAT on `wan0`, the port forward and the
    /// filtering mode.
    fn engine(&mut self) -> Result<(), Unsupported> {
        let filtering = match self.filtering {
            Filtering::EndpointIndependent => "endpoint-independent",
            Filtering::AddressAndPortDependent => "address-and-port-dependent",
        };
        let config = format!(
            r#"[engine]
workers = 2
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
address = "{R_INSIDE}/24"

[[interface]]
port = "wan0"
address = "{R_OUTSIDE}/24"

[nat]
outside = "wan0"
pool = ["{R_OUTSIDE}"]
filtering = "{filtering}"

[[nat.forward]]
proto = "tcp"
outside = "{R_OUTSIDE}:{FORWARD_PORT}"
inside = "{IN1}:{INSIDE_HTTP_PORT}"
"#
        );
        let mut e = Engine::start(Some(&self.r), &config, self.dir.path(), "engine", &[]);
        e.wait_ready();
        self.engine = Some(e);
        Ok(())
    }

    /// Writes the pseudo-random file nginx serves; returns its sha256.
    fn write_payload(&self) -> String {
        let www = self.dir.join("www");
        std::fs::create_dir_all(&www).expect("create www");
        let file = www.join(FILE_NAME);
        write(&file, &pseudo_random(FILE_SIZE, std::process::id().into()));
        sha256(&file)
    }

    fn start_nginx(&mut self) {
        let d = self.dir.path().display().to_string();
        for sub in ["body", "proxy", "fastcgi", "uwsgi", "scgi"] {
            std::fs::create_dir_all(self.dir.join("nginx-tmp").join(sub)).expect("nginx tmp");
        }
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
    default_type application/octet-stream;
    server {{
        listen {SERVER}:80;
        root {d}/www;
    }}
}}
"#
        );
        let file = self.dir.join("nginx.conf");
        write(&file, conf.as_bytes());
        let err = format!("{d}/nginx-error.log");
        let p = self.server.spawn(
            "nginx",
            &["-p", &d, "-e", &err, "-c", path_str(&file)],
            self.dir.path(),
            "nginx",
        );
        let p = wait_listening(&self.server, p, "tcp", 80);
        self.servers.push(p);
    }

    fn start_dnsmasq(&mut self) {
        let record = format!("--host-record={DNS_NAME},{DNS_ANSWER}");
        let listen = format!("--listen-address={SERVER}");
        let p = self.server.spawn(
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
            self.dir.path(),
            "dnsmasq",
        );
        let p = wait_listening(&self.server, p, "udp", 53);
        self.servers.push(p);
    }

    /// nginx's access log: the client address of every request.
    pub fn nginx_clients(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("nginx-access.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_whitespace().next().map(str::to_string))
            .collect()
    }

    /// dnsmasq's log: the source address of every query for `DNS_NAME`.
    pub fn dns_clients(&self) -> Vec<String> {
        let p = self
            .servers
            .iter()
            .find(|p| p.what().contains("dnsmasq"))
            .expect("dnsmasq runs");
        // "query[A] www.nat.test from 198.51.100.1"
        p.stderr()
            .lines()
            .filter(|l| l.contains("query[") && l.contains(DNS_NAME))
            .filter_map(|l| l.split(" from ").nth(1).map(|s| s.trim().to_string()))
            .collect()
    }

    /// Pings the server from both inside hosts until both get a reply (up to
    /// `timeout`); panics otherwise.
    pub fn wait_ready(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        for (ns, addr) in self.inside() {
            loop {
                let out = ns.exec_output("ping", &["-n", "-c", "1", "-W", "1", SERVER]);
                if out.status.success() {
                    break;
                }
                if Instant::now() >= deadline {
                    panic!(
                        "{addr} cannot ping {SERVER} through the {:?} router after {timeout:?}: {}{}",
                        self.kind,
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            }
        }
    }
}

/// Waits until something in `ns` listens on `proto` (`tcp`/`udp`) `port`;
/// panics with the process's output if it dies or never does.
pub fn wait_listening(ns: &Netns, mut p: BgProcess, proto: &str, port: u16) -> BgProcess {
    let flags = if proto == "tcp" { "-Hltn" } else { "-Hlun" };
    let filter = format!("sport = :{port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if !ns.exec("ss", &[flags, &filter]).trim().is_empty() {
            return p;
        }
        if p.try_wait().is_some() || Instant::now() > deadline {
            panic!("nothing listens on {proto} {port}: {}", p.report());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// sha256 of a file, in hex (coreutils' sha256sum).
pub fn sha256(file: &Path) -> String {
    let out = crate::cmd::run_args("sha256sum", &[path_str(file)]);
    out.split_whitespace()
        .next()
        .unwrap_or_else(|| panic!("sha256sum printed {out:?}"))
        .to_string()
}

/// `n` bytes from a xorshift generator: incompressible, never all equal.
pub fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(n + 8);
    while v.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(n);
    v
}

fn write(file: &PathBuf, bytes: &[u8]) {
    std::fs::write(file, bytes).unwrap_or_else(|e| panic!("write {}: {e}", file.display()));
}

/// A path as `&str` for command lines (temp paths are UTF-8).
pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}
