//! The WireGuard site-to-site topology: a host behind each site's router,
//! the two routers joined by a WAN namespace that routes between their
//! public addresses and nothing else. The hosts reach each other only
//! through the tunnel (the WAN has no route to either inside subnet). The
//! routers are wireguard-go (userspace WireGuard on a TUN, configured with
//! `wg`: the reference, and the peer for interoperability) or the engine
//! (afpacket ports, `[[wireguard]]`, two workers), or the engine with its
//! control process, the tunnel, its peer and the route into it configured
//! through the REST API with `patronusctl` (pushed through shared memory),
//! in any mix.
//!
//! ```text
//!  ha 10.10.1.2 ── ra (lan 10.10.1.1 | wan 192.0.2.1) ── wan (192.0.2.254 | 198.51.100.254)
//!                                                         ── rb (wan 198.51.100.1 | lan 10.10.2.1) ── hb 10.10.2.2
//! ```

use std::path::Path;
use std::time::{Duration, Instant};

use crate::control::Control;
use crate::engine::Engine;
use crate::netns::{veth, Netns};
use crate::process::BgProcess;
use crate::tempdir::TempDir;

/// Host behind site A and its router's inside address.
pub const HA: &str = "10.10.1.2";
pub const RA_LAN: &str = "10.10.1.1";
pub const A_SUBNET: &str = "10.10.1.0/24";
/// Site A's public (WAN) address and the WAN's side of that link.
pub const RA_WAN: &str = "192.0.2.1";
pub const WAN_A: &str = "192.0.2.254";
/// Host behind site B and its router's inside address.
pub const HB: &str = "10.10.2.2";
pub const RB_LAN: &str = "10.10.2.1";
pub const B_SUBNET: &str = "10.10.2.0/24";
/// Site B's public address and the WAN's side of that link.
pub const RB_WAN: &str = "198.51.100.1";
pub const WAN_B: &str = "198.51.100.254";
/// The UDP port both sites listen on.
pub const WG_PORT: u16 = 51820;

/// What terminates the tunnel at a site.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WgRouter {
    /// wireguard-go: the reference.
    WireguardGo,
    /// patronus-engine, the tunnel in its configuration file.
    Engine,
    /// patronus-engine and patronus-control, the tunnel configured through
    /// the API (`patronusctl wg ...`, `patronusctl route add ... tunnel`).
    EngineApi,
}

/// Why a topology could not be built (every kind is supported today).
#[derive(Debug, PartialEq, Eq)]
pub enum Unsupported {
    NotImplemented(WgRouter),
}

/// A WireGuard key pair (base64, as `wg` prints them).
#[derive(Clone, Debug)]
pub struct Keys {
    pub private: String,
    pub public: String,
}

impl Keys {
    /// A fresh pair from `wg genkey` / `wg pubkey`.
    pub fn generate() -> Self {
        let private = run_stdin("wg", &["genkey"], "");
        let public = run_stdin("wg", &["pubkey"], &private);
        Keys { private, public }
    }
}

/// One site's router as a WireGuard endpoint.
#[derive(Debug)]
pub struct Site {
    pub keys: Keys,
    /// The tunnel interface (wireguard-go) in the router's namespace.
    pub iface: String,
}

/// The built topology. Fields drop in order: the tunnel daemons, the
/// namespaces, then the scratch directory (kept when the test panics).
#[derive(Debug)]
pub struct WgTopology {
    daemons: Vec<BgProcess>,
    pub ha: Netns,
    pub ra: Netns,
    pub wan: Netns,
    pub rb: Netns,
    pub hb: Netns,
    pub a: Site,
    pub b: Site,
    /// What runs at site A and at site B.
    pub kinds: (WgRouter, WgRouter),
    /// The control processes (one per `EngineApi` site, in site order).
    pub controls: Vec<Control>,
    /// The engines (one per engine site), stopped before the namespaces go.
    pub engines: Vec<Engine>,
    pub dir: TempDir,
}

impl WgTopology {
    /// Builds the namespaces and both sites' tunnels (no packet crosses
    /// the tunnel yet: the first one a test sends makes its side initiate).
    pub fn build(kind: WgRouter) -> Result<Self, Unsupported> {
        Self::build_sites(kind, kind)
    }

