//! Handlers for BGP on `/bgp`: the global settings, neighbors by address
//! (with RFC 8212 warnings for eBGP neighbors without a policy), policies
//! by name, originated networks by prefix (URL-encoded: `10.0.0.0%2F24`),
//! and what the running speaker answers through [`BgpStatus`]: a
//! neighbor's session state and the RIB, paged.

use std::collections::HashMap;
use std::net::IpAddr;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use patronus_bgp::policy::PolicyConfig;
use patronus_bgp::types::Prefix;
use serde::Serialize;
use serde_json::Value;

use super::engine_pages::only_params;
use super::error::ApiError;
use super::extract::{parse_json, JsonBody};
use super::AppState;
use crate::bgp::model::{
    parse_prefix, validate_policy, validate_policy_name, GlobalSpec, Neighbor, NeighborDef,
    NeighborPatch, NeighborSpec, Network, NetworkSpec,
};
use crate::bgp::status::{RibQuery, StatusError, DEFAULT_RIB_LIMIT, MAX_RIB_LIMIT};

/// A neighbor as the API returns it.
#[derive(Debug, Serialize)]
pub struct NeighborView {
    #[serde(flatten)]
    pub def: NeighborDef,
    /// eBGP (remote AS not ours) or iBGP; null while the local AS is unset.
    pub ebgp: Option<bool>,
    /// E.g. RFC 8212: an eBGP neighbor without import or export policy
    /// exchanges no routes in that direction.
    pub warnings: Vec<String>,
}

impl From<Neighbor> for NeighborView {
    fn from(n: Neighbor) -> Self {
        NeighborView {
            ebgp: n.ebgp(),
            warnings: n.warnings(),
            def: n.def,
        }
    }
}

#[derive(Debug, Serialize)]
struct NeighborList {
    neighbors: Vec<NeighborView>,
}

#[derive(Debug, Serialize)]
struct PolicyList {
    policies: Vec<PolicyConfig>,
}

#[derive(Debug, Serialize)]
struct NetworkList {
    networks: Vec<Network>,
}

impl From<StatusError> for ApiError {
    fn from(e: StatusError) -> Self {
        let message = e.to_string();
        match e {
            StatusError::NotRunning | StatusError::Unavailable(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "bgp_unavailable",
                None,
                message,
            ),
            StatusError::NoSuchNeighbor(_) => ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                Some("address".into()),
                message,
            ),
            StatusError::BadCursor(_) => ApiError::invalid("cursor", message),
        }
    }
}

/// The `{address}` path segment.
fn neighbor_address(text: &str) -> Result<IpAddr, ApiError> {
    text.parse()
        .map_err(|_| ApiError::invalid("address", format!("{text:?} is not an IP address")))
}

fn neighbor_location(a: IpAddr) -> String {
    format!("/api/v1/bgp/neighbors/{a}")
}

/// `10.0.0.0/24` → `10.0.0.0%2F24` (the only character to escape).
fn network_location(p: Prefix) -> String {
    format!("/api/v1/bgp/networks/{}", p.to_string().replace('/', "%2F"))
}

pub async fn get_global(State(st): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(st.store.get_bgp().await?))
}

pub async fn put_global(
    State(st): State<AppState>,
    JsonBody(spec): JsonBody<GlobalSpec>,
) -> Result<impl IntoResponse, ApiError> {
    let g = spec.validate()?;
    Ok(Json(st.store.put_bgp(g).await?))
}

pub async fn list_neighbors(State(st): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let list = st.store.list_bgp_neighbors().await?;
    Ok(Json(NeighborList {
        neighbors: list.into_iter().map(NeighborView::from).collect(),
    }))
}

pub async fn create_neighbor(
    State(st): State<AppState>,
    JsonBody(spec): JsonBody<NeighborSpec>,
) -> Result<impl IntoResponse, ApiError> {
    let def = spec.validate()?;
    let n = st.store.create_bgp_neighbor(def).await?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, neighbor_location(n.def.address))],
        Json(NeighborView::from(n)),
    ))
}

pub async fn get_neighbor(
    State(st): State<AppState>,
    Path(address): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let a = neighbor_address(&address)?;
    Ok(Json(NeighborView::from(
        st.store.get_bgp_neighbor(a).await?,
    )))
}

pub async fn patch_neighbor(
    State(st): State<AppState>,
    Path(address): Path<String>,
    JsonBody(patch): JsonBody<NeighborPatch>,
) -> Result<impl IntoResponse, ApiError> {
    let a = neighbor_address(&address)?;
    let n = st.store.patch_bgp_neighbor(a, patch).await?;
    Ok(Json(NeighborView::from(n)))
}

