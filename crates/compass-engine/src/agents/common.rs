//! Helpers shared by the agents: querying the ports over the analysis window (with
//! paging), building observations with exact evidence, and small formatting helpers.

use crate::agent::{AgentContext, AgentError};
use crate::ports::{LogQuery, LogSource, MetricsSource, TraceSource};
use compass_core::stats::sample_around;
use compass_core::{
    Aggregation, EpochMs, Evidence, Locator, LogRecord, Matcher, MetricFunc, MetricQuery,
    Observation, ObservationKind, PathSpan, QualityGrade, Sample, Series, Span, Stance, Subject,
    TimeRange,
};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Records per page when paging through logs and spans.
pub const PAGE_LIMIT: usize = 50_000;
/// Points kept in an evidence sample.
pub const SAMPLE_POINTS: usize = 30;
/// Log lines kept in an evidence sample.
pub const SAMPLE_LINES: usize = 5;

pub fn metrics_source(ctx: &AgentContext) -> Result<&Arc<dyn MetricsSource>, AgentError> {
    ctx.sources
        .metrics
        .as_ref()
        .ok_or(AgentError::MissingSource("metrics"))
}

pub fn logs_source(ctx: &AgentContext) -> Result<&Arc<dyn LogSource>, AgentError> {
    ctx.sources
        .logs
        .as_ref()
        .ok_or(AgentError::MissingSource("logs"))
}

pub fn traces_source(ctx: &AgentContext) -> Result<&Arc<dyn TraceSource>, AgentError> {
    ctx.sources
        .traces
        .as_ref()
        .ok_or(AgentError::MissingSource("traces"))
}

/// Rate window for counters: at least a minute and four steps.
pub fn rate_window_s(step_ms: i64) -> u32 {
    ((step_ms * 4 / 1000).max(60)) as u32
}

/// A query of `metric` grouped by `by`.
pub fn query(metric: &str, matchers: Vec<Matcher>, func: MetricFunc, by: &[&str]) -> MetricQuery {
    MetricQuery {
        metric: metric.to_string(),
        matchers,
        func,
        aggregation: Aggregation::Sum,
        by: by.iter().map(|s| s.to_string()).collect(),
    }
}

/// Evaluate `q` over the whole analysis window at the context's step.
pub async fn run_query(ctx: &AgentContext, q: &MetricQuery) -> Result<Vec<Series>, AgentError> {
    let m = metrics_source(ctx)?;
    Ok(m.query_range(q, ctx.window.whole(), ctx.step_ms).await?)
}

/// Series keyed by the values of `labels` (joined with `/`).
pub fn by_labels(
    series: Vec<Series>,
    labels: &[&str],
) -> BTreeMap<Vec<String>, Vec<(EpochMs, f64)>> {
    series
        .into_iter()
        .filter_map(|s| {
            let key: Option<Vec<String>> = labels
                .iter()
                .map(|l| s.label(l).map(str::to_string))
                .collect();
            Some((key?, s.points))
        })
        .collect()
}

/// Series keyed by one label.
pub fn by_label(series: Vec<Series>, label: &str) -> BTreeMap<String, Vec<(EpochMs, f64)>> {
    by_labels(series, &[label])
        .into_iter()
        .map(|(mut k, v)| (k.remove(0), v))
        .collect()
}

/// Point-wise `a / b` at the timestamps both have (`b` non-zero).
pub fn divide(a: &[(EpochMs, f64)], b: &[(EpochMs, f64)]) -> Vec<(EpochMs, f64)> {
    let den: BTreeMap<EpochMs, f64> = b.iter().copied().collect();
    a.iter()
        .filter_map(|&(t, v)| den.get(&t).filter(|d| **d != 0.0).map(|d| (t, v / d)))
        .collect()
}

