//! The store's schema and its creation/migration. The `meta` table holds the
//! schema version and the desired-state generation.

use rusqlite::{Connection, OptionalExtension};

use crate::error::{Error, Result};
use crate::model::DEFAULT_ORG;

/// Version of the schema below; stored in `meta.schema_version`.
pub const SCHEMA_VERSION: i64 = 6;

const SCHEMA_V1: &str = "
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE organizations (
    id   INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE
);
-- One address per (port, vlan) on the whole box: ports are physical and shared
-- by tenants, who are separated by VLAN. vlan 0 means untagged.
CREATE TABLE interfaces (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id     INTEGER NOT NULL REFERENCES organizations(id),
    port       TEXT NOT NULL,
    vlan       INTEGER NOT NULL CHECK (vlan BETWEEN 0 AND 4094),
    address    TEXT NOT NULL,
    prefix_len INTEGER NOT NULL CHECK (prefix_len BETWEEN 1 AND 32),
    UNIQUE (port, vlan)
);
CREATE TABLE routes (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id     INTEGER NOT NULL REFERENCES organizations(id),
    prefix     TEXT NOT NULL,
    prefix_len INTEGER NOT NULL CHECK (prefix_len BETWEEN 0 AND 32),
    blackhole  INTEGER NOT NULL CHECK (blackhole IN (0, 1)),
    UNIQUE (org_id, prefix, prefix_len)
);
CREATE TABLE route_next_hops (
    route_id INTEGER NOT NULL REFERENCES routes(id) ON DELETE CASCADE,
    idx      INTEGER NOT NULL,
    via      TEXT NOT NULL,
    PRIMARY KEY (route_id, idx)
);
";

