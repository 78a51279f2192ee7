//! The Loki adapter against wiremock serving fixtures shaped like Loki's HTTP API v1
//! as of Loki 3.x (see `testdata/loki/README.md`): merging streams, levels, paging
//! across equal timestamps, label values, readiness, and every failure turned into a
//! precise error.

use compass_adapters::http::{HttpClient, HttpConfig, RetryPolicy};
use compass_adapters::loki::{LokiConfig, LokiSource};
use compass_core::{EpochMs, LogLevel, LogRecord, TimeRange};
use compass_engine::{LogQuery, LogSource, SourceError};
use std::time::Duration;
use wiremock::matchers::{method, path, query_param, query_param_contains};
use wiremock::{Mock, MockServer, ResponseTemplate};

const QUERY_RANGE: &str = "/loki/api/v1/query_range";

/// 2024-03-01 10:00 to 11:00 UTC.
const RANGE: TimeRange = TimeRange {
    start: 1_709_287_200_000,
    end: 1_709_290_800_000,
};

fn fixture(name: &str) -> String {
    let path = format!("{}/testdata/loki/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn json(name: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(fixture(name), "application/json")
}

fn source_with(url: &str, config: LokiConfig) -> LokiSource {
    let mut http = HttpConfig::new(url);
    http.timeout = Duration::from_secs(5);
    http.retry = RetryPolicy {
        max_retries: 2,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(10),
    };
    LokiSource::new(
        "loki",
        HttpClient::new("loki", &http).expect("client"),
        config,
    )
}

fn source(url: &str) -> LokiSource {
    source_with(url, LokiConfig::default())
}

async fn serve(template: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(QUERY_RANGE))
        .respond_with(template)
        .mount(&server)
        .await;
    server
}

async fn fetch(src: &LokiSource, query: &LogQuery) -> Result<Vec<LogRecord>, SourceError> {
    src.fetch_logs(query, RANGE, None, 1000)
        .await
        .map(|p| p.items)
}

fn ms(s: f64) -> EpochMs {
    RANGE.start + (s * 1000.0) as EpochMs
}

