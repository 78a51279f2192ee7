//! The change agent: deploys and config changes shortly before or during the incident.
//! A change counts only when its service turns anomalous right after it (error ratio
//! or latency, before vs after the change); a change far from the onset, or on a
//! service that stays healthy, yields nothing. Proposes bad deploys.

use super::common::*;
use crate::agent::{Agent, AgentContext, AgentError, AgentOutput};
use async_trait::async_trait;
use compass_core::detect::{ShiftConfig, metric_shift};
use compass_core::stats::Direction;
use compass_core::{
    AnalysisWindow, Category, ChangeEvent, ChangeKind, Confidence, EpochMs, Evidence, FaultKind,
    Hypothesis, Incident, Locator, Observation, ObservationKind, QualityGrade, RootCause, Sample,
    Stance, Subject, TimeRange,
};
use std::collections::BTreeMap;

const NAME: &str = "change";
/// How far before the incident window changes are considered.
const LOOKBACK_MS: i64 = 30 * 60_000;
/// Before/after comparison window around a change.
const COMPARE_MS: i64 = 15 * 60_000;
/// A change whose service turns anomalous later than this is not blamed.
const MAX_LAG_MS: i64 = 5 * 60_000;

#[derive(Debug, Default)]
pub struct ChangeAgent;

type SeriesMap = BTreeMap<String, Vec<(EpochMs, f64)>>;

struct Health {
    errors: Option<(String, SeriesMap)>,
    latency: Option<(String, SeriesMap)>,
}

fn describe(e: &ChangeEvent) -> String {
    let kind = match e.kind {
        ChangeKind::Deploy => "deploy",
        ChangeKind::ConfigChange => "config change",
        ChangeKind::Scale => "scale",
        ChangeKind::FeatureFlag => "feature flag",
    };
    format!(
        "{kind} of {} at {}: {}",
        e.service,
        hhmmss(e.ts),
        e.description
    )
}

