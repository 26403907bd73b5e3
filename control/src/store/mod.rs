//! The embedded desired-state store (SQLite through rusqlite). One `Store`
//! owns one connection and is owned by the store actor (`crate::state`);
//! every change runs in one immediate transaction that also bumps the
//! desired-state generation, so a failed request changes nothing.

mod bgp;
mod interfaces;
mod lb;
mod models;
mod nat;
mod orgs;
mod route_bulk;
mod routes;
mod schema;
mod wg;

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior};

use crate::error::{Error, Result};

pub use models::ActiveModelBytes;
pub use nat::EnginePorts;
pub use route_bulk::{BulkOutcome, BulkRoutes};
pub use routes::Page;
pub use schema::SCHEMA_VERSION;
pub use wg::{WgPeerRow, WgState, WgTunnelRow};

/// The desired state on disk (or in memory for tests).
pub struct Store {
    conn: Connection,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.conn.path())
            .finish()
    }
}

impl Store {
    /// Opens (creating if needed) the store at `path`, creating its parent
    /// directory, the schema and the default organization on first start.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::Storage(format!("creating {}: {e}", dir.display())))?;
        }
        // Desired state may hold secrets later (tunnel keys): create it 0600.
        // SQLite gives its -wal and -shm files the same mode.
        if !path.exists() {
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(path)
                .map_err(|e| Error::Storage(format!("creating {}: {e}", path.display())))?;
        }
        let conn = Connection::open(path)?;
        // WAL + FULL sync: a change acknowledged to a client survives power loss.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        let store = Self::init(conn)?;
        // WireGuard keys live here: a database created by an older build
        // (or by hand) may be wider than 0600, so narrow it and its WAL
        // and shared-memory files (which SQLite creates with the
        // database's mode) on every start.
        restrict_to_owner(path)?;
        Ok(store)
    }

    /// A private in-memory store (tests, `--db :memory:`).
    pub fn open_in_memory() -> Result<Store> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(mut conn: Connection) -> Result<Store> {
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        schema::migrate(&mut conn)?;
        Ok(Store { conn })
    }

    /// Runs `f` in one immediate transaction, bumping the generation if it
    /// succeeds; on error everything is rolled back.
    fn change<T>(&mut self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.execute(
            "UPDATE meta SET value = value + 1 WHERE key = 'generation'",
            [],
        )?;
        tx.commit()?;
        Ok(out)
    }

    /// Runs a read-only `f` in one transaction (a consistent snapshot).
    fn read<T>(&mut self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let tx = self.conn.transaction()?;
        let out = f(&tx)?;
        tx.finish()?;
        Ok(out)
    }

    /// The desired-state generation: increases by one on every successful change.
    pub fn generation(&mut self) -> Result<u64> {
        self.read(|tx| meta_value(tx, "generation"))
    }
}

/// Makes the database file and its `-wal`/`-shm` companions (those that
/// exist) mode 0600.
fn restrict_to_owner(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut names = vec![path.as_os_str().to_owned()];
    for suffix in ["-wal", "-shm"] {
        let mut n = path.as_os_str().to_owned();
        n.push(suffix);
        names.push(n);
    }
    for name in names {
        let p = Path::new(&name);
        match std::fs::metadata(p) {
            Ok(m) if m.permissions().mode() & 0o077 != 0 => {
                std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600))
                    .map_err(|e| Error::Storage(format!("chmod 0600 {}: {e}", p.display())))?;
            }
            _ => {}
        }
    }
    Ok(())
}

fn meta_value(tx: &Transaction<'_>, key: &str) -> Result<u64> {
    let v: Option<i64> = tx
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()?;
    let v = v.ok_or_else(|| Error::Storage(format!("meta key {key} missing")))?;
    u64::try_from(v).map_err(|_| Error::Storage(format!("meta key {key} is negative")))
}

/// The row id of organization `org`, or 404 naming the `org` path parameter.
fn org_id(tx: &Transaction<'_>, org: &str) -> Result<i64> {
    tx.query_row("SELECT id FROM organizations WHERE name = ?1", [org], |r| {
        r.get(0)
    })
    .optional()?
    .ok_or_else(|| Error::not_found("org", format!("organization {org:?} does not exist")))
}
