//! The Prometheus adapter: against a real Prometheus serving a simulated incident
//! (backfilled with promtool) it answers the agents' queries as the bundle's own
//! evaluator does; against a scripted HTTP server it turns every failure into a
//! precise error (rejected PromQL, bad credentials, series explosion, garbage,
//! a hanging or flapping backend).

use compass_adapters::BundleSource;
use compass_adapters::http::{Auth, HttpClient, HttpConfig, RetryPolicy};
use compass_adapters::prometheus::{PrometheusConfig, PrometheusSource};
use compass_core::{Aggregation, Matcher, MetricFunc, MetricQuery, TimeRange};
use compass_engine::ports::{MetricsSource, SourceError};
use compass_testkit::Prometheus;
use std::time::Duration;
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn source(url: &str, config: PrometheusConfig) -> PrometheusSource {
    let mut http = HttpConfig::new(url);
    http.timeout = Duration::from_millis(500);
    http.retry = RetryPolicy {
        max_retries: 2,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(20),
    };
    PrometheusSource::new(HttpClient::new("prom", &http).unwrap(), config)
}

fn q(metric: &str, func: MetricFunc, matchers: Vec<Matcher>) -> MetricQuery {
    MetricQuery {
        metric: metric.into(),
        matchers,
        func,
        aggregation: Aggregation::Sum,
        by: vec!["service".into()],
    }
}

const RANGE: TimeRange = TimeRange {
    start: 1_000_000,
    end: 1_600_000,
};

#[tokio::test(flavor = "multi_thread")]
async fn real_prometheus_answers_like_the_bundle_evaluator() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = compass_sim::SimConfig {
        scenario: "cpu-saturation".into(),
        seed: 3,
        duration_s: 1800,
        log_rate: 5.0,
        trace_rate: 0.2,
        ..Default::default()
    };
    let bundle_dir = tmp.path().join("b");
    compass_sim::simulate(&cfg, &bundle_dir, &mut |_| {}).unwrap();
    let server = Prometheus::start_with_openmetrics(&bundle_dir.join("metrics.om"))
        .unwrap_or_else(|e| panic!("{e}"));
    let live = source(&server.url, PrometheusConfig::default());
    let bundle = std::sync::Arc::new(BundleSource::open(&bundle_dir).unwrap());
    let offline = bundle.data_sources().metrics.unwrap();
    // Evaluation times 1 s off the 15 s sample grid: Prometheus 2 (Debian's) closes
    // range windows at both ends and Prometheus 3 (which the bundle evaluator follows)
    // does not, so a window starting on a sample would differ by that one sample.
    let range = TimeRange {
        start: cfg.start_ms + 10 * 60_000 + 1_000,
        end: cfg.start_ms + 25 * 60_000,
    };
    let step = 30_000;
    let queries = [
        q(
            "http_server_requests_total",
            MetricFunc::Rate { window_s: 120 },
            vec![Matcher::re("code", "5xx")],
        ),
        q(
            "http_server_requests_total",
            MetricFunc::Rate { window_s: 120 },
            vec![],
        ),
        q(
            "http_server_request_duration_seconds",
            MetricFunc::HistogramQuantile {
                q: 0.95,
                window_s: 120,
            },
            vec![],
        ),
        q(
            "container_cpu_usage_seconds_total",
            MetricFunc::Rate { window_s: 120 },
            vec![],
        ),
        q(
            "container_memory_working_set_bytes",
            MetricFunc::Gauge,
            vec![],
        ),
        q(
            "kube_pod_container_resource_limits",
            MetricFunc::Gauge,
            vec![Matcher::eq("resource", "cpu")],
        ),
    ];
    for query in &queries {
        let a = live.query_range(query, range, step).await.unwrap();
        let b = offline.query_range(query, range, step).await.unwrap();
        assert!(
            !a.is_empty(),
            "{}: no series from Prometheus",
            query.to_promql()
        );
        assert_eq!(
            a.iter().map(|s| &s.labels).collect::<Vec<_>>(),
            b.iter().map(|s| &s.labels).collect::<Vec<_>>(),
            "{}",
            query.to_promql()
        );
        for (sa, sb) in a.iter().zip(&b) {
            let what = format!("{} {:?}", query.to_promql(), sa.labels);
            assert_eq!(sa.points.len(), sb.points.len(), "{what}");
            for ((ta, va), (tb, vb)) in sa.points.iter().zip(&sb.points) {
                assert_eq!(ta, tb, "{what}");
                let tol = 1e-9 * va.abs().max(vb.abs()).max(1.0);
                assert!(
                    (va - vb).abs() <= tol,
                    "{what} at {ta}: prometheus {va}, bundle {vb}"
                );
            }
        }
    }
    let services = live.label_values("service", range).await.unwrap();
    assert_eq!(
        services,
        offline.label_values("service", range).await.unwrap()
    );
    let version = live.ping().await.unwrap();
    assert!(
        version.starts_with("Prometheus API, version 2."),
        "{version}"
    );
    let (series, total) = live
        .series(
            "{__name__=\"container_memory_working_set_bytes\"}",
            range,
            3,
        )
        .await
        .unwrap();
    assert_eq!(series.len(), 3);
    assert!(total > 3 && series.iter().all(|s| s.contains_key("service")));
}

fn matrix(n: usize) -> serde_json::Value {
    let result: Vec<_> = (0..n)
        .map(|i| {
            serde_json::json!({
                "metric": {"__name__": "up", "service": format!("s{i}")},
                "values": [[1000.0, "1"], [1030.0, "NaN"], [1060.0, "2.5"]]
            })
        })
        .collect();
    serde_json::json!({"status": "success", "data": {"resultType": "matrix", "result": result}})
}

