//! The infrastructure agent: CPU usage against its limit, working-set memory growing
//! toward its limit, and container restarts, per service. A resource that was already
//! saturated in the baseline (a periodic batch job) is not a new cause and is not
//! reported. Proposes CPU saturation and memory leaks.

use super::common::*;
use crate::agent::{Agent, AgentContext, AgentError, AgentOutput};
use async_trait::async_trait;
use compass_core::detect::{
    Growth, GrowthConfig, SaturationConfig, ShiftConfig, metric_shift, monotonic_growth,
    saturation, utilisation,
};
use compass_core::{
    Category, Confidence, EpochMs, FaultKind, Hypothesis, Incident, Matcher, MetricFunc,
    Observation, ObservationKind, QualityGrade, RootCause, Subject, TimeRange,
};
use std::collections::BTreeMap;

const NAME: &str = "infrastructure";

type Points = Vec<(EpochMs, f64)>;
/// Restarts per service: baseline, incident, first restart, the counter series.
type Restarts = (f64, f64, Option<EpochMs>, Points);

#[derive(Debug, Default)]
pub struct InfrastructureAgent;

/// The part of `points` before the first kill in the incident window: a leak ends in
/// an out-of-memory kill that resets memory, and the growth is before it.
fn until_first_drop(points: &[(EpochMs, f64)], incident: TimeRange) -> &[(EpochMs, f64)] {
    let mut peak = f64::NEG_INFINITY;
    for (i, (t, v)) in points.iter().enumerate() {
        if !incident.contains(*t) || !v.is_finite() {
            continue;
        }
        if *v < 0.8 * peak {
            let kept = points[..i]
                .iter()
                .filter(|p| incident.contains(p.0))
                .count();
            return if kept >= 6 { &points[..i] } else { points };
        }
        peak = peak.max(*v);
    }
    points
}

/// Container restarts in a range: the sum of the counter's increases.
fn restarts_in(points: &[(EpochMs, f64)], range: TimeRange) -> (f64, Option<EpochMs>) {
    let mut total = 0.0;
    let mut first = None;
    for w in points.windows(2) {
        if range.contains(w[1].0) && w[1].1 > w[0].1 {
            total += w[1].1 - w[0].1;
            first = first.or(Some(w[1].0));
        }
    }
    (total, first)
}

impl InfrastructureAgent {
    async fn cpu(
        &self,
        ctx: &AgentContext,
        src: &str,
        log: &mut ObservationLog,
    ) -> Result<(), AgentError> {
        let cat = &ctx.catalog;
        let svc = cat.service_label.as_str();
        let w = ctx.window;
        let rate = MetricFunc::Rate {
            window_s: rate_window_s(ctx.step_ms),
        };
        let usage_q = query(&cat.cpu_seconds_total, vec![], rate, &[svc]);
        let limit_q = query(
            &cat.resource_limits,
            vec![Matcher::eq(&cat.resource_label, "cpu")],
            MetricFunc::Gauge,
            &[svc],
        );
        let usage = by_label(run_query(ctx, &usage_q).await?, svc);
        let limits = by_label(run_query(ctx, &limit_q).await?, svc);
        let promql = format!(
            "{} / {}",
            promql_text(ctx, &usage_q),
            promql_text(ctx, &limit_q)
        );
        for (service, used) in usage {
            let Some(limit) = limits.get(&service) else {
                continue;
            };
            let util = utilisation(&used, limit);
            let Some(sat) = saturation(&util, &w, &SaturationConfig::default()) else {
                continue;
            };
            if !sat.is_new {
                continue;
            }
            let summary = format!(
                "CPU at {:.0}% of limit from {}, baseline {:.0}%",
                sat.incident_utilisation * 100.0,
                hhmm(sat.onset),
                sat.baseline_utilisation * 100.0
            );
            let ev = metric_evidence(
                src,
                &promql,
                w.whole(),
                &util,
                sat.onset,
                QualityGrade::Direct,
                summary,
            );
            log.push(
                ObservationKind::ResourceSaturation,
                Subject::with_component(&service, "cpu"),
                sat.onset,
                w.incident.end,
                sat.incident_utilisation,
                sat.confidence,
                ev,
            );
        }
        Ok(())
    }

