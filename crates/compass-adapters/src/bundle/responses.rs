//! The line format of `responses.jsonl`, the recorded answers of a recorded bundle
//! (see "Recorded bundles" in `docs/bundle-format.md`), shared by the recorder
//! (`crate::record`, which writes it) and replay (module `replay`, which reads it).
//!
//! One line per distinct port call: `port`, `call`, `request` (matched exactly on
//! replay: [`Request::key`] is its canonical JSON), then either `response` or `error`
//! (a `SourceError`). Answers use the model's own JSON, except that floats that a JSON
//! reader would not give back bit for bit are written as strings ([`Float`]), so a
//! replay computes exactly what the recorded investigation computed.

use super::error::json_message;
use super::time;
use compass_core::{
    CallGraph, ChangeEvent, EpochMs, LogLevel, LogRecord, MetricQuery, Series, Span, SpanKind,
    SpanStatus, TimeRange,
};
use compass_engine::{LogQuery, Page, SourceError};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

/// The recorded answers of a recorded bundle.
pub(crate) const RESPONSES: &str = "responses.jsonl";

/// The data ports a recording covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PortKind {
    Metrics,
    Logs,
    Traces,
    Changes,
}

impl PortKind {
    pub const ALL: [PortKind; 4] = [
        PortKind::Metrics,
        PortKind::Logs,
        PortKind::Traces,
        PortKind::Changes,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            PortKind::Metrics => "metrics",
            PortKind::Logs => "logs",
            PortKind::Traces => "traces",
            PortKind::Changes => "changes",
        }
    }
}

/// The `recording` section of a recorded bundle's `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recording {
    /// The ports the investigation had and the name of the source behind each; replay
    /// offers exactly these ports, under these names.
    pub sources: BTreeMap<PortKind, String>,
    /// Distinct requests recorded (lines of `responses.jsonl`).
    pub requests: usize,
    /// How many of them were answered with an error.
    pub errors: usize,
    /// The query text each source gave for evidence (`query_text`), by
    /// [`query_text_key`], so a replay cites the queries the live run sent.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query_texts: BTreeMap<String, String>,
}

/// The key of a recorded query text: the port and the query's debug rendering.
pub fn query_text_key(port: PortKind, query: &dyn fmt::Debug, service_label: &str) -> String {
    format!("{} {service_label} {query:?}", port.as_str())
}

/// One port call, as recorded and as matched on replay (exactly, field by field).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "call", content = "request", rename_all = "snake_case")]
pub(crate) enum Request {
    QueryRange {
        query: MetricQuery,
        #[serde(with = "RangeDef")]
        range: TimeRange,
        step_ms: i64,
    },
    LabelValues {
        label: String,
        #[serde(with = "RangeDef")]
        range: TimeRange,
    },
    FetchLogs {
        #[serde(with = "LogQueryDef")]
        query: LogQuery,
        #[serde(with = "RangeDef")]
        range: TimeRange,
        #[serde(default)]
        cursor: Option<String>,
        limit: usize,
    },
    FetchSpans {
        #[serde(with = "RangeDef")]
        range: TimeRange,
        #[serde(default)]
        service: Option<String>,
        #[serde(default)]
        cursor: Option<String>,
        limit: usize,
    },
    CallGraph {
        #[serde(with = "RangeDef")]
        range: TimeRange,
    },
    FetchChanges {
        #[serde(with = "RangeDef")]
        range: TimeRange,
    },
}

impl Request {
    pub(crate) fn port(&self) -> PortKind {
        match self {
            Request::QueryRange { .. } | Request::LabelValues { .. } => PortKind::Metrics,
            Request::FetchLogs { .. } => PortKind::Logs,
            Request::FetchSpans { .. } | Request::CallGraph { .. } => PortKind::Traces,
            Request::FetchChanges { .. } => PortKind::Changes,
        }
    }

    pub(crate) fn range(&self) -> TimeRange {
        match self {
            Request::QueryRange { range, .. }
            | Request::LabelValues { range, .. }
            | Request::FetchLogs { range, .. }
            | Request::FetchSpans { range, .. }
            | Request::CallGraph { range }
            | Request::FetchChanges { range } => *range,
        }
    }

    /// The match key: the request's canonical JSON.
    pub(crate) fn key(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| format!("{self:?}"))
    }
}

/// A successful answer to a [`Request`] (the variant follows the call).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Answer {
    Series(Vec<Series>),
    Labels(Vec<String>),
    Logs(Page<LogRecord>),
    Spans(Page<Span>),
    Graph(CallGraph),
    Changes(Vec<ChangeEvent>),
}

