//! Ports: one trait per kind of data source. Every backend (bundle files, Prometheus,
//! Loki, Tempo/Jaeger, ...) implements the ones it can serve; agents only see these.

use async_trait::async_trait;
use compass_core::{
    CallGraph, ChangeEvent, LogLevel, LogRecord, MetricQuery, Series, Span, TimeRange,
};
use std::sync::Arc;
use thiserror::Error;

/// What went wrong talking to a data source.
#[derive(Debug, Clone, Error, PartialEq)]
pub enum SourceError {
    #[error("{source_name}: not found: {detail}")]
    NotFound { source_name: String, detail: String },
    /// The data is there but malformed (names the file and line where it can).
    #[error("{source_name}: bad data: {detail}")]
    BadData { source_name: String, detail: String },
    #[error("{source_name}: timed out after {after_ms} ms")]
    Timeout { source_name: String, after_ms: u64 },
    #[error("{source_name}: unavailable: {detail}")]
    Unavailable { source_name: String, detail: String },
    #[error("{source_name}: rejected query: {detail}")]
    QueryRejected { source_name: String, detail: String },
}

/// A coarse class of error, for retries and exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    BadInput,
    Timeout,
    Unavailable,
}

impl SourceError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            SourceError::NotFound { .. } => ErrorKind::NotFound,
            SourceError::BadData { .. } | SourceError::QueryRejected { .. } => ErrorKind::BadInput,
            SourceError::Timeout { .. } => ErrorKind::Timeout,
            SourceError::Unavailable { .. } => ErrorKind::Unavailable,
        }
    }
    /// Whether the circuit breaker should count this as a failure of the backend
    /// (rather than of the query or the data).
    pub fn is_backend_failure(&self) -> bool {
        matches!(self.kind(), ErrorKind::Timeout | ErrorKind::Unavailable)
    }
}

pub type SourceResult<T> = Result<T, SourceError>;

/// A page of results plus problems met while reading it (malformed lines skipped,
/// each named with file and line). Problems make the reading agent "degraded".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Opaque cursor for the next page; `None` when done.
    pub next: Option<String>,
    pub problems: Vec<String>,
}

/// Which logs to fetch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogQuery {
    pub service: Option<String>,
    pub min_level: Option<LogLevel>,
}

impl LogQuery {
    /// A LogQL rendering of the query, for evidence.
    pub fn to_logql(&self, service_label: &str) -> String {
        let sel = match &self.service {
            Some(s) => format!("{{{service_label}=\"{s}\"}}"),
            None => format!("{{{service_label}=~\".+\"}}"),
        };
        match self.min_level {
            Some(l) if l >= LogLevel::Error => format!("{sel} | json | level=~\"ERROR|FATAL\""),
            Some(l) if l >= LogLevel::Warn => format!("{sel} | json | level=~\"WARN|ERROR|FATAL\""),
            _ => sel,
        }
    }
}

#[async_trait]
pub trait MetricsSource: Send + Sync {
    /// The configured name of this source (appears in evidence).
    fn name(&self) -> &str;
    /// The query text this source sends for `query`, for evidence. The default is
    /// [`MetricQuery::to_promql`].
    fn query_text(&self, query: &MetricQuery) -> String {
        query.to_promql()
    }
    /// Evaluate `query` over `range` at `step_ms` resolution.
    async fn query_range(
        &self,
        query: &MetricQuery,
        range: TimeRange,
        step_ms: i64,
    ) -> SourceResult<Vec<Series>>;
    /// Values of a label over a range (e.g. every `service`).
    async fn label_values(&self, label: &str, range: TimeRange) -> SourceResult<Vec<String>>;
}

#[async_trait]
pub trait LogSource: Send + Sync {
    fn name(&self) -> &str;
    /// The query text this source sends (or would send) for `query`, for evidence.
    /// The default is [`LogQuery::to_logql`].
    fn query_text(&self, query: &LogQuery, service_label: &str) -> String {
        query.to_logql(service_label)
    }
    /// Log records in `range` in time order, at most `limit` per page.
    async fn fetch_logs(
        &self,
        query: &LogQuery,
        range: TimeRange,
        cursor: Option<&str>,
        limit: usize,
    ) -> SourceResult<Page<LogRecord>>;
}

#[async_trait]
pub trait TraceSource: Send + Sync {
    fn name(&self) -> &str;
    /// Spans whose start is in `range`, optionally of one service, at most `limit` per page.
    async fn fetch_spans(
        &self,
        range: TimeRange,
        service: Option<&str>,
        cursor: Option<&str>,
        limit: usize,
    ) -> SourceResult<Page<Span>>;
    /// Who calls whom during `range`.
    async fn call_graph(&self, range: TimeRange) -> SourceResult<CallGraph>;
}

#[async_trait]
pub trait ChangeSource: Send + Sync {
    fn name(&self) -> &str;
    /// Deploys and config changes in `range`, in time order.
    async fn fetch_changes(&self, range: TimeRange) -> SourceResult<Vec<ChangeEvent>>;
}

/// The data sources of one investigation. Any may be absent; agents that need an
/// absent source report themselves degraded.
#[derive(Clone, Default)]
pub struct DataSources {
    pub metrics: Option<Arc<dyn MetricsSource>>,
    pub logs: Option<Arc<dyn LogSource>>,
    pub traces: Option<Arc<dyn TraceSource>>,
    pub changes: Option<Arc<dyn ChangeSource>>,
}

impl std::fmt::Debug for DataSources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataSources")
            .field(
                "metrics",
                &self.metrics.as_ref().map(|s| s.name().to_string()),
            )
            .field("logs", &self.logs.as_ref().map(|s| s.name().to_string()))
            .field(
                "traces",
                &self.traces.as_ref().map(|s| s.name().to_string()),
            )
            .field(
                "changes",
                &self.changes.as_ref().map(|s| s.name().to_string()),
            )
            .finish()
    }
}

/// Pick a query step that keeps a range to at most `max_points` points, rounded up to
/// a whole multiple of `min_step_ms`.
pub fn step_for(range: TimeRange, min_step_ms: i64, max_points: i64) -> i64 {
    let raw = (range.duration_ms() / max_points.max(1)).max(min_step_ms);
    (raw + min_step_ms - 1) / min_step_ms * min_step_ms
}
