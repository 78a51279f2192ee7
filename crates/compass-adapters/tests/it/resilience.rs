//! Resilience against real HTTP failures: a backend that hangs, fails with 5xx,
//! returns garbage or closes the connection. Timeouts fire, retryable failures are
//! retried with backoff, the circuit breaker opens after a failure so a dead backend
//! costs one timeout per cool-down, half-opens for one trial call, closes when the
//! backend is back, and a whole investigation still completes, degraded, with the
//! reason in the agents' records.

use compass_adapters::http::{HttpClient, HttpConfig, RetryPolicy};
use compass_adapters::prometheus::{PrometheusConfig, PrometheusSource};
use compass_core::{
    Aggregation, Incident, IncidentOrigin, InvestigationStatus, MetricFunc, MetricQuery, Severity,
    TimeRange,
};
use compass_engine::breaker::{BreakerConfig, with_breakers};
use compass_engine::{Coordinator, CoordinatorConfig, DataSources, MetricsSource, SourceError};
use std::io::Read;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn prometheus(url: &str, timeout_ms: u64) -> Arc<dyn MetricsSource> {
    let mut http = HttpConfig::new(url);
    http.timeout = Duration::from_millis(timeout_ms);
    http.retry = RetryPolicy {
        max_retries: 2,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(10),
    };
    Arc::new(PrometheusSource::new(
        HttpClient::new("prom", &http).unwrap(),
        PrometheusConfig::default(),
    ))
}

fn breakers(source: Arc<dyn MetricsSource>, cool_down_ms: u64) -> Arc<dyn MetricsSource> {
    let sources = DataSources {
        metrics: Some(source),
        ..Default::default()
    };
    with_breakers(
        &sources,
        BreakerConfig {
            failure_threshold: 1,
            cool_down: Duration::from_millis(cool_down_ms),
            call_timeout: Duration::from_secs(5),
        },
    )
    .metrics
    .unwrap()
}

fn up() -> MetricQuery {
    MetricQuery {
        metric: "up".into(),
        matchers: vec![],
        func: MetricFunc::Gauge,
        aggregation: Aggregation::Sum,
        by: vec!["service".into()],
    }
}

const RANGE: TimeRange = TimeRange {
    start: 1_000_000,
    end: 1_600_000,
};

async fn query(source: &Arc<dyn MetricsSource>) -> Result<usize, SourceError> {
    source
        .query_range(&up(), RANGE, 30_000)
        .await
        .map(|s| s.len())
}

fn empty_matrix() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(serde_json::json!({
        "status": "success", "data": {"resultType": "matrix", "result": []}
    }))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hanging_backend_costs_one_timeout_then_the_breaker_half_opens_and_closes() {
    let server = MockServer::start().await;
    Mock::given(path("/api/v1/query_range"))
        .respond_with(empty_matrix().set_delay(Duration::from_secs(10)))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    let guarded = breakers(prometheus(&server.uri(), 200), 400);
    let first = query(&guarded).await.unwrap_err();
    assert!(matches!(first, SourceError::Timeout { .. }), "{first:?}");
    // Open: further calls fail at once without reaching the backend.
    for _ in 0..5 {
        let e = query(&guarded).await.unwrap_err();
        assert!(e.to_string().contains("circuit open"), "{e}");
    }
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    // After the cool-down one trial call goes through; the backend is back.
    Mock::given(path("/api/v1/query_range"))
        .respond_with(empty_matrix())
        .mount(&server)
        .await;
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(query(&guarded).await.unwrap(), 0);
    assert_eq!(query(&guarded).await.unwrap(), 0);
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_trial_call_reopens_the_breaker() {
    let server = MockServer::start().await;
    Mock::given(path("/api/v1/query_range"))
        .respond_with(ResponseTemplate::new(500).set_body_string("internal error"))
        .mount(&server)
        .await;
    let guarded = breakers(prometheus(&server.uri(), 500), 300);
    let e = query(&guarded).await.unwrap_err();
    assert!(e.to_string().contains("HTTP 500"), "{e}");
    // 500 is retried: the first attempt and two retries.
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
    tokio::time::sleep(Duration::from_millis(350)).await;
    let trial = query(&guarded).await.unwrap_err();
    assert!(trial.to_string().contains("HTTP 500"), "{trial}");
    let reopened = query(&guarded).await.unwrap_err();
    assert!(reopened.to_string().contains("circuit open"), "{reopened}");
    assert_eq!(server.received_requests().await.unwrap().len(), 6);
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_is_bad_data_and_does_not_open_the_breaker() {
    let server = MockServer::start().await;
    Mock::given(path("/api/v1/query_range"))
        .respond_with(ResponseTemplate::new(200).set_body_string("\u{0}\u{1}garbage"))
        .mount(&server)
        .await;
    let guarded = breakers(prometheus(&server.uri(), 500), 10_000);
    for _ in 0..3 {
        let e = query(&guarded).await.unwrap_err();
        assert!(matches!(e, SourceError::BadData { .. }), "{e:?}");
    }
    // Bad data is not a backend failure: every call still reaches the backend.
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_closed_without_an_answer_is_retried_then_unavailable() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            count.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf);
            drop(stream);
        }
    });
    let source = prometheus(&format!("http://127.0.0.1:{port}"), 1_000);
    let e = query(&source).await.unwrap_err();
    assert!(matches!(e, SourceError::Unavailable { .. }), "{e:?}");
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        3,
        "one attempt and two retries"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_investigation_against_a_hanging_backend_completes_degraded_with_the_reason() {
    let server = MockServer::start().await;
    Mock::given(path("/api/v1/query_range"))
        .respond_with(empty_matrix().set_delay(Duration::from_secs(30)))
        .mount(&server)
        .await;
    Mock::given(path("/api/v1/label/service/values"))
        .respond_with(empty_matrix().set_delay(Duration::from_secs(30)))
        .mount(&server)
        .await;
    let sources = DataSources {
        metrics: Some(prometheus(&server.uri(), 300)),
        ..Default::default()
    };
    let config = CoordinatorConfig {
        agent_timeout: Duration::from_secs(10),
        deadline: Duration::from_secs(20),
        breaker: BreakerConfig {
            failure_threshold: 1,
            cool_down: Duration::from_secs(60),
            call_timeout: Duration::from_secs(2),
        },
        ..Default::default()
    };
    let incident = Incident {
        id: "hang".into(),
        title: "latency on frontend".into(),
        severity: Severity::Critical,
        start: 1_793_610_000_000,
        affected_services: vec!["frontend".into()],
        labels: Default::default(),
        origin: IncidentOrigin::Cli,
    };
    let coordinator = Coordinator::new(compass_engine::agents::all(), config);
    let inv = coordinator.investigate(&incident, &sources, None).await;
    assert_eq!(inv.status, InvestigationStatus::Degraded);
    let metric_agents: Vec<_> = inv
        .agents
        .iter()
        .filter(|a| a.error.as_deref().is_some_and(|e| e.contains("prom")))
        .collect();
    assert!(!metric_agents.is_empty(), "{:#?}", inv.agents);
    for a in &metric_agents {
        let e = a.error.as_deref().unwrap();
        assert!(
            e.contains("timed out") || e.contains("circuit open"),
            "{}: {e}",
            a.agent
        );
    }
    // One timeout opened the breaker: the backend saw one request per concurrent
    // first call, not one per query of every agent.
    let hits = server.received_requests().await.unwrap().len();
    assert!(
        hits <= compass_engine::agents::all().len() + 1,
        "{hits} requests"
    );
}
