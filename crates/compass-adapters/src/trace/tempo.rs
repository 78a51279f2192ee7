//! Grafana Tempo (2.x HTTP API) behind the trace port.
//!
//! Search is `GET /api/search` with a TraceQL `q`: `{resource.service.name="<svc>"}`
//! for one service, `{}` for all. TraceQL is the search Tempo 2.x documents first;
//! the logfmt `tags` parameter is its older tag search, which Grafana marks
//! deprecated. `start`/`end` are unix seconds, `limit` is per request and `spss=1`
//! keeps the matched spans out of the answer (only trace ids are used). Tempo
//! returns the first traces its parallel search meets, not a spread over the range,
//! so the range is searched in `search_slices` equal slices: the baseline minutes get
//! traces as well as the incident ones.
//!
//! Each trace is then fetched whole with `GET /api/traces/<id>` (the range, widened
//! by `lookup_margin`, as `start`/`end` so Tempo reads only those blocks). Its body is
//! OTLP-like JSON: top-level `batches` (the `/api/v2/traces` form
//! `{"trace":{"resourceSpans":[...]}}` and plain OTLP `resourceSpans` are read too)
//! with **base64** trace and span ids, which become lowercase hex (hex ids are kept).
//! Service: resource attribute `service.name`. Kind: OTLP `kind`, by name or number
//! (producer as client, consumer as server). Error: `status.code` is
//! `STATUS_CODE_ERROR` or 2. Peers: see `super::common`.
//!
//! Paging: `fetch_spans` walks the traces found, whole traces per page, until a page
//! holds at least `limit` spans (so a page exceeds `limit` by at most one trace); the
//! cursor is the list of trace ids still to fetch. Only spans starting in the range,
//! and of the service if one is asked for, are returned, as the bundle source does.

use super::common::{self, ADDRESS_KEYS, Draft, Tally, Trace, UNKNOWN_SERVICE};
use super::walk::{self, Found, TraceBackend};
use crate::http::HttpClient;
use async_trait::async_trait;
use compass_core::{CallGraph, Span, SpanKind, SpanStatus, TimeRange};
use compass_engine::ports::{Page, SourceError, SourceResult, TraceSource};
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashSet;
use std::time::Duration;

/// Settings of one Tempo source.
#[derive(Debug, Clone, PartialEq)]
pub struct TempoConfig {
    /// Most traces one `fetch_spans` walk covers (shared among the slices).
    pub search_limit: usize,
    /// Equal slices the range is searched in.
    pub search_slices: usize,
    /// Most traces the call graph is derived from.
    pub max_traces: usize,
    /// Traces fetched at once.
    pub fetch_concurrency: usize,
    /// How far beyond the range a trace fetched by id may lie.
    pub lookup_margin: Duration,
}

impl Default for TempoConfig {
    fn default() -> Self {
        Self {
            search_limit: 200,
            search_slices: 10,
            max_traces: 100,
            fetch_concurrency: 8,
            lookup_margin: Duration::from_secs(3600),
        }
    }
}

/// A Tempo query frontend (or monolithic Tempo).
#[derive(Debug, Clone)]
pub struct TempoSource {
    http: HttpClient,
    config: TempoConfig,
}

#[derive(Debug, Deserialize)]
struct SearchResponse {
    #[serde(default)]
    traces: Option<Vec<SearchTrace>>,
}

#[derive(Debug, Deserialize)]
struct SearchTrace {
    #[serde(rename = "traceID")]
    trace_id: String,
    #[serde(rename = "startTimeUnixNano", default)]
    start: Option<Value>,
}

/// `/api/traces` (`batches`), `/api/v2/traces` (`trace`) or plain OTLP (`resourceSpans`).
#[derive(Debug, Default, Deserialize)]
struct TraceBody {
    #[serde(default)]
    batches: Option<Vec<ResourceSpans>>,
    #[serde(rename = "resourceSpans", default)]
    resource_spans: Option<Vec<ResourceSpans>>,
    #[serde(default)]
    trace: Option<Box<TraceBody>>,
}

