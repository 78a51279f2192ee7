//! In-memory implementations of the four data-source ports, built from vectors, for
//! tests of agents and of the coordinator. Each fake can be told to fail with a given
//! error or to hang (never answer) on demand, and counts the calls it receives.
//!
//! `FakeMetrics` evaluates a [`MetricQuery`] over raw samples with simple semantics:
//! steps at `range.start + k·step`, gauges take the last sample in the 5-minute
//! lookback, `rate` is the increase over `(t - w, t]` divided by the sampled time
//! (counter resets handled, no extrapolation), `histogram_quantile` interpolates
//! linearly within buckets; steps without data are omitted.

use crate::ports::{
    ChangeSource, LogQuery, LogSource, MetricsSource, Page, SourceError, SourceResult, TraceSource,
};
use async_trait::async_trait;
use compass_core::{
    Aggregation, CallGraph, ChangeEvent, EpochMs, LogRecord, MetricFunc, MetricQuery, Series, Span,
    SpanKind, TimeRange,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const LOOKBACK_MS: i64 = 5 * 60 * 1000;

type Labels = BTreeMap<String, String>;
/// Per-step values of every series in a group.
type StepValues = Vec<Vec<f64>>;

/// How a fake answers.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Behavior {
    #[default]
    Normal,
    /// Every call returns this error.
    Fail(SourceError),
    /// Every call waits forever (for timeout tests).
    Hang,
}

/// Shared switch and call counter of one fake; clones control the same fake.
#[derive(Debug, Clone, Default)]
pub struct FakeControl {
    behavior: Arc<Mutex<Behavior>>,
    calls: Arc<AtomicUsize>,
}

impl FakeControl {
    pub fn set(&self, behavior: Behavior) {
        *self.behavior.lock().expect("fake lock") = behavior;
    }
    /// Calls received so far.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
    async fn enter(&self) -> SourceResult<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let behavior = self.behavior.lock().expect("fake lock").clone();
        match behavior {
            Behavior::Normal => Ok(()),
            Behavior::Fail(e) => Err(e),
            Behavior::Hang => std::future::pending().await,
        }
    }
}

/// A raw sample series: metric sample name, labels, time-ordered points.
#[derive(Debug, Clone, PartialEq)]
pub struct RawSeries {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub points: Vec<(EpochMs, f64)>,
}

/// Metrics from raw samples.
#[derive(Debug, Clone)]
pub struct FakeMetrics {
    name: String,
    series: Vec<RawSeries>,
    pub control: FakeControl,
}

