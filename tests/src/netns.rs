//! Network namespaces created with unique names and deleted on drop, even
//! when the test panics; veth pairs, addresses, routes and sysctls inside
//! them, and commands run inside them.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::cmd::{describe, output, run};
use crate::process::BgProcess;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A network namespace owned by the test; removed with every process left in
/// it when dropped.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates `pt<pid>x<counter><tag>` with its loopback up.
    pub fn new(tag: &str) -> Self {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("pt{}x{n}{tag}", std::process::id());
        run(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// The namespace name (for `ip netns exec`, `ip -n`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A `Command` that runs `program args…` inside the namespace.
    pub fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]).args(args);
        c
    }

    /// Runs a program inside the namespace; panics unless it exits 0.
    pub fn exec(&self, program: &str, args: &[&str]) -> String {
        run(&mut self.command(program, args))
    }

    /// Runs a program inside the namespace and returns its output whatever
    /// its status.
    pub fn exec_output(&self, program: &str, args: &[&str]) -> Output {
        output(&mut self.command(program, args))
    }

    /// `ip -n NS args…`; panics on failure.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut c = Command::new("ip");
        c.args(["-n", &self.name]).args(args);
        run(&mut c)
    }

    /// Sets a sysctl inside the namespace (`key=value`).
    pub fn sysctl(&self, key: &str, value: &str) {
        self.exec("sysctl", &["-q", "-w", &format!("{key}={value}")]);
    }

    /// Adds an address (`A.B.C.D/LEN`) to an interface.
    pub fn addr_add(&self, iface: &str, cidr: &str) {
        self.ip(&["addr", "add", cidr, "dev", iface]);
    }

    /// Adds a route (`ip route add <spec…>`).
    pub fn route_add(&self, spec: &[&str]) {
        let mut args = vec!["route", "add"];
        args.extend_from_slice(spec);
        self.ip(&args);
    }

    /// Brings an interface up.
    pub fn link_up(&self, iface: &str) {
        self.ip(&["link", "set", iface, "up"]);
    }

    /// Stops the kernel from using an interface the engine owns: no IPv6
    /// (so no link-local address, no ND/RS traffic beside the engine's).
    pub fn disable_ipv6(&self, iface: &str) {
        self.sysctl(&format!("net.ipv6.conf.{iface}.disable_ipv6"), "1");
    }

    /// The MAC address of an interface.
    pub fn mac(&self, iface: &str) -> String {
        let out = self.ip(&["-j", "link", "show", "dev", iface]);
        let v: serde_json::Value = serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("ip -j link show {iface}: {e}: {out}"));
        v[0]["address"]
            .as_str()
            .unwrap_or_else(|| panic!("no address for {iface} in {out}"))
            .to_string()
    }

    /// Starts a background process inside the namespace; it is stopped when
    /// the guard drops (and in any case when the namespace is removed).
    pub fn spawn(&self, program: &str, args: &[&str], log_dir: &Path, name: &str) -> BgProcess {
        BgProcess::spawn(self.command(program, args), log_dir, name)
    }

    /// Pids of every process inside the namespace.
    pub fn pids(&self) -> Vec<libc::pid_t> {
        let out = output(Command::new("ip").args(["netns", "pids", &self.name]));
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }
}

/// Creates a veth pair with one end `a_if` in `a` and the other `b_if` in
/// `b`, both up. The pair is created inside `a`, so no name is ever taken in
/// the host's namespace.
pub fn veth(a: &Netns, a_if: &str, b: &Netns, b_if: &str) {
    a.ip(&[
        "link",
        "add",
        a_if,
        "type",
        "veth",
        "peer",
        "name",
        b_if,
        "netns",
        b.name(),
    ]);
    a.link_up(a_if);
    b.link_up(b_if);
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Processes left inside would keep nothing alive (the namespace goes
        // when its last user does) but they would outlive the test.
        for pid in self.pids() {
            // SAFETY: kill() with a pid read from `ip netns pids`; at worst
            // the process is already gone and kill fails with ESRCH.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        let mut del = Command::new("ip");
        del.args(["netns", "del", &self.name]);
        for _ in 0..50 {
            match del.output() {
                Ok(o) if o.status.success() => return,
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
        eprintln!("could not remove namespace with `{}`", describe(&del));
    }
}
