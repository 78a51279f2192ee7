//! The application agent on fakes: a new exception in the deepest service is blamed;
//! callers that only log "call to X failed" are symptoms; a chatty logger that is as
//! chatty in the baseline is ignored; malformed lines surface as problems.

use crate::agents_support as support;

use compass_core::{FaultKind, LineOrigin, Locator, LogLevel, ObservationKind};
use compass_engine::agents::ApplicationAgent;
use compass_engine::fakes::FakeLogs;
use compass_engine::{Agent, AgentError, DataSources};
use std::sync::Arc;
use support::*;

fn records() -> Vec<compass_core::LogRecord> {
    let mut r = Vec::new();
    for svc in ["a", "b", "c", "chatty"] {
        r.extend(lines(svc, LogLevel::Info, 0.0, 55.0, 3, |i| {
            format!("GET /items/{i} 200 {}ms", 3 + i % 11)
        }));
    }
    // The fault: c throws a new exception from minute 45.
    r.extend(lines("c", LogLevel::Error, 45.0, 55.0, 4, |i| {
        format!("Unhandled exception in /pay: java.lang.IllegalStateException: order {} is in state EXPIRED", 1000 + i)
    }));
    // Propagation: b and a report failed calls.
    r.extend(lines("b", LogLevel::Error, 45.1, 55.0, 6, |i| {
        format!("call to c failed: 500 Internal Server Error (POST /pay, {i}ms)")
    }));
    r.extend(lines("a", LogLevel::Error, 45.2, 55.0, 8, |i| {
        format!("call to b failed: 500 Internal Server Error (GET /checkout, {i}ms)")
    }));
    // A chatty logger: bursts every 5 minutes, before and during the incident.
    for burst in (0..55).step_by(5) {
        r.extend(lines(
            "chatty",
            LogLevel::Debug,
            burst as f64,
            burst as f64 + 1.0,
            1,
            |i| format!("cache refresh: loaded {i} entries"),
        ));
    }
    for (n, rec) in r.iter_mut().enumerate() {
        rec.origin = Some(LineOrigin {
            path: "logs.jsonl".into(),
            line: n as u64 + 1,
        });
    }
    r
}

#[tokio::test]
async fn blames_the_deepest_service_with_its_own_errors() {
    let logs = FakeLogs::new("fake-logs", records())
        .with_problems(vec!["logs.jsonl:99: bad level".into()]);
    let sources = DataSources {
        logs: Some(Arc::new(logs)),
        ..Default::default()
    };
    let ctx = ctx(
        sources,
        &[("a", "b"), ("b", "c"), ("a", "chatty")],
        &["a", "b", "c", "chatty"],
    );
    let agent = ApplicationAgent;
    let out = agent.observe(&incident(), &ctx).await.unwrap();
    assert_eq!(out.problems, vec!["logs.jsonl:99: bad level".to_string()]);
    assert!(
        out.observations
            .iter()
            .all(|o| o.subject.service != "chatty"),
        "{:#?}",
        out.observations
    );
    let c_surge = out
        .observations
        .iter()
        .find(|o| o.subject.service == "c" && o.kind == ObservationKind::ErrorRateSurge)
        .expect("error surge in c");
    assert!(
        (c_surge.span.start - (T0 + 45 * MIN)).abs() <= MIN,
        "onset {}",
        (c_surge.span.start - T0) / 1000
    );
    assert!(
        matches!(c_surge.evidence.locator, Locator::File { .. }),
        "{:?}",
        c_surge.evidence.locator
    );
    assert!(
        c_surge.evidence.summary.contains("IllegalStateException"),
        "{}",
        c_surge.evidence.summary
    );
    assert!(
        out.observations
            .iter()
            .any(|o| o.subject.service == "c" && o.kind == ObservationKind::NewLogTemplate)
    );
    let hyps = agent.orient(&out.observations, &ctx);
    let conf = |s: &str| {
        hyps.iter()
            .find(|h| h.root_cause.service == s)
            .map(|h| h.confidence.value)
            .unwrap_or(0.0)
    };
    assert!(
        hyps.iter()
            .all(|h| h.root_cause.fault_kind == FaultKind::ErrorInjection)
    );
    assert!(conf("c") >= 0.7, "{hyps:#?}");
    assert!(
        conf("b") <= 0.2 && conf("a") <= 0.2,
        "b {} a {}",
        conf("b"),
        conf("a")
    );
}

#[tokio::test]
async fn without_a_call_graph_naming_a_callee_still_marks_a_symptom() {
    let logs = FakeLogs::new("fake-logs", records());
    let sources = DataSources {
        logs: Some(Arc::new(logs)),
        ..Default::default()
    };
    let ctx = ctx(sources, &[], &["a", "b", "c", "chatty"]);
    let out = ApplicationAgent.observe(&incident(), &ctx).await.unwrap();
    let hyps = ApplicationAgent.orient(&out.observations, &ctx);
    let conf = |s: &str| {
        hyps.iter()
            .find(|h| h.root_cause.service == s)
            .map(|h| h.confidence.value)
            .unwrap_or(0.0)
    };
    assert!(conf("c") > conf("b") && conf("c") > conf("a"), "{hyps:#?}");
}

#[tokio::test]
async fn missing_logs_source() {
    let ctx = ctx(DataSources::default(), &[], &[]);
    assert_eq!(
        ApplicationAgent
            .observe(&incident(), &ctx)
            .await
            .unwrap_err(),
        AgentError::MissingSource("logs")
    );
}

#[tokio::test]
async fn pool_timeouts_and_out_of_memory_name_their_fault_kind() {
    let mut r = Vec::new();
    for svc in ["db-user", "leaky"] {
        r.extend(lines(svc, LogLevel::Info, 0.0, 55.0, 3, |i| {
            format!("GET /items/{i} 200 {}ms", 3 + i % 11)
        }));
    }
    r.extend(lines("db-user", LogLevel::Error, 45.0, 55.0, 5, |i| {
        format!("HikariPool-1 - Connection is not available, request timed out after 30000ms (request {i})")
    }));
    r.extend(lines("leaky", LogLevel::Error, 46.0, 55.0, 10, |i| {
        format!("java.lang.OutOfMemoryError: Java heap space (worker {i})")
    }));
    let sources = DataSources {
        logs: Some(Arc::new(FakeLogs::new("fake-logs", r))),
        ..Default::default()
    };
    let ctx = ctx(sources, &[], &["db-user", "leaky"]);
    let out = ApplicationAgent.observe(&incident(), &ctx).await.unwrap();
    let hyps = ApplicationAgent.orient(&out.observations, &ctx);
    let kind = |s: &str| {
        hyps.iter()
            .find(|h| h.root_cause.service == s)
            .map(|h| h.root_cause.fault_kind)
    };
    assert_eq!(
        kind("db-user"),
        Some(FaultKind::DbPoolExhaustion),
        "{hyps:#?}"
    );
    assert_eq!(kind("leaky"), Some(FaultKind::MemoryLeak));
}
