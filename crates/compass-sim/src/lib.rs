//! COMPASS deterministic incident simulator: writes a `compass-bundle/1` directory (see
//! `docs/bundle-format.md`) for a shop of microservices in which one fault is injected
//! into one service, with everyday noise around it.
//!
//! Everything is derived from one per-service, per-step state (`state`), so metrics, logs
//! and traces agree; faults propagate from the broken service to its callers. The same
//! configuration always gives byte-identical files: randomness comes from seeded ChaCha8
//! streams, one per modality, and nothing reads the clock. Output is streamed, so large
//! bundles (hundreds of services, millions of log lines) need little memory.
//!
//! # What a bundle shows
//!
//! - **System**: `frontend` (the edge) calls checkout, cart, catalog, recommendation,
//!   currency, user and shipping; checkout calls payment, orders, ...; orders and
//!   inventory hold DB pools to `postgres`; `notification` consumes what orders publish to
//!   `kafka`; `report-batch` is an unrelated periodic job. `services` counts application
//!   services; the four infrastructure/batch services come on top. Infrastructure pods are
//!   stateful-set style (`postgres-0`), the others `name-<replicaset>-<suffix>`.
//! - **Alert**: on `frontend`, 1-4 minutes after the fault, evaluated on the data:
//!   `High latency on frontend` (alertname `FrontendLatencyHigh`) for CPU, memory, network
//!   and pool faults, `Error rate above N% on frontend` (`FrontendErrorRateHigh`) for
//!   error injection and bad deploys. The root cause is a service whose fault the edge
//!   visibly feels.
//! - **Calls** have per-edge client deadlines (redis 500 ms, frontend to recommendation
//!   300 ms, other frontend calls 4 s, most others 3 s) and retries: a timed-out client span
//!   has status `error` while the callee's server span may end `ok` later.
//! - **Log signatures** (stable wording, see `templates::faults`): `call to {callee}
//!   failed: {500|503|504} ...` on callers; `... Connection is not available, request timed
//!   out after 30000ms.` and `HikariPool-1 - Pool stats (... waiting=N)` for pool exhaustion;
//!   `GC overhead N% ... pause Nms ...`, an out-of-memory line and `Container restarted:
//!   previous instance terminated with OOMKilled (exit code 137) ...` for leaks; `Slow
//!   request: ...` when a request takes three times the usual; `upstream {callee} slow:` and
//!   `deadline exceeded calling {callee} ...` for network delay; language-specific
//!   exceptions, new at fault time, for injected errors and bad deploys; `Starting` /
//!   `Started` / `Received SIGTERM` around deploys and restarts.
//! - **Noise**: report-batch runs every 15-30 minutes (CPU near its limit, slow spans, log
//!   bursts), a chatty healthy service bursts DEBUG lines, one unrelated deploy and one
//!   config change happen more than ten minutes before the fault, short latency blips hit
//!   random services, and benign warnings and errors appear everywhere at low rates.

mod alert;
mod bundle;
mod catalog;
mod generated;
mod lifecycle;
mod logs;
mod metrics;
mod noise;
mod plan;
mod pods;
mod propagate;
mod state;
mod templates;
mod topology;
mod traces;

use compass_core::FaultKind;
use std::path::{Path, PathBuf};

/// What to simulate.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Scenario name, one of [`scenarios`].
    pub scenario: String,
    pub seed: u64,
    /// Number of application services (at least 12; the infrastructure services
    /// postgres, redis and kafka and the `report-batch` job come on top).
    pub services: usize,
    /// Length of the simulated window, seconds (1800 to 86400).
    pub duration_s: u64,
    /// Baseline log lines per second, all services together.
    pub log_rate: f64,
    /// Start of the window, epoch milliseconds.
    pub start_ms: i64,
    /// Sampled traces per second.
    pub trace_rate: f64,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            scenario: "cpu-saturation".into(),
            seed: 1,
            services: MIN_SERVICES,
            duration_s: 3600,
            log_rate: 50.0,
            // 2026-11-02T09:00:00Z: fixed, never the clock.
            start_ms: 1_793_610_000_000,
            trace_rate: 2.0,
        }
    }
}

pub const MIN_SERVICES: usize = catalog::BASE_APP_SERVICES;
pub const MAX_SERVICES: usize = 1000;
pub const MIN_DURATION_S: u64 = 1800;
pub const MAX_DURATION_S: u64 = 86_400;

/// A scenario the simulator can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScenarioInfo {
    pub name: &'static str,
    pub fault_kind: FaultKind,
    pub description: &'static str,
}

