//! `compass serve`: the HTTP API, alert intake, web UI and investigation workers of one
//! replica. Any number of replicas can share one PostgreSQL store (jobs are leased);
//! SQLite is the single-node default.
//!
//! - `api.rs`: the router (`app`), handlers, request/response types, `AppError`.
//! - `ops.rs`: the operations both front doors share (roles, validation, audit).
//! - `mcp.rs`: the MCP tools, on stdio (`compass mcp`) and at `/mcp`.
//! - `auth.rs`: API tokens (SHA-256 hashes in the store), roles, webhook secrets/HMAC.
//! - `intake.rs`: Alertmanager and generic webhooks → the store's alert intake.
//! - `worker.rs`: leasing, running and finishing investigations.
//! - `ui.rs`: the web UI pages (server-rendered, served by the binary).
//! - `openapi.rs`: the OpenAPI document at `/api/openapi.json`.
//! - `telemetry.rs`: the Prometheus recorder, JSON logs.
//! - `metrics.rs`: every exported metric name.

mod act;
mod api;
mod auth;
mod intake;
pub mod mcp;
pub mod metrics;
mod openapi;
mod ops;
pub mod telemetry;
pub mod tokens;
mod ui;
mod worker;

pub use api::app;
pub use auth::{hash_token, new_token};

use anyhow::{Context, Result};
use compass_adapters::config::{Limits, ServeSettings, Settings};
use compass_adapters::store::{SqlStore, redact_url};
use compass_engine::store::Store;
use compass_engine::{Coordinator, CoordinatorConfig, DataSources};
use secrecy::ExposeSecret;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// What `compass serve` was asked for on the command line (over the config file).
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    pub config: Option<PathBuf>,
    pub listen: Option<String>,
    pub database_url: Option<String>,
    /// Investigate over this bundle directory instead of live `[sources]`.
    pub bundle: Option<PathBuf>,
    /// Simulate a bundle, serve over it and open one incident from it.
    pub demo: bool,
    /// No API tokens required (only on a loopback address).
    pub no_auth: bool,
    pub workers: Option<usize>,
    pub lease: Option<Duration>,
    /// This replica's name in leases (default: host name and process id).
    pub replica: Option<String>,
}

/// How callers prove who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Bearer API tokens (or the UI's cookie holding one).
    Tokens,
    /// Everyone is an admin (`--no-auth` on a loopback address).
    Open,
}

/// Runs investigations: the agents and the data sources every job uses.
pub struct Investigator {
    pub coordinator: Arc<Coordinator>,
    pub sources: DataSources,
}

impl std::fmt::Debug for Investigator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Investigator")
            .field("sources", &self.sources)
            .finish()
    }
}

/// Everything a request handler or worker needs.
pub struct Inner {
    pub store: Arc<dyn Store>,
    pub serve: ServeSettings,
    pub limits: Limits,
    pub alert_labels: Vec<String>,
    pub investigator: Investigator,
    pub replica: String,
    pub auth: AuthMode,
    /// Wakes idle workers when a job is queued on this replica.
    pub queue_notify: Notify,
    /// The remediation desk (`[act]`), shared with `compass act`.
    pub desk: compass_act::service::Desk,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("store", &self.store.backend())
            .field("replica", &self.replica)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

/// `critical`, `warning` or `info`.
pub(crate) fn severity_str(s: compass_core::Severity) -> &'static str {
    match s {
        compass_core::Severity::Critical => "critical",
        compass_core::Severity::Warning => "warning",
        compass_core::Severity::Info => "info",
    }
}

/// Shared state (cheap to clone).
#[derive(Debug, Clone)]
pub struct ServeState(pub Arc<Inner>);

impl std::ops::Deref for ServeState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// The store a database URL names, with the schema applied.
pub async fn open_store(url: &str) -> Result<Arc<SqlStore>> {
    let store = SqlStore::connect(url, 16)
        .await
        .with_context(|| format!("database {}", redact_url(url)))?;
    Ok(Arc::new(store))
}