#[derive(Debug, Deserialize)]
struct ResourceSpans {
    #[serde(default)]
    resource: Option<Attributes>,
    #[serde(rename = "scopeSpans", alias = "instrumentationLibrarySpans", default)]
    scope_spans: Option<Vec<ScopeSpans>>,
}

#[derive(Debug, Deserialize)]
struct Attributes {
    #[serde(default)]
    attributes: Option<Vec<KeyValue>>,
}

#[derive(Debug, Deserialize)]
struct ScopeSpans {
    #[serde(default)]
    spans: Option<Vec<OtlpSpan>>,
}

#[derive(Debug, Deserialize)]
struct KeyValue {
    key: String,
    #[serde(default)]
    value: Option<AnyValue>,
}

#[derive(Debug, Deserialize)]
struct AnyValue {
    #[serde(rename = "stringValue", default)]
    string_value: Option<String>,
}

#[derive(Debug, Deserialize)]
struct OtlpSpan {
    #[serde(rename = "traceId", default)]
    trace_id: Option<String>,
    #[serde(rename = "spanId", default)]
    span_id: Option<String>,
    #[serde(rename = "parentSpanId", default)]
    parent_span_id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    kind: Option<Value>,
    #[serde(rename = "startTimeUnixNano", default)]
    start: Option<Value>,
    #[serde(rename = "endTimeUnixNano", default)]
    end: Option<Value>,
    #[serde(default)]
    attributes: Option<Vec<KeyValue>>,
    #[serde(default)]
    status: Option<Status>,
}

#[derive(Debug, Deserialize)]
struct Status {
    #[serde(default)]
    code: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct BuildInfo {
    version: String,
}

/// The string value of attribute `key`.
fn attribute<'a>(attributes: &'a Option<Vec<KeyValue>>, key: &str) -> Option<&'a str> {
    attributes
        .as_deref()?
        .iter()
        .find(|kv| kv.key == key)?
        .value
        .as_ref()?
        .string_value
        .as_deref()
        .filter(|v| !v.trim().is_empty())
}

/// Nanoseconds as OTLP/JSON writes them: a decimal string (or a plain number).
fn nanos(value: &Option<Value>) -> Option<i128> {
    match value.as_ref()? {
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.as_u64().map(i128::from),
        _ => None,
    }
}

fn kind_of(value: &Option<Value>) -> SpanKind {
    match value {
        Some(Value::String(name)) => common::kind_from_name(name),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(2 | 5) => SpanKind::Server,
            Some(3 | 4) => SpanKind::Client,
            _ => SpanKind::Internal,
        },
        _ => SpanKind::Internal,
    }
}

fn status_of(status: &Option<Status>) -> SpanStatus {
    let error = match status.as_ref().and_then(|s| s.code.as_ref()) {
        Some(Value::String(code)) => code.eq_ignore_ascii_case("STATUS_CODE_ERROR"),
        Some(Value::Number(n)) => n.as_u64() == Some(2),
        _ => false,
    };
    if error {
        SpanStatus::Error
    } else {
        SpanStatus::Ok
    }
}

/// Unix seconds covering `ms` (rounded down, or up for an end).
fn seconds(ms: i64, round_up: bool) -> String {
    let s = if round_up {
        ms.div_euclid(1000) + i64::from(ms.rem_euclid(1000) != 0)
    } else {
        ms.div_euclid(1000)
    };
    s.to_string()
}

