//! BGP desired state in the store: the global settings (one row), neighbors
//! by address, policies by name (their canonical JSON), originated
//! networks by prefix. Checks against stored state: unique neighbors and
//! networks, policies a neighbor names exist (400 on the field), a policy
//! in use is not deleted (409), the limits.

use std::net::IpAddr;

use patronus_bgp::policy::PolicyConfig;
use patronus_bgp::types::Prefix;
use rusqlite::{OptionalExtension, Transaction};

use super::Store;
use crate::bgp::model::{
    parse_prefix, BgpDesired, BgpGlobal, Family, Neighbor, NeighborDef, NeighborPatch,
    MAX_NEIGHBORS, MAX_NETWORKS, MAX_POLICIES,
};
use crate::error::{Error, Result};

pub(super) const SCHEMA_BGP: &str = "
CREATE TABLE bgp_global (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    asn         INTEGER NOT NULL CHECK (asn BETWEEN 1 AND 4294967295),
    router_id   TEXT NOT NULL,
    listen_port INTEGER NOT NULL CHECK (listen_port BETWEEN 1 AND 65535),
    enabled     INTEGER NOT NULL CHECK (enabled IN (0, 1))
);
CREATE TABLE bgp_policies (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    name   TEXT NOT NULL UNIQUE,
    config TEXT NOT NULL
);
CREATE TABLE bgp_neighbors (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    address            TEXT NOT NULL UNIQUE,
    remote_as          INTEGER NOT NULL CHECK (remote_as BETWEEN 1 AND 4294967295),
    description        TEXT,
    local_address      TEXT,
    hold_time_secs     INTEGER NOT NULL CHECK (hold_time_secs BETWEEN 0 AND 65535),
    connect_retry_secs INTEGER NOT NULL CHECK (connect_retry_secs BETWEEN 1 AND 65535),
    passive            INTEGER NOT NULL CHECK (passive IN (0, 1)),
    ipv4_unicast       INTEGER NOT NULL CHECK (ipv4_unicast IN (0, 1)),
    ipv6_unicast       INTEGER NOT NULL CHECK (ipv6_unicast IN (0, 1)),
    graceful_restart   INTEGER NOT NULL CHECK (graceful_restart IN (0, 1)),
    restart_time_secs  INTEGER NOT NULL CHECK (restart_time_secs BETWEEN 0 AND 4095),
    import_policy      TEXT REFERENCES bgp_policies(name),
    export_policy      TEXT REFERENCES bgp_policies(name),
    enabled            INTEGER NOT NULL CHECK (enabled IN (0, 1))
);
CREATE TABLE bgp_networks (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    prefix TEXT NOT NULL UNIQUE
);
";

fn bad_row(what: &str) -> Error {
    Error::Storage(format!("bad {what} in the BGP tables"))
}

fn load_global(tx: &Transaction<'_>) -> Result<Option<BgpGlobal>> {
    let row: Option<(u32, String, u16, bool)> = tx
        .query_row(
            "SELECT asn, router_id, listen_port, enabled FROM bgp_global WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    row.map(|(asn, router_id, listen_port, enabled)| {
        Ok(BgpGlobal {
            asn,
            router_id: router_id.parse().map_err(|_| bad_row("router id"))?,
            listen_port,
            enabled,
        })
    })
    .transpose()
}

const NEIGHBOR_COLUMNS: &str = "address, remote_as, description, local_address, hold_time_secs,
    connect_retry_secs, passive, ipv4_unicast, ipv6_unicast, graceful_restart, restart_time_secs,
    import_policy, export_policy, enabled";

