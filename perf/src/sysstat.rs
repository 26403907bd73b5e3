//! CPU and interface counters read from /proc: per-core time from
//! /proc/stat, a process's CPU time from /proc/PID/stat, and an interface's
//! packet counters inside a network namespace.

use anyhow::{bail, Context};

/// Clock ticks per second of /proc/stat and /proc/PID/stat (USER_HZ).
pub fn ticks_per_sec() -> f64 {
    // SAFETY: sysconf only reads a system constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        hz as f64
    } else {
        100.0
    }
}

/// One core's (or the total's) time split, in ticks.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CpuTimes {
    /// user + nice
    pub user: u64,
    pub system: u64,
    /// irq + softirq
    pub irq: u64,
    /// idle + iowait
    pub idle: u64,
    pub steal: u64,
}

impl CpuTimes {
    /// Everything but idle and steal.
    pub fn busy(&self) -> u64 {
        self.user + self.system + self.irq
    }
    pub fn delta(&self, earlier: &CpuTimes) -> CpuTimes {
        CpuTimes {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
            irq: self.irq.saturating_sub(earlier.irq),
            idle: self.idle.saturating_sub(earlier.idle),
            steal: self.steal.saturating_sub(earlier.steal),
        }
    }
}

/// The "cpu" line (all cores) and each "cpuN" line of /proc/stat.
#[derive(Clone, Debug, Default)]
pub struct ProcStat {
    pub total: CpuTimes,
    pub cores: Vec<CpuTimes>,
}

impl ProcStat {
    pub fn read() -> anyhow::Result<ProcStat> {
        let text = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
        parse_proc_stat(&text)
    }

    pub fn delta(&self, earlier: &ProcStat) -> ProcStat {
        ProcStat {
            total: self.total.delta(&earlier.total),
            cores: self
                .cores
                .iter()
                .zip(&earlier.cores)
                .map(|(a, b)| a.delta(b))
                .collect(),
        }
    }
}

fn parse_proc_stat(text: &str) -> anyhow::Result<ProcStat> {
    let mut out = ProcStat::default();
    for line in text.lines().filter(|l| l.starts_with("cpu")) {
        let mut fields = line.split_whitespace();
        let name = fields.next().unwrap_or_default();
        let v: Vec<u64> = fields.map(|f| f.parse().unwrap_or(0)).collect();
        if v.len() < 8 {
            bail!("/proc/stat: short line {line:?}");
        }
        let t = CpuTimes {
            user: v[0] + v[1],
            system: v[2],
            idle: v[3] + v[4],
            irq: v[5] + v[6],
            steal: v[7],
        };
        if name == "cpu" {
            out.total = t;
        } else {
            out.cores.push(t);
        }
    }
    Ok(out)
}

/// Nanoseconds on CPU of one task (first field of `schedstat`). Without
/// IRQ_TIME_ACCOUNTING this includes the softirq work that ran in the
/// task's context (e.g. the kernel forwarding a frame the task sent over veth).
fn schedstat_ns(path: &str) -> anyhow::Result<u64> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    text.split_whitespace()
        .next()
        .and_then(|f| f.parse().ok())
        .with_context(|| format!("parsing {path}"))
}

/// CPU nanoseconds of one thread of this process.
pub fn thread_cpu_ns(tid: i32) -> anyhow::Result<u64> {
    schedstat_ns(&format!("/proc/self/task/{tid}/schedstat"))
}

/// CPU nanoseconds of a process, summed over its live threads.
pub fn process_cpu_ns(pid: u32) -> anyhow::Result<u64> {
    let dir = format!("/proc/{pid}/task");
    let mut total = 0;
    for e in std::fs::read_dir(&dir).with_context(|| format!("reading {dir}"))? {
        let name = e?.file_name();
        // A thread may exit between listing and reading.
        total += schedstat_ns(&format!("{dir}/{}/schedstat", name.to_string_lossy())).unwrap_or(0);
    }
    Ok(total)
}

/// CPU nanoseconds of the `ksoftirqd/N` threads (softirq work deferred out
/// of the sender's context lands there): all of them, or core N's.
pub fn ksoftirqd_ns(core: Option<usize>) -> u64 {
    let want = core.map(|c| format!("ksoftirqd/{c}\n"));
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| match &want {
                Some(w) => c == *w,
                None => c.starts_with("ksoftirqd/"),
            })
        })
        .filter_map(|pid| schedstat_ns(&format!("/proc/{pid}/schedstat")).ok())
        .sum()
}

