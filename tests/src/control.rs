//! The control process (`patronus-control`) started for a test, and the API
//! driven through `patronusctl` and plain HTTP (curl) with its token.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::cmd::describe;
use crate::engine::workspace_root;
use crate::netns::Netns;
use crate::process::BgProcess;

const READY: Duration = Duration::from_secs(15);

/// A binary of the release build; fails clearly when it is missing.
pub fn release_bin(name: &str) -> PathBuf {
    let p = workspace_root().join("target/release").join(name);
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --release` first",
        p.display()
    );
    p
}

/// A running control process; stopped on drop.
#[derive(Debug)]
pub struct Control {
    pub proc: BgProcess,
    /// `http://127.0.0.1:PORT`.
    pub api: String,
    /// `http://127.0.0.1:PORT+1/metrics`.
    pub metrics: String,
    pub token: String,
    /// The namespace the control runs in (`None`: the host's); its API,
    /// `patronusctl` and its health checks live there too.
    pub netns: Option<String>,
}

impl Control {
    /// Starts the control on `127.0.0.1:port` (metrics on `port + 1`) with
    /// its database and token in `dir` and shared memory in `runtime`; waits
    /// until the API answers.
    pub fn start(dir: &Path, runtime: &Path, port: u16, name: &str) -> Self {
        Self::start_in(None, dir, runtime, port, name)
    }

    /// [`Control::start`] inside `ns` when given (so its health checks
    /// reach the hosts routed from there); `ctl`, `request` and
    /// [`Control::command`] then run there too.
    pub fn start_in(ns: Option<&Netns>, dir: &Path, runtime: &Path, port: u16, name: &str) -> Self {
        Self::start_in_args(ns, dir, runtime, port, name, &[])
    }

    /// [`Control::start_in`] with more command-line options (`--bgp`, …).
    pub fn start_in_args(
        ns: Option<&Netns>,
        dir: &Path,
        runtime: &Path,
        port: u16,
        name: &str,
        extra: &[&str],
    ) -> Self {
        let netns = ns.map(|n| n.name().to_string());
        let mut cmd = in_netns(netns.as_deref(), &release_bin("patronus-control"));
        let api = format!("127.0.0.1:{port}");
        let metrics = format!("127.0.0.1:{}", port + 1);
        cmd.args(["--listen", &api, "--metrics-listen", &metrics, "--db"])
            .arg(dir.join("control.db"))
            .arg("--runtime-dir")
            .arg(runtime)
            .args(extra);
        let mut proc = BgProcess::spawn(cmd, dir, name);
        let token_file = dir.join("api-token");
        let deadline = Instant::now() + READY;
        loop {
            assert!(proc.try_wait().is_none(), "control died: {}", proc.report());
            if let Ok(token) = std::fs::read_to_string(&token_file) {
                let c = Control {
                    api: format!("http://{api}"),
                    metrics: format!("http://{metrics}/metrics"),
                    token: token.trim().to_string(),
                    proc,
                    netns: netns.clone(),
                };
                if c.ctl(&["status"]).status.success() {
                    return c;
                }
                proc = c.proc;
            }
            assert!(
                Instant::now() < deadline,
                "control not ready: {}",
                proc.report()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs `patronusctl` against this control; returns its output.
    pub fn ctl(&self, args: &[&str]) -> Output {
        self.command(&release_bin("patronusctl"))
            .args(["--api", &self.api, "--token", &self.token])
            .args(args)
            .output()
            .expect("run patronusctl")
    }

    /// Runs `patronusctl`, panics unless it succeeds, returns stdout.
    pub fn ctl_ok(&self, args: &[&str]) -> String {
        let out = self.ctl(args);
        assert!(
            out.status.success(),
            "patronusctl {args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Sends `METHOD /api/v1/PATH` with an optional JSON body; panics
    /// unless the answer is 2xx; returns the parsed JSON body (or Null).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> serde_json::Value {
        let mut cmd = self.command(Path::new("curl"));
        cmd.args(["-sS", "-X", method, "-w", "\n%{http_code}"])
            .args(["-H", &format!("Authorization: Bearer {}", self.token)]);
        if let Some(b) = body {
            cmd.args(["-H", "Content-Type: application/json", "--data-binary"])
                .arg(b.to_string());
        }
        cmd.arg(format!("{}/api/v1/{path}", self.api));
        let out = cmd.output().expect("run curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body_text, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        assert!(
            out.status.success() && code.starts_with('2'),
            "`{}` answered {code}: {body_text}\n{}",
            describe(&cmd),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_str(body_text).unwrap_or(serde_json::Value::Null)
    }

    /// A `Command` for `program` in the control's namespace (to reach its
    /// API and metrics ports).
    pub fn command(&self, program: &Path) -> Command {
        in_netns(self.netns.as_deref(), program)
    }
}

/// `program` run in the named namespace (`ip netns exec`), or directly.
fn in_netns(ns: Option<&str>, program: &Path) -> Command {
    match ns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).arg(program);
            c
        }
        None => Command::new(program),
    }
}