impl FakeMetrics {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            series: Vec::new(),
            control: FakeControl::default(),
        }
    }
    /// Add a raw series (`name` is the sample name, e.g. `x_total`, `x_bucket`).
    pub fn with_series(
        mut self,
        name: &str,
        labels: &[(&str, &str)],
        points: Vec<(EpochMs, f64)>,
    ) -> Self {
        self.push(name, labels, points);
        self
    }
    pub fn push(&mut self, name: &str, labels: &[(&str, &str)], points: Vec<(EpochMs, f64)>) {
        let labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.series.push(RawSeries {
            name: name.to_string(),
            labels,
            points,
        });
    }
    fn evaluate(&self, q: &MetricQuery, range: TimeRange, step_ms: i64) -> Vec<Series> {
        let steps: Vec<EpochMs> = (range.start..range.end)
            .step_by(step_ms.max(1) as usize)
            .collect();
        let (sample, window) = match q.func {
            MetricFunc::Gauge => (q.metric.clone(), 0),
            MetricFunc::Rate { window_s } => (q.metric.clone(), i64::from(window_s) * 1000),
            MetricFunc::HistogramQuantile { window_s, .. } => {
                (format!("{}_bucket", q.metric), i64::from(window_s) * 1000)
            }
        };
        let selected = self
            .series
            .iter()
            .filter(|s| s.name == sample && q.matchers.iter().all(|m| m.matches(&s.labels)));
        // group labels (+ le for histograms) -> per-step values
        let mut groups: BTreeMap<(Labels, Option<String>), StepValues> = BTreeMap::new();
        for s in selected {
            let labels: BTreeMap<String, String> =
                q.by.iter()
                    .filter_map(|k| s.labels.get(k).map(|v| (k.clone(), v.clone())))
                    .collect();
            let le = matches!(q.func, MetricFunc::HistogramQuantile { .. })
                .then(|| s.labels.get("le").cloned().unwrap_or_default());
            let acc = groups
                .entry((labels, le))
                .or_insert_with(|| vec![Vec::new(); steps.len()]);
            for (i, &t) in steps.iter().enumerate() {
                let v = match q.func {
                    MetricFunc::Gauge => gauge_at(&s.points, t),
                    _ => rate_at(&s.points, t, window),
                };
                if let Some(v) = v {
                    acc[i].push(v);
                }
            }
        }
        let combine = |vals: &[f64], agg: Aggregation| -> Option<f64> {
            (!vals.is_empty()).then(|| match agg {
                Aggregation::Sum => vals.iter().sum(),
                Aggregation::Max => vals.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                Aggregation::Avg => vals.iter().sum::<f64>() / vals.len() as f64,
            })
        };
        let mut out: BTreeMap<BTreeMap<String, String>, Vec<(EpochMs, f64)>> = BTreeMap::new();
        match q.func {
            MetricFunc::HistogramQuantile { q: quant, .. } => {
                let mut by_group: BTreeMap<Labels, Vec<(f64, StepValues)>> = BTreeMap::new();
                for ((labels, le), vals) in groups {
                    let upper = le
                        .and_then(|l| l.parse::<f64>().ok())
                        .unwrap_or(f64::INFINITY);
                    by_group.entry(labels).or_default().push((upper, vals));
                }
                for (labels, mut buckets) in by_group {
                    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
                    let points = out.entry(labels).or_default();
                    for (i, &t) in steps.iter().enumerate() {
                        let counts: Vec<(f64, f64)> = buckets
                            .iter()
                            .filter(|(_, v)| !v[i].is_empty())
                            .map(|(u, v)| (*u, v[i].iter().sum()))
                            .collect();
                        if let Some(v) = bucket_quantile(quant, &counts) {
                            points.push((t, v));
                        }
                    }
                }
            }
            _ => {
                for ((labels, _), vals) in groups {
                    let points = out.entry(labels).or_default();
                    for (i, &t) in steps.iter().enumerate() {
                        if let Some(v) = combine(&vals[i], q.aggregation) {
                            points.push((t, v));
                        }
                    }
                }
            }
        }
        out.into_iter()
            .filter(|(_, p)| !p.is_empty())
            .map(|(labels, points)| Series { labels, points })
            .collect()
    }
}

fn gauge_at(points: &[(EpochMs, f64)], t: EpochMs) -> Option<f64> {
    let last = points.partition_point(|p| p.0 <= t).checked_sub(1)?;
    (points[last].0 > t - LOOKBACK_MS).then_some(points[last].1)
}

fn rate_at(points: &[(EpochMs, f64)], t: EpochMs, window: i64) -> Option<f64> {
    let lo = points.partition_point(|p| p.0 <= t - window);
    let hi = points.partition_point(|p| p.0 <= t);
    if hi < lo + 2 {
        return None;
    }
    let w = &points[lo..hi];
    let mut increase = w[w.len() - 1].1 - w[0].1;
    for pair in w.windows(2) {
        if pair[1].1 < pair[0].1 {
            increase += pair[0].1;
        }
    }
    let secs = (w[w.len() - 1].0 - w[0].0) as f64 / 1000.0;
    (secs > 0.0).then(|| increase / secs)
}

/// Quantile over `(upper bound, cumulative count)` buckets, linear within a bucket.
fn bucket_quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 || buckets.len() < 2 {
        return None;
    }
    let rank = q * total;
    let i = buckets.iter().position(|(_, c)| *c >= rank)?;
    let (upper, count) = buckets[i];
    if upper.is_infinite() {
        return Some(buckets[buckets.len() - 2].0);
    }
    let (lower, below) = if i == 0 { (0.0, 0.0) } else { buckets[i - 1] };
    let in_bucket = count - below;
    Some(if in_bucket <= 0.0 {
        upper
    } else {
        lower + (upper - lower) * (rank - below) / in_bucket
    })
}

