//! The classifier model the control process pushes: `model.bin` in the
//! runtime directory, numbered by the control block's `model_generation`
//! (its own sequence). Written atomically (temp file 0600, fsync, rename),
//! then the number is bumped; the engine notices the bump with one atomic
//! load ([`crate::Subscriber::poll_model`]).
//!
//! The payload is opaque to this crate: the model file's bytes exactly as
//! the ML crate writes them (its own magic, version and SHA-256 trailer).
//! An empty payload means "no model": the engine drops its model and
//! classifies with signatures only.
//!
//! Layout (little-endian), a 64-byte header then the payload:
//! `PTRNSMDL` · format version (u32) · flags (u32, 0) · generation (u64)
//! · payload length (u64) · checksum (u64: FNV-1a over the header with
//! this field zero, then the payload) · 24 reserved zero bytes · payload.
//! The file is exactly header + payload long; anything else is refused.

use crate::error::ShmError;

/// Name of the model file in the runtime directory.
pub const MODEL_FILE: &str = "model.bin";
/// Magic at the start of the model file.
pub const MODEL_MAGIC: [u8; 8] = *b"PTRNSMDL";
/// The header format this build writes and reads.
pub const MODEL_FORMAT_VERSION: u32 = 1;
/// Bytes of the header before the payload.
pub const MODEL_HEADER_LEN: usize = 64;
/// Largest payload written or accepted (a hostile file stays small).
pub const MAX_MODEL_PAYLOAD_BYTES: u64 = 64 << 20;

const OFF_VERSION: usize = 8;
const OFF_FLAGS: usize = 12;
const OFF_GENERATION: usize = 16;
const OFF_LEN: usize = 24;
const OFF_CHECKSUM: usize = 32;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// A parsed model file borrowing the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelFile<'a> {
    /// The `model_generation` it was published as.
    pub generation: u64,
    /// The model file's bytes (empty: no model).
    pub payload: &'a [u8],
}

impl ModelFile<'_> {
    /// True when the file says "no model".
    pub fn is_none(&self) -> bool {
        self.payload.is_empty()
    }
}

fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(FNV_PRIME);
    }
    h
}

fn header(generation: u64, payload_len: u64, checksum: u64) -> [u8; MODEL_HEADER_LEN] {
    let mut h = [0u8; MODEL_HEADER_LEN];
    h[..8].copy_from_slice(&MODEL_MAGIC);
    h[OFF_VERSION..OFF_VERSION + 4].copy_from_slice(&MODEL_FORMAT_VERSION.to_le_bytes());
    h[OFF_GENERATION..OFF_GENERATION + 8].copy_from_slice(&generation.to_le_bytes());
    h[OFF_LEN..OFF_LEN + 8].copy_from_slice(&payload_len.to_le_bytes());
    h[OFF_CHECKSUM..OFF_CHECKSUM + 8].copy_from_slice(&checksum.to_le_bytes());
    h
}

/// The checksum stored in a model file's header: FNV-1a over the header
/// (checksum field zero) and the payload.
pub fn model_checksum(generation: u64, payload: &[u8]) -> u64 {
    let h = header(generation, payload.len() as u64, 0);
    fnv(fnv(FNV_OFFSET, &h), payload)
}

