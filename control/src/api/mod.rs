//! The REST API (axum) under `/api/v1`: [`app`] builds the router from an
//! [`AppState`] (a store handle, the token, the engine view), so tests drive it with
//! `oneshot`. Every route but the OpenAPI document requires the bearer token.

mod bgp;
mod engine_pages;
pub mod error;
pub mod extract;
mod flows;
mod interfaces;
mod lb;
mod models;
mod nat;
pub mod openapi;
mod openapi_bgp;
mod openapi_flows;
mod openapi_lb;
mod openapi_models;
mod openapi_nat;
mod openapi_wan;
mod openapi_wg;
mod orgs;
pub mod paths;
mod routes;
mod status;
mod wan;
mod wg;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, patch, post};
use axum::{middleware, Router};
use serde::Serialize;

use crate::auth::{require_token, ApiToken};
use crate::bgp::status::BgpStatus;
use crate::metrics::EngineSource;
use crate::state::StoreHandle;

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// Largest body of a bulk route request (a million routes fit).
pub const MAX_BULK_BODY_BYTES: usize = 256 << 20;

/// Largest model file upload.
pub const MAX_MODEL_BODY_BYTES: usize = crate::models::model::MAX_MODEL_BYTES;

/// What every handler gets: the way to the store actor, the API token,
/// the engine view (`None`: no engine link, status says not attached) and
/// the BGP speaker's answers (`bgp::status::NoSpeaker` when none runs).
#[derive(Clone)]
pub struct AppState {
    pub store: StoreHandle,
    pub token: ApiToken,
    pub engine: Option<Arc<dyn EngineSource>>,
    pub bgp: Arc<dyn BgpStatus>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("store", &self.store)
            .field("token", &self.token)
            .field("engine", &self.engine.as_ref().map(|_| "attached view"))
            .field("bgp", &"status source")
            .finish()
    }
}

/// A list response, `{"items": [...]}`; a paged list whose page was full
/// also carries `next_offset`, the `offset` of the next page.
#[derive(Debug, Serialize)]
pub struct List<T> {
    pub items: Vec<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_offset: Option<u64>,
}

impl<T> List<T> {
    pub fn new(items: Vec<T>) -> Self {
        List {
            items,
            next_offset: None,
        }
    }
}

/// The API router.
pub fn app(state: AppState) -> Router {
    use paths::*;
    let token = state.token.clone();
    Router::new()
        .route(OPENAPI, get(openapi::serve))
        .route(STATUS, get(status::status))
        .route(COUNTERS, get(status::counters))
        .route(ORGS, get(orgs::list).post(orgs::create))
        .route(ORG, get(orgs::get).delete(orgs::delete))
        .route(
            ORG_INTERFACES,
            get(interfaces::list).post(interfaces::create),
        )
        .route(INTERFACES, get(interfaces::list).post(interfaces::create))
        .route(
            ORG_INTERFACE,
            get(interfaces::get)
                .put(interfaces::replace)
                .delete(interfaces::delete),
        )
        .route(
            INTERFACE,
            get(interfaces::get)
                .put(interfaces::replace)
                .delete(interfaces::delete),
        )
        .route(
            ORG_ROUTES,
            get(routes::list)
                .post(routes::create)
                .put(routes::replace_all),
        )
        .route(
            ROUTES,
            get(routes::list)
                .post(routes::create)
                .put(routes::replace_all),
        )
        .route(
            ORG_ROUTE,
            get(routes::get).put(routes::replace).delete(routes::delete),
        )
        .route(
            ROUTE,
            get(routes::get).put(routes::replace).delete(routes::delete),
        )
        .route(
            ORG_ROUTES_BULK,
            post(routes::bulk).layer(DefaultBodyLimit::max(MAX_BULK_BODY_BYTES)),
        )
        .route(
            ROUTES_BULK,
            post(routes::bulk).layer(DefaultBodyLimit::max(MAX_BULK_BODY_BYTES)),
        )
        .route(NAT, get(nat::get).put(nat::replace).delete(nat::delete))
        .route(NAT_FORWARDS, get(nat::list_forwards).post(nat::add_forward))
        .route(NAT_FORWARD, delete(nat::delete_forward))
        .route(NAT_POOL, post(nat::add_pool_address))
        .route(NAT_POOL_ADDRESS, delete(nat::delete_pool_address))
        .route(NAT_SESSIONS, get(nat::sessions))
        .route(FLOWS, get(flows::list))
        .route(FLOWS_SUMMARY, get(flows::summary))
        .route(WG_TUNNELS, get(wg::list_tunnels).post(wg::create_tunnel))
        .route(
            WG_TUNNEL,
            get(wg::get_tunnel)
                .put(wg::update_tunnel)
                .delete(wg::delete_tunnel),
        )
        .route(WG_PEERS, get(wg::list_peers).post(wg::create_peer))
        .route(
            WG_PEER,
            get(wg::get_peer)
                .put(wg::replace_peer)
                .delete(wg::delete_peer),
        )
        .route(
            MODELS,
            get(models::list)
                .post(models::upload)
                .layer(DefaultBodyLimit::max(MAX_MODEL_BODY_BYTES)),
        )
        .route(MODEL, get(models::get).delete(models::delete))
        .route(MODEL_PROMOTE, post(models::promote))
        .route(MODELS_ROLLBACK, post(models::rollback))
        .route(MODELS_DEACTIVATE, post(models::deactivate))
        .route(LB_VIPS, get(lb::list_vips).post(lb::create_vip))
        .route(
            LB_VIP,
            get(lb::get_vip).put(lb::update_vip).delete(lb::delete_vip),
        )
        .route(LB_BACKENDS, post(lb::add_backend))
        .route(
            LB_BACKEND,
            patch(lb::set_backend).delete(lb::remove_backend),
        )
        .route(BGP, get(bgp::get_global).put(bgp::put_global))
        .route(
            BGP_NEIGHBORS,
            get(bgp::list_neighbors).post(bgp::create_neighbor),
        )
        .route(
            BGP_NEIGHBOR,
            get(bgp::get_neighbor)
                .patch(bgp::patch_neighbor)
                .delete(bgp::delete_neighbor),
        )
        .route(BGP_NEIGHBOR_STATE, get(bgp::neighbor_state))
        .route(BGP_POLICIES, get(bgp::list_policies))
        .route(
            BGP_POLICY,
            get(bgp::get_policy)
                .put(bgp::put_policy)
                .delete(bgp::delete_policy),
        )
        .route(BGP_NETWORKS, get(bgp::list_networks).post(bgp::add_network))
        .route(BGP_NETWORK, delete(bgp::delete_network))
        .route(BGP_RIB, get(bgp::rib))
        .route(BGP_SUMMARY, get(bgp::summary))
        .route(WAN_PATHS, get(wan::paths))
        .route(WAN_POLICIES, get(wan::policies))
        .fallback(error::no_such_path)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(token, require_token))
        .with_state(state)
}

/// [`app`] with request counts and latency recorded into `metrics` (by route
/// template; the layer sits outside auth, so rejected requests count too).
pub fn app_with_metrics(state: AppState, metrics: crate::metrics::Metrics) -> Router {
    app(state).layer(middleware::from_fn_with_state(
        metrics,
        crate::metrics::track_api,
    ))
}