    async fn memory(
        &self,
        ctx: &AgentContext,
        src: &str,
        log: &mut ObservationLog,
    ) -> Result<(), AgentError> {
        let cat = &ctx.catalog;
        let by = [cat.service_label.as_str(), cat.pod_label.as_str()];
        let w = ctx.window;
        let mem_q = query(&cat.memory_working_set, vec![], MetricFunc::Gauge, &by);
        let limit_q = query(
            &cat.resource_limits,
            vec![Matcher::eq(&cat.resource_label, "memory")],
            MetricFunc::Gauge,
            &by,
        );
        let mem = by_labels(run_query(ctx, &mem_q).await?, &by);
        let limits = by_labels(run_query(ctx, &limit_q).await?, &by);
        // Strongest growing pod per service.
        let mut best: BTreeMap<String, (String, Growth, Points)> = BTreeMap::new();
        // Pods born during the window (a rollout) warm up rather than leak: only pods
        // that cover most of the baseline are judged.
        let expected_baseline = (w.baseline.duration_ms() / ctx.step_ms.max(1)) as usize;
        for (key, points) in mem {
            if points.iter().filter(|p| w.baseline.contains(p.0)).count() * 2 < expected_baseline {
                continue;
            }
            let limit = limits.get(&key).and_then(|l| l.last()).map(|p| p.1);
            let head = until_first_drop(&points, w.incident);
            let Some(g) = monotonic_growth(head, limit, &w, &GrowthConfig::default()) else {
                continue;
            };
            if best
                .get(&key[0])
                .is_none_or(|b| g.growth_fraction > b.1.growth_fraction)
            {
                best.insert(key[0].clone(), (key[1].clone(), g, points));
            }
        }
        for (service, (pod, g, points)) in best {
            let summary = match (g.start_fraction, g.end_fraction) {
                (Some(a), Some(b)) => format!(
                    "memory of {pod} grew from {:.0}% to {:.0}% of limit from {} ({:.1} MiB/min)",
                    a * 100.0,
                    b * 100.0,
                    hhmm(g.onset),
                    g.slope_per_s * 60.0 / 1_048_576.0
                ),
                _ => format!(
                    "memory of {pod} grew {:.0}% over its baseline from {}",
                    g.growth_fraction * 100.0,
                    hhmm(g.onset)
                ),
            };
            let ev = metric_evidence(
                src,
                &promql_text(ctx, &mem_q),
                w.whole(),
                &points,
                g.onset,
                QualityGrade::Direct,
                summary,
            );
            log.push(
                ObservationKind::MemoryGrowth,
                Subject::with_component(&service, "memory"),
                g.onset,
                w.incident.end,
                g.growth_fraction,
                g.confidence,
                ev,
            );
        }
        Ok(())
    }

    async fn restarts(
        &self,
        ctx: &AgentContext,
        src: &str,
        log: &mut ObservationLog,
    ) -> Result<(), AgentError> {
        let cat = &ctx.catalog;
        let by = [cat.service_label.as_str(), cat.pod_label.as_str()];
        let w = ctx.window;
        let q = query(&cat.restarts_total, vec![], MetricFunc::Gauge, &by);
        let mut per_service: BTreeMap<String, Restarts> = BTreeMap::new();
        for (key, points) in by_labels(run_query(ctx, &q).await?, &by) {
            let (base, _) = restarts_in(&points, w.baseline);
            let (inc, first) = restarts_in(&points, w.incident);
            let e = per_service
                .entry(key[0].clone())
                .or_insert((0.0, 0.0, None, Vec::new()));
            e.0 += base;
            e.1 += inc;
            if inc > 0.0 && (e.2.is_none() || first < e.2) {
                e.2 = first;
                e.3 = points;
            }
        }
        for (service, (base, inc, first, points)) in per_service {
            let Some(onset) = first.filter(|_| inc > 0.0 && base == 0.0) else {
                continue;
            };
            let summary = format!(
                "{inc:.0} container restart(s) from {}, none in the baseline",
                hhmm(onset)
            );
            let ev = metric_evidence(
                src,
                &promql_text(ctx, &q),
                w.whole(),
                &points,
                onset,
                QualityGrade::Direct,
                summary,
            );
            log.push(
                ObservationKind::PodRestarts,
                Subject::service(&service),
                onset,
                w.incident.end,
                inc,
                0.9,
                ev,
            );
        }
        Ok(())
    }

    /// Latency shifts of the services with a resource finding (their own symptom).
    async fn latency(
        &self,
        ctx: &AgentContext,
        src: &str,
        log: &mut ObservationLog,
    ) -> Result<(), AgentError> {
        let svc = ctx.catalog.service_label.as_str();
        let mut services: Vec<String> = log
            .observations
            .iter()
            .map(|o| o.subject.service.clone())
            .collect();
        services.sort();
        services.dedup();
        if services.is_empty() {
            return Ok(());
        }
        let (promql, means) = mean_latency(ctx, &ctx.catalog.server_duration, &[svc]).await?;
        let cfg = ShiftConfig::default().with_min_absolute(0.005);
        for service in services {
            let Some(points) = means.get(&vec![service.clone()]) else {
                continue;
            };
            let Some(shift) = metric_shift(points, &ctx.window, &cfg) else {
                continue;
            };
            if shift.score.ratio < 1.0 {
                continue;
            }
            let summary = format!(
                "server latency {} from {} ({:.0} ms vs {:.0} ms)",
                times(shift.score.ratio),
                hhmm(shift.onset()),
                shift.score.incident_level * 1000.0,
                shift.score.baseline_median * 1000.0
            );
            let ev = metric_evidence(
                src,
                &promql,
                ctx.window.whole(),
                points,
                shift.onset(),
                QualityGrade::Corroborated,
                summary,
            );
            log.push(
                ObservationKind::LatencyShift,
                Subject::service(&service),
                shift.onset(),
                ctx.window.incident.end,
                shift.score.ratio,
                shift.confidence,
                ev,
            );
        }
        Ok(())
    }
}

