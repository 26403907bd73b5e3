//! WireGuard tunnels and peers in the store. Private keys and preshared
//! keys are stored as blobs in the database, which is created 0600 with
//! its WAL and shared-memory files (see `Store::open`). Checks against
//! stored state: unique tunnel names and listen ports (also against UDP
//! port forwards), unique peer keys (and counter labels) per tunnel, no
//! overlap between the allowed IPs of a tunnel's peers, no deletion of a
//! tunnel a route points into.

use std::net::{Ipv4Addr, SocketAddrV4};

use rusqlite::{OptionalExtension, Transaction};

use super::Store;
use crate::error::{Error, Result};
use crate::model::Cidr;
use crate::wg::counters::peer_label;
use crate::wg::keys::{PresharedKey, PrivateKey, PublicKey, KEY_LEN};
use crate::wg::model::{Peer, PeerDef, Tunnel, TunnelDef, TunnelUpdate, MAX_PEERS};

pub(super) const SCHEMA_WG: &str = "
CREATE TABLE wg_tunnels (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL UNIQUE,
    listen_port INTEGER NOT NULL UNIQUE CHECK (listen_port BETWEEN 1 AND 65535),
    private_key BLOB NOT NULL CHECK (length(private_key) = 32),
    address     TEXT,
    address_len INTEGER CHECK (address_len BETWEEN 1 AND 32)
);
CREATE TABLE wg_peers (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    tunnel_id     INTEGER NOT NULL REFERENCES wg_tunnels(id) ON DELETE CASCADE,
    public_key    BLOB NOT NULL CHECK (length(public_key) = 32),
    endpoint      TEXT,
    keepalive     INTEGER CHECK (keepalive BETWEEN 1 AND 65535),
    preshared_key BLOB CHECK (preshared_key IS NULL OR length(preshared_key) = 32),
    UNIQUE (tunnel_id, public_key)
);
CREATE TABLE wg_allowed_ips (
    peer_id    INTEGER NOT NULL REFERENCES wg_peers(id) ON DELETE CASCADE,
    idx        INTEGER NOT NULL,
    prefix     TEXT NOT NULL,
    prefix_len INTEGER NOT NULL CHECK (prefix_len BETWEEN 0 AND 32),
    PRIMARY KEY (peer_id, idx)
);
-- A route into a tunnel (NULL: gateways or blackhole).
ALTER TABLE routes ADD COLUMN tunnel_id INTEGER REFERENCES wg_tunnels(id);
";

/// A stored tunnel with its secret, for the push to the engine. `Debug`
/// redacts the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WgTunnelRow {
    pub id: i64,
    pub def: TunnelDef,
}

/// A stored peer, for the push to the engine. `Debug` redacts the PSK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WgPeerRow {
    pub id: i64,
    pub tunnel_id: i64,
    pub def: PeerDef,
}

/// Every tunnel and peer, as the engine gets them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WgState {
    pub tunnels: Vec<WgTunnelRow>,
    pub peers: Vec<WgPeerRow>,
}

fn bad_row(what: &str) -> Error {
    Error::Storage(format!("bad {what} in the WireGuard tables"))
}

fn key_bytes(blob: Vec<u8>, what: &str) -> Result<[u8; KEY_LEN]> {
    <[u8; KEY_LEN]>::try_from(blob.as_slice()).map_err(|_| bad_row(what))
}

fn cidr(addr: Option<String>, len: Option<u8>) -> Result<Option<Cidr>> {
    match (addr, len) {
        (Some(a), Some(len)) => Ok(Some(Cidr {
            addr: a.parse().map_err(|_| bad_row("tunnel address"))?,
            len,
        })),
        (None, None) => Ok(None),
        _ => Err(bad_row("tunnel address")),
    }
}

