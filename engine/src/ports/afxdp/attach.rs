//! The XDP program of one interface, shared by every queue of the port.
//!
//! The first queue to open loads the program and its XSKMAP and attaches it
//! as a BPF link; the others reuse it (a process-wide registry, touched only
//! when ports open). The link is a file descriptor: the program is detached
//! when the last queue closes, and also when the process dies, however it
//! dies — a crashed engine leaves no program behind. A program that someone
//! attached the old way (netlink: `ip link set … xdp`, xdp-loader, another
//! tool) blocks the attach with a clear error instead of being replaced.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex, Weak};

use super::bpf;
use super::program::{self, KernelShare};
use crate::config::XdpAttachMode;

/// A loaded and attached program with its socket map.
#[derive(Debug)]
pub struct Attachment {
    /// Queue index -> AF_XDP socket.
    pub map: OwnedFd,
    /// Attached in native (driver) mode, else generic.
    pub native: bool,
    /// Detaches the program when closed (declared before the program).
    _link: OwnedFd,
    _prog: OwnedFd,
}

/// Interface indexes are per network namespace: the key is the calling
/// thread's namespace (device and inode of its nsfs file) and the index.
type Key = (u64, u64, i32);

static REGISTRY: Mutex<Vec<(Key, Weak<Attachment>)>> = Mutex::new(Vec::new());

fn key(ifindex: i32) -> io::Result<Key> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata("/proc/thread-self/ns/net")
        .map_err(|e| io::Error::new(e.kind(), format!("/proc/thread-self/ns/net: {e}")))?;
    Ok((m.dev(), m.ino(), ifindex))
}

/// What to do with frames of a queue without a socket: the kernel's stack
/// gets them (as with libxdp's default program), so a management protocol
/// still works on queues the engine does not poll.
const NO_SOCKET_VERDICT: u32 = program::XDP_PASS;

/// The attachment on `ifindex`, creating it if this is the first queue.
pub fn attach(
    iface: &str,
    ifindex: i32,
    entries: u32,
    mode: XdpAttachMode,
    share: &KernelShare,
) -> io::Result<Arc<Attachment>> {
    let key = key(ifindex)?;
    let mut reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    reg.retain(|(_, w)| w.strong_count() > 0);
    if let Some(a) = reg
        .iter()
        .filter(|(k, _)| *k == key)
        .find_map(|(_, w)| w.upgrade())
    {
        return Ok(a);
    }
    let map = bpf::xskmap_create("patronus_xsks", entries)
        .map_err(|e| io::Error::new(e.kind(), format!("creating the XSKMAP: {e}")))?;
    let insns = program::assemble(map.as_raw_fd(), share, NO_SOCKET_VERDICT);
    let prog = bpf::prog_load_xdp("patronus_xdp", &insns)?;
    let link = |flags: u32| bpf::xdp_link_create(&prog, ifindex, flags);
    let (link, native) = match mode {
        XdpAttachMode::Native => (link(bpf::XDP_FLAGS_DRV_MODE), true),
        XdpAttachMode::Generic => (link(bpf::XDP_FLAGS_SKB_MODE), false),
        XdpAttachMode::Auto => match link(bpf::XDP_FLAGS_DRV_MODE) {
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EOPNOTSUPP) | Some(libc::EINVAL)
                ) =>
            {
                (link(bpf::XDP_FLAGS_SKB_MODE), false)
            }
            r => (r, true),
        },
    };
    let link = link.map_err(|e| explain_attach_error(iface, native, e))?;
    let a = Arc::new(Attachment {
        map,
        native,
        _link: link,
        _prog: prog,
    });
    reg.push((key, Arc::downgrade(&a)));
    Ok(a)
}

fn explain_attach_error(iface: &str, native: bool, e: io::Error) -> io::Error {
    let mode = if native { "native" } else { "generic" };
    let msg = match e.raw_os_error() {
        Some(libc::EBUSY) | Some(libc::EEXIST) => format!(
            "attaching the XDP program ({mode} mode): {e}: {iface} already has an XDP program \
             (another engine, or one attached through netlink by `ip link`/xdp-loader or a \
             crashed tool); see `ip link show dev {iface}` and remove it with \
             `ip link set dev {iface} xdp off` (or `xdpgeneric off`)"
        ),
        Some(libc::EOPNOTSUPP) => format!(
            "attaching the XDP program ({mode} mode): {e}: the driver of {iface} has no \
             native XDP; use [port.afxdp] xdp_mode = \"generic\" or \"auto\""
        ),
        _ => format!("attaching the XDP program to {iface} ({mode} mode): {e}"),
    };
    io::Error::new(e.kind(), msg)
}
