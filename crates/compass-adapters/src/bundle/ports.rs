//! The four ports of a bundle: thin handles on a shared `BundleSource` whose async
//! methods move the file work onto tokio's blocking pool, plus that work itself
//! (paging logs and spans, the call graph, change events, metric queries).

use super::error::read_error;
use super::jsonl::{JsonlFile, LineResult};
use super::records::{LogLine, SpanLine, log_timestamp, parse_event, quick_level};
use super::{
    BundleSource, CHANGES_SOURCE, EVENTS, EventsFile, LOGS_SOURCE, METRICS_SOURCE, MetricsFile,
    TRACES_SOURCE, metrics, promql,
};
use async_trait::async_trait;
use compass_core::{CallGraph, ChangeEvent, LogRecord, MetricQuery, Series, Span, TimeRange};
use compass_engine::{
    ChangeSource, LogQuery, LogSource, MetricsSource, Page, SourceError, SourceResult, TraceSource,
};
use std::collections::{BTreeSet, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::ops::ControlFlow;
use std::sync::Arc;

/// Run file work on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    source_name: &str,
    work: impl FnOnce() -> SourceResult<T> + Send + 'static,
) -> SourceResult<T> {
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|e| {
        Err(SourceError::Unavailable {
            source_name: source_name.to_string(),
            detail: format!("reading the bundle failed: {e}"),
        })
    })
}

fn absent(source_name: &str, file: &str) -> SourceError {
    SourceError::NotFound {
        source_name: source_name.to_string(),
        detail: format!("the bundle has no {file}"),
    }
}

/// `metrics.om` behind [`MetricsSource`] (`bundle:metrics`).
#[derive(Debug, Clone)]
pub struct BundleMetrics(Arc<BundleSource>);

/// `logs.jsonl` behind [`LogSource`] (`bundle:logs`).
#[derive(Debug, Clone)]
pub struct BundleLogs(Arc<BundleSource>);

/// `traces.jsonl` behind [`TraceSource`] (`bundle:traces`).
#[derive(Debug, Clone)]
pub struct BundleTraces(Arc<BundleSource>);

/// `events.jsonl` behind [`ChangeSource`] (`bundle:changes`).
#[derive(Debug, Clone)]
pub struct BundleChanges(Arc<BundleSource>);

impl BundleMetrics {
    pub(super) fn new(bundle: &Arc<BundleSource>) -> Self {
        Self(bundle.clone())
    }
}
impl BundleLogs {
    pub(super) fn new(bundle: &Arc<BundleSource>) -> Self {
        Self(bundle.clone())
    }
}
impl BundleTraces {
    pub(super) fn new(bundle: &Arc<BundleSource>) -> Self {
        Self(bundle.clone())
    }
}
impl BundleChanges {
    pub(super) fn new(bundle: &Arc<BundleSource>) -> Self {
        Self(bundle.clone())
    }
}

#[async_trait]
impl MetricsSource for BundleMetrics {
    fn name(&self) -> &str {
        METRICS_SOURCE
    }

    async fn query_range(
        &self,
        query: &MetricQuery,
        range: TimeRange,
        step_ms: i64,
    ) -> SourceResult<Vec<Series>> {
        promql::check(query, range, step_ms).map_err(|detail| SourceError::QueryRejected {
            source_name: METRICS_SOURCE.to_string(),
            detail: format!("{detail}: {}", query.to_promql()),
        })?;
        let (bundle, query) = (self.0.clone(), query.clone());
        blocking(METRICS_SOURCE, move || {
            let store = bundle.metric_store()?;
            Ok(promql::evaluate(store, &query, range, step_ms))
        })
        .await
    }

    async fn label_values(&self, label: &str, range: TimeRange) -> SourceResult<Vec<String>> {
        let (bundle, label) = (self.0.clone(), label.to_string());
        blocking(METRICS_SOURCE, move || {
            Ok(bundle.metric_store()?.label_values(&label, range))
        })
        .await
    }
}

#[async_trait]
impl LogSource for BundleLogs {
    fn name(&self) -> &str {
        LOGS_SOURCE
    }

