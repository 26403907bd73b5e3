//! The two-site, two-path WAN topology (issue 10): a host behind each
//! site's engine, the engines joined by two carriers — Linux routers
//! between site A's uplink subnet and site B's, which can drop a share of
//! the packets they forward (nftables `numgen random`) and whose links
//! can be set down. Each engine runs one WireGuard tunnel per uplink (one
//! peer: the other engine on the matching uplink), routes the far site's
//! LAN into the fibre tunnel, classifies flows, and (unless built plain)
//! steers among its two paths with the `[wan]` section.
//!
//! ```text
//!                      ┌─ wanx 172.16.1.1 ── cX (cfa ═ cfb) ── 172.16.2.1 wanx ─┐
//!  hA 10.10.1.2 ── lan0 eA          fibre                                        eB lan0 ── 10.10.2.2 hB
//!                      └─ wany 172.17.1.1 ── cY (cla ═ clb) ── 172.17.2.1 wany ─┘
//!                                   lte
//! ```
//!
//! Namespaces carry the test's pid in their names and go on drop, with
//! every process left in them, also when the test fails.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::engine::Engine;
use crate::netns::{veth, Netns};
use crate::stats::EngineStats;
use crate::tempdir::TempDir;
use crate::wg_topology::{peer_label, Keys};

/// Host behind site A and engine A's LAN address.
pub const HA: &str = "10.10.1.2";
pub const EA_LAN: &str = "10.10.1.1";
pub const A_LAN: &str = "10.10.1.0/24";
/// Host behind site B and engine B's LAN address.
pub const HB: &str = "10.10.2.2";
pub const EB_LAN: &str = "10.10.2.1";
pub const B_LAN: &str = "10.10.2.0/24";
/// Plain topology only: an address of each host (on `lo`) whose site
/// prefix is routed into the lte tunnel, so both tunnels can be pinged.
pub const HA_LTE: &str = "10.10.11.2";
pub const HB_LTE: &str = "10.10.12.2";
const A_LTE_NET: &str = "10.10.11.0/24";
const B_LTE_NET: &str = "10.10.12.0/24";

/// One of the two paths between the sites.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WanPath {
    /// Over carrier cX: kind fibre, cost 1.
    Fibre,
    /// Over carrier cY: kind lte, cost 10.
    Lte,
}

impl WanPath {
    pub const BOTH: [WanPath; 2] = [WanPath::Fibre, WanPath::Lte];

    /// The `[[wan.path]]` name (and metric label).
    pub fn name(self) -> &'static str {
        match self {
            WanPath::Fibre => "fibre",
            WanPath::Lte => "lte",
        }
    }

    /// The `[[wireguard]]` tunnel of the path (same name at both sites).
    pub fn tunnel(self) -> &'static str {
        match self {
            WanPath::Fibre => "wg-fibre",
            WanPath::Lte => "wg-lte",
        }
    }

    /// The engines' uplink port (and interface) for the path.
    pub fn uplink(self) -> &'static str {
        match self {
            WanPath::Fibre => "wanx",
            WanPath::Lte => "wany",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// Engine A's and engine B's uplink addresses, and the carrier's on
    /// each side.
    fn addrs(self) -> UplinkAddrs {
        let n = 16 + self.index();
        UplinkAddrs {
            a: format!("172.{n}.1.1"),
            carrier_a: format!("172.{n}.1.254"),
            b: format!("172.{n}.2.1"),
            carrier_b: format!("172.{n}.2.254"),
        }
    }

    fn listen_port(self) -> u16 {
        51820 + self.index() as u16
    }
}

struct UplinkAddrs {
    a: String,
    carrier_a: String,
    b: String,
    carrier_b: String,
}

/// One site.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Site {
    A,
    B,
}

/// A policy's repair settings (`fec*`, `compress` of `[[wan.policy]]`).
#[derive(Clone, Copy, Debug)]
pub struct PolicyOpts {
    /// `mode` instead of the policy's own (voice "best-score", bulk
    /// "cheapest", default: the engine's default).
    pub mode: Option<&'static str>,
    /// "off", "on" or "adaptive".
    pub fec: &'static str,
    pub fec_k: u8,
    pub fec_m: u8,
    pub fec_delay_ms: u32,
    pub compress: bool,
    /// Each packet on two paths (the far end keeps one).
    pub duplicate: bool,
}

