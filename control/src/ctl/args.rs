//! Command line of `patronusctl` (clap derive): global connection options and
//! the subcommands. Free-form words (`via A.B.C.D`, `blackhole`) are parsed
//! later in [`crate::ctl::commands`] so their errors can name what is wrong.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// API address when neither `--api` nor `PATRONUS_API` is given.
pub const DEFAULT_API: &str = "http://127.0.0.1:8080";
/// Token file read when no token is given and the file is readable.
pub const DEFAULT_TOKEN_FILE: &str = "/var/lib/patronus/api-token";

/// Operator CLI for the Patronus control API.
#[derive(Debug, Parser)]
#[command(
    name = "patronusctl",
    version,
    about = "Operator CLI for the Patronus control API (routes, interfaces, organizations, NAT, WireGuard, load balancer, BGP, models, flows, WAN, status, counters)"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand accepts.
#[derive(Debug, Args)]
pub struct Global {
    /// Base URL of the API [env: PATRONUS_API] [default: http://127.0.0.1:8080]
    #[arg(long, global = true, value_name = "URL")]
    pub api: Option<String>,
    /// Bearer token [env: PATRONUS_TOKEN]
    #[arg(
        long,
        global = true,
        value_name = "TOKEN",
        conflicts_with = "token_file"
    )]
    pub token: Option<String>,
    /// File holding the bearer token [default: /var/lib/patronus/api-token if readable]
    #[arg(long, global = true, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
    /// Organization the interface and route commands act on
    #[arg(long, global = true, default_value = "default")]
    pub org: String,
    /// Print the API's JSON instead of tables
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Engine attachment and desired-state generation
    Status,
    /// Engine counters (ports, drops, workers)
    Stats,
    /// Static routes of the organization
    #[command(subcommand)]
    Route(RouteCmd),
    /// Interfaces (port addresses) of the organization
    #[command(subcommand)]
    Interface(InterfaceCmd),
    /// Organizations (tenants)
    #[command(subcommand)]
    Org(OrgCmd),
    /// NAT44: configuration, port forwards, pool, live sessions
    #[command(subcommand)]
    Nat(NatCmd),
    /// WireGuard tunnels and their peers
    #[command(subcommand)]
    Wg(WgCmd),
    /// L4 load balancer: VIPs and their backends
    #[command(subcommand)]
    Lb(LbCmd),
    /// BGP: global settings, neighbors, policies, originated networks, RIB
    #[command(subcommand)]
    Bgp(BgpCmd),
    /// ML classifier models: the registry and the one the engine runs
    #[command(subcommand)]
    Model(ModelCmd),
    /// Flows the engine classified (one page, or every page with --all),
    /// or `flows summary`: counts per class and the classification counters
    Flows(FlowsArgs),
    /// WAN paths (quality, traffic, FEC) and steering policies (path
    /// choice, moves, compression), from the engine's counters
    #[command(subcommand)]
    Wan(WanCmd),
}

/// `wan paths` or `wan policies`.
#[derive(Debug, Subcommand)]
pub enum WanCmd {
    /// Each path: state, RTT / p95 / jitter (ms) and loss (%) over the probe
    /// window, probes, traffic steered onto it, FEC
    Paths,
    /// Each policy's packets per path and flows moved, then compression
    Policies,
}

/// `flows [--class C] [--host IP] [--limit N] [--cursor C | --all]` or
/// `flows summary`.
#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Examples:\n  patronusctl flows --class tls --host 10.1.0.2\n  patronusctl flows --all\n  patronusctl flows summary"
)]
pub struct FlowsArgs {
    #[command(subcommand)]
    pub cmd: Option<FlowsCmd>,
    #[command(flatten)]
    pub list: FlowListArgs,
}

#[derive(Debug, Subcommand)]
pub enum FlowsCmd {
    /// Flows, packets and bytes per class, and the engine's classification
    /// counters
    Summary,
}

