//! Replay of a recorded bundle: `responses.jsonl` (format in module `responses`) is
//! read whole when the bundle is opened, and the ports the recording lists answer
//! every call from it by exact request match, under the recorded sources' names.
//!
//! Recorded errors come back as the same `SourceError`; a request that was not
//! recorded is `SourceError::NotFound` naming the request. A line that cannot be read
//! is skipped and reported with file and line (`BundleSource::problems`); when its
//! request can still be read, that request answers `SourceError::BadData` naming the
//! line, so the agent that asks is degraded rather than misled.

use super::error::BundleError;
use super::responses::{
    Answer, Decoded, PortKind, RESPONSES, Recorded, Recording, Request, decode_line, query_text_key,
};
use super::time;
use async_trait::async_trait;
use compass_core::{CallGraph, ChangeEvent, LogRecord, MetricQuery, Series, Span, TimeRange};
use compass_engine::{
    ChangeSource, DataSources, LogQuery, LogSource, MetricsSource, Page, SourceError, SourceResult,
    TraceSource,
};
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

/// The answers of a recording, keyed by [`Request::key`].
#[derive(Debug)]
pub(crate) struct Replay {
    sources: BTreeMap<PortKind, String>,
    query_texts: BTreeMap<String, String>,
    answers: HashMap<String, Recorded>,
    problems: Vec<String>,
}

impl Replay {
    /// Read `responses.jsonl` of the bundle in `dir`, whose manifest lists `recording`.
    pub(crate) fn load(dir: &Path, recording: &Recording) -> Result<Replay, BundleError> {
        let path = dir.join(RESPONSES);
        let bytes = std::fs::read(&path).map_err(|cause| BundleError::Io {
            dir: dir.to_path_buf(),
            file: RESPONSES,
            cause,
        })?;
        let mut answers = HashMap::new();
        let mut first_lines: HashMap<String, usize> = HashMap::new();
        let mut problems = Vec::new();
        for (index, line) in bytes.split(|&b| b == b'\n').enumerate() {
            if line.trim_ascii().is_empty() {
                continue;
            }
            let at = format!("{RESPONSES} line {}", index + 1);
            let (request, answer) = match decode_line(line) {
                Ok(Decoded::Line(request, answer)) => (request, answer),
                Ok(Decoded::BadAnswer(request, what)) => {
                    problems.push(format!("{at}: {what}"));
                    let source_name = recording
                        .sources
                        .get(&request.port())
                        .cloned()
                        .unwrap_or_else(|| format!("replay:{}", request.port().as_str()));
                    let detail = format!("{at}: {what} (in {})", path.display());
                    let error = SourceError::BadData {
                        source_name,
                        detail,
                    };
                    (request, Err(error))
                }
                Err(what) => {
                    problems.push(format!("{at}: {what}"));
                    continue;
                }
            };
            let key = request.key();
            match first_lines.entry(key.clone()) {
                Entry::Occupied(first) => problems.push(format!(
                    "{at}: repeats the request of line {}; the first answer is used",
                    first.get()
                )),
                Entry::Vacant(slot) => {
                    slot.insert(index + 1);
                    answers.insert(key, answer);
                }
            }
        }
        if !problems.is_empty() {
            tracing::warn!(
                file = %path.display(),
                skipped = problems.len(),
                "skipped unreadable recorded responses"
            );
        }
        Ok(Replay {
            sources: recording.sources.clone(),
            query_texts: recording.query_texts.clone(),
            answers,
            problems,
        })
    }

    /// Lines of `responses.jsonl` that could not be used, each with its line number.
    pub(crate) fn problems(&self) -> &[String] {
        &self.problems
    }

    /// The ports the recorded investigation did not have (`recorded logs`, ...).
    pub(crate) fn unrecorded_ports(&self) -> Vec<String> {
        PortKind::ALL
            .into_iter()
            .filter(|port| !self.sources.contains_key(port))
            .map(|port| format!("recorded {}", port.as_str()))
            .collect()
    }

    /// One port per recorded source, answering under its recorded name.
    pub(crate) fn data_sources(self: &Arc<Self>) -> DataSources {
        let port = |kind: PortKind| {
            self.sources.get(&kind).map(|name| {
                Arc::new(Replayed {
                    replay: Arc::clone(self),
                    name: name.clone(),
                })
            })
        };
        DataSources {
            metrics: port(PortKind::Metrics).map(|p| p as Arc<dyn MetricsSource>),
            logs: port(PortKind::Logs).map(|p| p as Arc<dyn LogSource>),
            traces: port(PortKind::Traces).map(|p| p as Arc<dyn TraceSource>),
            changes: port(PortKind::Changes).map(|p| p as Arc<dyn ChangeSource>),
        }
    }
}

/// One port of a replay.
#[derive(Debug)]
struct Replayed {
    replay: Arc<Replay>,
    name: String,
}

