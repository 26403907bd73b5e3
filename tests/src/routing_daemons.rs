//! Real BGP peers for end-to-end tests: BIRD 2 and FRR's bgpd, each run
//! in a test namespace with its configuration, control socket and logs in
//! the test's scratch directory, stopped when its guard drops.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::netns::Netns;
use crate::process::BgProcess;

/// How long a peer gets to reach a state (sessions retry within seconds).
pub const PEER_WAIT: Duration = Duration::from_secs(60);

/// A running BIRD 2.
#[derive(Debug)]
pub struct Bird {
    proc: Option<BgProcess>,
    ns: String,
    dir: PathBuf,
    name: String,
}

impl Bird {
    /// Writes `conf` as `<dir>/<name>.conf` and starts BIRD with it in `ns`.
    pub fn start(ns: &Netns, dir: &Path, name: &str, conf: &str) -> Bird {
        let mut b = Bird {
            proc: None,
            ns: ns.name().to_string(),
            dir: dir.to_path_buf(),
            name: name.to_string(),
        };
        b.write_conf(conf);
        b.launch(ns, &[]);
        b
    }

    fn conf_path(&self) -> PathBuf {
        self.dir.join(format!("{}.conf", self.name))
    }

    fn sock(&self) -> PathBuf {
        self.dir.join(format!("{}.ctl", self.name))
    }

    /// Replaces the configuration file (apply with [`Bird::reconfigure`] or
    /// a restart).
    pub fn write_conf(&self, conf: &str) {
        std::fs::write(self.conf_path(), conf).expect("write bird.conf");
    }

    fn launch(&mut self, ns: &Netns, opts: &[&str]) {
        let conf = self.conf_path();
        let sock = self.sock();
        let mut args = vec![
            "-f",
            "-c",
            conf.to_str().unwrap(),
            "-s",
            sock.to_str().unwrap(),
        ];
        args.extend_from_slice(opts);
        let proc = ns.spawn("bird", &args, &self.dir, &self.name);
        self.proc = Some(proc);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.sock().exists() {
            assert!(
                Instant::now() < deadline,
                "BIRD did not start: {}",
                self.report()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills BIRD at once (SIGKILL, as a crash would).
    pub fn kill(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.stop(libc::SIGKILL, Duration::from_secs(5));
        }
        let _ = std::fs::remove_file(self.sock());
    }

    /// Starts BIRD again after [`Bird::kill`], in graceful-restart recovery
    /// (`-R`) when `graceful`.
    pub fn restart(&mut self, ns: &Netns, graceful: bool) {
        assert!(self.proc.is_none(), "BIRD still runs");
        self.launch(ns, if graceful { &["-R"] } else { &[] });
    }

    /// Runs `birdc` with `args`; returns its output.
    pub fn birdc(&self, args: &[&str]) -> String {
        let sock = self.sock();
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", &self.ns, "birdc", "-s"])
            .arg(&sock)
            .args(args)
            .output()
            .expect("run birdc");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Re-reads the configuration file.
    pub fn reconfigure(&self) {
        let out = self.birdc(&["configure"]);
        assert!(out.contains("Reconfigur"), "birdc configure: {out}");
    }

    /// Polls `birdc args` until `pred` holds on its output; returns it.
    pub fn birdc_until(&self, args: &[&str], what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PEER_WAIT;
        loop {
            let out = self.birdc(args);
            if pred(&out) {
                return out;
            }
            assert!(
                Instant::now() < deadline,
                "BIRD never {what}: birdc {args:?}:\n{out}\n{}",
                self.report()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// BIRD's log file and stderr, for failure messages.
    pub fn report(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join(format!("{}.log", self.name)))
            .unwrap_or_default();
        let err = std::fs::read_to_string(self.dir.join(format!("{}.err", self.name)))
            .unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        format!(
            "--- {} log (last lines, newest first)\n{}\n--- stderr\n{err}",
            self.name,
            tail.join("\n")
        )
    }
}

/// A running FRR bgpd (without zebra: it installs no kernel routes).
#[derive(Debug)]
pub struct Frr {
    _proc: BgProcess,
    ns: String,
    dir: PathBuf,
}

impl Frr {
    /// Writes `conf` and starts bgpd in `ns` (`-S -Z -n`: no zebra, no
    /// kernel routes, no VRF netns); vty socket in `dir/frr`.
    pub fn start(ns: &Netns, dir: &Path, conf: &str) -> Frr {
        let d = dir.join("frr");
        std::fs::create_dir_all(&d).unwrap();
        let conf_path = d.join("frr.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let pid = d.join("bgpd.pid");
        let zs = d.join("zserv.api");
        let proc = ns.spawn(
            "/usr/lib/frr/bgpd",
            &[
                "-f",
                conf_path.to_str().unwrap(),
                "-i",
                pid.to_str().unwrap(),
                "-z",
                zs.to_str().unwrap(),
                "--vty_socket",
                d.to_str().unwrap(),
                "-S",
                "-Z",
                "-n",
            ],
            dir,
            "bgpd",
        );
        Frr {
            _proc: proc,
            ns: ns.name().to_string(),
            dir: d,
        }
    }

    /// Runs vtysh commands (each `-c`); returns the output.
    pub fn vtysh(&self, cmds: &[&str]) -> String {
        let mut c = std::process::Command::new("ip");
        c.args(["netns", "exec", &self.ns, "vtysh", "--vty_socket"])
            .arg(&self.dir);
        for cmd in cmds {
            c.args(["-c", cmd]);
        }
        let out = c.output().expect("run vtysh");
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// Polls a vtysh command until `pred` holds on its output.
    pub fn vtysh_until(&self, cmd: &str, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PEER_WAIT;
        loop {
            let out = self.vtysh(&[cmd]);
            if pred(&out) {
                return out;
            }
            assert!(Instant::now() < deadline, "FRR never {what}: {cmd}:\n{out}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