/// The database URL: the flag (or `$COMPASS_DATABASE_URL`), else `[serve]`, else
/// SQLite in the data directory.
pub fn database_url(flag: Option<&str>, settings: &ServeSettings) -> String {
    if let Some(u) = flag.filter(|u| !u.is_empty()) {
        return u.to_string();
    }
    if let Some(u) = &settings.database_url {
        return u.expose_secret().to_string();
    }
    let dir = compass_adapters::store::data_dir();
    format!("sqlite://{}", dir.join("compass.db").display())
}

fn default_replica() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "compass".into());
    format!("{host}-{}", std::process::id())
}

/// The coordinator the limits allow: at most `max_agents_per_incident` agents (in
/// registry order), the investigation deadline and the per-incident LLM budget.
fn coordinator(settings: &Settings, limits: &Limits, store: &Arc<SqlStore>) -> Coordinator {
    let mut agents = compass_engine::agents::all();
    agents.truncate(limits.max_agents_per_incident);
    let mut config = CoordinatorConfig {
        deadline: limits.max_investigation_time,
        catalog: settings.catalog.clone(),
        ..Default::default()
    };
    config.agent_timeout = config.agent_timeout.min(limits.max_investigation_time);
    if !settings.sources.is_empty() {
        config.breaker.call_timeout = settings.worst_case_call();
    }
    let coordinator = Coordinator::new(agents, config);
    let Some(llm) = &settings.llm else {
        return coordinator;
    };
    let mut llm = llm.clone();
    let cap = limits.max_cost_per_incident_usd;
    llm.budget_usd = Some(llm.budget_usd.map_or(cap, |b| b.min(cap)));
    match crate::llm::analyst_with_ledger(&llm, store.clone()) {
        Ok(a) => coordinator.with_llm(a),
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "investigating without the LLM steps");
            coordinator
        }
    }
}

/// Build the replica's state from the options.
pub async fn prepare(opts: &ServeOptions) -> Result<(ServeState, Option<compass_core::Incident>)> {
    let settings = match &opts.config {
        Some(path) => Settings::load(path).map_err(|e| crate::cli::UsageError(e.to_string()))?,
        None => Settings::parse("version = 1", "defaults", None).expect("the defaults are valid"),
    };
    prepare_with(settings, opts).await
}

/// Running workers; `stop` ends them after their current jobs.
#[derive(Debug)]
pub struct Workers {
    stop: watch::Sender<bool>,
    handle: tokio::task::JoinHandle<()>,
}

impl Workers {
    /// Stop leasing and wait for the running jobs.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.handle.await;
    }
}

/// Start the replica's workers (what `run` does after binding).
pub fn start_workers(state: &ServeState) -> Workers {
    let (stop, rx) = watch::channel(false);
    let handle = tokio::spawn(worker::run_workers(state.clone(), rx));
    Workers { stop, handle }
}

/// [`prepare`] with settings already loaded (tests adjust them in code).
pub async fn prepare_with(
    settings: Settings,
    opts: &ServeOptions,
) -> Result<(ServeState, Option<compass_core::Incident>)> {
    let mut serve = settings.serve.clone();
    if let Some(l) = &opts.listen {
        serve.listen = l.clone();
    }
    if let Some(w) = opts.workers {
        serve.workers = w.clamp(1, 64);
    }
    if let Some(l) = opts.lease {
        serve.lease = l;
    }
    let auth = if opts.no_auth || opts.demo {
        let addr: SocketAddr = serve
            .listen
            .parse()
            .map_err(|e| crate::cli::UsageError(format!("--listen {}: {e}", serve.listen)))?;
        if !addr.ip().is_loopback() {
            return Err(crate::cli::UsageError(format!(
                "--no-auth (and --demo) only listen on a loopback address, not {addr}; create API tokens with `compass token create` instead"
            ))
            .into());
        }
        AuthMode::Open
    } else {
        AuthMode::Tokens
    };
    let url = database_url(opts.database_url.as_deref(), &serve);
    // A new SQLite file's directory is created; PostgreSQL URLs have no such prefix.
    if let Some(dir) = url
        .strip_prefix("sqlite://")
        .map(std::path::Path::new)
        .and_then(|p| p.parent())
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let store = open_store(&url).await?;
    let mut demo_incident = None;
    let sources = if let Some(dir) = demo_bundle(opts)? {
        let bundle = Arc::new(
            compass_adapters::bundle::BundleSource::open(&dir).map_err(anyhow::Error::new)?,
        );
        demo_incident = Some(bundle.incident().clone());
        bundle.data_sources()
    } else {
        if settings.sources.is_empty() {
            return Err(crate::cli::UsageError(
                "nothing to investigate with: configure [sources] in --config, or serve over a bundle with --bundle DIR (or --demo)".into(),
            )
            .into());
        }
        settings
            .build_sources()
            .map_err(|e| crate::cli::UsageError(e.to_string()))?
    };
    let investigator = Investigator {
        coordinator: Arc::new(coordinator(&settings, &settings.limits, &store)),
        sources,
    };
    let desk = crate::act::desk(&settings.act)?;
    let state = ServeState(Arc::new(Inner {
        store,
        serve,
        limits: settings.limits.clone(),
        alert_labels: settings.alert_service_labels.clone(),
        investigator,
        replica: opts.replica.clone().unwrap_or_else(default_replica),
        auth,
        queue_notify: Notify::new(),
        desk,
    }));
    Ok((state, if opts.demo { demo_incident } else { None }))
}

