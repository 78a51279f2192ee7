//! Follow-up queries the model asks for: checked before anything runs, then run over
//! the investigation's own window through the same ports the agents use.
//!
//! PromQL is parsed with `promql-parser` and accepted only in the shapes the metrics
//! port evaluates (a selector, `rate(selector[w])`, `sum|max|avg by (...)` over either,
//! `histogram_quantile(q, sum by (le, ...) (rate(m_bucket[w])))`), with a literal metric
//! name, no match-everything regex, no offset, `@` or subquery, a rate window of at
//! most an hour and at most three grouping labels. LogQL is accepted as a stream
//! selector that names one service with `=`, followed by at most five line filters
//! (`|=`, `!=`, `|~`, `!~`); the filters run here over the fetched lines. Everything
//! else is rejected with the reason, and the report lists it.

use compass_core::AnalysisWindow;
use compass_core::{
    Aggregation, EpochMs, Evidence, Locator, LogRecord, Matcher, MetricFunc, MetricQuery,
    Observation, ObservationKind, QualityGrade, Sample, Stance, Subject, TimeRange,
    stats::{median, values_in},
};
use promql_parser::label::MatchOp;
use promql_parser::parser::{self, Expr};

use crate::ports::{DataSources, LogQuery};

/// Longest rate window a follow-up may use.
const MAX_RATE_WINDOW_S: u64 = 3600;
/// Most grouping labels.
const MAX_BY_LABELS: usize = 3;
/// Most line filters in a LogQL follow-up.
const MAX_LINE_FILTERS: usize = 5;
/// Most log lines fetched for one follow-up.
const MAX_LOG_LINES: usize = 5_000;
/// Most series described in a result.
const MAX_SERIES: usize = 5;

/// A follow-up that passed the checks.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckedQuery {
    Metrics(MetricQuery),
    Logs {
        service: String,
        filters: Vec<LineFilter>,
    },
}

/// One LogQL line filter.
#[derive(Debug, Clone)]
pub struct LineFilter {
    pub op: FilterOp,
    pub text: String,
    regex: Option<regex::Regex>,
}