#[async_trait]
impl MetricsSource for FakeMetrics {
    fn name(&self) -> &str {
        &self.name
    }
    async fn query_range(
        &self,
        query: &MetricQuery,
        range: TimeRange,
        step_ms: i64,
    ) -> SourceResult<Vec<Series>> {
        self.control.enter().await?;
        Ok(self.evaluate(query, range, step_ms))
    }
    async fn label_values(&self, label: &str, range: TimeRange) -> SourceResult<Vec<String>> {
        self.control.enter().await?;
        let values: BTreeSet<String> = self
            .series
            .iter()
            .filter(|s| s.points.iter().any(|p| range.contains(p.0)))
            .filter_map(|s| s.labels.get(label).cloned())
            .collect();
        Ok(values.into_iter().collect())
    }
}

/// Pages of `items` from a numeric cursor.
fn page<T: Clone>(
    items: Vec<&T>,
    cursor: Option<&str>,
    limit: usize,
    source: &str,
) -> SourceResult<Page<T>> {
    let start = match cursor {
        None => 0,
        Some(c) => c.parse::<usize>().map_err(|_| SourceError::QueryRejected {
            source_name: source.to_string(),
            detail: format!("bad cursor {c:?}"),
        })?,
    };
    let end = (start + limit.max(1)).min(items.len());
    let next = (end < items.len()).then(|| end.to_string());
    Ok(Page {
        items: items[start.min(end)..end]
            .iter()
            .map(|x| (*x).clone())
            .collect(),
        next,
        problems: Vec::new(),
    })
}

/// Logs from a vector (sorted by time on construction).
#[derive(Debug, Clone)]
pub struct FakeLogs {
    name: String,
    records: Vec<LogRecord>,
    /// Problems reported with the first page (malformed lines).
    pub problems: Vec<String>,
    pub control: FakeControl,
}

impl FakeLogs {
    pub fn new(name: &str, mut records: Vec<LogRecord>) -> Self {
        records.sort_by_key(|r| r.ts);
        Self {
            name: name.to_string(),
            records,
            problems: Vec::new(),
            control: FakeControl::default(),
        }
    }
    pub fn with_problems(mut self, problems: Vec<String>) -> Self {
        self.problems = problems;
        self
    }
}

#[async_trait]
impl LogSource for FakeLogs {
    fn name(&self) -> &str {
        &self.name
    }
    async fn fetch_logs(
        &self,
        query: &LogQuery,
        range: TimeRange,
        cursor: Option<&str>,
        limit: usize,
    ) -> SourceResult<Page<LogRecord>> {
        self.control.enter().await?;
        let items: Vec<&LogRecord> = self
            .records
            .iter()
            .filter(|r| range.contains(r.ts))
            .filter(|r| query.service.as_ref().is_none_or(|s| *s == r.service))
            .filter(|r| query.min_level.is_none_or(|l| r.level >= l))
            .collect();
        let mut p = page(items, cursor, limit, &self.name)?;
        if cursor.is_none() {
            p.problems = self.problems.clone();
        }
        Ok(p)
    }
}

/// Traces from a vector of spans (sorted by start on construction).
#[derive(Debug, Clone)]
pub struct FakeTraces {
    name: String,
    spans: Vec<Span>,
    pub control: FakeControl,
}

impl FakeTraces {
    pub fn new(name: &str, mut spans: Vec<Span>) -> Self {
        spans.sort_by_key(|s| s.start);
        Self {
            name: name.to_string(),
            spans,
            control: FakeControl::default(),
        }
    }
}

#[async_trait]
impl TraceSource for FakeTraces {
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
        self.control.enter().await?;
        let items: Vec<&Span> = self
            .spans
            .iter()
            .filter(|s| range.contains(s.start) && service.is_none_or(|x| x == s.service))
            .collect();
        page(items, cursor, limit, &self.name)
    }
    async fn call_graph(&self, range: TimeRange) -> SourceResult<CallGraph> {
        self.control.enter().await?;
        let mut g = CallGraph::default();
        for s in self.spans.iter().filter(|s| range.contains(s.start)) {
            if let (SpanKind::Client, Some(peer)) = (s.kind, &s.peer_service) {
                g.add(&s.service, peer);
            }
        }
        Ok(g)
    }
}

