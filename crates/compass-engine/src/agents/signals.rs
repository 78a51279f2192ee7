//! The signals agent: reads ready-made per-service gauges (the catalog's `gauges`:
//! recording rules or exporters that publish CPU share, latency quantiles, traffic)
//! and finds level shifts in the incident window. It blames a service for its own
//! CPU or served latency rising unless a callee of it shows the same first (then it
//! waits on that callee), and a service whose callers all wait longer on their calls
//! while it works no longer (the time is lost on the way: its network). Does nothing
//! when the catalog lists no gauges.

use super::common::*;
use crate::agent::{Agent, AgentContext, AgentError, AgentOutput};
use crate::catalog::Signal;
use async_trait::async_trait;
use compass_core::detect::{ShiftConfig, metric_shift};
use compass_core::stats::{Direction, ScaleFloor, ScoreConfig};
use compass_core::{
    Aggregation, Category, Confidence, FaultKind, Hypothesis, Incident, MetricFunc, Observation,
    ObservationKind, QualityGrade, RootCause, Subject,
};
use std::collections::BTreeSet;

const NAME: &str = "signals";
/// Gauges are read at a resolution of at least a minute.
const MIN_STEP_MS: i64 = 60_000;

#[derive(Debug, Default)]
pub struct SignalsAgent;

/// The component an observation of `signal` is filed under.
fn component(signal: Signal) -> &'static str {
    signal.as_str()
}

fn shift_config() -> ShiftConfig {
    ShiftConfig {
        score: ScoreConfig {
            // Gauges of quantiles and shares move by a few percent all the time.
            floor: ScaleFloor {
                relative: 0.1,
                absolute: 1e-9,
            },
            ..ScoreConfig::default()
        },
        ..ShiftConfig::default()
    }
}

fn kind_of(signal: Signal) -> ObservationKind {
    match signal {
        Signal::CpuUtilisation => ObservationKind::ResourceSaturation,
        Signal::ServerLatency | Signal::ClientLatency => ObservationKind::LatencyShift,
        _ => ObservationKind::MetricChangePoint,
    }
}