/// Evidence for a metric query, with up to 30 points around `onset`.
pub fn metric_evidence(
    source: &str,
    promql: &str,
    range: TimeRange,
    points: &[(EpochMs, f64)],
    onset: EpochMs,
    quality: QualityGrade,
    summary: String,
) -> Evidence {
    Evidence {
        source: source.to_string(),
        locator: Locator::Query {
            language: "promql".into(),
            query: promql.to_string(),
        },
        time_range: range,
        sample: Sample::Points {
            points: sample_around(points, onset, SAMPLE_POINTS),
        },
        quality,
        stance: Stance::Supports,
        summary,
    }
}

/// The text of a metric query as the investigation's metrics source sends it.
pub fn promql_text(ctx: &AgentContext, q: &MetricQuery) -> String {
    match &ctx.sources.metrics {
        Some(m) => m.query_text(q),
        None => q.to_promql(),
    }
}

/// The text of a log query as the investigation's log source sends it.
pub fn log_query_text(ctx: &AgentContext, q: &LogQuery) -> String {
    let label = &ctx.catalog.service_label;
    match &ctx.sources.logs {
        Some(logs) => logs.query_text(q, label),
        None => q.to_logql(label),
    }
}

/// Evidence for log lines: the file and line range when every line knows its origin
/// in one file, else the query the log source sent (`LogSource::query_text`).
pub fn log_evidence(
    source: &str,
    query_text: String,
    range: TimeRange,
    lines: &[&LogRecord],
    template: Option<&str>,
    quality: QualityGrade,
    summary: String,
) -> Evidence {
    let origins: Vec<_> = lines.iter().filter_map(|l| l.origin.as_ref()).collect();
    let one_file = !origins.is_empty()
        && origins.len() == lines.len()
        && origins.iter().all(|o| o.path == origins[0].path);
    let locator = if one_file {
        Locator::File {
            path: origins[0].path.clone(),
            first_line: origins.iter().map(|o| o.line).min().unwrap_or(0),
            last_line: origins.iter().map(|o| o.line).max().unwrap_or(0),
        }
    } else {
        Locator::Query {
            language: "logql".into(),
            query: query_text,
        }
    };
    let shown = lines
        .iter()
        .take(SAMPLE_LINES)
        .map(|l| format_line(l))
        .collect();
    Evidence {
        source: source.to_string(),
        locator,
        time_range: range,
        sample: Sample::LogLines {
            lines: shown,
            template: template.map(|t| t.lines().next().unwrap_or("").to_string()),
        },
        quality,
        stance: Stance::Supports,
        summary,
    }
}

fn format_line(l: &LogRecord) -> String {
    let mut msg: String = l
        .message
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(300)
        .collect();
    if let Some(o) = &l.origin {
        // The evidence locator has the full path; the sample names the file and line.
        let file = std::path::Path::new(&o.path)
            .file_name()
            .map_or(o.path.as_str(), |f| f.to_str().unwrap_or(&o.path));
        msg = format!("{file}:{}: {msg}", o.line);
    }
    format!("{} {} {} {msg}", hhmmss(l.ts), l.service, l.level.as_str())
}

/// The most spans a trace path shows above and below the blamed span.
const PATH_ANCESTORS: usize = 12;
const PATH_CHILDREN: usize = 8;

