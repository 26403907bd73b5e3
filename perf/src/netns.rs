//! Network-namespace plumbing for scenarios: namespaces and veth pairs with
//! unique names, removed by a guard on drop (also after an error), and a
//! SIGINT/SIGTERM flag so Ctrl-C unwinds through those guards.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

static STOP: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// Turns SIGINT/SIGTERM into a flag (checked by [`sleep_checked`]) instead of
/// killing the process, so guards run and nothing is left behind.
pub fn install_signal_flag() -> anyhow::Result<()> {
    let flag = STOP.get_or_init(|| Arc::new(AtomicBool::new(false)));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(flag)).context("installing signal handler")?;
    }
    Ok(())
}

/// Whether Ctrl-C (or SIGTERM) arrived.
pub fn stop_requested() -> bool {
    STOP.get().is_some_and(|f| f.load(Ordering::Relaxed))
}

/// Sleeps, but fails early when a stop was requested.
pub fn sleep_checked(d: Duration) -> anyhow::Result<()> {
    let end = Instant::now() + d;
    loop {
        if stop_requested() {
            bail!("interrupted");
        }
        let now = Instant::now();
        if now >= end {
            return Ok(());
        }
        std::thread::sleep((end - now).min(Duration::from_millis(50)));
    }
}

/// Moves the calling thread into network namespace `name` (/run/netns/NAME).
pub fn enter(name: &str) -> anyhow::Result<()> {
    let path = format!("/run/netns/{name}");
    let file = std::fs::File::open(&path).with_context(|| format!("opening {path}"))?;
    use std::os::fd::AsRawFd;
    // SAFETY: setns on a valid namespace fd only changes this thread's netns.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        bail!("setns({path}): {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// Runs a command, failing with its stderr when it exits non-zero.
pub fn run(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program}"))?;
    if !out.status.success() {
        bail!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A set of namespaces created for one scenario phase; dropping it deletes
/// them (and with them every veth inside).
#[derive(Debug)]
pub struct Lab {
    prefix: String,
    namespaces: Vec<String>,
}

impl Lab {
    /// `tag` distinguishes phases of one run; names include the pid.
    pub fn new(tag: &str) -> Lab {
        Lab {
            prefix: format!("pperf{}{tag}", std::process::id()),
            namespaces: Vec::new(),
        }
    }

    /// Creates namespace `<prefix>-<short>` and returns its name.
    pub fn add_netns(&mut self, short: &str) -> anyhow::Result<String> {
        let name = format!("{}-{short}", self.prefix);
        run("ip", &["netns", "add", &name])?;
        self.namespaces.push(name.clone());
        self.ip(&name, &["link", "set", "lo", "up"])?;
        // No IPv6 chatter (router solicitations, MLD) in the measured links.
        self.sysctl(&name, "net.ipv6.conf.all.disable_ipv6", "1")?;
        self.sysctl(&name, "net.ipv6.conf.default.disable_ipv6", "1")?;
        self.sysctl(&name, "net.ipv4.conf.all.rp_filter", "0")?;
        self.sysctl(&name, "net.ipv4.conf.default.rp_filter", "0")?;
        Ok(name)
    }

    /// `ip -n NS ARGS...`
    pub fn ip(&self, netns: &str, args: &[&str]) -> anyhow::Result<String> {
        let mut all = vec!["-n", netns];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// `sysctl -w KEY=VALUE` inside the namespace.
    pub fn sysctl(&self, netns: &str, key: &str, value: &str) -> anyhow::Result<()> {
        let kv = format!("{key}={value}");
        run("ip", &["netns", "exec", netns, "sysctl", "-qw", &kv])?;
        Ok(())
    }

    /// A veth pair `a` (in `a_ns`) — `b` (in `b_ns`), both up, with fixed MACs.
    pub fn veth(&self, a: &End, b: &End) -> anyhow::Result<()> {
        run(
            "ip",
            &[
                "link", "add", &a.iface, "address", &a.mac, "netns", &a.netns, "type", "veth",
                "peer", "name", &b.iface, "address", &b.mac, "netns", &b.netns,
            ],
        )?;
        for end in [a, b] {
            self.ip(&end.netns, &["link", "set", &end.iface, "up"])?;
        }
        Ok(())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in self.namespaces.drain(..).rev() {
            if let Err(e) = run("ip", &["netns", "del", &ns]) {
                eprintln!("warning: could not delete namespace {ns}: {e:#}");
            }
        }
    }
}

/// One end of a veth pair.
#[derive(Clone, Debug)]
pub struct End {
    pub netns: String,
    pub iface: String,
    pub mac: String,
}

impl End {
    /// Interface `pp<pid><tag>` with MAC 02:50:50:00:<n>:<m>.
    pub fn new(netns: &str, tag: &str, mac_tail: [u8; 2]) -> End {
        End {
            netns: netns.into(),
            iface: format!("pp{}{tag}", std::process::id()),
            mac: format!("02:50:50:00:{:02x}:{:02x}", mac_tail[0], mac_tail[1]),
        }
    }

    pub fn mac_bytes(&self) -> [u8; 6] {
        let mut out = [0u8; 6];
        for (o, part) in out.iter_mut().zip(self.mac.split(':')) {
            *o = u8::from_str_radix(part, 16).unwrap_or(0);
        }
        out
    }
}

/// Namespaces whose name starts with `pperf<pid>` (for checking that nothing
/// was left behind).
pub fn leftover_namespaces() -> Vec<String> {
    namespaces_starting_with(&format!("pperf{}", std::process::id()))
}

/// Namespaces whose name starts with `prefix`.
pub fn namespaces_starting_with(prefix: &str) -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default()
}
