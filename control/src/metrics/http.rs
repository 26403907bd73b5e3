//! HTTP side of the metrics: the `/metrics` router and the axum middleware
//! that counts and times API requests by route template.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::{Metrics, TEXT_CONTENT_TYPE};

pub const METRICS_PATH: &str = "/metrics";

/// Route label for requests that matched no route (404 fallback), so unknown
/// paths cannot blow up label cardinality.
const UNMATCHED_ROUTE: &str = "unmatched";

/// `GET /metrics` in text format 0.0.4. No authentication: serve it on
/// localhost (the default `--metrics-listen 127.0.0.1:9108`).
pub fn router(metrics: Metrics) -> Router {
    Router::new()
        .route(METRICS_PATH, get(scrape))
        .with_state(metrics)
}

async fn scrape(State(metrics): State<Metrics>) -> Response {
    metrics.refresh().await;
    match metrics.encode_text() {
        Ok(body) => ([(header::CONTENT_TYPE, TEXT_CONTENT_TYPE)], body).into_response(),
        Err(e) => {
            tracing::error!(%e, "encoding metrics");
            (StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics\n").into_response()
        }
    }
}

/// Method label: the standard methods by name, anything else as `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Middleware (for `Router::layer`, outside auth so 401s count too) that
/// records `patronus_api_requests_total` and `patronus_api_request_duration_seconds`
/// labelled with the matched route template, never the raw path.
pub async fn track_api(State(metrics): State<Metrics>, req: Request, next: Next) -> Response {
    let method = method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let start = Instant::now();
    let resp = next.run(req).await;
    let seconds = start.elapsed().as_secs_f64();
    metrics.observe_api(
        method,
        route.as_deref().unwrap_or(UNMATCHED_ROUTE),
        resp.status().as_u16(),
        seconds,
    );
    resp
}
