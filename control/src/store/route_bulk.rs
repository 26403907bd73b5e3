//! Bulk route changes: many deletions and additions in one transaction (all
//! or nothing), with prepared statements so a million routes load in
//! seconds. Errors name the entry: `add[12].prefix`, `delete[3]`.

use std::collections::HashSet;

use rusqlite::{ErrorCode, OptionalExtension, Transaction};

use super::interfaces::{connected, load_interfaces};
use super::routes::resolve_tunnel;
use super::{org_id, Store};
use crate::error::{Error, Result};
use crate::model::{check_next_hops, Cidr, RouteDef};

/// A validated bulk request. Deletions are applied first, so a prefix may
/// be deleted and added again in one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BulkRoutes {
    pub add: Vec<RouteDef>,
    /// Route ids to delete.
    pub delete: Vec<i64>,
    /// Prefixes whose routes to delete.
    pub delete_prefixes: Vec<Cidr>,
}

/// What a bulk request did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkOutcome {
    pub added: usize,
    pub deleted: usize,
    /// The desired-state generation after the change.
    pub generation: u64,
    /// Every prefix added or deleted (for the push to the engine).
    pub prefixes: Vec<Cidr>,
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::ConstraintViolation)
}

fn stored_prefix(prefix: &str, len: u8) -> Result<Cidr> {
    let addr = prefix
        .parse()
        .map_err(|_| Error::Storage(format!("bad prefix in store: {prefix:?}")))?;
    Ok(Cidr { addr, len })
}

fn apply(tx: &Transaction<'_>, org: &str, req: &BulkRoutes) -> Result<Vec<Cidr>> {
    let oid = org_id(tx, org)?;
    let mut touched = Vec::with_capacity(req.add.len() + req.delete.len());

    let mut ids = HashSet::with_capacity(req.delete.len());
    let mut by_id = tx.prepare_cached(
        "DELETE FROM routes WHERE id = ?1 AND org_id = ?2 RETURNING prefix, prefix_len",
    )?;
    for (i, &id) in req.delete.iter().enumerate() {
        let field = format!("delete[{i}]");
        if !ids.insert(id) {
            return Err(Error::conflict(
                field,
                format!("route {id} is listed twice"),
            ));
        }
        let gone = by_id
            .query_row(rusqlite::params![id, oid], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, u8>(1)?))
            })
            .optional()?
            .ok_or_else(|| {
                Error::not_found(
                    &field,
                    format!("route {id} does not exist in organization {org:?}"),
                )
            })?;
        touched.push(stored_prefix(&gone.0, gone.1)?);
    }

    let mut by_prefix = tx.prepare_cached(
        "DELETE FROM routes WHERE org_id = ?1 AND prefix = ?2 AND prefix_len = ?3 RETURNING id",
    )?;
    for (i, &prefix) in req.delete_prefixes.iter().enumerate() {
        let field = format!("delete_prefixes[{i}]");
        let gone = by_prefix
            .query_row(
                rusqlite::params![oid, prefix.addr.to_string(), prefix.len],
                |r| r.get::<_, i64>(0),
            )
            .optional()?;
        if gone.is_none() {
            // Deleted already by an earlier entry, or never there.
            let msg = if touched.contains(&prefix) {
                format!("{prefix} is listed twice")
            } else {
                format!("no route for {prefix} in organization {org:?}")
            };
            return Err(if touched.contains(&prefix) {
                Error::conflict(field, msg)
            } else {
                Error::not_found(field, msg)
            });
        }
        touched.push(prefix);
    }

    let subnets = connected(&load_interfaces(tx, oid, org)?);
    let mut seen = HashSet::with_capacity(req.add.len());
    let mut route = tx.prepare_cached(
        "INSERT INTO routes (org_id, prefix, prefix_len, blackhole, tunnel_id)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let mut hop =
        tx.prepare_cached("INSERT INTO route_next_hops (route_id, idx, via) VALUES (?1, ?2, ?3)")?;
    let mut existing = tx.prepare_cached(
        "SELECT id FROM routes WHERE org_id = ?1 AND prefix = ?2 AND prefix_len = ?3",
    )?;
    for (i, def) in req.add.iter().enumerate() {
        let at = format!("add[{i}].");
        if !seen.insert(def.prefix) {
            return Err(Error::conflict(
                format!("{at}prefix"),
                format!("{} is listed twice", def.prefix),
            ));
        }
        check_next_hops(def, &subnets).map_err(|e| e.nested(&at))?;
        let tunnel = resolve_tunnel(tx, def).map_err(|e| e.nested(&at))?;
        let addr = def.prefix.addr.to_string();
        match route.execute(rusqlite::params![
            oid,
            addr,
            def.prefix.len,
            def.blackhole,
            tunnel
        ]) {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                let id: Option<i64> = existing
                    .query_row(rusqlite::params![oid, addr, def.prefix.len], |r| r.get(0))
                    .optional()?;
                let id = id.map_or_else(String::new, |id| format!(" (id {id})"));
                return Err(Error::conflict(
                    format!("{at}prefix"),
                    format!("a route for {} already exists{id}", def.prefix),
                ));
            }
            Err(e) => return Err(e.into()),
        }
        let id = tx.last_insert_rowid();
        for (idx, via) in def.next_hops.iter().enumerate() {
            hop.execute(rusqlite::params![id, idx, via.to_string()])?;
        }
        touched.push(def.prefix);
    }
    Ok(touched)
}

impl Store {
    /// Applies a bulk request in one transaction: every deletion, then every
    /// addition, or nothing.
    pub fn bulk_routes(&mut self, org: &str, req: &BulkRoutes) -> Result<BulkOutcome> {
        let prefixes = self.change(|tx| apply(tx, org, req))?;
        Ok(BulkOutcome {
            added: req.add.len(),
            deleted: req.delete.len() + req.delete_prefixes.len(),
            generation: self.generation()?,
            prefixes,
        })
    }
}
