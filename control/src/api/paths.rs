//! Every path the API serves, in one place (the router and the OpenAPI test use these).
//! Resources are addressed by their numeric `id` (server-assigned, never reused);
//! `/api/v1/interfaces` and `/api/v1/routes` are shortcuts for organization `default`.
//! `routes/bulk` is a static segment, so it never reads as a route id.
//! NAT is one per box (not per organization): `/api/v1/nat...`; so are
//! WireGuard tunnels, addressed by name: `/api/v1/wg/tunnels/{tunnel}`;
//! the model registry, `/api/v1/models` (`rollback` and `deactivate`
//! are static segments, never read as model ids); and the engine's
//! classified flows (`/api/v1/flows`, `/api/v1/flows/summary`); and the
//! load balancer's VIPs by name, their backends by `ADDRESS:PORT`
//! (`/api/v1/lb/vips/{name}/backends/{backend}`); and BGP
//! (`/api/v1/bgp...`): neighbors by address, policies by name, networks by
//! URL-encoded prefix (`/api/v1/bgp/networks/10.0.0.0%2F24`); and the
//! engine's WAN paths and steering policies (`/api/v1/wan/...`, read-only).

pub const OPENAPI: &str = "/api/v1/openapi.json";
pub const STATUS: &str = "/api/v1/status";
pub const COUNTERS: &str = "/api/v1/counters";
pub const ORGS: &str = "/api/v1/orgs";
pub const ORG: &str = "/api/v1/orgs/{org}";
pub const ORG_INTERFACES: &str = "/api/v1/orgs/{org}/interfaces";
pub const ORG_INTERFACE: &str = "/api/v1/orgs/{org}/interfaces/{id}";
pub const ORG_ROUTES: &str = "/api/v1/orgs/{org}/routes";
pub const ORG_ROUTE: &str = "/api/v1/orgs/{org}/routes/{id}";
pub const ORG_ROUTES_BULK: &str = "/api/v1/orgs/{org}/routes/bulk";
pub const INTERFACES: &str = "/api/v1/interfaces";
pub const INTERFACE: &str = "/api/v1/interfaces/{id}";
pub const ROUTES: &str = "/api/v1/routes";
pub const ROUTE: &str = "/api/v1/routes/{id}";
pub const ROUTES_BULK: &str = "/api/v1/routes/bulk";
pub const NAT: &str = "/api/v1/nat";
pub const NAT_FORWARDS: &str = "/api/v1/nat/forwards";
pub const NAT_FORWARD: &str = "/api/v1/nat/forwards/{id}";
pub const NAT_POOL: &str = "/api/v1/nat/pool";
pub const NAT_POOL_ADDRESS: &str = "/api/v1/nat/pool/{address}";
pub const NAT_SESSIONS: &str = "/api/v1/nat/sessions";
pub const FLOWS: &str = "/api/v1/flows";
pub const FLOWS_SUMMARY: &str = "/api/v1/flows/summary";
pub const WG_TUNNELS: &str = "/api/v1/wg/tunnels";
pub const WG_TUNNEL: &str = "/api/v1/wg/tunnels/{tunnel}";
pub const WG_PEERS: &str = "/api/v1/wg/tunnels/{tunnel}/peers";
pub const WG_PEER: &str = "/api/v1/wg/tunnels/{tunnel}/peers/{id}";
pub const MODELS: &str = "/api/v1/models";
pub const MODEL: &str = "/api/v1/models/{id}";
pub const MODEL_PROMOTE: &str = "/api/v1/models/{id}/promote";
pub const MODELS_ROLLBACK: &str = "/api/v1/models/rollback";
pub const MODELS_DEACTIVATE: &str = "/api/v1/models/deactivate";
pub const LB_VIPS: &str = "/api/v1/lb/vips";
pub const LB_VIP: &str = "/api/v1/lb/vips/{name}";
pub const LB_BACKENDS: &str = "/api/v1/lb/vips/{name}/backends";
pub const LB_BACKEND: &str = "/api/v1/lb/vips/{name}/backends/{backend}";
pub const BGP: &str = "/api/v1/bgp";
pub const BGP_NEIGHBORS: &str = "/api/v1/bgp/neighbors";
pub const BGP_NEIGHBOR: &str = "/api/v1/bgp/neighbors/{address}";
pub const BGP_NEIGHBOR_STATE: &str = "/api/v1/bgp/neighbors/{address}/state";
pub const BGP_POLICIES: &str = "/api/v1/bgp/policies";
pub const BGP_POLICY: &str = "/api/v1/bgp/policies/{name}";
pub const BGP_NETWORKS: &str = "/api/v1/bgp/networks";
pub const BGP_NETWORK: &str = "/api/v1/bgp/networks/{prefix}";
pub const BGP_RIB: &str = "/api/v1/bgp/rib";
pub const BGP_SUMMARY: &str = "/api/v1/bgp/summary";
pub const WAN_PATHS: &str = "/api/v1/wan/paths";
pub const WAN_POLICIES: &str = "/api/v1/wan/policies";