    /// Site A run by `a_kind`, site B by `b_kind` (interoperability when
    /// they differ).
    pub fn build_sites(a_kind: WgRouter, b_kind: WgRouter) -> Result<Self, Unsupported> {
        crate::require_root();
        let dir = TempDir::new("wg");
        let ha = Netns::new("ha");
        let ra = Netns::new("ra");
        let wan = Netns::new("wan");
        let rb = Netns::new("rb");
        let hb = Netns::new("hb");
        veth(&ha, "eth0", &ra, "lan0");
        veth(&ra, "wan0", &wan, "a0");
        veth(&wan, "b0", &rb, "wan0");
        veth(&rb, "lan0", &hb, "eth0");
        for (ns, addr, gw) in [(&ha, HA, RA_LAN), (&hb, HB, RB_LAN)] {
            ns.addr_add("eth0", &format!("{addr}/24"));
            ns.route_add(&["default", "via", gw]);
        }
        wan.addr_add("a0", &format!("{WAN_A}/24"));
        wan.addr_add("b0", &format!("{WAN_B}/24"));
        wan.sysctl("net.ipv4.ip_forward", "1");
        for (r, lan, wan_addr, gw, kind) in [
            (&ra, RA_LAN, RA_WAN, WAN_A, a_kind),
            (&rb, RB_LAN, RB_WAN, WAN_B, b_kind),
        ] {
            if kind != WgRouter::WireguardGo {
                // The engine owns the router's veth ends.
                for i in ["lan0", "wan0"] {
                    r.disable_ipv6(i);
                }
                continue;
            }
            r.addr_add("lan0", &format!("{lan}/24"));
            r.addr_add("wan0", &format!("{wan_addr}/24"));
            r.route_add(&["default", "via", gw]);
            r.sysctl("net.ipv4.ip_forward", "1");
        }
        // Unique per test process and site: wireguard-go's control sockets
        // live in the shared /var/run/wireguard.
        let tag = std::process::id() % 100_000;
        let a = Site {
            keys: Keys::generate(),
            iface: format!("wga{tag}"),
        };
        let b = Site {
            keys: Keys::generate(),
            iface: format!("wgb{tag}"),
        };
        let mut t = WgTopology {
            daemons: Vec::new(),
            ha,
            ra,
            wan,
            rb,
            hb,
            a,
            b,
            kinds: (a_kind, b_kind),
            controls: Vec::new(),
            engines: Vec::new(),
            dir,
        };
        t.wireguard_go();
        t.engines();
        Ok(t)
    }

    /// The engine at each engine site: afpacket ports on the router's veth
    /// ends, the tunnel to the other site, the other site's subnet routed
    /// into it.
    fn engines(&mut self) {
        let sites = [
            (
                self.kinds.0,
                &self.ra,
                &self.a,
                &self.b,
                RA_LAN,
                RA_WAN,
                WAN_A,
                RB_WAN,
                B_SUBNET,
            ),
            (
                self.kinds.1,
                &self.rb,
                &self.b,
                &self.a,
                RB_LAN,
                RB_WAN,
                WAN_B,
                RA_WAN,
                A_SUBNET,
            ),
        ];
        let mut engines = Vec::new();
        let mut controls = Vec::new();
        for (kind, ns, me, peer, lan, wan, gw, endpoint, remote) in sites {
            if kind == WgRouter::WireguardGo {
                continue;
            }
            let key = self.dir.join(&format!("{}.key", me.iface));
            std::fs::write(&key, format!("{}\n", me.keys.private)).expect("write key");
            let runtime = self.dir.join(&format!("{}-shm", me.iface));
            let tunnel = if kind == WgRouter::Engine {
                format!(
                    r#"
[[route]]
prefix = "{remote}"
tunnel = "wg0"

[[wireguard]]
name = "wg0"
private_key_file = "{key}"
listen_port = {WG_PORT}
address = "{wan}"

[[wireguard.peer]]
public_key = "{peer_key}"
endpoint = "{endpoint}:{WG_PORT}"
allowed_ips = ["{remote}"]
"#,
                    key = key.display(),
                    peer_key = peer.keys.public,
                )
            } else {
                format!("\n[control]\nruntime_dir = \"{}\"\n", runtime.display())
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
address = "{lan}/24"

[[interface]]
port = "wan0"
address = "{wan}/24"

[[route]]
prefix = "0.0.0.0/0"
via = "{gw}"
{tunnel}"#
            );
            let mut e = Engine::start(Some(ns), &config, self.dir.path(), &me.iface, &[]);
            e.wait_ready();
            engines.push(e);
            if kind == WgRouter::EngineApi {
                let port = 20000 + ((std::process::id() * 4 + controls.len() as u32 * 2) % 20000);
                let dir = self.dir.join(&format!("{}-control", me.iface));
                std::fs::create_dir_all(&dir).expect("control dir");
                let c = Control::start(
                    &dir,
                    &runtime,
                    port as u16,
                    &format!("control-{}", me.iface),
                );
                let port = WG_PORT.to_string();
                let key = key.to_str().expect("utf-8 path");
                c.ctl_ok(&[
                    "wg",
                    "tunnel",
                    "add",
                    "wg0",
                    "--listen-port",
                    &port,
                    "--private-key-file",
                    key,
                ]);
                let endpoint = format!("{endpoint}:{WG_PORT}");
                c.ctl_ok(&[
                    "wg",
                    "peer",
                    "add",
                    "wg0",
                    &peer.keys.public,
                    "--endpoint",
                    &endpoint,
                    "--allowed-ip",
                    remote,
                ]);
                c.ctl_ok(&["route", "add", remote, "tunnel", "wg0"]);
                controls.push(c);
            }
        }
        self.engines = engines;
        self.controls = controls;
    }