    async fn fetch_logs(
        &self,
        query: &LogQuery,
        range: TimeRange,
        cursor: Option<&str>,
        limit: usize,
    ) -> SourceResult<Page<LogRecord>> {
        let (bundle, query) = (self.0.clone(), query.clone());
        let cursor = cursor.map(str::to_string);
        blocking(LOGS_SOURCE, move || {
            let file = bundle
                .logs
                .as_ref()
                .ok_or_else(|| absent(LOGS_SOURCE, "logs.jsonl"))?;
            let path = file.path.display().to_string();
            // A line that does not even contain the wanted service's quoted name, or whose
            // level is below the wanted one, cannot match: skip its full parse.
            let quoted = query.service.as_deref().map(|s| format!("\"{s}\""));
            let prefilter = quoted
                .as_deref()
                .map(|q| memchr::memmem::Finder::new(q.as_bytes()));
            file.read_page(
                range,
                cursor.as_deref(),
                limit,
                |line, pos| -> LineResult<_> {
                    let unwanted = prefilter.as_ref().is_some_and(|f| f.find(line).is_none())
                        || query
                            .min_level
                            .is_some_and(|min| quick_level(line).is_some_and(|l| l < min));
                    if unwanted && let Some(ts) = log_timestamp(line) {
                        return Ok((ts, None));
                    }
                    let log = LogLine::parse(line)?;
                    let wanted = range.contains(log.ts)
                        && query.min_level.is_none_or(|min| log.level >= min)
                        && query.service.as_deref().is_none_or(|s| s == log.service());
                    Ok((log.ts, wanted.then(|| log.into_record(&path, pos.line))))
                },
            )
        })
        .await
    }
}

#[async_trait]
impl TraceSource for BundleTraces {
    fn name(&self) -> &str {
        TRACES_SOURCE
    }

    async fn fetch_spans(
        &self,
        range: TimeRange,
        service: Option<&str>,
        cursor: Option<&str>,
        limit: usize,
    ) -> SourceResult<Page<Span>> {
        let bundle = self.0.clone();
        let service = service.map(str::to_string);
        let cursor = cursor.map(str::to_string);
        blocking(TRACES_SOURCE, move || {
            let file = bundle.traces_file()?;
            file.read_page(
                range,
                cursor.as_deref(),
                limit,
                |line, _| -> LineResult<_> {
                    let span = SpanLine::parse(line)?;
                    let wanted = range.contains(span.start)
                        && service.as_deref().is_none_or(|s| s == span.service());
                    Ok((span.start, wanted.then(|| span.into_span())))
                },
            )
        })
        .await
    }

    async fn call_graph(&self, range: TimeRange) -> SourceResult<CallGraph> {
        let bundle = self.0.clone();
        blocking(TRACES_SOURCE, move || {
            let file = bundle.traces_file()?;
            let mut builder = CallGraphBuilder::default();
            let malformed = file.for_each_in_range(range, |line| {
                let span = SpanLine::parse(line)?;
                if range.contains(span.start) {
                    builder.add(&span);
                }
                Ok(span.start)
            })?;
            if malformed > 0 {
                tracing::warn!(
                    source = TRACES_SOURCE,
                    malformed,
                    "skipped malformed span lines"
                );
            }
            Ok(builder.finish())
        })
        .await
    }
}

#[async_trait]
impl ChangeSource for BundleChanges {
    fn name(&self) -> &str {
        CHANGES_SOURCE
    }

    async fn fetch_changes(&self, range: TimeRange) -> SourceResult<Vec<ChangeEvent>> {
        let bundle = self.0.clone();
        blocking(CHANGES_SOURCE, move || {
            let file = bundle
                .events
                .as_ref()
                .ok_or_else(|| absent(CHANGES_SOURCE, EVENTS))?;
            let events = file.events.get_or_init(|| load_events(file)).as_ref();
            let events = events.map_err(Clone::clone)?;
            Ok(events
                .iter()
                .filter(|e| range.contains(e.ts))
                .cloned()
                .collect())
        })
        .await
    }
}

impl BundleSource {
    fn metric_store(&self) -> SourceResult<&metrics::MetricStore> {
        let file = self
            .metrics
            .as_ref()
            .ok_or_else(|| absent(METRICS_SOURCE, "metrics.om"))?;
        file.store
            .get_or_init(|| load_metrics(file))
            .as_ref()
            .map_err(Clone::clone)
    }

    fn traces_file(&self) -> SourceResult<&JsonlFile> {
        self.traces
            .as_ref()
            .ok_or_else(|| absent(TRACES_SOURCE, "traces.jsonl"))
    }
}