#[derive(Debug, Args)]
pub struct FlowListArgs {
    /// Only flows of this class (http, tls, ssh, ftp, dns, smtp, quic,
    /// webrtc, bittorrent, other, unknown, or pending)
    #[arg(long)]
    pub class: Option<String>,
    /// Only flows with this address at either end
    #[arg(long)]
    pub host: Option<String>,
    /// Flows per page (1..=1000)
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// Start at this cursor (printed after a page that has more)
    #[arg(long, conflicts_with = "all")]
    pub cursor: Option<String>,
    /// Follow the cursor to the last page
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Subcommand)]
pub enum ModelCmd {
    /// List registered models
    #[command(alias = "ls")]
    List,
    /// Register a model file (as written by `patronus-ml train`); it is
    /// not active until promoted
    #[command(
        after_help = "Example:\n  patronusctl model upload models/flow-mlp.bin --name flow-v1"
    )]
    Upload {
        /// Model file (`-` reads stdin)
        file: PathBuf,
        /// A name for it (letters, digits, `.`, `_`, `-`)
        #[arg(long)]
        name: Option<String>,
    },
    /// Show one model
    Show { id: String },
    /// Make a model active: the engine switches to it without stopping
    Promote { id: String },
    /// Go back to the model active before the newest promotion
    Rollback,
    /// Run no model (the engine classifies with signatures only)
    Deactivate,
    /// Delete a model that is not active
    #[command(aliases = ["del", "rm"])]
    Delete { id: String },
}

#[derive(Debug, Subcommand)]
pub enum LbCmd {
    /// VIPs (address, port, protocol, mode, health check)
    #[command(subcommand)]
    Vip(LbVipCmd),
    /// Backends of a VIP
    #[command(subcommand)]
    Backend(LbBackendCmd),
}

#[derive(Debug, Subcommand)]
pub enum LbVipCmd {
    /// Create a VIP (add its backends with `lb backend add`)
    #[command(
        after_help = "Examples:\n  patronusctl lb vip add web 10.9.0.100:80 --check http:/healthz --interval-ms 500 --timeout-ms 400\n  patronusctl lb vip add dns 10.9.0.53:53 --proto udp --mode dsr"
    )]
    Add {
        name: String,
        /// The VIP's ADDRESS:PORT
        endpoint: String,
        /// tcp or udp
        #[arg(long, default_value = "tcp")]
        proto: String,
        /// nat (replies return through the engine) or dsr (IP-in-IP to the
        /// backend, which replies directly)
        #[arg(long, default_value = "nat")]
        mode: String,
        /// Maglev table size: a prime larger than 100 × backends (default 65537)
        #[arg(long)]
        table_size: Option<u32>,
        /// Health check: tcp (connect) or http[:PATH] (GET, 2xx/3xx);
        /// without one backends are taken as up
        #[arg(long)]
        check: Option<String>,
        /// Port the check probes (default: each backend's)
        #[arg(long, requires = "check")]
        check_port: Option<u16>,
        #[arg(long, requires = "check")]
        interval_ms: Option<u32>,
        #[arg(long, requires = "check")]
        timeout_ms: Option<u32>,
        /// Successes that bring a backend up
        #[arg(long, requires = "check")]
        rise: Option<u32>,
        /// Failures that take a backend down
        #[arg(long, requires = "check")]
        fall: Option<u32>,
    },
    /// List VIPs
    #[command(alias = "ls")]
    List,
    /// Show a VIP with its backends' health and counters
    Show { name: String },
    /// Delete a VIP and its backends
    #[command(aliases = ["del", "rm"])]
    Delete { name: String },
}

