//! BIRD 2 processes of the scenario (the feeder and the receivers, each in
//! its namespace, killed on drop) and what the harness reads through
//! `birdc`: per-protocol state and route counts from `show protocols all`
//! (counters BIRD keeps, so a poll costs the same with 1 M routes as with
//! none, unlike `show route count`, which walks the table) and the total of
//! `show memory`; and a waker that keeps the feeder's event loop turning.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::netns::sleep_checked;

/// A running `bird -f` (foreground, so it is our child).
pub struct Bird {
    child: Child,
    sock: PathBuf,
    log: PathBuf,
}

impl Bird {
    /// Starts BIRD with `conf` inside `netns` (`ip netns exec` execs, so
    /// the child's pid is BIRD's own) and waits until its control socket
    /// answers (BIRD answers only once the config is parsed).
    pub fn start(netns: &str, conf: &Path, sock: &Path, log: &Path) -> anyhow::Result<Bird> {
        let f = std::fs::File::create(log)?;
        let child = Command::new("ip")
            .args(["netns", "exec", netns, "bird", "-f", "-c"])
            .arg(conf)
            .arg("-s")
            .arg(sock)
            .stdin(Stdio::null())
            .stdout(f.try_clone()?)
            .stderr(f)
            .spawn()
            .context("starting bird (package bird2)")?;
        let mut b = Bird {
            child,
            sock: sock.to_path_buf(),
            log: log.to_path_buf(),
        };
        let start = Instant::now();
        loop {
            if let Some(e) = b.exited() {
                bail!("bird ({}) exited: {e}", conf.display());
            }
            if sock.exists() && b.birdc(&["show", "status"]).is_ok() {
                return Ok(b);
            }
            if start.elapsed() > Duration::from_secs(600) {
                bail!("bird ({}) not answering after 600 s", conf.display());
            }
            sleep_checked(Duration::from_millis(50))?;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Runs `birdc -s SOCK ARGS...`; fails when birdc fails or BIRD
    /// answers with an error.
    pub fn birdc(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new("birdc")
            .arg("-s")
            .arg(&self.sock)
            .args(args)
            .output()
            .context("running birdc")?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() || text.contains("Unable to connect") {
            bail!(
                "birdc {}: {}{}",
                args.join(" "),
                text.trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(text)
    }

    /// `show protocols all`, parsed.
    pub fn protocols(&self) -> anyhow::Result<Vec<ProtoInfo>> {
        Ok(parse_protocols_all(&self.birdc(&[
            "show",
            "protocols",
            "all",
        ])?))
    }

    /// One protocol of `show protocols all NAME`.
    pub fn protocol(&self, name: &str) -> anyhow::Result<ProtoInfo> {
        let text = self.birdc(&["show", "protocols", "all", name])?;
        parse_protocols_all(&text)
            .into_iter()
            .find(|p| p.name == name)
            .with_context(|| format!("no protocol {name} in {text:?}"))
    }

    /// The "Total" effective bytes of `show memory`.
    pub fn memory_total(&self) -> anyhow::Result<u64> {
        let text = self.birdc(&["show", "memory"])?;
        parse_memory_total(&text).with_context(|| format!("no Total in {text:?}"))
    }

    /// Sends `show status` over the control socket every `every` until
    /// the returned [`Waker`] is dropped. BIRD 2.0.12 as a feeder leaves
    /// the tail of an export (the last UPDATE and the End-of-RIB) until its
    /// event loop next wakes, up to 3 s later when nothing else happens
    /// (seen with 10 k and 1 M routes: every receiver then "converges"
    /// 3 s late); a request on the socket wakes the loop. Costs the feeder
    /// a few µs per request.
    pub fn keep_awake(&self, every: Duration) -> anyhow::Result<Waker> {
        let stream = UnixStream::connect(&self.sock)
            .with_context(|| format!("connecting to {}", self.sock.display()))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("bird-waker".into())
            .spawn(move || -> anyhow::Result<u64> {
                let mut w = stream.try_clone()?;
                let mut r = BufReader::new(stream);
                read_reply(&mut r)?; // the greeting
                let mut sent = 0u64;
                while !flag.load(Ordering::Relaxed) {
                    w.write_all(b"show status\n")?;
                    read_reply(&mut r)?;
                    sent += 1;
                    std::thread::sleep(every);
                }
                Ok(sent)
            })?;
        Ok(Waker {
            stop,
            thread: Some(thread),
        })
    }

    /// Some(description) when it has exited.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(st)) => Some(format!(
                "{st}: {}",
                std::fs::read_to_string(&self.log)
                    .unwrap_or_default()
                    .trim()
            )),
            _ => None,
        }
    }

