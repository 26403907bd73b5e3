//! Compiles the stored NAT configuration into the shared-memory NAT file
//! (`patronus_shm::nat`) and publishes it when it changed. The store actor
//! calls [`NatPusher::push_if_changed`] at start (so a restarted control
//! process republishes; the engine keeps running sessions when the plan is
//! the same) and after every NAT request.

use patronus_shm::nat::{
    NatForwardEntry, NatOneToOneEntry, NatPoolEntry, NatSettingsEntry, NatTables,
    FILTERING_ADDRESS_AND_PORT_DEPENDENT, FILTERING_ENDPOINT_INDEPENDENT, PROTO_TCP, PROTO_UDP,
    REFRESH_DEFAULT, REFRESH_OFF, REFRESH_ON,
};

use crate::error::{Error, Result};
use crate::nat::model::{Filtering, NatConfig, Proto};
use crate::push::SharedPublisher;
use crate::store::Store;

/// The engine's form of a NAT configuration (`None`: none managed).
pub fn compile(cfg: Option<&NatConfig>) -> Result<NatTables> {
    let Some(c) = cfg else {
        return Ok(NatTables::default());
    };
    let s = &c.settings;
    let mut e = NatSettingsEntry::new(&s.outside.port, s.outside.vlan.unwrap_or(0))
        .ok_or_else(|| Error::invalid("outside.port", "port name too long for the engine"))?;
    e.enabled = u8::from(s.enabled);
    e.filtering = match s.filtering {
        Filtering::EndpointIndependent => FILTERING_ENDPOINT_INDEPENDENT,
        Filtering::AddressAndPortDependent => FILTERING_ADDRESS_AND_PORT_DEPENDENT,
    };
    e.inbound_refresh = match s.inbound_refresh {
        None => REFRESH_DEFAULT,
        Some(false) => REFRESH_OFF,
        Some(true) => REFRESH_ON,
    };
    e.max_sessions_per_host = s.max_sessions_per_host.unwrap_or(0);
    for (slot, (_, v)) in e.timeouts_secs.iter_mut().zip(s.timeouts.fields()) {
        *slot = v.unwrap_or(0);
    }
    Ok(NatTables {
        settings: Some(e),
        pool: s
            .pool
            .iter()
            .map(|&a| NatPoolEntry {
                addr: a.into(),
                reserved: 0,
            })
            .collect(),
        forwards: c
            .forwards
            .iter()
            .map(|f| NatForwardEntry {
                outside_addr: (*f.outside.ip()).into(),
                inside_addr: (*f.inside.ip()).into(),
                outside_port: f.outside.port(),
                inside_port: f.inside.port(),
                proto: match f.proto {
                    Proto::Tcp => PROTO_TCP,
                    Proto::Udp => PROTO_UDP,
                },
                reserved: [0; 3],
            })
            .collect(),
        one_to_one: s
            .one_to_one
            .iter()
            .map(|m| NatOneToOneEntry {
                outside: m.outside.into(),
                inside: m.inside.into(),
            })
            .collect(),
    })
}

/// Publishes the NAT file when the configuration changed.
#[derive(Debug)]
pub struct NatPusher {
    publisher: SharedPublisher,
    /// What was last published (None: nothing yet by this process).
    last: Option<NatTables>,
}

impl NatPusher {
    pub fn new(publisher: SharedPublisher) -> Self {
        NatPusher {
            publisher,
            last: None,
        }
    }

    /// Reads the store and publishes if the result differs from the last
    /// publication (always the first time); the NAT file number, if one
    /// went out.
    pub fn push_if_changed(&mut self, store: &mut Store) -> Result<Option<u64>> {
        let tables = compile(store.nat_for_push()?.as_ref())?;
        if self.last.as_ref() == Some(&tables) {
            return Ok(None);
        }
        let n = self
            .publisher
            .lock()
            .map_err(|_| Error::Storage("shared memory: publisher lock poisoned".into()))?
            .publish_nat(&tables)
            .map_err(|e| Error::Storage(format!("shared memory: {e}")))?;
        self.last = Some(tables);
        Ok(Some(n))
    }
}
