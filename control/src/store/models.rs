//! The model registry in the store: each uploaded model file (bytes kept
//! in the database) with its metadata, and the promotion history. The
//! active model is the newest history row's (`model_id` NULL: none, after
//! a deactivation); a rollback removes the newest row. Deleting a model
//! removes its history rows too (it can no longer be rolled back to); the
//! active model cannot be deleted.

use rusqlite::{OptionalExtension, Transaction};

use super::Store;
use crate::error::{Error, Result};
use crate::models::model::{ActiveModel, ModelEntry, ModelUpload};

pub(super) const SCHEMA_MODELS: &str = "
CREATE TABLE models (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT,
    version     INTEGER NOT NULL UNIQUE,
    sha256      TEXT NOT NULL UNIQUE,
    classes     TEXT NOT NULL,
    dims        TEXT NOT NULL,
    size_bytes  INTEGER NOT NULL,
    uploaded_at INTEGER NOT NULL,
    bytes       BLOB NOT NULL
);
-- Promotions, oldest first; the newest row names the active model.
CREATE TABLE model_promotions (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    model_id INTEGER REFERENCES models(id) ON DELETE CASCADE,
    at       INTEGER NOT NULL
);
INSERT INTO meta (key, value) VALUES ('model_version', 0);
";

/// The active model's bytes, for the push to the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveModelBytes {
    pub id: i64,
    pub version: u64,
    pub sha256: String,
    pub bytes: Vec<u8>,
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn not_found(id: i64) -> Error {
    Error::not_found("id", format!("no model with id {id}"))
}

/// The active model's id (None: no model).
fn active_id(tx: &Transaction<'_>) -> Result<Option<i64>> {
    Ok(tx
        .query_row(
            "SELECT model_id FROM model_promotions ORDER BY seq DESC LIMIT 1",
            [],
            |r| r.get::<_, Option<i64>>(0),
        )
        .optional()?
        .flatten())
}

