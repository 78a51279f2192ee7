//! The tracing agent: attributes latency and errors down the call graph from spans.
//! A service whose own (self) time per request rises is where latency originates; a
//! service whose server spans fail with no failing callee below is where errors
//! originate; a call whose client-to-server gap grows points at the network to the
//! callee. Callers that only wait on or pass on these are marked as symptoms. Blames
//! the deepest anomalous service, not its callers.

use super::common::*;
use super::spans::{SpanAnalysis, analyse_window, search};
use crate::agent::{Agent, AgentContext, AgentError, AgentOutput};
use async_trait::async_trait;
use compass_core::detect::{SampleShiftConfig, ShiftConfig, metric_shift, sample_shift};
use compass_core::stats::Direction;
use compass_core::{
    Category, Confidence, FaultKind, Hypothesis, Incident, Observation, ObservationKind,
    QualityGrade, RootCause, Span, Subject,
};
use std::collections::{BTreeMap, BTreeSet};

const NAME: &str = "tracing";
pub(crate) const ORIGIN: &str = "error-origin";
pub(crate) const PROPAGATED: &str = "propagated";
pub(crate) const SELF_TIME: &str = "self-time";
/// Component of a delay observation on a peer: followed by the caller's name.
pub(crate) const NETWORK_FROM: &str = "network from ";
/// Per-request comparison when the baseline is too short for per-bucket series:
/// clearly slower (x1.5, 5 ms) and clearly ranked above the baseline.
const SAMPLES: SampleShiftConfig = SampleShiftConfig {
    min_samples: 8,
    min_z: 4.0,
    min_ratio: 1.5,
    min_absolute: 5.0,
};

/// The caller of a delay observation (its subject is the peer).
fn delay_caller(o: &Observation) -> Option<&str> {
    o.subject.component.as_deref()?.strip_prefix(NETWORK_FROM)
}

/// Which end of each delayed call to blame. A service at the centre of several
/// delayed calls is their common cause: a peer that many callers wait on, or a caller
/// whose calls to many peers are all slow (its own CPU or network is starved). Each
/// call is blamed on the end with more delayed calls; ties go to the peer.
fn blame_delays<'o>(delays: &[&'o Observation]) -> BTreeMap<String, Vec<&'o Observation>> {
    let mut degree: BTreeMap<&str, usize> = BTreeMap::new();
    for o in delays {
        *degree.entry(o.subject.service.as_str()).or_default() += 1;
        if let Some(caller) = delay_caller(o) {
            *degree.entry(caller).or_default() += 1;
        }
    }
    let mut out: BTreeMap<String, Vec<&Observation>> = BTreeMap::new();
    for o in delays {
        let peer = o.subject.service.as_str();
        let blamed = match delay_caller(o) {
            Some(caller) if degree[caller] > degree[peer] => caller,
            _ => peer,
        };
        out.entry(blamed.to_string()).or_default().push(o);
    }
    out
}

#[derive(Debug, Default)]
pub struct TracingAgent;

/// NetworkDelay observations from client-to-server gaps (shared with the network agent).
pub(crate) fn gap_observations(
    ctx: &AgentContext,
    a: &SpanAnalysis,
    source: &str,
    log: &mut ObservationLog,
) {
    let w = ctx.window;
    let cfg = ShiftConfig::default().with_min_absolute(5.0);
    for ((caller, peer), pair) in &a.pairs {
        let points = pair.gap_ms.mean();
        let found = match metric_shift(&points, &w, &cfg) {
            Some(s) if s.direction() == Direction::Up => Some((
                s.onset(),
                s.score.incident_level,
                s.score.baseline_median,
                s.delta(),
                s.confidence,
            )),
            Some(_) => None,
            // Too few baseline buckets for a series: compare the calls themselves.
            None => sample_shift(&pair.gap_samples[0], &pair.gap_samples[1], &SAMPLES).map(|x| {
                (
                    x.onset,
                    x.incident_median,
                    x.baseline_median,
                    x.incident_median - x.baseline_median,
                    x.confidence,
                )
            }),
        };
        let Some((onset, level, baseline, delta, confidence)) = found else {
            continue;
        };
        let examples: Vec<&Span> = pair.examples.iter().map(|(_, i)| &a.spans[*i]).collect();
        let summary = format!(
            "calls {caller} -> {peer} spend {level:.0} ms outside {peer}'s server span from {} (baseline {baseline:.0} ms)",
            hhmm(onset),
        );
        let what =
            format!("client spans of {caller} with peer {peer}, minus their server child span");
        let ev = span_evidence(
            source,
            search(ctx, &what),
            w.whole(),
            &examples,
            &a.spans,
            QualityGrade::Direct,
            summary,
        );
        log.push(
            ObservationKind::NetworkDelay,
            Subject::with_component(peer, format!("{NETWORK_FROM}{caller}")),
            onset,
            w.incident.end,
            delta,
            confidence,
            ev,
        );
    }
}

