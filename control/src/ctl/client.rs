//! HTTP side of `patronusctl`: a blocking client for the REST API (ureq),
//! the token lookup, and [`CtlError`], which maps every failure to the
//! exit code the CLI promises (1 API error, 2 usage, 3 cannot connect).

use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

/// How long to wait for the TCP connection to the API.
const CONNECT_TIMEOUT_SECS: u64 = 5;
/// How long a whole request may take (the store answers in milliseconds).
const REQUEST_TIMEOUT_SECS: u64 = 60;
/// Most characters of a non-JSON answer quoted in an error.
const QUOTE_CHARS: usize = 200;

/// Why a command failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CtlError {
    /// Bad command line, unreadable file or token: exit 2.
    Usage(String),
    /// The API answered with an error (or with something that is not the API): exit 1.
    Api {
        /// HTTP status, 0 when the answer was a success status we could not use.
        status: u16,
        code: String,
        field: Option<String>,
        message: String,
    },
    /// The API could not be reached: exit 3.
    Connect(String),
}

impl CtlError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CtlError::Api { .. } => 1,
            CtlError::Usage(_) => 2,
            CtlError::Connect(_) => 3,
        }
    }

    /// An error found on the client side that reads like an API error
    /// (e.g. no route has the prefix given to `route del`).
    pub fn not_found(field: &str, message: impl Into<String>) -> Self {
        CtlError::Api {
            status: 404,
            code: "not_found".into(),
            field: Some(field.into()),
            message: message.into(),
        }
    }
}

impl fmt::Display for CtlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CtlError::Usage(m) => write!(f, "error: {m}"),
            CtlError::Connect(m) => write!(f, "error: cannot connect: {m}"),
            CtlError::Api {
                status,
                code,
                field,
                message,
            } => {
                write!(f, "error: {code}")?;
                if let Some(field) = field {
                    write!(f, " ({field})")?;
                }
                write!(f, ": {message}")?;
                if *status != 0 {
                    write!(f, " [HTTP {status}]")?;
                }
                Ok(())
            }
        }
    }
}

/// Where the token comes from, in order of precedence.
#[derive(Debug, Default)]
pub struct TokenSources<'a> {
    pub flag: Option<&'a str>,
    pub file: Option<&'a Path>,
    pub env: Option<String>,
    pub default_file: Option<&'a Path>,
}

/// Picks the token: `--token`, `--token-file`, `PATRONUS_TOKEN`, then the
/// default file if it is readable. No token at all is allowed (the API will
/// answer 401, which is reported as such).
pub fn resolve_token(src: &TokenSources<'_>) -> Result<Option<String>, CtlError> {
    if let Some(t) = src.flag {
        return non_empty(t.trim(), "--token");
    }
    if let Some(p) = src.file {
        let text = std::fs::read_to_string(p)
            .map_err(|e| CtlError::Usage(format!("cannot read token file {}: {e}", p.display())))?;
        return non_empty(text.trim(), &format!("token file {}", p.display()));
    }
    if let Some(t) = &src.env {
        return non_empty(t.trim(), "PATRONUS_TOKEN");
    }
    if let Some(p) = src.default_file {
        if let Ok(text) = std::fs::read_to_string(p) {
            let t = text.trim();
            if !t.is_empty() {
                return Ok(Some(t.to_owned()));
            }
        }
    }
    Ok(None)
}

fn non_empty(t: &str, what: &str) -> Result<Option<String>, CtlError> {
    if t.is_empty() {
        Err(CtlError::Usage(format!("{what} is empty")))
    } else {
        Ok(Some(t.to_owned()))
    }
}

/// A blocking client for one API base URL.
pub struct Client {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl Client {
    /// `base` is e.g. `http://127.0.0.1:8080` (a trailing `/` is dropped).
    pub fn new(base: &str, token: Option<String>) -> Result<Client, CtlError> {
        let base = base.trim_end_matches('/').to_owned();
        if !base.starts_with("http://") && !base.starts_with("https://") {
            return Err(CtlError::Usage(format!(
                "--api {base:?} must start with http://"
            )));
        }
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(CONNECT_TIMEOUT_SECS))
            .timeout(Duration::from_secs(REQUEST_TIMEOUT_SECS))
            .redirects(0)
            .build();
        Ok(Client { base, token, agent })
    }

    pub fn get(&self, path: &str) -> Result<Value, CtlError> {
        self.send("GET", path, None)
    }
    pub fn post(&self, path: &str, body: &Value) -> Result<Value, CtlError> {
        self.send("POST", path, Some(body))
    }
    pub fn put(&self, path: &str, body: &Value) -> Result<Value, CtlError> {
        self.send("PUT", path, Some(body))
    }
    pub fn patch(&self, path: &str, body: &Value) -> Result<Value, CtlError> {
        self.send("PATCH", path, Some(body))
    }
    /// Returns `Value::Null` for the API's empty 204 answer.
    pub fn delete(&self, path: &str) -> Result<Value, CtlError> {
        self.send("DELETE", path, None)
    }

    /// POSTs raw bytes with `content_type` (a model file upload).
    pub fn post_bytes(
        &self,
        path: &str,
        content_type: &str,
        bytes: &[u8],
    ) -> Result<Value, CtlError> {
        self.send_raw("POST", path, Some((content_type, bytes)))
    }