/// Every served path with its methods.
pub const ALL: &[(&str, &[&str])] = &[
    (OPENAPI, &["GET"]),
    (STATUS, &["GET"]),
    (COUNTERS, &["GET"]),
    (ORGS, &["GET", "POST"]),
    (ORG, &["GET", "DELETE"]),
    (ORG_INTERFACES, &["GET", "POST"]),
    (ORG_INTERFACE, &["GET", "PUT", "DELETE"]),
    (ORG_ROUTES, &["GET", "POST", "PUT"]),
    (ORG_ROUTE, &["GET", "PUT", "DELETE"]),
    (ORG_ROUTES_BULK, &["POST"]),
    (INTERFACES, &["GET", "POST"]),
    (INTERFACE, &["GET", "PUT", "DELETE"]),
    (ROUTES, &["GET", "POST", "PUT"]),
    (ROUTE, &["GET", "PUT", "DELETE"]),
    (ROUTES_BULK, &["POST"]),
    (NAT, &["GET", "PUT", "DELETE"]),
    (NAT_FORWARDS, &["GET", "POST"]),
    (NAT_FORWARD, &["DELETE"]),
    (NAT_POOL, &["POST"]),
    (NAT_POOL_ADDRESS, &["DELETE"]),
    (NAT_SESSIONS, &["GET"]),
    (FLOWS, &["GET"]),
    (FLOWS_SUMMARY, &["GET"]),
    (WG_TUNNELS, &["GET", "POST"]),
    (WG_TUNNEL, &["GET", "PUT", "DELETE"]),
    (WG_PEERS, &["GET", "POST"]),
    (WG_PEER, &["GET", "PUT", "DELETE"]),
    (MODELS, &["GET", "POST"]),
    (MODEL, &["GET", "DELETE"]),
    (MODEL_PROMOTE, &["POST"]),
    (MODELS_ROLLBACK, &["POST"]),
    (MODELS_DEACTIVATE, &["POST"]),
    (LB_VIPS, &["GET", "POST"]),
    (LB_VIP, &["GET", "PUT", "DELETE"]),
    (LB_BACKENDS, &["POST"]),
    (LB_BACKEND, &["PATCH", "DELETE"]),
    (BGP, &["GET", "PUT"]),
    (BGP_NEIGHBORS, &["GET", "POST"]),
    (BGP_NEIGHBOR, &["GET", "PATCH", "DELETE"]),
    (BGP_NEIGHBOR_STATE, &["GET"]),
    (BGP_POLICIES, &["GET"]),
    (BGP_POLICY, &["GET", "PUT", "DELETE"]),
    (BGP_NETWORKS, &["GET", "POST"]),
    (BGP_NETWORK, &["DELETE"]),
    (BGP_RIB, &["GET"]),
    (BGP_SUMMARY, &["GET"]),
    (WAN_PATHS, &["GET"]),
    (WAN_POLICIES, &["GET"]),
];
