//! The change agent on fakes: a deploy followed at once by errors on its service is a
//! bad deploy; a deploy long before, on a service that stays healthy, is nothing.

use crate::agents_support as support;

use compass_core::{ChangeEvent, ChangeKind, FaultKind, ObservationKind};
use compass_engine::agents::ChangeAgent;
use compass_engine::fakes::{FakeChanges, FakeMetrics};
use compass_engine::{Agent, AgentError, DataSources};
use std::sync::Arc;
use support::*;

fn deploy(minute: i64, service: &str) -> ChangeEvent {
    ChangeEvent {
        ts: T0 + minute * MIN,
        kind: ChangeKind::Deploy,
        service: service.into(),
        description: format!("rollout {service} v1.2.3 -> v1.3.0"),
        version: Some("v1.3.0".into()),
    }
}

fn sources(with_metrics: bool) -> DataSources {
    let mut m = FakeMetrics::new("fake-metrics");
    for svc in ["b", "d"] {
        let broken = svc == "b";
        m.push(
            "http_server_requests_total",
            &[("service", svc), ("code", "2xx")],
            counter(|_| 20.0),
        );
        m.push(
            "http_server_requests_total",
            &[("service", svc), ("code", "5xx")],
            counter(move |t| if broken && t >= 44.5 { 6.0 } else { 0.02 }),
        );
        m.push(
            "http_server_request_duration_seconds_count",
            &[("service", svc)],
            counter(|_| 20.0),
        );
        m.push(
            "http_server_request_duration_seconds_sum",
            &[("service", svc)],
            counter(|t| 20.0 * (0.03 + 0.001 * wiggle(t as i64))),
        );
    }
    let changes = FakeChanges::new("fake-changes", vec![deploy(25, "d"), deploy(44, "b")]);
    DataSources {
        metrics: with_metrics.then(|| Arc::new(m) as _),
        changes: Some(Arc::new(changes)),
        ..Default::default()
    }
}

#[tokio::test]
async fn deploy_right_before_errors_is_blamed_decoy_is_not() {
    let ctx = ctx(sources(true), &[("a", "b"), ("a", "d")], &["a", "b", "d"]);
    let out = ChangeAgent.observe(&incident(), &ctx).await.unwrap();
    assert!(
        out.observations.iter().all(|o| o.subject.service == "b"),
        "{:#?}",
        out.observations
    );
    assert_eq!(out.observations[0].kind, ObservationKind::DeployChange);
    assert_eq!(out.observations[0].span.start, T0 + 44 * MIN);
    assert!(
        out.observations
            .iter()
            .any(|o| o.kind == ObservationKind::ErrorRateSurge)
    );
    let hyps = ChangeAgent.orient(&out.observations, &ctx);
    assert_eq!(hyps.len(), 1);
    assert_eq!(
        (
            hyps[0].root_cause.service.as_str(),
            hyps[0].root_cause.fault_kind
        ),
        ("b", FaultKind::BadDeploy)
    );
    assert!(hyps[0].confidence.value >= 0.7, "{:?}", hyps[0].confidence);
    assert!(
        hyps[0].confidence.reasoning.contains("rollout b"),
        "{}",
        hyps[0].confidence.reasoning
    );
}

#[tokio::test]
async fn without_metrics_only_timing_counts() {
    let ctx = ctx(sources(false), &[], &[]);
    let out = ChangeAgent.observe(&incident(), &ctx).await.unwrap();
    assert_eq!(
        out.observations.len(),
        1,
        "only the change inside the incident window"
    );
    assert!(!out.problems.is_empty());
    let hyps = ChangeAgent.orient(&out.observations, &ctx);
    assert!(hyps[0].confidence.value <= 0.3);
}

#[tokio::test]
async fn missing_changes_source() {
    let ctx = ctx(DataSources::default(), &[], &[]);
    assert_eq!(
        ChangeAgent.observe(&incident(), &ctx).await.unwrap_err(),
        AgentError::MissingSource("changes")
    );
}
