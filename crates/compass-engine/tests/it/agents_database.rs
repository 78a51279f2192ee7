//! The database agent on fakes: an exhausted pool with waiting requests and
//! connection-timeout lines is blamed on its owner; a busy but healthy pool is not.

use crate::agents_support as support;

use compass_core::{FaultKind, LogLevel, ObservationKind};
use compass_engine::agents::DatabaseAgent;
use compass_engine::fakes::{FakeLogs, FakeMetrics};
use compass_engine::{Agent, DataSources};
use std::sync::Arc;
use support::*;

fn sources() -> DataSources {
    let mut m = FakeMetrics::new("fake-metrics");
    for (svc, used) in [
        (
            "orders",
            Box::new(|t: f64| {
                if t >= 44.0 {
                    20.0
                } else {
                    3.0 + wiggle(t as i64)
                }
            }) as Box<dyn Fn(f64) -> f64>,
        ),
        ("users", Box::new(|t: f64| 10.0 + 2.0 * wiggle(t as i64))),
    ] {
        m.push(
            "db_client_connections_usage",
            &[("service", svc), ("pod", "p"), ("state", "used")],
            gauge(used),
        );
        m.push(
            "db_client_connections_max",
            &[("service", svc), ("pod", "p")],
            gauge(|_| 20.0),
        );
        let busy = svc == "orders";
        m.push(
            "db_client_connections_pending_requests",
            &[("service", svc), ("pod", "p")],
            gauge(move |t| {
                if busy && t >= 44.5 {
                    30.0 + 5.0 * wiggle(t as i64)
                } else {
                    0.0
                }
            }),
        );
    }
    let mut records = lines("orders", LogLevel::Info, 0.0, 55.0, 2, |i| {
        format!("GET /orders/{i} 200 {}ms", 5 + i % 7)
    });
    records.extend(lines("orders", LogLevel::Error, 44.5, 55.0, 5, |i| {
        format!("Connection is not available, request timed out after 30000ms (request {i})")
    }));
    records.extend(lines("users", LogLevel::Warn, 0.0, 55.0, 60, |_| {
        "slow query on table users".to_string()
    }));
    let logs =
        FakeLogs::new("fake-logs", records).with_problems(vec!["logs.jsonl:12: not json".into()]);
    DataSources {
        metrics: Some(Arc::new(m)),
        logs: Some(Arc::new(logs)),
        ..Default::default()
    }
}

#[tokio::test]
async fn blames_the_pool_owner() {
    let ctx = ctx(
        sources(),
        &[("a", "orders"), ("a", "users")],
        &["a", "orders", "users"],
    );
    let agent = DatabaseAgent;
    let out = agent.observe(&incident(), &ctx).await.unwrap();
    assert!(
        out.observations
            .iter()
            .all(|o| o.subject.service == "orders"),
        "{:#?}",
        out.observations
    );
    let components: Vec<&str> = out
        .observations
        .iter()
        .filter_map(|o| o.subject.component.as_deref())
        .collect();
    assert_eq!(components, vec!["db-pool", "db-pool-pending", "db-client"]);
    assert!(
        out.observations
            .iter()
            .all(|o| o.kind != ObservationKind::LogSpike
                || !matches!(o.evidence.sample, compass_core::Sample::Points { .. }))
    );
    assert!(
        out.problems.iter().any(|p| p.contains("logs.jsonl:12")),
        "{:?}",
        out.problems
    );
    let hyps = agent.orient(&out.observations, &ctx);
    assert_eq!(hyps.len(), 1);
    assert_eq!(
        (
            hyps[0].root_cause.service.as_str(),
            hyps[0].root_cause.fault_kind
        ),
        ("orders", FaultKind::DbPoolExhaustion)
    );
    assert!(hyps[0].confidence.value >= 0.8, "{:?}", hyps[0].confidence);
}

#[tokio::test]
async fn works_without_logs() {
    let mut s = sources();
    s.logs = None;
    let ctx = ctx(s, &[], &[]);
    let out = DatabaseAgent.observe(&incident(), &ctx).await.unwrap();
    assert_eq!(out.observations.len(), 2);
    let hyps = DatabaseAgent.orient(&out.observations, &ctx);
    assert!(hyps[0].confidence.value >= 0.7 && hyps[0].confidence.value < 0.85);
}
