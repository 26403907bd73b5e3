//! `[dpdk]`: how the engine initialises DPDK's EAL for ports with
//! `driver = "dpdk"`, and the validation of those ports' keys.

use serde::Deserialize;

use super::{invalid, ConfigError, EngineConfig, PortDriver};

/// `[dpdk]`: EAL arguments, built into an argv by the `dpdk` port driver.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DpdkSection {
    /// EAL lcore list (`-l`), e.g. "0" or "0-1"; default "0". Only EAL's
    /// main lcore runs on it: workers are the engine's own pinned threads,
    /// registered with EAL as non-EAL lcores.
    pub lcores: Option<String>,
    /// Virtual devices (`--vdev`), e.g. "net_null0",
    /// "net_af_packet0,iface=veth1", "net_ring0".
    #[serde(default)]
    pub vdevs: Vec<String>,
    /// PCI devices to probe (`-a`), e.g. "0000:03:00.0"; empty = `--no-pci`.
    #[serde(default)]
    pub pci_allow: Vec<String>,
    /// Memory to reserve in MiB (`-m`); default: EAL's (all hugepages), or
    /// 512 with `no_huge`.
    pub memory_mb: Option<u32>,
    /// Run without hugepages (`--no-huge --no-shconf`): for laptops, CI and
    /// virtual devices; slower, and no multi-process.
    #[serde(default)]
    pub no_huge: bool,
    /// EAL `--file-prefix` (hugepage files, runtime dir); default
    /// "patronus-PID" so two engines never share them.
    pub file_prefix: Option<String>,
    /// Further EAL arguments, passed last and verbatim.
    #[serde(default)]
    pub extra_args: Vec<String>,
}

impl DpdkSection {
    /// The name DPDK gives a vdev: its argument up to the first comma.
    pub fn vdev_names(&self) -> impl Iterator<Item = &str> {
        self.vdevs
            .iter()
            .map(|v| v.split(',').next().unwrap_or_default())
    }
}

/// Checks the `dpdk` ports' keys and the `[dpdk]` section.
pub(super) fn validate(cfg: &EngineConfig) -> Result<(), ConfigError> {
    let default = DpdkSection::default();
    let d = cfg.dpdk.as_ref().unwrap_or(&default);
    for (i, p) in cfg.ports.iter().enumerate() {
        let key = |k: &str| format!("port[{i}].{k}");
        if p.driver != PortDriver::Dpdk {
            if p.device.is_some() {
                return Err(invalid(key("device"), "only valid with driver = \"dpdk\""));
            }
            continue;
        }
        if !cfg!(feature = "dpdk") {
            return Err(invalid(
                key("driver"),
                "this patronus-engine was built without DPDK support (cargo feature `dpdk`)",
            ));
        }
        let Some(dev) = &p.device else {
            return Err(invalid(key("device"), "required with driver = \"dpdk\""));
        };
        if !d.vdev_names().any(|n| n == dev) && !d.pci_allow.iter().any(|a| a == dev) {
            return Err(invalid(
                key("device"),
                format!(
                    "{dev:?} is neither a vdev in dpdk.vdevs nor a PCI address in dpdk.pci_allow"
                ),
            ));
        }
        if cfg.ports[..i]
            .iter()
            .any(|q| q.driver == PortDriver::Dpdk && q.device.as_deref() == Some(dev))
        {
            return Err(invalid(
                key("device"),
                format!("{dev:?} is used by another port"),
            ));
        }
        for (k, set) in [
            ("iface", p.iface.is_some()),
            ("kernel_ingress", p.kernel_ingress.is_some()),
            ("ring_block_size", p.ring_block_size.is_some()),
            ("ring_blocks", p.ring_blocks.is_some()),
            ("input", p.input.is_some()),
            ("output", p.output.is_some()),
            ("generator", p.generator.is_some()),
        ] {
            if set {
                return Err(invalid(key(k), "not valid with driver = \"dpdk\""));
            }
        }
    }
    if let Some(l) = &d.lcores {
        if l.is_empty() || !l.chars().all(|c| c.is_ascii_digit() || ",-@()".contains(c)) {
            return Err(invalid(
                "dpdk.lcores",
                format!("{l:?} is not an EAL core list like \"0\" or \"0-1\""),
            ));
        }
    }
    if let Some(v) = d.vdevs.iter().find(|v| v.is_empty() || v.starts_with(',')) {
        return Err(invalid(
            "dpdk.vdevs",
            format!("{v:?} does not start with a device name"),
        ));
    }
    if d.memory_mb == Some(0) {
        return Err(invalid("dpdk.memory_mb", "must be positive"));
    }
    if let Some(p) = &d.file_prefix {
        if p.is_empty() || p.contains('/') {
            return Err(invalid(
                "dpdk.file_prefix",
                "must be a non-empty name without '/'",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::EngineConfig;

    const PORT: &str = "[[port]]\nname = \"p0\"\ndriver = \"dpdk\"\ndevice = \"net_null0\"\n";

    fn err(text: &str) -> String {
        EngineConfig::parse(text).unwrap_err().to_string()
    }

    #[cfg(feature = "dpdk")]
    #[test]
    fn dpdk_ports_and_section() {
        let ok = format!("{PORT}[dpdk]\nno_huge = true\nvdevs = [\"net_null0,size=64\"]\n");
        let c = EngineConfig::parse(&ok).unwrap();
        assert!(c.dpdk.unwrap().no_huge);
        let e = err(&format!("{PORT}[dpdk]\nvdevs = [\"net_ring0\"]\n"));
        assert!(
            e.starts_with("port[0].device:") && e.contains("dpdk.vdevs"),
            "{e}"
        );
        let e = err(&ok.replace("device = \"net_null0\"\n", ""));
        assert!(e.starts_with("port[0].device: required"), "{e}");
        let e = err(&ok.replace("device = ", "iface = \"eth0\"\ndevice = "));
        assert!(e.starts_with("port[0].iface:"), "{e}");
        let e = err(&format!("{ok}lcores = \"zero\"\n"));
        assert!(e.starts_with("dpdk.lcores:"), "{e}");
        let e = err(&format!("{ok}hugepages = 1\n"));
        assert!(e.contains("hugepages"), "{e}");
        let two = format!("{ok}{}", PORT.replace("p0", "p1"));
        assert!(err(&two).contains("used by another port"));
    }

    #[cfg(not(feature = "dpdk"))]
    #[test]
    fn dpdk_port_needs_the_feature() {
        let e = err(&format!("{PORT}[dpdk]\nvdevs = [\"net_null0\"]\n"));
        assert!(
            e.starts_with("port[0].driver:") && e.contains("feature `dpdk`"),
            "{e}"
        );
    }

    #[test]
    fn device_only_on_dpdk_ports() {
        let e = err("[[port]]\nname = \"m\"\ndriver = \"mem\"\ndevice = \"net_null0\"\n");
        assert!(e.starts_with("port[0].device:"), "{e}");
    }
}
