//! Jaeger (the 1.x query service's JSON API, the one its UI uses and Jaeger 2.x still
//! serves) behind the trace port.
//!
//! Search is `GET /api/traces?service=&start=&end=&limit=` (times in microseconds),
//! which answers whole traces: `{"data":[{"traceID","spans":[...],"processes":{...}}],
//! "errors":null}`. Jaeger searches one service at a time, so without a service every
//! service of `GET /api/services` is searched (the first `max_services` by name; more
//! are reported as a problem). Jaeger answers the newest traces first, so the range is
//! searched in `search_slices` equal slices and the baseline minutes get traces too.
//! `GET /api/traces/<id>` fetches one trace; `GET /api/dependencies?endTs=&lookback=`
//! (milliseconds) gives the call graph, derived from traces instead when it is empty
//! (storage backends that compute dependencies in a daily batch job often have none for
//! a short range).
//!
//! Span conversion: service from the span's process (`processID` into `processes`);
//! parent from the first `CHILD_OF` reference (else the first reference); kind from tag
//! `span.kind` (producer as client, consumer as server, none as internal); error when
//! tag `error` is true or `otel.status_code` is `ERROR`; peers: see `super::common`.
//! Paging works as for Tempo: whole traces per page, the cursor the trace ids left. The
//! first page uses the traces the search answered; later pages fetch by id.

use super::common::{self, ADDRESS_KEYS, Draft, Tally, Trace, UNKNOWN_SERVICE};
use super::walk::{self, Found, TraceBackend};
use crate::http::HttpClient;
use async_trait::async_trait;
use compass_core::{CallGraph, Span, SpanStatus, TimeRange};
use compass_engine::ports::{Page, SourceError, SourceResult, TraceSource};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::{HashMap, HashSet};

/// Settings of one Jaeger source.
#[derive(Debug, Clone, PartialEq)]
pub struct JaegerConfig {
    /// Most traces one `fetch_spans` walk covers (shared among slices and services).
    pub search_limit: usize,
    /// Equal slices the range is searched in.
    pub search_slices: usize,
    /// Most traces the call graph is derived from when `/api/dependencies` is empty.
    pub max_traces: usize,
    /// Most services searched when no service is asked for.
    pub max_services: usize,
    /// Requests made at once.
    pub fetch_concurrency: usize,
}

impl Default for JaegerConfig {
    fn default() -> Self {
        Self {
            search_limit: 200,
            search_slices: 10,
            max_traces: 100,
            max_services: 20,
            fetch_concurrency: 8,
        }
    }
}

/// A Jaeger query service.
#[derive(Debug, Clone)]
pub struct JaegerSource {
    http: HttpClient,
    config: JaegerConfig,
}

/// Every answer of the query API.
#[derive(Debug, Deserialize)]
struct Envelope<T> {
    #[serde(default = "Option::default")]
    data: Option<T>,
    #[serde(default)]
    errors: Option<Vec<ApiError>>,
}

#[derive(Debug, Deserialize)]
struct ApiError {
    #[serde(default)]
    msg: Option<String>,
}

#[derive(Debug, Deserialize)]
struct JaegerTrace {
    #[serde(rename = "traceID", default)]
    trace_id: Option<String>,
    #[serde(default)]
    spans: Option<Vec<JaegerSpan>>,
    #[serde(default)]
    processes: Option<HashMap<String, Process>>,
}

#[derive(Debug, Deserialize)]
struct JaegerSpan {
    #[serde(rename = "traceID", default)]
    trace_id: Option<String>,
    #[serde(rename = "spanID", default)]
    span_id: Option<String>,
    #[serde(rename = "operationName", default)]
    operation: Option<String>,
    #[serde(default)]
    references: Option<Vec<Reference>>,
    #[serde(rename = "startTime", default)]
    start: Option<Value>,
    #[serde(default)]
    duration: Option<Value>,
    #[serde(default)]
    tags: Option<Vec<Tag>>,
    #[serde(rename = "processID", default)]
    process_id: Option<String>,
    #[serde(default)]
    process: Option<Process>,
}