/// Convert one trace body; `trace_id` (as asked) fills in spans that lack their own.
fn convert(trace_id: &str, body: TraceBody) -> Trace {
    let mut body = body;
    while let Some(inner) = body.trace.take() {
        body = *inner;
    }
    let batches = body
        .batches
        .into_iter()
        .chain(body.resource_spans)
        .flatten();
    let mut tally = Tally::default();
    let mut drafts = Vec::new();
    for batch in batches {
        let resource = batch.resource.and_then(|r| r.attributes);
        let service = attribute(&resource, "service.name");
        for span in batch
            .scope_spans
            .into_iter()
            .flatten()
            .flat_map(|s| s.spans)
            .flatten()
        {
            if service.is_none() {
                tally.note("without service.name (named unknown_service)");
            }
            let service = service.unwrap_or(UNKNOWN_SERVICE);
            match draft(trace_id, service, span) {
                Ok(d) => drafts.push(d),
                Err(what) => tally.note(what),
            }
        }
    }
    let mut problems = tally.into_problems(trace_id);
    if drafts.is_empty() {
        problems.push(format!("trace {trace_id}: no usable spans in the answer"));
    }
    Trace {
        spans: common::finish_trace(drafts),
        problems,
    }
}

fn draft(trace_id: &str, service: &str, span: OtlpSpan) -> Result<Draft, &'static str> {
    let span_id = span
        .span_id
        .as_deref()
        .and_then(common::normalise_id)
        .ok_or("skipped: no valid spanId")?;
    let (start, end) = nanos(&span.start)
        .zip(nanos(&span.end))
        .filter(|(s, e)| e >= s)
        .ok_or("skipped: missing or reversed start/end times")?;
    let kind = kind_of(&span.kind);
    let address_peer = ADDRESS_KEYS
        .iter()
        .find_map(|k| attribute(&span.attributes, k))
        .and_then(common::host_of);
    Ok(Draft {
        span: Span {
            trace_id: span
                .trace_id
                .as_deref()
                .and_then(common::normalise_id)
                .unwrap_or_else(|| trace_id.to_ascii_lowercase()),
            span_id,
            parent_id: span
                .parent_span_id
                .as_deref()
                .and_then(common::normalise_id),
            service: service.to_string(),
            operation: span.name.unwrap_or_default(),
            kind,
            start: (start / 1_000_000) as i64,
            duration_ms: (end - start) as f64 / 1e6,
            status: status_of(&span.status),
            peer_service: attribute(&span.attributes, "peer.service").map(str::to_string),
        },
        address_peer,
    })
}

impl TempoSource {
    pub fn new(http: HttpClient, config: TempoConfig) -> Self {
        Self { http, config }
    }

    fn bad(&self, detail: String) -> SourceError {
        SourceError::BadData {
            source_name: self.http.name().to_string(),
            detail,
        }
    }

    /// `GET /api/status/buildinfo` ("Tempo 2.6.1"), or `GET /ready` where that is absent.
    pub async fn ping(&self) -> SourceResult<String> {
        match self
            .http
            .get_json::<BuildInfo>("api/status/buildinfo", &[])
            .await
        {
            Ok(info) => Ok(format!("Tempo {}", info.version)),
            Err(SourceError::NotFound { .. }) => {
                let ready = self.http.get_text("ready").await?;
                Ok(format!("Tempo, {}", ready.trim()))
            }
            Err(e) => Err(e),
        }
    }

    /// The TraceQL that selects the traces of `service` (every trace without one).
    pub fn traceql(service: Option<&str>) -> String {
        match service {
            Some(s) => {
                let quoted = s.replace('\\', "\\\\").replace('"', "\\\"");
                format!("{{resource.service.name=\"{quoted}\"}}")
            }
            None => "{}".to_string(),
        }
    }

