//! The NAT configuration in the store: one settings row (a JSON document:
//! outside interface, pool, filtering, limits, timeouts, 1:1 mappings) and
//! one row per port forward (ids never reused). Absent settings: the
//! control process manages no NAT.

use std::net::{Ipv4Addr, SocketAddrV4};

use rusqlite::{OptionalExtension, Transaction};

use super::Store;
use crate::error::{Error, Result};
use crate::model::DEFAULT_ORG;
use crate::nat::model::{
    add_pool_address, check_forward, Forward, ForwardDef, ForwardIndex, NatConfig, NatSettings,
    Outside, Proto,
};

/// Tables added by schema version 2.
pub(super) const SCHEMA_NAT: &str = "
CREATE TABLE nat_settings (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    settings TEXT NOT NULL
);
CREATE TABLE nat_forwards (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    proto        TEXT NOT NULL CHECK (proto IN ('tcp', 'udp')),
    outside_addr TEXT NOT NULL,
    outside_port INTEGER NOT NULL CHECK (outside_port BETWEEN 1 AND 65535),
    inside_addr  TEXT NOT NULL,
    inside_port  INTEGER NOT NULL CHECK (inside_port BETWEEN 1 AND 65535),
    UNIQUE (proto, outside_addr, outside_port)
);
";

/// Ports the engine reports running (`None`: no engine attached): an
/// outside interface may be one of its configured interfaces, which the
/// control process cannot see.
pub type EnginePorts = Option<Vec<String>>;

fn load_settings(tx: &Transaction<'_>) -> Result<Option<NatSettings>> {
    let text: Option<String> = tx
        .query_row("SELECT settings FROM nat_settings WHERE id = 1", [], |r| {
            r.get(0)
        })
        .optional()?;
    text.map(|t| serde_json::from_str(&t).map_err(|e| Error::Storage(format!("nat settings: {e}"))))
        .transpose()
}

fn settings_or_404(tx: &Transaction<'_>) -> Result<NatSettings> {
    load_settings(tx)?.ok_or_else(|| {
        Error::not_found(
            "nat",
            "no NAT configuration (PUT /api/v1/nat first; until then the engine runs its own [nat], if any)",
        )
    })
}

fn store_settings(tx: &Transaction<'_>, s: &NatSettings) -> Result<()> {
    let text = serde_json::to_string(s).map_err(|e| Error::Storage(e.to_string()))?;
    tx.execute(
        "INSERT INTO nat_settings (id, settings) VALUES (1, ?1)
         ON CONFLICT (id) DO UPDATE SET settings = excluded.settings",
        [text],
    )?;
    Ok(())
}

pub(super) fn load_forwards(tx: &Transaction<'_>) -> Result<Vec<Forward>> {
    let mut stmt = tx.prepare(
        "SELECT id, proto, outside_addr, outside_port, inside_addr, inside_port
         FROM nat_forwards ORDER BY id",
    )?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, u16>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, u16>(5)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(|(id, proto, oa, op, ia, ip)| {
            let bad = |what: &str| Error::Storage(format!("nat forward {id}: bad {what}"));
            let addr = |t: &str, what: &str| t.parse::<Ipv4Addr>().map_err(|_| bad(what));
            Ok(Forward {
                id,
                proto: match proto.as_str() {
                    "tcp" => Proto::Tcp,
                    "udp" => Proto::Udp,
                    _ => return Err(bad("proto")),
                },
                outside: SocketAddrV4::new(addr(&oa, "outside address")?, op),
                inside: SocketAddrV4::new(addr(&ia, "inside address")?, ip),
            })
        })
        .collect()
}

fn insert_forward(tx: &Transaction<'_>, d: &ForwardDef) -> Result<Forward> {
    tx.execute(
        "INSERT INTO nat_forwards (proto, outside_addr, outside_port, inside_addr, inside_port)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        rusqlite::params![
            d.proto.name(),
            d.outside.ip().to_string(),
            d.outside.port(),
            d.inside.ip().to_string(),
            d.inside.port()
        ],
    )?;
    Ok(Forward {
        id: tx.last_insert_rowid(),
        proto: d.proto,
        outside: d.outside,
        inside: d.inside,
    })
}