/// Serde for [`SourceError`]: `{"kind": "timeout", "source_name": ..., ...}`.
#[derive(Serialize, Deserialize)]
#[serde(remote = "SourceError", tag = "kind", rename_all = "snake_case")]
enum SourceErrorDef {
    NotFound { source_name: String, detail: String },
    BadData { source_name: String, detail: String },
    Timeout { source_name: String, after_ms: u64 },
    Unavailable { source_name: String, detail: String },
    QueryRejected { source_name: String, detail: String },
}

#[derive(Serialize, Deserialize)]
struct ErrorLine(#[serde(with = "SourceErrorDef")] SourceError);

/// One line of `responses.jsonl`, as written.
#[derive(Serialize)]
struct LineOut<'a> {
    port: PortKind,
    #[serde(flatten)]
    request: &'a Request,
    #[serde(skip_serializing_if = "Option::is_none")]
    response: Option<AnswerOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorLine>,
}

/// One line of `responses.jsonl`, as read (the request and the answer are decoded
/// once the call is known).
#[derive(Deserialize)]
struct LineIn {
    port: PortKind,
    call: String,
    request: Value,
    #[serde(default)]
    response: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum AnswerOut<'a> {
    Series(Vec<SeriesLine>),
    Labels(&'a [String]),
    Logs(PageLine<&'a LogRecord>),
    Spans(PageLine<SpanLine>),
    Graph(&'a CallGraph),
    Changes(&'a [ChangeEvent]),
}

#[derive(Serialize, Deserialize)]
struct PageLine<T> {
    items: Vec<T>,
    #[serde(default)]
    next: Option<String>,
    #[serde(default)]
    problems: Vec<String>,
}

impl<T> PageLine<T> {
    fn of<'a, U>(page: &'a Page<U>, item: impl Fn(&'a U) -> T) -> Self {
        PageLine {
            items: page.items.iter().map(item).collect(),
            next: page.next.clone(),
            problems: page.problems.clone(),
        }
    }
    fn into_page<U>(self, item: impl Fn(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(item).collect(),
            next: self.next,
            problems: self.problems,
        }
    }
}

/// [`Series`] with its values as [`Float`]s.
#[derive(Serialize, Deserialize)]
struct SeriesLine {
    labels: BTreeMap<String, String>,
    points: Vec<(EpochMs, Float)>,
}

/// Serde for [`Span`] with its duration as a [`Float`].
#[derive(Serialize, Deserialize)]
#[serde(remote = "Span")]
struct SpanDef {
    trace_id: String,
    span_id: String,
    #[serde(default)]
    parent_id: Option<String>,
    service: String,
    operation: String,
    kind: SpanKind,
    start: EpochMs,
    #[serde(with = "float")]
    duration_ms: f64,
    status: SpanStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    peer_service: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct SpanLine(#[serde(with = "SpanDef")] Span);

/// An `f64` that replays bit for bit: a JSON number when a JSON reader gives back the
/// same bits, otherwise a string (`"NaN"`, `"+Inf"`, `"-Inf"`, or the shortest
/// decimal that parses exactly, e.g. `"0.30000000000000004"`).
#[derive(Debug, Clone, Copy)]
struct Float(f64);

impl Serialize for Float {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v = self.0;
        if v.is_nan() {
            return s.serialize_str("NaN");
        }
        if v.is_infinite() {
            return s.serialize_str(if v > 0.0 { "+Inf" } else { "-Inf" });
        }
        let exact = serde_json::to_string(&v)
            .ok()
            .and_then(|text| serde_json::from_str::<f64>(&text).ok())
            .is_some_and(|back| back.to_bits() == v.to_bits());
        match exact {
            true => s.serialize_f64(v),
            false => s.serialize_str(&format!("{v:?}")),
        }
    }
}

impl<'de> Deserialize<'de> for Float {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct FloatVisitor;
        impl Visitor<'_> for FloatVisitor {
            type Value = Float;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number, or a string holding one (NaN, +Inf, -Inf, 0.1, ...)")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Float, E> {
                Ok(Float(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Float, E> {
                Ok(Float(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Float, E> {
                Ok(Float(v as f64))
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Float, E> {
                let v = match text {
                    "NaN" => f64::NAN,
                    "+Inf" | "Inf" => f64::INFINITY,
                    "-Inf" => f64::NEG_INFINITY,
                    _ => text
                        .parse()
                        .map_err(|_| E::custom(format!("bad number {text:?}")))?,
                };
                Ok(Float(v))
            }
        }
        d.deserialize_any(FloatVisitor)
    }
}

/// Serde for `f64` fields as [`Float`]s.
mod float {
    use super::Float;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        Float(*v).serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Float::deserialize(d)?.0)
    }
}

/// Serde for request ranges: `{"start": RFC 3339, "end": RFC 3339}`.
#[derive(Serialize, Deserialize)]
#[serde(remote = "TimeRange")]
struct RangeDef {
    #[serde(
        serialize_with = "time::serialize_rfc3339",
        deserialize_with = "time::deserialize_rfc3339"
    )]
    start: EpochMs,
    #[serde(
        serialize_with = "time::serialize_rfc3339",
        deserialize_with = "time::deserialize_rfc3339"
    )]
    end: EpochMs,
}

/// Serde for [`LogQuery`]: `{"service": ..., "min_level": ...}`.
#[derive(Serialize, Deserialize)]
#[serde(remote = "LogQuery")]
struct LogQueryDef {
    #[serde(default)]
    service: Option<String>,
    #[serde(default)]
    min_level: Option<LogLevel>,
}
impl From<&Series> for SeriesLine {
    fn from(s: &Series) -> Self {
        SeriesLine {
            labels: s.labels.clone(),
            points: s.points.iter().map(|&(t, v)| (t, Float(v))).collect(),
        }
    }
}

impl From<SeriesLine> for Series {
    fn from(s: SeriesLine) -> Self {
        Series {
            labels: s.labels,
            points: s.points.into_iter().map(|(t, v)| (t, v.0)).collect(),
        }
    }
}

impl<'a> AnswerOut<'a> {
    fn of(answer: &'a Answer) -> Self {
        match answer {
            Answer::Series(series) => {
                AnswerOut::Series(series.iter().map(SeriesLine::from).collect())
            }
            Answer::Labels(values) => AnswerOut::Labels(values),
            Answer::Logs(page) => AnswerOut::Logs(PageLine::of(page, |r| r)),
            Answer::Spans(page) => AnswerOut::Spans(PageLine::of(page, |s| SpanLine(s.clone()))),
            Answer::Graph(graph) => AnswerOut::Graph(graph),
            Answer::Changes(events) => AnswerOut::Changes(events),
        }
    }
}

/// A recorded answer: what the source returned, success or error.
pub(crate) type Recorded = Result<Answer, SourceError>;

/// One line of `responses.jsonl` for `request` and its answer (no newline).
pub(crate) fn encode_line(request: &Request, answer: &Recorded) -> serde_json::Result<String> {
    let (response, error) = match answer {
        Ok(answer) => (Some(AnswerOut::of(answer)), None),
        Err(e) => (None, Some(ErrorLine(e.clone()))),
    };
    serde_json::to_string(&LineOut {
        port: request.port(),
        request,
        response,
        error,
    })
}

/// A line read back.
#[derive(Debug)]
pub(crate) enum Decoded {
    Line(Request, Recorded),
    /// The request can be read but its answer cannot (why).
    BadAnswer(Request, String),
}

/// Read one line; `Err` says why not even its request can be read.
pub(crate) fn decode_line(line: &[u8]) -> Result<Decoded, String> {
    let raw: LineIn = serde_json::from_slice(line).map_err(|e| json_message(&e))?;
    let call = raw.call.clone();
    let tagged = serde_json::Map::from_iter([
        ("call".to_string(), Value::String(raw.call)),
        ("request".to_string(), raw.request),
    ]);
    let request: Request =
        serde_json::from_value(Value::Object(tagged)).map_err(|e| format!("request: {e}"))?;
    if request.port() != raw.port {
        return Err(format!(
            "`{call}` is a {} call, not a {} one",
            request.port().as_str(),
            raw.port.as_str()
        ));
    }
    let answer = match (raw.response, raw.error) {
        (Some(response), None) => decode_answer(&request, response)
            .map(Ok)
            .map_err(|e| format!("response: {e}")),
        (None, Some(error)) => serde_json::from_value::<ErrorLine>(error)
            .map(|e| Err(e.0))
            .map_err(|e| format!("error: {e}")),
        (None, None) => Err("the line has neither a response nor an error".to_string()),
        (Some(_), Some(_)) => Err("the line has both a response and an error".to_string()),
    };
    Ok(match answer {
        Ok(answer) => Decoded::Line(request, answer),
        Err(what) => Decoded::BadAnswer(request, what),
    })
}

fn decode_answer(request: &Request, response: Value) -> serde_json::Result<Answer> {
    use serde_json::from_value;
    Ok(match request {
        Request::QueryRange { .. } => Answer::Series(
            from_value::<Vec<SeriesLine>>(response)?
                .into_iter()
                .map(Series::from)
                .collect(),
        ),
        Request::LabelValues { .. } => Answer::Labels(from_value(response)?),
        Request::FetchLogs { .. } => {
            Answer::Logs(from_value::<PageLine<LogRecord>>(response)?.into_page(|r| r))
        }
        Request::FetchSpans { .. } => {
            Answer::Spans(from_value::<PageLine<SpanLine>>(response)?.into_page(|s| s.0))
        }
        Request::CallGraph { .. } => Answer::Graph(from_value(response)?),
        Request::FetchChanges { .. } => Answer::Changes(from_value(response)?),
    })
}