#[async_trait]
impl Agent for SignalsAgent {
    fn name(&self) -> &'static str {
        NAME
    }
    fn expertise(&self) -> &'static [Category] {
        &[Category::Infrastructure, Category::Network]
    }

    async fn observe(
        &self,
        _incident: &Incident,
        ctx: &AgentContext,
    ) -> Result<AgentOutput, AgentError> {
        let mut log = ObservationLog::new(NAME);
        if ctx.catalog.gauges.is_empty() {
            return Ok(AgentOutput::default());
        }
        let metrics = metrics_source(ctx)?;
        let src = metrics.name().to_string();
        let svc = ctx.catalog.service_label.as_str();
        let w = ctx.window;
        let step = ctx.step_ms.max(MIN_STEP_MS);
        let cfg = shift_config();
        for gauge in &ctx.catalog.gauges {
            let mut q = query(&gauge.metric, vec![], MetricFunc::Gauge, &[svc]);
            q.aggregation = Aggregation::Avg;
            let series = metrics.query_range(&q, w.whole(), step).await?;
            for (service, points) in by_label(series, svc) {
                let Some(shift) = metric_shift(&points, &w, &cfg) else {
                    continue;
                };
                // Falling latency or CPU is relief, not a fault; traffic may go either way.
                let up = shift.direction() == Direction::Up;
                let two_sided = matches!(
                    gauge.signal,
                    Signal::NetworkReceive | Signal::NetworkTransmit | Signal::Throughput
                );
                if !up && !two_sided {
                    continue;
                }
                let summary = format!(
                    "{service} {} {} from {} ({:.3} vs baseline {:.3}, {})",
                    gauge.signal.as_str(),
                    if up { "rose" } else { "fell" },
                    hhmm(shift.onset()),
                    shift.score.incident_level,
                    shift.score.baseline_median,
                    times(shift.score.ratio)
                );
                let ev = metric_evidence(
                    &src,
                    &promql_text(ctx, &q),
                    w.whole(),
                    &points,
                    shift.onset(),
                    QualityGrade::Direct,
                    summary,
                );
                log.push(
                    kind_of(gauge.signal),
                    Subject::with_component(&service, component(gauge.signal)),
                    shift.onset(),
                    w.incident.end,
                    shift.score.z,
                    shift.confidence,
                    ev,
                );
            }
        }
        Ok(AgentOutput {
            observations: log.observations,
            ..AgentOutput::default()
        })
    }

    fn orient(&self, observations: &[Observation], ctx: &AgentContext) -> Vec<Hypothesis> {
        let of = |service: &str, signal: Signal| -> Option<&Observation> {
            observations
                .iter()
                .filter(|o| {
                    o.subject.service == service
                        && o.subject.component.as_deref() == Some(component(signal))
                })
                .max_by(|a, b| a.confidence.total_cmp(&b.confidence))
        };
        let services: BTreeSet<&str> = observations
            .iter()
            .map(|o| o.subject.service.as_str())
            .chain(ctx.graph.services())
            .collect();
        let mut out = Vec::new();
        for &service in &services {
            let cpu = of(service, Signal::CpuUtilisation);
            let served = of(service, Signal::ServerLatency);
            // Callers that wait longer on their calls.
            let waiting: Vec<&Observation> = ctx
                .graph
                .callers(service)
                .filter_map(|c| of(c, Signal::ClientLatency))
                .collect();
            // A callee that slowed no later than this service explains its latency.
            let callee_first = |onset: i64| {
                ctx.graph.callees(service).any(|c| {
                    [Signal::ServerLatency, Signal::CpuUtilisation]
                        .iter()
                        .filter_map(|s| of(c, *s))
                        .any(|o| o.span.start <= onset)
                })
            };
            let (kind, what, mut obs, value) = if let Some(c) = cpu {
                let mut obs = vec![c];
                obs.extend(served);
                let value = 0.35 + 0.35 * c.confidence + 0.15 * f64::from(served.is_some() as u8);
                (
                    FaultKind::CpuSaturation,
                    format!("{service} is short of CPU: its CPU use rose and its requests slowed"),
                    obs,
                    value,
                )
            } else if let Some(s) = served.filter(|s| !callee_first(s.span.start)) {
                let value = 0.25 + 0.35 * s.confidence;
                (
                    FaultKind::Unknown,
                    format!(
                        "latency originates in {service}: it serves slower with no slower callee"
                    ),
                    vec![s],
                    value,
                )
            } else if !waiting.is_empty() {
                let callers = ctx.graph.callers(service).count().max(1);
                let share = waiting.len() as f64 / callers as f64;
                let top = waiting.iter().map(|o| o.confidence).fold(0.0, f64::max);
                (
                    FaultKind::NetworkLatency,
                    format!(
                        "calls into {service} take longer while it serves no slower: {} of its {callers} caller(s) wait",
                        waiting.len()
                    ),
                    Vec::new(),
                    0.2 + 0.3 * top * share,
                )
            } else {
                continue;
            };
            obs.extend(waiting.iter().copied());
            let reasoning = obs
                .iter()
                .map(|o| o.evidence.summary.as_str())
                .collect::<Vec<_>>()
                .join("; ");
            let component = match kind {
                FaultKind::CpuSaturation => Some("cpu".to_string()),
                FaultKind::NetworkLatency => Some("network".to_string()),
                _ => None,
            };
            out.push(Hypothesis::from_observations(
                NAME,
                RootCause {
                    service: service.to_string(),
                    component,
                    fault_kind: kind,
                },
                what,
                &obs,
                Confidence {
                    value: value.min(0.9),
                    reasoning,
                },
                vec![format!(
                    "compare {service}'s pods and node: one slow pod or all of them"
                )],
            ));
        }
        out
    }
}
