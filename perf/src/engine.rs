//! Driving the `patronus-engine` binary as a separate process: finding (or
//! building) it, validating a config, running it (optionally inside a
//! network namespace), stopping it and reading its `--stats-json` output.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// The workspace root (this crate lives in `<root>/perf`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The engine binary: `--engine PATH`, else `target/release/patronus-engine`
/// of the workspace, built with `cargo build --release` when missing.
pub fn locate(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = explicit {
        if !p.exists() {
            bail!("engine binary {} does not exist", p.display());
        }
        return Ok(p.to_path_buf());
    }
    let root = workspace_root();
    let path = root.join("target/release/patronus-engine");
    if !path.exists() {
        eprintln!("building the engine: cargo build --release -p patronus-engine");
        let status = Command::new("cargo")
            .args(["build", "--release", "-p", "patronus-engine"])
            .current_dir(&root)
            .status()
            .context("running cargo")?;
        if !status.success() || !path.exists() {
            bail!("cargo build --release -p patronus-engine failed");
        }
    }
    Ok(path)
}

/// Runs `engine --config FILE --check`; Err carries the engine's message.
pub fn check_config(engine: &Path, config: &Path) -> anyhow::Result<()> {
    let out = Command::new(engine)
        .arg("--config")
        .arg(config)
        .arg("--check")
        .output()
        .with_context(|| format!("running {}", engine.display()))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() || !text.contains("config OK") {
        bail!(
            "engine rejected the config (exit {:?}): {}",
            out.status.code(),
            text.trim()
        );
    }
    Ok(())
}

/// How a finished engine run ended.
#[derive(Debug)]
pub struct ExitInfo {
    pub success: bool,
    pub code: Option<i32>,
    /// User + system CPU of the whole process, from wait4's rusage.
    pub cpu_secs: f64,
    /// Its stdout (the counters table) and stderr.
    pub output: String,
}

/// A running engine; killed on drop if still running.
pub struct EngineProcess {
    child: Child,
    reaped: bool,
    log: PathBuf,
}

