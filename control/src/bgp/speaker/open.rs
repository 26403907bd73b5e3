//! Between the codec's OPEN and the FSM's view of it: our OPEN from the
//! session settings, and the peer's OPEN in summary.

use patronus_bgp::fsm::{AfiSet, GrCapability, PeerCapabilities, PeerOpen, SessionConfig};
use patronus_bgp::types::{Afi, SAFI_UNICAST};
use patronus_bgp::wire::{Capability, GracefulRestart, Open};

/// The N bit of the graceful-restart flags (RFC 8538).
const GR_NOTIFICATION: u8 = 0x4;

/// Our OPEN: multiprotocol per family, route refresh, 4-octet AS, and
/// graceful restart as helper only (no families listed: RFC 4724 3).
pub fn local_open(cfg: &SessionConfig) -> Open {
    let mut caps: Vec<Capability> = cfg.families.iter().map(Capability::unicast).collect();
    caps.push(Capability::RouteRefresh);
    caps.push(Capability::FourOctetAs(cfg.local_as));
    if let Some(gr) = cfg.graceful_restart {
        caps.push(Capability::GracefulRestart(GracefulRestart {
            restart_flags: if gr.notification { GR_NOTIFICATION } else { 0 },
            restart_time_secs: gr.restart_time_secs.min(0x0fff),
            families: Vec::new(),
        }));
    }
    Open::new(cfg.local_as, cfg.hold_time_secs, cfg.local_id, caps)
}

fn unicast_afi(afi: u16, safi: u8) -> Option<Afi> {
    match (afi, safi) {
        (1, SAFI_UNICAST) => Some(Afi::Ipv4),
        (2, SAFI_UNICAST) => Some(Afi::Ipv6),
        _ => None,
    }
}

/// The FSM's summary of a received OPEN.
pub fn peer_open(open: &Open) -> PeerOpen {
    let mut caps = PeerCapabilities::default();
    for c in open.capabilities() {
        match c {
            Capability::Multiprotocol { afi, safi } => {
                if let Some(a) = unicast_afi(*afi, *safi) {
                    caps.multiprotocol.insert(a);
                }
            }
            Capability::RouteRefresh => caps.route_refresh = true,
            Capability::FourOctetAs(_) => caps.four_octet_as = true,
            Capability::GracefulRestart(gr) => {
                let mut afis = AfiSet::EMPTY;
                let mut preserved = AfiSet::EMPTY;
                for f in &gr.families {
                    if let Some(a) = unicast_afi(f.afi, f.safi) {
                        afis.insert(a);
                        if f.forwarding_preserved() {
                            preserved.insert(a);
                        }
                    }
                }
                caps.graceful_restart = Some(GrCapability {
                    restart_time_secs: gr.restart_time_secs,
                    restarting: gr.restart_state(),
                    notification: gr.restart_flags & GR_NOTIFICATION != 0,
                    afis,
                    forwarding_preserved: preserved,
                });
            }
            Capability::Unknown { .. } => {}
        }
    }
    PeerOpen {
        asn: open.asn(),
        hold_time_secs: open.hold_time,
        bgp_id: open.bgp_id,
        capabilities: caps,
    }
}
