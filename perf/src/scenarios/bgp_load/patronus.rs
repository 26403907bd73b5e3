//! The Patronus receiver: `patronus-control --bgp` inside its namespace
//! with a `patronus-engine` attached through `[control] runtime_dir` (mem
//! ports: the engine only has to install the routes in its FIB), set up
//! through the REST API, and what `GET /api/v1/bgp/summary` answers.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::control::{Api, ControlProcess, ControlSpec};
use crate::engine::{self, EngineProcess};
use crate::netns::sleep_checked;

/// The API port inside the receiver's namespace (its loopback is its own).
const API_PORT: u16 = 18080;
/// The BGP summary endpoint (see the contract in the helper brief).
pub const SUMMARY: &str = "/api/v1/bgp/summary";
/// Name of the accept-all import policy.
const POLICY: &str = "all";

/// `GET /api/v1/bgp/summary`, the parts the scenario reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub running: bool,
    pub established: u64,
    pub selected_v4: u64,
    pub installed_v4: u64,
    pub installed_generation: u64,
}

/// Parses the summary body:
/// `{"running": bool, "neighbors": {"configured": N, "established": N},
/// "selected_routes": {"ipv4": N, ...}, "installed_routes": {"ipv4": N, ...},
/// "installed_generation": N, ...}`.
pub fn parse_summary(text: &str) -> anyhow::Result<Summary> {
    let v: serde_json::Value = serde_json::from_str(text).context("summary JSON")?;
    let num = |outer: &str, inner: &str| -> anyhow::Result<u64> {
        v.get(outer)
            .and_then(|o| o.get(inner))
            .and_then(|x| x.as_u64())
            .with_context(|| format!("no {outer}.{inner} in {text}"))
    };
    Ok(Summary {
        running: v
            .get("running")
            .and_then(|x| x.as_bool())
            .with_context(|| format!("no running in {text}"))?,
        established: num("neighbors", "established")?,
        selected_v4: num("selected_routes", "ipv4")?,
        installed_v4: num("installed_routes", "ipv4")?,
        installed_generation: v
            .get("installed_generation")
            .and_then(|x| x.as_u64())
            .unwrap_or(0),
    })
}

/// Whether this control binary has the `--bgp` flag.
pub fn control_has_bgp(bin: &Path) -> anyhow::Result<bool> {
    let out = Command::new(bin)
        .arg("--help")
        .output()
        .with_context(|| format!("running {} --help", bin.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text.split_whitespace().any(|w| w == "--bgp"))
}

/// Where the receiver sits.
pub struct Placement<'a> {
    pub netns: &'a str,
    /// Our address on the link to the feeder (also the router id).
    pub local: Ipv4Addr,
    /// The feeder's address (the BGP neighbor and the routes' next hop).
    pub feeder: Ipv4Addr,
    pub local_as: u32,
    pub feeder_as: u32,
    /// /24 of the link (engine interface and control interface).
    pub prefix_len: u8,
}

/// The engine's config: one mem port (a generator at 1 packet/s to its own
/// address, so the engine has an endless input and keeps running) with
/// the link's address, attached to the control process.
fn engine_config(p: &Placement, runtime: &Path, tbl8_groups: u32) -> String {
    format!(
        r#"[engine]
workers = 1
poll = "adaptive"
fib_tbl8_groups = {tbl8_groups}

[control]
runtime_dir = "{runtime}"

[[port]]
name = "wan0"
driver = "mem"
[port.generator]
flows = 1
sizes = [64]
src = "{feeder}/32"
dst = "{local}/32"
rate_pps = 1

[[interface]]
port = "wan0"
address = "{local}/{len}"
"#,
        runtime = runtime.display(),
        feeder = p.feeder,
        local = p.local,
        len = p.prefix_len,
    )
}

/// A running control process + engine with BGP set up but no neighbor.
pub struct Receiver {
    pub control: ControlProcess,
    pub engine: EngineProcess,
    pub api: Api,
}

