//! Recording an investigation: [`record`] wraps each data port so every call's request
//! and answer (success or `SourceError`) is kept in memory, and
//! [`Recorder::write_bundle`] writes them as a recorded bundle that `BundleSource`
//! replays offline to the same result (layout in `docs/bundle-format.md`, "Recorded
//! bundles"). Any real incident becomes a regression test.
//!
//! Identical requests are kept once: the first success, or the first error when the
//! request never succeeded. A call abandoned before it answered (a per-call timeout,
//! a cancelled agent) is kept as `SourceError::Timeout` after the time it waited, so a
//! replay degrades the same agents. The bundle is written file by file under
//! temporary names, each renamed when complete, `manifest.json` last: a crash never
//! leaves a directory that opens as a complete bundle.

use crate::bundle::responses::{
    Answer, PortKind, RESPONSES, Recorded, Recording, Request, encode_line, query_text_key,
};
use crate::bundle::{BundleErrorKind, CATALOG, FORMAT, INCIDENT, IncidentFile, MANIFEST, Manifest};
use async_trait::async_trait;
use compass_core::{
    CallGraph, ChangeEvent, Incident, LogRecord, MetricQuery, Series, Span, TimeRange,
};
use compass_engine::{
    ChangeSource, DataSources, LogQuery, LogSource, MetricCatalog, MetricsSource, Page,
    SourceError, SourceResult, TraceSource,
};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::future::Future;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use thiserror::Error;

/// Wrap every present port of `sources` so its calls are recorded. Investigate with
/// the returned sources, then write the recording with [`Recorder::write_bundle`].
pub fn record(sources: &DataSources) -> (DataSources, Recorder) {
    let recorder = Recorder::default();
    {
        let mut log = recorder.lock();
        let names = [
            (
                PortKind::Metrics,
                sources.metrics.as_ref().map(|s| s.name()),
            ),
            (PortKind::Logs, sources.logs.as_ref().map(|s| s.name())),
            (PortKind::Traces, sources.traces.as_ref().map(|s| s.name())),
            (
                PortKind::Changes,
                sources.changes.as_ref().map(|s| s.name()),
            ),
        ];
        for (port, name) in names {
            if let Some(name) = name {
                log.sources.insert(port, name.to_string());
            }
        }
    }
    let recorded = DataSources {
        metrics: (sources.metrics.clone()).map(|inner| recorder.tap(inner) as _),
        logs: (sources.logs.clone()).map(|inner| recorder.tap(inner) as _),
        traces: (sources.traces.clone()).map(|inner| recorder.tap(inner) as _),
        changes: (sources.changes.clone()).map(|inner| recorder.tap(inner) as _),
    };
    (recorded, recorder)
}

/// The calls recorded so far; clones share them. Safe to use from concurrent agents.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    log: Arc<Mutex<Log>>,
}

#[derive(Debug, Default)]
struct Log {
    /// Port -> name of the source behind it.
    sources: BTreeMap<PortKind, String>,
    /// Keyed by port and [`Request::key`], which also orders the written lines.
    entries: BTreeMap<(PortKind, String), (Request, Recorded)>,
    /// Query texts given for evidence, by `query_text_key`.
    query_texts: BTreeMap<String, String>,
}

impl Log {
    fn insert(&mut self, request: Request, answer: Recorded) {
        let key = (request.port(), request.key());
        let replace = match self.entries.get(&key) {
            None => true,
            Some((_, kept)) => kept.is_err() && answer.is_ok(),
        };
        if replace {
            self.entries.insert(key, (request, answer));
        }
    }
}

/// What [`Recorder::write_bundle`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordSummary {
    pub dir: PathBuf,
    /// Distinct requests (lines of `responses.jsonl`).
    pub requests: usize,
    /// How many of them were answered with an error.
    pub errors: usize,
    /// The time the recorded requests cover (the manifest's start and end).
    pub range: TimeRange,
    /// Services named by the incident and the recorded answers.
    pub services: Vec<String>,
}

/// Why a recording could not be written.
#[derive(Debug, Error)]
pub enum RecordError {
    #[error(
        "recording {}: the directory is not empty (record into a new or empty directory; a recording never writes over files)",
        dir.display()
    )]
    NotEmpty { dir: PathBuf },
    #[error("recording {}: exists and is not a directory (choose a directory path)", dir.display())]
    NotADirectory { dir: PathBuf },
    #[error("recording {}: {action}: {cause}", dir.display())]
    Io {
        dir: PathBuf,
        action: String,
        cause: io::Error,
    },
}

impl RecordError {
    /// `BadInput` for a directory that cannot take a recording, `Io` otherwise.
    pub fn kind(&self) -> BundleErrorKind {
        match self {
            RecordError::NotEmpty { .. } | RecordError::NotADirectory { .. } => {
                BundleErrorKind::BadInput
            }
            RecordError::Io { .. } => BundleErrorKind::Io,
        }
    }
}

