//! The database agent: DB client pools (connections used against the pool size,
//! requests waiting for a connection) and database-related failure lines in the logs
//! of the services that own a pool (connection timeouts, pool errors). Proposes pool
//! exhaustion on the service that owns the pool.

use super::common::*;
use crate::agent::{Agent, AgentContext, AgentError, AgentOutput};
use crate::ports::LogQuery;
use async_trait::async_trait;
use compass_core::detect::{
    SaturationConfig, ShiftConfig, TemplateShiftConfig, WindowCounts, error_keyword, metric_shift,
    rate_shift, saturation, utilisation,
};
use compass_core::stats::Direction;
use compass_core::{
    Category, Confidence, FaultKind, Hypothesis, Incident, LogLevel, LogRecord, Matcher,
    MetricFunc, Observation, ObservationKind, QualityGrade, RootCause, Subject,
};
use std::collections::BTreeMap;

const NAME: &str = "database";
/// Words that tie a failure line to a database or its client pool.
const DB_WORDS: &[&str] = &[
    "connection",
    "pool",
    "database",
    "sql",
    "jdbc",
    "db ",
    "query",
    "transaction",
];

#[derive(Debug, Default)]
pub struct DatabaseAgent;

fn is_db_failure(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    error_keyword(&lower).is_some() && DB_WORDS.iter().any(|w| lower.contains(w))
}

impl DatabaseAgent {
    /// Pool saturation and pending requests; returns the services that own a pool.
    async fn pools(
        &self,
        ctx: &AgentContext,
        src: &str,
        log: &mut ObservationLog,
    ) -> Result<Vec<String>, AgentError> {
        let cat = &ctx.catalog;
        let svc = cat.service_label.as_str();
        let w = ctx.window;
        let used_q = query(
            &cat.db_connections_usage,
            if cat.db_used_state.is_empty() {
                vec![]
            } else {
                vec![Matcher::eq(&cat.db_state_label, &cat.db_used_state)]
            },
            MetricFunc::Gauge,
            &[svc],
        );
        let max_q = query(&cat.db_connections_max, vec![], MetricFunc::Gauge, &[svc]);
        let pending_q = query(
            &cat.db_connections_pending,
            vec![],
            MetricFunc::Gauge,
            &[svc],
        );
        let used = by_label(run_query(ctx, &used_q).await?, svc);
        let max = by_label(run_query(ctx, &max_q).await?, svc);
        // An empty mapping means the source has no such gauge.
        let pending = if cat.db_connections_pending.is_empty() {
            Default::default()
        } else {
            by_label(run_query(ctx, &pending_q).await?, svc)
        };
        let promql = format!(
            "{} / {}",
            promql_text(ctx, &used_q),
            promql_text(ctx, &max_q)
        );
        let cfg = SaturationConfig {
            threshold: 0.9,
            ..SaturationConfig::default()
        };
        for (service, used) in &used {
            let Some(limit) = max.get(service) else {
                continue;
            };
            let util = utilisation(used, limit);
            let Some(sat) = saturation(&util, &w, &cfg).filter(|s| s.is_new) else {
                continue;
            };
            let summary = format!(
                "DB pool of {service} {:.0}% used from {}, baseline {:.0}%",
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
                ObservationKind::ConnectionPoolSaturation,
                Subject::with_component(service, "db-pool"),
                sat.onset,
                w.incident.end,
                sat.incident_utilisation,
                sat.confidence,
                ev,
            );
        }
        let cfg = ShiftConfig::default().with_min_absolute(1.0);
        for (service, points) in &pending {
            let Some(shift) =
                metric_shift(points, &w, &cfg).filter(|s| s.direction() == Direction::Up)
            else {
                continue;
            };
            let summary = format!(
                "{:.0} requests waiting for a DB connection in {service} from {}, baseline {:.0}",
                shift.score.incident_level,
                hhmm(shift.onset()),
                shift.score.baseline_median
            );
            let ev = metric_evidence(
                src,
                &promql_text(ctx, &pending_q),
                w.whole(),
                points,
                shift.onset(),
                QualityGrade::Direct,
                summary,
            );
            log.push(
                ObservationKind::ConnectionPoolSaturation,
                Subject::with_component(service, "db-pool-pending"),
                shift.onset(),
                w.incident.end,
                shift.score.incident_level,
                shift.confidence,
                ev,
            );
        }
        let mut owners: Vec<String> = used.keys().chain(max.keys()).cloned().collect();
        owners.sort();
        owners.dedup();
        Ok(owners)
    }