/// The bytes of a model file publishing `payload` as `generation`.
pub fn encode_model_file(generation: u64, payload: &[u8]) -> Vec<u8> {
    let sum = model_checksum(generation, payload);
    let mut out = Vec::with_capacity(MODEL_HEADER_LEN + payload.len());
    out.extend_from_slice(&header(generation, payload.len() as u64, sum));
    out.extend_from_slice(payload);
    out
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(w)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

/// Parses and checks a whole model file (magic, version, exact length,
/// checksum). Never panics on any input.
pub fn decode_model_file(bytes: &[u8]) -> Result<ModelFile<'_>, ShmError> {
    let bad = |reason| Err(ShmError::BadModel { reason });
    if bytes.len() < MODEL_HEADER_LEN {
        return Err(ShmError::Truncated {
            what: "model file header",
            need: MODEL_HEADER_LEN as u64,
            have: bytes.len() as u64,
        });
    }
    let (h, payload) = bytes.split_at(MODEL_HEADER_LEN);
    if h[..8] != MODEL_MAGIC {
        return Err(ShmError::BadMagic {
            what: "model file",
            found: u64_at(h, 0),
            expected: u64::from_le_bytes(MODEL_MAGIC),
        });
    }
    let version = u32_at(h, OFF_VERSION);
    if version != MODEL_FORMAT_VERSION {
        return Err(ShmError::AbiVersion {
            what: "model file",
            found: version,
            expected: MODEL_FORMAT_VERSION,
        });
    }
    if u32_at(h, OFF_FLAGS) != 0 || h[OFF_CHECKSUM + 8..].iter().any(|&b| b != 0) {
        return bad("unknown flags or non-zero reserved bytes");
    }
    let len = u64_at(h, OFF_LEN);
    if len > MAX_MODEL_PAYLOAD_BYTES {
        return bad("payload length above the limit");
    }
    if (payload.len() as u64) < len {
        return Err(ShmError::Truncated {
            what: "model file payload",
            need: len,
            have: payload.len() as u64,
        });
    }
    if payload.len() as u64 != len {
        return bad("bytes after the payload");
    }
    let generation = u64_at(h, OFF_GENERATION);
    if generation == 0 {
        return bad("generation 0");
    }
    let stored = u64_at(h, OFF_CHECKSUM);
    let computed = model_checksum(generation, payload);
    if stored != computed {
        return Err(ShmError::ModelChecksum { stored, computed });
    }
    Ok(ModelFile {
        generation,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Publisher, Subscriber};

    fn payload() -> Vec<u8> {
        (0..1000u32).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn golden_header_and_round_trip() {
        let p = payload();
        let f = encode_model_file(3, &p);
        assert_eq!(f.len(), MODEL_HEADER_LEN + p.len());
        assert_eq!(&f[..8], b"PTRNSMDL");
        assert_eq!(&f[8..12], &1u32.to_le_bytes());
        assert_eq!(&f[16..24], &3u64.to_le_bytes());
        assert_eq!(&f[24..32], &1000u64.to_le_bytes());
        assert_eq!(&f[64..], &p[..]);
        let m = decode_model_file(&f).unwrap();
        assert_eq!(m.generation, 3);
        assert_eq!(m.payload, &p[..]);
        assert!(!m.is_none());
        let none = encode_model_file(4, &[]);
        assert_eq!(none.len(), MODEL_HEADER_LEN);
        assert!(decode_model_file(&none).unwrap().is_none());
    }

    #[test]
    fn short_torn_and_corrupted_files_are_refused() {
        let f = encode_model_file(5, &payload());
        let e = decode_model_file(&f[..10]).unwrap_err();
        assert!(
            matches!(
                e,
                ShmError::Truncated {
                    need: 64,
                    have: 10,
                    ..
                }
            ),
            "{e}"
        );
        // Torn: the header promises more than the file holds.
        let e = decode_model_file(&f[..f.len() - 1]).unwrap_err();
        assert!(
            e.to_string().contains("truncated model file payload"),
            "{e}"
        );
        let mut long = f.clone();
        long.push(0);
        let e = decode_model_file(&long).unwrap_err();
        assert!(e.to_string().contains("bytes after the payload"), "{e}");
        for at in [64, 500, f.len() - 1, OFF_GENERATION, OFF_CHECKSUM] {
            let mut bad = f.clone();
            bad[at] ^= 0x10;
            let e = decode_model_file(&bad).unwrap_err();
            assert!(
                matches!(e, ShmError::ModelChecksum { .. }),
                "flip at {at}: {e}"
            );
        }
        let mut bad = f.clone();
        bad[0] = b'X';
        let e = decode_model_file(&bad).unwrap_err();
        assert!(e.to_string().contains("bad magic"), "{e}");
        let mut bad = f.clone();
        bad[OFF_VERSION] = 2;
        let e = decode_model_file(&bad).unwrap_err();
        assert!(matches!(e, ShmError::AbiVersion { found: 2, .. }), "{e}");
        let mut bad = f.clone();
        bad[60] = 1;
        assert!(matches!(
            decode_model_file(&bad).unwrap_err(),
            ShmError::BadModel { .. }
        ));
        let mut bad = f;
        bad[OFF_LEN + 7] = 0x40;
        let e = decode_model_file(&bad).unwrap_err();
        assert!(e.to_string().contains("above the limit"), "{e}");
    }

    fn temp_dir(tag: &str) -> std::path::PathBuf {
        let p =
            std::env::temp_dir().join(format!("patronus-shm-model-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        p
    }

    struct Cleanup(std::path::PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn publish_then_poll_sees_each_bump_once() {
        let dir = temp_dir("poll");
        let _c = Cleanup(dir.clone());
        let mut publisher = Publisher::open(&dir).unwrap();
        let mut sub = Subscriber::open(&dir).unwrap();
        assert_eq!(sub.poll_model().unwrap(), None, "nothing published yet");
        let p = payload();
        let n1 = publisher.publish_model(&p).unwrap();
        assert_eq!(n1, 1);
        assert_eq!(sub.model_generation(), 1);
        assert_eq!(sub.poll_model().unwrap(), Some((1, p.clone())));
        assert_eq!(sub.poll_model().unwrap(), None, "a bump is seen once");
        let on_disk = std::fs::read(dir.join(MODEL_FILE)).unwrap();
        assert_eq!(decode_model_file(&on_disk).unwrap().payload, &p[..]);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join(MODEL_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // No model.
        assert_eq!(publisher.publish_model(&[]).unwrap(), 2);
        assert_eq!(sub.poll_model().unwrap(), Some((2, Vec::new())));
        assert_eq!(sub.poll_model().unwrap(), None);
        // Numbering continues across a publisher restart.
        drop(publisher);
        let mut publisher = Publisher::open(&dir).unwrap();
        assert_eq!(publisher.publish_model(&p[..10]).unwrap(), 3);
        assert_eq!(sub.poll_model().unwrap(), Some((3, p[..10].to_vec())));
        let too_big = vec![0u8; MAX_MODEL_PAYLOAD_BYTES as usize + 1];
        assert!(matches!(
            publisher.publish_model(&too_big).unwrap_err(),
            ShmError::BadModel { .. }
        ));
        assert_eq!(
            publisher.model_generation(),
            3,
            "a refused publish bumps nothing"
        );
    }

    #[test]
    fn a_newer_file_under_an_older_number_is_taken_once() {
        let dir = temp_dir("race");
        let _c = Cleanup(dir.clone());
        let mut publisher = Publisher::open(&dir).unwrap();
        let mut sub = Subscriber::open(&dir).unwrap();
        publisher.publish_model(b"one").unwrap();
        // The publisher renamed generation 2's file into place but has not
        // bumped the number yet when the engine looks.
        std::fs::write(dir.join(MODEL_FILE), encode_model_file(2, b"two")).unwrap();
        assert_eq!(sub.poll_model().unwrap(), Some((2, b"two".to_vec())));
        // The bump to 2 arrives: nothing new.
        crate::control::ControlMap::open(&dir.join(crate::runtime_dir::CONTROL_FILE))
            .unwrap()
            .block()
            .model_generation
            .store(2, std::sync::atomic::Ordering::Release);
        assert_eq!(sub.poll_model().unwrap(), None);
    }

    #[test]
    fn a_damaged_file_is_reported_once_then_skipped() {
        let dir = temp_dir("damaged");
        let _c = Cleanup(dir.clone());
        let mut publisher = Publisher::open(&dir).unwrap();
        let mut sub = Subscriber::open(&dir).unwrap();
        publisher.publish_model(b"model bytes").unwrap();
        let path = dir.join(MODEL_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let e = sub.poll_model().unwrap_err();
        assert!(matches!(e, ShmError::ModelChecksum { .. }), "{e}");
        assert_eq!(sub.poll_model().unwrap(), None, "reported once");
        publisher.publish_model(b"fixed").unwrap();
        assert_eq!(sub.poll_model().unwrap(), Some((2, b"fixed".to_vec())));
        // A file older than the number (cannot happen with a live
        // publisher: it renames before it bumps) is refused.
        std::fs::write(&path, encode_model_file(1, b"old")).unwrap();
        publisher.publish_model(b"x").unwrap();
        std::fs::write(&path, encode_model_file(1, b"old")).unwrap();
        let e = sub.poll_model().unwrap_err();
        assert!(matches!(e, ShmError::GenerationMismatch { .. }), "{e}");
    }
}