/// Creates the schema on an empty database, or checks the version of an existing one.
pub fn migrate(conn: &mut Connection) -> Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let has_meta: bool = tx
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
            [],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    if has_meta {
        let version: Option<i64> = tx
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        return match version {
            Some(SCHEMA_VERSION) => Ok(()),
            // Version 2 added the NAT tables, version 3 the WireGuard
            // tables and routes into tunnels, version 4 the model registry,
            // version 5 the load balancer's VIPs and backends, version 6
            // BGP (global settings, neighbors, policies, networks).
            Some(v @ (1..=5)) => {
                if v == 1 {
                    tx.execute_batch(super::nat::SCHEMA_NAT)?;
                }
                if v <= 2 {
                    tx.execute_batch(super::wg::SCHEMA_WG)?;
                }
                if v <= 3 {
                    tx.execute_batch(super::models::SCHEMA_MODELS)?;
                }
                if v <= 4 {
                    tx.execute_batch(super::lb::SCHEMA_LB)?;
                }
                tx.execute_batch(super::bgp::SCHEMA_BGP)?;
                tx.execute(
                    "UPDATE meta SET value = ?1 WHERE key = 'schema_version'",
                    [SCHEMA_VERSION],
                )?;
                tx.commit()?;
                Ok(())
            }
            Some(v) => Err(Error::Storage(format!(
                "database schema version {v} is not supported (this build knows {SCHEMA_VERSION})"
            ))),
            None => Err(Error::Storage("database has no schema_version".into())),
        };
    }
    tx.execute_batch(SCHEMA_V1)?;
    tx.execute_batch(super::nat::SCHEMA_NAT)?;
    tx.execute_batch(super::wg::SCHEMA_WG)?;
    tx.execute_batch(super::models::SCHEMA_MODELS)?;
    tx.execute_batch(super::lb::SCHEMA_LB)?;
    tx.execute_batch(super::bgp::SCHEMA_BGP)?;
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('schema_version', ?1), ('generation', 0)",
        [SCHEMA_VERSION],
    )?;
    tx.execute(
        "INSERT INTO organizations (name) VALUES (?1)",
        [DEFAULT_ORG],
    )?;
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_database_gets_schema_default_org_and_generation_zero() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        migrate(&mut conn).unwrap(); // idempotent on a current schema
        let orgs: Vec<String> = conn
            .prepare("SELECT name FROM organizations")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(orgs, vec![DEFAULT_ORG.to_owned()]);
        let g: i64 = conn
            .query_row("SELECT value FROM meta WHERE key = 'generation'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(g, 0);
    }

    #[test]
    fn version_1_gains_the_nat_tables() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(SCHEMA_V1).unwrap();
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', 1), ('generation', 5)",
            [],
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let v: i64 = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        let n: i64 = conn
            .query_row("SELECT count(*) FROM nat_forwards", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0);
        migrate(&mut conn).unwrap();
    }

    #[test]
    fn version_2_gains_the_wireguard_tables_and_keeps_routes() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(SCHEMA_V1).unwrap();
        conn.execute_batch(super::super::nat::SCHEMA_NAT).unwrap();
        conn.execute_batch(
            "INSERT INTO meta (key, value) VALUES ('schema_version', 2), ('generation', 9);
             INSERT INTO organizations (name) VALUES ('default');
             INSERT INTO routes (org_id, prefix, prefix_len, blackhole) VALUES (1, '10.0.0.0', 8, 1);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let v: i64 = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        let (n, tunnel): (i64, Option<i64>) = conn
            .query_row("SELECT count(*), max(tunnel_id) FROM routes", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(
            (n, tunnel),
            (1, None),
            "the old route stays, into no tunnel"
        );
        let peers: i64 = conn
            .query_row("SELECT count(*) FROM wg_peers", [], |r| r.get(0))
            .unwrap();
        assert_eq!(peers, 0);
        migrate(&mut conn).unwrap();
    }

    #[test]
    fn version_3_gains_the_model_registry() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(SCHEMA_V1).unwrap();
        conn.execute_batch(super::super::nat::SCHEMA_NAT).unwrap();
        conn.execute_batch(super::super::wg::SCHEMA_WG).unwrap();
        conn.execute_batch(
            "INSERT INTO meta (key, value) VALUES ('schema_version', 3), ('generation', 9);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let (models, counter): (i64, i64) = conn
            .query_row(
                "SELECT (SELECT count(*) FROM models),
                        (SELECT value FROM meta WHERE key = 'model_version')",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((models, counter), (0, 0));
        migrate(&mut conn).unwrap();
    }

    #[test]
    fn version_4_gains_the_load_balancer_tables() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(SCHEMA_V1).unwrap();
        conn.execute_batch(super::super::nat::SCHEMA_NAT).unwrap();
        conn.execute_batch(super::super::wg::SCHEMA_WG).unwrap();
        conn.execute_batch(super::super::models::SCHEMA_MODELS)
            .unwrap();
        conn.execute_batch(
            "INSERT INTO meta (key, value) VALUES ('schema_version', 4), ('generation', 9);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let (vips, backends, v): (i64, i64, i64) = conn
            .query_row(
                "SELECT (SELECT count(*) FROM lb_vips), (SELECT count(*) FROM lb_backends),
                        (SELECT value FROM meta WHERE key = 'schema_version')",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!((vips, backends, v), (0, 0, SCHEMA_VERSION));
        migrate(&mut conn).unwrap();
    }

    #[test]
    fn version_5_gains_the_bgp_tables_and_keeps_vips() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(SCHEMA_V1).unwrap();
        conn.execute_batch(super::super::nat::SCHEMA_NAT).unwrap();
        conn.execute_batch(super::super::wg::SCHEMA_WG).unwrap();
        conn.execute_batch(super::super::models::SCHEMA_MODELS)
            .unwrap();
        conn.execute_batch(super::super::lb::SCHEMA_LB).unwrap();
        conn.execute_batch(
            "INSERT INTO meta (key, value) VALUES ('schema_version', 5), ('generation', 9);
             INSERT INTO lb_vips (name, address, port, protocol, mode, table_size)
             VALUES ('web', '10.9.0.100', 80, 'tcp', 'nat', 65537);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let (vips, neighbors, policies, networks, global, v): (i64, i64, i64, i64, i64, i64) = conn
            .query_row(
                "SELECT (SELECT count(*) FROM lb_vips), (SELECT count(*) FROM bgp_neighbors),
                        (SELECT count(*) FROM bgp_policies), (SELECT count(*) FROM bgp_networks),
                        (SELECT count(*) FROM bgp_global),
                        (SELECT value FROM meta WHERE key = 'schema_version')",
                [],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                },
            )
            .unwrap();
        assert_eq!(
            (vips, neighbors, policies, networks, global, v),
            (1, 0, 0, 0, 0, SCHEMA_VERSION)
        );
        assert_eq!(SCHEMA_VERSION, 6);
        migrate(&mut conn).unwrap();
    }

    #[test]
    fn newer_schema_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        conn.execute(
            "UPDATE meta SET value = 99 WHERE key = 'schema_version'",
            [],
        )
        .unwrap();
        let e = migrate(&mut conn).unwrap_err();
        assert!(matches!(e, Error::Storage(m) if m.contains("99")));
    }
}
