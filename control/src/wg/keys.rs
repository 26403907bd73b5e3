//! WireGuard keys in the control process: a [`PrivateKey`] (generated from
//! the OS CSPRNG or parsed once from base64) whose `Debug` and `Display`
//! never show it and which is zeroized on drop, the [`PublicKey`] derived
//! from it, and [`PresharedKey`]s. Text form is standard base64 of 32
//! bytes (44 characters), as `wg` prints them. Error messages never quote
//! the text they reject, since it may be a secret.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use x25519_dalek::StaticSecret;
use zeroize::Zeroize;

use crate::error::{Error, Result};

/// Bytes of a key.
pub const KEY_LEN: usize = 32;
/// Characters of a key's base64 form.
pub const KEY_TEXT_LEN: usize = 44;

/// Decodes a 32-byte key; the error names `field` but not the text.
fn decode(field: &str, text: &str) -> Result<[u8; KEY_LEN]> {
    if text.len() != KEY_TEXT_LEN {
        return Err(Error::invalid(
            field,
            format!(
                "a key is {KEY_TEXT_LEN} characters of base64 (32 bytes); got {} characters",
                text.len()
            ),
        ));
    }
    let bytes = STANDARD
        .decode(text)
        .map_err(|_| Error::invalid(field, "not valid base64"))?;
    <[u8; KEY_LEN]>::try_from(bytes.as_slice()).map_err(|_| {
        Error::invalid(
            field,
            format!("decodes to {} bytes, not {KEY_LEN}", bytes.len()),
        )
    })
}

/// A tunnel's X25519 private key. Never printed: `Debug` shows
/// `<redacted>`; the bytes leave only through [`PrivateKey::expose`] (for
/// the store and the shared-memory file).
#[derive(Clone)]
pub struct PrivateKey(StaticSecret);

impl PrivateKey {
    /// A fresh key from the operating system's CSPRNG.
    pub fn generate() -> Result<PrivateKey> {
        let mut bytes = [0u8; KEY_LEN];
        getrandom::getrandom(&mut bytes)
            .map_err(|e| Error::Storage(format!("no randomness for a key: {e}")))?;
        let key = PrivateKey(StaticSecret::from(bytes));
        bytes.zeroize();
        Ok(key)
    }

    /// Parses a base64 key given in a request (`field` names it in errors).
    pub fn parse(field: &str, text: &str) -> Result<PrivateKey> {
        let mut bytes = decode(field, text)?;
        if bytes == [0; KEY_LEN] {
            return Err(Error::invalid(field, "the all-zero key is not a key"));
        }
        let key = PrivateKey(StaticSecret::from(bytes));
        bytes.zeroize();
        Ok(key)
    }

    /// From stored bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> PrivateKey {
        PrivateKey(StaticSecret::from(bytes))
    }

    /// The secret bytes, for the store and the engine's file only.
    pub fn expose(&self) -> [u8; KEY_LEN] {
        self.0.to_bytes()
    }

    /// The public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(x25519_dalek::PublicKey::from(&self.0).to_bytes())
    }
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateKey(<redacted>)")
    }
}

impl PartialEq for PrivateKey {
    fn eq(&self, other: &Self) -> bool {
        // Not constant time, but only compares keys the control process
        // holds itself (tests, change detection).
        self.0.as_bytes() == other.0.as_bytes()
    }
}
impl Eq for PrivateKey {}

/// A public key (not secret).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey(pub [u8; KEY_LEN]);

impl PublicKey {
    /// Parses a base64 public key (`field` names it in errors).
    pub fn parse(field: &str, text: &str) -> Result<PublicKey> {
        let bytes = decode(field, text)?;
        if bytes == [0; KEY_LEN] {
            return Err(Error::invalid(field, "the all-zero key is not a key"));
        }
        Ok(PublicKey(bytes))
    }

    /// The base64 text.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.to_base64())
    }
}

impl std::fmt::Display for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_base64())
    }
}

impl serde::Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A peer's optional preshared key (secret: `Debug` redacts it; zeroized
/// on drop).
#[derive(Clone, PartialEq, Eq)]
pub struct PresharedKey([u8; KEY_LEN]);

impl PresharedKey {
    /// Parses a base64 preshared key (`field` names it in errors).
    pub fn parse(field: &str, text: &str) -> Result<PresharedKey> {
        Ok(PresharedKey(decode(field, text)?))
    }

    /// From stored bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> PresharedKey {
        PresharedKey(bytes)
    }

    /// The secret bytes, for the store and the engine's file only.
    pub fn expose(&self) -> [u8; KEY_LEN] {
        self.0
    }
}

impl Drop for PresharedKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for PresharedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PresharedKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7748 section 6.1: Alice's private key and public key.
    const ALICE_PRIVATE: &str = "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=";
    const ALICE_PUBLIC: &str = "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=";

    fn message(e: Error) -> (String, String) {
        match e {
            Error::Invalid { field, message } => (field, message),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn public_key_is_derived_as_rfc_7748_says() {
        let k = PrivateKey::parse("private_key", ALICE_PRIVATE).unwrap();
        assert_eq!(k.public_key().to_base64(), ALICE_PUBLIC);
        let back = PrivateKey::from_bytes(k.expose());
        assert_eq!(back, k);
    }

    #[test]
    fn generated_keys_differ_and_derive() {
        let a = PrivateKey::generate().unwrap();
        let b = PrivateKey::generate().unwrap();
        assert_ne!(a, b);
        assert_ne!(a.public_key(), b.public_key());
        assert_eq!(a.public_key().to_base64().len(), KEY_TEXT_LEN);
    }

    #[test]
    fn debug_never_shows_secrets() {
        let k = PrivateKey::parse("k", ALICE_PRIVATE).unwrap();
        let psk = PresharedKey::parse("k", ALICE_PRIVATE).unwrap();
        for text in [format!("{k:?}"), format!("{psk:?}")] {
            assert!(text.contains("redacted"), "{text}");
            assert!(!text.contains(&ALICE_PRIVATE[..10]), "{text}");
        }
    }

    #[test]
    fn bad_keys_name_the_field_and_never_echo_the_text() {
        let secretish = "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0!!=";
        for (text, needle) in [
            ("short", "characters"),
            (secretish, "base64"),
            // 44 characters of base64 that decode to 31 bytes... cannot
            // happen with padding; 33 bytes do not fit in 44 either, so
            // the length check and the decoder cover every case.
            ("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "all-zero"),
        ] {
            let (field, msg) = message(PublicKey::parse("peer.public_key", text).unwrap_err());
            assert_eq!(field, "peer.public_key");
            assert!(msg.contains(needle), "{msg}");
            assert!(!msg.contains(text), "{msg} echoes the key");
        }
        let (_, msg) = message(PrivateKey::parse("private_key", secretish).unwrap_err());
        assert!(!msg.contains(secretish));
        assert_eq!(
            PublicKey::parse("k", ALICE_PUBLIC).unwrap().to_base64(),
            ALICE_PUBLIC
        );
    }
}
