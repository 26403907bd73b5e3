//! Interfaces pushed by the control process, merged with the configured
//! ones. The control process is authoritative per port: a port with pushed
//! interfaces takes exactly those; a port with none keeps the interfaces of
//! the engine's configuration (so an engine with no pushed interfaces, or
//! not attached at all, runs on its config alone).

use std::net::Ipv4Addr;

use patronus_shm::layout::decode_name;
use patronus_shm::InterfaceEntry;

use crate::config::{EngineConfig, InterfaceConfig};

/// The interfaces to run with, and a message per pushed entry left out.
/// With nothing pushed the result is `cfg.interfaces` itself, in order
/// (interface indices do not move).
pub fn effective_interfaces(
    cfg: &EngineConfig,
    pushed: &[InterfaceEntry],
) -> (Vec<InterfaceConfig>, Vec<String>) {
    let mut warnings = Vec::new();
    let mut taken: Vec<InterfaceConfig> = Vec::new();
    for (i, e) in pushed.iter().enumerate() {
        let Some(port) = decode_name(&e.port_name) else {
            warnings.push(format!("pushed interface[{i}]: port name is not UTF-8"));
            continue;
        };
        if cfg.port_index(port).is_none() {
            warnings.push(format!(
                "pushed interface[{i}]: port {port:?} is not one of the engine's ports"
            ));
            continue;
        }
        if e.prefix_len == 0 || e.prefix_len > 32 {
            warnings.push(format!(
                "pushed interface[{i}]: prefix length /{} is not 1..=32",
                e.prefix_len
            ));
            continue;
        }
        let vlan = (e.vlan != 0).then_some(e.vlan);
        if taken.iter().any(|t| t.port == port && t.vlan == vlan) {
            warnings.push(format!(
                "pushed interface[{i}]: {port} vlan {} already has an address (one per port and VLAN)",
                e.vlan
            ));
            continue;
        }
        taken.push(InterfaceConfig {
            port: port.to_string(),
            address: format!("{}/{}", Ipv4Addr::from(e.addr), e.prefix_len),
            vlan,
        });
    }
    let mut out: Vec<InterfaceConfig> = cfg
        .interfaces
        .iter()
        .filter(|c| !taken.iter().any(|t| t.port == c.port))
        .cloned()
        .collect();
    out.extend(taken);
    (out, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use patronus_shm::layout::encode_name;

    fn entry(port: &str, addr: [u8; 4], len: u8, vlan: u16) -> InterfaceEntry {
        InterfaceEntry {
            port_name: encode_name(port).unwrap(),
            addr: u32::from(Ipv4Addr::from(addr)),
            vlan,
            mtu: 0,
            prefix_len: len,
            reserved: [0; 7],
        }
    }

    fn cfg() -> EngineConfig {
        EngineConfig::parse(
            r#"
[[port]]
name = "lan0"
driver = "mem"
[[port]]
name = "wan0"
driver = "mem"
[[interface]]
port = "lan0"
address = "10.1.0.1/24"
[[interface]]
port = "wan0"
address = "10.2.0.1/24"
"#,
        )
        .unwrap()
    }

    #[test]
    fn nothing_pushed_is_the_config_itself() {
        let c = cfg();
        let (list, warnings) = effective_interfaces(&c, &[]);
        assert_eq!(list, c.interfaces);
        assert!(warnings.is_empty());
    }

    #[test]
    fn a_pushed_port_replaces_its_configured_interfaces_only() {
        let c = cfg();
        let (list, warnings) = effective_interfaces(
            &c,
            &[
                entry("wan0", [10, 3, 0, 1], 24, 0),
                entry("wan0", [10, 4, 0, 1], 24, 7),
            ],
        );
        assert!(warnings.is_empty(), "{warnings:?}");
        let addrs: Vec<(&str, &str, Option<u16>)> = list
            .iter()
            .map(|i| (i.port.as_str(), i.address.as_str(), i.vlan))
            .collect();
        assert_eq!(
            addrs,
            vec![
                ("lan0", "10.1.0.1/24", None),
                ("wan0", "10.3.0.1/24", None),
                ("wan0", "10.4.0.1/24", Some(7)),
            ]
        );
    }

    #[test]
    fn bad_pushed_entries_are_left_out_with_a_reason() {
        let c = cfg();
        let (list, warnings) = effective_interfaces(
            &c,
            &[
                entry("nope0", [10, 9, 0, 1], 24, 0),
                entry("wan0", [10, 3, 0, 1], 0, 0),
                entry("wan0", [10, 3, 0, 1], 24, 0),
                entry("wan0", [10, 5, 0, 1], 24, 0),
            ],
        );
        assert_eq!(list.len(), 2);
        assert_eq!(list[1].address, "10.3.0.1/24");
        assert_eq!(warnings.len(), 3);
        assert!(warnings[0].contains("nope0"), "{}", warnings[0]);
        assert!(warnings[1].contains("/0"), "{}", warnings[1]);
        assert!(warnings[2].contains("one per port"), "{}", warnings[2]);
    }
}