fn vlan_text(vlan: Option<u16>) -> String {
    vlan.map_or_else(|| "untagged".into(), |v| format!("VLAN {v}"))
}

/// The outside interface must be one of the default organization's
/// interfaces (the ones pushed to the engine) or sit on a port the engine
/// runs (which may carry it in its own configuration; the engine checks).
fn check_outside(tx: &Transaction<'_>, o: &Outside, engine_ports: &EnginePorts) -> Result<()> {
    let api: Option<i64> = tx
        .query_row(
            "SELECT i.id FROM interfaces i JOIN organizations g ON g.id = i.org_id
             WHERE g.name = ?1 AND i.port = ?2 AND i.vlan = ?3",
            rusqlite::params![DEFAULT_ORG, o.port, o.vlan.unwrap_or(0)],
            |r| r.get(0),
        )
        .optional()?;
    if api.is_some() || engine_ports.as_ref().is_some_and(|p| p.contains(&o.port)) {
        return Ok(());
    }
    let engine = match engine_ports {
        Some(p) => format!("the engine runs ports {}", p.join(", ")),
        None => "no engine is attached to say which ports it runs".to_string(),
    };
    Err(Error::invalid(
        "outside.port",
        format!(
            "no interface on port {} {} (add one with POST /api/v1/interfaces; {engine})",
            o.port,
            vlan_text(o.vlan)
        ),
    ))
}

/// Checks `d` against the settings and every stored forward.
fn check_against_stored(
    tx: &Transaction<'_>,
    s: &NatSettings,
    d: &ForwardDef,
) -> Result<Vec<Forward>> {
    let stored = load_forwards(tx)?;
    let mut seen = ForwardIndex::default();
    for f in &stored {
        // Stored forwards passed these checks when they were added.
        let _ = check_forward(s, &mut seen, &f.def());
    }
    check_forward(s, &mut seen, d).map_err(|(field, m)| Error::conflict(field, m))?;
    check_not_a_tunnel_port(tx, d, "outside")?;
    Ok(stored)
}

/// 409 when a UDP forward's outside port is a WireGuard tunnel's listen
/// port (the engine would not know whose packets they are).
fn check_not_a_tunnel_port(tx: &Transaction<'_>, d: &ForwardDef, field: &str) -> Result<()> {
    if d.proto != Proto::Udp {
        return Ok(());
    }
    match super::wg::tunnel_on_port(tx, d.outside.port())? {
        Some(t) => Err(Error::conflict(
            field,
            format!(
                "UDP port {} is WireGuard tunnel {t:?}'s listen port",
                d.outside.port()
            ),
        )),
        None => Ok(()),
    }
}

impl Store {
    /// The NAT configuration, or 404 when the control process manages none.
    pub fn get_nat(&mut self) -> Result<NatConfig> {
        self.read(|tx| {
            Ok(NatConfig {
                settings: settings_or_404(tx)?,
                forwards: load_forwards(tx)?,
            })
        })
    }

    /// The NAT configuration to push (`None`: none managed).
    pub fn nat_for_push(&mut self) -> Result<Option<NatConfig>> {
        self.read(|tx| {
            Ok(match load_settings(tx)? {
                Some(settings) => Some(NatConfig {
                    settings,
                    forwards: load_forwards(tx)?,
                }),
                None => None,
            })
        })
    }

    /// Replaces the whole NAT configuration (forwards listed again keep
    /// their ids).
    pub fn put_nat(
        &mut self,
        settings: &NatSettings,
        forwards: &[ForwardDef],
        engine_ports: &EnginePorts,
    ) -> Result<NatConfig> {
        self.change(|tx| {
            check_outside(tx, &settings.outside, engine_ports)?;
            store_settings(tx, settings)?;
            // Forwards that stay keep their ids; the others go first (a
            // changed forward may reuse an outside endpoint).
            let stored = load_forwards(tx)?;
            for f in stored.iter().filter(|f| !forwards.contains(&f.def())) {
                tx.execute("DELETE FROM nat_forwards WHERE id = ?1", [f.id])?;
            }
            for (i, d) in forwards.iter().enumerate() {
                check_not_a_tunnel_port(tx, d, &format!("forwards[{i}].outside"))?;
                if !stored.iter().any(|f| f.def() == *d) {
                    insert_forward(tx, d)?;
                }
            }
            Ok(NatConfig {
                settings: settings.clone(),
                forwards: load_forwards(tx)?,
            })
        })
    }

