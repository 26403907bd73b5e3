//! Organizations (tenants) in the store.

use rusqlite::OptionalExtension;

use super::{org_id, Store};
use crate::error::{Error, Result};
use crate::model::{validate_org_name, OrgSpec, Organization, DEFAULT_ORG};

impl Store {
    pub fn list_orgs(&mut self) -> Result<Vec<Organization>> {
        self.read(|tx| {
            let mut stmt = tx.prepare("SELECT name FROM organizations ORDER BY name")?;
            let rows = stmt.query_map([], |r| Ok(Organization { name: r.get(0)? }))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    pub fn get_org(&mut self, org: &str) -> Result<Organization> {
        self.read(|tx| {
            org_id(tx, org)?;
            Ok(Organization { name: org.into() })
        })
    }

    pub fn create_org(&mut self, spec: &OrgSpec) -> Result<Organization> {
        validate_org_name("name", &spec.name)?;
        self.change(|tx| {
            let exists = tx
                .query_row(
                    "SELECT 1 FROM organizations WHERE name = ?1",
                    [&spec.name],
                    |_| Ok(()),
                )
                .optional()?
                .is_some();
            if exists {
                return Err(Error::conflict(
                    "name",
                    format!("organization {:?} already exists", spec.name),
                ));
            }
            tx.execute("INSERT INTO organizations (name) VALUES (?1)", [&spec.name])?;
            Ok(Organization {
                name: spec.name.clone(),
            })
        })
    }

    /// Deletes an empty organization other than the default one.
    pub fn delete_org(&mut self, org: &str) -> Result<()> {
        self.change(|tx| {
            let id = org_id(tx, org)?;
            if org == DEFAULT_ORG {
                return Err(Error::conflict(
                    "org",
                    "the default organization cannot be deleted",
                ));
            }
            let used: i64 = tx.query_row(
                "SELECT (SELECT COUNT(*) FROM interfaces WHERE org_id = ?1)
                      + (SELECT COUNT(*) FROM routes WHERE org_id = ?1)",
                [id],
                |r| r.get(0),
            )?;
            if used > 0 {
                return Err(Error::conflict(
                    "org",
                    format!("organization {org:?} still has {used} interfaces/routes"),
                ));
            }
            tx.execute("DELETE FROM organizations WHERE id = ?1", [id])?;
            Ok(())
        })
    }
}
