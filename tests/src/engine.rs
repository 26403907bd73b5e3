//! The engine binary: where it is, starting it (in a namespace or not),
//! asking it for counters with SIGUSR1, and stopping it.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output};
use std::time::{Duration, Instant, SystemTime};

use crate::cmd::output;
use crate::netns::Netns;
use crate::process::BgProcess;
use crate::stats::EngineStats;

/// The workspace root (this crate lives in `<root>/tests`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

fn newest_mtime(dir: &Path) -> Option<SystemTime> {
    let mut newest = None;
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        let t = if p.is_dir() {
            newest_mtime(&p)
        } else {
            e.metadata().and_then(|m| m.modified()).ok()
        };
        newest = newest.max(t);
    }
    newest
}

/// The engine binary under test: `$PATRONUS_ENGINE` if set, otherwise
/// `target/release/patronus-engine`, or `target/debug/…` if only that one is
/// up to date. Fails clearly if none is newer than the engine's sources, so
/// a stale build is never tested by mistake.
pub fn engine_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("PATRONUS_ENGINE") {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "PATRONUS_ENGINE={} does not exist",
            p.display()
        );
        return p;
    }
    let root = workspace_root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let mtime = |p: &Path| p.metadata().and_then(|m| m.modified()).ok();
    let sources =
        newest_mtime(&root.join("engine/src")).max(mtime(&root.join("engine/Cargo.toml")));
    let candidates: Vec<(PathBuf, SystemTime)> = ["release", "debug"]
        .iter()
        .map(|prof| target.join(prof).join("patronus-engine"))
        .filter_map(|p| mtime(&p).map(|t| (p, t)))
        .collect();
    assert!(
        !candidates.is_empty(),
        "no engine binary in {}/{{release,debug}}: run `cargo build --release -p \
         patronus-engine` first, or set PATRONUS_ENGINE",
        target.display()
    );
    // Release first: a debug engine is too slow for the streaming tests
    // (its RX ring overflows under a burst).
    candidates
        .iter()
        .find(|(_, t)| sources.is_none_or(|s| *t >= s))
        .map(|(p, _)| p.clone())
        .unwrap_or_else(|| {
            panic!(
                "every engine binary in {} is older than the engine's sources: rebuild \
                 (`cargo build --release -p patronus-engine`) or set PATRONUS_ENGINE",
                target.display()
            )
        })
}

/// Runs `patronus-engine --config FILE --check`.
pub fn check_config(config: &Path) -> Output {
    output(
        Command::new(engine_binary())
            .arg("--config")
            .arg(config)
            .arg("--check"),
    )
}

/// True once the process has installed a handler for `sig` (so sending it
/// cannot kill the process by the default action).
fn catches_signal(pid: u32, sig: libc::c_int) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        .is_some_and(|mask| mask & (1u64 << (sig - 1)) != 0)
}

/// A running engine; killed on drop.
#[derive(Debug)]
pub struct Engine {
    proc: BgProcess,
    stats_path: PathBuf,
}

impl Engine {
    /// Writes `config` to `<dir>/<name>.toml` and starts the engine with
    /// `--stats-json <dir>/<name>-stats.json`, inside `ns` when given.
    pub fn start(ns: Option<&Netns>, config: &str, dir: &Path, name: &str, extra: &[&str]) -> Self {
        let cfg_path = dir.join(format!("{name}.toml"));
        std::fs::write(&cfg_path, config).expect("write engine config");
        let stats_path = dir.join(format!("{name}-stats.json"));
        let bin = engine_binary();
        let bin = bin.to_str().expect("utf-8 path");
        let cfg = cfg_path.to_str().expect("utf-8 path");
        let stats = stats_path.to_str().expect("utf-8 path");
        let mut args = vec!["--config", cfg, "--stats-json", stats];
        args.extend_from_slice(extra);
        let cmd = match ns {
            Some(ns) => ns.command(bin, &args),
            None => {
                let mut c = Command::new(bin);
                c.args(&args);
                c
            }
        };
        let proc = BgProcess::spawn(cmd, dir, name);
        Engine { proc, stats_path }
    }

    /// The process (for its output and status).
    pub fn process(&mut self) -> &mut BgProcess {
        &mut self.proc
    }

    /// Panics with the engine's output if it has exited.
    pub fn assert_running(&mut self) {
        if self.proc.try_wait().is_some() {
            panic!("the engine exited early: {}", self.proc.report());
        }
    }

    /// Waits (up to 10 s) until the engine handles SIGUSR1.
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !catches_signal(self.proc.pid(), libc::SIGUSR1) {
            self.assert_running();
            assert!(
                Instant::now() < deadline,
                "the engine did not install its SIGUSR1 handler within 10 s: {}",
                self.proc.report()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The counters now: sends SIGUSR1 and waits for the stats file to be
    /// rewritten.
    pub fn stats(&mut self) -> EngineStats {
        self.wait_ready();
        let before = std::fs::read(&self.stats_path).ok();
        self.proc.signal(libc::SIGUSR1);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(now) = std::fs::read(&self.stats_path) {
                if before.as_deref() != Some(&now[..]) {
                    if let Some(s) = EngineStats::parse(&String::from_utf8_lossy(&now)) {
                        return s;
                    }
                }
            }
            self.assert_running();
            assert!(
                Instant::now() < deadline,
                "the engine did not rewrite {} within 10 s of SIGUSR1: {}",
                self.stats_path.display(),
                self.proc.report()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the engine with SIGINT and returns its exit status and final
    /// counters (written at exit). Panics if it does not stop within 10 s.
    pub fn stop(&mut self) -> (ExitStatus, EngineStats) {
        self.wait_ready();
        let (status, clean) = self.proc.stop(libc::SIGINT, Duration::from_secs(10));
        assert!(
            clean,
            "the engine ignored SIGINT for 10 s: {}",
            self.proc.report()
        );
        (status, self.final_stats())
    }

    /// Waits up to `timeout` for the engine to exit by itself (finite
    /// inputs, `--duration`) and returns its status and final counters.
    pub fn wait_exit(&mut self, timeout: Duration) -> (ExitStatus, EngineStats) {
        let status = self.proc.wait_timeout(timeout).unwrap_or_else(|| {
            panic!(
                "the engine did not exit within {timeout:?}: {}",
                self.proc.report()
            )
        });
        (status, self.final_stats())
    }

    fn final_stats(&mut self) -> EngineStats {
        let text = std::fs::read_to_string(&self.stats_path).unwrap_or_default();
        EngineStats::parse(&text).unwrap_or_else(|| {
            panic!(
                "no complete stats in {} after exit: {text:?}\n{}",
                self.stats_path.display(),
                self.proc.report()
            )
        })
    }
}