#[derive(Debug, Subcommand)]
pub enum LbBackendCmd {
    /// Add a backend to a VIP
    #[command(after_help = "Example:\n  patronusctl lb backend add web 10.2.0.11:80 --weight 2")]
    Add {
        vip: String,
        /// The backend's ADDRESS:PORT
        endpoint: String,
        /// Weight (0: draining)
        #[arg(long, default_value_t = 1)]
        weight: u16,
    },
    /// Change a backend's weight (0 drains it: no new flows, existing ones stay)
    Set {
        vip: String,
        endpoint: String,
        #[arg(long)]
        weight: u16,
    },
    /// Remove a backend
    #[command(aliases = ["del", "rm"])]
    Remove { vip: String, endpoint: String },
}

#[derive(Debug, Subcommand)]
pub enum BgpCmd {
    /// The global settings (local AS, router id, listen port)
    Show,
    /// Set the global settings
    #[command(after_help = "Example:\n  patronusctl bgp set --asn 65000 --router-id 10.0.0.1")]
    Set {
        #[arg(long)]
        asn: u32,
        #[arg(long)]
        router_id: String,
        /// Default 179
        #[arg(long)]
        listen_port: Option<u16>,
        /// false: no session runs
        #[arg(long, action = clap::ArgAction::Set)]
        enabled: Option<bool>,
    },
    /// Neighbors (peers) and their sessions
    #[command(subcommand)]
    Neighbor(BgpNeighborCmd),
    /// Import and export policies (JSON documents)
    #[command(subcommand)]
    Policy(BgpPolicyCmd),
    /// Networks this box originates
    #[command(subcommand)]
    Network(BgpNetworkCmd),
    /// Routes in the RIB (from the running speaker)
    #[command(
        after_help = "Examples:\n  patronusctl bgp rib --prefix 10.0.0.0/8\n  patronusctl bgp rib --all"
    )]
    Rib(BgpRibArgs),
    /// Speaker summary: sessions, selected and installed routes
    Summary,
}

/// Settings shared by `neighbor add` and `neighbor set`.
#[derive(Debug, Args)]
pub struct BgpNeighborOptions {
    /// Hold time in seconds (0 or 3..=65535; default 90)
    #[arg(long)]
    pub hold: Option<u16>,
    /// ConnectRetry time in seconds (default 120)
    #[arg(long)]
    pub connect_retry: Option<u16>,
    /// Import policy (routes received)
    #[arg(long, value_name = "POLICY")]
    pub import: Option<String>,
    /// Export policy (routes advertised)
    #[arg(long, value_name = "POLICY")]
    pub export: Option<String>,
    /// Address families: ipv4, ipv6 or both, comma-separated (default: the
    /// neighbor address's)
    #[arg(long, value_name = "ipv4,ipv6")]
    pub family: Option<String>,
    /// Graceful restart time in seconds (0..=4095; default 120)
    #[arg(long)]
    pub restart_time: Option<u16>,
    #[arg(long)]
    pub description: Option<String>,
    /// Source address of the session
    #[arg(long)]
    pub local_address: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum BgpNeighborCmd {
    /// Add a neighbor
    #[command(
        after_help = "Examples:\n  patronusctl bgp neighbor add 192.0.2.1 --remote-as 65001 --import from-transit --export to-transit\n  patronusctl bgp neighbor add 2001:db8::2 --remote-as 65000 --family ipv4,ipv6 --graceful-restart"
    )]
    Add {
        address: String,
        #[arg(long)]
        remote_as: u32,
        /// Only wait for the peer to connect
        #[arg(long)]
        passive: bool,
        /// Announce graceful restart and act as its helper
        #[arg(long)]
        graceful_restart: bool,
        /// Configure it disabled (no session until `set --enabled true`)
        #[arg(long)]
        disabled: bool,
        #[command(flatten)]
        opts: BgpNeighborOptions,
    },
    /// List neighbors
    #[command(alias = "ls")]
    List,
    /// Show a neighbor's settings
    Show { address: String },
    /// Show a neighbor's session: state, uptime, counters
    State { address: String },
    /// Change a neighbor's settings (what is not given stays)
    #[command(after_help = "Example:\n  patronusctl bgp neighbor set 192.0.2.1 --enabled false")]
    Set {
        address: String,
        #[arg(long)]
        remote_as: Option<u32>,
        #[arg(long, action = clap::ArgAction::Set)]
        enabled: Option<bool>,
        #[arg(long, action = clap::ArgAction::Set)]
        passive: Option<bool>,
        #[arg(long, action = clap::ArgAction::Set)]
        graceful_restart: Option<bool>,
        /// Remove the import policy (RFC 8212: an eBGP neighbor then sends nothing in)
        #[arg(long, conflicts_with = "import")]
        no_import: bool,
        /// Remove the export policy (RFC 8212: nothing is advertised to an eBGP neighbor)
        #[arg(long, conflicts_with = "export")]
        no_export: bool,
        #[command(flatten)]
        opts: BgpNeighborOptions,
    },
    /// Delete a neighbor
    #[command(aliases = ["del", "rm"])]
    Delete { address: String },
}

