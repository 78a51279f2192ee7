//! One case's view of a Nezha day behind the metrics, log and trace ports. Nothing
//! after the case's cutoff is visible; minute files are parsed once per case.

use super::NezhaDay;
use super::files::{read_log_file, read_trace_file};
use crate::bundle::metrics::{MetricStore, StoredSeries};
use crate::bundle::ports::blocking;
use crate::bundle::promql;
use async_trait::async_trait;
use compass_core::{CallGraph, EpochMs, LogRecord, MetricQuery, Series, Span, SpanKind, TimeRange};
use compass_engine::{
    LogQuery, LogSource, MetricsSource, Page, SourceError, SourceResult, TraceSource,
};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

const SOURCE: &str = "nezha";
/// A minute file holds about the 60 s ending at its name, give or take a few seconds.
const FILE_BEFORE_MS: EpochMs = 75_000;
const FILE_AFTER_MS: EpochMs = 15_000;

type Parsed<T> = Arc<(Vec<T>, Vec<String>)>;

/// The sources of one case (see [`NezhaDay::sources`]); clones share the caches.
#[derive(Debug, Clone)]
pub struct NezhaSource(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    day: Arc<NezhaDay>,
    cutoff: EpochMs,
    metrics: OnceLock<MetricStore>,
    logs: Mutex<HashMap<PathBuf, Parsed<LogRecord>>>,
    spans: Mutex<HashMap<PathBuf, Parsed<Span>>>,
}

fn bad(e: super::NezhaError) -> SourceError {
    SourceError::BadData {
        source_name: SOURCE.to_string(),
        detail: e.to_string(),
    }
}

/// Offset cursors over an in-memory result.
fn page<T: Clone>(
    items: &[T],
    cursor: Option<&str>,
    limit: usize,
    problems: Vec<String>,
) -> SourceResult<Page<T>> {
    let start = match cursor {
        None => 0,
        Some(c) => c.parse::<usize>().map_err(|_| SourceError::QueryRejected {
            source_name: SOURCE.to_string(),
            detail: format!("unknown cursor {c:?}"),
        })?,
    };
    let end = (start + limit.max(1)).min(items.len());
    Ok(Page {
        items: items.get(start..end).unwrap_or_default().to_vec(),
        next: (end < items.len()).then(|| end.to_string()),
        problems: if start == 0 { problems } else { Vec::new() },
    })
}

impl NezhaSource {
    pub(super) fn new(day: Arc<NezhaDay>, cutoff: EpochMs) -> Self {
        Self(Arc::new(Inner {
            day,
            cutoff,
            metrics: OnceLock::new(),
            logs: Mutex::new(HashMap::new()),
            spans: Mutex::new(HashMap::new()),
        }))
    }
}

impl Inner {
    /// The day's metrics up to the cutoff.
    fn metric_store(&self) -> &MetricStore {
        self.metrics.get_or_init(|| {
            let mut store = MetricStore::default();
            for s in &self.day.metrics.series {
                let n = s.times.partition_point(|&t| t <= self.cutoff);
                store.push(StoredSeries {
                    name: s.name.clone(),
                    labels: s.labels.clone(),
                    times: s.times[..n].to_vec(),
                    values: s.values[..n].to_vec(),
                });
            }
            store
        })
    }

    /// The visible part of `range`.
    fn visible(&self, range: TimeRange) -> TimeRange {
        TimeRange::new(range.start, range.end.min(self.cutoff + 1))
    }

    /// Minute files that may hold records of `range`.
    fn files(index: &BTreeMap<EpochMs, PathBuf>, range: TimeRange) -> Vec<PathBuf> {
        if range.is_empty() {
            return Vec::new();
        }
        index
            .range(range.start - FILE_AFTER_MS..range.end + FILE_BEFORE_MS)
            .map(|(_, p)| p.clone())
            .collect()
    }

    fn parsed<T>(
        cache: &Mutex<HashMap<PathBuf, Parsed<T>>>,
        path: &PathBuf,
        read: impl FnOnce(&std::path::Path, &mut Vec<String>) -> Result<Vec<T>, super::NezhaError>,
    ) -> SourceResult<Parsed<T>> {
        if let Some(hit) = cache.lock().expect("cache lock").get(path) {
            return Ok(hit.clone());
        }
        let mut problems = Vec::new();
        let items = read(path, &mut problems).map_err(bad)?;
        let parsed = Arc::new((items, problems));
        cache
            .lock()
            .expect("cache lock")
            .insert(path.clone(), parsed.clone());
        Ok(parsed)
    }