/// The path through `blamed`'s trace, root first: its ancestors (as far as `all` has
/// them), `blamed`, then its children by start time.
fn trace_path(blamed: &Span, all: &[Span]) -> Vec<PathSpan> {
    let trace: Vec<&Span> = all
        .iter()
        .filter(|s| s.trace_id == blamed.trace_id)
        .collect();
    let by_id: BTreeMap<&str, &Span> = trace.iter().map(|s| (s.span_id.as_str(), *s)).collect();
    let mut chain = vec![blamed];
    while chain.len() <= PATH_ANCESTORS {
        let Some(parent) = chain
            .last()
            .and_then(|s| s.parent_id.as_deref())
            .and_then(|p| by_id.get(p))
        else {
            break;
        };
        chain.push(parent);
    }
    chain.reverse();
    let mut children: Vec<&Span> = trace
        .iter()
        .copied()
        .filter(|s| s.parent_id.as_deref() == Some(blamed.span_id.as_str()))
        .collect();
    children.sort_by_key(|s| s.start);
    children.truncate(PATH_CHILDREN);
    let blamed_depth = chain.len() as u32 - 1;
    let bar = |s: &Span, depth: u32, is_blamed: bool| PathSpan {
        service: s.service.clone(),
        operation: s.operation.clone(),
        start: s.start,
        duration_ms: s.duration_ms,
        depth,
        error: s.status == compass_core::SpanStatus::Error,
        blamed: is_blamed,
    };
    let mut path: Vec<PathSpan> = chain
        .iter()
        .enumerate()
        .map(|(d, s)| bar(s, d as u32, d as u32 == blamed_depth))
        .collect();
    path.extend(children.iter().map(|s| bar(s, blamed_depth + 1, false)));
    path
}

/// Evidence for spans found by a trace search; `all` is every span the search
/// fetched, from which the first example's trace path is drawn.
pub fn span_evidence(
    source: &str,
    search: String,
    range: TimeRange,
    spans: &[&Span],
    all: &[Span],
    quality: QualityGrade,
    summary: String,
) -> Evidence {
    let shown = spans
        .iter()
        .take(SAMPLE_LINES)
        .map(|s| {
            format!(
                "{} trace={} {} {} {} {:.1}ms {}{}",
                hhmmss(s.start),
                s.trace_id,
                s.service,
                s.kind.as_str(),
                s.operation,
                s.duration_ms,
                s.status.as_str(),
                s.peer_service
                    .as_ref()
                    .map(|p| format!(" -> {p}"))
                    .unwrap_or_default()
            )
        })
        .collect();
    Evidence {
        source: source.to_string(),
        locator: Locator::Query {
            language: "trace-search".into(),
            query: search,
        },
        time_range: range,
        sample: Sample::Spans {
            spans: shown,
            path: spans
                .first()
                .map(|s| trace_path(s, all))
                .unwrap_or_default(),
        },
        quality,
        stance: Stance::Supports,
        summary,
    }
}

/// Numbers observations `<agent>-<n>` in creation order.
#[derive(Debug)]
pub struct ObservationLog {
    agent: &'static str,
    pub observations: Vec<Observation>,
}

impl ObservationLog {
    pub fn new(agent: &'static str) -> Self {
        Self {
            agent,
            observations: Vec::new(),
        }
    }
    /// Record an observation from `onset` to the end of the incident window.
    #[allow(clippy::too_many_arguments)]
    pub fn push(
        &mut self,
        kind: ObservationKind,
        subject: Subject,
        onset: EpochMs,
        end: EpochMs,
        magnitude: f64,
        confidence: f64,
        evidence: Evidence,
    ) {
        let id = format!("{}-{}", self.agent, self.observations.len() + 1);
        self.observations.push(Observation {
            id,
            agent: self.agent.to_string(),
            kind,
            subject,
            span: TimeRange::new(onset, end.max(onset)),
            magnitude: if magnitude.is_finite() {
                magnitude
            } else {
                f64::MAX
            },
            confidence: confidence.clamp(0.0, 1.0),
            evidence,
        });
    }
}

/// `HH:MM:SS` (UTC) of an epoch-ms time.
pub fn hhmmss(ms: EpochMs) -> String {
    let s = ms.div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// `HH:MM` (UTC) of an epoch-ms time.
pub fn hhmm(ms: EpochMs) -> String {
    hhmmss(ms)[..5].to_string()
}

/// A ratio for summaries: `x6.2`, or `new` when the base was zero.
pub fn times(ratio: f64) -> String {
    if ratio.is_finite() {
        format!("x{ratio:.1}")
    } else {
        "new".to_string()
    }
}

/// Observations of `kinds` about `service`.
pub fn of_service<'a>(
    observations: &'a [Observation],
    service: &str,
    kinds: &[ObservationKind],
) -> Vec<&'a Observation> {
    observations
        .iter()
        .filter(|o| o.subject.service == service && kinds.contains(&o.kind))
        .collect()
}

