//! Compiles the stored tunnels and peers into the shared-memory
//! WireGuard file (`patronus_shm::wg`, private keys included: the file is
//! 0600) and publishes it when it changed. The store actor calls
//! [`WgPusher::push_if_changed`] at start and after every WireGuard
//! request. Tunnel and peer ids in the file are the store's row ids, which
//! are never reused; routes into a tunnel carry the same id.

use patronus_shm::wg::{WgAllowedIpEntry, WgPeerEntry, WgTables, WgTunnelEntry, WG_PEER_HAS_PSK};

use crate::error::{Error, Result};
use crate::push::SharedPublisher;
use crate::store::{Store, WgState};

fn id32(id: i64, what: &str) -> Result<u32> {
    u32::try_from(id)
        .ok()
        .filter(|&i| i != 0)
        .ok_or_else(|| Error::Storage(format!("{what} id {id} does not fit the engine")))
}

/// The engine's form of the stored WireGuard state.
pub fn compile(state: &WgState) -> Result<WgTables> {
    let mut out = WgTables::default();
    for t in &state.tunnels {
        let d = &t.def;
        let mut e = WgTunnelEntry::new(
            id32(t.id, "tunnel")?,
            &d.name,
            d.listen_port,
            d.private_key.expose(),
            d.private_key.public_key().0,
        )
        .ok_or_else(|| Error::Storage(format!("tunnel name {:?} too long", d.name)))?;
        if let Some(a) = d.address {
            e.address = u32::from(a.addr);
            e.address_len = a.len;
        }
        out.tunnels.push(e);
    }
    for p in &state.peers {
        let d = &p.def;
        let peer_id = id32(p.id, "peer")?;
        out.peers.push(WgPeerEntry {
            tunnel_id: id32(p.tunnel_id, "tunnel")?,
            peer_id,
            endpoint_addr: d.endpoint.map_or(0, |e| u32::from(*e.ip())),
            endpoint_port: d.endpoint.map_or(0, |e| e.port()),
            persistent_keepalive_secs: d.persistent_keepalive.unwrap_or(0),
            flags: if d.preshared_key.is_some() {
                WG_PEER_HAS_PSK
            } else {
                0
            },
            reserved: 0,
            public_key: d.public_key.0,
            preshared_key: d.preshared_key.as_ref().map_or([0; 32], |k| k.expose()),
        });
        out.allowed_ips
            .extend(d.allowed_ips.iter().map(|c| WgAllowedIpEntry {
                peer_id,
                prefix: u32::from(c.network()),
                prefix_len: c.len,
                reserved: [0; 7],
            }));
    }
    Ok(out)
}

/// Publishes the WireGuard file when the configuration changed.
#[derive(Debug)]
pub struct WgPusher {
    publisher: SharedPublisher,
    /// What was last published (None: nothing yet by this process).
    last: Option<WgTables>,
}

impl WgPusher {
    pub fn new(publisher: SharedPublisher) -> Self {
        WgPusher {
            publisher,
            last: None,
        }
    }

    /// Reads the store and publishes if the result differs from the last
    /// publication (always the first time); the file number, if one went
    /// out.
    pub fn push_if_changed(&mut self, store: &mut Store) -> Result<Option<u64>> {
        let tables = compile(&store.wg_for_push()?)?;
        if self.last.as_ref() == Some(&tables) {
            return Ok(None);
        }
        let n = self
            .publisher
            .lock()
            .map_err(|_| Error::Storage("shared memory: publisher lock poisoned".into()))?
            .publish_wg(&tables)
            .map_err(|e| Error::Storage(format!("shared memory: {e}")))?;
        self.last = Some(tables);
        Ok(Some(n))
    }
}