    /// SIGTERM (BIRD withdraws what it exported to the kernel), SIGKILL
    /// after 20 s.
    pub fn stop(&mut self) {
        if self.exited().is_some() {
            return;
        }
        // SAFETY: signals our own unreaped child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Bird {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Reads one reply of BIRD's control protocol: lines `NNNN-text` (more
/// follow) or ` text` (continuation) up to a line `NNNN text` (the last).
fn read_reply(r: &mut impl BufRead) -> anyhow::Result<()> {
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            bail!("BIRD closed the control socket");
        }
        if is_last_reply_line(&line) {
            return Ok(());
        }
    }
}

fn is_last_reply_line(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() > 4 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b' '
}

/// Stops its thread on drop.
pub struct Waker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<anyhow::Result<u64>>>,
}

impl Waker {
    /// Stops it; returns how many requests it sent.
    pub fn stop(mut self) -> anyhow::Result<u64> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            _ => bail!("bird waker panicked"),
        }
    }
}

impl Drop for Waker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One protocol of `show protocols all`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProtoInfo {
    pub name: String,
    /// The State column: up, start, down, ...
    pub state: String,
    /// "BGP state:" of BGP protocols (Established, Active, ...).
    pub bgp_state: Option<String>,
    /// "Routes: N imported, M exported" of its (first) channel.
    pub imported: u64,
    pub exported: u64,
}

impl ProtoInfo {
    pub fn established(&self) -> bool {
        self.bgp_state.as_deref() == Some("Established")
    }
}

/// Parses `show protocols all` (as birdc prints it when not on a
/// terminal: the banner, a header, then per protocol an unindented summary
/// line and indented details).
pub fn parse_protocols_all(text: &str) -> Vec<ProtoInfo> {
    let mut out: Vec<ProtoInfo> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() || line.starts_with("BIRD ") || line.starts_with("Name ") {
            continue;
        }
        if !line.starts_with(char::is_whitespace) {
            let f: Vec<&str> = line.split_whitespace().collect();
            out.push(ProtoInfo {
                name: f.first().copied().unwrap_or_default().to_string(),
                state: f.get(3).copied().unwrap_or_default().to_string(),
                ..ProtoInfo::default()
            });
            continue;
        }
        let Some(cur) = out.last_mut() else { continue };
        let l = line.trim();
        if let Some(st) = l.strip_prefix("BGP state:") {
            cur.bgp_state = Some(st.trim().to_string());
        } else if let Some(r) = l.strip_prefix("Routes:") {
            let count = |what: &str| {
                r.split(',')
                    .map(str::trim)
                    .find(|p| p.ends_with(what))
                    .and_then(|p| p.split_whitespace().next()?.parse().ok())
                    .unwrap_or(0)
            };
            cur.imported = count("imported");
            cur.exported = count("exported");
        }
    }
    out
}