static SCENARIOS: [ScenarioInfo; 6] = [
    ScenarioInfo {
        name: "cpu-saturation",
        fault_kind: FaultKind::CpuSaturation,
        description: "a service's CPU pins at its limit and throttles; it and its callers slow down",
    },
    ScenarioInfo {
        name: "memory-leak",
        fault_kind: FaultKind::MemoryLeak,
        description: "a service's working set grows toward its limit: GC pauses, latency, then an OOM kill",
    },
    ScenarioInfo {
        name: "network-latency",
        fault_kind: FaultKind::NetworkLatency,
        description: "calls into a service get extra network delay; its own server latency stays normal",
    },
    ScenarioInfo {
        name: "error-injection",
        fault_kind: FaultKind::ErrorInjection,
        description: "a service fails a share of its requests with new exceptions; callers see 500s",
    },
    ScenarioInfo {
        name: "db-pool-exhaustion",
        fault_kind: FaultKind::DbPoolExhaustion,
        description: "a service's DB connection pool is exhausted: waits, 30 s timeouts; the database is fine",
    },
    ScenarioInfo {
        name: "bad-deploy",
        fault_kind: FaultKind::BadDeploy,
        description: "a new version of a service rolls out and starts throwing a new exception",
    },
];

/// The scenarios, in a stable order.
pub fn scenarios() -> &'static [ScenarioInfo] {
    &SCENARIOS
}

/// Progress of one phase (`metrics`, `logs`, `traces`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub phase: &'static str,
    pub done: u64,
    pub total: u64,
}

/// What was written, and the injected truth.
#[derive(Debug, Clone, PartialEq)]
pub struct SimSummary {
    pub out_dir: PathBuf,
    pub root_cause_service: String,
    pub fault_kind: FaultKind,
    pub fault_start_ms: i64,
    /// When the alert fired (the incident start).
    pub alert_ms: i64,
    pub log_lines: u64,
    pub spans: u64,
    pub metric_samples: u64,
    /// Every service, application services first.
    pub services: Vec<String>,
}

/// What kind of failure a [`SimError`] is, for callers that map errors to exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    BadInput,
    Io,
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("unknown scenario {name:?}: valid scenarios are {valid}")]
    UnknownScenario { name: String, valid: String },
    #[error("invalid {what}: {reason}")]
    InvalidSize { what: &'static str, reason: String },
    #[error("cannot write {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl SimError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            SimError::UnknownScenario { .. } | SimError::InvalidSize { .. } => ErrorKind::BadInput,
            SimError::Io { .. } => ErrorKind::Io,
        }
    }
}

fn validate(cfg: &SimConfig) -> Result<&'static ScenarioInfo, SimError> {
    let info = SCENARIOS
        .iter()
        .find(|s| s.name == cfg.scenario)
        .ok_or_else(|| SimError::UnknownScenario {
            name: cfg.scenario.clone(),
            valid: SCENARIOS
                .iter()
                .map(|s| s.name)
                .collect::<Vec<_>>()
                .join(", "),
        })?;
    let bad = |what, reason: String| Err(SimError::InvalidSize { what, reason });
    if !(MIN_SERVICES..=MAX_SERVICES).contains(&cfg.services) {
        return bad(
            "services",
            format!(
                "must be between {MIN_SERVICES} and {MAX_SERVICES} application services, got {}",
                cfg.services
            ),
        );
    }
    if !(MIN_DURATION_S..=MAX_DURATION_S).contains(&cfg.duration_s) {
        return bad(
            "duration",
            format!(
                "must be between {MIN_DURATION_S} and {MAX_DURATION_S} seconds, got {}",
                cfg.duration_s
            ),
        );
    }
    if !(cfg.log_rate.is_finite() && (0.0..=1_000_000.0).contains(&cfg.log_rate)) {
        return bad(
            "log rate",
            format!(
                "must be between 0 and 1000000 lines per second, got {}",
                cfg.log_rate
            ),
        );
    }
    if !(cfg.trace_rate.is_finite() && (0.0..=1000.0).contains(&cfg.trace_rate)) {
        return bad(
            "trace rate",
            format!(
                "must be between 0 and 1000 traces per second, got {}",
                cfg.trace_rate
            ),
        );
    }
    Ok(info)
}