/// Sets the nice value of this process's scheduler autogroup (with
/// `kernel.sched_autogroup_enabled`, sessions share the CPU as groups, so a
/// thread's own nice only matters inside its group). Restores the old value
/// on drop. Children spawned meanwhile (the engine) share the group.
#[derive(Debug)]
pub struct AutogroupNice {
    old: Option<i32>,
}

impl AutogroupNice {
    pub fn set(nice: i32) -> AutogroupNice {
        let path = "/proc/self/autogroup";
        // "/autogroup-10 nice 0"
        let old = std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.split_whitespace().last()?.parse::<i32>().ok());
        if old.is_some() && nice != 0 {
            if let Err(e) = std::fs::write(path, nice.to_string()) {
                eprintln!("warning: cannot set autogroup nice {nice}: {e}");
                return AutogroupNice { old: None };
            }
            return AutogroupNice { old };
        }
        AutogroupNice { old: None }
    }
}

impl Drop for AutogroupNice {
    fn drop(&mut self) {
        if let Some(old) = self.old {
            let _ = std::fs::write("/proc/self/autogroup", old.to_string());
        }
    }
}

/// Receive/transmit counters of one interface.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IfCounters {
    pub rx_packets: u64,
    pub rx_dropped: u64,
    pub tx_packets: u64,
    pub tx_dropped: u64,
}

/// Reads `iface`'s counters from /proc/net/dev as seen from network
/// namespace `netns` (a short-lived thread enters it; procfs answers with the
/// reading thread's namespace).
pub fn if_counters(netns: &str, iface: &str) -> anyhow::Result<IfCounters> {
    let netns = netns.to_string();
    let iface = iface.to_string();
    std::thread::spawn(move || -> anyhow::Result<IfCounters> {
        crate::netns::enter(&netns)?;
        let text = std::fs::read_to_string("/proc/thread-self/net/dev")
            .context("reading /proc/thread-self/net/dev")?;
        parse_net_dev(&text, &iface)
            .with_context(|| format!("interface {iface} not found in namespace {netns}"))
    })
    .join()
    .map_err(|_| anyhow::anyhow!("counter thread panicked"))?
}

fn parse_net_dev(text: &str, iface: &str) -> Option<IfCounters> {
    for line in text.lines().skip(2) {
        let (name, rest) = line.split_once(':')?;
        if name.trim() != iface {
            continue;
        }
        let v: Vec<u64> = rest
            .split_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect();
        if v.len() < 12 {
            return None;
        }
        return Some(IfCounters {
            rx_packets: v[1],
            rx_dropped: v[3],
            tx_packets: v[9],
            tx_dropped: v[11],
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_lines() {
        let s = "cpu  10 1 20 300 4 5 6 7 0 0\ncpu0 5 0 10 150 2 2 3 3 0 0\ncpu1 5 1 10 150 2 3 3 4 0 0\nintr 1\n";
        let p = parse_proc_stat(s).unwrap();
        assert_eq!(p.cores.len(), 2);
        assert_eq!(p.total.user, 11);
        assert_eq!(p.total.irq, 11);
        assert_eq!(p.total.idle, 304);
        assert_eq!(p.total.busy(), 11 + 20 + 11);
        assert_eq!(p.cores[1].steal, 4);
        let d = p.delta(
            &parse_proc_stat("cpu 1 0 2 3 0 0 0 0\ncpu0 0 0 0 0 0 0 0 0\ncpu1 0 0 0 0 0 0 0 0\n")
                .unwrap(),
        );
        assert_eq!(d.total.system, 18);
    }

    #[test]
    fn own_cpu_time_grows() {
        // Only this thread's time is sure to grow: other test threads of
        // this process may exit meanwhile and drop out of the process sum.
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() };
        let a = thread_cpu_ns(tid).unwrap();
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        let b = thread_cpu_ns(tid).unwrap();
        assert!(b > a, "{a} -> {b} ({x})");
        // The process sum includes this live thread.
        let p = process_cpu_ns(std::process::id()).unwrap();
        assert!(p >= b, "process {p} < thread {b}");
    }

    #[test]
    fn net_dev_line() {
        let s = "Inter-|   Receive |  Transmit\n face |bytes packets errs drop fifo frame compressed multicast|bytes packets errs drop fifo colls carrier compressed\n    lo: 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n  pp1s0: 640 10 0 2 0 0 0 0 128 2 0 1 0 0 0 0\n";
        let c = parse_net_dev(s, "pp1s0").unwrap();
        assert_eq!(
            c,
            IfCounters {
                rx_packets: 10,
                rx_dropped: 2,
                tx_packets: 2,
                tx_dropped: 1
            }
        );
        assert!(parse_net_dev(s, "eth0").is_none());
    }
}