#[tokio::test]
async fn a_matrix_becomes_series_without_name_or_nan_points() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/query_range"))
        .and(body_string_contains("namespace%3D%22shop%22"))
        .respond_with(ResponseTemplate::new(200).set_body_json(matrix(2)))
        .expect(1)
        .mount(&server)
        .await;
    let p = source(
        &server.uri(),
        PrometheusConfig {
            max_series: 10,
            scope: vec![Matcher::eq("namespace", "shop")],
        },
    );
    let series = p
        .query_range(&q("up", MetricFunc::Gauge, vec![]), RANGE, 30_000)
        .await
        .unwrap();
    assert_eq!(series.len(), 2);
    assert_eq!(
        series[0].labels.get("service").map(String::as_str),
        Some("s0")
    );
    assert!(!series[0].labels.contains_key("__name__"));
    assert_eq!(series[0].points, vec![(1_000_000, 1.0), (1_060_000, 2.5)]);
}

#[tokio::test]
async fn invalid_promql_is_rejected_with_prometheus_message_and_the_query() {
    let server = MockServer::start().await;
    Mock::given(path("/api/v1/query_range"))
        .respond_with(ResponseTemplate::new(400).set_body_json(serde_json::json!({
            "status": "error", "errorType": "bad_data",
            "error": "1:6: parse error: unexpected character inside braces: '~'"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let p = source(&server.uri(), PrometheusConfig::default());
    let err = p
        .query_range(&q("up", MetricFunc::Gauge, vec![]), RANGE, 30_000)
        .await
        .unwrap_err();
    assert!(matches!(err, SourceError::QueryRejected { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("parse error"), "{text}");
    assert!(text.contains("sum by (service) (up)"), "{text}");
}

#[tokio::test]
async fn wrong_credentials_say_so_and_are_not_retried() {
    let server = MockServer::start().await;
    Mock::given(path("/api/v1/query_range"))
        .and(header("authorization", "Bearer wrong"))
        .respond_with(ResponseTemplate::new(401).set_body_string("Unauthorized"))
        .expect(1)
        .mount(&server)
        .await;
    let mut http = HttpConfig::new(server.uri());
    http.auth = Auth::Bearer("wrong".to_string().into());
    let p = PrometheusSource::new(
        HttpClient::new("prom", &http).unwrap(),
        PrometheusConfig::default(),
    );
    let err = p
        .query_range(&q("up", MetricFunc::Gauge, vec![]), RANGE, 30_000)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("refused the credentials (HTTP 401)"),
        "{err}"
    );
}

#[tokio::test]
async fn a_series_explosion_is_refused_not_returned() {
    let server = MockServer::start().await;
    Mock::given(path("/api/v1/query_range"))
        .respond_with(ResponseTemplate::new(200).set_body_json(matrix(30)))
        .mount(&server)
        .await;
    let p = source(
        &server.uri(),
        PrometheusConfig {
            max_series: 25,
            scope: vec![],
        },
    );
    let err = p
        .query_range(&q("up", MetricFunc::Gauge, vec![]), RANGE, 30_000)
        .await
        .unwrap_err();
    assert!(matches!(err, SourceError::QueryRejected { .. }));
    assert!(
        err.to_string()
            .contains("returned 30 series, more than the limit of 25"),
        "{err}"
    );
}

#[tokio::test]
async fn garbage_is_bad_data_naming_the_url() {
    let server = MockServer::start().await;
    Mock::given(path("/api/v1/query_range"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>login</html>"))
        .mount(&server)
        .await;
    let p = source(&server.uri(), PrometheusConfig::default());
    let err = p
        .query_range(&q("up", MetricFunc::Gauge, vec![]), RANGE, 30_000)
        .await
        .unwrap_err();
    assert!(matches!(err, SourceError::BadData { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("api/v1/query_range returned a malformed response"),
        "{text}"
    );
    assert!(text.contains("<html>login</html>"), "{text}");
}

#[tokio::test]
async fn a_flapping_backend_is_retried_and_a_hanging_one_times_out_once() {
    let server = MockServer::start().await;
    Mock::given(path("/api/v1/query_range"))
        .respond_with(ResponseTemplate::new(503).set_body_string("overloaded"))
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(path("/api/v1/query_range"))
        .respond_with(ResponseTemplate::new(200).set_body_json(matrix(1)))
        .expect(1)
        .mount(&server)
        .await;
    let p = source(&server.uri(), PrometheusConfig::default());
    let ok = p
        .query_range(&q("up", MetricFunc::Gauge, vec![]), RANGE, 30_000)
        .await
        .unwrap();
    assert_eq!(ok.len(), 1);

    let hang = MockServer::start().await;
    Mock::given(path("/api/v1/query_range"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .expect(1)
        .mount(&hang)
        .await;
    let p = source(&hang.uri(), PrometheusConfig::default());
    let err = p
        .query_range(&q("up", MetricFunc::Gauge, vec![]), RANGE, 30_000)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        SourceError::Timeout {
            source_name: "prom".into(),
            after_ms: 500
        }
    );
}

#[tokio::test]
async fn a_dead_port_is_unavailable_naming_the_url() {
    let port = compass_testkit::free_port();
    let p = source(
        &format!("http://127.0.0.1:{port}"),
        PrometheusConfig::default(),
    );
    let err = p.ping().await.unwrap_err();
    assert!(matches!(err, SourceError::Unavailable { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains(&format!("cannot connect to http://127.0.0.1:{port}/")),
        "{err}"
    );
}
