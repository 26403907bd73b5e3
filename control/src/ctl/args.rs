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
    about = "Operator CLI for the Patronus control API (routes, interfaces, organizations, status, counters)"
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
}

#[derive(Debug, Subcommand)]
pub enum RouteCmd {
    /// List routes
    #[command(alias = "ls")]
    List,
    /// Add a route: `PREFIX via A.B.C.D [via A.B.C.D ...]` or `PREFIX blackhole`
    Add {
        /// Destination prefix, a.b.c.d/len
        prefix: String,
        /// `via A.B.C.D` (repeatable, ECMP) or `blackhole`
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
