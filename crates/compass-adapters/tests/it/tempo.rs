//! The Tempo source against wiremock serving Tempo 2.x HTTP API answers
//! (`testdata/tempo/`): trace conversion (base64 and hex ids, kinds, parents, peers,
//! errors), search with TraceQL, paging, slices, the call graph, and each way a
//! backend fails.

use crate::trace_support::{T0_MS, assert_calls_have_server_children, fixture, http, range, span};
use compass_adapters::trace::{TempoConfig, TempoSource};
use compass_core::{Span, SpanKind, SpanStatus, TimeRange};
use compass_engine::ports::{ErrorKind, SourceError, TraceSource};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const T1: &str = "0af7651916cd43dd8448eb211c80319c";
const T2: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const T3: &str = "5b8efff798038103d269b633813fc60c";

fn tempo(url: &str, config: TempoConfig) -> TempoSource {
    TempoSource::new(http("tempo", url), config)
}

/// One slice, so each search is one request.
fn one_slice() -> TempoConfig {
    TempoConfig {
        search_slices: 1,
        ..TempoConfig::default()
    }
}

fn json(body: String) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body, "application/json")
}

async fn mount_traces(server: &MockServer) {
    for (id, file) in [
        (T1, "trace_v1_base64.json"),
        (T2, "trace_v2_base64.json"),
        (T3, "trace_otlp_hex.json"),
    ] {
        Mock::given(method("GET"))
            .and(path(format!("/api/traces/{id}")))
            .respond_with(json(fixture("tempo", file)))
            .mount(server)
            .await;
    }
}

async fn mount_search(server: &MockServer, traceql: &str) {
    Mock::given(method("GET"))
        .and(path("/api/search"))
        .and(query_param("q", traceql))
        .and(query_param("start", "1700000000"))
        .and(query_param("end", "1700000600"))
        .and(query_param("limit", "200"))
        .and(query_param("spss", "1"))
        .respond_with(json(fixture("tempo", "search.json")))
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
    mount_traces(&server).await;
    let trace = tempo(&server.uri(), one_slice())
        .fetch_trace(T1, None)
        .await
        .unwrap();
    assert!(trace.problems.is_empty(), "{:?}", trace.problems);
    let spans = &trace.spans;
    assert_eq!(spans.len(), 6);
    assert!(
        spans.iter().all(|s| s.trace_id == T1),
        "base64 ids become hex"
    );

    let root = span(spans, "b7ad6b7169203331");
    assert_eq!(
        (root.service.as_str(), root.kind, root.parent_id.as_deref()),
        ("frontend", SpanKind::Server, None)
    );
    assert_eq!((root.start, root.duration_ms), (T0_MS, 120.0));
    assert_eq!(root.operation, "GET /checkout");

    let declared = span(spans, "00f067aa0ba902b7");
    assert_eq!(declared.kind, SpanKind::Client);
    assert_eq!(declared.parent_id.as_deref(), Some("b7ad6b7169203331"));
    assert_eq!(declared.peer_service.as_deref(), Some("checkout"));

    // No peer.service: the child server span's service wins over server.address.
    let inferred = span(spans, "e457b5a2e4d86bd1");
    assert_eq!(inferred.service, "checkout");
    assert_eq!(inferred.peer_service.as_deref(), Some("payment"));

    let payment = span(spans, "1fe0b8b9c4d2a1f0");
    assert_eq!(
        (payment.service.as_str(), payment.kind, payment.status),
        ("payment", SpanKind::Server, SpanStatus::Error)
    );
    assert_eq!(payment.parent_id.as_deref(), Some("e457b5a2e4d86bd1"));
    assert_eq!(payment.peer_service, None, "server spans have no peer");

    // No traced callee: the host of server.address, port stripped.
    let db = span(spans, "7c3a9e5b2d1f4a06");
    assert_eq!(db.peer_service.as_deref(), Some("postgres"));
    assert_eq!(db.duration_ms, 30.0);
    assert!(
        spans
            .iter()
            .filter(|s| s.span_id != "1fe0b8b9c4d2a1f0")
            .all(|s| s.status == SpanStatus::Ok)
    );
}

#[tokio::test]
async fn client_spans_have_their_callee_as_a_server_child() {
    let server = MockServer::start().await;
    mount_traces(&server).await;
    let source = tempo(&server.uri(), one_slice());
    let mut spans = Vec::new();
    for id in [T1, T2, T3] {
        spans.extend(source.fetch_trace(id, None).await.unwrap().spans);
    }
    assert_eq!(assert_calls_have_server_children(&spans), 3);
}

