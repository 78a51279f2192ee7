//! Shared fixtures of the agent tests: a fixed analysis window, an `AgentContext`
//! over fakes, and generators of raw metric samples, log lines and spans.
#![allow(dead_code)]

use compass_core::{
    AnalysisWindow, CallGraph, EpochMs, Incident, IncidentOrigin, LogLevel, LogRecord, Severity,
    Span, SpanKind, SpanStatus,
};
use compass_engine::{AgentContext, Budget, DataSources, MetricCatalog};

/// Window start (aligned to the step).
pub const T0: EpochMs = 1_800_000_000_000;
pub const STEP: i64 = 15_000;
pub const MIN: i64 = 60_000;

/// Baseline minutes 0..40, incident minutes 40..55, alert at minute 50.
pub fn window() -> AnalysisWindow {
    AnalysisWindow::around(T0 + 50 * MIN, 40 * MIN, 10 * MIN, 5 * MIN)
}

pub fn incident() -> Incident {
    Incident {
        id: "test".into(),
        title: "High latency on a".into(),
        severity: Severity::Critical,
        start: T0 + 50 * MIN,
        affected_services: vec!["a".into()],
        labels: Default::default(),
        origin: IncidentOrigin::Cli,
    }
}

pub fn ctx(sources: DataSources, edges: &[(&str, &str)], services: &[&str]) -> AgentContext {
    let mut graph = CallGraph::default();
    for (a, b) in edges {
        graph.add(a, b);
    }
    AgentContext {
        sources,
        window: window(),
        graph,
        services: services.iter().map(|s| s.to_string()).collect(),
        catalog: MetricCatalog::default(),
        budget: Budget::unlimited(),
        step_ms: STEP,
    }
}

/// Sample times from 5 minutes before the window to its end.
fn times() -> impl Iterator<Item = EpochMs> {
    (T0 - 5 * MIN..T0 + 55 * MIN).step_by(STEP as usize)
}

/// A small deterministic wiggle in [-1, 1].
pub fn wiggle(i: i64) -> f64 {
    ((i * 7919) % 13) as f64 / 6.0 - 1.0
}

/// A gauge sampled every step; `f` gets minutes since T0.
pub fn gauge(f: impl Fn(f64) -> f64) -> Vec<(EpochMs, f64)> {
    times()
        .map(|t| (t, f((t - T0) as f64 / MIN as f64)))
        .collect()
}

/// A counter whose per-second rate is `f(minutes since T0)`.
pub fn counter(f: impl Fn(f64) -> f64) -> Vec<(EpochMs, f64)> {
    let mut total = 0.0;
    times()
        .map(|t| {
            total += f((t - T0) as f64 / MIN as f64) * STEP as f64 / 1000.0;
            (t, total)
        })
        .collect()
}

pub fn log(ts: EpochMs, service: &str, level: LogLevel, message: String) -> LogRecord {
    LogRecord {
        ts,
        service: service.into(),
        pod: format!("{service}-0"),
        level,
        message,
        trace_id: None,
        origin: None,
    }
}

/// One line per `every_s` seconds from minute `from` to `to` (minutes since T0).
pub fn lines(
    service: &str,
    level: LogLevel,
    from: f64,
    to: f64,
    every_s: i64,
    message: impl Fn(i64) -> String,
) -> Vec<LogRecord> {
    let start = T0 + (from * MIN as f64) as i64;
    let end = T0 + (to * MIN as f64) as i64;
    (start..end)
        .step_by((every_s * 1000) as usize)
        .enumerate()
        .map(|(i, t)| log(t, service, level, message(i as i64)))
        .collect()
}

#[allow(clippy::too_many_arguments)]
pub fn span(
    trace: &str,
    id: &str,
    parent: Option<&str>,
    service: &str,
    kind: SpanKind,
    start: EpochMs,
    duration_ms: f64,
    error: bool,
    peer: Option<&str>,
) -> Span {
    Span {
        trace_id: trace.into(),
        span_id: id.into(),
        parent_id: parent.map(str::to_string),
        service: service.into(),
        operation: "op".into(),
        kind,
        start,
        duration_ms,
        status: if error {
            SpanStatus::Error
        } else {
            SpanStatus::Ok
        },
        peer_service: peer.map(str::to_string),
    }
}