pub async fn delete_neighbor(
    State(st): State<AppState>,
    Path(address): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let a = neighbor_address(&address)?;
    st.store.delete_bgp_neighbor(a).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The session with a configured neighbor, from the running speaker.
pub async fn neighbor_state(
    State(st): State<AppState>,
    Path(address): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let a = neighbor_address(&address)?;
    // 404 for an address that is not configured, whatever the speaker says.
    st.store.get_bgp_neighbor(a).await?;
    Ok(Json(st.bgp.neighbor(a).await?))
}

pub async fn list_policies(State(st): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(PolicyList {
        policies: st.store.list_bgp_policies().await?,
    }))
}

fn policy_name(name: &str) -> Result<(), ApiError> {
    // A name that cannot exist is a 404, like any policy that does not.
    validate_policy_name("name", name).map_err(|_| {
        ApiError::from(crate::Error::not_found(
            "name",
            format!("no BGP policy named {name:?}"),
        ))
    })
}

pub async fn get_policy(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    policy_name(&name)?;
    Ok(Json(st.store.get_bgp_policy(name).await?))
}

/// Creates (201) or replaces (200) policy `name`; the body's `name` may be
/// left out (it is the path's) and must be the path's when given.
pub async fn put_policy(
    State(st): State<AppState>,
    Path(name): Path<String>,
    JsonBody(mut body): JsonBody<Value>,
) -> Result<impl IntoResponse, ApiError> {
    if let Some(m) = body.as_object_mut() {
        m.entry("name")
            .or_insert_with(|| Value::String(name.clone()));
    }
    let bytes = serde_json::to_vec(&body)
        .map_err(|e| ApiError::invalid(".", format!("unreadable body: {e}")))?;
    let config: PolicyConfig = parse_json(&bytes)?;
    let canonical = validate_policy(&name, &config)?;
    let created = st.store.put_bgp_policy(canonical.clone()).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        [(header::LOCATION, format!("/api/v1/bgp/policies/{name}"))],
        Json(canonical),
    ))
}

pub async fn delete_policy(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    policy_name(&name)?;
    st.store.delete_bgp_policy(name).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_networks(State(st): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let list = st.store.list_bgp_networks().await?;
    Ok(Json(NetworkList {
        networks: list.into_iter().map(|prefix| Network { prefix }).collect(),
    }))
}

pub async fn add_network(
    State(st): State<AppState>,
    JsonBody(spec): JsonBody<NetworkSpec>,
) -> Result<impl IntoResponse, ApiError> {
    let p = spec.validate()?;
    let prefix = st.store.add_bgp_network(p).await?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, network_location(prefix))],
        Json(Network { prefix }),
    ))
}

pub async fn delete_network(
    State(st): State<AppState>,
    Path(prefix): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let p = parse_prefix("prefix", &prefix)?;
    st.store.delete_bgp_network(p).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `?prefix=P&cursor=C&limit=N` checked before the speaker is asked.
pub fn rib_query(q: &HashMap<String, String>) -> Result<RibQuery, ApiError> {
    only_params(q, &["prefix", "cursor", "limit"])?;
    let prefix = q
        .get("prefix")
        .map(|t| parse_prefix("prefix", t))
        .transpose()?;
    let limit = match q.get("limit") {
        None => DEFAULT_RIB_LIMIT,
        Some(t) => match t.parse::<u32>() {
            Ok(n) if (1..=MAX_RIB_LIMIT).contains(&n) && !t.starts_with('+') => n,
            _ => {
                return Err(ApiError::invalid(
                    "limit",
                    format!("{t:?} is not an integer in 1..={MAX_RIB_LIMIT}"),
                ))
            }
        },
    };
    let cursor = q.get("cursor").cloned();
    if cursor.as_deref() == Some("") {
        return Err(ApiError::invalid("cursor", "an empty cursor"));
    }
    Ok(RibQuery {
        prefix,
        cursor,
        limit,
    })
}

pub async fn rib(
    State(st): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<impl IntoResponse, ApiError> {
    let query = rib_query(&q)?;
    Ok(Json(st.bgp.rib(query).await?))
}

/// `GET /bgp/summary`: 503 without `--bgp`; `running: false` while the
/// global settings are unset or disabled.
pub async fn summary(State(st): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(st.bgp.summary().await?))
}