/// The bundle to serve over: `--bundle`, or a freshly simulated one for `--demo`.
fn demo_bundle(opts: &ServeOptions) -> Result<Option<PathBuf>> {
    if let Some(b) = &opts.bundle {
        return Ok(Some(b.clone()));
    }
    if !opts.demo {
        return Ok(None);
    }
    let dir = tempfile::Builder::new()
        .prefix("compass-serve-demo-")
        .tempdir()
        .context("cannot create a directory for the demo bundle")?
        .keep()
        .join("bundle");
    eprintln!("simulating a demo incident into {} ...", dir.display());
    let cfg = compass_sim::SimConfig::default();
    crate::cli::simulate_quietly(&cfg, &dir, false)?;
    Ok(Some(dir))
}

/// Open the `--demo` incident, unless the store already has incidents.
async fn open_demo_incident(
    state: &ServeState,
    incident: Option<compass_core::Incident>,
) -> Result<()> {
    if let Some(incident) = incident
        && state.store.incidents(None, 1).await?.is_empty()
    {
        let (rec, _) = state
            .store
            .create_incident(&incident, worker::now_ms())
            .await?;
        eprintln!("opened demo incident {}: {}", rec.id, rec.incident.title);
    }
    Ok(())
}

/// `compass serve`: listen, work the queue, stop gracefully on Ctrl-C or SIGTERM.
pub async fn run(opts: ServeOptions) -> Result<()> {
    let prometheus = telemetry::install_recorder();
    let (state, demo_incident) = prepare(&opts).await?;
    open_demo_incident(&state, demo_incident).await?;
    let listener = tokio::net::TcpListener::bind(&state.serve.listen)
        .await
        .with_context(|| format!("cannot listen on {}", state.serve.listen))?;
    let addr = listener.local_addr()?;
    eprintln!(
        "compass serve: http://{addr}/ (store: {}, replica {}, {} workers{})",
        state.store.backend(),
        state.replica,
        state.serve.workers,
        if state.auth == AuthMode::Open {
            ", no auth"
        } else {
            ""
        }
    );
    tracing::info!(%addr, store = state.store.backend(), replica = %state.replica, "listening");
    let workers = start_workers(&state);
    let (stop_tx, mut shutdown_rx) = watch::channel(false);
    let router = app(state.clone(), prometheus);
    let server = axum::serve(listener, router).with_graceful_shutdown(async move {
        let _ = shutdown_rx.changed().await;
    });
    let serving = tokio::spawn(async move { server.await });
    shutdown_signal().await;
    eprintln!(
        "shutting down: no new jobs; waiting up to {:?} for running investigations",
        state.serve.shutdown_grace
    );
    let _ = stop_tx.send(true);
    if tokio::time::timeout(state.serve.shutdown_grace, workers.stop())
        .await
        .is_err()
    {
        eprintln!(
            "grace period over: unfinished investigations will be taken over by another replica when their leases expire"
        );
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), serving).await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("a SIGTERM handler can be installed");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