#[tokio::test]
async fn two_streams_merge_in_time_order() {
    let server = serve(json("two_streams.json")).await;
    let page = source(&server.uri())
        .fetch_logs(&LogQuery::default(), RANGE, None, 1000)
        .await
        .expect("page");
    assert_eq!(page.next, None);
    assert!(page.problems.is_empty(), "{:?}", page.problems);
    let got: Vec<_> = page
        .items
        .iter()
        .map(|r| (r.ts, r.service.as_str(), r.message.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (ms(1.0), "checkout", "connection refused to payments:8080"),
            (ms(2.0), "payments", "slow query"),
            (ms(3.5), "checkout", "retry budget exhausted"),
            (ms(4.0), "payments", "payment ok"),
        ]
    );
    assert_eq!(page.items[0].pod, "checkout-7d9f-x2x4q");
    assert_eq!(
        page.items[1].pod, "10.0.0.12:8080",
        "instance when no pod label"
    );
    assert_eq!(page.items[1].trace_id.as_deref(), Some("4bf92f3577b34da6"));
    // The request: the whole range in nanoseconds, forward, all services.
    let requests = server.received_requests().await.expect("recorded");
    let url = &requests[0].url;
    let param = |k: &str| {
        url.query_pairs()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.into_owned())
    };
    assert_eq!(param("query").as_deref(), Some(r#"{service=~".+"}"#));
    assert_eq!(param("start").as_deref(), Some("1709287200000000000"));
    assert_eq!(param("end").as_deref(), Some("1709290800000000000"));
    assert_eq!(param("direction").as_deref(), Some("forward"));
    assert_eq!(param("limit").as_deref(), Some("1000"));
}

#[tokio::test]
async fn level_from_the_label_or_the_json_line() {
    let server = serve(json("two_streams.json")).await;
    let config = LokiConfig {
        level_label: Some("level".to_string()),
        ..LokiConfig::default()
    };
    let records = fetch(&source_with(&server.uri(), config), &LogQuery::default())
        .await
        .expect("records");
    let levels: Vec<_> = records.iter().map(|r| r.level).collect();
    assert_eq!(
        levels,
        [
            LogLevel::Error,
            LogLevel::Warn,
            LogLevel::Error,
            LogLevel::Info
        ],
        "checkout from its `level` label, payments from the JSON `level` field"
    );
}

#[tokio::test]
async fn level_from_detected_level() {
    let server = serve(json("detected_level.json")).await;
    let records = fetch(&source(&server.uri()), &LogQuery::default())
        .await
        .expect("records");
    assert_eq!(records[0].level, LogLevel::Error);
    assert_eq!(records[0].service, "cart");
}

#[tokio::test]
async fn a_min_level_filters_by_line_and_drops_lower_levels() {
    let server = serve(json("two_streams.json")).await;
    let query = LogQuery {
        service: None,
        min_level: Some(LogLevel::Error),
    };
    let src = source(&server.uri());
    let records = fetch(&src, &query).await.expect("records");
    // Without a level label the plain checkout lines name no level (INFO); the fixture
    // stands for what Loki returned, the adapter still drops what it rates lower.
    assert!(records.is_empty(), "{records:?}");
    let requests = server.received_requests().await.expect("recorded");
    let sent = requests[0]
        .url
        .query_pairs()
        .find(|(k, _)| k == "query")
        .map(|(_, v)| v.into_owned())
        .expect("query");
    assert_eq!(sent, src.logql(&query));
    assert!(
        sent.starts_with(r#"{service=~".+"} |~ "(?i)(err"#),
        "{sent}"
    );
}

#[tokio::test]
async fn pages_over_an_equal_timestamp_boundary() {
    let server = MockServer::start().await;
    for (start, page) in [
        ("1709287200000000000", "page1.json"),
        ("1709287203000000000", "page2.json"),
        ("1709287204000000000", "page3.json"),
    ] {
        Mock::given(method("GET"))
            .and(path(QUERY_RANGE))
            .and(query_param("start", start))
            .and(query_param("limit", "3"))
            .respond_with(json(page))
            .expect(1)
            .mount(&server)
            .await;
    }
    let config = LokiConfig {
        page_limit: 3,
        ..LokiConfig::default()
    };
    let src = source_with(&server.uri(), config);
    let mut lines = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = src
            .fetch_logs(&LogQuery::default(), RANGE, cursor.as_deref(), 50_000)
            .await
            .expect("page");
        pages += 1;
        assert!(
            page.items.windows(2).all(|w| w[0].ts <= w[1].ts),
            "time order"
        );
        lines.extend(page.items.into_iter().map(|r| r.message));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(
        lines,
        ["a1", "b2", "a3", "b3", "a4", "b5"],
        "none lost, none twice"
    );
}

#[tokio::test]
async fn a_foreign_cursor_is_rejected() {
    let server = serve(json("two_streams.json")).await;
    let err = source(&server.uri())
        .fetch_logs(&LogQuery::default(), RANGE, Some("page-2"), 10)
        .await
        .expect_err("foreign cursor");
    assert!(matches!(err, SourceError::QueryRejected { .. }), "{err}");
}

#[tokio::test]
async fn a_bad_timestamp_skips_the_entry_with_a_note() {
    let server = serve(json("bad_timestamp.json")).await;
    let page = source(&server.uri())
        .fetch_logs(&LogQuery::default(), RANGE, None, 10)
        .await
        .expect("page");
    let lines: Vec<_> = page.items.iter().map(|r| r.message.as_str()).collect();
    assert_eq!(lines, ["a good line"]);
    assert_eq!(page.problems.len(), 1, "{:?}", page.problems);
    assert!(
        page.problems[0].contains("\"yesterday\""),
        "{}",
        page.problems[0]
    );
}

#[tokio::test]
async fn label_values_sorted() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/loki/api/v1/label/service/values"))
        .and(query_param("start", "1709287200000000000"))
        .and(query_param("end", "1709290800000000000"))
        .respond_with(json("label_values.json"))
        .mount(&server)
        .await;
    let src = source(&server.uri());
    let values = src.label_values("service", RANGE).await.expect("values");
    assert_eq!(values, ["cart", "checkout", "payments"]);
    let err = src
        .label_values("../admin", RANGE)
        .await
        .expect_err("not a label");
    assert!(matches!(err, SourceError::QueryRejected { .. }), "{err}");
}

#[tokio::test]
async fn ping_reports_version_and_readiness() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/loki/api/v1/status/buildinfo"))
        .respond_with(json("buildinfo.json"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/ready"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ready\n"))
        .mount(&server)
        .await;
    assert_eq!(
        source(&server.uri()).ping().await.expect("ping"),
        "Loki 3.1.0 ready"
    );
}

