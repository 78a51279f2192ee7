//! The walk over the traces a search found, written once for Tempo and Jaeger over
//! [`TraceBackend`]: a page is whole traces in search order until it holds at least
//! `limit` wanted spans, and the cursor is the list of trace ids still to fetch (so it
//! needs no state in the source and survives a search that would answer differently
//! when repeated). Traces are fetched `fetch_concurrency` at a time; a trace that is
//! gone or malformed becomes a page problem, a failing backend an error.

use super::common::{Trace, add_edges};
use async_trait::async_trait;
use compass_core::{CallGraph, Span, TimeRange};
use compass_engine::ports::{Page, SourceError, SourceResult};
use std::collections::HashMap;
use std::future::Future;

/// A trace backend the paging walk can drive.
#[async_trait]
pub(crate) trait TraceBackend: Clone + Send + Sync + 'static {
    fn source_name(&self) -> &str;
    /// How many traces to fetch at once.
    fn fetch_concurrency(&self) -> usize;
    /// Ids of at most `max_traces` traces in `range` (of `service` if given), oldest
    /// first; a backend whose search returns whole traces hands them over too.
    async fn search(
        &self,
        range: TimeRange,
        service: Option<&str>,
        max_traces: usize,
    ) -> SourceResult<Found>;
    /// One whole trace, finished. `range` may narrow the backend's lookup.
    async fn fetch_trace(&self, trace_id: &str, range: TimeRange) -> SourceResult<Trace>;
}

/// What a search found.
#[derive(Debug, Default)]
pub(crate) struct Found {
    pub ids: Vec<String>,
    pub prefetched: HashMap<String, Trace>,
    pub problems: Vec<String>,
}

/// One page of a walk over the traces a search found: whole traces, in search order,
/// until the page holds at least `limit` wanted spans; the cursor holds the ids left.
pub(crate) async fn fetch_page<B: TraceBackend>(
    backend: &B,
    range: TimeRange,
    service: Option<&str>,
    cursor: Option<&str>,
    limit: usize,
    search_limit: usize,
) -> SourceResult<Page<Span>> {
    let found = match cursor {
        Some(c) => Found {
            ids: decode_cursor(backend.source_name(), c)?,
            ..Found::default()
        },
        None => backend.search(range, service, search_limit).await?,
    };
    let Found {
        ids,
        mut prefetched,
        mut problems,
    } = found;
    let mut items = Vec::new();
    let mut pos = 0;
    'walk: while pos < ids.len() {
        let batch = &ids[pos..(pos + backend.fetch_concurrency().max(1)).min(ids.len())];
        let traces = fetch_traces(backend, batch, &mut prefetched, range).await?;
        for trace in traces {
            pos += 1;
            let trace = match trace {
                Ok(trace) => trace,
                Err(problem) => {
                    problems.push(problem);
                    continue;
                }
            };
            problems.extend(trace.problems);
            items.extend(
                trace
                    .spans
                    .into_iter()
                    .filter(|s| wanted(s, range, service)),
            );
            if items.len() >= limit.max(1) {
                break 'walk;
            }
        }
    }
    Ok(Page {
        items,
        next: encode_cursor(&ids[pos..]),
        problems,
    })
}

/// The call graph of at most `max_traces` traces found in `range`.
pub(crate) async fn derive_call_graph<B: TraceBackend>(
    backend: &B,
    range: TimeRange,
    max_traces: usize,
) -> SourceResult<CallGraph> {
    let Found {
        ids,
        mut prefetched,
        mut problems,
    } = backend.search(range, None, max_traces).await?;
    let mut graph = CallGraph::default();
    for batch in ids.chunks(backend.fetch_concurrency().max(1)) {
        for trace in fetch_traces(backend, batch, &mut prefetched, range).await? {
            match trace {
                Ok(trace) => {
                    add_edges(&mut graph, &trace.spans);
                    problems.extend(trace.problems);
                }
                Err(problem) => problems.push(problem),
            }
        }
    }
    if !problems.is_empty() {
        tracing::warn!(source = %backend.source_name(), problems = problems.len(),
            first = %problems[0], "call graph built from partial traces");
    }
    Ok(graph)
}