    fn logs_in(
        &self,
        query: &LogQuery,
        range: TimeRange,
    ) -> SourceResult<(Vec<LogRecord>, Vec<String>)> {
        let range = self.visible(range);
        let mut out = Vec::new();
        let mut problems = Vec::new();
        for path in Self::files(&self.day.log_files, range) {
            let parsed = Self::parsed(&self.logs, &path, read_log_file)?;
            problems.extend(parsed.1.iter().cloned());
            out.extend(
                parsed
                    .0
                    .iter()
                    .filter(|r| {
                        range.contains(r.ts)
                            && query.service.as_ref().is_none_or(|s| *s == r.service)
                            && query.min_level.is_none_or(|l| r.level >= l)
                    })
                    .cloned(),
            );
        }
        out.sort_by_key(|r| r.ts);
        Ok((out, problems))
    }

    fn spans_in(
        &self,
        range: TimeRange,
        service: Option<&str>,
    ) -> SourceResult<(Vec<Span>, Vec<String>)> {
        let range = self.visible(range);
        let mut out = Vec::new();
        let mut problems = Vec::new();
        for path in Self::files(&self.day.trace_files, range) {
            let parsed = Self::parsed(&self.spans, &path, read_trace_file)?;
            problems.extend(parsed.1.iter().cloned());
            out.extend(
                parsed
                    .0
                    .iter()
                    .filter(|s| range.contains(s.start) && service.is_none_or(|x| x == s.service))
                    .cloned(),
            );
        }
        out.sort_by_key(|s| s.start);
        Ok((out, problems))
    }
}

#[async_trait]
impl MetricsSource for NezhaSource {
    fn name(&self) -> &str {
        SOURCE
    }

    async fn query_range(
        &self,
        query: &MetricQuery,
        range: TimeRange,
        step_ms: i64,
    ) -> SourceResult<Vec<Series>> {
        promql::check(query, range, step_ms).map_err(|detail| SourceError::QueryRejected {
            source_name: SOURCE.to_string(),
            detail: format!("{detail}: {}", query.to_promql()),
        })?;
        let range = self.0.visible(range);
        Ok(promql::evaluate(
            self.0.metric_store(),
            query,
            range,
            step_ms,
        ))
    }

    async fn label_values(&self, label: &str, range: TimeRange) -> SourceResult<Vec<String>> {
        let range = self.0.visible(range);
        Ok(self.0.metric_store().label_values(label, range))
    }
}

#[async_trait]
impl LogSource for NezhaSource {
    fn name(&self) -> &str {
        SOURCE
    }

    async fn fetch_logs(
        &self,
        query: &LogQuery,
        range: TimeRange,
        cursor: Option<&str>,
        limit: usize,
    ) -> SourceResult<Page<LogRecord>> {
        let this = self.0.clone();
        let (query, cursor) = (query.clone(), cursor.map(str::to_string));
        blocking(SOURCE, move || {
            let (records, problems) = this.logs_in(&query, range)?;
            page(&records, cursor.as_deref(), limit, problems)
        })
        .await
    }
}

#[async_trait]
impl TraceSource for NezhaSource {
    fn name(&self) -> &str {
        SOURCE
    }

    async fn fetch_spans(
        &self,
        range: TimeRange,
        service: Option<&str>,
        cursor: Option<&str>,
        limit: usize,
    ) -> SourceResult<Page<Span>> {
        let this = self.0.clone();
        let (service, cursor) = (service.map(str::to_string), cursor.map(str::to_string));
        blocking(SOURCE, move || {
            let (spans, problems) = this.spans_in(range, service.as_deref())?;
            page(&spans, cursor.as_deref(), limit, problems)
        })
        .await
    }

    async fn call_graph(&self, range: TimeRange) -> SourceResult<CallGraph> {
        if let Some(graph) = &self.0.day.dependency {
            return Ok(graph.clone());
        }
        let this = self.0.clone();
        blocking(SOURCE, move || {
            let (spans, _) = this.spans_in(range, None)?;
            let mut graph = CallGraph::default();
            for s in spans.iter().filter(|s| s.kind == SpanKind::Client) {
                if let Some(peer) = &s.peer_service {
                    graph.add(&s.service, peer);
                }
            }
            Ok(graph)
        })
        .await
    }
}