    /// wireguard-go in each router, each with the other as its one peer.
    fn wireguard_go(&mut self) {
        let sites = [
            (self.kinds.0, &self.ra, &self.a, &self.b, RB_WAN, B_SUBNET),
            (self.kinds.1, &self.rb, &self.b, &self.a, RA_WAN, A_SUBNET),
        ];
        for (kind, ns, me, peer, endpoint, remote_subnet) in sites {
            if kind != WgRouter::WireguardGo {
                continue;
            }
            let mut d = ns.spawn(
                "wireguard-go",
                &["-f", &me.iface],
                self.dir.path(),
                &format!("wireguard-go-{}", me.iface),
            );
            wait_for_socket(&me.iface, &mut d);
            let key = self.dir.join(&format!("{}.key", me.iface));
            std::fs::write(&key, format!("{}\n", me.keys.private)).expect("write key");
            let port = WG_PORT.to_string();
            let endpoint = format!("{endpoint}:{WG_PORT}");
            ns.exec(
                "wg",
                &[
                    "set",
                    &me.iface,
                    "private-key",
                    key.to_str().expect("utf-8 path"),
                    "listen-port",
                    &port,
                    "peer",
                    &peer.keys.public,
                    "endpoint",
                    &endpoint,
                    "allowed-ips",
                    remote_subnet,
                ],
            );
            ns.link_up(&me.iface);
            ns.route_add(&[remote_subnet, "dev", &me.iface]);
            self.daemons.push(d);
        }
    }

    /// Pings `to` from `from` until a reply comes (up to `timeout`).
    pub fn ping_until(&self, from: &Netns, to: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let o = from.exec_output("ping", &["-n", "-c", "1", "-W", "1", to]);
            if o.status.success() {
                return true;
            }
        }
        false
    }

    /// `wg show IFACE DUMP-FIELD` for a site (e.g. `latest-handshakes`,
    /// `transfer`): the reference's own view of its peer.
    pub fn wg_show(&self, site_b: bool, field: &str) -> String {
        let (ns, site) = if site_b {
            (&self.rb, &self.b)
        } else {
            (&self.ra, &self.a)
        };
        ns.exec("wg", &["show", &site.iface, field])
    }
}

impl Drop for WgTopology {
    fn drop(&mut self) {
        self.engines.clear();
        for d in &mut self.daemons {
            d.stop(libc::SIGTERM, Duration::from_secs(5));
        }
        for s in [&self.a, &self.b] {
            let _ = std::fs::remove_file(format!("/var/run/wireguard/{}.sock", s.iface));
        }
    }
}

/// The 8-character label the engine's counters give a peer: standard
/// base64 of the first 6 bytes of its public key, i.e. the first 8
/// characters of the key's base64 text.
pub fn peer_label(public_key_b64: &str) -> String {
    public_key_b64.chars().take(8).collect()
}

/// Waits for wireguard-go's control socket (it exists once the TUN is up).
fn wait_for_socket(iface: &str, d: &mut BgProcess) {
    let sock = format!("/var/run/wireguard/{iface}.sock");
    for _ in 0..250 {
        if Path::new(&sock).exists() {
            return;
        }
        assert!(
            d.try_wait().is_none(),
            "wireguard-go exited: {}",
            d.report()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("wireguard-go made no {sock}: {}", d.report());
}

/// Runs `program args` with `input` on stdin; its trimmed stdout.
fn run_stdin(program: &str, args: &[&str], input: &str) -> String {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut c = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    c.stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    let o = c.wait_with_output().expect("wait");
    assert!(o.status.success(), "{program} {args:?} failed");
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}