/// Fetch `ids` concurrently (prefetched ones are taken, not fetched), in order. A
/// trace that is gone or malformed becomes a problem; a failing backend an error.
async fn fetch_traces<B: TraceBackend>(
    backend: &B,
    ids: &[String],
    prefetched: &mut HashMap<String, Trace>,
    range: TimeRange,
) -> SourceResult<Vec<Result<Trace, String>>> {
    let mut results: Vec<Option<SourceResult<Trace>>> =
        ids.iter().map(|id| prefetched.remove(id).map(Ok)).collect();
    let missing: Vec<usize> = (0..ids.len()).filter(|&i| results[i].is_none()).collect();
    let tasks = missing.iter().map(|&i| {
        let (backend, id) = (backend.clone(), ids[i].clone());
        async move { backend.fetch_trace(&id, range).await }
    });
    let fetched = run_all(
        backend.source_name(),
        backend.fetch_concurrency(),
        tasks.collect(),
    )
    .await;
    for (i, result) in missing.into_iter().zip(fetched) {
        results[i] = Some(result);
    }
    results
        .into_iter()
        .flatten()
        .map(|r| match r {
            Ok(trace) => Ok(Ok(trace)),
            Err(e @ (SourceError::NotFound { .. } | SourceError::BadData { .. })) => {
                Ok(Err(format!("skipped a trace: {e}")))
            }
            Err(e) => Err(e),
        })
        .collect()
}

/// Run `tasks` on the runtime, at most `concurrency` at a time; results in task
/// order. Dropping the returned future aborts the tasks still running.
pub(crate) async fn run_all<T, F>(
    source_name: &str,
    concurrency: usize,
    tasks: Vec<F>,
) -> Vec<SourceResult<T>>
where
    T: Send + 'static,
    F: Future<Output = SourceResult<T>> + Send + 'static,
{
    let mut results: Vec<Option<SourceResult<T>>> = tasks.iter().map(|_| None).collect();
    let mut pending = tasks.into_iter().enumerate();
    let mut set = tokio::task::JoinSet::new();
    loop {
        while set.len() < concurrency.max(1) {
            let Some((i, task)) = pending.next() else {
                break;
            };
            set.spawn(async move { (i, task.await) });
        }
        match set.join_next().await {
            Some(Ok((i, result))) => results[i] = Some(result),
            // A panicked task leaves its slot empty (reported below).
            Some(Err(_)) => {}
            None => break,
        }
    }
    results
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| {
                Err(SourceError::Unavailable {
                    source_name: source_name.to_string(),
                    detail: "a concurrent request task failed; see the log for the panic".into(),
                })
            })
        })
        .collect()
}

/// Whether a span belongs in a page: it starts in `range` and, when a service is
/// asked for, is that service's (as the bundle source does).
fn wanted(span: &Span, range: TimeRange, service: Option<&str>) -> bool {
    range.contains(span.start) && service.is_none_or(|s| s == span.service)
}

/// The position in a walk: the trace ids found by the search still to be fetched.
const CURSOR_PREFIX: &str = "traces:";

fn encode_cursor(remaining: &[String]) -> Option<String> {
    (!remaining.is_empty()).then(|| format!("{CURSOR_PREFIX}{}", remaining.join(",")))
}

fn decode_cursor(source_name: &str, cursor: &str) -> SourceResult<Vec<String>> {
    let rejected = || SourceError::QueryRejected {
        source_name: source_name.to_string(),
        detail: format!(
            "cursor `{}` was not made by this source; start again without a cursor",
            cursor.chars().take(60).collect::<String>()
        ),
    };
    let ids = cursor.strip_prefix(CURSOR_PREFIX).ok_or_else(rejected)?;
    ids.split(',')
        .map(|id| is_hex_id(id).then(|| id.to_string()).ok_or_else(rejected))
        .collect()
}

fn is_hex_id(id: &str) -> bool {
    (1..=32).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_rejected() {
        let ids = vec!["ab12".to_string(), "cd34".to_string()];
        let cursor = encode_cursor(&ids).unwrap();
        assert_eq!(decode_cursor("tempo", &cursor).unwrap(), ids);
        assert_eq!(encode_cursor(&[]), None);
        let err = decode_cursor("tempo", "offset:42").unwrap_err();
        assert!(err.to_string().contains("start again"), "{err}");
        assert!(decode_cursor("tempo", "traces:ab,zz").is_err());
    }
}