fn neighbor_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<NeighborDef>> {
    let address: String = r.get(0)?;
    let local: Option<String> = r.get(3)?;
    let (v4, v6): (bool, bool) = (r.get(7)?, r.get(8)?);
    let mut families = Vec::new();
    if v4 {
        families.push(Family::Ipv4Unicast);
    }
    if v6 {
        families.push(Family::Ipv6Unicast);
    }
    let parse = |t: &str, what: &str| t.parse::<IpAddr>().map_err(|_| bad_row(what));
    let address = match parse(&address, "neighbor address") {
        Ok(a) => a,
        Err(e) => return Ok(Err(e)),
    };
    let local_address = match local.map(|t| parse(&t, "local address")).transpose() {
        Ok(a) => a,
        Err(e) => return Ok(Err(e)),
    };
    Ok(Ok(NeighborDef {
        address,
        remote_as: r.get(1)?,
        description: r.get(2)?,
        local_address,
        hold_time_secs: r.get(4)?,
        connect_retry_secs: r.get(5)?,
        passive: r.get(6)?,
        families,
        graceful_restart: r.get(9)?,
        restart_time_secs: r.get(10)?,
        import_policy: r.get(11)?,
        export_policy: r.get(12)?,
        enabled: r.get(13)?,
    }))
}

/// Neighbors (all, or the one at `address`), by address text.
fn load_neighbors(tx: &Transaction<'_>, address: Option<IpAddr>) -> Result<Vec<NeighborDef>> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {NEIGHBOR_COLUMNS} FROM bgp_neighbors WHERE ?1 IS NULL OR address = ?1
         ORDER BY address"
    ))?;
    let rows = stmt
        .query_map([address.map(|a| a.to_string())], neighbor_of)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut list = rows.into_iter().collect::<Result<Vec<_>>>()?;
    // Text order puts 10.x before 9.x; address order reads better.
    list.sort_by_key(|n| n.address);
    Ok(list)
}

fn neighbor_at(tx: &Transaction<'_>, address: IpAddr) -> Result<NeighborDef> {
    load_neighbors(tx, Some(address))?
        .pop()
        .ok_or_else(|| Error::not_found("address", format!("no BGP neighbor {address}")))
}

fn with_local_as(tx: &Transaction<'_>, def: NeighborDef) -> Result<Neighbor> {
    Ok(Neighbor {
        def,
        local_as: load_global(tx)?.map(|g| g.asn),
    })
}

fn count(tx: &Transaction<'_>, sql: &str) -> Result<usize> {
    let n: i64 = tx.query_row(sql, [], |r| r.get(0))?;
    Ok(usize::try_from(n).unwrap_or(0))
}

fn policy_exists(tx: &Transaction<'_>, name: &str) -> Result<bool> {
    Ok(tx
        .query_row("SELECT 1 FROM bgp_policies WHERE name = ?1", [name], |_| {
            Ok(())
        })
        .optional()?
        .is_some())
}

/// 400 naming `import_policy` / `export_policy` when `def` names a policy
/// that does not exist.
fn check_policies(tx: &Transaction<'_>, def: &NeighborDef) -> Result<()> {
    for (field, name) in [
        ("import_policy", &def.import_policy),
        ("export_policy", &def.export_policy),
    ] {
        if let Some(n) = name {
            if !policy_exists(tx, n)? {
                return Err(Error::invalid(
                    field,
                    format!("no BGP policy named {n:?} (PUT /api/v1/bgp/policies/{n} first)"),
                ));
            }
        }
    }
    Ok(())
}

fn write_neighbor(tx: &Transaction<'_>, def: &NeighborDef, update: bool) -> Result<()> {
    let params = rusqlite::params![
        def.address.to_string(),
        def.remote_as,
        def.description,
        def.local_address.map(|a| a.to_string()),
        def.hold_time_secs,
        def.connect_retry_secs,
        def.passive,
        def.families.contains(&Family::Ipv4Unicast),
        def.families.contains(&Family::Ipv6Unicast),
        def.graceful_restart,
        def.restart_time_secs,
        def.import_policy,
        def.export_policy,
        def.enabled,
    ];
    if update {
        tx.execute(
            "UPDATE bgp_neighbors SET remote_as = ?2, description = ?3, local_address = ?4,
             hold_time_secs = ?5, connect_retry_secs = ?6, passive = ?7, ipv4_unicast = ?8,
             ipv6_unicast = ?9, graceful_restart = ?10, restart_time_secs = ?11,
             import_policy = ?12, export_policy = ?13, enabled = ?14 WHERE address = ?1",
            params,
        )?;
    } else {
        tx.execute(
            &format!(
                "INSERT INTO bgp_neighbors ({NEIGHBOR_COLUMNS})
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
            ),
            params,
        )?;
    }
    Ok(())
}