    /// Sends one request; `path` starts with `/api/v1`.
    fn send(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, CtlError> {
        let text = body.map(Value::to_string);
        self.send_raw(
            method,
            path,
            text.as_deref().map(|t| ("application/json", t.as_bytes())),
        )
    }

    /// Sends one request with an optional `(content type, bytes)` body.
    fn send_raw(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, &[u8])>,
    ) -> Result<Value, CtlError> {
        let url = format!("{}{path}", self.base);
        let mut req = self
            .agent
            .request(method, &url)
            .set("Accept", "application/json");
        if let Some(t) = &self.token {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        let result = match body {
            Some((ct, b)) => req.set("Content-Type", ct).send_bytes(b),
            None => req.call(),
        };
        match result {
            Ok(resp) => {
                let status = resp.status();
                let text = read_body(resp, &url)?;
                if text.trim().is_empty() {
                    return Ok(Value::Null);
                }
                serde_json::from_str(&text).map_err(|e| CtlError::Api {
                    status,
                    code: "bad_response".into(),
                    field: None,
                    message: format!(
                        "{method} {url} answered with something that is not JSON ({e}): {}",
                        quote(&text)
                    ),
                })
            }
            Err(ureq::Error::Status(status, resp)) => {
                let text = read_body(resp, &url).unwrap_or_default();
                Err(api_error(status, &text))
            }
            Err(ureq::Error::Transport(t)) => Err(transport_error(&url, &t)),
        }
    }
}

/// Largest answer read (a list of a million routes is about 90 MB; ureq's
/// `into_string` stops at 10 MB).
const MAX_ANSWER_BYTES: u64 = 1 << 30;

fn read_body(resp: ureq::Response, url: &str) -> Result<String, CtlError> {
    use std::io::Read;
    let mut text = String::new();
    resp.into_reader()
        .take(MAX_ANSWER_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| CtlError::Connect(format!("{url}: reading the answer failed: {e}")))?;
    Ok(text)
}

/// Maps an error answer to [`CtlError::Api`], using the API's typed body
/// `{"error": {"code", "field", "message"}}` when it is there.
pub fn api_error(status: u16, text: &str) -> CtlError {
    let parsed: Option<Value> = serde_json::from_str(text).ok();
    let err = parsed.as_ref().and_then(|v| v.get("error"));
    let s = |k: &str| err.and_then(|e| e.get(k)).and_then(Value::as_str);
    match s("code") {
        Some(code) => CtlError::Api {
            status,
            code: code.to_owned(),
            field: s("field").map(str::to_owned),
            message: s("message").unwrap_or("").to_owned(),
        },
        None => CtlError::Api {
            status,
            code: format!("http_{status}"),
            field: None,
            message: if text.trim().is_empty() {
                "the server gave no details".to_owned()
            } else {
                format!("the server said: {}", quote(text))
            },
        },
    }
}

fn transport_error(url: &str, t: &ureq::Transport) -> CtlError {
    use ureq::ErrorKind as K;
    match t.kind() {
        K::InvalidUrl | K::UnknownScheme | K::InsecureRequestHttpsOnly => {
            CtlError::Usage(format!("bad API address {url}: {t}"))
        }
        _ => CtlError::Connect(format!("{url}: {t}")),
    }
}

/// The first characters of `text` on one line, for error messages.
fn quote(text: &str) -> String {
    let one_line: String = text
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(QUOTE_CHARS)
        .collect();
    if text.trim().chars().count() > QUOTE_CHARS {
        format!("{one_line:?}…")
    } else {
        format!("{one_line:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_error_uses_typed_body() {
        let e = api_error(
            400,
            r#"{"error":{"code":"invalid_field","field":"prefix","message":"bad"}}"#,
        );
        assert_eq!(e.exit_code(), 1);
        assert_eq!(
            e.to_string(),
            "error: invalid_field (prefix): bad [HTTP 400]"
        );
    }

    #[test]
    fn api_error_survives_non_json() {
        let e = api_error(502, "<html>Bad Gateway</html>");
        assert_eq!(
            e.to_string(),
            "error: http_502: the server said: \"<html>Bad Gateway</html>\" [HTTP 502]"
        );
        let e = api_error(500, "");
        assert!(e.to_string().contains("http_500"), "{e}");
    }

    #[test]
    fn token_precedence() {
        let flag = TokenSources {
            flag: Some(" a "),
            env: Some("b".into()),
            ..Default::default()
        };
        assert_eq!(resolve_token(&flag).unwrap().as_deref(), Some("a"));
        let env = TokenSources {
            env: Some("b\n".into()),
            default_file: Some(Path::new("/nonexistent/patronus-token")),
            ..Default::default()
        };
        assert_eq!(resolve_token(&env).unwrap().as_deref(), Some("b"));
        let none = TokenSources {
            default_file: Some(Path::new("/nonexistent/patronus-token")),
            ..Default::default()
        };
        assert_eq!(resolve_token(&none).unwrap(), None);
        let missing_file = TokenSources {
            file: Some(Path::new("/nonexistent/patronus-token")),
            ..Default::default()
        };
        assert_eq!(resolve_token(&missing_file).unwrap_err().exit_code(), 2);
    }
}