    /// Removes the NAT configuration: the engine goes back to its own.
    pub fn delete_nat(&mut self) -> Result<()> {
        self.change(|tx| {
            settings_or_404(tx)?;
            tx.execute("DELETE FROM nat_settings", [])?;
            tx.execute("DELETE FROM nat_forwards", [])?;
            Ok(())
        })
    }

    pub fn list_nat_forwards(&mut self) -> Result<Vec<Forward>> {
        self.read(|tx| {
            settings_or_404(tx)?;
            load_forwards(tx)
        })
    }

    /// Adds one forward; a clash with another forward or a 1:1 mapping is
    /// a conflict.
    pub fn add_nat_forward(&mut self, d: &ForwardDef) -> Result<Forward> {
        self.change(|tx| {
            let s = settings_or_404(tx)?;
            let stored = check_against_stored(tx, &s, d)?;
            if stored.len() >= crate::nat::model::MAX_FORWARDS {
                return Err(Error::conflict(
                    "forwards",
                    format!("at most {} forwards", crate::nat::model::MAX_FORWARDS),
                ));
            }
            insert_forward(tx, d)
        })
    }

    pub fn delete_nat_forward(&mut self, id: i64) -> Result<()> {
        self.change(|tx| {
            settings_or_404(tx)?;
            let n = tx.execute("DELETE FROM nat_forwards WHERE id = ?1", [id])?;
            if n == 0 {
                return Err(Error::not_found(
                    "id",
                    format!("NAT forward {id} does not exist"),
                ));
            }
            Ok(())
        })
    }

    /// Adds a pool address; answers with the configuration.
    pub fn add_nat_pool_address(&mut self, a: Ipv4Addr) -> Result<NatConfig> {
        self.change(|tx| {
            let mut s = settings_or_404(tx)?;
            add_pool_address(&mut s, a).map_err(|m| Error::conflict("address", m))?;
            store_settings(tx, &s)?;
            Ok(NatConfig {
                settings: s,
                forwards: load_forwards(tx)?,
            })
        })
    }

    /// Removes a pool address (not the last one).
    pub fn delete_nat_pool_address(&mut self, a: Ipv4Addr) -> Result<NatConfig> {
        self.change(|tx| {
            let mut s = settings_or_404(tx)?;
            if !s.pool.contains(&a) {
                return Err(Error::not_found(
                    "address",
                    format!("{a} is not in the NAT pool"),
                ));
            }
            if s.pool.len() == 1 {
                return Err(Error::conflict(
                    "address",
                    format!("{a} is the last pool address (DELETE /api/v1/nat removes NAT)"),
                ));
            }
            s.pool.retain(|p| *p != a);
            store_settings(tx, &s)?;
            Ok(NatConfig {
                settings: s,
                forwards: load_forwards(tx)?,
            })
        })
    }
}

/// Refuses to remove or move interface (`port`, `vlan`) while NAT's outside
/// is on it (`field` names the request's field).
pub(super) fn check_not_nat_outside(
    tx: &Transaction<'_>,
    port: &str,
    vlan: Option<u16>,
    field: &str,
) -> Result<()> {
    if let Some(s) = load_settings(tx)? {
        if s.outside.port == port && s.outside.vlan.unwrap_or(0) == vlan.unwrap_or(0) {
            return Err(Error::conflict(
                field,
                format!(
                    "the interface on port {port} {} is NAT's outside interface (change NAT first)",
                    vlan_text(vlan)
                ),
            ));
        }
    }
    Ok(())
}
