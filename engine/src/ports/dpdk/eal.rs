//! DPDK's EAL: its argv built from `[dpdk]`, initialised once per process,
//! and its failures turned into errors that name the config key to change.

use std::ffi::CString;
use std::os::raw::c_char;
use std::sync::OnceLock;

use patronus_dpdk_sys as sys;

use crate::config::DpdkSection;

/// Memory EAL reserves with `no_huge` when `memory_mb` is not set (MiB).
const NO_HUGE_DEFAULT_MEMORY_MB: u32 = 512;

/// The EAL argv (argv[0] included) for a `[dpdk]` section.
pub fn eal_args(d: &DpdkSection, pid: u32) -> Vec<String> {
    let mut a = vec![
        "patronus-engine".to_string(),
        "-l".into(),
        d.lcores.clone().unwrap_or_else(|| "0".into()),
        format!(
            "--file-prefix={}",
            d.file_prefix
                .clone()
                .unwrap_or_else(|| format!("patronus-{pid}"))
        ),
        // EAL's start-up chatter is INFO; errors and warnings still show.
        "--log-level=warning".into(),
    ];
    if d.no_huge {
        a.extend(["--no-huge".into(), "--no-shconf".into()]);
    }
    if let Some(m) = d
        .memory_mb
        .or(d.no_huge.then_some(NO_HUGE_DEFAULT_MEMORY_MB))
    {
        a.extend(["-m".into(), m.to_string()]);
    }
    if d.pci_allow.is_empty() {
        a.push("--no-pci".into());
    }
    for p in &d.pci_allow {
        a.extend(["-a".into(), p.clone()]);
    }
    for v in &d.vdevs {
        a.push(format!("--vdev={v}"));
    }
    a.extend(d.extra_args.iter().cloned());
    a
}

/// Turns `rte_eal_init`'s `rte_errno` into a message naming the key to change.
pub fn explain_eal_error(errno: i32, d: &DpdkSection, args: &[String]) -> String {
    let why = match errno {
        libc::EACCES if !d.no_huge => {
            "dpdk.no_huge: EAL found no usable hugepages (reserve and mount them, \
             e.g. echo 512 > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages, \
             or set no_huge = true), or lacks the permission (run as root)"
                .to_string()
        }
        libc::EACCES => "dpdk: EAL was refused a resource it needs (run as root)".to_string(),
        libc::ENODEV => "dpdk.vdevs/dpdk.pci_allow: EAL could not parse a device: unknown \
                         driver name, or its PMD is not installed (Debian: librte-net-* \
                         packages)"
            .to_string(),
        libc::EINVAL => {
            "dpdk.lcores/dpdk.extra_args: EAL rejected its arguments (its usage text above \
             says why)"
                .to_string()
        }
        libc::ENOMEM => format!(
            "dpdk.memory_mb: EAL could not reserve memory ({})",
            if d.no_huge {
                "anonymous memory with no_huge"
            } else {
                "hugepages"
            }
        ),
        libc::EALREADY => "dpdk: EAL is already initialised in this process".to_string(),
        e => format!(
            "dpdk: rte_eal_init failed: {}",
            std::io::Error::from_raw_os_error(e)
        ),
    };
    format!("{why} [EAL arguments: {}]", args[1..].join(" "))
}

/// EAL's outcome for this process: initialised once, by the first caller.
static EAL: OnceLock<Result<(), String>> = OnceLock::new();

/// Initialises EAL from `d` unless it already is (a later call with other
/// settings keeps the first ones: EAL cannot be restarted in a process).
pub fn ensure_init(d: &DpdkSection) -> Result<(), String> {
    EAL.get_or_init(|| init(d)).clone()
}

fn init(d: &DpdkSection) -> Result<(), String> {
    let args = eal_args(d, std::process::id());
    let cargs: Vec<CString> = args
        .iter()
        .map(|a| {
            CString::new(a.as_str())
                .map_err(|_| format!("dpdk: EAL argument {a:?} holds a NUL byte"))
        })
        .collect::<Result<_, _>>()?;
    let mut argv: Vec<*mut c_char> = cargs.iter().map(|c| c.as_ptr() as *mut c_char).collect();
    // EAL pins the calling thread to its main lcore; the engine's main thread
    // (and the threads it spawns later) must keep the cores they had.
    let affinity = current_affinity();
    // SAFETY: argv holds `argc` pointers to NUL-terminated strings; EAL may
    // keep pointers into them, so `cargs` is leaked below (once per process).
    let ret = unsafe { sys::rte_eal_init(argv.len() as i32, argv.as_mut_ptr()) };
    // SAFETY: reads this thread's rte_errno right after the failing call.
    let errno = unsafe { sys::patronus_errno() };
    if let Some(set) = affinity {
        // SAFETY: `set` is a valid cpu_set_t read from this thread.
        unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    }
    std::mem::forget(cargs);
    if ret < 0 {
        // Only our own per-process prefix: a configured one may belong to a
        // running primary that refused us.
        if d.file_prefix.is_none() {
            remove_runtime_dir();
        }
        return Err(explain_eal_error(errno, d, &args));
    }
    Ok(())
}

/// Removes EAL's runtime directory (its per-process `--file-prefix` names
/// it) after a failed start, which leaves it behind.
fn remove_runtime_dir() {
    // SAFETY: returns EAL's static buffer (empty until EAL set it).
    let dir = unsafe { std::ffi::CStr::from_ptr(sys::rte_eal_get_runtime_dir()) }
        .to_string_lossy()
        .into_owned();
    if !dir.is_empty() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

fn current_affinity() -> Option<libc::cpu_set_t> {
    // SAFETY: cpu_set_t is plain data; zeroed is a valid (empty) set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid out-buffer of the size passed.
    let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    (r == 0).then_some(set)
}

/// Registers the calling (worker) thread with EAL so it gets an lcore id and
/// with it the mempools' per-lcore caches; harmless when already registered
/// or out of lcore ids (the pools then work without a cache).
pub fn register_thread() {
    // SAFETY: EAL is initialised before any port is opened.
    if unsafe { sys::patronus_lcore_id() } == sys::LCORE_ID_ANY {
        // SAFETY: as above; registration only touches EAL's lcore table.
        unsafe { sys::rte_thread_register() };
    }
}