#[tokio::test]
async fn v2_and_hex_otlp_bodies_are_read_too() {
    let server = MockServer::start().await;
    mount_traces(&server).await;
    let source = tempo(&server.uri(), one_slice());

    let v2 = source.fetch_trace(T2, None).await.unwrap();
    assert_eq!(v2.spans.len(), 3);
    assert_eq!(trace_ids(&v2.spans), [T2]);
    let call = span(&v2.spans, "a1b2c3d4e5f60719");
    assert_eq!(call.peer_service.as_deref(), Some("checkout"));

    // Hex ids, numeric kinds (2 server, 1 internal) and status code 2.
    let hex = source.fetch_trace(T3, None).await.unwrap();
    assert_eq!(hex.spans.len(), 2, "the span without an end is skipped");
    let poll = span(&hex.spans, "c0ffee0000000001");
    assert_eq!(
        (poll.kind, poll.status),
        (SpanKind::Server, SpanStatus::Error)
    );
    let render = span(&hex.spans, "c0ffee0000000002");
    assert_eq!(render.kind, SpanKind::Internal);
    assert_eq!(render.parent_id.as_deref(), Some("c0ffee0000000001"));
    assert_eq!(hex.problems.len(), 1);
    assert!(
        hex.problems[0].contains(T3) && hex.problems[0].contains("start/end"),
        "{:?}",
        hex.problems
    );
}

#[tokio::test]
async fn fetch_spans_walks_the_search_whole_traces_per_page() {
    let server = MockServer::start().await;
    mount_search(&server, "{}").await;
    mount_traces(&server).await;
    let source = tempo(&server.uri(), one_slice());

    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = source
            .fetch_spans(range(), None, cursor.as_deref(), 1)
            .await
            .unwrap();
        cursor = page.next.clone();
        pages.push(page);
        if cursor.is_none() {
            break;
        }
        assert!(pages.len() < 10, "the walk does not end");
    }
    // Oldest trace first; one whole trace per page at limit 1.
    let per_page: Vec<(Vec<&str>, usize)> = pages
        .iter()
        .map(|p| (trace_ids(&p.items), p.items.len()))
        .collect();
    assert_eq!(
        per_page,
        [(vec![T1], 6), (vec![T2], 3), (vec![T3], 2)],
        "{pages:#?}"
    );
    assert!(pages[0].problems.is_empty() && pages[1].problems.is_empty());
    assert_eq!(pages[2].problems.len(), 1, "{:?}", pages[2].problems);

    // A large limit takes every trace in one page.
    let all = source.fetch_spans(range(), None, None, 1000).await.unwrap();
    assert_eq!((all.items.len(), all.next), (11, None));
}

