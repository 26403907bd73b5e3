//! Load-balancer VIPs and their backends in the store. Ids are SQLite
//! AUTOINCREMENT row ids, never reused: they go into `lb.bin` and name the
//! engine's per-backend counters. Checks against stored state: unique VIP
//! names and (address, port, protocol), unique backends per VIP, DSR
//! backends on the VIP's port, the engine's limits, and a table size that
//! stays above 100 × backends.

use std::net::{Ipv4Addr, SocketAddrV4};

use rusqlite::{OptionalExtension, Transaction};

use super::Store;
use crate::error::{Error, Result};
use crate::lb::model::{
    Backend, BackendDef, CheckDef, Mode, Protocol, Vip, VipDef, MAX_BACKENDS, MAX_VIPS,
    TABLE_SIZE_PER_BACKEND,
};

pub(super) const SCHEMA_LB: &str = "
CREATE TABLE lb_vips (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT NOT NULL UNIQUE,
    address      TEXT NOT NULL,
    port         INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
    protocol     TEXT NOT NULL CHECK (protocol IN ('tcp', 'udp')),
    mode         TEXT NOT NULL CHECK (mode IN ('nat', 'dsr')),
    table_size   INTEGER NOT NULL CHECK (table_size > 0),
    health_check TEXT,
    UNIQUE (address, port, protocol)
);
CREATE TABLE lb_backends (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    vip_id  INTEGER NOT NULL REFERENCES lb_vips(id) ON DELETE CASCADE,
    address TEXT NOT NULL,
    port    INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
    weight  INTEGER NOT NULL CHECK (weight BETWEEN 0 AND 65535),
    UNIQUE (vip_id, address, port)
);
";

fn bad_row(what: &str) -> Error {
    Error::Storage(format!("bad {what} in the load-balancer tables"))
}

type VipRow = (
    i64,
    String,
    String,
    u16,
    String,
    String,
    u32,
    Option<String>,
);

fn vip_of(row: VipRow) -> Result<(i64, VipDef)> {
    let (id, name, address, port, protocol, mode, table_size, check) = row;
    Ok((
        id,
        VipDef {
            name,
            address: address.parse().map_err(|_| bad_row("VIP address"))?,
            port,
            protocol: match protocol.as_str() {
                "tcp" => Protocol::Tcp,
                "udp" => Protocol::Udp,
                _ => return Err(bad_row("VIP protocol")),
            },
            mode: match mode.as_str() {
                "nat" => Mode::Nat,
                "dsr" => Mode::Dsr,
                _ => return Err(bad_row("VIP mode")),
            },
            table_size,
            health_check: check
                .map(|t| serde_json::from_str::<CheckDef>(&t).map_err(|_| bad_row("health check")))
                .transpose()?,
        },
    ))
}

