//! Ready-made topologies: h1 — router — h2, with the router being the engine
//! (the default) or, to debug the test machinery itself, the Linux kernel.

use std::time::{Duration, Instant};

use crate::engine::Engine;
use crate::netns::{veth, Netns};
use crate::stats::EngineStats;
use crate::tempdir::TempDir;

/// h1's address.
pub const H1: &str = "10.1.0.2";
/// h2's address.
pub const H2: &str = "10.2.0.2";
/// The router's address on h1's side (h1's gateway).
pub const R_LAN: &str = "10.1.0.1";
/// The router's address on h2's side (h2's gateway).
pub const R_WAN: &str = "10.2.0.1";

/// What forwards between h1 and h2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouterKind {
    /// patronus-engine on afpacket ports `lan0`/`wan0`.
    Engine,
    /// The kernel with ip_forward=1 and the same addresses: a stand-in to
    /// debug the tests' machinery; it has no engine counters.
    Kernel,
}

impl RouterKind {
    /// `$PATRONUS_E2E_ROUTER` = `kernel` selects the stand-in; anything else
    /// (or unset) the engine.
    pub fn from_env() -> Self {
        match std::env::var("PATRONUS_E2E_ROUTER").as_deref() {
            Ok("kernel") => RouterKind::Kernel,
            _ => RouterKind::Engine,
        }
    }
}

/// The engine configuration of the router topology; `extra` is appended
/// (more `[[route]]`s, `[arp]`, …).
pub fn router_config(extra: &str) -> String {
    router_config_workers(extra, 1)
}

/// The router config with `workers` workers (fanned out by PACKET_FANOUT).
pub fn router_config_workers(extra: &str, workers: usize) -> String {
    format!(
        r#"[engine]
workers = {workers}
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
address = "{R_WAN}/24"
{extra}"#
    )
}

/// h1 (10.1.0.2/24, gw 10.1.0.1) — R — h2 (10.2.0.2/24, gw 10.2.0.1).
/// h1's and h2's interface is `eth0`; R's are `lan0` (to h1) and `wan0`
/// (to h2). Fields drop in order: engine, then namespaces, then the scratch
/// directory.
#[derive(Debug)]
pub struct Topology {
    pub engine: Option<Engine>,
    pub h1: Netns,
    pub r: Netns,
    pub h2: Netns,
    pub kind: RouterKind,
    /// MAC of R's `lan0` (the engine's MAC on h1's link).
    pub lan_mac: String,
    /// MAC of R's `wan0`.
    pub wan_mac: String,
    pub dir: TempDir,
}

impl Topology {
    /// The router topology with the router chosen by [`RouterKind::from_env`]
    /// and no route beyond the two connected subnets.
    pub fn router(tag: &str) -> Self {
        Self::build(tag, RouterKind::from_env(), "")
    }

    /// The router topology with `extra` appended to the engine config.
    pub fn build(tag: &str, kind: RouterKind, extra: &str) -> Self {
        Self::build_workers(tag, kind, extra, 1)
    }

    /// The router topology with `workers` engine workers.
    pub fn build_workers(tag: &str, kind: RouterKind, extra: &str, workers: usize) -> Self {
        crate::require_root();
        let dir = TempDir::new(tag);
        let h1 = Netns::new("h1");
        let r = Netns::new("r");
        let h2 = Netns::new("h2");
        veth(&h1, "eth0", &r, "lan0");
        veth(&h2, "eth0", &r, "wan0");
        h1.addr_add("eth0", &format!("{H1}/24"));
        h1.route_add(&["default", "via", R_LAN]);
        h2.addr_add("eth0", &format!("{H2}/24"));
        h2.route_add(&["default", "via", R_WAN]);
        let lan_mac = r.mac("lan0");
        let wan_mac = r.mac("wan0");
        let engine = match kind {
            RouterKind::Kernel => {
                r.addr_add("lan0", &format!("{R_LAN}/24"));
                r.addr_add("wan0", &format!("{R_WAN}/24"));
                r.sysctl("net.ipv4.ip_forward", "1");
                None
            }
            RouterKind::Engine => {
                for i in ["lan0", "wan0"] {
                    r.disable_ipv6(i);
                }
                let mut e = Engine::start(
                    Some(&r),
                    &router_config_workers(extra, workers),
                    dir.path(),
                    "engine",
                    &[],
                );
                e.wait_ready();
                Some(e)
            }
        };
        Topology {
            engine,
            h1,
            r,
            h2,
            kind,
            lan_mac,
            wan_mac,
            dir,
        }
    }

    /// The engine; fails the test under the kernel stand-in, which has no
    /// engine counters to check.
    pub fn engine(&mut self) -> &mut Engine {
        self.engine.as_mut().expect(
            "this test checks engine counters; it cannot run with PATRONUS_E2E_ROUTER=kernel",
        )
    }

    /// The engine's counters now (all zero under the kernel stand-in).
    pub fn stats(&mut self) -> EngineStats {
        match self.engine.as_mut() {
            Some(e) => e.stats(),
            None => EngineStats::standin(),
        }
    }

    /// Pings h2 from h1 once a second until a reply comes (up to `timeout`);
    /// panics with the engine's output otherwise.
    pub fn wait_forwarding(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let out = self
                .h1
                .exec_output("ping", &["-n", "-c", "1", "-W", "1", H2]);
            if out.status.success() {
                return;
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
                panic!(
                    "h1 cannot ping h2 through the router after {timeout:?}: {}{}\n{log}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
}
