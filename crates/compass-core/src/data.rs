//! Raw telemetry as the analysis sees it: metric series, log records, spans, change
//! events, the call graph, and the structured metric query every metrics source answers.
//!
//! These are the values that cross the ports in `compass-engine`; every data source
//! (bundle, Prometheus, Loki, Tempo, ...) converts its own format into them.

use crate::model::{EpochMs, TimeRange};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// How a metric query turns raw samples into a series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "fn", content = "arg")]
pub enum MetricFunc {
    /// The gauge value as sampled.
    Gauge,
    /// Per-second rate of a counter over `window_s` seconds (counter resets handled).
    Rate { window_s: u32 },
    /// `histogram_quantile(q, sum by (le, ...) (rate(<name>_bucket[window_s])))`.
    HistogramQuantile { q: f64, window_s: u32 },
}

/// How series are combined across the labels not in `by`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    Sum,
    Max,
    Avg,
}

impl Aggregation {
    pub fn as_str(self) -> &'static str {
        match self {
            Aggregation::Sum => "sum",
            Aggregation::Max => "max",
            Aggregation::Avg => "avg",
        }
    }
}

/// A label matcher: `name="value"`, `name!="value"`, `name=~"regex"` or `name!~"regex"`.
/// Regexes are fully anchored, as in Prometheus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Matcher {
    pub label: String,
    pub value: String,
    #[serde(default)]
    pub negate: bool,
    /// `value` is a regular expression.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub regex: bool,
}

impl Matcher {
    pub fn eq(label: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            value: value.into(),
            negate: false,
            regex: false,
        }
    }
    pub fn ne(label: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            negate: true,
            ..Self::eq(label, value)
        }
    }
    /// `label=~"pattern"` (the whole value must match).
    pub fn re(label: impl Into<String>, pattern: impl Into<String>) -> Self {
        Self {
            regex: true,
            ..Self::eq(label, pattern)
        }
    }
    /// The PromQL operator: `=`, `!=`, `=~` or `!~`.
    pub fn op(&self) -> &'static str {
        match (self.regex, self.negate) {
            (false, false) => "=",
            (false, true) => "!=",
            (true, false) => "=~",
            (true, true) => "!~",
        }
    }
    /// Whether `labels` satisfy this matcher (an absent label is the empty value).
    /// Compiles a regex on every call: use [`MatcherSet`] to test many label sets.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        MatcherSet::new(std::slice::from_ref(self)).is_ok_and(|m| m.matches(labels))
    }
    /// `label<op>"value"` with the value escaped as a PromQL string.
    pub fn to_promql(&self) -> String {
        format!("{}{}{}", self.label, self.op(), promql_string(&self.value))
    }
}

/// A double-quoted PromQL/LogQL string literal for `s`.
pub fn promql_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Matchers compiled once, to test many label sets.
#[derive(Debug, Clone)]
pub struct MatcherSet {
    compiled: Vec<(Matcher, Option<regex::Regex>)>,
}

impl MatcherSet {
    /// Fails with a message naming the matcher whose regex does not compile.
    pub fn new(matchers: &[Matcher]) -> Result<Self, String> {
        let compiled = matchers
            .iter()
            .map(|m| {
                let re = if m.regex {
                    Some(
                        regex::Regex::new(&format!("^(?:{})$", m.value))
                            .map_err(|e| format!("invalid regex in `{}`: {e}", m.to_promql()))?,
                    )
                } else {
                    None
                };
                Ok((m.clone(), re))
            })
            .collect::<Result<_, String>>()?;
        Ok(Self { compiled })
    }
    /// Whether every matcher holds; `name_label` is consulted for `__name__`.
    pub fn matches_named(&self, name: &str, labels: &BTreeMap<String, String>) -> bool {
        self.compiled.iter().all(|(m, re)| {
            let v = if m.label == "__name__" {
                name
            } else {
                labels.get(&m.label).map(String::as_str).unwrap_or("")
            };
            let hit = match re {
                Some(re) => re.is_match(v),
                None => v == m.value,
            };
            hit != m.negate
        })
    }
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let name = labels.get("__name__").map(String::as_str).unwrap_or("");
        self.matches_named(name, labels)
    }
}

/// A structured metric query. Every metrics source evaluates it; `to_promql` gives
/// the equivalent PromQL, which is what evidence records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricQuery {
    /// Metric family name (for histograms, the name without `_bucket`).
    pub metric: String,
    pub matchers: Vec<Matcher>,
    pub func: MetricFunc,
    pub aggregation: Aggregation,
    /// Labels kept after aggregation (e.g. `["service"]`).
    pub by: Vec<String>,
}