    /// DB-related failure lines (WARN and above) of the pool owners, baseline vs
    /// incident, in one pass over the logs (not one per service).
    async fn db_logs(
        &self,
        ctx: &AgentContext,
        owners: &[String],
        log: &mut ObservationLog,
        problems: &mut Vec<String>,
    ) -> Result<(), AgentError> {
        let logs = logs_source(ctx)?;
        let w = ctx.window;
        let scan = LogQuery {
            service: None,
            min_level: Some(LogLevel::Warn),
        };
        let mut per_owner: BTreeMap<&str, ([u64; 2], Vec<LogRecord>)> = owners
            .iter()
            .map(|s| (s.as_str(), ([0; 2], Vec::new())))
            .collect();
        for (i, range) in [w.baseline, w.incident].into_iter().enumerate() {
            for_each_log_page(logs, &scan, range, problems, |items| {
                for r in items {
                    let Some((counts, samples)) = per_owner.get_mut(r.service.as_str()) else {
                        continue;
                    };
                    if !is_db_failure(&r.message) {
                        continue;
                    }
                    counts[i] += 1;
                    if i == 1 && samples.len() < SAMPLE_LINES {
                        samples.push(r);
                    }
                }
            })
            .await?;
        }
        for (service, (counts, samples)) in per_owner {
            let c = WindowCounts {
                key: (),
                baseline: counts[0],
                incident: counts[1],
            };
            let Some(shift) = rate_shift(&c, &w, &TemplateShiftConfig::default()) else {
                continue;
            };
            let onset = samples.first().map_or(w.incident.start, |r| r.ts);
            let summary = format!(
                "{} DB-related failure lines in {service} ({:.1}/min vs {:.1}/min), from {}",
                shift.incident,
                shift.incident_rate,
                shift.baseline_rate,
                hhmm(onset)
            );
            let lines: Vec<&LogRecord> = samples.iter().collect();
            let q = LogQuery {
                service: Some(service.to_string()),
                min_level: Some(LogLevel::Warn),
            };
            let ev = log_evidence(
                logs.name(),
                log_query_text(ctx, &q),
                w.incident,
                &lines,
                None,
                QualityGrade::Corroborated,
                summary,
            );
            log.push(
                ObservationKind::LogSpike,
                Subject::with_component(service, "db-client"),
                onset,
                w.incident.end,
                shift.ratio,
                shift.confidence,
                ev,
            );
        }
        Ok(())
    }
}

#[async_trait]
impl Agent for DatabaseAgent {
    fn name(&self) -> &'static str {
        NAME
    }
    fn expertise(&self) -> &'static [Category] {
        &[Category::Database]
    }
    async fn observe(
        &self,
        _incident: &Incident,
        ctx: &AgentContext,
    ) -> Result<AgentOutput, AgentError> {
        let src = metrics_source(ctx)?.name().to_string();
        let mut log = ObservationLog::new(NAME);
        let mut problems = Vec::new();
        let owners = self.pools(ctx, &src, &mut log).await?;
        if ctx.sources.logs.is_some()
            && !owners.is_empty()
            && let Err(e) = self.db_logs(ctx, &owners, &mut log, &mut problems).await
        {
            problems.push(format!("logs of the pool owners: {e}"));
        }
        problems.sort();
        problems.dedup();
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
        let saturated_pools = services
            .iter()
            .filter(|s| {
                !of_service(
                    observations,
                    s,
                    &[ObservationKind::ConnectionPoolSaturation],
                )
                .is_empty()
            })
            .count();
        let mut out = Vec::new();
        for service in services {
            let obs: Vec<&Observation> = observations
                .iter()
                .filter(|o| o.subject.service == service)
                .collect();
            let component = |c: &str| {
                obs.iter()
                    .filter(|o| o.subject.component.as_deref() == Some(c))
                    .count()
                    > 0
            };
            let (pool, pending, logs) = (
                component("db-pool"),
                component("db-pool-pending"),
                component("db-client"),
            );
            let mut value: f64 = match (pool, pending) {
                (true, true) => 0.75,
                (true, false) => 0.6,
                (false, true) => 0.45,
                (false, false) => 0.2,
            };
            if logs {
                value += 0.12;
            }
            // Several pools exhausted at once point at the database they share.
            if saturated_pools > 1 {
                value *= 0.7;
            }
            let reasoning = obs
                .iter()
                .map(|o| o.evidence.summary.as_str())
                .collect::<Vec<_>>()
                .join("; ");
            out.push(Hypothesis::from_observations(
                NAME,
                RootCause { service: service.to_string(), component: Some("db-pool".into()), fault_kind: FaultKind::DbPoolExhaustion },
                format!("the DB connection pool of {service} is exhausted: requests wait for connections and time out"),
                &obs,
                Confidence { value: value.min(0.9), reasoning },
                vec![format!("look for connection leaks or long transactions in {service}"), format!("check the pool size of {service} against its load")],
            ));
        }
        out
    }
}
