//! The registry's API types and the validation of an uploaded model file:
//! the bytes must parse with `patronus_ml::model::from_bytes` (magic,
//! version, SHA-256 trailer, shapes), which also gives the classes and
//! layer sizes the registry lists.

use serde::Serialize;

use crate::error::{Error, Result};

/// Largest model file accepted (the shipped model is about 33 KB).
pub const MAX_MODEL_BYTES: usize = 16 << 20;
/// Longest model name.
pub const MAX_NAME_LEN: usize = 64;

/// A registered model as the API shows it (never its bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelEntry {
    pub id: i64,
    /// Operator's name, given at upload.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Registry counter: 1 for the first upload, +1 for each after (never reused).
    pub version: u64,
    /// Hex SHA-256 of the model file (its own trailer).
    pub sha256: String,
    /// Class labels, in the model's output order.
    pub classes: Vec<String>,
    /// Layer widths, inputs first.
    pub dims: Vec<u64>,
    pub size_bytes: u64,
    /// Unix seconds of the upload.
    pub uploaded_at: u64,
    /// The model the engine is told to run.
    pub active: bool,
}

/// What the engine runs now: `{"active": entry}` or `{"active": null}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActiveModel {
    pub active: Option<ModelEntry>,
}

/// A validated upload, ready for the store. `Debug` leaves the bytes out.
#[derive(Clone, PartialEq, Eq)]
pub struct ModelUpload {
    pub name: Option<String>,
    pub sha256: String,
    pub classes: Vec<String>,
    pub dims: Vec<u64>,
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for ModelUpload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelUpload")
            .field("name", &self.name)
            .field("sha256", &self.sha256)
            .field("dims", &self.dims)
            .field("size_bytes", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

/// Checks a model name: 1..=64 characters, letters, digits and `._-`.
pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "name",
            format!("{name:?}: 1 to {MAX_NAME_LEN} letters, digits, '.', '_' or '-'"),
        ))
    }
}

/// Parses `bytes` as a model file; the error carries the parser's message
/// (field `body`).
pub fn validate_upload(name: Option<String>, bytes: Vec<u8>) -> Result<ModelUpload> {
    if let Some(n) = &name {
        validate_name(n)?;
    }
    if bytes.is_empty() {
        return Err(Error::invalid("body", "empty body: expected a model file"));
    }
    if bytes.len() > MAX_MODEL_BYTES {
        return Err(Error::invalid(
            "body",
            format!(
                "model file of {} bytes, more than {MAX_MODEL_BYTES}",
                bytes.len()
            ),
        ));
    }
    let mlp = patronus_ml::model::from_bytes(&bytes)
        .map_err(|e| Error::invalid("body", format!("not a valid model file: {e:#}")))?;
    let sha256 = patronus_ml::model::sha256_hex(&bytes)
        .ok_or_else(|| Error::invalid("body", "not a valid model file: too short"))?;
    Ok(ModelUpload {
        name,
        sha256,
        classes: mlp.classes.iter().map(|c| c.label().to_owned()).collect(),
        dims: mlp.dims().into_iter().map(|d| d as u64).collect(),
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> Vec<u8> {
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../models/flow-mlp.bin"
        ))
        .unwrap()
    }

    #[test]
    fn the_shipped_model_validates_and_damage_is_refused_with_the_parsers_message() {
        let b = shipped();
        let u = validate_upload(Some("flow-v1".into()), b.clone()).unwrap();
        assert_eq!(u.sha256.len(), 64);
        assert!(u.dims.len() >= 2, "{:?}", u.dims);
        assert_eq!(u.classes.len() as u64, *u.dims.last().unwrap());
        let mut bad = b.clone();
        bad[20] ^= 1;
        let e = validate_upload(None, bad).unwrap_err().to_string();
        assert!(e.contains("SHA-256 does not match"), "{e}");
        let e = validate_upload(None, b[..b.len() / 2].to_vec())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("body: not a valid model file"), "{e}");
        let e = validate_upload(None, Vec::new()).unwrap_err().to_string();
        assert!(e.contains("empty body"), "{e}");
        assert!(validate_upload(Some("a b".into()), b).is_err());
    }
}