impl EngineProcess {
    /// Starts `engine --config CONFIG --stats-json STATS` at nice value
    /// `nice`, inside `netns` when given.
    pub fn spawn(
        engine: &Path,
        config: &Path,
        stats: &Path,
        netns: Option<&str>,
        nice: i32,
        log: &Path,
    ) -> anyhow::Result<EngineProcess> {
        // `nice` and `ip netns exec` both exec, so the pid stays the engine's.
        let mut cmd = Command::new("nice");
        cmd.arg("-n").arg(nice.to_string());
        if let Some(ns) = netns {
            cmd.args(["ip", "netns", "exec", ns]);
        }
        cmd.arg(engine);
        cmd.arg("--config")
            .arg(config)
            .arg("--stats-json")
            .arg(stats);
        let logfile = std::fs::File::create(log)?;
        cmd.stdin(Stdio::null())
            .stdout(logfile.try_clone()?)
            .stderr(logfile);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", engine.display()))?;
        Ok(EngineProcess {
            child,
            reaped: false,
            log: log.to_path_buf(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for exit up to `timeout` (None = forever); Ok(None) on timeout;
    /// fails early on Ctrl-C.
    pub fn wait_timeout(&mut self, timeout: Option<Duration>) -> anyhow::Result<Option<ExitInfo>> {
        self.wait_inner(timeout, true)
    }

    fn wait_inner(
        &mut self,
        timeout: Option<Duration>,
        interruptible: bool,
    ) -> anyhow::Result<Option<ExitInfo>> {
        let start = Instant::now();
        loop {
            let mut status = 0;
            // SAFETY: rusage is plain data filled by the kernel.
            let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
            // SAFETY: waits for our own child; status and ru are valid out-pointers.
            let rc =
                unsafe { libc::wait4(self.child.id() as i32, &mut status, libc::WNOHANG, &mut ru) };
            if rc < 0 {
                bail!("wait4: {}", std::io::Error::last_os_error());
            }
            if rc > 0 {
                self.reaped = true;
                let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
                let exited = libc::WIFEXITED(status);
                return Ok(Some(ExitInfo {
                    success: exited && libc::WEXITSTATUS(status) == 0,
                    code: exited.then(|| libc::WEXITSTATUS(status)),
                    cpu_secs: tv(ru.ru_utime) + tv(ru.ru_stime),
                    output: std::fs::read_to_string(&self.log).unwrap_or_default(),
                }));
            }
            if timeout.is_some_and(|t| start.elapsed() >= t) {
                return Ok(None);
            }
            if interruptible && crate::netns::stop_requested() {
                bail!("interrupted");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether it has already exited (then its exit info).
    pub fn exited(&mut self) -> anyhow::Result<Option<ExitInfo>> {
        self.wait_inner(Some(Duration::ZERO), false)
    }

    fn signal(&self, sig: libc::c_int) {
        if !self.reaped {
            // SAFETY: signals our own unreaped child, so the pid is still ours.
            unsafe { libc::kill(self.child.id() as i32, sig) };
        }
    }

    /// Asks for a fresh `--stats-json` (SIGUSR1) and reads it once rewritten.
    pub fn snapshot(&self, stats: &Path) -> anyhow::Result<EngineStats> {
        let before = std::fs::read_to_string(stats).unwrap_or_default();
        self.signal(libc::SIGUSR1);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(Duration::from_millis(5));
            if let Ok(now) = std::fs::read_to_string(stats) {
                if now != before && !now.is_empty() {
                    return EngineStats::parse(&now)
                        .with_context(|| format!("parsing {}", stats.display()));
                }
            }
        }
        bail!("engine did not rewrite {} on SIGUSR1", stats.display())
    }

    /// SIGINT, then SIGKILL if it has not exited after 10 s.
    pub fn stop(mut self) -> anyhow::Result<ExitInfo> {
        self.signal(libc::SIGINT);
        if let Some(info) = self.wait_inner(Some(Duration::from_secs(10)), false)? {
            return Ok(info);
        }
        self.signal(libc::SIGKILL);
        self.wait_inner(None, false)?
            .context("engine did not exit after SIGKILL")
    }
}

impl Drop for EngineProcess {
    fn drop(&mut self) {
        if !self.reaped {
            self.signal(libc::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

/// The parts of `--stats-json` the harness reads.
#[derive(Debug, Default)]
pub struct EngineStats {
    pub elapsed_secs: f64,
    pub ports: Vec<PortCounters>,
    pub drops_total: u64,
    /// Non-zero drop reasons.
    pub drops: Vec<(String, u64)>,
    /// Worker loop iterations that found packets / found none (summed).
    pub busy_polls: u64,
    pub idle_polls: u64,
    /// Non-zero NAT counters, when the engine reports a `"nat"` object
    /// (name → value; nested objects flattened as `outer.inner`).
    pub nat: Vec<(String, u64)>,
    /// Non-zero classification counters (the `"classify"` object).
    pub classify: Vec<(String, u64)>,
    /// Non-zero load-balancer counters (the `"lb"` object).
    pub lb: Vec<(String, u64)>,
}

#[derive(Debug, Default)]
pub struct PortCounters {
    pub name: String,
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub rx_missed: u64,
}

impl EngineStats {
    pub fn read(path: &Path) -> anyhow::Result<EngineStats> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        EngineStats::parse(&text).with_context(|| format!("parsing {}", path.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<EngineStats> {
        let v: serde_json::Value = serde_json::from_str(text)?;
        let u = |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_u64()).unwrap_or(0);
        let ports = v
            .get("ports")
            .and_then(|p| p.as_array())
            .context("no \"ports\" array")?
            .iter()
            .map(|p| PortCounters {
                name: p
                    .get("name")
                    .and_then(|n| n.as_str())
                    .unwrap_or_default()
                    .to_string(),
                rx_packets: u(p, "rx_packets"),
                tx_packets: u(p, "tx_packets"),
                tx_errors: u(p, "tx_errors"),
                rx_missed: u(p, "rx_missed"),
            })
            .collect();
        let drops = v
            .get("drops")
            .and_then(|d| d.as_object())
            .map(|m| {
                m.iter()
                    .filter_map(|(k, x)| x.as_u64().filter(|n| *n > 0).map(|n| (k.clone(), n)))
                    .collect()
            })
            .unwrap_or_default();
        let per_worker = v.get("per_worker").and_then(|w| w.as_array());
        let sum = |k: &str| per_worker.map_or(0, |ws| ws.iter().map(|w| u(w, k)).sum());
        Ok(EngineStats {
            busy_polls: sum("busy_polls"),
            idle_polls: sum("idle_polls"),
            elapsed_secs: v
                .get("elapsed_secs")
                .and_then(|x| x.as_f64())
                .context("no \"elapsed_secs\"")?,
            ports,
            drops_total: u(&v, "drops_total"),
            drops,
            nat: v.get("nat").map(|n| flatten("", n)).unwrap_or_default(),
            classify: v
                .get("classify")
                .map(|n| flatten("", n))
                .unwrap_or_default(),
            lb: v.get("lb").map(|n| flatten("", n)).unwrap_or_default(),
        })
    }

    pub fn port(&self, name: &str) -> Option<&PortCounters> {
        self.ports.iter().find(|p| p.name == name)
    }

    /// "no_route=3, ttl_exceeded=1" or "none".
    pub fn drops_summary(&self) -> String {
        if self.drops.is_empty() {
            return "none".into();
        }
        self.drops
            .iter()
            .map(|(k, n)| format!("{k}={n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Non-zero integers of a JSON value as `(dotted.name, value)`.
fn flatten(prefix: &str, v: &serde_json::Value) -> Vec<(String, u64)> {
    match v {
        serde_json::Value::Object(m) => m
            .iter()
            .flat_map(|(k, x)| {
                let name = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&name, x)
            })
            .collect(),
        _ => v
            .as_u64()
            .filter(|n| *n > 0)
            .map(|n| vec![(prefix.to_string(), n)])
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stats_json() {
        let s = r#"{"elapsed_secs": 1.5, "workers": 1, "ports": [
            {"name": "lan0", "rx_packets": 10, "rx_bytes": 640, "tx_packets": 0, "tx_bytes": 0, "tx_errors": 0, "rx_missed": 2, "rx_errors": 0},
            {"name": "wan0", "rx_packets": 0, "rx_bytes": 0, "tx_packets": 9, "tx_bytes": 576, "tx_errors": 1, "rx_missed": 0, "rx_errors": 0}],
            "drops": {"no_route": 1, "ttl_exceeded": 0}, "drops_total": 1, "icmp_sent": 0,
            "per_worker": [{"worker": 0, "busy_polls": 5, "idle_polls": 7}, {"worker": 1, "busy_polls": 1, "idle_polls": 0}]}"#;
        let st = EngineStats::parse(s).unwrap();
        assert_eq!(st.elapsed_secs, 1.5);
        assert_eq!(st.port("wan0").unwrap().tx_packets, 9);
        assert_eq!(st.port("lan0").unwrap().rx_missed, 2);
        assert_eq!(st.drops_summary(), "no_route=1");
        assert_eq!((st.busy_polls, st.idle_polls), (6, 7));
        assert!(st.nat.is_empty());
        assert!(EngineStats::parse("{}").is_err());
        let with_nat = r#"{"elapsed_secs": 1.0, "ports": [],
            "nat": {"sessions_created": 5, "sessions_active": 0, "drops": {"table_full": 2}},
            "lb": {"flows_pinned": 7, "nat_forward": 0}}"#;
        let st = EngineStats::parse(with_nat).unwrap();
        assert_eq!(
            st.nat,
            vec![
                ("drops.table_full".to_string(), 2),
                ("sessions_created".to_string(), 5)
            ]
        );
        assert_eq!(st.lb, vec![("flows_pinned".to_string(), 7)]);
    }
}
