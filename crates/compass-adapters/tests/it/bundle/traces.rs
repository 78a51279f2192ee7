//! Spans and the call graph: windows, the service filter, client-span edges,
//! cross-service parent/child edges (also when the child is written first).

use super::{at, between, sources, whole_hour};
use compass_core::{SpanKind, SpanStatus, TimeRange};

fn edges(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[tokio::test]
async fn call_graph_of_a_window() {
    let traces = sources("tiny").traces.unwrap();
    let graph = traces
        .call_graph(between("00:00.000", "05:00.000"))
        .await
        .unwrap();
    let got: Vec<_> = graph.edges.into_iter().collect();
    assert_eq!(
        got,
        edges(&[
            ("checkout", "inventory"),
            ("checkout", "payment"),
            ("frontend", "checkout"),
            ("payment", "ledger"),
        ])
    );
    let graph = traces.call_graph(whole_hour()).await.unwrap();
    assert!(
        graph
            .edges
            .contains(&("frontend".to_string(), "recommendation".to_string()))
    );
    assert_eq!(graph.edges.len(), 5);
}

#[tokio::test]
async fn call_graph_uses_only_spans_in_the_window() {
    let traces = sources("tiny").traces.unwrap();
    // From 09:00:10.002 the frontend spans of trace t1 are outside the window.
    let graph = traces
        .call_graph(between("00:10.002", "01:00.000"))
        .await
        .unwrap();
    let got: Vec<_> = graph.edges.into_iter().collect();
    assert_eq!(
        got,
        edges(&[
            ("checkout", "inventory"),
            ("checkout", "payment"),
            ("payment", "ledger")
        ])
    );
    let empty = traces
        .call_graph(between("20:00.000", "30:00.000"))
        .await
        .unwrap();
    assert!(empty.is_empty());
}

#[tokio::test]
async fn spans_in_a_window_by_service() {
    let traces = sources("tiny").traces.unwrap();
    let range = between("00:10.002", "00:20.001");
    let page = traces.fetch_spans(range, None, None, 100).await.unwrap();
    let ids: Vec<&str> = page.items.iter().map(|s| s.span_id.as_str()).collect();
    assert_eq!(ids, ["s3", "s4", "s5", "s6"]);
    let page = traces
        .fetch_spans(range, Some("checkout"), None, 100)
        .await
        .unwrap();
    let ids: Vec<&str> = page.items.iter().map(|s| s.span_id.as_str()).collect();
    assert_eq!(ids, ["s3", "s4", "s6"]);

    let client = &page.items[1];
    assert_eq!(client.trace_id, "t1");
    assert_eq!(client.parent_id.as_deref(), Some("s3"));
    assert_eq!(client.kind, SpanKind::Client);
    assert_eq!(client.peer_service.as_deref(), Some("payment"));
    assert_eq!(client.start, at("00:10.003"));
    assert_eq!(client.duration_ms, 30.0);
    assert_eq!(client.status, SpanStatus::Ok);
    assert_eq!(page.items[2].parent_id, None);
}

#[tokio::test]
async fn span_pages_cover_every_span_once() {
    let traces = sources("tiny").traces.unwrap();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = traces
            .fetch_spans(whole_hour(), None, cursor.as_deref(), 5)
            .await
            .unwrap();
        seen.extend(page.items.into_iter().map(|s| s.span_id));
        cursor = page.next;
        if cursor.is_none() {
            break;
        }
    }
    let want = [
        "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s10", "s9", "s11", "s12",
    ];
    assert_eq!(seen, want);
}

#[tokio::test]
async fn malformed_spans_are_reported() {
    let traces = sources("malformed-log").traces.unwrap();
    let page = traces
        .fetch_spans(whole_hour(), None, None, 100)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 5);
    assert_eq!(page.problems.len(), 1);
    assert!(
        page.problems[0].starts_with("traces.jsonl line 4: "),
        "{:?}",
        page.problems
    );
    assert!(
        page.problems[0].contains("missing field"),
        "{:?}",
        page.problems
    );
    let graph = traces
        .call_graph(TimeRange::new(0, i64::MAX))
        .await
        .unwrap();
    assert_eq!(graph.edges.len(), 2);
}
