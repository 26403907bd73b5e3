//! Health across a control restart: the `lb.bin` a previous control process
//! published still says which backends were up. Checked backends start in
//! that state (matched by backend id, stable in the database) instead of
//! the check's initial Down, so a restart does not make the engine drop
//! their flows until `rise` probes have succeeded again.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};

use patronus_shm::lb::{LbBackendEntry, LbTables};
use patronus_shm::{Generation, Publisher, ShmError};

use super::health::Health;
use super::model::Vip;

/// The LB file last published in `publisher`'s runtime directory; `None`
/// when none was (number 0).
pub fn published(publisher: &Publisher) -> Result<Option<LbTables>, ShmError> {
    let number = publisher.lb_generation();
    if number == 0 {
        return Ok(None);
    }
    let path = publisher.dir().lb();
    // As `Subscriber::poll_lb`: a publisher that stopped between writing
    // the file and bumping the number left a newer file; it is the newest
    // state.
    let g = match Generation::load(&path, number) {
        Err(ShmError::GenerationMismatch { found, .. }) if found > number => {
            Generation::load(&path, found)
        }
        other => other,
    }?;
    LbTables::from_view(&g.view()).map(Some)
}

/// The state each probe target `(vip id, address)` of `vips` starts in,
/// for the checked backends `published` holds. A file entry counts only
/// when its VIP, address and port match the stored backend of its id (a
/// database swapped under the runtime directory must not lend its health).
/// Backends probed at one target share its state: any of them up makes it
/// up (keeping flows is the point).
pub fn seeds(vips: &[Vip], published: &LbTables) -> HashMap<(i64, SocketAddr), Health> {
    let by_id: HashMap<u32, &LbBackendEntry> =
        published.backends.iter().map(|b| (b.id, b)).collect();
    let mut out = HashMap::new();
    for v in vips {
        let Some(check) = &v.def.health_check else {
            continue;
        };
        for b in &v.backends {
            let Some(e) = u32::try_from(b.id).ok().and_then(|id| by_id.get(&id)) else {
                continue;
            };
            if i64::from(e.vip_id) != v.id
                || Ipv4Addr::from(e.addr) != b.def.address
                || e.port != b.def.port
            {
                continue;
            }
            let h = if e.up != 0 { Health::Up } else { Health::Down };
            out.entry((v.id, check.target(&b.def)))
                .and_modify(|s: &mut Health| {
                    if h.is_up() {
                        *s = Health::Up;
                    }
                })
                .or_insert(h);
        }
    }
    out
}

#[cfg(test)]
#[path = "restore_tests.rs"]
mod tests;
