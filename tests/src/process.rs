//! Background processes (engine, iperf3 server, tcpdump) that are stopped
//! when their guard drops, with their output captured in files.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::cmd::describe;

/// A running child process; SIGTERM then SIGKILL on drop.
#[derive(Debug)]
pub struct BgProcess {
    child: Child,
    what: String,
    stdout: PathBuf,
    stderr: PathBuf,
    exited: Option<ExitStatus>,
}

impl BgProcess {
    /// Spawns `cmd` with stdout and stderr sent to `<log_dir>/<name>.out|.err`.
    pub fn spawn(mut cmd: Command, log_dir: &Path, name: &str) -> Self {
        let stdout = log_dir.join(format!("{name}.out"));
        let stderr = log_dir.join(format!("{name}.err"));
        let what = describe(&cmd);
        let open = |p: &Path| {
            File::create(p).unwrap_or_else(|e| panic!("cannot create {}: {e}", p.display()))
        };
        cmd.stdin(Stdio::null())
            .stdout(open(&stdout))
            .stderr(open(&stderr));
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{what}`: {e}"));
        BgProcess {
            child,
            what,
            stdout,
            stderr,
            exited: None,
        }
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The command line, for messages.
    pub fn what(&self) -> &str {
        &self.what
    }

    /// Sends a signal (no-op once the process has been reaped).
    pub fn signal(&self, sig: libc::c_int) {
        if self.exited.is_some() {
            return;
        }
        // SAFETY: kill() on our own unreaped child's pid; the pid cannot have
        // been reused while the child is not reaped.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, sig);
        }
    }

    /// Exit status if the process has ended.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self
                .child
                .try_wait()
                .unwrap_or_else(|e| panic!("wait for `{}`: {e}", self.what));
        }
        self.exited
    }

    /// Waits up to `timeout` for the process to end by itself.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.try_wait() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `sig`, waits up to `timeout`, then SIGKILLs; returns the status
    /// and whether the process ended on its own after `sig`.
    pub fn stop(&mut self, sig: libc::c_int, timeout: Duration) -> (ExitStatus, bool) {
        self.signal(sig);
        if let Some(s) = self.wait_timeout(timeout) {
            return (s, true);
        }
        self.signal(libc::SIGKILL);
        let s = self
            .wait_timeout(Duration::from_secs(10))
            .unwrap_or_else(|| panic!("`{}` survived SIGKILL", self.what));
        (s, false)
    }

    /// Captured stdout so far.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// Captured stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// A block with the command, its status and output, for failure messages.
    pub fn report(&mut self) -> String {
        let status = self.try_wait();
        format!(
            "`{}` (status {:?})\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.what,
            status,
            self.stdout(),
            self.stderr()
        )
    }
}

impl Drop for BgProcess {
    fn drop(&mut self) {
        if self.try_wait().is_none() {
            self.stop(libc::SIGTERM, Duration::from_secs(3));
        }
        if std::thread::panicking() {
            eprintln!("{}", self.report());
        }
    }
}