#[tokio::test]
async fn a_service_filter_sends_traceql_and_keeps_that_services_spans() {
    let server = MockServer::start().await;
    mount_search(&server, r#"{resource.service.name="checkout"}"#).await;
    mount_traces(&server).await;
    let page = tempo(&server.uri(), one_slice())
        .fetch_spans(range(), Some("checkout"), None, 1000)
        .await
        .unwrap();
    assert!(page.items.iter().all(|s| s.service == "checkout"));
    assert_eq!(page.items.len(), 5);
    // The peer inferred from the payment server span survives the filter.
    let call = span(&page.items, "e457b5a2e4d86bd1");
    assert_eq!(call.peer_service.as_deref(), Some("payment"));
    assert_eq!(
        TempoSource::traceql(Some(r#"we"ird\"#)),
        r#"{resource.service.name="we\"ird\\"}"#
    );
}

#[tokio::test]
async fn spans_starting_outside_the_range_are_left_out() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/search"))
        .respond_with(json(fixture("tempo", "search.json")))
        .mount(&server)
        .await;
    mount_traces(&server).await;
    let narrow = TimeRange::new(T0_MS + 100_000, T0_MS + 350_000);
    let page = tempo(&server.uri(), one_slice())
        .fetch_spans(narrow, None, None, 1000)
        .await
        .unwrap();
    assert_eq!(trace_ids(&page.items), [T2]);
    assert_eq!(page.items.len(), 3);
}

#[tokio::test]
async fn the_range_is_searched_in_slices_oldest_first() {
    let server = MockServer::start().await;
    for (start, end, file) in [
        ("1700000000", "1700000300", "search_first_half.json"),
        ("1700000300", "1700000600", "search_second_half.json"),
    ] {
        Mock::given(method("GET"))
            .and(path("/api/search"))
            .and(query_param("start", start))
            .and(query_param("end", end))
            .and(query_param("limit", "100"))
            .respond_with(json(fixture("tempo", file)))
            .expect(1)
            .mount(&server)
            .await;
    }
    mount_traces(&server).await;
    let config = TempoConfig {
        search_slices: 2,
        ..TempoConfig::default()
    };
    let page = tempo(&server.uri(), config)
        .fetch_spans(range(), None, None, 1000)
        .await
        .unwrap();
    // T1 is in both slices' answers and fetched once.
    assert_eq!(trace_ids(&page.items), [T1, T2]);
    assert_eq!(page.items.len(), 9);
}

#[tokio::test]
async fn call_graph_comes_from_client_peers_and_cross_service_parents() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/search"))
        .and(query_param("q", "{}"))
        .and(query_param("limit", "100"))
        .respond_with(json(fixture("tempo", "search.json")))
        .mount(&server)
        .await;
    mount_traces(&server).await;
    let graph = tempo(&server.uri(), one_slice())
        .call_graph(range())
        .await
        .unwrap();
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
        .and(path("/api/search"))
        .respond_with(json(fixture("tempo", "search.json")))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/api/traces/{T2}")))
        .respond_with(ResponseTemplate::new(404).set_body_string("trace not found"))
        .mount(&server)
        .await;
    mount_traces(&server).await;
    let source = tempo(&server.uri(), one_slice());

    let err = source.fetch_trace(T2, None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains(T2), "{err}");

    // In a walk the missing trace is a problem; the others still come.
    let page = source.fetch_spans(range(), None, None, 1000).await.unwrap();
    assert_eq!(trace_ids(&page.items), [T1, T3]);
    assert!(
        page.problems.iter().any(|p| p.contains(T2)),
        "{:?}",
        page.problems
    );
}

#[tokio::test]
async fn bad_traceql_is_rejected_with_tempos_message() {
    let server = MockServer::start().await;
    let message =
        "invalid TraceQL query: parse error at line 1, col 3: syntax error: unexpected IDENTIFIER";
    Mock::given(method("GET"))
        .and(path("/api/search"))
        .respond_with(ResponseTemplate::new(400).set_body_string(message))
        .mount(&server)
        .await;
    let err = tempo(&server.uri(), one_slice())
        .search("{ .status = }", range(), 20)
        .await
        .unwrap_err();
    let SourceError::QueryRejected { detail, .. } = &err else {
        panic!("expected a rejected query, got {err:?}");
    };
    assert!(detail.contains(message), "{detail}");
    assert!(
        detail.contains("{ .status = }"),
        "names the query: {detail}"
    );
}

#[tokio::test]
async fn a_garbage_body_is_bad_data() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/search"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>gateway says hi</html>"))
        .mount(&server)
        .await;
    let err = tempo(&server.uri(), one_slice())
        .fetch_spans(range(), None, None, 100)
        .await
        .unwrap_err();
    assert!(matches!(err, SourceError::BadData { .. }), "{err:?}");
    assert!(err.to_string().contains("<html>"), "{err}");
}

#[tokio::test]
async fn a_503_is_retried_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/search"))
        .respond_with(ResponseTemplate::new(503).set_body_string("too many outstanding requests"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    mount_search(&server, "{}").await;
    mount_traces(&server).await;
    let page = tempo(&server.uri(), one_slice())
        .fetch_spans(range(), None, None, 1000)
        .await
        .unwrap();
    assert_eq!(trace_ids(&page.items), [T1, T2, T3]);
}

#[tokio::test]
async fn a_refused_or_closed_connection_is_unavailable() {
    for url in [
        crate::trace_support::refused_url(),
        crate::trace_support::closing_server().await,
    ] {
        let err = tempo(&url, one_slice())
            .fetch_spans(range(), None, None, 100)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{url}: {err}");
        assert!(err.to_string().contains(&url), "{err}");
    }
}

#[tokio::test]
async fn ping_reports_the_version_or_readiness() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/status/buildinfo"))
        .respond_with(json(fixture("tempo", "buildinfo.json")))
        .mount(&server)
        .await;
    let source = tempo(&server.uri(), one_slice());
    assert_eq!(source.ping().await.unwrap(), "Tempo 2.6.1");

    let older = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/ready"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ready\n"))
        .mount(&older)
        .await;
    let source = tempo(&older.uri(), one_slice());
    assert_eq!(source.ping().await.unwrap(), "Tempo, ready");
}

#[tokio::test]
async fn a_cursor_from_elsewhere_is_rejected() {
    let server = MockServer::start().await;
    let err = tempo(&server.uri(), one_slice())
        .fetch_spans(range(), None, Some("offset=40"), 100)
        .await
        .unwrap_err();
    assert!(matches!(err, SourceError::QueryRejected { .. }), "{err:?}");
    assert!(err.to_string().contains("without a cursor"), "{err}");
}
