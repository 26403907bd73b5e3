//! The real binaries for the `*_ctl` tests: `patronus-control` on free
//! localhost ports with a file database (killed on drop, also when a test
//! fails) and `patronusctl` runs with their exit code and output.

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use super::TOKEN;

/// A running `patronus-control`.
pub struct Control {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub api: String,
    /// `http://127.0.0.1:PORT/metrics`.
    pub metrics: String,
}

impl Drop for Control {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A localhost port free now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the control process on `dir` (database, runtime dir), its log in
/// `dir/control.log`; returns once its API answers.
pub fn start(dir: &Path) -> Control {
    start_logged(dir, &dir.join("control.log"))
}

/// As [`start`] with the log (stderr) at `log` and stdout beside it.
pub fn start_logged(dir: &Path, log: &Path) -> Control {
    start_with(dir, log, &[])
}

/// As [`start_logged`] with environment variables set (e.g. `RUST_LOG`).
pub fn start_with(dir: &Path, log: &Path, env: &[(&str, &str)]) -> Control {
    let (api_port, metrics_port) = (free_port(), free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_patronus-control"))
        .envs(env.iter().copied())
        .args(["--listen", &format!("127.0.0.1:{api_port}")])
        .args(["--metrics-listen", &format!("127.0.0.1:{metrics_port}")])
        .arg("--db")
        .arg(dir.join("control.db"))
        .arg("--runtime-dir")
        .arg(dir.join("shm"))
        .args(["--token", TOKEN])
        .stdout(Stdio::from(
            std::fs::File::create(log.with_extension("out")).unwrap(),
        ))
        .stderr(Stdio::from(std::fs::File::create(log).unwrap()))
        .spawn()
        .expect("start patronus-control");
    let c = Control {
        child,
        api: format!("http://127.0.0.1:{api_port}"),
        metrics: format!("http://127.0.0.1:{metrics_port}/metrics"),
    };
    // Ready when the API answers (bounded number of tries, no timing
    // assertion).
    for _ in 0..400 {
        if ctl(&c.api, &["status"]).code == 0 {
            return c;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    panic!(
        "patronus-control did not come up: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// One `patronusctl` run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Asserts exit 0.
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "stderr: {}\nstdout: {}",
            self.stderr, self.stdout
        );
        self
    }

    /// Stdout as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }
}

/// `patronusctl --api API --token TOKEN ARGS...`.
pub fn ctl(api: &str, args: &[&str]) -> Run {
    ctl_input(api, args, None)
}

/// As [`ctl`], with `stdin` as its standard input.
pub fn ctl_input(api: &str, args: &[&str], stdin: Option<&str>) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_patronusctl"))
        .args(["--api", api, "--token", TOKEN])
        .args(args)
        .env_remove("PATRONUS_API")
        .env_remove("PATRONUS_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run patronusctl");
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().expect("exited"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
