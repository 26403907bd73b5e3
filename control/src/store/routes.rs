//! Static routes (prefix, next hops, blackhole) in the store.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

use rusqlite::{OptionalExtension, Transaction};

use super::interfaces::{connected, load_interfaces};
use super::{org_id, Store};
use crate::error::{Error, Result};
use crate::model::{check_next_hops, Cidr, NextHop, Route, RouteDef};

fn bad_row(what: &str, text: &str) -> Error {
    Error::Storage(format!("bad {what} in store: {text:?}"))
}

/// All routes of one organization, by id.
pub(super) fn load_routes(tx: &Transaction<'_>, org_id: i64, org: &str) -> Result<Vec<Route>> {
    load(tx, org_id, org, None)
}

/// Routes of an organization; with `only`, just that route (an indexed
/// lookup, so single-route calls stay cheap however many routes exist).
fn load(tx: &Transaction<'_>, org_id: i64, org: &str, only: Option<i64>) -> Result<Vec<Route>> {
    // -1 never names a route: "all routes" when no id is given.
    let id = only.unwrap_or(-1);
    let mut hops: HashMap<i64, Vec<NextHop>> = HashMap::new();
    {
        let mut stmt = tx.prepare(
            "SELECT h.route_id, h.via FROM route_next_hops h JOIN routes r ON r.id = h.route_id
             WHERE r.org_id = ?1 AND (?2 = -1 OR r.id = ?2) ORDER BY h.route_id, h.idx",
        )?;
        let rows = stmt
            .query_map(rusqlite::params![org_id, id], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        for (rid, via) in rows {
            let via: Ipv4Addr = via.parse().map_err(|_| bad_row("next hop", &via))?;
            hops.entry(rid).or_default().push(NextHop { via });
        }
    }
    let mut stmt = tx.prepare(
        "SELECT id, prefix, prefix_len, blackhole FROM routes
         WHERE org_id = ?1 AND (?2 = -1 OR id = ?2) ORDER BY id",
    )?;
    let rows = stmt
        .query_map(rusqlite::params![org_id, id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, u8>(2)?,
                r.get::<_, bool>(3)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(|(id, prefix, len, blackhole)| {
            let addr: Ipv4Addr = prefix.parse().map_err(|_| bad_row("prefix", &prefix))?;
            Ok(Route {
                id,
                org: org.into(),
                prefix: Cidr { addr, len },
                next_hops: hops.remove(&id).unwrap_or_default(),
                blackhole,
            })
        })
        .collect()
}

fn find(tx: &Transaction<'_>, org_id: i64, org: &str, id: i64) -> Result<Route> {
    load(tx, org_id, org, Some(id))?
        .into_iter()
        .find(|r| r.id == id)
        .ok_or_else(|| {
            Error::not_found(
                "id",
                format!("route {id} does not exist in organization {org:?}"),
            )
        })
}

fn route_with_prefix(tx: &Transaction<'_>, org_id: i64, prefix: Cidr) -> Result<Option<i64>> {
    Ok(tx
        .query_row(
            "SELECT id FROM routes WHERE org_id = ?1 AND prefix = ?2 AND prefix_len = ?3",
            rusqlite::params![org_id, prefix.addr.to_string(), prefix.len],
            |r| r.get(0),
        )
        .optional()?)
}

fn write_next_hops(tx: &Transaction<'_>, route_id: i64, def: &RouteDef) -> Result<()> {
    tx.execute(
        "DELETE FROM route_next_hops WHERE route_id = ?1",
        [route_id],
    )?;
    for (idx, via) in def.next_hops.iter().enumerate() {
        tx.execute(
            "INSERT INTO route_next_hops (route_id, idx, via) VALUES (?1, ?2, ?3)",
            rusqlite::params![route_id, idx, via.to_string()],
        )?;
    }
    Ok(())
}

fn insert(tx: &Transaction<'_>, org_id: i64, def: &RouteDef) -> Result<i64> {
    tx.execute(
        "INSERT INTO routes (org_id, prefix, prefix_len, blackhole) VALUES (?1, ?2, ?3, ?4)",
        rusqlite::params![
            org_id,
            def.prefix.addr.to_string(),
            def.prefix.len,
            def.blackhole
        ],
    )?;
    let id = tx.last_insert_rowid();
    write_next_hops(tx, id, def)?;
    Ok(id)
}

fn update(tx: &Transaction<'_>, id: i64, def: &RouteDef) -> Result<()> {
    tx.execute(
        "UPDATE routes SET prefix = ?1, prefix_len = ?2, blackhole = ?3 WHERE id = ?4",
        rusqlite::params![
            def.prefix.addr.to_string(),
            def.prefix.len,
            def.blackhole,
            id
        ],
    )?;
    write_next_hops(tx, id, def)
}

impl Store {
    pub fn list_routes(&mut self, org: &str) -> Result<Vec<Route>> {
        self.read(|tx| load_routes(tx, org_id(tx, org)?, org))
    }

    pub fn get_route(&mut self, org: &str, id: i64) -> Result<Route> {
        self.read(|tx| find(tx, org_id(tx, org)?, org, id))
    }

    pub fn create_route(&mut self, org: &str, def: &RouteDef) -> Result<Route> {
        self.change(|tx| {
            let oid = org_id(tx, org)?;
            if let Some(id) = route_with_prefix(tx, oid, def.prefix)? {
                return Err(Error::conflict(
                    "prefix",
                    format!("a route for {} already exists (id {id})", def.prefix),
                ));
            }
            check_next_hops(def, &connected(&load_interfaces(tx, oid, org)?))?;
            let id = insert(tx, oid, def)?;
            find(tx, oid, org, id)
        })
    }

    pub fn replace_route(&mut self, org: &str, id: i64, def: &RouteDef) -> Result<Route> {
        self.change(|tx| {
            let oid = org_id(tx, org)?;
            find(tx, oid, org, id)?;
            match route_with_prefix(tx, oid, def.prefix)? {
                Some(other) if other != id => {
                    return Err(Error::conflict(
                        "prefix",
                        format!("a route for {} already exists (id {other})", def.prefix),
                    ))
                }
                _ => {}
            }
            check_next_hops(def, &connected(&load_interfaces(tx, oid, org)?))?;
            update(tx, id, def)?;
            find(tx, oid, org, id)
        })
    }

    pub fn delete_route(&mut self, org: &str, id: i64) -> Result<()> {
        self.change(|tx| {
            let oid = org_id(tx, org)?;
            find(tx, oid, org, id)?;
            tx.execute("DELETE FROM routes WHERE id = ?1", [id])?;
            Ok(())
        })
    }

    /// Makes `defs` the organization's complete route set in one change.
    /// Routes whose prefix stays keep their id; errors name `routes[i]...`.
    pub fn replace_all_routes(&mut self, org: &str, defs: &[RouteDef]) -> Result<Vec<Route>> {
        self.change(|tx| {
            let oid = org_id(tx, org)?;
            let subnets = connected(&load_interfaces(tx, oid, org)?);
            let mut seen = HashSet::new();
            for (i, def) in defs.iter().enumerate() {
                let at = format!("routes[{i}].");
                if !seen.insert(def.prefix) {
                    return Err(Error::conflict(
                        format!("{at}prefix"),
                        format!("{} is listed twice", def.prefix),
                    ));
                }
                check_next_hops(def, &subnets).map_err(|e| e.nested(&at))?;
            }
            for old in load_routes(tx, oid, org)? {
                if !seen.contains(&old.prefix) {
                    tx.execute("DELETE FROM routes WHERE id = ?1", [old.id])?;
                }
            }
            for def in defs {
                match route_with_prefix(tx, oid, def.prefix)? {
                    Some(id) => update(tx, id, def)?,
                    None => {
                        insert(tx, oid, def)?;
                    }
                }
            }
            load_routes(tx, oid, org)
        })
    }
}
