//! Compiles the stored VIPs and backends, with their health, into the
//! shared-memory LB file (`patronus_shm::lb`) and publishes it when it
//! changed. No VIP: settings `None` (the engine runs its own `[lb]`
//! configuration, if any); at least one: settings with the engine's
//! defaults and exactly these VIPs.

use patronus_shm::lb::{
    LbBackendEntry, LbSettingsEntry, LbTables, LbVipEntry, LB_MODE_DSR, LB_MODE_NAT, LB_PROTO_TCP,
    LB_PROTO_UDP,
};

use crate::error::{Error, Result};
use crate::lb::model::{Mode, Protocol, Vip};
use crate::push::SharedPublisher;

fn id32(id: i64, what: &str) -> Result<u32> {
    u32::try_from(id)
        .ok()
        .filter(|&i| i != 0)
        .ok_or_else(|| Error::Storage(format!("{what} id {id} does not fit the engine")))
}

/// The engine's form of `vips` (whose backends carry their health: `None`
/// = not checked = up).
pub fn compile(vips: &[Vip]) -> Result<LbTables> {
    if vips.is_empty() {
        return Ok(LbTables::default());
    }
    let mut t = LbTables {
        settings: Some(LbSettingsEntry {
            max_flows: 0,
            tcp_timeout_secs: 0,
            tcp_closing_timeout_secs: 0,
            udp_timeout_secs: 0,
        }),
        vips: Vec::with_capacity(vips.len()),
        backends: Vec::new(),
    };
    for v in vips {
        let vip_id = id32(v.id, "VIP")?;
        t.vips.push(LbVipEntry {
            id: vip_id,
            addr: v.def.address.into(),
            port: v.def.port,
            proto: match v.def.protocol {
                Protocol::Tcp => LB_PROTO_TCP,
                Protocol::Udp => LB_PROTO_UDP,
            },
            mode: match v.def.mode {
                Mode::Nat => LB_MODE_NAT,
                Mode::Dsr => LB_MODE_DSR,
            },
            table_size: v.def.table_size,
        });
        for b in &v.backends {
            t.backends.push(LbBackendEntry {
                id: id32(b.id, "backend")?,
                vip_id,
                addr: b.def.address.into(),
                port: b.def.port,
                weight: b.def.weight,
                up: u8::from(b.up.unwrap_or(true)),
                reserved: [0; 3],
            });
        }
    }
    Ok(t)
}

/// Publishes the LB file when its content changed.
#[derive(Debug)]
pub struct LbPusher {
    publisher: SharedPublisher,
    /// What was last published (None: nothing yet by this process).
    last: Option<LbTables>,
}

impl LbPusher {
    pub fn new(publisher: SharedPublisher) -> Self {
        LbPusher {
            publisher,
            last: None,
        }
    }

    /// Publishes `tables` unless they are what went out last (always the
    /// first time); the LB file number, if one went out.
    pub fn push_if_changed(&mut self, tables: LbTables) -> Result<Option<u64>> {
        if self.last.as_ref() == Some(&tables) {
            return Ok(None);
        }
        let n = self
            .publisher
            .lock()
            .map_err(|_| Error::Storage("shared memory: publisher lock poisoned".into()))?
            .publish_lb(&tables)
            .map_err(|e| Error::Storage(format!("shared memory: {e}")))?;
        self.last = Some(tables);
        Ok(Some(n))
    }
}