/// Mean latency (seconds) of a `_sum`/`_count` family grouped by `by`: the PromQL of
/// the ratio (for evidence) and the mean series per label values.
pub async fn mean_latency(
    ctx: &AgentContext,
    family: &str,
    by: &[&str],
) -> Result<(String, BTreeMap<Vec<String>, Vec<(EpochMs, f64)>>), AgentError> {
    let func = MetricFunc::Rate {
        window_s: rate_window_s(ctx.step_ms),
    };
    let sum_q = query(&format!("{family}_sum"), vec![], func, by);
    let count_q = query(&format!("{family}_count"), vec![], func, by);
    let sums = by_labels(run_query(ctx, &sum_q).await?, by);
    let counts = by_labels(run_query(ctx, &count_q).await?, by);
    let means = sums
        .into_iter()
        .filter_map(|(k, s)| counts.get(&k).map(|c| (k, divide(&s, c))))
        .filter(|(_, v)| !v.is_empty())
        .collect();
    Ok((
        format!(
            "{} / {}",
            promql_text(ctx, &sum_q),
            promql_text(ctx, &count_q)
        ),
        means,
    ))
}

/// Share of server requests that failed, per service: the PromQL (for evidence) and
/// the ratio series.
pub async fn error_ratio(
    ctx: &AgentContext,
) -> Result<(String, BTreeMap<String, Vec<(EpochMs, f64)>>), AgentError> {
    let cat = &ctx.catalog;
    let svc = cat.service_label.as_str();
    let func = MetricFunc::Rate {
        window_s: rate_window_s(ctx.step_ms),
    };
    let errors_q = query(
        &cat.requests_total,
        vec![Matcher::re(&cat.status_label, &cat.error_status)],
        func,
        &[svc],
    );
    let total_q = query(&cat.requests_total, vec![], func, &[svc]);
    let errors = by_label(run_query(ctx, &errors_q).await?, svc);
    let total = by_label(run_query(ctx, &total_q).await?, svc);
    let ratios = total
        .iter()
        .map(|(s, t)| {
            // No error series means no errors: zero at every step with traffic.
            let e = errors.get(s).cloned().unwrap_or_default();
            let e: BTreeMap<EpochMs, f64> = e.into_iter().collect();
            let r = t
                .iter()
                .filter(|p| p.1 > 0.0)
                .map(|&(ts, v)| (ts, e.get(&ts).copied().unwrap_or(0.0) / v))
                .collect();
            (s.clone(), r)
        })
        .collect();
    Ok((
        format!(
            "{} / {}",
            promql_text(ctx, &errors_q),
            promql_text(ctx, &total_q)
        ),
        ratios,
    ))
}

/// Visit every page of log records matching `query` in `range`, in order. The next
/// page is fetched while the current one is visited, so reading and analysis overlap.
/// Page problems are appended to `problems`.
pub async fn for_each_log_page(
    logs: &Arc<dyn LogSource>,
    query: &LogQuery,
    range: TimeRange,
    problems: &mut Vec<String>,
    mut visit: impl FnMut(Vec<compass_core::LogRecord>),
) -> Result<(), AgentError> {
    let fetch = |cursor: Option<String>| {
        let (logs, query) = (Arc::clone(logs), query.clone());
        tokio::spawn(async move {
            logs.fetch_logs(&query, range, cursor.as_deref(), PAGE_LIMIT)
                .await
        })
    };
    let mut pending = Some(fetch(None));
    while let Some(task) = pending.take() {
        let page = task
            .await
            .map_err(|e| AgentError::Internal(format!("log fetch task failed: {e}")))??;
        pending = page.next.clone().map(|cursor| fetch(Some(cursor)));
        problems.extend(page.problems);
        visit(page.items);
    }
    Ok(())
}
