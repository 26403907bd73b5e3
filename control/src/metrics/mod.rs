//! Prometheus metrics of the control process: [`Metrics`] owns a private
//! registry with the API and table-push metrics plus an [`EngineCollector`]
//! that reads engine counters at every scrape; [`router`] serves them as
//! text format 0.0.4 on `GET /metrics` (its own listener, no auth: keep it on
//! localhost or behind a firewall).

pub mod engine;
pub mod family;
mod http;

use std::sync::Arc;

use prometheus::proto::MetricFamily;
use prometheus::{Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

pub use engine::{
    Detached, EngineCollector, EngineSnapshot, EngineSource, LatestSnapshot, PortCounters,
    WorkerSnapshot,
};
pub use http::{router, track_api, METRICS_PATH};

pub const API_REQUESTS: &str = "patronus_api_requests_total";
pub const API_REQUEST_DURATION: &str = "patronus_api_request_duration_seconds";
pub const TABLE_PUSH_LATENCY: &str = "patronus_table_push_latency_seconds";

/// Content type of the text exposition format.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// API handlers answer in well under a millisecond to a few seconds.
const API_DURATION_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// A table push (compile, publish, every worker acks) takes from tens of
/// microseconds to seconds for full-table BGP loads.
const PUSH_LATENCY_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0, 30.0,
];

/// The control process' metrics; cheap to clone (handles to shared state).
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    api_requests: IntCounterVec,
    api_duration: HistogramVec,
    push_latency: Histogram,
    /// Fetches the balancer's engine counters before a scrape.
    lb: Option<crate::lb::metrics::LbRefresher>,
    /// Asks the BGP speaker before a scrape.
    bgp: Option<crate::bgp::metrics::BgpRefresher>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// A registry with every family registered; engine families are read
    /// from `engine` at each scrape.
    pub fn new(engine: Arc<dyn EngineSource>) -> prometheus::Result<Metrics> {
        let registry = Registry::new();
        let api_requests = IntCounterVec::new(
            Opts::new(
                API_REQUESTS,
                "REST API requests by method, matched route template and status code.",
            ),
            &["method", "route", "status"],
        )?;
        let api_duration = HistogramVec::new(
            HistogramOpts::new(
                API_REQUEST_DURATION,
                "REST API request latency by method and matched route template.",
            )
            .buckets(API_DURATION_BUCKETS.to_vec()),
            &["method", "route"],
        )?;
        let push_latency = Histogram::with_opts(
            HistogramOpts::new(
                TABLE_PUSH_LATENCY,
                "Time from publishing a table generation until every engine worker acknowledged it.",
            )
            .buckets(PUSH_LATENCY_BUCKETS.to_vec()),
        )?;
        registry.register(Box::new(api_requests.clone()))?;
        registry.register(Box::new(api_duration.clone()))?;
        registry.register(Box::new(push_latency.clone()))?;
        registry.register(Box::new(EngineCollector::new(engine)?))?;
        Ok(Metrics {
            registry,
            api_requests,
            api_duration,
            push_latency,
            lb: None,
            bgp: None,
        })
    }

    /// Adds the load balancer's families (`patronus_lb_*`).
    pub fn with_lb(mut self, lb: crate::lb::metrics::LbCollector) -> prometheus::Result<Metrics> {
        self.lb = Some(lb.refresher());
        self.registry.register(Box::new(lb))?;
        Ok(self)
    }

    /// Adds the BGP families (`patronus_bgp_*`).
    pub fn with_bgp(
        mut self,
        bgp: crate::bgp::metrics::BgpCollector,
    ) -> prometheus::Result<Metrics> {
        self.bgp = Some(bgp.refresher());
        self.registry.register(Box::new(bgp))?;
        Ok(self)
    }

    /// Fetches what collectors cannot read synchronously (the balancer's
    /// engine counters, the BGP speaker's state); called before each scrape.
    pub async fn refresh(&self) {
        if let Some(lb) = &self.lb {
            lb.refresh().await;
        }
        if let Some(bgp) = &self.bgp {
            bgp.refresh().await;
        }
    }

    /// Records one table push (publish to ack) that took `seconds`.
    /// Negative or non-finite values are ignored (they would poison the sum).
    pub fn observe_push(&self, seconds: f64) {
        if seconds.is_finite() && seconds >= 0.0 {
            self.push_latency.observe(seconds);
        }
    }

    /// Records one API request. `route` must be a route template (bounded set).
    pub fn observe_api(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let status = status.to_string();
        self.api_requests
            .with_label_values(&[method, route, &status])
            .inc();
        if seconds.is_finite() && seconds >= 0.0 {
            self.api_duration
                .with_label_values(&[method, route])
                .observe(seconds);
        }
    }

    /// The registry (to register more collectors).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Every family with at least one sample (what a scrape shows).
    pub fn gather(&self) -> Vec<MetricFamily> {
        self.registry.gather()
    }

    /// A scrape in text format 0.0.4.
    pub fn encode_text(&self) -> prometheus::Result<String> {
        let mut buf = Vec::new();
        prometheus::TextEncoder::new().encode(&self.gather(), &mut buf)?;
        String::from_utf8(buf).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}
