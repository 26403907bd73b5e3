//! Next-hop resolution for best-path selection. For now the caller gives
//! the directly connected subnets; a resolver over the engine's FIB (IGP
//! cost to recursive next hops) can replace it through
//! [`super::spawn_with_resolver`].

use std::net::IpAddr;

use patronus_bgp::rib::NextHopResolver;
use patronus_bgp::types::Prefix;

/// A next hop is reachable (cost 0) when it lies in a connected subnet.
#[derive(Clone, Debug, Default)]
pub struct ConnectedResolver {
    subnets: Vec<Prefix>,
}

impl ConnectedResolver {
    pub fn new(subnets: Vec<Prefix>) -> ConnectedResolver {
        ConnectedResolver { subnets }
    }
}

impl NextHopResolver for ConnectedResolver {
    fn igp_cost(&self, next_hop: IpAddr) -> Option<u32> {
        let nh = next_hop.to_canonical();
        let host = Prefix::new(nh, if nh.is_ipv4() { 32 } else { 128 }).ok()?;
        self.subnets.iter().any(|s| s.contains(&host)).then_some(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_only_connected_next_hops() {
        let r = ConnectedResolver::new(vec![
            Prefix::new("10.0.0.0".parse().unwrap(), 24).unwrap(),
            Prefix::new("fd00::".parse().unwrap(), 64).unwrap(),
        ]);
        assert_eq!(r.igp_cost("10.0.0.7".parse().unwrap()), Some(0));
        assert_eq!(r.igp_cost("fd00::2".parse().unwrap()), Some(0));
        assert_eq!(r.igp_cost("10.0.1.7".parse().unwrap()), None);
        assert_eq!(r.igp_cost("fd01::2".parse().unwrap()), None);
    }
}