impl Receiver {
    /// Starts both processes, pushes the interface, the global BGP
    /// settings and an accept-all policy; waits until the speaker runs.
    pub fn start(
        control_bin: &Path,
        engine_bin: &Path,
        dir: &Path,
        p: &Placement,
        tbl8_groups: u32,
        nice: i32,
    ) -> anyhow::Result<Receiver> {
        std::fs::create_dir_all(dir)?;
        let runtime = dir.join("shm");
        let control = ControlProcess::start_with(&ControlSpec {
            bin: control_bin,
            dir,
            runtime: &runtime,
            port: API_PORT,
            netns: Some(p.netns),
            extra_args: &["--bgp"],
        })?;
        let config = dir.join("engine.toml");
        std::fs::write(&config, engine_config(p, &runtime, tbl8_groups))?;
        engine::check_config(engine_bin, &config)?;
        let engine = EngineProcess::spawn(
            engine_bin,
            &config,
            &dir.join("stats.json"),
            Some(p.netns),
            nice,
            &dir.join("engine.log"),
        )?;
        let mut api = Api::connect_in(Some(p.netns), API_PORT, &control.token)?;
        api.call_ok(
            "POST",
            "/api/v1/interfaces",
            &format!(
                r#"{{"port":"wan0","address":"{}/{}"}}"#,
                p.local, p.prefix_len
            ),
        )?;
        api.call_ok(
            "PUT",
            "/api/v1/bgp",
            &format!(r#"{{"asn":{},"router_id":"{}"}}"#, p.local_as, p.local),
        )?;
        api.call_ok(
            "PUT",
            &format!("/api/v1/bgp/policies/{POLICY}"),
            r#"{"default":"accept"}"#,
        )?;
        let mut r = Receiver {
            control,
            engine,
            api,
        };
        for _ in 0..200 {
            if let Ok(s) = r.summary() {
                if s.running {
                    return Ok(r);
                }
            }
            r.check_alive()?;
            sleep_checked(Duration::from_millis(50))?;
        }
        bail!("the BGP speaker is not running 10 s after the settings were put")
    }

    /// Creates the neighbor (the speaker then connects to the passive
    /// feeder). Export: no policy, so RFC 8212 sends the feeder nothing.
    pub fn add_neighbor(&mut self, p: &Placement) -> anyhow::Result<()> {
        self.api.call_ok(
            "POST",
            "/api/v1/bgp/neighbors",
            &format!(
                r#"{{"address":"{}","remote_as":{},"import_policy":"{POLICY}"}}"#,
                p.feeder, p.feeder_as
            ),
        )?;
        Ok(())
    }

    pub fn summary(&mut self) -> anyhow::Result<Summary> {
        let (status, body, _) = self.api.call("GET", SUMMARY, "")?;
        if status != 200 {
            bail!("GET {SUMMARY}: {status} {body}");
        }
        parse_summary(&body)
    }

    /// Fails when either process has exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(e) = self.control.exited() {
            bail!("control exited: {e}");
        }
        if let Some(info) = self.engine.exited()? {
            bail!("engine exited: {}", info.output.trim());
        }
        Ok(())
    }

    /// Stops both; returns problems worth a note.
    pub fn stop(mut self) -> Vec<String> {
        let mut notes = Vec::new();
        if let Some(e) = self.control.stop() {
            notes.push(e);
        }
        match self.engine.stop() {
            Ok(info) if !info.success => notes.push(format!(
                "engine exit {:?}: {}",
                info.code,
                info.output.trim()
            )),
            Err(e) => notes.push(format!("engine stop: {e:#}")),
            Ok(_) => {}
        }
        notes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_summary_contract() {
        let body = r#"{"running": true, "local_as": 65010, "router_id": "10.0.1.2",
            "neighbors": {"configured": 1, "established": 1},
            "selected_routes": {"ipv4": 1000000, "ipv6": 0},
            "installed_routes": {"ipv4": 999872, "ipv6": 0},
            "installed_generation": 17}"#;
        let s = parse_summary(body).unwrap();
        assert_eq!(
            s,
            Summary {
                running: true,
                established: 1,
                selected_v4: 1_000_000,
                installed_v4: 999_872,
                installed_generation: 17,
            }
        );
        assert!(parse_summary(r#"{"running": false}"#).is_err());
        assert!(parse_summary("not json").is_err());
    }

    #[test]
    fn engine_config_is_accepted_by_the_engine_parser() {
        let p = Placement {
            netns: "x",
            local: Ipv4Addr::new(10, 0, 1, 2),
            feeder: Ipv4Addr::new(10, 0, 1, 1),
            local_as: 65010,
            feeder_as: 65001,
            prefix_len: 24,
        };
        let text = engine_config(&p, Path::new("/tmp/x/shm"), 40000);
        let cfg = patronus_engine::config::EngineConfig::parse(&text).unwrap();
        assert_eq!(cfg.engine.fib_tbl8_groups, 40000);
        assert_eq!(cfg.ports.len(), 1);
    }
}
