//! Helpers shared by the Tempo and Jaeger tests: a fast-retrying HTTP client, the
//! fixtures, servers that refuse or drop connections, and the client/server shape the
//! tracing agent relies on.

// Each test file uses a different subset.
#![allow(dead_code)]

use compass_adapters::http::{HttpClient, HttpConfig, RetryPolicy};
use compass_core::{Span, SpanKind, TimeRange};
use std::time::Duration;

/// 2023-11-14T22:13:20Z to ten minutes later; the fixtures' traces start at +10 s,
/// +310 s and +410 s.
pub fn range() -> TimeRange {
    TimeRange::new(1_700_000_000_000, 1_700_000_600_000)
}

/// The start of the fixtures' first trace, in epoch milliseconds.
pub const T0_MS: i64 = 1_700_000_010_000;

pub fn http(name: &str, url: &str) -> HttpClient {
    let mut config = HttpConfig::new(url);
    config.retry = RetryPolicy {
        max_retries: 2,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(2),
    };
    config.timeout = Duration::from_secs(5);
    HttpClient::new(name, &config).expect("a valid test URL")
}

pub fn fixture(backend: &str, file: &str) -> String {
    let path = format!("{}/testdata/{backend}/{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A loopback URL nothing listens on.
pub fn refused_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// A server that accepts connections and closes them without answering.
pub async fn closing_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            drop(socket);
        }
    });
    format!("http://127.0.0.1:{port}")
}

/// Assert the shape the tracing agent needs: every client span whose callee is traced
/// has `peer_service` set to the service of its server child. Returns how many calls.
pub fn assert_calls_have_server_children(spans: &[Span]) -> usize {
    let mut calls = 0;
    for client in spans.iter().filter(|s| s.kind == SpanKind::Client) {
        let servers: Vec<&Span> = spans
            .iter()
            .filter(|s| {
                s.trace_id == client.trace_id
                    && s.parent_id.as_deref() == Some(client.span_id.as_str())
                    && s.kind == SpanKind::Server
            })
            .collect();
        for server in &servers {
            assert_eq!(
                client.peer_service.as_deref(),
                Some(server.service.as_str()),
                "client span {} ({}) calls {}",
                client.span_id,
                client.service,
                server.service
            );
            calls += 1;
        }
    }
    calls
}

/// The span with id `span_id`.
pub fn span<'a>(spans: &'a [Span], span_id: &str) -> &'a Span {
    spans
        .iter()
        .find(|s| s.span_id == span_id)
        .unwrap_or_else(|| panic!("no span {span_id} in {spans:#?}"))
}