    /// `GET /api/search`: ids (lowercase hex) of at most `limit` traces matching the
    /// TraceQL `query` in `range`, oldest first.
    pub async fn search(
        &self,
        query: &str,
        range: TimeRange,
        limit: usize,
    ) -> SourceResult<Vec<String>> {
        let params = [
            ("q", query.to_string()),
            ("start", seconds(range.start, false)),
            ("end", seconds(range.end, true)),
            ("limit", limit.max(1).to_string()),
            ("spss", "1".to_string()),
        ];
        let response: SearchResponse =
            self.http
                .get_json("api/search", &params)
                .await
                .map_err(|e| match e {
                    SourceError::QueryRejected {
                        source_name,
                        detail,
                    } => SourceError::QueryRejected {
                        source_name,
                        detail: format!("`{query}`: {detail}"),
                    },
                    other => other,
                })?;
        let mut found = Vec::new();
        for t in response.traces.unwrap_or_default() {
            let id = common::normalise_id(&t.trace_id).filter(|id| id.len() <= 32);
            let id = id.ok_or_else(|| {
                self.bad(format!(
                    "search answered trace id `{}`, which is not hex",
                    t.trace_id
                ))
            })?;
            found.push((nanos(&t.start).unwrap_or_default(), id));
        }
        found.sort();
        Ok(found.into_iter().map(|(_, id)| id).collect())
    }

    /// `GET /api/traces/<id>`: the whole trace, converted. `around`, if given, is
    /// widened by `lookup_margin` and limits the blocks Tempo reads.
    pub async fn fetch_trace(
        &self,
        trace_id: &str,
        around: Option<TimeRange>,
    ) -> SourceResult<Trace> {
        let id = common::normalise_id(trace_id)
            .filter(|id| id.len() <= 32)
            .ok_or_else(|| SourceError::QueryRejected {
                source_name: self.http.name().to_string(),
                detail: format!("`{trace_id}` is not a trace id (expected up to 32 hex digits)"),
            })?;
        let params: Vec<(&str, String)> = match around {
            Some(range) => {
                let margin = self.config.lookup_margin.as_millis() as i64;
                vec![
                    ("start", seconds(range.start - margin, false)),
                    ("end", seconds(range.end + margin, true)),
                ]
            }
            None => Vec::new(),
        };
        let body: TraceBody = self
            .http
            .get_json(&format!("api/traces/{id}"), &params)
            .await
            .map_err(|e| match e {
                SourceError::NotFound {
                    source_name,
                    detail,
                } => SourceError::NotFound {
                    source_name,
                    detail: format!("trace {id} was not found ({detail})"),
                },
                other => other,
            })?;
        Ok(convert(&id, body))
    }
}

#[async_trait]
impl TraceBackend for TempoSource {
    fn source_name(&self) -> &str {
        self.http.name()
    }

    fn fetch_concurrency(&self) -> usize {
        self.config.fetch_concurrency
    }

    async fn search(
        &self,
        range: TimeRange,
        service: Option<&str>,
        max_traces: usize,
    ) -> SourceResult<Found> {
        let query = Self::traceql(service);
        let slices = common::slices(range, self.config.search_slices.min(max_traces.max(1)));
        let per_slice = (max_traces / slices.len().max(1)).max(1);
        let tasks = slices.into_iter().map(|slice| {
            let (source, query) = (self.clone(), query.clone());
            async move { source.search(&query, slice, per_slice).await }
        });
        let results = walk::run_all(
            self.http.name(),
            self.config.fetch_concurrency,
            tasks.collect(),
        )
        .await;
        let (mut ids, mut seen) = (Vec::new(), HashSet::new());
        for result in results {
            ids.extend(result?.into_iter().filter(|id| seen.insert(id.clone())));
        }
        Ok(Found {
            ids,
            ..Found::default()
        })
    }

    async fn fetch_trace(&self, trace_id: &str, range: TimeRange) -> SourceResult<Trace> {
        TempoSource::fetch_trace(self, trace_id, Some(range)).await
    }
}

#[async_trait]
impl TraceSource for TempoSource {
    fn name(&self) -> &str {
        self.http.name()
    }

    async fn fetch_spans(
        &self,
        range: TimeRange,
        service: Option<&str>,
        cursor: Option<&str>,
        limit: usize,
    ) -> SourceResult<Page<Span>> {
        walk::fetch_page(
            self,
            range,
            service,
            cursor,
            limit,
            self.config.search_limit,
        )
        .await
    }

    async fn call_graph(&self, range: TimeRange) -> SourceResult<CallGraph> {
        walk::derive_call_graph(self, range, self.config.max_traces).await
    }
}
