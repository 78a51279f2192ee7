//! The Jaeger source against wiremock serving Jaeger 1.x query-service JSON answers
//! (`testdata/jaeger/`): trace conversion (processes, references, tags), search per
//! service, paging, the dependency graph and its fallback, and each way a backend
//! fails.

use crate::trace_support::{T0_MS, assert_calls_have_server_children, fixture, http, range, span};
use compass_adapters::trace::{JaegerConfig, JaegerSource};
use compass_core::{Span, SpanKind, SpanStatus};
use compass_engine::ports::{ErrorKind, SourceError, TraceSource};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// frontend -> checkout -> payment -> postgres (64-bit id).
const A: &str = "3e5c1b2a9f8d7c6b";
/// frontend -> checkout, checkout in error (128-bit id).
const B: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn jaeger(url: &str) -> JaegerSource {
    let config = JaegerConfig {
        search_slices: 1,
        ..JaegerConfig::default()
    };
    JaegerSource::new(http("jaeger", url), config)
}

fn json(body: String) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body, "application/json")
}

/// `GET /api/traces?service=<service>` answering `search_<service>.json`.
async fn mount_search(server: &MockServer, service: &str, limit: &str) {
    Mock::given(method("GET"))
        .and(path("/api/traces"))
        .and(query_param("service", service))
        .and(query_param("start", "1700000000000000"))
        .and(query_param("end", "1700000600000000"))
        .and(query_param("limit", limit))
        .respond_with(json(fixture("jaeger", &format!("search_{service}.json"))))
        .expect(1)
        .mount(server)
        .await;
}

async fn mount_services(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path("/api/services"))
        .respond_with(json(fixture("jaeger", "services.json")))
        .mount(server)
        .await;
}

fn trace_ids(spans: &[Span]) -> Vec<&str> {
    let mut ids: Vec<&str> = spans.iter().map(|s| s.trace_id.as_str()).collect();
    ids.dedup();
    ids
}

#[tokio::test]
async fn a_three_service_trace_keeps_kinds_parents_peers_and_errors() {
    let server = MockServer::start().await;
    mount_search(&server, "frontend", "200").await;
    let page = jaeger(&server.uri())
        .fetch_spans(range(), Some("frontend"), None, 1000)
        .await
        .unwrap();
    assert!(page.problems.is_empty(), "{:?}", page.problems);
    assert_eq!(trace_ids(&page.items), [A, B], "oldest trace first");
    assert!(page.items.iter().all(|s| s.service == "frontend"));

    // The whole trace, by id, to see every service.
    Mock::given(method("GET"))
        .and(path(format!("/api/traces/{A}")))
        .respond_with(json(fixture("jaeger", "search_payment.json")))
        .mount(&server)
        .await;
    let trace = jaeger(&server.uri()).fetch_trace(A).await.unwrap();
    let spans = &trace.spans;
    assert_eq!(spans.len(), 6);

    let root = span(spans, "b7ad6b7169203331");
    assert_eq!(
        (root.service.as_str(), root.kind, root.parent_id.as_deref()),
        ("frontend", SpanKind::Server, None)
    );
    assert_eq!((root.start, root.duration_ms), (T0_MS, 120.0));
    assert_eq!(
        root.status,
        SpanStatus::Ok,
        "an HTTP 500 tag alone is no error"
    );

    let declared = span(spans, "00f067aa0ba902b7");
    assert_eq!(declared.kind, SpanKind::Client);
    assert_eq!(declared.parent_id.as_deref(), Some("b7ad6b7169203331"));
    assert_eq!(declared.peer_service.as_deref(), Some("checkout"));

    // No peer.service: the child server span's service wins over net.peer.name.
    let inferred = span(spans, "e457b5a2e4d86bd1");
    assert_eq!(inferred.service, "checkout");
    assert_eq!(inferred.peer_service.as_deref(), Some("payment"));

    let payment = span(spans, "1fe0b8b9c4d2a1f0");
    assert_eq!(
        (payment.service.as_str(), payment.kind, payment.status),
        ("payment", SpanKind::Server, SpanStatus::Error)
    );

    let db = span(spans, "7c3a9e5b2d1f4a06");
    assert_eq!(db.peer_service.as_deref(), Some("postgres"));
    assert_eq!(db.duration_ms, 30.0);
}

#[tokio::test]
async fn client_spans_have_their_callee_as_a_server_child_and_otel_errors_count() {
    let server = MockServer::start().await;
    mount_search(&server, "checkout", "200").await;
    let page = jaeger(&server.uri())
        .fetch_spans(range(), Some("checkout"), None, 1000)
        .await
        .unwrap();
    assert!(page.items.iter().all(|s| s.service == "checkout"));
    let b_server = span(&page.items, "a1b2c3d4e5f6071a");
    assert_eq!(b_server.status, SpanStatus::Error, "otel.status_code=ERROR");

    Mock::given(method("GET"))
        .and(path(format!("/api/traces/{A}")))
        .respond_with(json(fixture("jaeger", "search_payment.json")))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/api/traces/{B}")))
        .respond_with(json(fixture("jaeger", "trace_b.json")))
        .mount(&server)
        .await;
    let source = jaeger(&server.uri());
    let mut spans = source.fetch_trace(A).await.unwrap().spans;
    spans.extend(source.fetch_trace(B).await.unwrap().spans);
    assert_eq!(assert_calls_have_server_children(&spans), 3);
}

