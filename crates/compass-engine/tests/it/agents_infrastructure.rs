//! The infrastructure agent on fakes: a CPU fault and a leak are found; a batch job
//! that saturates its CPU in the baseline too is not blamed; no metrics is an error.

use crate::agents_support as support;

use compass_core::{FaultKind, ObservationKind};
use compass_engine::agents::InfrastructureAgent;
use compass_engine::fakes::FakeMetrics;
use compass_engine::{Agent, AgentError, DataSources};
use std::sync::Arc;
use support::*;

const MIB: f64 = 1_048_576.0;

fn metrics() -> FakeMetrics {
    let cpu = "container_cpu_usage_seconds_total";
    let limits = "kube_pod_container_resource_limits";
    let mut m = FakeMetrics::new("fake-metrics");
    for (svc, usage) in [
        (
            "b",
            Box::new(|t: f64| {
                if t >= 45.0 {
                    0.97
                } else {
                    0.3 + 0.02 * wiggle(t as i64)
                }
            }) as Box<dyn Fn(f64) -> f64>,
        ),
        // A batch job pinning its CPU for 3 minutes out of every 10, all the time.
        (
            "batch",
            Box::new(|t: f64| if t.rem_euclid(10.0) < 3.0 { 0.96 } else { 0.2 }),
        ),
        ("c", Box::new(|_| 0.2)),
    ] {
        let pod = format!("{svc}-0");
        m.push(cpu, &[("service", svc), ("pod", &pod)], counter(usage));
        m.push(
            limits,
            &[("service", svc), ("pod", &pod), ("resource", "cpu")],
            gauge(|_| 1.0),
        );
        m.push(
            limits,
            &[("service", svc), ("pod", &pod), ("resource", "memory")],
            gauge(|_| 600.0 * MIB),
        );
        let leak = svc == "c";
        m.push(
            "container_memory_working_set_bytes",
            &[("service", svc), ("pod", &pod)],
            gauge(move |t| {
                if leak && t >= 42.0 {
                    (300.0 + 20.0 * (t - 42.0)) * MIB
                } else {
                    (300.0 + wiggle(t as i64)) * MIB
                }
            }),
        );
        m.push(
            "kube_pod_container_status_restarts_total",
            &[("service", svc), ("pod", &pod)],
            gauge(move |t| if leak && t >= 54.0 { 1.0 } else { 0.0 }),
        );
        let slow = svc == "b";
        m.push(
            "http_server_request_duration_seconds_count",
            &[("service", svc), ("pod", &pod)],
            counter(|_| 10.0),
        );
        m.push(
            "http_server_request_duration_seconds_sum",
            &[("service", svc), ("pod", &pod)],
            counter(move |t| {
                if slow && t >= 45.5 {
                    3.0
                } else {
                    0.5 + 0.01 * wiggle(t as i64)
                }
            }),
        );
    }
    m
}

#[tokio::test]
async fn finds_cpu_saturation_and_leak_but_not_the_batch_job() {
    let sources = DataSources {
        metrics: Some(Arc::new(metrics())),
        ..Default::default()
    };
    let ctx = ctx(
        sources,
        &[("a", "b"), ("a", "c"), ("batch", "c")],
        &["a", "b", "batch", "c"],
    );
    let agent = InfrastructureAgent;
    let out = agent.observe(&incident(), &ctx).await.unwrap();
    assert!(out.problems.is_empty(), "{:?}", out.problems);
    assert!(
        out.observations
            .iter()
            .all(|o| o.subject.service != "batch"),
        "{:#?}",
        out.observations
    );
    let kinds: Vec<(String, ObservationKind)> = out
        .observations
        .iter()
        .map(|o| (o.subject.service.clone(), o.kind))
        .collect();
    for want in [
        ("b", ObservationKind::ResourceSaturation),
        ("b", ObservationKind::LatencyShift),
        ("c", ObservationKind::MemoryGrowth),
        ("c", ObservationKind::PodRestarts),
    ] {
        assert!(
            kinds.contains(&(want.0.to_string(), want.1)),
            "missing {want:?} in {kinds:?}"
        );
    }
    let cpu = out
        .observations
        .iter()
        .find(|o| o.kind == ObservationKind::ResourceSaturation)
        .unwrap();
    assert!(
        (cpu.span.start - (T0 + 45 * MIN)).abs() <= 2 * STEP,
        "onset {}",
        (cpu.span.start - T0) / 1000
    );
    assert!(
        cpu.evidence.summary.starts_with("CPU at 9"),
        "{}",
        cpu.evidence.summary
    );
    let hyps = agent.orient(&out.observations, &ctx);
    let find = |svc: &str, kind: FaultKind| {
        hyps.iter()
            .find(|h| h.root_cause.service == svc && h.root_cause.fault_kind == kind)
    };
    let b = find("b", FaultKind::CpuSaturation).expect("cpu hypothesis on b");
    assert!(b.confidence.value >= 0.6, "{:?}", b.confidence);
    assert!(
        b.confidence.reasoning.contains("latency"),
        "{}",
        b.confidence.reasoning
    );
    let c = find("c", FaultKind::MemoryLeak).expect("leak hypothesis on c");
    assert!(c.confidence.value >= 0.5, "{:?}", c.confidence);
    assert_eq!(hyps.len(), 2, "{hyps:#?}");
}

#[tokio::test]
async fn missing_metrics_is_reported() {
    let ctx = ctx(DataSources::default(), &[], &[]);
    let err = InfrastructureAgent
        .observe(&incident(), &ctx)
        .await
        .unwrap_err();
    assert_eq!(err, AgentError::MissingSource("metrics"));
}