fn load_tunnel_rows(tx: &Transaction<'_>, name: Option<&str>) -> Result<Vec<WgTunnelRow>> {
    let mut stmt = tx.prepare_cached(
        "SELECT id, name, listen_port, private_key, address, address_len FROM wg_tunnels
         WHERE ?1 IS NULL OR name = ?1 ORDER BY name",
    )?;
    let rows = stmt
        .query_map([name], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, u16>(2)?,
                r.get::<_, Vec<u8>>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, Option<u8>>(5)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(|(id, name, listen_port, key, addr, len)| {
            Ok(WgTunnelRow {
                id,
                def: TunnelDef {
                    name,
                    listen_port,
                    private_key: PrivateKey::from_bytes(key_bytes(key, "private key")?),
                    address: cidr(addr, len)?,
                },
            })
        })
        .collect()
}

fn tunnel_row(tx: &Transaction<'_>, name: &str) -> Result<WgTunnelRow> {
    load_tunnel_rows(tx, Some(name))?
        .pop()
        .ok_or_else(|| Error::not_found("tunnel", format!("no tunnel named {name:?}")))
}

/// Peers of tunnel `tunnel_id` (all tunnels when `None`), by id.
fn load_peer_rows(tx: &Transaction<'_>, tunnel_id: Option<i64>) -> Result<Vec<WgPeerRow>> {
    let mut stmt = tx.prepare_cached(
        "SELECT id, tunnel_id, public_key, endpoint, keepalive, preshared_key FROM wg_peers
         WHERE ?1 IS NULL OR tunnel_id = ?1 ORDER BY id",
    )?;
    let rows = stmt
        .query_map([tunnel_id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Vec<u8>>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<u16>>(4)?,
                r.get::<_, Option<Vec<u8>>>(5)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut ips = tx.prepare_cached(
        "SELECT prefix, prefix_len FROM wg_allowed_ips WHERE peer_id = ?1 ORDER BY idx",
    )?;
    rows.into_iter()
        .map(|(id, tunnel_id, key, endpoint, keepalive, psk)| {
            let allowed_ips = ips
                .query_map([id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u8>(1)?)))?
                .map(|row| {
                    let (a, len) = row?;
                    Ok(Cidr {
                        addr: a.parse::<Ipv4Addr>().map_err(|_| bad_row("allowed IP"))?,
                        len,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(WgPeerRow {
                id,
                tunnel_id,
                def: PeerDef {
                    public_key: PublicKey(key_bytes(key, "public key")?),
                    endpoint: endpoint
                        .map(|e| e.parse::<SocketAddrV4>().map_err(|_| bad_row("endpoint")))
                        .transpose()?,
                    allowed_ips,
                    persistent_keepalive: keepalive,
                    preshared_key: psk
                        .map(|k| key_bytes(k, "preshared key").map(PresharedKey::from_bytes))
                        .transpose()?,
                },
            })
        })
        .collect()
}

fn tunnel_of(row: &WgTunnelRow, peers: usize) -> Tunnel {
    Tunnel {
        name: row.def.name.clone(),
        listen_port: row.def.listen_port,
        public_key: row.def.private_key.public_key(),
        address: row.def.address,
        peers,
    }
}

fn peer_of(row: &WgPeerRow, tunnel: &str) -> Peer {
    Peer {
        id: row.id,
        tunnel: tunnel.to_owned(),
        public_key: row.def.public_key,
        endpoint: row.def.endpoint,
        allowed_ips: row.def.allowed_ips.clone(),
        persistent_keepalive: row.def.persistent_keepalive,
        preshared_key: row.def.preshared_key.is_some(),
        counters: None,
    }
}

fn peer_count(tx: &Transaction<'_>, tunnel_id: i64) -> Result<usize> {
    let n: i64 = tx.query_row(
        "SELECT count(*) FROM wg_peers WHERE tunnel_id = ?1",
        [tunnel_id],
        |r| r.get(0),
    )?;
    Ok(usize::try_from(n).unwrap_or(0))
}

/// 409 when another tunnel (not `except`) or a UDP port forward uses `port`.
fn check_listen_port(tx: &Transaction<'_>, port: u16, except: Option<i64>) -> Result<()> {
    let other: Option<String> = tx
        .query_row(
            "SELECT name FROM wg_tunnels WHERE listen_port = ?1 AND id IS NOT ?2",
            rusqlite::params![port, except],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(other) = other {
        return Err(Error::conflict(
            "listen_port",
            format!("port {port} is tunnel {other:?}'s listen port"),
        ));
    }
    let forward: Option<i64> = tx
        .query_row(
            "SELECT id FROM nat_forwards WHERE proto = 'udp' AND outside_port = ?1",
            [port],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(id) = forward {
        return Err(Error::conflict(
            "listen_port",
            format!("UDP port {port} is forwarded by NAT forward {id}"),
        ));
    }
    Ok(())
}

/// The id of the tunnel whose listen port is `port`, if any (NAT uses it
/// to refuse a UDP forward of a tunnel's port).
pub(super) fn tunnel_on_port(tx: &Transaction<'_>, port: u16) -> Result<Option<String>> {
    Ok(tx
        .query_row(
            "SELECT name FROM wg_tunnels WHERE listen_port = ?1",
            [port],
            |r| r.get(0),
        )
        .optional()?)
}

/// The id of tunnel `name` for a route; 400 naming `field` when missing.
pub(super) fn tunnel_id_for_route(tx: &Transaction<'_>, field: &str, name: &str) -> Result<i64> {
    tx.query_row("SELECT id FROM wg_tunnels WHERE name = ?1", [name], |r| {
        r.get(0)
    })
    .optional()?
    .ok_or_else(|| Error::invalid(field, format!("no tunnel named {name:?}")))
}

/// Checks a peer against the tunnel and its other peers (not `except`).
fn check_peer(
    tx: &Transaction<'_>,
    tunnel: &WgTunnelRow,
    def: &PeerDef,
    except: Option<i64>,
) -> Result<()> {
    if def.public_key == tunnel.def.private_key.public_key() {
        return Err(Error::invalid(
            "public_key",
            "this is the tunnel's own public key",
        ));
    }
    let label = peer_label(&def.public_key);
    let others: Vec<WgPeerRow> = load_peer_rows(tx, Some(tunnel.id))?
        .into_iter()
        .filter(|p| Some(p.id) != except)
        .collect();
    if except.is_none() && others.len() >= MAX_PEERS {
        return Err(Error::conflict(
            "tunnel",
            format!("at most {MAX_PEERS} peers per tunnel"),
        ));
    }
    for o in &others {
        if o.def.public_key == def.public_key {
            return Err(Error::conflict(
                "public_key",
                format!("peer {} of this tunnel has this public key", o.id),
            ));
        }
        if peer_label(&o.def.public_key) == label {
            return Err(Error::conflict(
                "public_key",
                format!(
                    "peer {} of this tunnel has a key starting with the same {label:?} (metrics could not tell them apart)",
                    o.id
                ),
            ));
        }
        for (i, mine) in def.allowed_ips.iter().enumerate() {
            if let Some(theirs) = o.def.allowed_ips.iter().find(|t| t.overlaps(*mine)) {
                return Err(Error::conflict(
                    format!("allowed_ips[{i}]"),
                    format!("{mine} overlaps {theirs} of peer {}", o.id),
                ));
            }
        }
    }
    Ok(())
}

fn write_peer(tx: &Transaction<'_>, id: i64, def: &PeerDef) -> Result<()> {
    tx.execute(
        "UPDATE wg_peers SET public_key = ?1, endpoint = ?2, keepalive = ?3, preshared_key = ?4
         WHERE id = ?5",
        rusqlite::params![
            def.public_key.0.as_slice(),
            def.endpoint.map(|e| e.to_string()),
            def.persistent_keepalive,
            def.preshared_key.as_ref().map(|k| k.expose().to_vec()),
            id
        ],
    )?;
    tx.execute("DELETE FROM wg_allowed_ips WHERE peer_id = ?1", [id])?;
    let mut ins = tx.prepare_cached(
        "INSERT INTO wg_allowed_ips (peer_id, idx, prefix, prefix_len) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for (idx, c) in def.allowed_ips.iter().enumerate() {
        ins.execute(rusqlite::params![id, idx, c.addr.to_string(), c.len])?;
    }
    Ok(())
}

fn find_peer(tx: &Transaction<'_>, tunnel: &WgTunnelRow, id: i64) -> Result<WgPeerRow> {
    load_peer_rows(tx, Some(tunnel.id))?
        .into_iter()
        .find(|p| p.id == id)
        .ok_or_else(|| {
            Error::not_found(
                "id",
                format!("peer {id} does not exist in tunnel {:?}", tunnel.def.name),
            )
        })
}

impl Store {
    pub fn list_tunnels(&mut self) -> Result<Vec<Tunnel>> {
        self.read(|tx| {
            load_tunnel_rows(tx, None)?
                .iter()
                .map(|t| Ok(tunnel_of(t, peer_count(tx, t.id)?)))
                .collect()
        })
    }

    pub fn get_tunnel(&mut self, name: &str) -> Result<Tunnel> {
        self.read(|tx| {
            let t = tunnel_row(tx, name)?;
            Ok(tunnel_of(&t, peer_count(tx, t.id)?))
        })
    }

    pub fn create_tunnel(&mut self, def: &TunnelDef) -> Result<Tunnel> {
        self.change(|tx| {
            if load_tunnel_rows(tx, Some(&def.name))?.pop().is_some() {
                return Err(Error::conflict(
                    "name",
                    format!("a tunnel named {:?} already exists", def.name),
                ));
            }
            check_listen_port(tx, def.listen_port, None)?;
            tx.execute(
                "INSERT INTO wg_tunnels (name, listen_port, private_key, address, address_len)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                rusqlite::params![
                    def.name,
                    def.listen_port,
                    def.private_key.expose().as_slice(),
                    def.address.map(|c| c.addr.to_string()),
                    def.address.map(|c| c.len)
                ],
            )?;
            Ok(tunnel_of(&tunnel_row(tx, &def.name)?, 0))
        })
    }

    /// Changes a tunnel's port and address, and its key when one is given.
    pub fn update_tunnel(&mut self, name: &str, up: &TunnelUpdate) -> Result<Tunnel> {
        self.change(|tx| {
            let t = tunnel_row(tx, name)?;
            check_listen_port(tx, up.listen_port, Some(t.id))?;
            let key = up.private_key.as_ref().unwrap_or(&t.def.private_key);
            // Peers keyed like our new public key would talk to themselves.
            if up.private_key.is_some() {
                let public = key.public_key();
                if let Some(p) = load_peer_rows(tx, Some(t.id))?
                    .iter()
                    .find(|p| p.def.public_key == public)
                {
                    return Err(Error::conflict(
                        "private_key",
                        format!("its public key is peer {}'s", p.id),
                    ));
                }
            }
            tx.execute(
                "UPDATE wg_tunnels SET listen_port = ?1, private_key = ?2, address = ?3,
                 address_len = ?4 WHERE id = ?5",
                rusqlite::params![
                    up.listen_port,
                    key.expose().as_slice(),
                    up.address.map(|c| c.addr.to_string()),
                    up.address.map(|c| c.len),
                    t.id
                ],
            )?;
            Ok(tunnel_of(&tunnel_row(tx, name)?, peer_count(tx, t.id)?))
        })
    }

    /// Deletes a tunnel and its peers; 409 while a route points into it.
    pub fn delete_tunnel(&mut self, name: &str) -> Result<()> {
        self.change(|tx| {
            let t = tunnel_row(tx, name)?;
            let routes: Vec<String> = tx
                .prepare_cached(
                    "SELECT o.name || ' ' || r.prefix || '/' || r.prefix_len FROM routes r
                     JOIN organizations o ON o.id = r.org_id WHERE r.tunnel_id = ?1
                     ORDER BY r.id LIMIT 5",
                )?
                .query_map([t.id], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            if !routes.is_empty() {
                return Err(Error::conflict(
                    "tunnel",
                    format!(
                        "routes point into tunnel {name:?} (organization and prefix: {})",
                        routes.join(", ")
                    ),
                ));
            }
            tx.execute("DELETE FROM wg_tunnels WHERE id = ?1", [t.id])?;
            Ok(())
        })
    }

    pub fn list_peers(&mut self, tunnel: &str) -> Result<Vec<Peer>> {
        self.read(|tx| {
            let t = tunnel_row(tx, tunnel)?;
            Ok(load_peer_rows(tx, Some(t.id))?
                .iter()
                .map(|p| peer_of(p, tunnel))
                .collect())
        })
    }

    pub fn get_peer(&mut self, tunnel: &str, id: i64) -> Result<Peer> {
        self.read(|tx| {
            let t = tunnel_row(tx, tunnel)?;
            Ok(peer_of(&find_peer(tx, &t, id)?, tunnel))
        })
    }

    pub fn create_peer(&mut self, tunnel: &str, def: &PeerDef) -> Result<Peer> {
        self.change(|tx| {
            let t = tunnel_row(tx, tunnel)?;
            check_peer(tx, &t, def, None)?;
            tx.execute(
                "INSERT INTO wg_peers (tunnel_id, public_key) VALUES (?1, ?2)",
                rusqlite::params![t.id, def.public_key.0.as_slice()],
            )?;
            let id = tx.last_insert_rowid();
            write_peer(tx, id, def)?;
            Ok(peer_of(&find_peer(tx, &t, id)?, tunnel))
        })
    }

    pub fn replace_peer(&mut self, tunnel: &str, id: i64, def: &PeerDef) -> Result<Peer> {
        self.change(|tx| {
            let t = tunnel_row(tx, tunnel)?;
            find_peer(tx, &t, id)?;
            check_peer(tx, &t, def, Some(id))?;
            write_peer(tx, id, def)?;
            Ok(peer_of(&find_peer(tx, &t, id)?, tunnel))
        })
    }

    pub fn delete_peer(&mut self, tunnel: &str, id: i64) -> Result<()> {
        self.change(|tx| {
            let t = tunnel_row(tx, tunnel)?;
            find_peer(tx, &t, id)?;
            tx.execute("DELETE FROM wg_peers WHERE id = ?1", [id])?;
            Ok(())
        })
    }

    /// Every tunnel and peer with their secrets, for the push to the engine.
    pub fn wg_for_push(&mut self) -> Result<WgState> {
        self.read(|tx| {
            Ok(WgState {
                tunnels: load_tunnel_rows(tx, None)?,
                peers: load_peer_rows(tx, None)?,
            })
        })
    }
}