impl PartialEq for LineFilter {
    fn eq(&self, other: &Self) -> bool {
        self.op == other.op && self.text == other.text
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterOp {
    Contains,
    NotContains,
    Matches,
    NotMatches,
}

impl LineFilter {
    pub fn keeps(&self, line: &str) -> bool {
        match (self.op, &self.regex) {
            (FilterOp::Contains, _) => line.contains(&self.text),
            (FilterOp::NotContains, _) => !line.contains(&self.text),
            (FilterOp::Matches, Some(re)) => re.is_match(line),
            (FilterOp::NotMatches, Some(re)) => !re.is_match(line),
            _ => true,
        }
    }
}

/// Check a follow-up query. `service_label` is the label naming services.
pub fn check(language: &str, query: &str, service_label: &str) -> Result<CheckedQuery, String> {
    match language {
        "promql" => check_promql(query).map(CheckedQuery::Metrics),
        "logql" => check_logql(query, service_label),
        other => Err(format!("unknown query language `{other}`")),
    }
}

fn check_promql(query: &str) -> Result<MetricQuery, String> {
    let expr = parser::parse(query).map_err(|e| format!("invalid PromQL: {e}"))?;
    let expr = unparen(&expr);
    match expr {
        Expr::Aggregate(a) => {
            let aggregation = match a.op.to_string().as_str() {
                "sum" => Aggregation::Sum,
                "max" => Aggregation::Max,
                "avg" => Aggregation::Avg,
                op => {
                    return Err(format!(
                        "aggregation `{op}` is not supported (use sum, max or avg)"
                    ));
                }
            };
            if a.param.is_some() {
                return Err("aggregations with a parameter are not supported".into());
            }
            let by = match &a.modifier {
                None => Vec::new(),
                Some(promql_parser::parser::LabelModifier::Include(l)) => l.labels.clone(),
                Some(promql_parser::parser::LabelModifier::Exclude(_)) => {
                    return Err("`without (...)` is unbounded; use `by (...)`".into());
                }
            };
            if by.len() > MAX_BY_LABELS {
                return Err(format!("at most {MAX_BY_LABELS} grouping labels"));
            }
            let (metric, matchers, func) = inner(unparen(&a.expr))?;
            Ok(MetricQuery {
                metric,
                matchers,
                func,
                aggregation,
                by,
            })
        }
        Expr::Call(c) if c.func.name == "histogram_quantile" => {
            let q = match c.args.args.first().map(|e| unparen(e)) {
                Some(Expr::NumberLiteral(n)) if (0.0..=1.0).contains(&n.val) => n.val,
                _ => return Err("histogram_quantile needs a quantile between 0 and 1".into()),
            };
            let Some(Expr::Aggregate(a)) = c.args.args.get(1).map(|e| unparen(e)) else {
                return Err(
                    "histogram_quantile must wrap `sum by (le, ...) (rate(..._bucket[w]))`".into(),
                );
            };
            let by = match &a.modifier {
                Some(promql_parser::parser::LabelModifier::Include(l))
                    if a.op.to_string() == "sum" && l.labels.iter().any(|x| x == "le") =>
                {
                    l.labels
                        .iter()
                        .filter(|x| *x != "le")
                        .cloned()
                        .collect::<Vec<_>>()
                }
                _ => return Err("histogram_quantile must wrap `sum by (le, ...)`".into()),
            };
            if by.len() > MAX_BY_LABELS {
                return Err(format!("at most {MAX_BY_LABELS} grouping labels"));
            }
            let (metric, matchers, func) = inner(unparen(&a.expr))?;
            let MetricFunc::Rate { window_s } = func else {
                return Err("histogram_quantile needs a rate over the buckets".into());
            };
            let Some(family) = metric.strip_suffix("_bucket") else {
                return Err("histogram_quantile needs a `_bucket` metric".into());
            };
            Ok(MetricQuery {
                metric: family.to_string(),
                matchers,
                func: MetricFunc::HistogramQuantile { q, window_s },
                aggregation: Aggregation::Sum,
                by,
            })
        }
        other => {
            // A bare selector or rate: aggregate to the series it names.
            let (metric, matchers, func) = inner(other)?;
            Ok(MetricQuery {
                metric,
                matchers,
                func,
                aggregation: Aggregation::Max,
                by: Vec::new(),
            })
        }
    }
}

fn unparen(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => unparen(&p.expr),
        e => e,
    }
}

/// A selector, or `rate(selector[w])`.
fn inner(e: &Expr) -> Result<(String, Vec<Matcher>, MetricFunc), String> {
    match e {
        Expr::VectorSelector(vs) => {
            let (metric, matchers) = selector(vs)?;
            Ok((metric, matchers, MetricFunc::Gauge))
        }
        Expr::Call(c) if c.func.name == "rate" || c.func.name == "increase" => {
            if c.func.name == "increase" {
                return Err("use rate(...) rather than increase(...)".into());
            }
            let Some(Expr::MatrixSelector(ms)) = c.args.args.first().map(|e| unparen(e)) else {
                return Err("rate needs a range selector like `m{...}[5m]`".into());
            };
            let window = ms.range.as_secs();
            if window == 0 || window > MAX_RATE_WINDOW_S {
                return Err(format!(
                    "rate window {window} s is out of bounds (1 s to {MAX_RATE_WINDOW_S} s)"
                ));
            }
            let (metric, matchers) = selector(&ms.vs)?;
            Ok((
                metric,
                matchers,
                MetricFunc::Rate {
                    window_s: window as u32,
                },
            ))
        }
        Expr::Call(c) => Err(format!(
            "function `{}` is not supported in follow-ups",
            c.func.name
        )),
        Expr::Binary(_) => Err("binary expressions are not supported in follow-ups".into()),
        Expr::Subquery(_) => Err("subqueries are unbounded; not allowed".into()),
        Expr::MatrixSelector(_) => Err("a bare range selector needs rate(...)".into()),
        Expr::Aggregate(_) => Err("nested aggregations are not supported".into()),
        _ => Err("not a metric query".into()),
    }
}

fn selector(vs: &promql_parser::parser::VectorSelector) -> Result<(String, Vec<Matcher>), String> {
    if vs.offset.is_some() || vs.at.is_some() {
        return Err(
            "`offset` and `@` are not allowed: follow-ups run over the investigation window".into(),
        );
    }
    if !vs.matchers.or_matchers.is_empty() {
        return Err("`or` matchers are not supported".into());
    }
    let mut name = vs.name.clone();
    let mut out = Vec::new();
    for m in &vs.matchers.matchers {
        if m.name == "__name__" {
            match m.op {
                MatchOp::Equal => name = Some(m.value.clone()),
                _ => {
                    return Err(
                        "the metric name must be a literal, not a pattern (unbounded)".into(),
                    );
                }
            }
            continue;
        }
        let (negate, regex) = match &m.op {
            MatchOp::Equal => (false, false),
            MatchOp::NotEqual => (true, false),
            MatchOp::Re(_) => (false, true),
            MatchOp::NotRe(_) => (true, true),
        };
        if regex && !negate && matches!(m.value.as_str(), ".*" | ".+" | "" | "(.*)" | "(.+)") {
            return Err(format!(
                "matcher `{}=~\"{}\"` matches everything (unbounded)",
                m.name, m.value
            ));
        }
        out.push(Matcher {
            label: m.name.clone(),
            value: m.value.clone(),
            negate,
            regex,
        });
    }
    let name = name.ok_or("the query needs a metric name (a selector without one is unbounded)")?;
    Ok((name, out))
}

fn check_logql(query: &str, service_label: &str) -> Result<CheckedQuery, String> {
    let q = query.trim();
    let close = q
        .strip_prefix('{')
        .and_then(|r| r.find('}'))
        .ok_or("invalid LogQL: a query starts with a stream selector `{label=\"value\"}`")?;
    let inside = &q[1..=close];
    let mut service = None;
    for part in inside.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (label, value) = part
            .split_once('=')
            .ok_or_else(|| format!("invalid LogQL matcher `{part}`"))?;
        let label = label.trim();
        if label.ends_with('!') || value.starts_with('~') {
            return Err(format!(
                "matcher `{part}`: only `{service_label}=\"...\"` selects streams in follow-ups"
            ));
        }
        let value = unquote(value.trim())
            .ok_or_else(|| format!("matcher `{part}`: the value must be quoted"))?;
        if label == service_label {
            service = Some(value);
        } else {
            return Err(format!(
                "label `{label}`: follow-ups select streams by `{service_label}` only"
            ));
        }
    }
    let service = service.ok_or_else(|| {
        format!("the selector must name one service with `{service_label}=\"...\"` (unbounded otherwise)")
    })?;
    let mut rest = q[close + 2..].trim();
    let mut filters = Vec::new();
    while !rest.is_empty() {
        let (op, after) = if let Some(r) = rest.strip_prefix("|=") {
            (FilterOp::Contains, r)
        } else if let Some(r) = rest.strip_prefix("!=") {
            (FilterOp::NotContains, r)
        } else if let Some(r) = rest.strip_prefix("|~") {
            (FilterOp::Matches, r)
        } else if let Some(r) = rest.strip_prefix("!~") {
            (FilterOp::NotMatches, r)
        } else {
            return Err(format!(
                "unsupported LogQL stage at `{}`: follow-ups allow line filters only (|= != |~ !~)",
                rest.chars().take(30).collect::<String>()
            ));
        };
        let after = after.trim_start();
        let (text, len) = quoted_prefix(after).ok_or("a line filter needs a quoted string")?;
        let regex = match op {
            FilterOp::Matches | FilterOp::NotMatches => {
                Some(regex::Regex::new(&text).map_err(|e| format!("invalid regex `{text}`: {e}"))?)
            }
            _ => None,
        };
        filters.push(LineFilter { op, text, regex });
        rest = after[len..].trim_start();
    }
    if filters.len() > MAX_LINE_FILTERS {
        return Err(format!("at most {MAX_LINE_FILTERS} line filters"));
    }
    Ok(CheckedQuery::Logs { service, filters })
}

