//! Interfaces (port, VLAN, address/subnet) in the store.

use std::net::Ipv4Addr;

use rusqlite::{OptionalExtension, Transaction};

use super::nat::check_not_nat_outside;
use super::routes::load_routes;
use super::{org_id, Store};
use crate::error::{Error, Result};
use crate::model::{check_next_hops, Cidr, Interface, InterfaceDef, DEFAULT_ORG};

/// All interfaces of one organization, by id.
pub(super) fn load_interfaces(
    tx: &Transaction<'_>,
    org_id: i64,
    org: &str,
) -> Result<Vec<Interface>> {
    let mut stmt = tx.prepare(
        "SELECT id, port, vlan, address, prefix_len FROM interfaces WHERE org_id = ?1 ORDER BY id",
    )?;
    let rows = stmt
        .query_map([org_id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, u16>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, u8>(4)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(|(id, port, vlan, address, len)| {
            let addr: Ipv4Addr = address
                .parse()
                .map_err(|_| Error::Storage(format!("interface {id}: bad address {address:?}")))?;
            Ok(Interface {
                id,
                org: org.into(),
                port,
                address: Cidr { addr, len },
                vlan: (vlan != 0).then_some(vlan),
            })
        })
        .collect()
}

/// Subnets of the organization's interfaces, as the routes' next hops see them.
pub(super) fn connected(ifs: &[Interface]) -> Vec<Cidr> {
    ifs.iter().map(|i| i.address).collect()
}

/// Checks that every route of the organization still resolves over `subnets`;
/// a violation is a conflict reported on `field`.
fn check_routes_still_resolve(
    tx: &Transaction<'_>,
    org_id: i64,
    org: &str,
    subnets: &[Cidr],
    field: &str,
) -> Result<()> {
    for route in load_routes(tx, org_id, org)? {
        let def = route.def();
        if let Err(e) = check_next_hops(&def, subnets) {
            return Err(Error::conflict(
                field,
                format!(
                    "route {} (id {}) would no longer resolve: {e}",
                    route.prefix, route.id
                ),
            ));
        }
    }
    Ok(())
}

fn vlan_text(vlan: Option<u16>) -> String {
    vlan.map_or_else(|| "untagged".into(), |v| format!("VLAN {v}"))
}

/// Rules shared by create and replace; `except` is the interface being replaced.
fn check_interface(
    tx: &Transaction<'_>,
    org_id: i64,
    org: &str,
    def: &InterfaceDef,
    except: Option<i64>,
) -> Result<Vec<Interface>> {
    let taken: Option<i64> = tx
        .query_row(
            "SELECT id FROM interfaces WHERE port = ?1 AND vlan = ?2 AND id IS NOT ?3",
            rusqlite::params![def.port, def.vlan.unwrap_or(0), except],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(id) = taken {
        return Err(Error::conflict(
            "port",
            format!(
                "port {} {} already has an interface (id {id})",
                def.port,
                vlan_text(def.vlan)
            ),
        ));
    }
    let mut ifs = load_interfaces(tx, org_id, org)?;
    ifs.retain(|i| Some(i.id) != except);
    if let Some(other) = ifs.iter().find(|i| i.address.overlaps(def.address)) {
        return Err(Error::conflict(
            "address",
            format!(
                "{} overlaps interface {} ({})",
                def.address, other.id, other.address
            ),
        ));
    }
    Ok(ifs)
}

impl Store {
    pub fn list_interfaces(&mut self, org: &str) -> Result<Vec<Interface>> {
        self.read(|tx| load_interfaces(tx, org_id(tx, org)?, org))
    }

    pub fn get_interface(&mut self, org: &str, id: i64) -> Result<Interface> {
        self.read(|tx| find(tx, org, id))
    }

    pub fn create_interface(&mut self, org: &str, def: &InterfaceDef) -> Result<Interface> {
        self.change(|tx| {
            let oid = org_id(tx, org)?;
            check_interface(tx, oid, org, def, None)?;
            tx.execute(
                "INSERT INTO interfaces (org_id, port, vlan, address, prefix_len) VALUES (?1, ?2, ?3, ?4, ?5)",
                rusqlite::params![oid, def.port, def.vlan.unwrap_or(0), def.address.addr.to_string(), def.address.len],
            )?;
            find(tx, org, tx.last_insert_rowid())
        })
    }

    pub fn replace_interface(
        &mut self,
        org: &str,
        id: i64,
        def: &InterfaceDef,
    ) -> Result<Interface> {
        self.change(|tx| {
            let oid = org_id(tx, org)?;
            let old = find(tx, org, id)?;
            if org == DEFAULT_ORG && (old.port != def.port || old.vlan != def.vlan) {
                check_not_nat_outside(tx, &old.port, old.vlan, "port")?;
            }
            let others = check_interface(tx, oid, org, def, Some(id))?;
            let mut subnets = connected(&others);
            subnets.push(def.address);
            check_routes_still_resolve(tx, oid, org, &subnets, "address")?;
            tx.execute(
                "UPDATE interfaces SET port = ?1, vlan = ?2, address = ?3, prefix_len = ?4 WHERE id = ?5",
                rusqlite::params![def.port, def.vlan.unwrap_or(0), def.address.addr.to_string(), def.address.len, id],
            )?;
            find(tx, org, id)
        })
    }

    pub fn delete_interface(&mut self, org: &str, id: i64) -> Result<()> {
        self.change(|tx| {
            let oid = org_id(tx, org)?;
            let old = find(tx, org, id)?;
            if org == DEFAULT_ORG {
                check_not_nat_outside(tx, &old.port, old.vlan, "id")?;
            }
            let mut ifs = load_interfaces(tx, oid, org)?;
            ifs.retain(|i| i.id != id);
            check_routes_still_resolve(tx, oid, org, &connected(&ifs), "id")?;
            tx.execute("DELETE FROM interfaces WHERE id = ?1", [id])?;
            Ok(())
        })
    }
}

/// Interface `id` of organization `org`, or 404 (`org` or `id`).
fn find(tx: &Transaction<'_>, org: &str, id: i64) -> Result<Interface> {
    let oid = org_id(tx, org)?;
    load_interfaces(tx, oid, org)?
        .into_iter()
        .find(|i| i.id == id)
        .ok_or_else(|| {
            Error::not_found(
                "id",
                format!("interface {id} does not exist in organization {org:?}"),
            )
        })
}