#[derive(Debug, Subcommand)]
pub enum BgpPolicyCmd {
    /// Create or replace a policy from a JSON file (`-` reads stdin); the
    /// file's `name` may be left out
    #[command(after_help = "Example:\n  patronusctl bgp policy set from-transit policy.json")]
    Set { name: String, file: PathBuf },
    /// List policies
    #[command(alias = "ls")]
    List,
    /// Show a policy (JSON)
    Show { name: String },
    /// Delete a policy no neighbor uses
    #[command(aliases = ["del", "rm"])]
    Delete { name: String },
}

#[derive(Debug, Subcommand)]
pub enum BgpNetworkCmd {
    /// Originate a network
    Add { prefix: String },
    /// List originated networks
    #[command(alias = "ls")]
    List,
    /// Stop originating a network
    #[command(aliases = ["del", "rm"])]
    Delete { prefix: String },
}

#[derive(Debug, Args)]
pub struct BgpRibArgs {
    /// Only routes within this prefix (itself included)
    #[arg(long)]
    pub prefix: Option<String>,
    /// Routes per page (1..=1000)
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// Continue from a page's cursor
    #[arg(long, conflicts_with = "all")]
    pub cursor: Option<String>,
    /// Fetch every page
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Subcommand)]
pub enum WgCmd {
    /// Tunnels (name, listen port, key)
    #[command(subcommand)]
    Tunnel(WgTunnelCmd),
    /// Peers of a tunnel
    #[command(subcommand)]
    Peer(WgPeerCmd),
}

#[derive(Debug, Subcommand)]
pub enum WgTunnelCmd {
    /// Create a tunnel; its private key is generated by the control process
    /// unless --private-key-file gives one (keys never go on the command
    /// line, where other users could read them)
    #[command(
        after_help = "Examples:\n  patronusctl wg tunnel add wg0 --listen-port 51820\n  wg genkey | patronusctl wg tunnel add wg0 --listen-port 51820 --private-key-file -"
    )]
    Add {
        name: String,
        #[arg(long)]
        listen_port: u16,
        /// A file holding the base64 private key (`-` reads stdin)
        #[arg(long)]
        private_key_file: Option<std::path::PathBuf>,
        /// The tunnel's own inner address, e.g. 10.99.0.1/24
        #[arg(long)]
        address: Option<String>,
    },
    /// Delete a tunnel and its peers
    #[command(alias = "rm")]
    Del { name: String },
    /// List tunnels
    #[command(alias = "ls")]
    List,
    /// Show a tunnel (its public key; the private key is never shown)
    Show { name: String },
}