/// VIPs (all, or the one named `name`) with their backends, by name.
fn load_vips(tx: &Transaction<'_>, name: Option<&str>) -> Result<Vec<Vip>> {
    let mut stmt = tx.prepare_cached(
        "SELECT id, name, address, port, protocol, mode, table_size, health_check FROM lb_vips
         WHERE ?1 IS NULL OR name = ?1 ORDER BY name",
    )?;
    let rows = stmt
        .query_map([name], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<VipRow>>>()?;
    let mut backends = tx.prepare_cached(
        "SELECT id, address, port, weight FROM lb_backends WHERE vip_id = ?1 ORDER BY id",
    )?;
    rows.into_iter()
        .map(|row| {
            let (id, def) = vip_of(row)?;
            let list = backends
                .query_map([id], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, u16>(2)?,
                        r.get::<_, u16>(3)?,
                    ))
                })?
                .map(|row| {
                    let (bid, address, port, weight) = row?;
                    Ok(Backend {
                        id: bid,
                        def: BackendDef {
                            address: address
                                .parse::<Ipv4Addr>()
                                .map_err(|_| bad_row("backend address"))?,
                            port,
                            weight,
                        },
                        up: None,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(Vip {
                id,
                def,
                backends: list,
            })
        })
        .collect()
}

fn vip_named(tx: &Transaction<'_>, name: &str) -> Result<Vip> {
    load_vips(tx, Some(name))?
        .pop()
        .ok_or_else(|| Error::not_found("vip", format!("no VIP named {name:?}")))
}

fn count(tx: &Transaction<'_>, sql: &str) -> Result<usize> {
    let n: i64 = tx.query_row(sql, [], |r| r.get(0))?;
    Ok(usize::try_from(n).unwrap_or(0))
}

/// 409 when another VIP (not `except`) has this name or endpoint.
fn check_vip(tx: &Transaction<'_>, def: &VipDef, except: Option<i64>) -> Result<()> {
    let named: Option<i64> = tx
        .query_row(
            "SELECT id FROM lb_vips WHERE name = ?1 AND id IS NOT ?2",
            rusqlite::params![def.name, except],
            |r| r.get(0),
        )
        .optional()?;
    if named.is_some() {
        return Err(Error::conflict(
            "name",
            format!("a VIP named {:?} already exists", def.name),
        ));
    }
    let other: Option<String> = tx
        .query_row(
            "SELECT name FROM lb_vips WHERE address = ?1 AND port = ?2 AND protocol = ?3
             AND id IS NOT ?4",
            rusqlite::params![
                def.address.to_string(),
                def.port,
                def.protocol.name(),
                except
            ],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(other) = other {
        return Err(Error::conflict(
            "address",
            format!(
                "{}:{}/{} is already VIP {other:?}",
                def.address,
                def.port,
                def.protocol.name()
            ),
        ));
    }
    Ok(())
}

/// 409 when `extra` more backends would pass the engine's limit or the
/// VIP's table size.
fn check_room(tx: &Transaction<'_>, vip: &VipDef, have: usize, extra: usize) -> Result<()> {
    let total = count(tx, "SELECT count(*) FROM lb_backends")?;
    if total + extra > MAX_BACKENDS {
        return Err(Error::conflict(
            "backends",
            format!("the engine takes at most {MAX_BACKENDS} backends over all VIPs"),
        ));
    }
    if have + extra > vip.max_backends() {
        return Err(Error::conflict(
            "backends",
            format!(
                "VIP {:?}'s table_size {} balances at most {} backends (M > {TABLE_SIZE_PER_BACKEND} × backends); raise its table_size",
                vip.name,
                vip.table_size,
                vip.max_backends()
            ),
        ));
    }
    Ok(())
}

fn write_vip(tx: &Transaction<'_>, id: Option<i64>, def: &VipDef) -> Result<i64> {
    let check = def
        .health_check
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| Error::Storage(e.to_string()))?;
    let params = rusqlite::params![
        def.name,
        def.address.to_string(),
        def.port,
        def.protocol.name(),
        def.mode.name(),
        def.table_size,
        check,
        id
    ];
    match id {
        Some(id) => {
            tx.execute(
                "UPDATE lb_vips SET name = ?1, address = ?2, port = ?3, protocol = ?4, mode = ?5,
                 table_size = ?6, health_check = ?7 WHERE id = ?8",
                params,
            )?;
            Ok(id)
        }
        None => {
            tx.execute(
                "INSERT INTO lb_vips (name, address, port, protocol, mode, table_size,
                 health_check) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                &params[..7],
            )?;
            Ok(tx.last_insert_rowid())
        }
    }
}

fn insert_backend(tx: &Transaction<'_>, vip_id: i64, b: &BackendDef) -> Result<i64> {
    tx.execute(
        "INSERT INTO lb_backends (vip_id, address, port, weight) VALUES (?1, ?2, ?3, ?4)",
        rusqlite::params![vip_id, b.address.to_string(), b.port, b.weight],
    )?;
    Ok(tx.last_insert_rowid())
}

fn find_backend(vip: &Vip, key: SocketAddrV4) -> Result<&Backend> {
    vip.backends
        .iter()
        .find(|b| b.def.endpoint() == key)
        .ok_or_else(|| {
            Error::not_found(
                "backend",
                format!("VIP {:?} has no backend {key}", vip.def.name),
            )
        })
}

impl Store {
    /// Every VIP with its backends, by name (also what the engine gets).
    pub fn list_vips(&mut self) -> Result<Vec<Vip>> {
        self.read(|tx| load_vips(tx, None))
    }

    pub fn get_vip(&mut self, name: &str) -> Result<Vip> {
        self.read(|tx| vip_named(tx, name))
    }

    pub fn create_vip(&mut self, def: &VipDef, backends: &[BackendDef]) -> Result<Vip> {
        self.change(|tx| {
            check_vip(tx, def, None)?;
            if count(tx, "SELECT count(*) FROM lb_vips")? >= MAX_VIPS {
                return Err(Error::conflict(
                    "name",
                    format!("the engine takes at most {MAX_VIPS} VIPs"),
                ));
            }
            check_room(tx, def, 0, backends.len())?;
            let id = write_vip(tx, None, def)?;
            for b in backends {
                insert_backend(tx, id, b)?;
            }
            vip_named(tx, &def.name)
        })
    }

    /// Replaces VIP `name`'s settings (possibly its name); its backends stay
    /// and must still fit (409 naming the setting that no longer does).
    pub fn update_vip(&mut self, name: &str, def: &VipDef) -> Result<Vip> {
        self.change(|tx| {
            let old = vip_named(tx, name)?;
            check_vip(tx, def, Some(old.id))?;
            if old.backends.len() > def.max_backends() {
                return Err(Error::conflict(
                    "table_size",
                    format!(
                        "the VIP has {} backends: its table must be larger than {}",
                        old.backends.len(),
                        old.backends.len() as u64 * TABLE_SIZE_PER_BACKEND
                    ),
                ));
            }
            if let Some(b) = old
                .backends
                .iter()
                .find(|b| def.check_backend(&b.def).is_err())
            {
                let field = if def.mode == Mode::Dsr && old.def.mode != Mode::Dsr {
                    "mode"
                } else {
                    "port"
                };
                return Err(Error::conflict(
                    field,
                    format!(
                        "backend {} is not on port {}: in DSR mode backends listen on the VIP's port",
                        b.def.endpoint(),
                        def.port
                    ),
                ));
            }
            write_vip(tx, Some(old.id), def)?;
            vip_named(tx, &def.name)
        })
    }

    pub fn delete_vip(&mut self, name: &str) -> Result<()> {
        self.change(|tx| {
            let v = vip_named(tx, name)?;
            tx.execute("DELETE FROM lb_vips WHERE id = ?1", [v.id])?;
            Ok(())
        })
    }

    pub fn add_backend(&mut self, vip: &str, def: &BackendDef) -> Result<Backend> {
        self.change(|tx| {
            let v = vip_named(tx, vip)?;
            v.def
                .check_backend(def)
                .map_err(|(f, m)| Error::invalid(f, m))?;
            if v.backends
                .iter()
                .any(|b| b.def.endpoint() == def.endpoint())
            {
                return Err(Error::conflict(
                    "address",
                    format!("{} is already a backend of VIP {vip:?}", def.endpoint()),
                ));
            }
            check_room(tx, &v.def, v.backends.len(), 1)?;
            let id = insert_backend(tx, v.id, def)?;
            Ok(Backend {
                id,
                def: *def,
                up: None,
            })
        })
    }

    pub fn set_backend_weight(
        &mut self,
        vip: &str,
        key: SocketAddrV4,
        weight: u16,
    ) -> Result<Backend> {
        self.change(|tx| {
            let v = vip_named(tx, vip)?;
            let mut b = find_backend(&v, key)?.clone();
            tx.execute(
                "UPDATE lb_backends SET weight = ?1 WHERE id = ?2",
                rusqlite::params![weight, b.id],
            )?;
            b.def.weight = weight;
            Ok(b)
        })
    }

    pub fn remove_backend(&mut self, vip: &str, key: SocketAddrV4) -> Result<()> {
        self.change(|tx| {
            let v = vip_named(tx, vip)?;
            let id = find_backend(&v, key)?.id;
            tx.execute("DELETE FROM lb_backends WHERE id = ?1", [id])?;
            Ok(())
        })
    }
}