#[async_trait]
impl Agent for InfrastructureAgent {
    fn name(&self) -> &'static str {
        NAME
    }
    fn expertise(&self) -> &'static [Category] {
        &[Category::Infrastructure]
    }
    async fn observe(
        &self,
        _incident: &Incident,
        ctx: &AgentContext,
    ) -> Result<AgentOutput, AgentError> {
        let src = metrics_source(ctx)?.name().to_string();
        let mut log = ObservationLog::new(NAME);
        let mut problems = Vec::new();
        self.cpu(ctx, &src, &mut log).await?;
        for (what, result) in [
            ("memory", self.memory(ctx, &src, &mut log).await),
            ("restarts", self.restarts(ctx, &src, &mut log).await),
            ("latency", self.latency(ctx, &src, &mut log).await),
        ] {
            if let Err(e) = result {
                problems.push(format!("{what}: {e}"));
            }
        }
        Ok(AgentOutput {
            observations: log.observations,
            problems,
            ..AgentOutput::default()
        })
    }

    fn orient(&self, observations: &[Observation], _ctx: &AgentContext) -> Vec<Hypothesis> {
        let mut services: Vec<&str> = observations
            .iter()
            .map(|o| o.subject.service.as_str())
            .collect();
        services.sort();
        services.dedup();
        let mut out = Vec::new();
        for service in services {
            let cpu = of_service(
                observations,
                service,
                &[ObservationKind::ResourceSaturation],
            );
            let mem = of_service(observations, service, &[ObservationKind::MemoryGrowth]);
            let restarts = of_service(observations, service, &[ObservationKind::PodRestarts]);
            let latency = of_service(observations, service, &[ObservationKind::LatencyShift]);
            let lat_bonus = if latency.is_empty() { 0.0 } else { 0.08 };
            let summaries = |obs: &[&Observation]| -> String {
                obs.iter()
                    .map(|o| o.evidence.summary.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            if let Some(top) = cpu
                .iter()
                .max_by(|a, b| a.confidence.total_cmp(&b.confidence))
            {
                let value = (0.35 + 0.5 * top.confidence + lat_bonus).min(0.92);
                let mut obs = cpu.clone();
                obs.extend(&latency);
                out.push(Hypothesis::from_observations(
                    NAME,
                    RootCause {
                        service: service.to_string(),
                        component: Some("cpu".into()),
                        fault_kind: FaultKind::CpuSaturation,
                    },
                    format!("{service} is CPU-saturated: it runs at its CPU limit and throttles"),
                    &obs,
                    Confidence {
                        value,
                        reasoning: summaries(&obs),
                    },
                    vec![
                        format!(
                            "check what {service} is doing (profile, recent traffic, hot loops)"
                        ),
                        format!("raise the CPU limit or scale out {service}"),
                    ],
                ));
            }
            if let Some(top) = mem
                .iter()
                .max_by(|a, b| a.confidence.total_cmp(&b.confidence))
            {
                let restart_bonus = if restarts.is_empty() { 0.0 } else { 0.12 };
                let value = (0.3 + 0.45 * top.confidence + restart_bonus + lat_bonus).min(0.92);
                let mut obs = mem.clone();
                obs.extend(&restarts);
                obs.extend(&latency);
                out.push(Hypothesis::from_observations(
                    NAME,
                    RootCause {
                        service: service.to_string(),
                        component: Some("memory".into()),
                        fault_kind: FaultKind::MemoryLeak,
                    },
                    format!("{service} leaks memory: its working set grows toward the limit"),
                    &obs,
                    Confidence {
                        value,
                        reasoning: summaries(&obs),
                    },
                    vec![
                        format!("take a heap dump of {service}"),
                        format!("restart {service} to buy time"),
                    ],
                ));
            } else if !restarts.is_empty() && cpu.is_empty() {
                let mut obs = restarts.clone();
                obs.extend(&latency);
                out.push(Hypothesis::from_observations(
                    NAME,
                    RootCause {
                        service: service.to_string(),
                        component: None,
                        fault_kind: FaultKind::Unknown,
                    },
                    format!("{service} containers restart"),
                    &obs,
                    Confidence {
                        value: 0.25,
                        reasoning: summaries(&obs),
                    },
                    vec![format!(
                        "read the termination reason of {service}'s containers"
                    )],
                ));
            }
        }
        out
    }
}
