//! The tracing agent on fakes: in a chain a -> b -> c, errors originating in c and c's
//! own time growing are attributed to c, not to a and b, which only wait and pass
//! errors on; a growing gap between a client span and its server span blames the
//! network into the callee.

use crate::agents_support as support;

use compass_core::{FaultKind, ObservationKind, Span, SpanKind};
use compass_engine::agents::TracingAgent;
use compass_engine::fakes::FakeTraces;
use compass_engine::{Agent, AgentError, DataSources};
use std::sync::Arc;
use support::*;

/// One trace a -> b -> c (and a -> d) starting at `t`: c slow and failing when `fault`,
/// the network into d slow when `delay`.
fn trace(n: i64, t: i64, fault: bool, delay: bool) -> Vec<Span> {
    let id = format!("t{n}");
    let s =
        |sid: &str,
         parent: Option<&str>,
         svc: &str,
         kind: SpanKind,
         start: i64,
         dur: f64,
         err: bool,
         peer: Option<&str>| { span(&id, sid, parent, svc, kind, start, dur, err, peer) };
    let c_work = if fault { 80.0 } else { 10.0 } + (n % 3) as f64;
    let net = if delay { 60.0 } else { 1.0 };
    let c_total = c_work;
    let b_total = c_total + 2.0 + 5.0;
    let a_total = b_total + 2.0 + 5.0 + 10.0 + net;
    vec![
        s("1", None, "a", SpanKind::Server, t, a_total, fault, None),
        s(
            "2",
            Some("1"),
            "a",
            SpanKind::Client,
            t + 1,
            b_total + 2.0,
            fault,
            Some("b"),
        ),
        s(
            "3",
            Some("2"),
            "b",
            SpanKind::Server,
            t + 2,
            b_total,
            fault,
            None,
        ),
        s(
            "4",
            Some("3"),
            "b",
            SpanKind::Client,
            t + 3,
            c_total + 2.0,
            fault,
            Some("c"),
        ),
        s(
            "5",
            Some("4"),
            "c",
            SpanKind::Server,
            t + 4,
            c_total,
            fault,
            None,
        ),
        s(
            "6",
            Some("1"),
            "a",
            SpanKind::Client,
            t + (b_total as i64) + 5,
            10.0 + net,
            false,
            Some("d"),
        ),
        s(
            "7",
            Some("6"),
            "d",
            SpanKind::Server,
            t + (b_total as i64) + 5 + (net as i64) / 2,
            9.0,
            false,
            None,
        ),
    ]
}

fn spans(fault_from: f64, delay_from: f64) -> Vec<Span> {
    (0..55 * 12)
        .flat_map(|i| {
            let t = T0 + i * 5_000;
            let minute = (t - T0) as f64 / MIN as f64;
            // Errors in two of three requests once the fault is on.
            trace(
                i,
                t,
                minute >= fault_from && i % 3 != 0,
                minute >= delay_from,
            )
        })
        .collect()
}

#[tokio::test]
async fn attributes_errors_and_latency_to_the_deepest_service() {
    let traces = FakeTraces::new("fake-traces", spans(45.0, 99.0));
    let sources = DataSources {
        traces: Some(Arc::new(traces)),
        ..Default::default()
    };
    let ctx = ctx(
        sources,
        &[("a", "b"), ("b", "c"), ("a", "d")],
        &["a", "b", "c", "d"],
    );
    let out = TracingAgent.observe(&incident(), &ctx).await.unwrap();
    let has = |svc: &str, kind: ObservationKind, comp: &str| {
        out.observations.iter().any(|o| {
            o.subject.service == svc
                && o.kind == kind
                && o.subject.component.as_deref() == Some(comp)
        })
    };
    assert!(
        has("c", ObservationKind::TraceErrorPropagation, "error-origin"),
        "{:#?}",
        out.observations
    );
    assert!(has(
        "c",
        ObservationKind::TraceLatencyAttribution,
        "self-time"
    ));
    assert!(has(
        "b",
        ObservationKind::TraceErrorPropagation,
        "propagated"
    ));
    assert!(has("a", ObservationKind::LatencyShift, "propagated"));
    assert!(!has(
        "a",
        ObservationKind::TraceErrorPropagation,
        "error-origin"
    ));
    assert!(!has(
        "b",
        ObservationKind::TraceLatencyAttribution,
        "self-time"
    ));
    let hyps = TracingAgent.orient(&out.observations, &ctx);
    let top = hyps
        .iter()
        .max_by(|a, b| a.confidence.value.total_cmp(&b.confidence.value))
        .unwrap();
    assert_eq!(
        (top.root_cause.service.as_str(), top.root_cause.fault_kind),
        ("c", FaultKind::ErrorInjection)
    );
    assert!(top.confidence.value >= 0.7, "{:?}", top.confidence);
    assert!(
        hyps.iter()
            .filter(|h| h.root_cause.service != "c")
            .all(|h| h.confidence.value < 0.3),
        "{hyps:#?}"
    );
}

#[tokio::test]
async fn a_growing_client_server_gap_blames_the_network_into_the_callee() {
    let traces = FakeTraces::new("fake-traces", spans(99.0, 45.0));
    let sources = DataSources {
        traces: Some(Arc::new(traces)),
        ..Default::default()
    };
    let ctx = ctx(
        sources,
        &[("a", "b"), ("b", "c"), ("a", "d")],
        &["a", "b", "c", "d"],
    );
    let out = TracingAgent.observe(&incident(), &ctx).await.unwrap();
    let hyps = TracingAgent.orient(&out.observations, &ctx);
    assert_eq!(hyps.len(), 1, "{hyps:#?}");
    assert_eq!(
        (
            hyps[0].root_cause.service.as_str(),
            hyps[0].root_cause.fault_kind
        ),
        ("d", FaultKind::NetworkLatency)
    );
    assert!(hyps[0].confidence.value >= 0.6);
}

#[tokio::test]
async fn missing_traces_source() {
    let ctx = ctx(DataSources::default(), &[], &[]);
    assert_eq!(
        TracingAgent.observe(&incident(), &ctx).await.unwrap_err(),
        AgentError::MissingSource("traces")
    );
}