impl Default for PolicyOpts {
    fn default() -> Self {
        PolicyOpts {
            mode: None,
            fec: "off",
            fec_k: 10,
            fec_m: 2,
            fec_delay_ms: 20,
            compress: false,
            duplicate: false,
        }
    }
}

impl PolicyOpts {
    fn toml(&self, mode: Option<&str>) -> String {
        let mode = match self.mode.or(mode) {
            Some(m) => format!("mode = \"{m}\"\n"),
            None => String::new(),
        };
        format!(
            "{mode}fec = \"{}\"\nfec_k = {}\nfec_m = {}\nfec_delay_ms = {}\ncompress = {}\nduplicate = {}\n",
            self.fec, self.fec_k, self.fec_m, self.fec_delay_ms, self.compress, self.duplicate
        )
    }
}

/// What to build.
#[derive(Clone, Copy, Debug)]
pub struct WanOptions {
    /// With the `[wan]` section; false: plain WireGuard (both tunnels,
    /// the far LAN into fibre, the far `*_LTE` prefix into lte).
    pub wan: bool,
    /// Loss in percent in each carrier from the start (fibre, lte).
    pub loss_pct: [u8; 2],
    pub voice: PolicyOpts,
    pub bulk: PolicyOpts,
    pub default: PolicyOpts,
    /// Engine workers per site.
    pub workers: usize,
    /// Site A's engine keeps its shared-memory files in
    /// [`WanTopology::runtime_dir`], for a control process to read.
    pub control_a: bool,
}

impl Default for WanOptions {
    fn default() -> Self {
        WanOptions {
            wan: true,
            loss_pct: [0, 0],
            voice: PolicyOpts::default(),
            bulk: PolicyOpts::default(),
            default: PolicyOpts::default(),
            workers: 1,
            control_a: false,
        }
    }
}

/// A carrier: Linux routers between the two sites' uplink subnets of one
/// path, as two namespaces joined by a `mid` veth pair: `a` (site A's
/// side) and `b` (site B's). Each segments what it sends over `mid` (no
/// UDP segmentation offload there), and the other's loss rule takes only
/// what comes in over `mid`: so random loss hits every packet on its own
/// even when an engine hands over a UDP GSO train (its afpacket port
/// coalesces a flow's consecutive frames, e.g. a FEC group's parity, into
/// one skb that a veth carries whole: one drop decision would take the
/// whole train or none of it).
#[derive(Debug)]
pub struct Carrier {
    /// Site A's side (`to-a`, `mid`) and site B's (`mid`, `to-b`).
    pub a: Netns,
    pub b: Netns,
    pub path: WanPath,
    dir: std::path::PathBuf,
}

impl Carrier {
    /// The carrier of `path` between engine A's and engine B's uplinks.
    fn build(path: WanPath, ea: &Netns, eb: &Netns, dir: &Path) -> Carrier {
        let tag = &path.name()[..1];
        let a = Netns::new(&format!("c{tag}a"));
        let b = Netns::new(&format!("c{tag}b"));
        let up = path.uplink();
        veth(ea, up, &a, "to-a");
        veth(&a, "mid", &b, "mid");
        veth(&b, "to-b", eb, up);
        let ad = path.addrs();
        let n = 1 + path.index() * 4;
        let (mid_a, mid_b) = (format!("172.31.0.{n}"), format!("172.31.0.{}", n + 1));
        for (ns, outer, outer_addr, mine, far, far_net) in [
            (&a, "to-a", &ad.carrier_a, &mid_a, &mid_b, subnet(&ad.b)),
            (&b, "to-b", &ad.carrier_b, &mid_b, &mid_a, subnet(&ad.a)),
        ] {
            ns.addr_add(outer, &format!("{outer_addr}/24"));
            ns.addr_add("mid", &format!("{mine}/30"));
            ns.route_add(&[&far_net, "via", far]);
            ns.sysctl("net.ipv4.ip_forward", "1");
            ns.exec("ethtool", &["-K", "mid", "tx-udp-segmentation", "off"]);
        }
        Carrier {
            a,
            b,
            path,
            dir: dir.to_path_buf(),
        }
    }

