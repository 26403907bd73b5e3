//! Static routes (prefix, next hops, blackhole) in the store.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

use rusqlite::{OptionalExtension, Transaction};

use super::interfaces::{connected, load_interfaces};
use super::wg::tunnel_id_for_route;
use super::{org_id, Store};
use crate::error::{Error, Result};
use crate::model::{check_next_hops, Cidr, NextHop, Route, RouteDef};

fn bad_row(what: &str, text: &str) -> Error {
    Error::Storage(format!("bad {what} in store: {text:?}"))
}

/// All routes of one organization, by id.
pub(super) fn load_routes(tx: &Transaction<'_>, org_id: i64, org: &str) -> Result<Vec<Route>> {
    load(tx, org_id, org, None, None)
}

/// Paging of a route list: at most `limit` routes after skipping `offset`
/// (in id order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub limit: u64,
    pub offset: u64,
}

type RouteRow = (i64, String, u8, bool, Option<String>, Option<i64>);

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RouteRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

/// The stored id of the tunnel `def` points into (None: not into one);
/// 400 on `tunnel` when there is no such tunnel.
pub(super) fn resolve_tunnel(tx: &Transaction<'_>, def: &RouteDef) -> Result<Option<i64>> {
    def.tunnel
        .as_deref()
        .map(|name| tunnel_id_for_route(tx, "tunnel", name))
        .transpose()
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Routes of an organization; with `only`, just that route (an indexed
/// lookup, so single-route calls stay cheap however many routes exist);
/// with `page`, one page of them in id order.
fn load(
    tx: &Transaction<'_>,
    org_id: i64,
    org: &str,
    only: Option<i64>,
    page: Option<Page>,
) -> Result<Vec<Route>> {
    // A single route by its primary key; a list in id order by a scan of
    // the table (`+org_id` keeps the planner off the (org, prefix) index,
    // which would sort the whole organization for every page).
    let rows = match only {
        Some(id) => {
            let mut stmt = tx.prepare_cached(
                "SELECT r.id, r.prefix, r.prefix_len, r.blackhole, t.name, r.tunnel_id FROM routes r
                 LEFT JOIN wg_tunnels t ON t.id = r.tunnel_id WHERE r.org_id = ?1 AND r.id = ?2",
            )?;
            let rows = stmt
                .query_map(rusqlite::params![org_id, id], row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            rows
        }
        None => {
            // LIMIT -1 is "no limit" in SQLite.
            let (limit, offset) = page.map_or((-1, 0), |p| (to_i64(p.limit), to_i64(p.offset)));
            let mut stmt = tx.prepare_cached(
                "SELECT r.id, r.prefix, r.prefix_len, r.blackhole, t.name, r.tunnel_id FROM routes r
                 LEFT JOIN wg_tunnels t ON t.id = r.tunnel_id
                 WHERE +r.org_id = ?1 ORDER BY r.id LIMIT ?2 OFFSET ?3",
            )?;
            let rows = stmt
                .query_map(rusqlite::params![org_id, limit, offset], row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            rows
        }
    };
    let (Some(lo), Some(hi)) = (rows.first().map(|r| r.0), rows.last().map(|r| r.0)) else {
        return Ok(Vec::new());
    };
    // Next hops of the id range the routes span (a range scan of the
    // primary key); hops of other organizations' routes in it go unused.
    let mut hops: HashMap<i64, Vec<NextHop>> = HashMap::with_capacity(rows.len());
    {
        let mut stmt = tx.prepare_cached(
            "SELECT route_id, via FROM route_next_hops
             WHERE route_id BETWEEN ?1 AND ?2 ORDER BY route_id, idx",
        )?;
        let mut q = stmt.query(rusqlite::params![lo, hi])?;
        while let Some(r) = q.next()? {
            let rid: i64 = r.get(0)?;
            let via: String = r.get(1)?;
            let via: Ipv4Addr = via.parse().map_err(|_| bad_row("next hop", &via))?;
            hops.entry(rid).or_default().push(NextHop { via });
        }
    }
    rows.into_iter()
        .map(|(id, prefix, len, blackhole, tunnel, tunnel_id)| {
            let addr: Ipv4Addr = prefix.parse().map_err(|_| bad_row("prefix", &prefix))?;
            Ok(Route {
                id,
                org: org.into(),
                prefix: Cidr { addr, len },
                next_hops: hops.remove(&id).unwrap_or_default(),
                blackhole,
                tunnel,
                tunnel_id,
            })
        })
        .collect()
}

/// The routes of `org` with these prefixes (absent ones are left out),
/// each found through the (org, prefix) index.
fn load_prefixes(
    tx: &Transaction<'_>,
    org_id: i64,
    org: &str,
    prefixes: &[Cidr],
) -> Result<Vec<Route>> {
    let mut by_prefix = tx.prepare_cached(
        "SELECT r.id, r.blackhole, t.name, r.tunnel_id FROM routes r LEFT JOIN wg_tunnels t ON t.id = r.tunnel_id
         WHERE r.org_id = ?1 AND r.prefix = ?2 AND r.prefix_len = ?3",
    )?;
    let mut hops =
        tx.prepare_cached("SELECT via FROM route_next_hops WHERE route_id = ?1 ORDER BY idx")?;
    let mut out = Vec::with_capacity(prefixes.len());
    for &prefix in prefixes {
        let found = by_prefix
            .query_row(
                rusqlite::params![org_id, prefix.addr.to_string(), prefix.len],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, bool>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, Option<i64>>(3)?,
                    ))
                },
            )
            .optional()?;
        let Some((id, blackhole, tunnel, tunnel_id)) = found else {
            continue;
        };
        let vias = hops
            .query_map([id], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let next_hops = vias
            .iter()
            .map(|v| {
                v.parse()
                    .map(|via| NextHop { via })
                    .map_err(|_| bad_row("next hop", v))
            })
            .collect::<Result<Vec<_>>>()?;
        out.push(Route {
            id,
            org: org.into(),
            prefix,
            next_hops,
            blackhole,
            tunnel,
            tunnel_id,
        });
    }
    Ok(out)
}

fn find(tx: &Transaction<'_>, org_id: i64, org: &str, id: i64) -> Result<Route> {
    load(tx, org_id, org, Some(id), None)?
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

fn insert(tx: &Transaction<'_>, org_id: i64, def: &RouteDef, tunnel: Option<i64>) -> Result<i64> {
    tx.execute(
        "INSERT INTO routes (org_id, prefix, prefix_len, blackhole, tunnel_id)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        rusqlite::params![
            org_id,
            def.prefix.addr.to_string(),
            def.prefix.len,
            def.blackhole,
            tunnel
        ],
    )?;
    let id = tx.last_insert_rowid();
    write_next_hops(tx, id, def)?;
    Ok(id)
}

fn update(tx: &Transaction<'_>, id: i64, def: &RouteDef, tunnel: Option<i64>) -> Result<()> {
    tx.execute(
        "UPDATE routes SET prefix = ?1, prefix_len = ?2, blackhole = ?3, tunnel_id = ?4
         WHERE id = ?5",
        rusqlite::params![
            def.prefix.addr.to_string(),
            def.prefix.len,
            def.blackhole,
            tunnel,
            id
        ],
    )?;
    write_next_hops(tx, id, def)
}

impl Store {
    pub fn list_routes(&mut self, org: &str) -> Result<Vec<Route>> {
        self.read(|tx| load_routes(tx, org_id(tx, org)?, org))
    }

    /// One page of the organization's routes, in id order.
    pub fn list_routes_page(&mut self, org: &str, page: Option<Page>) -> Result<Vec<Route>> {
        self.read(|tx| load(tx, org_id(tx, org)?, org, None, page))
    }

    /// The organization's routes with these prefixes (missing ones left
    /// out); an indexed lookup per prefix.
    pub fn routes_with_prefixes(&mut self, org: &str, prefixes: &[Cidr]) -> Result<Vec<Route>> {
        self.read(|tx| load_prefixes(tx, org_id(tx, org)?, org, prefixes))
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
            let tunnel = resolve_tunnel(tx, def)?;
            let id = insert(tx, oid, def, tunnel)?;
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
            let tunnel = resolve_tunnel(tx, def)?;
            update(tx, id, def, tunnel)?;
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
            let mut tunnels = Vec::with_capacity(defs.len());
            for (i, def) in defs.iter().enumerate() {
                let at = format!("routes[{i}].");
                if !seen.insert(def.prefix) {
                    return Err(Error::conflict(
                        format!("{at}prefix"),
                        format!("{} is listed twice", def.prefix),
                    ));
                }
                check_next_hops(def, &subnets).map_err(|e| e.nested(&at))?;
                tunnels.push(resolve_tunnel(tx, def).map_err(|e| e.nested(&at))?);
            }
            for old in load_routes(tx, oid, org)? {
                if !seen.contains(&old.prefix) {
                    tx.execute("DELETE FROM routes WHERE id = ?1", [old.id])?;
                }
            }
            for (def, tunnel) in defs.iter().zip(tunnels) {
                match route_with_prefix(tx, oid, def.prefix)? {
                    Some(id) => update(tx, id, def, tunnel)?,
                    None => {
                        insert(tx, oid, def, tunnel)?;
                    }
                }
            }
            load_routes(tx, oid, org)
        })
    }
}