#[tokio::test]
async fn without_a_service_every_listed_service_is_searched_once_per_slice() {
    let server = MockServer::start().await;
    mount_services(&server).await;
    // 200 traces shared by 3 services: 66 per request.
    for service in ["checkout", "frontend", "payment"] {
        mount_search(&server, service, "66").await;
    }
    let page = jaeger(&server.uri())
        .fetch_spans(range(), None, None, 1000)
        .await
        .unwrap();
    // Each trace once, though several services' searches answered it.
    assert_eq!(trace_ids(&page.items), [A, B]);
    assert_eq!(page.items.len(), 9);
    assert_eq!(page.next, None);
}

#[tokio::test]
async fn later_pages_fetch_the_remaining_traces_by_id() {
    let server = MockServer::start().await;
    mount_search(&server, "frontend", "200").await;
    Mock::given(method("GET"))
        .and(path(format!("/api/traces/{B}")))
        .respond_with(json(fixture("jaeger", "trace_b.json")))
        .expect(1)
        .mount(&server)
        .await;
    let source = jaeger(&server.uri());
    let first = source
        .fetch_spans(range(), Some("frontend"), None, 1)
        .await
        .unwrap();
    assert_eq!(trace_ids(&first.items), [A]);
    assert_eq!(first.items.len(), 2);
    let cursor = first.next.expect("a second page");
    let second = source
        .fetch_spans(range(), Some("frontend"), Some(&cursor), 1)
        .await
        .unwrap();
    assert_eq!(trace_ids(&second.items), [B]);
    assert_eq!((second.items.len(), second.next), (2, None));
}

#[tokio::test]
async fn call_graph_comes_from_dependencies() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/dependencies"))
        .and(query_param("endTs", "1700000600000"))
        .and(query_param("lookback", "600000"))
        .respond_with(json(fixture("jaeger", "dependencies.json")))
        .mount(&server)
        .await;
    let graph = jaeger(&server.uri()).call_graph(range()).await.unwrap();
    let edges: Vec<(&str, &str)> = graph
        .edges
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    assert_eq!(edges, [("checkout", "payment"), ("frontend", "checkout")]);
}

#[tokio::test]
async fn an_empty_dependency_graph_falls_back_to_the_traces() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/dependencies"))
        .respond_with(json(fixture("jaeger", "dependencies_empty.json")))
        .mount(&server)
        .await;
    mount_services(&server).await;
    // max_traces 100 shared by 3 services: 33 per request.
    for service in ["checkout", "frontend", "payment"] {
        mount_search(&server, service, "33").await;
    }
    let graph = jaeger(&server.uri()).call_graph(range()).await.unwrap();
    let edges: Vec<(&str, &str)> = graph
        .edges
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    assert_eq!(
        edges,
        [
            ("checkout", "payment"),
            ("frontend", "checkout"),
            ("payment", "postgres")
        ]
    );
}

#[tokio::test]
async fn a_missing_trace_is_not_found_naming_its_id() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/api/traces/{B}")))
        .respond_with(
            ResponseTemplate::new(404)
                .set_body_raw(fixture("jaeger", "error_404.json"), "application/json"),
        )
        .mount(&server)
        .await;
    let err = jaeger(&server.uri()).fetch_trace(B).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains(B), "{err}");
}

#[tokio::test]
async fn a_rejected_query_carries_jaegers_message() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/traces"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_raw(fixture("jaeger", "error_400.json"), "application/json"),
        )
        .mount(&server)
        .await;
    let err = jaeger(&server.uri())
        .fetch_spans(range(), Some("frontend"), None, 100)
        .await
        .unwrap_err();
    let SourceError::QueryRejected { detail, .. } = &err else {
        panic!("expected a rejected query, got {err:?}");
    };
    assert!(
        detail.starts_with("jaeger reported: unable to parse param 'limit'"),
        "{detail}"
    );
}

#[tokio::test]
async fn a_garbage_body_is_bad_data() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/traces"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{\"data\": [oops"))
        .mount(&server)
        .await;
    let err = jaeger(&server.uri())
        .fetch_spans(range(), Some("frontend"), None, 100)
        .await
        .unwrap_err();
    assert!(matches!(err, SourceError::BadData { .. }), "{err:?}");
}

#[tokio::test]
async fn a_503_is_retried_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/traces"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    mount_search(&server, "frontend", "200").await;
    let page = jaeger(&server.uri())
        .fetch_spans(range(), Some("frontend"), None, 1000)
        .await
        .unwrap();
    assert_eq!(trace_ids(&page.items), [A, B]);
}

#[tokio::test]
async fn a_refused_or_closed_connection_is_unavailable() {
    for url in [
        crate::trace_support::refused_url(),
        crate::trace_support::closing_server().await,
    ] {
        let err = jaeger(&url).ping().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{url}: {err}");
        assert!(err.to_string().contains(&url), "{err}");
    }
}

#[tokio::test]
async fn ping_counts_the_services() {
    let server = MockServer::start().await;
    mount_services(&server).await;
    let source = jaeger(&server.uri());
    assert_eq!(source.ping().await.unwrap(), "Jaeger query API, 3 services");
    assert_eq!(
        source.services().await.unwrap(),
        ["checkout", "frontend", "payment"]
    );
}