fn unquote(s: &str) -> Option<String> {
    let (v, len) = quoted_prefix(s)?;
    (len == s.len()).then_some(v)
}

/// A `"..."` or `` `...` `` string at the start of `s`: its value and byte length.
fn quoted_prefix(s: &str) -> Option<(String, usize)> {
    let quote = s.chars().next().filter(|c| *c == '"' || *c == '`')?;
    let mut out = String::new();
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        if escaped {
            out.push(c);
            escaped = false;
        } else if c == '\\' && quote == '"' {
            escaped = true;
        } else if c == quote {
            return Some((out, i + 1));
        } else {
            out.push(c);
        }
    }
    None
}

/// What one follow-up gave: a line for the model and the report, and an observation
/// (id `llm-q<n>`) the hypotheses may cite.
#[derive(Debug, Clone)]
pub struct QueryResult {
    pub detail: String,
    pub observation: Option<Observation>,
}

/// Run a checked follow-up over the investigation window.
pub async fn run(
    checked: &CheckedQuery,
    text: &str,
    id: &str,
    sources: &DataSources,
    window: AnalysisWindow,
    step_ms: i64,
    service_label: &str,
) -> Result<QueryResult, String> {
    match checked {
        CheckedQuery::Metrics(q) => {
            let m = sources
                .metrics
                .as_ref()
                .ok_or("no metrics source is configured")?;
            let series = m
                .query_range(q, window.whole(), step_ms)
                .await
                .map_err(|e| e.to_string())?;
            Ok(describe_series(
                &series,
                q,
                text,
                id,
                m.name(),
                window,
                service_label,
            ))
        }
        CheckedQuery::Logs { service, filters } => {
            let l = sources
                .logs
                .as_ref()
                .ok_or("no logs source is configured")?;
            let query = LogQuery {
                service: Some(service.clone()),
                min_level: None,
            };
            let mut lines: Vec<LogRecord> = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let page = l
                    .fetch_logs(&query, window.whole(), cursor.as_deref(), 1000)
                    .await
                    .map_err(|e| e.to_string())?;
                lines.extend(
                    page.items
                        .into_iter()
                        .filter(|r| filters.iter().all(|f| f.keeps(&r.message))),
                );
                cursor = page.next;
                if cursor.is_none() || lines.len() >= MAX_LOG_LINES {
                    break;
                }
            }
            Ok(describe_logs(&lines, service, text, id, l.name(), window))
        }
    }
}

