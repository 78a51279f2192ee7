//! The network agent: compares each caller's client-side latency to a peer with the
//! peer's own server-side latency. When callers wait longer while the peer works no
//! longer, the time is lost between them: network latency into the peer. Callers
//! whose client latency rose because the peer itself slowed are marked as symptoms.
//! Without metrics it falls back to client-to-server gaps in traces.

use super::common::*;
use super::spans::analyse_window;
use crate::agent::{Agent, AgentContext, AgentError, AgentOutput};
use async_trait::async_trait;
use compass_core::detect::{ShiftConfig, metric_shift};
use compass_core::stats::{self, Direction};
use compass_core::{
    Category, Confidence, FaultKind, Hypothesis, Incident, Observation, ObservationKind,
    QualityGrade, RootCause, Subject,
};
use std::collections::BTreeSet;

const NAME: &str = "network";
/// Share of the caller's added latency that must be outside the peer's server time.
const GAP_SHARE: f64 = 0.5;

#[derive(Debug, Default)]
pub struct NetworkAgent;

async fn observe_metrics(ctx: &AgentContext, log: &mut ObservationLog) -> Result<(), AgentError> {
    let src = metrics_source(ctx)?.name().to_string();
    let cat = &ctx.catalog;
    let svc = cat.service_label.as_str();
    let w = ctx.window;
    let (client_q, client) =
        mean_latency(ctx, &cat.client_duration, &[svc, &cat.peer_label]).await?;
    let (server_q, server) = mean_latency(ctx, &cat.server_duration, &[svc]).await?;
    let cfg = ShiftConfig::default().with_min_absolute(0.005);
    for (key, points) in &client {
        let (caller, peer) = (&key[0], &key[1]);
        let Some(shift) = metric_shift(points, &w, &cfg).filter(|s| s.direction() == Direction::Up)
        else {
            continue;
        };
        let client_delta = shift.delta();
        // The peer's own latency change over the same span (0 when unknown).
        let server_delta = server.get(&vec![peer.clone()]).map_or(0.0, |p| {
            let after = stats::values_in(
                p,
                compass_core::TimeRange::new(shift.onset(), w.incident.end),
            );
            let before = stats::values_in(p, w.baseline);
            match (stats::median(&after), stats::median(&before)) {
                (Some(a), Some(b)) => a - b,
                _ => 0.0,
            }
        });
        let gap = client_delta - server_delta.max(0.0);
        if gap >= GAP_SHARE * client_delta {
            let summary = format!(
                "{caller} -> {peer} calls {:.0} ms slower from {} while {peer} itself is {:+.0} ms: {:.0} ms lost between them",
                client_delta * 1000.0,
                hhmm(shift.onset()),
                server_delta * 1000.0,
                gap * 1000.0
            );
            let promql = format!("{client_q}  vs  {server_q}");
            let ev = metric_evidence(
                &src,
                &promql,
                w.whole(),
                points,
                shift.onset(),
                QualityGrade::Direct,
                summary,
            );
            log.push(
                ObservationKind::NetworkDelay,
                Subject::with_component(peer, format!("network from {caller}")),
                shift.onset(),
                w.incident.end,
                gap * 1000.0,
                shift.confidence * (gap / client_delta).min(1.0),
                ev,
            );
        } else {
            let summary = format!(
                "{caller} waits {:.0} ms longer on {peer} from {}, explained by {peer}'s own latency",
                client_delta * 1000.0,
                hhmm(shift.onset())
            );
            let ev = metric_evidence(
                &src,
                &client_q,
                w.whole(),
                points,
                shift.onset(),
                QualityGrade::Indirect,
                summary,
            );
            log.push(
                ObservationKind::LatencyShift,
                Subject::with_component(caller, format!("calls to {peer}")),
                shift.onset(),
                w.incident.end,
                shift.score.ratio,
                shift.confidence,
                ev,
            );
        }
    }
    Ok(())
}

#[async_trait]
impl Agent for NetworkAgent {
    fn name(&self) -> &'static str {
        NAME
    }
    fn expertise(&self) -> &'static [Category] {
        &[Category::Network]
    }
    async fn observe(
        &self,
        _incident: &Incident,
        ctx: &AgentContext,
    ) -> Result<AgentOutput, AgentError> {
        let mut log = ObservationLog::new(NAME);
        if ctx.sources.metrics.is_some() {
            observe_metrics(ctx, &mut log).await?;
            return Ok(AgentOutput {
                observations: log.observations,
                ..AgentOutput::default()
            });
        }
        // No metrics: client-to-server gaps in traces, when there are traces.
        let source = traces_source(ctx)
            .map_err(|_| AgentError::MissingSource("metrics"))?
            .name()
            .to_string();
        let a = analyse_window(ctx).await?;
        super::tracing::gap_observations(ctx, &a, &source, &mut log);
        let mut problems = a.problems;
        problems.push("no metrics source: used trace gaps only".into());
        Ok(AgentOutput {
            observations: log.observations,
            problems,
            ..AgentOutput::default()
        })
    }

    fn orient(&self, observations: &[Observation], _ctx: &AgentContext) -> Vec<Hypothesis> {
        let delays: Vec<&Observation> = observations
            .iter()
            .filter(|o| o.kind == ObservationKind::NetworkDelay)
            .collect();
        let peers: BTreeSet<&str> = delays.iter().map(|o| o.subject.service.as_str()).collect();
        let mut out = Vec::new();
        for peer in peers {
            let obs: Vec<&Observation> = delays
                .iter()
                .copied()
                .filter(|o| o.subject.service == peer)
                .collect();
            let callers = obs.len();
            let top = obs.iter().map(|o| o.confidence).fold(0.0, f64::max);
            // More callers seeing the same delay into the peer: more likely its network.
            let value = (0.4 + 0.4 * top + 0.05 * (callers.min(3) as f64 - 1.0)).min(0.9);
            let reasoning = obs
                .iter()
                .map(|o| o.evidence.summary.as_str())
                .collect::<Vec<_>>()
                .join("; ");
            out.push(Hypothesis::from_observations(
                NAME,
                RootCause {
                    service: peer.to_string(),
                    component: Some("network".into()),
                    fault_kind: FaultKind::NetworkLatency,
                },
                format!(
                    "calls into {peer} are delayed in the network ({callers} caller(s) affected)"
                ),
                &obs,
                Confidence { value, reasoning },
                vec![
                    format!("check the network path, sidecar and node of {peer}"),
                    format!("compare {peer}'s pods: one slow node or all"),
                ],
            ));
        }
        out
    }
}