#[derive(Debug, Subcommand)]
pub enum WgPeerCmd {
    /// Add a peer to a tunnel
    #[command(
        after_help = "Example:\n  patronusctl wg peer add wg0 BASE64KEY= --endpoint 192.0.2.2:51820 --allowed-ip 10.2.0.0/16 --keepalive 25"
    )]
    Add {
        tunnel: String,
        /// The peer's base64 public key
        public_key: String,
        /// ADDR:PORT to reach the peer at
        #[arg(long)]
        endpoint: Option<String>,
        /// A prefix the peer may send from and is routed to (repeatable)
        #[arg(long = "allowed-ip")]
        allowed_ips: Vec<String>,
        /// Persistent keepalive interval in seconds
        #[arg(long)]
        keepalive: Option<u16>,
        /// A file holding a base64 preshared key (`-` reads stdin)
        #[arg(long)]
        preshared_key_file: Option<std::path::PathBuf>,
    },
    /// Delete a peer by id or by public key
    #[command(alias = "rm")]
    Del {
        tunnel: String,
        /// Peer id, or its base64 public key
        peer: String,
    },
    /// List a tunnel's peers (with the engine's counters when attached)
    #[command(alias = "ls")]
    List { tunnel: String },
}

#[derive(Debug, Subcommand)]
pub enum RouteCmd {
    /// List routes
    #[command(alias = "ls")]
    List,
    /// Add a route: `PREFIX via A.B.C.D [via A.B.C.D ...]`, `PREFIX blackhole`
    /// or `PREFIX tunnel NAME` (into a WireGuard tunnel)
    Add {
        /// Destination prefix, a.b.c.d/len
        prefix: String,
        /// `via A.B.C.D` (repeatable, ECMP), `blackhole` or `tunnel NAME`
        #[arg(required = true, num_args = 1.., allow_hyphen_values = true)]
        target: Vec<String>,
    },
    /// Delete a route by id or by prefix
    #[command(alias = "rm")]
    Del {
        /// Numeric id, or the route's prefix a.b.c.d/len (deleted with one
        /// bulk request, without listing the table)
        route: String,
    },
    /// Replace the whole route set atomically from a JSON file
    /// (`{"routes": [...]}` or a bare array of routes)
    Replace {
        /// JSON file (`-` reads stdin)
        file: PathBuf,
    },
    /// Add many routes from a text file, one per line: `PREFIX via GW[,GW...]`
    /// or `PREFIX blackhole`; `#` starts a comment. The whole file is checked
    /// first (a bad line is named, nothing is sent), then sent in bulk
    /// requests of --chunk routes, each applied all or nothing (a failing
    /// request leaves the earlier ones loaded).
    #[command(
        after_help = "Example file:\n  # upstream\n  0.0.0.0/0 via 10.2.0.254\n  10.8.0.0/16 via 10.2.0.2,10.2.0.3\n  192.0.2.0/24 blackhole"
    )]
    Load {
        /// Route file (`-` reads stdin)
        file: PathBuf,
        /// Routes per bulk request
        #[arg(long, default_value_t = crate::ctl::load::DEFAULT_CHUNK as u64, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
        chunk: u64,
    },
}

