//! Live reconfiguration of one worker's view of a tunnel: peers added,
//! removed or changed, the key rotated, without disturbing the peers that
//! did not change.
//!
//! A peer keeps its slot ([`super::PeerId`]: its boringtun session index
//! and owning worker) for as long as it exists: the caller assigns slots
//! ([`TunnelConfig::peer_slots`]) and never gives a live peer's slot to
//! another. Kept per peer in the same slot with the same public key:
//! - its boringtun session (no new handshake, nothing lost in flight)
//!   when the private key, preshared key and keepalive are unchanged
//!   (boringtun fixes those when a session is made);
//! - its counters, always;
//! - its roamed endpoint and our source address, unless the configured
//!   endpoint changed (then the new one is where we send).

use super::config::TunnelConfig;
use super::tunnel::Tunnel;
use super::WgConfigError;

impl Tunnel {
    /// Applies `cfg` (see the module docs); on error nothing changes.
    /// The tunnel's own counters carry over.
    pub fn reconfigure(&mut self, cfg: &TunnelConfig, now: u64) -> Result<(), WgConfigError> {
        let same_private = self.private.to_bytes() == cfg.private_key;
        let old = &self.peers;
        let mut next = Tunnel::build(cfg, self.worker, self.workers, now, |slot, pc| {
            old.get(slot as usize).is_some_and(|o| {
                same_private
                    && o.present
                    && o.tunn.is_some()
                    && o.public_key == pc.public_key
                    && o.psk == pc.preshared_key
                    && o.keepalive == pc.persistent_keepalive_secs
            })
        })?;
        for (np, op) in next.peers.iter_mut().zip(self.peers.iter_mut()) {
            if !(np.present && op.present && np.public_key == op.public_key) {
                continue;
            }
            np.counters = op.counters;
            if np.configured_endpoint == op.configured_endpoint {
                np.endpoint = op.endpoint;
                np.local = op.local;
            }
            // `build` left the session out exactly where it is reused (the
            // same slot has the same owner, so a peer not ours has none).
            if np.tunn.is_none() {
                np.tunn = op.tunn.take();
            }
        }
        next.counters = self.counters;
        next.ident = self.ident;
        next.last_now = next.last_now.max(self.last_now);
        *self = next;
        Ok(())
    }
}