fn observe_services(ctx: &AgentContext, a: &SpanAnalysis, source: &str, log: &mut ObservationLog) {
    let w = ctx.window;
    let latency_cfg = ShiftConfig::default().with_min_absolute(5.0);
    let counts_cfg = ShiftConfig::counts();
    for (service, s) in &a.services {
        // Own time per request rising: from the per-bucket series, or, when the baseline
        // is too short for a series, from the requests themselves.
        let own = metric_shift(&s.self_ms.mean(), &w, &latency_cfg)
            .filter(|x| x.direction() == Direction::Up)
            .map(|x| {
                let sc = x.score;
                (
                    x.onset(),
                    sc.incident_level,
                    sc.baseline_median,
                    sc.ratio,
                    x.confidence,
                    String::new(),
                )
            })
            .or_else(|| {
                sample_shift(&s.own_samples[0], &s.own_samples[1], &SAMPLES).map(|x| {
                    let counts = format!(
                        "; {} vs {} requests",
                        s.own_samples[1].len(),
                        s.own_samples[0].len()
                    );
                    (
                        x.onset,
                        x.incident_median,
                        x.baseline_median,
                        x.ratio(),
                        x.confidence,
                        counts,
                    )
                })
            });
        if let Some((onset, level, baseline, ratio, confidence, counts)) = own {
            let examples: Vec<&Span> = s.slow_examples.iter().map(|(_, i)| &a.spans[*i]).collect();
            let summary = format!(
                "{service} spends {level:.0} ms of its own time per request from {} (baseline {baseline:.0} ms, {}{counts})",
                hhmm(onset),
                times(ratio)
            );
            let what = format!("server spans of {service}, duration minus child spans");
            let ev = span_evidence(
                source,
                search(ctx, &what),
                w.whole(),
                &examples,
                &a.spans,
                QualityGrade::Direct,
                summary,
            );
            log.push(
                ObservationKind::TraceLatencyAttribution,
                Subject::with_component(service, SELF_TIME),
                onset,
                w.incident.end,
                ratio,
                confidence,
                ev,
            );
        } else if let Some(shift) = metric_shift(&s.server_ms.mean(), &w, &latency_cfg)
            .filter(|x| x.direction() == Direction::Up)
        {
            let examples: Vec<&Span> = s.slow_examples.iter().map(|(_, i)| &a.spans[*i]).collect();
            let summary = format!(
                "{service} server spans {} from {} while its own time is flat: waiting on callees",
                times(shift.score.ratio),
                hhmm(shift.onset())
            );
            let what = format!("server spans of {service}");
            let ev = span_evidence(
                source,
                search(ctx, &what),
                w.whole(),
                &examples,
                &a.spans,
                QualityGrade::Indirect,
                summary,
            );
            log.push(
                ObservationKind::LatencyShift,
                Subject::with_component(service, PROPAGATED),
                shift.onset(),
                w.incident.end,
                shift.score.ratio,
                shift.confidence,
                ev,
            );
        }
        for (component, buckets, quality) in [
            (ORIGIN, &s.error_origins, QualityGrade::Direct),
            (PROPAGATED, &s.propagated_errors, QualityGrade::Indirect),
        ] {
            let points = buckets.totals(&a.grid);
            let Some(shift) =
                metric_shift(&points, &w, &counts_cfg).filter(|x| x.direction() == Direction::Up)
            else {
                continue;
            };
            let examples: Vec<&Span> = if component == ORIGIN {
                s.error_examples.iter().map(|i| &a.spans[*i]).collect()
            } else {
                Vec::new()
            };
            let summary = if component == ORIGIN {
                format!(
                    "{service} fails {:.0} requests/min itself from {} (baseline {:.0}/min), no failing callee below",
                    shift.score.incident_level * 60_000.0 / a.bucket_ms as f64,
                    hhmm(shift.onset()),
                    shift.score.baseline_median * 60_000.0 / a.bucket_ms as f64
                )
            } else {
                format!(
                    "{service} passes on errors from its callees from {}",
                    hhmm(shift.onset())
                )
            };
            let what = format!("server spans of {service} with status error");
            let ev = span_evidence(
                source,
                search(ctx, &what),
                w.whole(),
                &examples,
                &a.spans,
                quality,
                summary,
            );
            log.push(
                ObservationKind::TraceErrorPropagation,
                Subject::with_component(service, component),
                shift.onset(),
                w.incident.end,
                shift.score.incident_level,
                shift.confidence,
                ev,
            );
        }
    }
}