    /// Its side toward `site` and the interface there.
    fn side(&self, site: Site) -> (&Netns, &'static str) {
        match site {
            Site::A => (&self.a, "to-a"),
            Site::B => (&self.b, "to-b"),
        }
    }

    /// Drops `pct` percent of the packets it forwards, either way, chosen
    /// at random per packet (0: none); replaces the previous setting.
    pub fn set_loss(&self, pct: u8) {
        assert!(pct <= 100, "loss {pct} %");
        let rule = if pct == 0 {
            String::new()
        } else {
            format!("iifname \"mid\" numgen random mod 100 < {pct} counter drop")
        };
        // Declaring the table first makes the delete succeed either way.
        let ruleset = format!(
            "table inet wanloss\ndelete table inet wanloss\n\
             table inet wanloss {{\n  chain forward {{\n    \
             type filter hook forward priority 0; policy accept;\n    {rule}\n  }}\n}}\n"
        );
        let file = self.dir.join(format!("loss-{}.nft", self.path.name()));
        std::fs::write(&file, ruleset).expect("write nft ruleset");
        for ns in [&self.a, &self.b] {
            ns.exec("nft", &["-f", file.to_str().expect("utf-8 path")]);
        }
    }

    /// Packets the loss rules have dropped so far (both ways).
    pub fn dropped(&self) -> u64 {
        let mut n = 0;
        for ns in [&self.a, &self.b] {
            let out = ns.exec("nft", &["-j", "list", "table", "inet", "wanloss"]);
            let v: Value =
                serde_json::from_str(&out).unwrap_or_else(|e| panic!("nft -j: {e}: {out}"));
            n += v["nftables"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|o| o["rule"]["expr"].as_array())
                .flatten()
                .filter_map(|e| e["counter"]["packets"].as_u64())
                .sum::<u64>();
        }
        n
    }

    /// Sets its link toward `site` down (that site's uplink loses carrier).
    pub fn link_down(&self, site: Site) {
        let (ns, i) = self.side(site);
        ns.ip(&["link", "set", i, "down"]);
    }

    /// Sets its link toward `site` up again.
    pub fn link_up(&self, site: Site) {
        let (ns, i) = self.side(site);
        ns.link_up(i);
    }
}

/// The built topology. Fields drop in order: engines, namespaces, then
/// the scratch directory (kept when the test panics).
#[derive(Debug)]
pub struct WanTopology {
    /// Engine A, engine B.
    pub engines: Vec<Engine>,
    pub ha: Netns,
    pub ea: Netns,
    /// Carriers of fibre (cX: namespaces `cfa`, `cfb`) and lte (cY:
    /// `cla`, `clb`).
    pub carriers: Vec<Carrier>,
    pub eb: Netns,
    pub hb: Netns,
    pub opts: WanOptions,
    /// Each site's key pair per path: keys[site][path].
    pub keys: [[Keys; 2]; 2],
    pub dir: TempDir,
}

impl WanTopology {
    /// Builds the namespaces, the carriers (with `opts.loss_pct`) and
    /// starts both engines (they install their signal handlers; tunnels
    /// and probes come up by themselves).
    pub fn build(opts: WanOptions) -> Self {
        crate::require_root();
        let dir = TempDir::new("wan");
        let ha = Netns::new("ha");
        let ea = Netns::new("ea");
        let eb = Netns::new("eb");
        let hb = Netns::new("hb");
        veth(&ha, "eth0", &ea, "lan0");
        veth(&eb, "lan0", &hb, "eth0");
        let carriers: Vec<Carrier> = [WanPath::Fibre, WanPath::Lte]
            .into_iter()
            .map(|path| Carrier::build(path, &ea, &eb, dir.path()))
            .collect();
        for e in [&ea, &eb] {
            // The engine owns these: no kernel address, no IPv6.
            for i in ["lan0", "wanx", "wany"] {
                e.disable_ipv6(i);
            }
        }
        for (h, addr, gw, lte) in [(&ha, HA, EA_LAN, HA_LTE), (&hb, HB, EB_LAN, HB_LTE)] {
            h.addr_add("eth0", &format!("{addr}/24"));
            h.route_add(&["default", "via", gw]);
            if !opts.wan {
                h.addr_add("lo", &format!("{lte}/32"));
            }
        }
        for (c, pct) in carriers.iter().zip(opts.loss_pct) {
            c.set_loss(pct);
        }
        let keys = [
            [Keys::generate(), Keys::generate()],
            [Keys::generate(), Keys::generate()],
        ];
        let mut t = WanTopology {
            engines: Vec::new(),
            ha,
            ea,
            carriers,
            eb,
            hb,
            opts,
            keys,
            dir,
        };
        for site in [Site::A, Site::B] {
            let config = t.engine_config(site);
            let ns = match site {
                Site::A => &t.ea,
                Site::B => &t.eb,
            };
            let name = match site {
                Site::A => "engine-a",
                Site::B => "engine-b",
            };
            let mut e = Engine::start(Some(ns), &config, t.dir.path(), name, &[]);
            e.wait_ready();
            t.engines.push(e);
        }
        t
    }