#[derive(Debug, Deserialize)]
struct Reference {
    #[serde(rename = "refType", default)]
    ref_type: Option<String>,
    #[serde(rename = "spanID", default)]
    span_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct Process {
    #[serde(rename = "serviceName", default)]
    service: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Tag {
    key: String,
    #[serde(default)]
    value: Value,
}

#[derive(Debug, Deserialize)]
struct Dependency {
    parent: String,
    child: String,
}

/// A tag's value as text (`true`, `500`, `checkout`).
fn tag(tags: &Option<Vec<Tag>>, key: &str) -> Option<String> {
    let value = &tags.as_deref()?.iter().find(|t| t.key == key)?.value;
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Microseconds (a JSON number, or a decimal string).
fn micros(value: &Option<Value>) -> Option<i64> {
    match value.as_ref()? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// One Jaeger trace as its id and converted spans; `asked` names it when it lacks an id.
fn convert(trace: JaegerTrace, asked: Option<&str>) -> Option<(String, Trace)> {
    let spans = trace.spans.unwrap_or_default();
    let id = trace
        .trace_id
        .as_deref()
        .or_else(|| spans.iter().find_map(|s| s.trace_id.as_deref()))
        .or(asked)
        .and_then(common::normalise_id)?;
    let processes = trace.processes.unwrap_or_default();
    let mut tally = Tally::default();
    let mut drafts = Vec::new();
    for span in spans {
        let service = span
            .process
            .as_ref()
            .or_else(|| processes.get(span.process_id.as_deref()?))
            .and_then(|p| p.service.clone())
            .filter(|s| !s.trim().is_empty());
        if service.is_none() {
            tally.note("without a process service name (named unknown_service)");
        }
        let service = service.unwrap_or_else(|| UNKNOWN_SERVICE.to_string());
        match draft(&id, service, span) {
            Ok(d) => drafts.push(d),
            Err(what) => tally.note(what),
        }
    }
    let mut problems = tally.into_problems(&id);
    if drafts.is_empty() {
        problems.push(format!("trace {id}: no usable spans in the answer"));
    }
    let trace = Trace {
        spans: common::finish_trace(drafts),
        problems,
    };
    Some((id, trace))
}

fn draft(trace_id: &str, service: String, span: JaegerSpan) -> Result<Draft, &'static str> {
    let span_id = span
        .span_id
        .as_deref()
        .and_then(common::normalise_id)
        .ok_or("skipped: no valid spanID")?;
    let start = micros(&span.start).ok_or("skipped: no startTime")?;
    let duration = micros(&span.duration)
        .filter(|d| *d >= 0)
        .ok_or("skipped: no or negative duration")?;
    let references = span.references.as_deref().unwrap_or_default();
    let parent = references
        .iter()
        .find(|r| r.ref_type.as_deref() == Some("CHILD_OF"))
        .or_else(|| references.first())
        .and_then(|r| r.span_id.as_deref())
        .and_then(common::normalise_id);
    let tags = &span.tags;
    let error = tag(tags, "error").is_some_and(|v| v.eq_ignore_ascii_case("true"))
        || tag(tags, "otel.status_code").is_some_and(|v| v.eq_ignore_ascii_case("ERROR"));
    let address_peer = ADDRESS_KEYS
        .iter()
        .find_map(|k| tag(tags, k))
        .and_then(|a| common::host_of(&a));
    Ok(Draft {
        span: Span {
            trace_id: trace_id.to_string(),
            span_id,
            parent_id: parent,
            service,
            operation: span.operation.unwrap_or_default(),
            kind: tag(tags, "span.kind").map_or(compass_core::SpanKind::Internal, |k| {
                common::kind_from_name(&k)
            }),
            start: start.div_euclid(1000),
            duration_ms: duration as f64 / 1000.0,
            status: if error {
                SpanStatus::Error
            } else {
                SpanStatus::Ok
            },
            peer_service: tag(tags, "peer.service"),
        },
        address_peer,
    })
}

/// The messages of an answer's `errors`.
fn reported(errors: Option<Vec<ApiError>>) -> Vec<String> {
    errors
        .unwrap_or_default()
        .into_iter()
        .filter_map(|e| e.msg)
        .map(|m| format!("jaeger reported: {m}"))
        .collect()
}

impl JaegerSource {
    pub fn new(http: HttpClient, config: JaegerConfig) -> Self {
        Self { http, config }
    }

    /// GET `path`; a rejection carries Jaeger's own message (from its `errors`).
    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        params: &[(&str, String)],
    ) -> SourceResult<Envelope<T>> {
        self.http.get_json(path, params).await.map_err(|e| match e {
            SourceError::QueryRejected {
                source_name,
                detail,
            } => {
                let message = serde_json::from_str::<Envelope<Value>>(&detail)
                    .ok()
                    .and_then(|env| reported(env.errors).into_iter().next());
                SourceError::QueryRejected {
                    source_name,
                    detail: message.unwrap_or(detail),
                }
            }
            other => other,
        })
    }

    /// `GET /api/services`: "Jaeger query API, 12 services".
    pub async fn ping(&self) -> SourceResult<String> {
        let services = self.services().await?;
        Ok(format!("Jaeger query API, {} services", services.len()))
    }

    /// `GET /api/services`, sorted.
    pub async fn services(&self) -> SourceResult<Vec<String>> {
        let answer: Envelope<Vec<String>> = self.get("api/services", &[]).await?;
        let mut services = answer.data.unwrap_or_default();
        services.sort();
        services.dedup();
        Ok(services)
    }

    /// `GET /api/traces/<id>`: the whole trace, converted.
    pub async fn fetch_trace(&self, trace_id: &str) -> SourceResult<Trace> {
        let not_found = |detail: String| SourceError::NotFound {
            source_name: self.http.name().to_string(),
            detail: format!("trace {trace_id} was not found ({detail})"),
        };
        let id = common::normalise_id(trace_id)
            .filter(|id| id.len() <= 32)
            .ok_or_else(|| SourceError::QueryRejected {
                source_name: self.http.name().to_string(),
                detail: format!("`{trace_id}` is not a trace id (expected up to 32 hex digits)"),
            })?;
        let answer: Envelope<Vec<JaegerTrace>> = self
            .get(&format!("api/traces/{id}"), &[])
            .await
            .map_err(|e| match e {
            SourceError::NotFound { detail, .. } => not_found(detail),
            other => other,
        })?;
        let problems = reported(answer.errors);
        let (_, mut trace) = answer
            .data
            .unwrap_or_default()
            .into_iter()
            .find_map(|t| convert(t, Some(&id)))
            .ok_or_else(|| not_found(problems.join("; ")))?;
        trace.problems.extend(problems);
        Ok(trace)
    }

    /// `GET /api/traces` for one service in one slice: whole traces, with their start.
    async fn search_service(
        &self,
        service: String,
        range: TimeRange,
        limit: usize,
    ) -> SourceResult<(Vec<(i64, String, Trace)>, Vec<String>)> {
        let params = [
            ("service", service),
            ("start", (range.start * 1000).to_string()),
            ("end", (range.end * 1000).to_string()),
            ("limit", limit.max(1).to_string()),
        ];
        let answer: Envelope<Vec<JaegerTrace>> = self.get("api/traces", &params).await?;
        let traces = answer
            .data
            .unwrap_or_default()
            .into_iter()
            .filter_map(|t| convert(t, None))
            .map(|(id, trace)| {
                let start = trace
                    .spans
                    .iter()
                    .map(|s| s.start)
                    .min()
                    .unwrap_or(i64::MAX);
                (start, id, trace)
            })
            .collect();
        Ok((traces, reported(answer.errors)))
    }
}

#[async_trait]
impl TraceBackend for JaegerSource {
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
        let mut problems = Vec::new();
        let services = match service {
            Some(s) => vec![s.to_string()],
            None => {
                let mut all = self.services().await?;
                if all.len() > self.config.max_services {
                    problems.push(format!(
                        "searched the first {} of {} services by name; raise max_services to search them all",
                        self.config.max_services,
                        all.len()
                    ));
                    all.truncate(self.config.max_services);
                }
                all
            }
        };
        let max_traces = max_traces.max(1);
        let slice_count = self
            .config
            .search_slices
            .min(max_traces / services.len().max(1))
            .max(1);
        let slices = common::slices(range, slice_count);
        let per_request = (max_traces / (slices.len() * services.len()).max(1)).max(1);
        let mut tasks = Vec::new();
        for service in &services {
            for &slice in &slices {
                let (source, service) = (self.clone(), service.clone());
                tasks.push(async move { source.search_service(service, slice, per_request).await });
            }
        }
        let mut traces = Vec::new();
        for result in walk::run_all(self.http.name(), self.config.fetch_concurrency, tasks).await {
            let (found, reported) = result?;
            traces.extend(found);
            problems.extend(reported);
        }
        traces.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        let mut seen = HashSet::new();
        let mut found = Found {
            problems,
            ..Found::default()
        };
        for (_, id, trace) in traces {
            if found.ids.len() < max_traces && seen.insert(id.clone()) {
                found.ids.push(id.clone());
                found.prefetched.insert(id, trace);
            }
        }
        Ok(found)
    }

    async fn fetch_trace(&self, trace_id: &str, _range: TimeRange) -> SourceResult<Trace> {
        JaegerSource::fetch_trace(self, trace_id).await
    }
}

#[async_trait]
impl TraceSource for JaegerSource {
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

    /// `GET /api/dependencies`, or edges derived from traces when it has none.
    async fn call_graph(&self, range: TimeRange) -> SourceResult<CallGraph> {
        let params = [
            ("endTs", range.end.to_string()),
            ("lookback", range.duration_ms().max(1).to_string()),
        ];
        let answer: Envelope<Vec<Dependency>> = self.get("api/dependencies", &params).await?;
        let mut graph = CallGraph::default();
        for dep in answer.data.unwrap_or_default() {
            graph.add(&dep.parent, &dep.child);
        }
        if !graph.is_empty() {
            return Ok(graph);
        }
        walk::derive_call_graph(self, range, self.config.max_traces).await
    }
}
