//! `patronus-control`: serves the REST API over the desired-state store.
//! Opens the store, loads (or generates once) the API token, listens on
//! localhost by default and shuts down gracefully on SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

use patronus_control::api::app_with_metrics;
use patronus_control::auth::{load_or_create_token, ApiToken, TokenSource};
use patronus_control::bgp::metrics::BgpCollector;
use patronus_control::bgp::runtime::SpeakerStatus;
use patronus_control::bgp::status::{BgpStatus, NoSpeaker};
use patronus_control::bgp::supervisor::{self, BgpOptions};
use patronus_control::engine_view::ShmEngine;
use patronus_control::lb::metrics::LbCollector;
use patronus_control::lb::status::LbStatus;
use patronus_control::metrics::{self, Metrics};
use patronus_control::models::push::ModelInfoGauge;
use patronus_control::push::Pusher;
use patronus_control::state::spawn_store_full;
use patronus_control::store::Store;
use patronus_control::AppState;

/// Name of the token file next to the database when `--token-file` is not given.
const TOKEN_FILE_NAME: &str = "api-token";

#[derive(Debug, Parser)]
#[command(
    name = "patronus-control",
    version,
    about = "Patronus control process: REST API and desired-state store"
)]
struct Args {
    /// Address to serve the API on (localhost only by default).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// SQLite database holding the desired state (`:memory:` for a throwaway store).
    #[arg(long, default_value = "/var/lib/patronus/control.db")]
    db: PathBuf,
    /// File holding the API bearer token (mode 0600); generated at first start.
    /// Default: `api-token` next to the database.
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Use this bearer token instead of the token file (nothing is written;
    /// note that command lines are visible to other local users).
    #[arg(long)]
    token: Option<String>,
    /// Address to serve Prometheus metrics on (`GET /metrics`, no auth:
    /// localhost only by default).
    #[arg(long, default_value = "127.0.0.1:9108")]
    metrics_listen: SocketAddr,
    /// Runtime directory shared with the engine (table generations and
    /// counters in shared memory); must match the engine's `[control]
    /// runtime_dir`.
    #[arg(long, default_value = patronus_shm::DEFAULT_RUNTIME_DIR)]
    runtime_dir: PathBuf,
    /// Run the BGP speaker: it follows the stored BGP settings (it starts
    /// once the global settings exist) and its selected routes are pushed
    /// to the engine. Without it, BGP settings are only stored.
    #[arg(long)]
    bgp: bool,
    /// Where the speaker accepts BGP connections (dual stack on `[::]`).
    /// Default: `[::]:` the stored `listen_port` (179).
    #[arg(long, requires = "bgp")]
    bgp_listen: Option<SocketAddr>,
}

fn token_file_default(db: &Path) -> PathBuf {
    match db.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && db != Path::new(":memory:") => {
            dir.join(TOKEN_FILE_NAME)
        }
        _ => PathBuf::from(TOKEN_FILE_NAME),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();

    let store = if args.db == Path::new(":memory:") {
        Store::open_in_memory()
    } else {
        Store::open(&args.db)
    }
    .with_context(|| format!("opening store {}", args.db.display()))?;

    let token = match &args.token {
        Some(t) => ApiToken::new(t).context("--token")?,
        None => {
            let path = args
                .token_file
                .clone()
                .unwrap_or_else(|| token_file_default(&args.db));
            let (token, source) = load_or_create_token(&path)?;
            if source == TokenSource::Generated {
                // Shown once; afterwards only the 0600 file holds it.
                eprintln!(
                    "patronus-control: generated API token (stored in {}):\n{}",
                    path.display(),
                    token.as_str()
                );
            } else {
                tracing::info!(path = %path.display(), "API token loaded");
            }
            token
        }
    };

    if !args.listen.ip().is_loopback() {
        tracing::warn!(listen = %args.listen, "API listens beyond localhost (plain HTTP; put TLS in front)");
    }
    // Publishes the desired state to the engine at start and on every change.
    let pusher = Pusher::open(&args.runtime_dir)
        .with_context(|| format!("runtime directory {}", args.runtime_dir.display()))?;
    let engine_view = Arc::new(ShmEngine::new(args.runtime_dir.clone(), pusher.publisher()));
    let push_watch = pusher.watch();
    let bgp_opts = BgpOptions {
        listen: args.bgp_listen,
        nexthops: pusher.nexthops(),
        publisher: Some(pusher.publisher()),
        installed: pusher.bgp_installed(),
        route6: Default::default(),
    };
    let model_info = ModelInfoGauge::new().context("creating the model gauge")?;
    let lb_status = LbStatus::new();
    let store = spawn_store_full(store, Some(pusher), model_info.clone(), lb_status.clone())
        .context("starting store actor")?;
    let lb_socket = args.runtime_dir.join(patronus_shm::runtime_dir::LB_SOCKET);
    // BGP (opt-in): the supervisor follows the stored settings.
    let (speaker_status, bgp_task) = if args.bgp {
        let (stop, stop_rx) = tokio::sync::oneshot::channel();
        let (running, task) = supervisor::spawn(store.clone(), bgp_opts.clone(), stop_rx);
        let status = SpeakerStatus {
            running,
            publisher: bgp_opts.publisher.clone(),
            engine: Some(engine_view.clone()),
            installed: bgp_opts.installed.clone(),
            route6: bgp_opts.route6.clone(),
        };
        (Some(status), Some((stop, task)))
    } else {
        (None, None)
    };
    let mut metrics = Metrics::new(engine_view.clone())
        .and_then(|m| m.with_lb(LbCollector::new(lb_status, Some(lb_socket))?))
        .context("creating metrics registry")?;
    let bgp_status: Arc<dyn BgpStatus> = match speaker_status {
        Some(s) => {
            metrics = metrics
                .with_bgp(BgpCollector::new(s.clone()).context("BGP metrics")?)
                .context("registering BGP metrics")?;
            Arc::new(s)
        }
        None => Arc::new(NoSpeaker),
    };
    metrics
        .registry()
        .register(model_info.collector())
        .context("registering the model gauge")?;
    // Push latency: publication until every live worker acknowledged it.
    let push_watch = tokio::spawn(push_watch.run(metrics.clone()));
    if !args.metrics_listen.ip().is_loopback() {
        tracing::warn!(listen = %args.metrics_listen, "/metrics served beyond localhost without auth");
    }
    let metrics_listener = TcpListener::bind(args.metrics_listen)
        .await
        .with_context(|| format!("binding metrics listener {}", args.metrics_listen))?;
    tracing::info!(listen = %args.metrics_listen, "serving /metrics");
    let metrics_router = metrics::router(metrics.clone());
    // Scrapes are short and stateless: this task is simply aborted at shutdown.
    let metrics_server = tokio::spawn(async move {
        if let Err(e) = axum::serve(metrics_listener, metrics_router).await {
            tracing::error!(%e, "metrics listener failed");
        }
    });
    let router = app_with_metrics(
        AppState {
            store: store.clone(),
            token,
            engine: Some(engine_view),
            bgp: bgp_status,
        },
        metrics,
    );
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(listen = %args.listen, db = %args.db.display(), "serving /api/v1");
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving")?;
    // The speaker says Cease to its neighbours; the engine keeps its tables.
    if let Some((stop, task)) = bgp_task {
        let _ = stop.send(());
        let _ = task.await;
    }
    store.close().await;
    metrics_server.abort();
    push_watch.abort();
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(%e, "cannot watch SIGTERM; only SIGINT stops the server");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
    }
}
