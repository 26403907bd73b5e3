//! API authentication: one bearer token, configured or generated at first
//! start and kept in a 0600 file; a middleware that answers 401 to every call
//! without it (except the OpenAPI document), comparing in constant time.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::api::error::ApiError;

/// Bytes of randomness in a generated token (hex-encoded to twice as many chars).
pub const TOKEN_BYTES: usize = 32;
/// Shortest token accepted from configuration.
pub const MIN_TOKEN_LEN: usize = 16;
/// Paths served without a token.
pub const PUBLIC_PATHS: &[&str] = &[crate::api::paths::OPENAPI];

/// The API's bearer token.
#[derive(Clone)]
pub struct ApiToken(Arc<str>);

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiToken(..)")
    }
}

impl ApiToken {
    /// A configured token; rejects short or non-printable ones.
    pub fn new(token: &str) -> anyhow::Result<ApiToken> {
        let t = token.trim();
        anyhow::ensure!(
            t.len() >= MIN_TOKEN_LEN,
            "API token must be at least {MIN_TOKEN_LEN} characters"
        );
        anyhow::ensure!(
            t.bytes().all(|b| b.is_ascii_graphic()),
            "API token must be printable ASCII without spaces"
        );
        Ok(ApiToken(t.into()))
    }

    /// A fresh random token: 32 bytes from the OS, hex-encoded.
    pub fn generate() -> anyhow::Result<ApiToken> {
        let mut raw = [0u8; TOKEN_BYTES];
        getrandom::getrandom(&mut raw).map_err(|e| anyhow::anyhow!("getrandom: {e}"))?;
        let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        Ok(ApiToken(hex.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `presented` is this token; time does not depend on where they differ.
    pub fn matches(&self, presented: &[u8]) -> bool {
        constant_time_eq(self.0.as_bytes(), presented)
    }
}

/// Equal-length comparison without early exit (length itself is not secret).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Where the token came from at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    /// Read from the token file.
    File,
    /// Generated now and written to the token file (show it once).
    Generated,
}

/// Reads the token from `path`, or generates one and writes it there with
/// mode 0600 (creating the parent directory 0700). A pre-existing file with
/// looser permissions is tightened to 0600.
pub fn load_or_create_token(path: &Path) -> anyhow::Result<(ApiToken, TokenSource)> {
    match fs::read_to_string(path) {
        Ok(text) => {
            let mode = fs::metadata(path)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(path = %path.display(), mode = format!("{mode:o}"), "token file readable by others; setting 0600");
                fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
            }
            let token = ApiToken::new(&text)
                .map_err(|e| anyhow::anyhow!("token file {}: {e}", path.display()))?;
            Ok((token, TokenSource::File))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                if !dir.exists() {
                    fs::create_dir_all(dir)?;
                    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
                }
            }
            let token = ApiToken::generate()?;
            // create_new: never follow or clobber a file that appeared meanwhile.
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| anyhow::anyhow!("creating token file {}: {e}", path.display()))?;
            // The umask cannot widen 0600, but make it explicit.
            f.set_permissions(fs::Permissions::from_mode(0o600))?;
            writeln!(f, "{}", token.as_str())?;
            f.sync_all()?;
            Ok((token, TokenSource::Generated))
        }
        Err(e) => Err(anyhow::anyhow!(
            "reading token file {}: {e}",
            path.display()
        )),
    }
}

/// Middleware: requires `Authorization: Bearer <token>` except on public paths.
pub async fn require_token(State(token): State<ApiToken>, req: Request, next: Next) -> Response {
    if PUBLIC_PATHS.contains(&req.uri().path()) {
        return next.run(req).await;
    }
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| bearer(v.as_bytes()));
    match presented {
        Some(p) if token.matches(p) => next.run(req).await,
        Some(_) => ApiError::unauthorized("invalid bearer token").into_response(),
        None => ApiError::unauthorized("missing bearer token (Authorization: Bearer <token>)")
            .into_response(),
    }
}

/// The credentials of an `Authorization: Bearer ...` header value.
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let rest = rest.trim_ascii();
    (!rest.is_empty()).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_works() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer(b"Bearer xyz"), Some(&b"xyz"[..]));
        assert_eq!(bearer(b"bearer  xyz "), Some(&b"xyz"[..]));
        assert_eq!(bearer(b"Basic xyz"), None);
        assert_eq!(bearer(b"Bearer "), None);
        assert_eq!(bearer(b"Bear"), None);
    }

    #[test]
    fn generated_tokens_are_hex_and_distinct() {
        let a = ApiToken::generate().unwrap();
        let b = ApiToken::generate().unwrap();
        assert_eq!(a.as_str().len(), 2 * TOKEN_BYTES);
        assert!(a.as_str().bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a.as_str(), b.as_str());
    }

    #[test]
    fn configured_token_rules() {
        assert!(ApiToken::new("short").is_err());
        assert!(ApiToken::new("has a space in the middle").is_err());
        assert_eq!(
            ApiToken::new(" 0123456789abcdef\n").unwrap().as_str(),
            "0123456789abcdef"
        );
    }
}
