//! Keeps the kernel's own stack off an interface the engine owns: a tc
//! `clsact` ingress filter drops every frame right after the packet sockets
//! (the engine's ring) have seen it, so the kernel spends nothing routing or
//! rejecting traffic that is the engine's. Queue 0 installs it and removes
//! it when it closes.

use std::io;
use std::process::Command;

/// Removes the filter on drop.
#[derive(Debug)]
pub struct KernelIngressDrop {
    iface: String,
}

fn tc(args: &[&str]) -> io::Result<()> {
    let out = Command::new("tc")
        .args(args)
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot run tc (iproute2): {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "tc {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

impl KernelIngressDrop {
    /// Installs (or re-installs) the filter on `iface`.
    pub fn install(iface: &str) -> io::Result<Self> {
        tc(&["qdisc", "replace", "dev", iface, "clsact"])?;
        // A one-instruction classic BPF program in direct-action mode that
        // returns TC_ACT_SHOT (2): it needs only cls_bpf, which kernels that
        // lack matchall or gact still have.
        tc(&[
            "filter",
            "replace",
            "dev",
            iface,
            "ingress",
            "pref",
            "1",
            "handle",
            "1",
            "bpf",
            "da",
            "bytecode",
            "1,6 0 0 2",
        ])?;
        Ok(KernelIngressDrop {
            iface: iface.to_string(),
        })
    }
}

impl Drop for KernelIngressDrop {
    fn drop(&mut self) {
        // Best effort: the interface may be gone already.
        let _ = tc(&["qdisc", "del", "dev", &self.iface, "clsact"]);
    }
}
