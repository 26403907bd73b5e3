//! Patronus control process library.
//!
//! How the parts fit: [`api::app`] is the axum router (REST under `/api/v1`,
//! bearer-token middleware from [`auth`], typed JSON errors). Handlers parse
//! and validate requests into [`model`] types, then send a typed request over
//! a bounded channel to the store actor ([`state`]), a single thread that owns
//! the SQLite [`store`] and applies each change in one transaction (bumping
//! the desired-state generation). The binary (`main.rs`) wires the store,
//! token and listener together and shuts down gracefully on SIGINT/SIGTERM.
#![forbid(unsafe_code)]

pub mod api;
pub mod auth;
pub mod bgp;
pub mod ctl;
pub mod engine_query;
pub mod engine_view;
pub mod error;
pub mod flows;
pub mod lb;
pub mod metrics;
pub mod model;
pub mod models;
pub mod nat;
pub mod push;
pub mod state;
pub mod store;
pub mod wan;
pub mod wg;

pub use api::{app, AppState};
pub use error::Error;