impl Replayed {
    /// The recorded answer to `request`, taken out by `pick` (which matches the call).
    fn answer<T>(&self, request: Request, pick: fn(Answer) -> Option<T>) -> SourceResult<T> {
        let Some(recorded) = self.replay.answers.get(&request.key()) else {
            let mut detail = format!("not recorded: {}", describe(&request));
            if let Some(first) = self.replay.problems.first() {
                detail.push_str(&format!(
                    " ({} lines of {RESPONSES} could not be read; first: {first})",
                    self.replay.problems.len()
                ));
            }
            return Err(SourceError::NotFound {
                source_name: self.name.clone(),
                detail,
            });
        };
        pick(recorded.clone()?).ok_or_else(|| SourceError::BadData {
            source_name: self.name.clone(),
            detail: format!("recorded answer does not fit {}", describe(&request)),
        })
    }
}

#[async_trait]
impl MetricsSource for Replayed {
    fn name(&self) -> &str {
        &self.name
    }

    fn query_text(&self, query: &MetricQuery) -> String {
        let key = query_text_key(PortKind::Metrics, query, "");
        self.replay
            .query_texts
            .get(&key)
            .cloned()
            .unwrap_or_else(|| query.to_promql())
    }

    async fn query_range(
        &self,
        query: &MetricQuery,
        range: TimeRange,
        step_ms: i64,
    ) -> SourceResult<Vec<Series>> {
        let request = Request::QueryRange {
            query: query.clone(),
            range,
            step_ms,
        };
        self.answer(request, |a| match a {
            Answer::Series(series) => Some(series),
            _ => None,
        })
    }

    async fn label_values(&self, label: &str, range: TimeRange) -> SourceResult<Vec<String>> {
        let label = label.to_string();
        self.answer(Request::LabelValues { label, range }, |a| match a {
            Answer::Labels(values) => Some(values),
            _ => None,
        })
    }
}

#[async_trait]
impl LogSource for Replayed {
    fn name(&self) -> &str {
        &self.name
    }

    fn query_text(&self, query: &LogQuery, service_label: &str) -> String {
        let key = query_text_key(PortKind::Logs, query, service_label);
        self.replay
            .query_texts
            .get(&key)
            .cloned()
            .unwrap_or_else(|| query.to_logql(service_label))
    }

    async fn fetch_logs(
        &self,
        query: &LogQuery,
        range: TimeRange,
        cursor: Option<&str>,
        limit: usize,
    ) -> SourceResult<Page<LogRecord>> {
        let request = Request::FetchLogs {
            query: query.clone(),
            range,
            cursor: cursor.map(str::to_string),
            limit,
        };
        self.answer(request, |a| match a {
            Answer::Logs(page) => Some(page),
            _ => None,
        })
    }
}

#[async_trait]
impl TraceSource for Replayed {
    fn name(&self) -> &str {
        &self.name
    }

    async fn fetch_spans(
        &self,
        range: TimeRange,
        service: Option<&str>,
        cursor: Option<&str>,
        limit: usize,
    ) -> SourceResult<Page<Span>> {
        let request = Request::FetchSpans {
            range,
            service: service.map(str::to_string),
            cursor: cursor.map(str::to_string),
            limit,
        };
        self.answer(request, |a| match a {
            Answer::Spans(page) => Some(page),
            _ => None,
        })
    }

    async fn call_graph(&self, range: TimeRange) -> SourceResult<CallGraph> {
        self.answer(Request::CallGraph { range }, |a| match a {
            Answer::Graph(graph) => Some(graph),
            _ => None,
        })
    }
}

#[async_trait]
impl ChangeSource for Replayed {
    fn name(&self) -> &str {
        &self.name
    }

    async fn fetch_changes(&self, range: TimeRange) -> SourceResult<Vec<ChangeEvent>> {
        self.answer(Request::FetchChanges { range }, |a| match a {
            Answer::Changes(events) => Some(events),
            _ => None,
        })
    }
}

/// What `request` asks, for "not recorded" errors.
fn describe(request: &Request) -> String {
    let over = |r: &TimeRange| {
        format!(
            "over {}..{}",
            time::format_rfc3339_ms(r.start),
            time::format_rfc3339_ms(r.end)
        )
    };
    let page = |cursor: &Option<String>, limit: usize| match cursor {
        Some(c) => format!("cursor {c:?} limit {limit}"),
        None => format!("first page limit {limit}"),
    };
    let detail = match request {
        Request::QueryRange {
            query,
            range,
            step_ms,
        } => format!(
            "query_range `{}` {} step {}",
            query.to_promql(),
            over(range),
            step(*step_ms)
        ),
        Request::LabelValues { label, range } => {
            format!("label_values `{label}` {}", over(range))
        }
        Request::FetchLogs {
            query,
            range,
            cursor,
            limit,
        } => format!(
            "fetch_logs `{}` {} {}",
            query.to_logql("service"),
            over(range),
            page(cursor, *limit)
        ),
        Request::FetchSpans {
            range,
            service,
            cursor,
            limit,
        } => format!(
            "fetch_spans of {} {} {}",
            service.as_deref().unwrap_or("every service"),
            over(range),
            page(cursor, *limit)
        ),
        Request::CallGraph { range } => format!("call_graph {}", over(range)),
        Request::FetchChanges { range } => format!("fetch_changes {}", over(range)),
    };
    format!("{} {detail}", request.port().as_str())
}

fn step(step_ms: i64) -> String {
    match step_ms % 1000 {
        0 => format!("{}s", step_ms / 1000),
        _ => format!("{step_ms}ms"),
    }
}