impl Recorder {
    fn lock(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Distinct requests recorded so far.
    pub fn requests(&self) -> usize {
        self.lock().entries.len()
    }

    /// Write the recording as a bundle in `dir` (created if missing, refused unless
    /// empty): `catalog.json` (the catalog the agents used), `incident.json`,
    /// `responses.jsonl`, then `manifest.json`.
    pub fn write_bundle(
        &self,
        dir: &Path,
        incident: &Incident,
        catalog: &MetricCatalog,
    ) -> Result<RecordSummary, RecordError> {
        prepare_dir(dir)?;
        let log = self.lock();
        write_file(dir, CATALOG, |w| json(w, catalog))?;
        write_file(dir, INCIDENT, |w| json(w, &IncidentFile::from(incident)))?;
        write_file(dir, RESPONSES, |w| {
            for (request, answer) in log.entries.values() {
                let line = encode_line(request, answer).map_err(io::Error::other)?;
                w.write_all(line.as_bytes())?;
                w.write_all(b"\n")?;
            }
            Ok(())
        })?;

        let requests = log.entries.values().map(|(request, _)| request);
        let range = covered(requests.clone().map(Request::range)).unwrap_or_else(|| {
            // Nothing recorded: the second of the alert, so the manifest stays valid.
            TimeRange::new(incident.start, incident.start.saturating_add(1000))
        });
        let step_seconds = requests
            .filter_map(|r| match r {
                Request::QueryRange { step_ms, .. } => Some((step_ms + 999) / 1000),
                _ => None,
            })
            .min()
            .map_or(15, |s| u32::try_from(s.max(1)).unwrap_or(u32::MAX));
        let mut services: BTreeSet<String> = incident.affected_services.iter().cloned().collect();
        for (request, answer) in log.entries.values() {
            if let Ok(answer) = answer {
                services_in(request, answer, &catalog.service_label, &mut services);
            }
        }
        let errors = log.entries.values().filter(|(_, a)| a.is_err()).count();
        let manifest = Manifest {
            format: FORMAT.to_string(),
            generator: format!("compass record {}", env!("CARGO_PKG_VERSION")),
            scenario: None,
            seed: None,
            start: range.start,
            end: range.end,
            services: services.into_iter().collect(),
            step_seconds,
            recording: Some(Recording {
                sources: log.sources.clone(),
                requests: log.entries.len(),
                errors,
                query_texts: log.query_texts.clone(),
            }),
        };
        write_file(dir, MANIFEST, |w| json(w, &manifest))?;
        Ok(RecordSummary {
            dir: dir.to_path_buf(),
            requests: log.entries.len(),
            errors,
            range,
            services: manifest.services,
        })
    }
}

/// Create `dir` if missing; refuse anything but an empty directory.
fn prepare_dir(dir: &Path) -> Result<(), RecordError> {
    let io_error = |action: &str| {
        let action = action.to_string();
        move |cause| RecordError::Io {
            dir: dir.to_path_buf(),
            action,
            cause,
        }
    };
    if dir.exists() {
        if !dir.is_dir() {
            return Err(RecordError::NotADirectory {
                dir: dir.to_path_buf(),
            });
        }
        let mut entries = std::fs::read_dir(dir).map_err(io_error("cannot list the directory"))?;
        if entries.next().is_some() {
            return Err(RecordError::NotEmpty {
                dir: dir.to_path_buf(),
            });
        }
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(io_error("cannot create the directory"))
}

/// Write `dir/name` through a temporary file renamed into place once complete.
fn write_file(
    dir: &Path,
    name: &str,
    content: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> Result<(), RecordError> {
    let partial = dir.join(format!(".{name}.partial"));
    let write = || -> io::Result<()> {
        let mut w = BufWriter::new(File::create(&partial)?);
        content(&mut w)?;
        let file = w.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.sync_all()?;
        std::fs::rename(&partial, dir.join(name))
    };
    write().map_err(|cause| RecordError::Io {
        dir: dir.to_path_buf(),
        action: format!("cannot write {name}"),
        cause,
    })
}

fn json(w: &mut impl Write, value: &impl serde::Serialize) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *w, value).map_err(io::Error::other)?;
    w.write_all(b"\n")
}

/// The smallest range holding every non-empty range, `None` if there is none.
fn covered(ranges: impl Iterator<Item = TimeRange>) -> Option<TimeRange> {
    ranges
        .filter(|r| !r.is_empty())
        .reduce(|a, b| TimeRange::new(a.start.min(b.start), a.end.max(b.end)))
}

/// Add the services an answer names to `out`.
fn services_in(
    request: &Request,
    answer: &Answer,
    service_label: &str,
    out: &mut BTreeSet<String>,
) {
    let mut add = |s: &str| {
        if !s.is_empty() && !out.contains(s) {
            out.insert(s.to_string());
        }
    };
    match answer {
        Answer::Series(series) => series
            .iter()
            .filter_map(|s| s.label(service_label))
            .for_each(add),
        Answer::Labels(values) => {
            if matches!(request, Request::LabelValues { label, .. } if label == service_label) {
                values.iter().for_each(|v| add(v));
            }
        }
        Answer::Logs(page) => page.items.iter().for_each(|r| add(&r.service)),
        Answer::Spans(page) => {
            for span in &page.items {
                add(&span.service);
                span.peer_service.as_deref().into_iter().for_each(&mut add);
            }
        }
        Answer::Graph(graph) => graph.services().into_iter().for_each(add),
        Answer::Changes(events) => events.iter().for_each(|e| add(&e.service)),
    }
}

/// A port whose calls are recorded.
struct Tapped<S: ?Sized> {
    inner: Arc<S>,
    recorder: Recorder,
}

impl Recorder {
    fn tap<S: ?Sized>(&self, inner: Arc<S>) -> Arc<Tapped<S>> {
        Arc::new(Tapped {
            inner,
            recorder: self.clone(),
        })
    }