#[derive(Debug, Subcommand)]
pub enum InterfaceCmd {
    /// List interfaces
    #[command(alias = "ls")]
    List,
    /// Add an interface: an address on an engine port
    Add {
        /// Engine port name, e.g. lan0
        port: String,
        /// Interface address, a.b.c.d/len
        address: String,
        /// 802.1Q VLAN id
        #[arg(long)]
        vlan: Option<u16>,
    },
    /// Delete an interface by id, by address, or by port (if it has one interface)
    #[command(alias = "rm")]
    Del {
        /// Numeric id, address a.b.c.d/len, or port name
        interface: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum OrgCmd {
    /// List organizations
    #[command(alias = "ls")]
    List,
    /// Create an organization
    Add { name: String },
    /// Delete an (empty) organization
    #[command(alias = "rm")]
    Del { name: String },
}

#[derive(Debug, Subcommand)]
pub enum NatCmd {
    /// Show the NAT configuration
    Show,
    /// Create or change the NAT configuration: options not given keep their
    /// current value (forwards are kept); the first `set` needs --outside
    /// and --pool
    #[command(
        after_help = "Examples:\n  patronusctl nat set --outside wan0 --pool 198.51.100.1\n  patronusctl nat set --filtering endpoint-independent --timeout udp=60 --timeout tcp_established=3600\n  patronusctl nat set --file nat.json   (the whole configuration, as PUT /api/v1/nat takes it)"
    )]
    Set(NatSetArgs),
    /// Remove the NAT configuration (the engine goes back to its own [nat], if any)
    #[command(alias = "rm")]
    Delete,
    /// Port forwards
    #[command(subcommand)]
    Forward(NatForwardCmd),
    /// Pool addresses
    #[command(subcommand)]
    Pool(NatPoolCmd),
    /// The engine's live NAT sessions
    Sessions {
        /// Only this inside host's sessions
        #[arg(long)]
        inside: Option<String>,
        /// Sessions per page (1..=1000)
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Start at this cursor (printed after a page that has more)
        #[arg(long, conflicts_with = "all")]
        cursor: Option<String>,
        /// Follow the cursor to the last page
        #[arg(long)]
        all: bool,
    },
}

#[derive(Debug, Args)]
pub struct NatSetArgs {
    /// A JSON file holding the whole configuration (`-` reads stdin); no
    /// other option may be given with it
    #[arg(long, conflicts_with_all = ["outside", "vlan", "pool", "filtering", "timeout", "max_sessions_per_host", "inbound_refresh", "one_to_one", "enabled"])]
    pub file: Option<PathBuf>,
    /// Port of the outside interface
    #[arg(long)]
    pub outside: Option<String>,
    /// VLAN of the outside interface (0: untagged)
    #[arg(long)]
    pub vlan: Option<u16>,
    /// Pool addresses (comma-separated or repeated); replaces the pool
    #[arg(long, value_delimiter = ',')]
    pub pool: Vec<String>,
    /// endpoint-independent or address-and-port-dependent
    #[arg(long)]
    pub filtering: Option<String>,
    /// NAME=SECONDS (tcp_established, tcp_transitory, tcp_initial, udp,
    /// icmp_query, fragment); SECONDS `default` clears it; repeatable
    #[arg(long = "timeout", value_name = "NAME=SECONDS")]
    pub timeout: Vec<String>,
    /// Most sessions per inside host (`default` clears it)
    #[arg(long)]
    pub max_sessions_per_host: Option<String>,
    /// Whether inbound packets refresh UDP/ICMP sessions (true, false, default)
    #[arg(long)]
    pub inbound_refresh: Option<String>,
    /// OUTSIDE=INSIDE 1:1 mappings (comma-separated or repeated); replaces them
    #[arg(
        long = "one-to-one",
        value_delimiter = ',',
        value_name = "OUTSIDE=INSIDE"
    )]
    pub one_to_one: Vec<String>,
    /// Turn NAT on (true) or off (false), keeping the configuration
    #[arg(long)]
    pub enabled: Option<bool>,
}

#[derive(Debug, Subcommand)]
pub enum NatForwardCmd {
    /// List port forwards
    #[command(alias = "ls")]
    List,
    /// Add a port forward: `PROTO OUTSIDE_ADDR:PORT INSIDE_ADDR:PORT`
    Add {
        /// tcp or udp
        proto: String,
        /// Outside ADDR:PORT
        outside: String,
        /// Inside ADDR:PORT
        inside: String,
    },
    /// Delete a port forward by id, or by `PROTO OUTSIDE_ADDR:PORT`
    #[command(alias = "rm")]
    Del {
        /// Id, or the protocol followed by the outside ADDR:PORT
        #[arg(required = true, num_args = 1..=2)]
        forward: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum NatPoolCmd {
    /// Add a pool address
    Add { address: String },
    /// Remove a pool address
    #[command(alias = "rm")]
    Del { address: String },
}