fn load_policies(tx: &Transaction<'_>, name: Option<&str>) -> Result<Vec<PolicyConfig>> {
    let mut stmt = tx.prepare_cached(
        "SELECT config FROM bgp_policies WHERE ?1 IS NULL OR name = ?1 ORDER BY name",
    )?;
    let rows = stmt
        .query_map([name], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.iter()
        .map(|t| serde_json::from_str(t).map_err(|_| bad_row("policy")))
        .collect()
}

fn policy_named(tx: &Transaction<'_>, name: &str) -> Result<PolicyConfig> {
    load_policies(tx, Some(name))?
        .pop()
        .ok_or_else(|| Error::not_found("name", format!("no BGP policy named {name:?}")))
}

fn load_networks(tx: &Transaction<'_>) -> Result<Vec<Prefix>> {
    let mut stmt = tx.prepare_cached("SELECT prefix FROM bgp_networks")?;
    let rows = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut list = rows
        .iter()
        .map(|t| parse_prefix("prefix", t).map_err(|_| bad_row("network")))
        .collect::<Result<Vec<_>>>()?;
    list.sort();
    Ok(list)
}

impl Store {
    /// The global settings; 404 on `bgp` when BGP is not configured.
    pub fn get_bgp_global(&mut self) -> Result<BgpGlobal> {
        self.read(|tx| {
            load_global(tx)?.ok_or_else(|| {
                Error::not_found("bgp", "BGP is not configured (PUT /api/v1/bgp first)")
            })
        })
    }

    pub fn put_bgp_global(&mut self, g: &BgpGlobal) -> Result<BgpGlobal> {
        self.change(|tx| {
            tx.execute(
                "INSERT INTO bgp_global (id, asn, router_id, listen_port, enabled)
                 VALUES (1, ?1, ?2, ?3, ?4)
                 ON CONFLICT (id) DO UPDATE SET asn = ?1, router_id = ?2, listen_port = ?3,
                 enabled = ?4",
                rusqlite::params![g.asn, g.router_id.to_string(), g.listen_port, g.enabled],
            )?;
            Ok(*g)
        })
    }

    /// Every neighbor, by address.
    pub fn list_bgp_neighbors(&mut self) -> Result<Vec<Neighbor>> {
        self.read(|tx| {
            let local_as = load_global(tx)?.map(|g| g.asn);
            Ok(load_neighbors(tx, None)?
                .into_iter()
                .map(|def| Neighbor { def, local_as })
                .collect())
        })
    }

    pub fn get_bgp_neighbor(&mut self, address: IpAddr) -> Result<Neighbor> {
        self.read(|tx| {
            let def = neighbor_at(tx, address)?;
            with_local_as(tx, def)
        })
    }

    pub fn create_bgp_neighbor(&mut self, def: &NeighborDef) -> Result<Neighbor> {
        self.change(|tx| {
            if !load_neighbors(tx, Some(def.address))?.is_empty() {
                return Err(Error::conflict(
                    "address",
                    format!("{} is already a BGP neighbor", def.address),
                ));
            }
            if count(tx, "SELECT count(*) FROM bgp_neighbors")? >= MAX_NEIGHBORS {
                return Err(Error::conflict(
                    "address",
                    format!("at most {MAX_NEIGHBORS} BGP neighbors"),
                ));
            }
            check_policies(tx, def)?;
            write_neighbor(tx, def, false)?;
            with_local_as(tx, def.clone())
        })
    }

    /// Applies `patch` to neighbor `address` (validated as a whole).
    pub fn patch_bgp_neighbor(
        &mut self,
        address: IpAddr,
        patch: &NeighborPatch,
    ) -> Result<Neighbor> {
        self.change(|tx| {
            let new = patch.apply(&neighbor_at(tx, address)?)?;
            check_policies(tx, &new)?;
            write_neighbor(tx, &new, true)?;
            with_local_as(tx, new)
        })
    }

    pub fn delete_bgp_neighbor(&mut self, address: IpAddr) -> Result<()> {
        self.change(|tx| {
            neighbor_at(tx, address)?;
            tx.execute(
                "DELETE FROM bgp_neighbors WHERE address = ?1",
                [address.to_string()],
            )?;
            Ok(())
        })
    }

    /// Every policy, by name.
    pub fn list_bgp_policies(&mut self) -> Result<Vec<PolicyConfig>> {
        self.read(|tx| load_policies(tx, None))
    }

    pub fn get_bgp_policy(&mut self, name: &str) -> Result<PolicyConfig> {
        self.read(|tx| policy_named(tx, name))
    }

    /// Creates or replaces policy `p.name` (already validated); true when
    /// it was created.
    pub fn put_bgp_policy(&mut self, p: &PolicyConfig) -> Result<bool> {
        let text = serde_json::to_string(p).map_err(|e| Error::Storage(e.to_string()))?;
        self.change(|tx| {
            let exists = policy_exists(tx, &p.name)?;
            if exists {
                tx.execute(
                    "UPDATE bgp_policies SET config = ?2 WHERE name = ?1",
                    rusqlite::params![p.name, text],
                )?;
            } else {
                if count(tx, "SELECT count(*) FROM bgp_policies")? >= MAX_POLICIES {
                    return Err(Error::conflict(
                        "name",
                        format!("at most {MAX_POLICIES} BGP policies"),
                    ));
                }
                tx.execute(
                    "INSERT INTO bgp_policies (name, config) VALUES (?1, ?2)",
                    rusqlite::params![p.name, text],
                )?;
            }
            Ok(!exists)
        })
    }

    /// Deletes policy `name`; 409 naming the neighbors while any uses it.
    pub fn delete_bgp_policy(&mut self, name: &str) -> Result<()> {
        self.change(|tx| {
            policy_named(tx, name)?;
            let users: Vec<String> = tx
                .prepare_cached(
                    "SELECT address FROM bgp_neighbors
                     WHERE import_policy = ?1 OR export_policy = ?1 ORDER BY address",
                )?
                .query_map([name], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            if !users.is_empty() {
                return Err(Error::conflict(
                    "name",
                    format!(
                        "BGP policy {name:?} is in use by neighbor(s) {}",
                        users.join(", ")
                    ),
                ));
            }
            tx.execute("DELETE FROM bgp_policies WHERE name = ?1", [name])?;
            Ok(())
        })
    }

    /// Every originated network, in prefix order.
    pub fn list_bgp_networks(&mut self) -> Result<Vec<Prefix>> {
        self.read(load_networks)
    }

    pub fn add_bgp_network(&mut self, prefix: Prefix) -> Result<Prefix> {
        self.change(|tx| {
            let text = prefix.to_string();
            let exists = tx
                .query_row(
                    "SELECT 1 FROM bgp_networks WHERE prefix = ?1",
                    [&text],
                    |_| Ok(()),
                )
                .optional()?
                .is_some();
            if exists {
                return Err(Error::conflict(
                    "prefix",
                    format!("{prefix} is already an originated network"),
                ));
            }
            if count(tx, "SELECT count(*) FROM bgp_networks")? >= MAX_NETWORKS {
                return Err(Error::conflict(
                    "prefix",
                    format!("at most {MAX_NETWORKS} originated networks"),
                ));
            }
            tx.execute("INSERT INTO bgp_networks (prefix) VALUES (?1)", [&text])?;
            Ok(prefix)
        })
    }

    pub fn delete_bgp_network(&mut self, prefix: Prefix) -> Result<()> {
        self.change(|tx| {
            let n = tx.execute(
                "DELETE FROM bgp_networks WHERE prefix = ?1",
                [prefix.to_string()],
            )?;
            if n == 0 {
                return Err(Error::not_found(
                    "prefix",
                    format!("{prefix} is not an originated network"),
                ));
            }
            Ok(())
        })
    }

    /// Everything the speaker runs from, in one snapshot.
    pub fn bgp_desired(&mut self) -> Result<BgpDesired> {
        self.read(|tx| {
            Ok(BgpDesired {
                global: load_global(tx)?,
                neighbors: load_neighbors(tx, None)?,
                policies: load_policies(tx, None)?,
                networks: load_networks(tx)?,
            })
        })
    }
}