    /// Run `call` and record its answer (or, if it is abandoned, a timeout).
    async fn call<T: Clone>(
        &self,
        source_name: &str,
        request: Request,
        wrap: fn(T) -> Answer,
        call: impl Future<Output = SourceResult<T>>,
    ) -> SourceResult<T> {
        let mut pending = Pending {
            recorder: self,
            source_name,
            request: Some(request),
            started: tokio::time::Instant::now(),
        };
        let result = call.await;
        if let Some(request) = pending.request.take() {
            let answer = result.clone().map(wrap);
            self.lock().insert(request, answer);
        }
        result
    }
}

/// A call in flight; dropped unanswered, it records a timeout.
struct Pending<'a> {
    recorder: &'a Recorder,
    source_name: &'a str,
    request: Option<Request>,
    started: tokio::time::Instant,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if let Some(request) = self.request.take() {
            let after_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
            let timeout = SourceError::Timeout {
                source_name: self.source_name.to_string(),
                after_ms,
            };
            self.recorder.lock().insert(request, Err(timeout));
        }
    }
}

#[async_trait]
impl MetricsSource for Tapped<dyn MetricsSource> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn query_text(&self, query: &MetricQuery) -> String {
        let text = self.inner.query_text(query);
        let key = query_text_key(PortKind::Metrics, query, "");
        self.recorder.lock().query_texts.insert(key, text.clone());
        text
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
        let call = self.inner.query_range(query, range, step_ms);
        (self.recorder)
            .call(self.name(), request, Answer::Series, call)
            .await
    }

    async fn label_values(&self, label: &str, range: TimeRange) -> SourceResult<Vec<String>> {
        let request = Request::LabelValues {
            label: label.to_string(),
            range,
        };
        let call = self.inner.label_values(label, range);
        (self.recorder)
            .call(self.name(), request, Answer::Labels, call)
            .await
    }
}

#[async_trait]
impl LogSource for Tapped<dyn LogSource> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn query_text(&self, query: &LogQuery, service_label: &str) -> String {
        let text = self.inner.query_text(query, service_label);
        let key = query_text_key(PortKind::Logs, query, service_label);
        self.recorder.lock().query_texts.insert(key, text.clone());
        text
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
        let call = self.inner.fetch_logs(query, range, cursor, limit);
        (self.recorder)
            .call(self.name(), request, Answer::Logs, call)
            .await
    }
}

#[async_trait]
impl TraceSource for Tapped<dyn TraceSource> {
    fn name(&self) -> &str {
        self.inner.name()
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
        let call = self.inner.fetch_spans(range, service, cursor, limit);
        (self.recorder)
            .call(self.name(), request, Answer::Spans, call)
            .await
    }

    async fn call_graph(&self, range: TimeRange) -> SourceResult<CallGraph> {
        let call = self.inner.call_graph(range);
        (self.recorder)
            .call(
                self.name(),
                Request::CallGraph { range },
                Answer::Graph,
                call,
            )
            .await
    }
}

#[async_trait]
impl ChangeSource for Tapped<dyn ChangeSource> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn fetch_changes(&self, range: TimeRange) -> SourceResult<Vec<ChangeEvent>> {
        let call = self.inner.fetch_changes(range);
        (self.recorder)
            .call(
                self.name(),
                Request::FetchChanges { range },
                Answer::Changes,
                call,
            )
            .await
    }
}