/// Change events from a vector.
#[derive(Debug, Clone)]
pub struct FakeChanges {
    name: String,
    events: Vec<ChangeEvent>,
    pub control: FakeControl,
}

impl FakeChanges {
    pub fn new(name: &str, mut events: Vec<ChangeEvent>) -> Self {
        events.sort_by_key(|e| e.ts);
        Self {
            name: name.to_string(),
            events,
            control: FakeControl::default(),
        }
    }
}

#[async_trait]
impl ChangeSource for FakeChanges {
    fn name(&self) -> &str {
        &self.name
    }
    async fn fetch_changes(&self, range: TimeRange) -> SourceResult<Vec<ChangeEvent>> {
        self.control.enter().await?;
        Ok(self
            .events
            .iter()
            .filter(|e| range.contains(e.ts))
            .cloned()
            .collect())
    }
}

/// A scripted language model for tests of the LLM steps: answers come from a queue in
/// order (text or an error), then a fixed fallback answer; every request is kept for
/// inspection. Tokens are counted with [`crate::llm::approximate_tokens`]; the usage it
/// reports is the count plus the answer's length / 4, or nothing when told so.
#[derive(Debug, Default)]
pub struct ScriptedModel {
    model: String,
    answers: Mutex<std::collections::VecDeque<Result<String, crate::llm::LlmError>>>,
    fallback: Option<String>,
    report_usage: bool,
    requests: Mutex<Vec<crate::llm::ChatRequest>>,
}

impl ScriptedModel {
    /// A model named `model` (priced by that name) that reports usage.
    pub fn new(model: &str) -> Self {
        Self {
            model: model.to_string(),
            report_usage: true,
            ..Self::default()
        }
    }
    /// Queue an answer.
    pub fn answer(self, text: impl Into<String>) -> Self {
        self.answers
            .lock()
            .expect("scripted lock")
            .push_back(Ok(text.into()));
        self
    }
    /// Queue a failure.
    pub fn fail(self, error: crate::llm::LlmError) -> Self {
        self.answers
            .lock()
            .expect("scripted lock")
            .push_back(Err(error));
        self
    }
    /// The answer once the queue is empty (without one, an empty queue is an error).
    pub fn otherwise(mut self, text: impl Into<String>) -> Self {
        self.fallback = Some(text.into());
        self
    }
    /// Report no usage (the engine must fall back to its own count).
    pub fn without_usage(mut self) -> Self {
        self.report_usage = false;
        self
    }
    /// Requests received so far.
    pub fn requests(&self) -> Vec<crate::llm::ChatRequest> {
        self.requests.lock().expect("scripted lock").clone()
    }
}

#[async_trait]
impl crate::llm::LanguageModel for ScriptedModel {
    fn provider(&self) -> &str {
        "scripted"
    }
    fn model(&self) -> &str {
        &self.model
    }
    fn count_prompt_tokens(&self, request: &crate::llm::ChatRequest) -> u64 {
        crate::llm::approximate_tokens(request)
    }
    async fn complete(
        &self,
        request: &crate::llm::ChatRequest,
    ) -> Result<crate::llm::ChatResponse, crate::llm::LlmError> {
        self.requests
            .lock()
            .expect("scripted lock")
            .push(request.clone());
        let next = self.answers.lock().expect("scripted lock").pop_front();
        let text = match next {
            Some(answer) => answer?,
            None => self
                .fallback
                .clone()
                .ok_or_else(|| crate::llm::LlmError::Unavailable {
                    provider: "scripted".into(),
                    detail: "no scripted answer left".into(),
                })?,
        };
        let usage = self.report_usage.then(|| crate::llm::Usage {
            prompt_tokens: crate::llm::approximate_tokens(request),
            completion_tokens: (text.len() as u64).div_ceil(4),
        });
        Ok(crate::llm::ChatResponse {
            content: text,
            usage,
            model: self.model.clone(),
            finish_reason: Some("stop".into()),
        })
    }
}
