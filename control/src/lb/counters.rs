//! The engine's per-backend counters, from its `lb.sock`
//! (`patronus_shm::lb_query`) through the shared JSON-lines client
//! ([`crate::engine_query::ask`]). Counters are matched to stored backends
//! by id, VIP id and endpoint; an engine running its own `[lb]`
//! configuration (generation 0) or not answering counts as zeros.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use patronus_shm::lb_query::{LbBackendStats, LbReply, LbRequest};
use serde::Serialize;

use crate::engine_query::ask;
use crate::lb::model::Backend;

/// How long an API request or a scrape waits for the engine's counters.
pub const LB_QUERY_TIMEOUT: Duration = Duration::from_secs(2);

/// One backend's traffic as the engine counted it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BackendCounters {
    pub flows: u64,
    pub active_flows: u64,
    pub packets: u64,
    pub bytes: u64,
}

/// One answer of the engine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineLbCounters {
    by_id: HashMap<u32, LbBackendStats>,
    /// Flows pinned now over all VIPs.
    pub active_flows: u64,
}

impl EngineLbCounters {
    /// From an engine reply; `None` for an error or the engine's own plan.
    pub fn from_reply(reply: LbReply) -> Option<Self> {
        match reply {
            LbReply::Backends {
                backends,
                active_flows,
                generation,
                ..
            } if generation != 0 => Some(EngineLbCounters {
                by_id: backends.into_iter().map(|b| (b.id, b)).collect(),
                active_flows,
            }),
            LbReply::Backends { .. } => None,
            LbReply::Error { code, message } => {
                tracing::debug!(?code, %message, "engine refused the LB counters query");
                None
            }
        }
    }

    /// Backend `b` of VIP `vip_id`'s counters (zeros when the engine has
    /// none for it).
    pub fn of(&self, vip_id: i64, b: &Backend) -> BackendCounters {
        let found = u32::try_from(b.id).ok().and_then(|id| self.by_id.get(&id));
        match found {
            Some(s)
                if i64::from(s.vip_id) == vip_id
                    && s.addr == b.def.address
                    && s.port == b.def.port =>
            {
                BackendCounters {
                    flows: s.flows,
                    active_flows: s.active_flows,
                    packets: s.packets,
                    bytes: s.bytes,
                }
            }
            _ => BackendCounters::default(),
        }
    }
}

/// Asks the engine at `socket`; `None` when it does not answer usefully.
pub async fn query(socket: &Path, timeout: Duration) -> Option<EngineLbCounters> {
    match ask::<_, LbReply>(socket, &LbRequest {}, timeout).await {
        Ok(reply) => EngineLbCounters::from_reply(reply),
        Err(e) => {
            tracing::debug!("no LB counters from the engine: {e}");
            None
        }
    }
}
