//! The network agent on fakes: callers waiting longer on a peer whose own latency is
//! flat point at the network into it; a peer that slowed down itself is not blamed,
//! its callers are marked as symptoms.

use crate::agents_support as support;

use compass_core::{FaultKind, ObservationKind};
use compass_engine::agents::NetworkAgent;
use compass_engine::fakes::FakeMetrics;
use compass_engine::{Agent, DataSources};
use std::sync::Arc;
use support::*;

/// Latency `secs(t)` at 10 requests/s as `_sum`/`_count` counters.
fn latency(m: &mut FakeMetrics, family: &str, labels: &[(&str, &str)], secs: impl Fn(f64) -> f64) {
    m.push(&format!("{family}_count"), labels, counter(|_| 10.0));
    m.push(
        &format!("{family}_sum"),
        labels,
        counter(move |t| 10.0 * secs(t)),
    );
}

#[tokio::test]
async fn delay_into_a_peer_versus_a_slow_peer() {
    let client = "http_client_request_duration_seconds";
    let server = "http_server_request_duration_seconds";
    let mut m = FakeMetrics::new("fake-metrics");
    let base = |t: f64| 0.02 + 0.001 * wiggle(t as i64);
    // a -> b: +150 ms on the wire from minute 45, b itself unchanged.
    latency(
        &mut m,
        client,
        &[("service", "a"), ("peer_service", "b")],
        move |t| base(t) + if t >= 45.0 { 0.15 } else { 0.0 },
    );
    latency(&mut m, server, &[("service", "b")], move |t| {
        base(t) - 0.005
    });
    // a -> c: c itself slows by 200 ms.
    latency(
        &mut m,
        client,
        &[("service", "a"), ("peer_service", "c")],
        move |t| base(t) + if t >= 45.0 { 0.2 } else { 0.0 },
    );
    latency(&mut m, server, &[("service", "c")], move |t| {
        base(t) - 0.005 + if t >= 45.0 { 0.2 } else { 0.0 }
    });
    let sources = DataSources {
        metrics: Some(Arc::new(m)),
        ..Default::default()
    };
    let ctx = ctx(sources, &[("a", "b"), ("a", "c")], &["a", "b", "c"]);
    let out = NetworkAgent.observe(&incident(), &ctx).await.unwrap();
    let got: Vec<(&str, ObservationKind)> = out
        .observations
        .iter()
        .map(|o| (o.subject.service.as_str(), o.kind))
        .collect();
    assert_eq!(
        got,
        vec![
            ("b", ObservationKind::NetworkDelay),
            ("a", ObservationKind::LatencyShift)
        ]
    );
    let delay = &out.observations[0];
    assert!(
        (delay.magnitude - 150.0).abs() < 20.0,
        "{}",
        delay.evidence.summary
    );
    assert!(
        matches!(&delay.evidence.locator, compass_core::Locator::Query { query, .. } if query.contains("peer_service"))
    );
    let hyps = NetworkAgent.orient(&out.observations, &ctx);
    assert_eq!(hyps.len(), 1);
    assert_eq!(
        (
            hyps[0].root_cause.service.as_str(),
            hyps[0].root_cause.fault_kind
        ),
        ("b", FaultKind::NetworkLatency)
    );
    assert!(hyps[0].confidence.value >= 0.6, "{:?}", hyps[0].confidence);
}

#[tokio::test]
async fn no_sources_is_missing_metrics() {
    let ctx = ctx(DataSources::default(), &[], &[]);
    assert!(NetworkAgent.observe(&incident(), &ctx).await.is_err());
}