impl MetricQuery {
    pub fn to_promql(&self) -> String {
        let sel = |name: &str| {
            let m: Vec<String> = self.matchers.iter().map(Matcher::to_promql).collect();
            if m.is_empty() {
                name.to_string()
            } else {
                format!("{name}{{{}}}", m.join(","))
            }
        };
        let by = self.by.join(",");
        match self.func {
            MetricFunc::Gauge => {
                format!(
                    "{} by ({by}) ({})",
                    self.aggregation.as_str(),
                    sel(&self.metric)
                )
            }
            MetricFunc::Rate { window_s } => format!(
                "{} by ({by}) (rate({}[{window_s}s]))",
                self.aggregation.as_str(),
                sel(&self.metric)
            ),
            MetricFunc::HistogramQuantile { q, window_s } => {
                let by_le = if by.is_empty() {
                    "le".to_string()
                } else {
                    format!("le,{by}")
                };
                format!(
                    "histogram_quantile({q}, sum by ({by_le}) (rate({}[{window_s}s])))",
                    sel(&format!("{}_bucket", self.metric))
                )
            }
        }
    }
}

/// One time series: labels after aggregation and points in time order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub labels: BTreeMap<String, String>,
    pub points: Vec<(EpochMs, f64)>,
}

impl Series {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.get(name).map(String::as_str)
    }
    pub fn values(&self) -> Vec<f64> {
        self.points.iter().map(|p| p.1).collect()
    }
}

/// Log severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
}

impl LogLevel {
    /// The conventional upper-case spelling (`INFO`, `ERROR`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "TRACE",
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO",
            LogLevel::Warn => "WARN",
            LogLevel::Error => "ERROR",
            LogLevel::Fatal => "FATAL",
        }
    }
    pub fn is_error(self) -> bool {
        self >= LogLevel::Error
    }
}

/// One log line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
    pub ts: EpochMs,
    pub service: String,
    pub pod: String,
    pub level: LogLevel,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// Where the line came from (file + 1-based line), when the source knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<LineOrigin>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineOrigin {
    pub path: String,
    pub line: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpanKind {
    Server,
    Client,
    Internal,
}

impl SpanKind {
    /// The bundle spelling (`server`, `client`, `internal`).
    pub fn as_str(self) -> &'static str {
        match self {
            SpanKind::Server => "server",
            SpanKind::Client => "client",
            SpanKind::Internal => "internal",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpanStatus {
    Ok,
    Error,
}

impl SpanStatus {
    /// The bundle spelling (`ok`, `error`).
    pub fn as_str(self) -> &'static str {
        match self {
            SpanStatus::Ok => "ok",
            SpanStatus::Error => "error",
        }
    }
}

/// One span of a trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Span {
    pub trace_id: String,
    pub span_id: String,
    #[serde(default)]
    pub parent_id: Option<String>,
    pub service: String,
    pub operation: String,
    pub kind: SpanKind,
    pub start: EpochMs,
    pub duration_ms: f64,
    pub status: SpanStatus,
    /// For client spans: the service called.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_service: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Deploy,
    ConfigChange,
    Scale,
    FeatureFlag,
}

/// A deploy or configuration change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeEvent {
    pub ts: EpochMs,
    pub kind: ChangeKind,
    pub service: String,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// Who calls whom. Edges are `caller -> callee`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallGraph {
    pub edges: BTreeSet<(String, String)>,
}

impl CallGraph {
    pub fn add(&mut self, caller: &str, callee: &str) {
        if caller != callee {
            self.edges.insert((caller.to_string(), callee.to_string()));
        }
    }
    pub fn is_empty(&self) -> bool {
        self.edges.is_empty()
    }
    pub fn services(&self) -> BTreeSet<&str> {
        self.edges
            .iter()
            .flat_map(|(a, b)| [a.as_str(), b.as_str()])
            .collect()
    }
    pub fn callees<'a>(&'a self, service: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.edges
            .iter()
            .filter(move |(a, _)| a == service)
            .map(|(_, b)| b.as_str())
    }
    pub fn callers<'a>(&'a self, service: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.edges
            .iter()
            .filter(move |(_, b)| b == service)
            .map(|(a, _)| a.as_str())
    }
    /// Every service that (transitively) calls `service`: its blast radius upstream.
    pub fn upstream(&self, service: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![service.to_string()];
        while let Some(s) = stack.pop() {
            for c in self.callers(&s) {
                if seen.insert(c.to_string()) {
                    stack.push(c.to_string());
                }
            }
        }
        seen
    }
    /// Every service `service` (transitively) depends on.
    pub fn downstream(&self, service: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![service.to_string()];
        while let Some(s) = stack.pop() {
            for c in self.callees(&s) {
                if seen.insert(c.to_string()) {
                    stack.push(c.to_string());
                }
            }
        }
        seen
    }
}

/// The window an investigation looks at around an incident: a baseline before the
/// onset and the incident window after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnalysisWindow {
    pub baseline: TimeRange,
    pub incident: TimeRange,
}

impl AnalysisWindow {
    /// `baseline_ms` before `onset_hint` and `after_ms` after it; the incident part
    /// starts `lead_ms` before the hint because alerts fire after faults begin.
    pub fn around(onset_hint: EpochMs, baseline_ms: i64, lead_ms: i64, after_ms: i64) -> Self {
        let split = onset_hint - lead_ms;
        Self {
            baseline: TimeRange::new(split - baseline_ms, split),
            incident: TimeRange::new(split, onset_hint + after_ms),
        }
    }
    pub fn whole(&self) -> TimeRange {
        TimeRange::new(self.baseline.start, self.incident.end)
    }
}
