//! The control plane's error type: what went wrong with a request, in terms
//! the API maps onto a status code and a JSON body naming the field.

/// Why a request against the desired state failed. `field` is a path into the
/// request (`prefix`, `next_hops[1].via`, `routes[3].prefix`) or a path
/// parameter (`org`, `id`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The request is malformed or violates a rule on its own (400).
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// A referenced organization or resource does not exist (404).
    #[error("{field}: {message}")]
    NotFound { field: String, message: String },
    /// The request clashes with existing state (duplicate, still in use) (409).
    #[error("{field}: {message}")]
    Conflict { field: String, message: String },
    /// The embedded store failed; nothing was applied (500).
    #[error("store: {0}")]
    Storage(String),
    /// The store actor is gone (shutting down) (503).
    #[error("store unavailable")]
    Unavailable,
}

impl Error {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
    pub fn not_found(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::NotFound {
            field: field.into(),
            message: message.into(),
        }
    }
    pub fn conflict(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Conflict {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The same error with its field nested under `prefix` (e.g. `routes[2].`).
    pub fn nested(self, prefix: &str) -> Self {
        match self {
            Error::Invalid { field, message } => Error::Invalid {
                field: format!("{prefix}{field}"),
                message,
            },
            Error::NotFound { field, message } => Error::NotFound {
                field: format!("{prefix}{field}"),
                message,
            },
            Error::Conflict { field, message } => Error::Conflict {
                field: format!("{prefix}{field}"),
                message,
            },
            other => other,
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Storage(e.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