#[async_trait]
impl Agent for ChangeAgent {
    fn name(&self) -> &'static str {
        NAME
    }
    fn expertise(&self) -> &'static [Category] {
        &[Category::Change]
    }

    async fn observe(
        &self,
        _incident: &Incident,
        ctx: &AgentContext,
    ) -> Result<AgentOutput, AgentError> {
        let changes = ctx
            .sources
            .changes
            .as_ref()
            .ok_or(AgentError::MissingSource("changes"))?;
        let w = ctx.window;
        let range = TimeRange::new(w.incident.start - LOOKBACK_MS, w.incident.end);
        let events = changes.fetch_changes(range).await?;
        let mut problems = Vec::new();
        let mut log = ObservationLog::new(NAME);
        if events.is_empty() {
            return Ok(AgentOutput::default());
        }
        let metrics_name = ctx.sources.metrics.as_ref().map(|m| m.name().to_string());
        let health = if metrics_name.is_some() {
            let svc = ctx.catalog.service_label.as_str();
            let errors = error_ratio(ctx)
                .await
                .map_err(|e| problems.push(format!("error ratio: {e}")))
                .ok();
            let latency = mean_latency(ctx, &ctx.catalog.server_duration, &[svc])
                .await
                .map(|(q, m)| {
                    (
                        q,
                        m.into_iter().map(|(mut k, v)| (k.remove(0), v)).collect(),
                    )
                })
                .map_err(|e| problems.push(format!("latency: {e}")))
                .ok();
            Health { errors, latency }
        } else {
            problems.push("no metrics source: changes judged by timing only".into());
            Health {
                errors: None,
                latency: None,
            }
        };
        for e in &events {
            let change_ev = Evidence {
                source: changes.name().to_string(),
                locator: Locator::Query {
                    language: "change-search".into(),
                    query: format!(
                        "changes from {} to {}",
                        hhmmss(range.start),
                        hhmmss(range.end)
                    ),
                },
                time_range: range,
                sample: Sample::Text { text: describe(e) },
                quality: QualityGrade::Direct,
                stance: Stance::Supports,
                summary: describe(e),
            };
            let kind = if e.kind == ChangeKind::Deploy {
                ObservationKind::DeployChange
            } else {
                ObservationKind::ConfigChange
            };
            let Some(src) = &metrics_name else {
                // Without metrics only a change inside the incident window is worth a look.
                if w.incident.contains(e.ts) {
                    log.push(
                        kind,
                        Subject::service(&e.service),
                        e.ts,
                        w.incident.end,
                        0.0,
                        0.3,
                        change_ev,
                    );
                }
                continue;
            };
            let around = AnalysisWindow {
                baseline: TimeRange::new(e.ts - COMPARE_MS, e.ts),
                incident: TimeRange::new(
                    e.ts,
                    (e.ts + COMPARE_MS).min(w.incident.end.max(e.ts + ctx.step_ms * 4)),
                ),
            };
            let mut after = Vec::new();
            for (what, data, cfg) in [
                (
                    "error ratio",
                    &health.errors,
                    ShiftConfig::default().with_min_absolute(0.01),
                ),
                (
                    "latency",
                    &health.latency,
                    ShiftConfig::default().with_min_absolute(0.005),
                ),
            ] {
                let Some((promql, map)) = data else { continue };
                let Some(points) = map.get(&e.service) else {
                    continue;
                };
                let Some(shift) = metric_shift(points, &around, &cfg) else {
                    continue;
                };
                if shift.direction() != Direction::Up || shift.onset() - e.ts > MAX_LAG_MS {
                    continue;
                }
                after.push((what, promql, points, shift));
            }
            let Some(strongest) = after.iter().map(|a| a.3.confidence).reduce(f64::max) else {
                continue;
            };
            let lag = after.iter().map(|a| a.3.onset() - e.ts).min().unwrap_or(0);
            let timing = if lag <= 2 * 60_000 { 1.0 } else { 0.7 };
            log.push(
                kind,
                Subject::service(&e.service),
                e.ts,
                w.incident.end,
                lag as f64 / 1000.0,
                strongest * timing,
                change_ev,
            );
            for (what, promql, points, shift) in after {
                let summary = format!(
                    "{} {what} {} {}s after the change",
                    e.service,
                    times(shift.score.ratio),
                    (shift.onset() - e.ts) / 1000
                );
                let ev = metric_evidence(
                    src,
                    promql,
                    around.whole(),
                    points,
                    shift.onset(),
                    QualityGrade::Corroborated,
                    summary,
                );
                let kind = if what == "latency" {
                    ObservationKind::LatencyShift
                } else {
                    ObservationKind::ErrorRateSurge
                };
                log.push(
                    kind,
                    Subject::service(&e.service),
                    shift.onset(),
                    w.incident.end,
                    shift.score.ratio,
                    shift.confidence,
                    ev,
                );
            }
        }
        Ok(AgentOutput {
            observations: log.observations,
            problems,
            ..AgentOutput::default()
        })
    }

    fn orient(&self, observations: &[Observation], _ctx: &AgentContext) -> Vec<Hypothesis> {
        let mut out = Vec::new();
        for change in observations.iter().filter(|o| {
            matches!(
                o.kind,
                ObservationKind::DeployChange | ObservationKind::ConfigChange
            )
        }) {
            let service = &change.subject.service;
            let mut obs = vec![change];
            obs.extend(
                of_service(
                    observations,
                    service,
                    &[
                        ObservationKind::ErrorRateSurge,
                        ObservationKind::LatencyShift,
                    ],
                )
                .into_iter()
                .filter(|o| o.span.start >= change.span.start),
            );
            let scale = if change.kind == ObservationKind::DeployChange {
                0.9
            } else {
                0.8
            };
            let value = (change.confidence * scale).clamp(0.05, 0.9);
            let reasoning = obs
                .iter()
                .map(|o| o.evidence.summary.as_str())
                .collect::<Vec<_>>()
                .join("; ");
            out.push(Hypothesis::from_observations(
                NAME,
                RootCause {
                    service: service.clone(),
                    component: None,
                    fault_kind: FaultKind::BadDeploy,
                },
                format!(
                    "the change to {service} broke it: {}",
                    change.evidence.summary
                ),
                &obs,
                Confidence { value, reasoning },
                vec![
                    format!("roll back the last change to {service}"),
                    format!("diff the change to {service}"),
                ],
            ));
        }
        out
    }
}