/// Models by id (all when `id` is None), marked active or not.
fn load(tx: &Transaction<'_>, id: Option<i64>) -> Result<Vec<ModelEntry>> {
    let active = active_id(tx)?;
    let mut stmt = tx.prepare_cached(
        "SELECT id, name, version, sha256, classes, dims, size_bytes, uploaded_at FROM models
         WHERE ?1 IS NULL OR id = ?1 ORDER BY id",
    )?;
    let rows = stmt
        .query_map([id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, i64>(6)?,
                r.get::<_, i64>(7)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(|(id, name, version, sha256, classes, dims, size, at)| {
            let dims = split_list(&dims)
                .iter()
                .map(|d| d.parse::<u64>())
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|_| Error::Storage(format!("bad layer sizes of model {id}")))?;
            Ok(ModelEntry {
                id,
                name,
                version: u64::try_from(version).unwrap_or(0),
                sha256,
                classes: split_list(&classes),
                dims,
                size_bytes: u64::try_from(size).unwrap_or(0),
                uploaded_at: u64::try_from(at).unwrap_or(0),
                active: active == Some(id),
            })
        })
        .collect()
}

fn one(tx: &Transaction<'_>, id: i64) -> Result<ModelEntry> {
    load(tx, Some(id))?.pop().ok_or_else(|| not_found(id))
}

fn active_entry(tx: &Transaction<'_>) -> Result<ActiveModel> {
    Ok(ActiveModel {
        active: match active_id(tx)? {
            Some(id) => Some(one(tx, id)?),
            None => None,
        },
    })
}

fn record_promotion(tx: &Transaction<'_>, id: Option<i64>) -> Result<()> {
    tx.execute(
        "INSERT INTO model_promotions (model_id, at) VALUES (?1, ?2)",
        rusqlite::params![id, unix_now()],
    )?;
    Ok(())
}

impl Store {
    pub fn list_models(&mut self) -> Result<Vec<ModelEntry>> {
        self.read(|tx| load(tx, None))
    }

    pub fn get_model(&mut self, id: i64) -> Result<ModelEntry> {
        self.read(|tx| one(tx, id))
    }

    /// The active model, or none.
    pub fn active_model(&mut self) -> Result<ActiveModel> {
        self.read(active_entry)
    }

    /// Registers a validated model; 409 when one with the same SHA-256 is
    /// already registered (the message names its id).
    pub fn upload_model(&mut self, up: &ModelUpload) -> Result<ModelEntry> {
        self.change(|tx| {
            let existing: Option<i64> = tx
                .query_row(
                    "SELECT id FROM models WHERE sha256 = ?1",
                    [&up.sha256],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(id) = existing {
                return Err(Error::conflict(
                    "body",
                    format!("this model file (SHA-256 {}) is already model {id}", up.sha256),
                ));
            }
            tx.execute(
                "UPDATE meta SET value = value + 1 WHERE key = 'model_version'",
                [],
            )?;
            let version = super::meta_value(tx, "model_version")?;
            let dims: Vec<String> = up.dims.iter().map(u64::to_string).collect();
            tx.execute(
                "INSERT INTO models (name, version, sha256, classes, dims, size_bytes, uploaded_at, bytes)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                rusqlite::params![
                    up.name,
                    version as i64,
                    up.sha256,
                    up.classes.join(","),
                    dims.join(","),
                    up.bytes.len() as i64,
                    unix_now(),
                    up.bytes,
                ],
            )?;
            one(tx, tx.last_insert_rowid())
        })
    }

    /// Deletes a model that is not active (409 if it is).
    pub fn delete_model(&mut self, id: i64) -> Result<()> {
        self.change(|tx| {
            one(tx, id)?;
            if active_id(tx)? == Some(id) {
                return Err(Error::conflict(
                    "id",
                    format!("model {id} is active: promote another one or deactivate first"),
                ));
            }
            tx.execute("DELETE FROM models WHERE id = ?1", [id])?;
            Ok(())
        })
    }

    /// Makes model `id` active (already active: nothing changes).
    pub fn promote_model(&mut self, id: i64) -> Result<ModelEntry> {
        self.change(|tx| {
            one(tx, id)?;
            if active_id(tx)? != Some(id) {
                record_promotion(tx, Some(id))?;
            }
            one(tx, id)
        })
    }

    /// Runs no model (signatures only); a no-op when none is active.
    pub fn deactivate_model(&mut self) -> Result<ActiveModel> {
        self.change(|tx| {
            if active_id(tx)?.is_some() {
                record_promotion(tx, None)?;
            }
            active_entry(tx)
        })
    }

    /// Goes back to what was active before the newest promotion (skipping
    /// rows that name what is active now); 409 when there is nothing
    /// before it.
    pub fn rollback_model(&mut self) -> Result<ActiveModel> {
        self.change(|tx| {
            let mut stmt =
                tx.prepare_cached("SELECT seq, model_id FROM model_promotions ORDER BY seq DESC")?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, Option<i64>>(1)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            drop(stmt);
            let Some(&(_, current)) = rows.first() else {
                return Err(Error::conflict("model", "no model was ever promoted"));
            };
            let Some(back) = rows.iter().position(|&(_, m)| m != current) else {
                return Err(Error::conflict(
                    "model",
                    "nothing to roll back to: no earlier promotion",
                ));
            };
            // Drop every newer row: the one at `back` becomes the newest.
            let keep_seq = rows[back].0;
            tx.execute("DELETE FROM model_promotions WHERE seq > ?1", [keep_seq])?;
            active_entry(tx)
        })
    }

    /// The active model's bytes for the push (None: no model).
    pub fn active_model_bytes(&mut self) -> Result<Option<ActiveModelBytes>> {
        self.read(|tx| {
            let Some(id) = active_id(tx)? else {
                return Ok(None);
            };
            let row = tx
                .query_row(
                    "SELECT version, sha256, bytes FROM models WHERE id = ?1",
                    [id],
                    |r| {
                        Ok(ActiveModelBytes {
                            id,
                            version: u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
                            sha256: r.get(1)?,
                            bytes: r.get(2)?,
                        })
                    },
                )
                .optional()?;
            row.map(Some)
                .ok_or_else(|| Error::Storage(format!("active model {id} is missing")))
        })
    }
}