fn describe_series(
    series: &[compass_core::Series],
    q: &MetricQuery,
    text: &str,
    id: &str,
    source: &str,
    window: AnalysisWindow,
    service_label: &str,
) -> QueryResult {
    if series.is_empty() {
        return QueryResult {
            detail: "no series".into(),
            observation: None,
        };
    }
    // The series whose incident-window peak moved most from its baseline median.
    let mut scored: Vec<(f64, &compass_core::Series, f64, f64, EpochMs)> = series
        .iter()
        .filter_map(|s| {
            let base = median(&values_in(&s.points, window.baseline))?;
            let (at, peak) = s
                .points
                .iter()
                .filter(|(t, _)| window.incident.contains(*t))
                .filter(|(_, v)| v.is_finite())
                .max_by(|a, b| (a.1 - base).abs().total_cmp(&(b.1 - base).abs()))
                .copied()?;
            let ratio = if base.abs() > 1e-12 {
                peak / base
            } else if peak.abs() > 1e-12 {
                f64::INFINITY
            } else {
                1.0
            };
            Some(((ratio.ln()).abs(), s, base, peak, at))
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let lines: Vec<String> = scored
        .iter()
        .take(MAX_SERIES)
        .map(|(_, s, base, peak, at)| {
            let labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!(
                "{{{}}} baseline median {base:.4}, incident peak {peak:.4} at {:+} s",
                labels.join(","),
                (at - window.incident.start) / 1000
            )
        })
        .collect();
    let detail = format!("{} series; {}", series.len(), lines.join("; "));
    let observation = scored.first().map(|(score, s, _, _, at)| {
        let service = s
            .label(service_label)
            .map(str::to_string)
            .or_else(|| {
                q.matchers
                    .iter()
                    .find(|m| m.label == service_label && !m.regex && !m.negate)
                    .map(|m| m.value.clone())
            })
            .unwrap_or_else(|| q.metric.clone());
        Observation {
            id: id.to_string(),
            agent: "llm".into(),
            kind: ObservationKind::MetricChangePoint,
            subject: Subject::service(service),
            span: TimeRange::new(*at, window.incident.end),
            magnitude: if score.is_finite() { *score } else { 10.0 },
            confidence: 0.5,
            evidence: Evidence {
                source: source.to_string(),
                locator: Locator::Query {
                    language: "promql".into(),
                    query: text.to_string(),
                },
                time_range: window.whole(),
                sample: Sample::Points {
                    points: compass_core::stats::sample_around(&s.points, *at, 40),
                },
                quality: QualityGrade::Circumstantial,
                stance: Stance::Supports,
                summary: format!("follow-up asked for by the model: {}", lines[0]),
            },
        }
    });
    QueryResult {
        detail,
        observation,
    }
}

fn describe_logs(
    lines: &[LogRecord],
    service: &str,
    text: &str,
    id: &str,
    source: &str,
    window: AnalysisWindow,
) -> QueryResult {
    let base = lines
        .iter()
        .filter(|r| window.baseline.contains(r.ts))
        .count();
    let incident: Vec<&LogRecord> = lines
        .iter()
        .filter(|r| window.incident.contains(r.ts))
        .collect();
    let per_min = |n: usize, r: TimeRange| n as f64 * 60_000.0 / (r.end - r.start).max(1) as f64;
    let (b, i) = (
        per_min(base, window.baseline),
        per_min(incident.len(), window.incident),
    );
    let samples: Vec<String> = incident
        .iter()
        .take(3)
        .map(|r| r.message.chars().take(200).collect())
        .collect();
    let detail = format!(
        "{} matching lines ({b:.2}/min in the baseline, {i:.2}/min in the incident window){}",
        lines.len(),
        if samples.is_empty() {
            String::new()
        } else {
            format!("; e.g. {}", samples.join(" | "))
        }
    );
    let observation = (!incident.is_empty()).then(|| Observation {
        id: id.to_string(),
        agent: "llm".into(),
        kind: ObservationKind::LogSpike,
        subject: Subject::service(service),
        span: TimeRange::new(incident[0].ts, window.incident.end),
        magnitude: if b > 0.0 { i / b } else { i },
        confidence: 0.5,
        evidence: Evidence {
            source: source.to_string(),
            locator: Locator::Query {
                language: "logql".into(),
                query: text.to_string(),
            },
            time_range: window.whole(),
            sample: Sample::LogLines {
                lines: samples.clone(),
                template: None,
            },
            quality: QualityGrade::Circumstantial,
            stance: Stance::Supports,
            summary: format!("follow-up asked for by the model: {}", detail),
        },
    });
    QueryResult {
        detail,
        observation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(q: &str) -> Result<MetricQuery, String> {
        match check("promql", q, "service")? {
            CheckedQuery::Metrics(m) => Ok(m),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn supported_promql_shapes_become_metric_queries() {
        let q = metrics(
            r#"sum by (service) (rate(http_requests_total{service="cart",code=~"5.."}[5m]))"#,
        )
        .unwrap();
        assert_eq!(q.metric, "http_requests_total");
        assert_eq!(q.func, MetricFunc::Rate { window_s: 300 });
        assert_eq!(q.aggregation, Aggregation::Sum);
        assert_eq!(q.by, vec!["service"]);
        assert_eq!(q.matchers.len(), 2);
        assert!(q.matchers[1].regex);

        let q = metrics(r#"container_memory_working_set_bytes{service="db"}"#).unwrap();
        assert_eq!(q.func, MetricFunc::Gauge);
        assert_eq!(q.aggregation, Aggregation::Max);

        let q = metrics(
            r#"histogram_quantile(0.99, sum by (le, service) (rate(latency_seconds_bucket{service="api"}[1m])))"#,
        )
        .unwrap();
        assert_eq!(q.metric, "latency_seconds");
        assert_eq!(
            q.func,
            MetricFunc::HistogramQuantile {
                q: 0.99,
                window_s: 60
            }
        );
        assert_eq!(q.by, vec!["service"]);
    }

    #[test]
    fn invalid_and_unbounded_promql_is_rejected_with_the_reason() {
        for (q, why) in [
            ("sum(rate(x[5m]", "invalid PromQL"),
            (r#"{__name__=~".+"}"#, "literal"),
            (r#"up{job=~".*"}"#, "matches everything"),
            ("rate(x_total[7d])", "out of bounds"),
            ("rate(x_total[5m] offset 1h)", "offset"),
            ("max_over_time(x[1h:1m])", "not supported"),
            ("sum without (pod) (x)", "unbounded"),
            ("x / y", "binary"),
            ("topk(5, x)", "not supported"),
            ("sum by (a,b,c,d) (x)", "grouping"),
            ("1", "not a metric query"),
        ] {
            let e = metrics(q).unwrap_err();
            assert!(e.contains(why), "{q}: {e}");
        }
        assert!(check("sql", "select 1", "service").is_err());
    }

    #[test]
    fn logql_subset_with_line_filters() {
        let c = check(
            "logql",
            r#"{service="cart"} |= "timeout" != "retry" |~ "pool (exhausted|full)""#,
            "service",
        )
        .unwrap();
        let CheckedQuery::Logs { service, filters } = c else {
            panic!()
        };
        assert_eq!(service, "cart");
        assert_eq!(filters.len(), 3);
        let keep = |l: &str| filters.iter().all(|f| f.keeps(l));
        assert!(keep("db timeout: pool exhausted"));
        assert!(!keep("db timeout: pool exhausted, retry"));
        assert!(!keep("all good"));
    }

    #[test]
    fn invalid_and_unbounded_logql_is_rejected() {
        for (q, why) in [
            (r#"{service=~".+"}"#, "only `service="),
            (r#"{job="x"}"#, "by `service` only"),
            ("{}", "must name one service"),
            (r#"{service="a"} | json"#, "line filters only"),
            (r#"{service="a"} |~ "(""#, "invalid regex"),
            (r#"service="a""#, "stream selector"),
            (
                r#"{service="a"} |= "x" |= "x" |= "x" |= "x" |= "x" |= "x""#,
                "at most",
            ),
        ] {
            let e = check("logql", q, "service").unwrap_err();
            assert!(e.contains(why), "{q}: {e}");
        }
    }
}