    /// The carrier of a path.
    pub fn carrier(&self, p: WanPath) -> &Carrier {
        &self.carriers[p.index()]
    }

    /// A site's engine.
    pub fn engine(&mut self, site: Site) -> &mut Engine {
        &mut self.engines[site as usize]
    }

    /// A site's engine counters now.
    pub fn stats(&mut self, site: Site) -> EngineStats {
        self.engine(site).stats()
    }

    /// The engine TOML of `site`.
    pub fn engine_config(&self, site: Site) -> String {
        let me = site as usize;
        let far = 1 - me;
        let (lan, far_lan, far_site, far_lte, my_lte, host) = match site {
            Site::A => (EA_LAN, B_LAN, "b", B_LTE_NET, A_LTE_NET, HA),
            Site::B => (EB_LAN, A_LAN, "a", A_LTE_NET, B_LTE_NET, HB),
        };
        let mut c = format!(
            r#"[engine]
workers = {workers}
poll = "adaptive"

[[port]]
name = "lan0"
driver = "afpacket"
iface = "lan0"

[[interface]]
port = "lan0"
address = "{lan}/24"

[classify]
flows = 4096
dpi_slots = 256
batch = 64
batch_wait_ms = 5

[[route]]
prefix = "{far_lan}"
tunnel = "{fibre}"
"#,
            workers = self.opts.workers,
            fibre = WanPath::Fibre.tunnel(),
        );
        if !self.opts.wan {
            c += &format!(
                "\n[[route]]\nprefix = \"{far_lte}\"\ntunnel = \"{}\"\n\n\
                 [[route]]\nprefix = \"{my_lte}\"\nvia = \"{host}\"\n",
                WanPath::Lte.tunnel()
            );
        }
        for p in WanPath::BOTH {
            let ad = p.addrs();
            let (mine, gw, far_net, far_addr) = match site {
                Site::A => (&ad.a, &ad.carrier_a, subnet(&ad.b), &ad.b),
                Site::B => (&ad.b, &ad.carrier_b, subnet(&ad.a), &ad.a),
            };
            let key = self.dir.join(&format!("{site:?}-{}.key", p.name()));
            std::fs::write(&key, format!("{}\n", self.keys[me][p.index()].private))
                .expect("write key");
            c += &format!(
                r#"
[[port]]
name = "{up}"
driver = "afpacket"
iface = "{up}"

[[interface]]
port = "{up}"
address = "{mine}/24"

[[route]]
prefix = "{far_net}"
via = "{gw}"

[[wireguard]]
name = "{tunnel}"
private_key_file = "{key}"
listen_port = {port}
address = "{mine}"

[[wireguard.peer]]
public_key = "{peer_key}"
endpoint = "{far_addr}:{port}"
allowed_ips = ["{far_lan}"{extra}]
"#,
                up = p.uplink(),
                tunnel = p.tunnel(),
                key = key.display(),
                port = p.listen_port(),
                peer_key = self.keys[far][p.index()].public,
                extra = if self.opts.wan {
                    String::new()
                } else {
                    format!(", \"{far_lte}\"")
                },
            );
        }
        if self.opts.wan {
            c += &self.wan_section(far_site);
        }
        if self.opts.control_a && site == Site::A {
            c += &format!(
                "\n[control]\nruntime_dir = \"{}\"\n",
                self.runtime_dir().display()
            );
        }
        c
    }