#[tokio::test]
async fn a_parse_error_is_query_rejected_naming_the_logql() {
    let message = "parse error at line 1, col 5: syntax error: unexpected IDENTIFIER";
    let server = serve(ResponseTemplate::new(400).set_body_string(message)).await;
    let src = source(&server.uri());
    let err = fetch(&src, &LogQuery::default()).await.expect_err("400");
    let SourceError::QueryRejected { detail, .. } = &err else {
        panic!("expected QueryRejected, got {err:?}");
    };
    assert!(detail.contains(message), "{detail}");
    assert!(detail.contains(r#"{service=~".+"}"#), "{detail}");
    assert_eq!(
        server.received_requests().await.map(|r| r.len()),
        Some(1),
        "not retried"
    );
}

#[tokio::test]
async fn unauthorized_is_a_credentials_error() {
    let server = serve(ResponseTemplate::new(401).set_body_string("no org id\n")).await;
    let err = fetch(&source(&server.uri()), &LogQuery::default())
        .await
        .expect_err("401");
    assert!(matches!(err, SourceError::Unavailable { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("refused the credentials"), "{text}");
    assert!(text.contains("auth settings"), "{text}");
}

#[tokio::test]
async fn a_garbage_body_is_bad_data() {
    let server =
        serve(ResponseTemplate::new(200).set_body_string("<html>proxy login</html>")).await;
    let err = fetch(&source(&server.uri()), &LogQuery::default())
        .await
        .expect_err("garbage");
    assert!(matches!(err, SourceError::BadData { .. }), "{err}");
    assert!(err.to_string().contains("<html>proxy login"), "{err}");
}

#[tokio::test]
async fn a_matrix_or_failed_status_is_bad_data() {
    let server = serve(json("matrix.json")).await;
    let err = fetch(&source(&server.uri()), &LogQuery::default())
        .await
        .expect_err("matrix");
    assert!(matches!(err, SourceError::BadData { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("expected resultType `streams` for a log query, got `matrix`"),
        "{err}"
    );
    let failed = r#"{"status":"error","errorType":"internal","error":"too many chunks"}"#;
    let server = serve(ResponseTemplate::new(200).set_body_raw(failed, "application/json")).await;
    let err = fetch(&source(&server.uri()), &LogQuery::default())
        .await
        .expect_err("status error");
    assert!(matches!(err, SourceError::BadData { .. }), "{err}");
    assert!(err.to_string().contains("too many chunks"), "{err}");
}

#[tokio::test]
async fn a_server_error_is_retried_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(QUERY_RANGE))
        .respond_with(ResponseTemplate::new(500).set_body_string("internal error"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(QUERY_RANGE))
        .and(query_param_contains("query", "service"))
        .respond_with(json("two_streams.json"))
        .with_priority(2)
        .mount(&server)
        .await;
    let records = fetch(&source(&server.uri()), &LogQuery::default())
        .await
        .expect("retried");
    assert_eq!(records.len(), 4);
    assert_eq!(server.received_requests().await.map(|r| r.len()), Some(2));
}

#[tokio::test]
async fn connection_refused_is_unavailable_naming_the_url() {
    // A port that was free a moment ago: nothing listens on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let err = fetch(&source(&url), &LogQuery::default())
        .await
        .expect_err("refused");
    assert!(matches!(err, SourceError::Unavailable { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("127.0.0.1:{port}/loki/api/v1/query_range")),
        "{err}"
    );
}