/// `service` has no (transitive) callee among `others`.
fn deepest(ctx: &AgentContext, service: &str, others: &BTreeSet<&str>) -> bool {
    let below = ctx.graph.downstream(service);
    !others.iter().any(|o| *o != service && below.contains(*o))
}

#[async_trait]
impl Agent for TracingAgent {
    fn name(&self) -> &'static str {
        NAME
    }
    fn expertise(&self) -> &'static [Category] {
        &[
            Category::Application,
            Category::Infrastructure,
            Category::Network,
        ]
    }
    async fn observe(
        &self,
        _incident: &Incident,
        ctx: &AgentContext,
    ) -> Result<AgentOutput, AgentError> {
        let source = traces_source(ctx)?.name().to_string();
        let a = analyse_window(ctx).await?;
        let mut log = ObservationLog::new(NAME);
        observe_services(ctx, &a, &source, &mut log);
        gap_observations(ctx, &a, &source, &mut log);
        Ok(AgentOutput {
            observations: log.observations,
            problems: a.problems,
            ..AgentOutput::default()
        })
    }

    fn orient(&self, observations: &[Observation], ctx: &AgentContext) -> Vec<Hypothesis> {
        let with = |kind: ObservationKind, component: Option<&str>| -> Vec<&Observation> {
            observations
                .iter()
                .filter(|o| {
                    o.kind == kind
                        && component.is_none_or(|c| o.subject.component.as_deref() == Some(c))
                })
                .collect()
        };
        let mut out = Vec::new();
        let mut propose = |service: &str,
                           obs: Vec<&Observation>,
                           kind: FaultKind,
                           component: Option<String>,
                           value: f64,
                           statement: String| {
            let service = service.to_string();
            let reasoning = obs
                .iter()
                .map(|o| o.evidence.summary.as_str())
                .collect::<Vec<_>>()
                .join("; ");
            out.push(Hypothesis::from_observations(
                NAME,
                RootCause {
                    service: service.clone(),
                    component,
                    fault_kind: kind,
                },
                statement,
                &obs,
                Confidence { value, reasoning },
                vec![format!(
                    "open the slowest or failing traces through {service}"
                )],
            ));
        };
        let origins = with(ObservationKind::TraceErrorPropagation, Some(ORIGIN));
        let origin_services: BTreeSet<&str> =
            origins.iter().map(|o| o.subject.service.as_str()).collect();
        for o in &origins {
            let s = o.subject.service.as_str();
            let value = if deepest(ctx, s, &origin_services) {
                0.4 + 0.45 * o.confidence
            } else {
                0.12
            };
            propose(
                s,
                vec![o],
                FaultKind::ErrorInjection,
                None,
                value,
                format!("errors originate in {s}: its requests fail with no failing callee below"),
            );
        }
        let slow = with(ObservationKind::TraceLatencyAttribution, Some(SELF_TIME));
        let slow_services: BTreeSet<&str> =
            slow.iter().map(|o| o.subject.service.as_str()).collect();
        for o in &slow {
            let s = o.subject.service.as_str();
            let value = if deepest(ctx, s, &slow_services) {
                0.3 + 0.4 * o.confidence
            } else {
                0.1
            };
            propose(
                s,
                vec![o],
                FaultKind::Unknown,
                None,
                value,
                format!("latency originates in {s}: its own work per request grew"),
            );
        }
        let delays = with(ObservationKind::NetworkDelay, None);
        for (service, mut obs) in blame_delays(&delays) {
            let top = obs.iter().map(|o| o.confidence).fold(0.0, f64::max);
            let value = (0.35 + 0.4 * top + 0.05 * (obs.len().min(3) as f64 - 1.0)).min(0.85);
            let as_caller = obs.iter().filter(|o| o.subject.service != service).count();
            if as_caller * 2 < obs.len() {
                propose(
                    &service,
                    obs,
                    FaultKind::NetworkLatency,
                    Some("network".into()),
                    value,
                    format!(
                        "calls into {service} are delayed in the network: callers wait longer than {service} works"
                    ),
                );
                continue;
            }
            // Its calls to several peers are slow on its side: starved of CPU when its
            // own work per request grew too, else its network.
            let own = slow
                .iter()
                .copied()
                .filter(|o| o.subject.service == service);
            let starved = obs.len();
            obs.extend(own);
            let (kind, component, what) = if obs.len() > starved {
                (
                    FaultKind::CpuSaturation,
                    "cpu",
                    "starved of CPU: its own work and its calls all slowed",
                )
            } else {
                (
                    FaultKind::NetworkLatency,
                    "network",
                    "slow on its own network: its calls to several peers all wait",
                )
            };
            let statement = format!("{service} is {what}");
            propose(
                &service,
                obs,
                kind,
                Some(component.into()),
                value,
                statement,
            );
        }
        out
    }
}