/// The "Total:" line's first (effective) figure of `show memory`, in bytes.
pub fn parse_memory_total(text: &str) -> Option<u64> {
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("Total:"))?;
    let mut f = line.split_whitespace().skip(1);
    let value: f64 = f.next()?.parse().ok()?;
    let scale = match f.next()? {
        "B" => 1.0,
        "kB" => 1024.0,
        "MB" => 1024.0 * 1024.0,
        "GB" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some((value * scale).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from BIRD 2.0.12 (birdc not on a terminal).
    const PROTOCOLS: &str = "BIRD 2.0.12 ready.
Name       Proto      Table      State  Since         Info
device1    Device     ---        up     05:18:28.390  
kern       Kernel     master4    up     05:18:28.390  
  Channel ipv4
    State:          UP
    Table:          master4
    Preference:     10
    Input filter:   REJECT
    Output filter:  ACCEPT
    Routes:         0 imported, 999 exported, 0 preferred
feeder     BGP        ---        up     05:18:28.392  Established   
  BGP state:          Established
    Neighbor address: 10.0.2.1
    Neighbor AS:      65001
    Session:          external AS4
    Hold timer:       226.400/240
  Channel ipv4
    State:          UP
    Table:          master4
    Preference:     100
    Input filter:   ACCEPT
    Output filter:  REJECT
    Routes:         1000 imported, 0 exported, 1000 preferred
    Route change stats:     received   rejected   filtered    ignored   accepted
      Import updates:           1000          0          0          0       1000
      Import withdraws:            0          0        ---          0          0
    BGP Next hop:   10.0.2.2

";

    #[test]
    fn parses_protocols_all() {
        let p = parse_protocols_all(PROTOCOLS);
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].name, "device1");
        assert_eq!(p[0].bgp_state, None);
        assert_eq!(p[1].name, "kern");
        assert_eq!((p[1].imported, p[1].exported), (0, 999));
        assert!(!p[1].established());
        assert_eq!(p[2].name, "feeder");
        assert_eq!(p[2].state, "up");
        assert!(p[2].established());
        assert_eq!((p[2].imported, p[2].exported), (1000, 0));
    }

    #[test]
    fn parses_a_session_not_yet_up() {
        let text = "BIRD 2.0.12 ready.
Name       Proto      Table      State  Since         Info
feeder     BGP        ---        start  05:18:27.100  Active        Socket: Connection refused
  BGP state:          Active
    Neighbor address: 10.0.2.1
    Connect delay:    0.612/1
    Last error:       Socket: Connection refused
  Channel ipv4
    State:          DOWN
";
        let p = parse_protocols_all(text);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].state, "start");
        assert_eq!(p[0].bgp_state.as_deref(), Some("Active"));
        assert!(!p[0].established());
        assert_eq!(p[0].imported, 0);
        assert!(parse_protocols_all("BIRD 2.0.12 ready.\n").is_empty());
    }

    #[test]
    fn reads_control_socket_replies() {
        let text = "0001 BIRD 2.0.12 ready.\n1000-BIRD 2.0.12\n1011-Router ID is 10.0.0.1\n Hostname is x\n0013 Daemon is up and running\nnext";
        let mut r = std::io::Cursor::new(text.as_bytes());
        read_reply(&mut r).unwrap();
        read_reply(&mut r).unwrap();
        let mut rest = String::new();
        r.read_line(&mut rest).unwrap();
        assert_eq!(rest, "next");
        assert!(read_reply(&mut std::io::Cursor::new(b"1000-partial\n")).is_err());
        assert!(!is_last_reply_line("1000-BIRD"));
        assert!(!is_last_reply_line(" 0013 x"));
        assert!(is_last_reply_line("0013 Daemon is up"));
    }

    #[test]
    fn parses_memory_totals() {
        let text = "BIRD 2.0.12 ready.
BIRD memory usage
                  Effective    Overhead
Routing tables:    105.2 kB   3472.0  B
Total:             143.6 kB     80.0 kB
";
        assert_eq!(parse_memory_total(text), Some(147_046));
        let big = "Total:             212.3 MB      4.1 MB\n";
        assert_eq!(parse_memory_total(big), Some(222_612_685));
        assert_eq!(parse_memory_total("Total: 3 parsecs"), None);
        assert_eq!(parse_memory_total("nothing"), None);
    }
}