    /// Site A's runtime directory (with [`WanOptions::control_a`]).
    pub fn runtime_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("shm-a")
    }

    /// The `[wan]` section: two paths to `far_site`, policies voice, bulk
    /// and default.
    fn wan_section(&self, far_site: &str) -> String {
        let mut s = String::from(
            "\n[wan]\nprobe_interval_ms = 100\ndead_after_ms = 800\nrise = 3\n\
             window_probes = 50\nwindow_ms = 5000\n",
        );
        for (p, kind, cost) in [(WanPath::Fibre, "fibre", 1), (WanPath::Lte, "lte", 10)] {
            s += &format!(
                "\n[[wan.path]]\nname = \"{}\"\ntunnel = \"{}\"\nsite = \"{far_site}\"\n\
                 kind = \"{kind}\"\ncost = {cost}\n",
                p.name(),
                p.tunnel()
            );
        }
        s += &format!(
            "\n[[wan.policy]]\nname = \"voice\"\nclasses = [\"webrtc\"]\nmax_loss_pct = 1.0\n\
             max_rtt_ms = 150\nmax_jitter_ms = 30\n\
             prefer = [\"any\", \"lte\"]\n{}",
            self.opts.voice.toml(Some("best-score"))
        );
        s += &format!(
            "\n[[wan.policy]]\nname = \"bulk\"\nclasses = [\"unknown\"]\n{}",
            self.opts.bulk.toml(Some("cheapest"))
        );
        s += &format!(
            "\n[[wan.policy]]\nname = \"default\"\n{}",
            self.opts.default.toml(None)
        );
        s
    }

    /// Pings `to` from `from` (once a second, up to `timeout`) until one
    /// answers, optionally from a given source address.
    pub fn ping_until(from: &Netns, src: Option<&str>, to: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let mut args = vec!["-n", "-c", "1", "-W", "1"];
            if let Some(s) = src {
                args.extend_from_slice(&["-I", s]);
            }
            args.push(to);
            if from.exec_output("ping", &args).status.success() {
                return true;
            }
        }
        false
    }

    /// Waits until both engines report both paths alive
    /// (`wan.path.P.state == 1`); panics with both engines' WAN counters
    /// if they do not within `timeout`.
    pub fn wait_paths_alive(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let a = self.stats(Site::A);
            let b = self.stats(Site::B);
            let alive = |s: &EngineStats| {
                WanPath::BOTH
                    .iter()
                    .all(|p| wan_opt(s, &format!("path.{}.state", p.name())) == Some(1))
            };
            if alive(&a) && alive(&b) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "paths not alive at both sites within {timeout:?}:\nA: {}\nB: {}",
                a.json["wan"],
                b.json["wan"]
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A site's peer label on a path's tunnel, as its WireGuard counters
    /// name it (the far site's public key).
    pub fn peer_label(&self, site: Site, p: WanPath) -> String {
        peer_label(&self.keys[1 - site as usize][p.index()].public)
    }

    /// The scratch directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// `a.b.c.0/24` of `a.b.c.d`.
fn subnet(addr: &str) -> String {
    let (net, _) = addr.rsplit_once('.').expect("dotted quad");
    format!("{net}.0/24")
}

/// A WAN counter (name without `wan.`) from the stats JSON's `"wan"`
/// object, if there.
pub fn wan_opt(s: &EngineStats, name: &str) -> Option<u64> {
    s.json["wan"][name].as_u64()
}

/// A WAN counter (name without `wan.`); panics with the engine's WAN
/// counters when it is missing.
pub fn wan(s: &EngineStats, name: &str) -> u64 {
    wan_opt(s, name).unwrap_or_else(|| {
        panic!(
            "the engine's stats have no wan counter {name:?}: \"wan\" = {}",
            s.json["wan"]
        )
    })
}

/// A WireGuard counter from the stats JSON's `"wg"` object
/// (`TUNNEL.PEER.COUNTER`), 0 when absent.
pub fn wg(s: &EngineStats, name: &str) -> u64 {
    s.json["wg"][name].as_u64().unwrap_or(0)
}
