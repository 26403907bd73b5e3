//! `patronusctl`, the operator CLI over the REST API: [`args`] (command
//! line), [`client`] (HTTP, token, exit codes), [`commands`] (one function
//! per subcommand; [`nat`] for `nat ...`, [`wg`] for `wg ...`, [`lb`] for `lb ...`, [`bgp`] for `bgp ...`, [`models`] for `model ...`, [`flows`] for `flows ...`, [`wan`] for `wan ...`), [`load`] (route files sent in bulk), [`table`]
//! (plain-text rendering). [`main`] ties them up.

pub mod args;
pub mod bgp;
pub mod client;
pub mod commands;
pub mod flows;
pub mod lb;
pub mod load;
pub mod models;
pub mod nat;
pub mod table;
pub mod wan;
pub mod wg;

use std::io::Write;
use std::path::Path;

use clap::Parser;

use args::{Cli, DEFAULT_API, DEFAULT_TOKEN_FILE};
use client::{resolve_token, Client, CtlError, TokenSources};

/// Runs the CLI on the process's arguments and environment; returns the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // Help and version go to stdout with 0; usage errors to stderr with 2.
            let _ = e.print();
            return e.exit_code();
        }
    };
    match run(&cli) {
        Ok(text) => {
            let mut out = std::io::stdout().lock();
            // A closed pipe (`| head`) is not an error worth a message.
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
            0
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "{e}");
            if let CtlError::Api { status: 401, .. } = e {
                let _ = writeln!(
                    std::io::stderr(),
                    "hint: give the API token with --token, --token-file or PATRONUS_TOKEN \
                     (default file {DEFAULT_TOKEN_FILE})"
                );
            }
            e.exit_code()
        }
    }
}

fn run(cli: &Cli) -> Result<String, CtlError> {
    let g = &cli.global;
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let api = g
        .api
        .clone()
        .or_else(|| env("PATRONUS_API"))
        .unwrap_or_else(|| DEFAULT_API.to_owned());
    let token = resolve_token(&TokenSources {
        flag: g.token.as_deref(),
        file: g.token_file.as_deref(),
        env: env("PATRONUS_TOKEN"),
        default_file: Some(Path::new(DEFAULT_TOKEN_FILE)),
    })?;
    let client = Client::new(&api, token)?;
    commands::run(&client, &g.org, g.json, &cli.command)
}