fn load_metrics(file: &MetricsFile) -> SourceResult<metrics::MetricStore> {
    let started = std::time::Instant::now();
    let store = metrics::load(&file.path).map_err(|e| match e {
        metrics::LoadError::Io(e) => read_error(METRICS_SOURCE, &file.path, &e),
        metrics::LoadError::Bad(detail) => SourceError::BadData {
            source_name: METRICS_SOURCE.to_string(),
            detail: format!("{detail} (in {})", file.path.display()),
        },
    })?;
    tracing::debug!(
        file = %file.path.display(),
        series = store.series.len(),
        samples = store.samples(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "loaded metrics"
    );
    Ok(store)
}

fn load_events(file: &EventsFile) -> SourceResult<Vec<ChangeEvent>> {
    let mut events = Vec::new();
    let mut failure = None;
    super::jsonl::stream_lines(&file.path, super::jsonl::Position::START, |line, pos| {
        if line.trim_ascii().is_empty() {
            return ControlFlow::Continue(());
        }
        match parse_event(line) {
            Ok(event) => events.push(event),
            Err(what) => {
                failure = Some(format!("{EVENTS} line {}: {what}", pos.line));
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    })
    .map_err(|e| read_error(CHANGES_SOURCE, &file.path, &e))?;
    if let Some(detail) = failure {
        return Err(SourceError::BadData {
            source_name: CHANGES_SOURCE.to_string(),
            detail: format!("{detail} (in {})", file.path.display()),
        });
    }
    events.sort_by_key(|e| e.ts);
    Ok(events)
}

/// Span key: a hash of trace id and span id (span ids alone may repeat across traces).
fn span_key(trace_id: &str, span_id: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    (trace_id, span_id).hash(&mut hasher);
    hasher.finish()
}

/// Spans older than this (by start, relative to the newest seen) are forgotten when
/// matching children to parents, which bounds memory on long ranges.
const PARENT_HORIZON_MS: i64 = 5 * 60 * 1000;

/// Call-graph edges from client spans (`service -> peer_service`) and from parent and
/// child spans in different services. Memory is bounded: span ids are remembered for
/// two generations of [`PARENT_HORIZON_MS`].
#[derive(Debug, Default)]
struct CallGraphBuilder {
    services: HashMap<String, u32>,
    names: Vec<String>,
    edges: BTreeSet<(u32, u32)>,
    /// Span key -> service, for this generation and the one before.
    spans: [HashMap<u64, u32>; 2],
    /// Parent key -> services of children seen before their parent.
    orphans: [HashMap<u64, Vec<u32>>; 2],
    generation_start: Option<i64>,
}

impl CallGraphBuilder {
    fn intern(&mut self, service: &str) -> u32 {
        if let Some(&id) = self.services.get(service) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(service.to_string());
        self.services.insert(service.to_string(), id);
        id
    }

    fn add(&mut self, span: &SpanLine<'_>) {
        let started = *self.generation_start.get_or_insert(span.start);
        if span.start - started >= PARENT_HORIZON_MS {
            self.spans.swap(0, 1);
            self.spans[0].clear();
            self.orphans.swap(0, 1);
            self.orphans[0].clear();
            self.generation_start = Some(span.start);
        }
        let service = self.intern(span.service());
        if span.kind == compass_core::SpanKind::Client
            && let Some(peer) = span.peer_service()
        {
            let peer = self.intern(peer);
            self.edges.insert((service, peer));
        }
        let key = span_key(span.trace_id(), span.span_id());
        self.spans[0].insert(key, service);
        for generation in 0..2 {
            if let Some(children) = self.orphans[generation].remove(&key) {
                self.edges
                    .extend(children.into_iter().map(|child| (service, child)));
            }
        }
        if let Some(parent_id) = span.parent_id() {
            let parent_key = span_key(span.trace_id(), parent_id);
            match self.spans[0]
                .get(&parent_key)
                .or_else(|| self.spans[1].get(&parent_key))
            {
                Some(&parent) => {
                    self.edges.insert((parent, service));
                }
                None => self.orphans[0].entry(parent_key).or_default().push(service),
            }
        }
    }

    fn finish(self) -> CallGraph {
        let mut graph = CallGraph::default();
        for (caller, callee) in self.edges {
            graph.add(&self.names[caller as usize], &self.names[callee as usize]);
        }
        graph
    }
}
