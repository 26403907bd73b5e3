//! The punt path ("linux-cp"): for each engine port a kernel TAP device
//! with the port's MAC and MTU and the addresses of the port's interfaces
//! (VLAN interfaces as 802.1Q sub-interfaces of the TAP). Packets to the
//! engine's own addresses that the engine does not consume (TCP, UDP other
//! than WireGuard, ICMP other than echo requests, other protocols) are
//! written to the port's TAP as received, ARP frames are copied there so
//! the kernel learns its neighbours (IPv6: neighbor solicitations and
//! advertisements to us; IPv6 addresses are added `nodad`), and frames the kernel sends on a TAP
//! leave through its port unchanged. sshd, BIRD or any tool on the box then
//! works on the engine's addresses. Punting is rate-limited per worker
//! (token bucket) and counted.
//!
//! The TAPs are created by the engine at start ([`open_taps`]), configured
//! once the ports' MACs are known ([`configure`], with `ip` from iproute2),
//! written by any worker (a `write(2)` per frame is atomic) and read by
//! worker 0 only. They vanish when the engine exits.

pub mod tap;

use std::io;
use std::process::Command;

pub use tap::Tap;

use crate::config::{EngineConfig, InterfaceConfig};
use crate::ports::LinkInfo;

/// The TAPs of the engine's ports (None for a port without one).
#[derive(Debug, Default)]
pub struct PuntTaps {
    pub by_port: Vec<Option<Tap>>,
    /// Set once the TAPs are configured and up: before that the kernel
    /// refuses frames, so workers treat the punt path as off.
    pub ready: std::sync::atomic::AtomicBool,
}

impl PuntTaps {
    /// TAPs that take frames now (tests: a pair of sockets).
    pub fn ready(by_port: Vec<Option<Tap>>) -> PuntTaps {
        PuntTaps {
            by_port,
            ready: std::sync::atomic::AtomicBool::new(true),
        }
    }

    #[inline]
    pub fn is_ready(&self) -> bool {
        self.ready.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The TAP of port `port`.
    #[inline]
    pub fn get(&self, port: u16) -> Option<&Tap> {
        self.by_port.get(usize::from(port)).and_then(Option::as_ref)
    }
}

/// The TAP name of a port.
pub fn tap_name(prefix: &str, port: &str) -> String {
    format!("{prefix}{port}")
}

/// Creates one TAP per port (down, no address yet).
pub fn open_taps(cfg: &EngineConfig) -> io::Result<PuntTaps> {
    let Some(p) = &cfg.punt else {
        return Ok(PuntTaps::default());
    };
    let by_port = cfg
        .ports
        .iter()
        .map(|port| {
            let name = tap_name(&p.tap_prefix, &port.name);
            Tap::open(&name)
                .map(Some)
                .map_err(|e| io::Error::new(e.kind(), format!("TAP {name}: {e}")))
        })
        .collect::<io::Result<Vec<_>>>()?;
    Ok(PuntTaps {
        by_port,
        ready: Default::default(),
    })
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if !out.status.success() {
        return Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

/// Gives each TAP its port's MAC and MTU, the addresses of the port's
/// interfaces (a VLAN sub-interface `TAP.VID` for tagged ones), and brings
/// them up.
pub fn configure(
    cfg: &EngineConfig,
    taps: &PuntTaps,
    links: &[LinkInfo],
    interfaces: &[InterfaceConfig],
) -> Result<(), String> {
    for (i, _) in cfg.ports.iter().enumerate() {
        let (Some(tap), Some(link)) = (taps.by_port.get(i).and_then(Option::as_ref), links.get(i))
        else {
            continue;
        };
        let name = tap.name();
        let mac = link
            .mac
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":");
        let mtu = link.mtu.to_string();
        ip(&["link", "set", "dev", name, "address", &mac, "mtu", &mtu])?;
        if cfg.ipv6.enabled() {
            ipv6_sysctls(name);
        }
        // The engine answers IPv4 ARP and IPv6 ND for these addresses itself.
        ip(&["link", "set", "dev", name, "up"])?;
    }
    set_addresses(cfg, taps, interfaces)?;
    taps.ready.store(true, std::sync::atomic::Ordering::Release);
    Ok(())
}

/// Makes the TAPs' addresses (and VLAN sub-interfaces) those of
/// `interfaces`: at start, and again whenever the interfaces change (the
/// control process pushed others). Existing IPv4 addresses and
/// sub-interfaces are removed first.
pub fn set_addresses(
    cfg: &EngineConfig,
    taps: &PuntTaps,
    interfaces: &[InterfaceConfig],
) -> Result<(), String> {
    for (i, port) in cfg.ports.iter().enumerate() {
        let Some(tap) = taps.by_port.get(i).and_then(Option::as_ref) else {
            continue;
        };
        let name = tap.name();
        remove_vlans(name)?;
        ip(&["-4", "addr", "flush", "dev", name])?;
        if cfg.ipv6.enabled() {
            ip(&["-6", "addr", "flush", "dev", name, "scope", "global"])?;
        }
        // (VLAN, address) of the port's IPv4 and IPv6 interfaces.
        let mut addrs: Vec<(u16, String, bool)> = interfaces
            .iter()
            .filter(|f| f.port == port.name)
            .map(|f| (f.vlan.unwrap_or(0), f.address.clone(), false))
            .collect();
        addrs.extend(
            cfg.ipv6
                .interfaces
                .iter()
                .filter(|f| f.port == port.name)
                .map(|f| {
                    (
                        f.vlan.unwrap_or(0),
                        format!("{}/{}", f.address, f.prefix_len),
                        true,
                    )
                }),
        );
        let mut made: Vec<u16> = Vec::new();
        for (vlan, address, v6) in addrs {
            let dev = if vlan != 0 {
                let sub = format!("{name}.{vlan}");
                if !made.contains(&vlan) {
                    let vid = vlan.to_string();
                    ip(&[
                        "link", "add", "link", name, "name", &sub, "type", "vlan", "id", &vid,
                    ])?;
                    if cfg.ipv6.enabled() {
                        ipv6_sysctls(&sub);
                    }
                    ip(&["link", "set", "dev", &sub, "up"])?;
                    made.push(vlan);
                }
                sub
            } else {
                name.to_string()
            };
            if v6 {
                // The engine answers ND for it: no duplicate detection.
                ip(&["-6", "addr", "add", &address, "dev", &dev, "nodad"])?;
            } else {
                ip(&["addr", "add", &address, "dev", &dev])?;
            }
        }
    }
    Ok(())
}

/// IPv6 on a TAP (or its VLAN sub-interface): enabled even when the
/// namespace disables it by default, no duplicate address detection (the
/// engine holds the same addresses), no autoconfiguration from router
/// advertisements. Best effort: a missing knob only costs a DAD delay.
fn ipv6_sysctls(dev: &str) {
    for (k, v) in [
        ("disable_ipv6", "0"),
        ("accept_dad", "0"),
        ("accept_ra", "0"),
    ] {
        let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{dev}/{k}"), v);
    }
}

/// Deletes the VLAN sub-interfaces `TAP.VID` of `tap`.
fn remove_vlans(tap: &str) -> Result<(), String> {
    let out = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .map_err(|e| format!("ip -o link show: {e}"))?;
    let prefix = format!("{tap}.");
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        // "7: lcp-lan0.100@lcp-lan0: <...>"
        let Some(dev) = line.split(": ").nth(1) else {
            continue;
        };
        let dev = dev.split('@').next().unwrap_or(dev);
        if dev.starts_with(&prefix) {
            ip(&["link", "del", "dev", dev])?;
        }
    }
    Ok(())
}
