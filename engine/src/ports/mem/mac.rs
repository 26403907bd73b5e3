//! The MAC address of a port without hardware: configured, or derived from
//! the port name (shared by the `mem` and `pcap` drivers).

use crate::config::{parse_mac, PortConfig};
use crate::ports::PortError;

/// `cfg.mac`, or a locally administered unicast address `02:xx:xx:xx:xx:xx`
/// whose low five bytes are an FNV-1a hash of the port name (stable across
/// runs, different for differently named ports).
pub(crate) fn port_mac(cfg: &PortConfig) -> Result<[u8; 6], PortError> {
    match &cfg.mac {
        Some(m) => parse_mac(m).map_err(|msg| PortError::Other {
            port: cfg.name.clone(),
            msg: format!("mac: {msg}"),
        }),
        None => Ok(mac_from_name(&cfg.name)),
    }
}

/// The derived address for `name`.
pub(crate) fn mac_from_name(name: &str) -> [u8; 6] {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let b = h.to_be_bytes();
    [0x02, b[3], b[4], b[5], b[6], b[7]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_mac_is_local_unicast_and_stable() {
        let a = mac_from_name("lan0");
        assert_eq!(a[0], 0x02);
        assert_eq!(a, mac_from_name("lan0"));
        assert_ne!(a, mac_from_name("lan1"));
    }
}