/// Writes a bundle for `cfg` into `out_dir` (created if missing), reporting progress.
pub fn simulate(
    cfg: &SimConfig,
    out_dir: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<SimSummary, SimError> {
    let info = validate(cfg)?;
    std::fs::create_dir_all(out_dir).map_err(|source| SimError::Io {
        path: out_dir.to_path_buf(),
        source,
    })?;
    let topo = topology::Topology::build(cfg.seed, cfg.services);
    let clock = plan::Clock::new(cfg.start_ms, cfg.duration_s);
    let (plan, state, alert) = choose_fault(cfg.seed, &topo, info.fault_kind, clock);
    let names: Vec<String> = topo.services.iter().map(|s| s.name.clone()).collect();
    let root = &topo.services[plan.fault.service].name;

    let mut out = bundle::Output::create(out_dir, "manifest.json")?;
    out.json(
        &bundle::Manifest {
            format: "compass-bundle/1",
            generator: format!("compass-sim {}", env!("CARGO_PKG_VERSION")),
            scenario: info.name,
            seed: cfg.seed,
            start: bundle::rfc3339(clock.start_ms),
            end: bundle::rfc3339(clock.end_ms()),
            services: &names,
            step_seconds: plan::STEP_S,
        },
        true,
    )?;
    out.finish()?;
    let mut out = bundle::Output::create(out_dir, "incident.json")?;
    out.json(
        &bundle::IncidentFile {
            id: format!("sim-{}-{}", info.name, cfg.seed),
            title: &alert.title,
            severity: "critical",
            start: bundle::rfc3339(alert.ms),
            affected_services: vec![&names[topo.edge_service]],
            labels: [
                ("alertname", alert.alertname.to_string()),
                ("service", names[topo.edge_service].clone()),
                ("severity", "critical".to_string()),
            ]
            .into_iter()
            .collect(),
            origin: "simulator",
        },
        true,
    )?;
    out.finish()?;
    let mut out = bundle::Output::create(out_dir, "truth.json")?;
    out.json(
        &bundle::Truth {
            service: root,
            fault_kind: info.fault_kind.as_str(),
            start: bundle::rfc3339(plan.fault.start_ms),
        },
        true,
    )?;
    out.finish()?;
    let mut out = bundle::Output::create(out_dir, "events.jsonl")?;
    for ev in &plan.events {
        out.json(
            &bundle::EventLine {
                timestamp: bundle::rfc3339(ev.ts),
                kind: change_kind(ev.kind),
                service: &names[ev.service],
                description: &ev.description,
                version: ev.version.as_deref(),
            },
            false,
        )?;
    }
    out.finish()?;

    let mut out = bundle::Output::create(out_dir, "metrics.om")?;
    let metric_samples = metrics::write(&mut out, cfg.seed, &topo, &plan, &state, progress)?;
    out.finish()?;
    let trace_gen = traces::TraceGen {
        seed: cfg.seed,
        trace_rate: cfg.trace_rate,
        topo: &topo,
        plan: &plan,
        state: &state,
    };
    let log_gen = logs::LogGen::new(cfg.seed, cfg.log_rate, &trace_gen);
    let mut out = bundle::Output::create(out_dir, "logs.jsonl")?;
    let log_lines = logs::write(&mut out, &log_gen, progress)?;
    out.finish()?;
    let mut out = bundle::Output::create(out_dir, "traces.jsonl")?;
    let spans = traces::write(&mut out, &trace_gen, progress)?;
    out.finish()?;

    Ok(SimSummary {
        out_dir: out_dir.to_path_buf(),
        root_cause_service: root.clone(),
        fault_kind: info.fault_kind,
        fault_start_ms: plan.fault.start_ms,
        alert_ms: alert.ms,
        log_lines,
        spans,
        metric_samples,
        services: names,
    })
}

/// Tries the scenario's candidate services in seed order and keeps the first whose fault
/// the edge alert can see (or the most visible of the first few).
fn choose_fault(
    seed: u64,
    topo: &topology::Topology,
    kind: FaultKind,
    clock: plan::Clock,
) -> (plan::Plan, state::State, alert::Alert) {
    const TRIES: usize = 8;
    let mut best: Option<(plan::Plan, state::State, alert::Alert)> = None;
    for service in plan::candidates(seed, topo, kind).into_iter().take(TRIES) {
        let plan = plan::Plan::new(seed, topo, kind, clock, service);
        let state = state::State::compute(seed, topo, &plan);
        let alert = alert::evaluate(seed, topo, &plan, &state);
        if alert.strength >= 1.0 {
            return (plan, state, alert);
        }
        if best.as_ref().is_none_or(|b| alert.strength > b.2.strength) {
            best = Some((plan, state, alert));
        }
    }
    best.expect("every scenario has at least one eligible service")
}

fn change_kind(kind: compass_core::ChangeKind) -> &'static str {
    use compass_core::ChangeKind;
    match kind {
        ChangeKind::Deploy => "deploy",
        ChangeKind::ConfigChange => "config_change",
        ChangeKind::Scale => "scale",
        ChangeKind::FeatureFlag => "feature_flag",
    }
}
