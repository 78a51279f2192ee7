//! The line formats of `logs.jsonl`, `traces.jsonl` and `events.jsonl`, parsed without
//! copying: each line deserializes into a struct of borrowed strings (owned only when
//! the JSON string has escapes), is checked and filtered, and only then converted
//! into the owned `compass-core` value.

use super::error::json_message;
use super::time::{deserialize_rfc3339, parse_rfc3339_ms};
use compass_core::{
    ChangeEvent, ChangeKind, EpochMs, LineOrigin, LogLevel, LogRecord, Span, SpanKind, SpanStatus,
};
use memchr::memmem::Finder;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use std::borrow::Cow;
use std::fmt;
use std::sync::LazyLock;

/// A JSON string borrowed from the line when it has no escapes.
#[derive(Debug)]
pub(crate) struct Str<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct StrVisitor;
        impl<'de> Visitor<'de> for StrVisitor {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        d.deserialize_str(StrVisitor)
    }
}

impl Str<'_> {
    fn as_str(&self) -> &str {
        &self.0
    }
    fn into_string(self) -> String {
        self.0.into_owned()
    }
}

/// Deserialize one line. The line is checked to be UTF-8 once, as a whole, which is
/// much faster than serde_json checking every string of it separately.
fn parse_json<'a, T: Deserialize<'a>>(line: &'a [u8]) -> Result<T, String> {
    let text = std::str::from_utf8(line)
        .map_err(|e| format!("column {}: not valid UTF-8", e.valid_up_to() + 1))?;
    serde_json::from_str(text).map_err(|e| format!("column {}: {}", e.column(), json_message(&e)))
}

fn timestamp(text: &str) -> Result<EpochMs, String> {
    parse_rfc3339_ms(text).ok_or_else(|| {
        format!("bad timestamp {text:?} (expected RFC 3339 like 2026-11-22T10:00:00.000Z)")
    })
}

/// One line of `logs.jsonl`.
#[derive(Debug, Deserialize)]
pub(crate) struct RawLog<'a> {
    #[serde(borrow)]
    timestamp: Str<'a>,
    #[serde(borrow)]
    service: Str<'a>,
    #[serde(borrow)]
    pod: Str<'a>,
    #[serde(borrow)]
    level: Str<'a>,
    #[serde(borrow)]
    message: Str<'a>,
    #[serde(borrow, default)]
    trace_id: Option<Str<'a>>,
}

/// A checked log line: its time and level parsed, strings still borrowed.
#[derive(Debug)]
pub(crate) struct LogLine<'a> {
    pub ts: EpochMs,
    pub level: LogLevel,
    raw: RawLog<'a>,
}

impl<'a> LogLine<'a> {
    pub fn parse(line: &'a [u8]) -> Result<Self, String> {
        let raw: RawLog<'a> = parse_json(line)?;
        let ts = timestamp(raw.timestamp.as_str())?;
        let level = parse_level(raw.level.as_str())?;
        Ok(LogLine { ts, level, raw })
    }

    pub fn service(&self) -> &str {
        self.raw.service.as_str()
    }

    pub fn into_record(self, path: &str, line: u64) -> LogRecord {
        LogRecord {
            ts: self.ts,
            service: self.raw.service.into_string(),
            pod: self.raw.pod.into_string(),
            level: self.level,
            message: self.raw.message.into_string(),
            trace_id: self.raw.trace_id.map(Str::into_string),
            origin: Some(LineOrigin {
                path: path.to_string(),
                line,
            }),
        }
    }
}

fn parse_level(text: &str) -> Result<LogLevel, String> {
    Ok(match text {
        "INFO" => LogLevel::Info,
        "WARN" => LogLevel::Warn,
        "ERROR" => LogLevel::Error,
        "DEBUG" => LogLevel::Debug,
        "TRACE" => LogLevel::Trace,
        "FATAL" => LogLevel::Fatal,
        _ => match text.to_ascii_uppercase().as_str() {
            "INFO" => LogLevel::Info,
            "WARN" | "WARNING" => LogLevel::Warn,
            "ERROR" => LogLevel::Error,
            "DEBUG" => LogLevel::Debug,
            "TRACE" => LogLevel::Trace,
            "FATAL" => LogLevel::Fatal,
            _ => {
                return Err(format!(
                    "unknown level {text:?} (expected TRACE, DEBUG, INFO, WARN, ERROR or FATAL)"
                ));
            }
        },
    })
}

/// The value of a top-level string field written compactly (`"key":"value"`), found
/// without parsing the line; `None` when it isn't there in that form.
fn quick_string_field<'a>(line: &'a [u8], key: &Finder<'_>) -> Option<&'a str> {
    let at = key.find(line)?;
    let rest = &line[at + key.needle().len()..];
    let end = memchr::memchr(b'"', rest)?;
    std::str::from_utf8(&rest[..end]).ok()
}

/// The level of a log line read without parsing it, when written compactly.
pub(crate) fn quick_level(line: &[u8]) -> Option<LogLevel> {
    static LEVEL: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"level\":\""));
    quick_string_field(line, &LEVEL).and_then(|t| parse_level(t).ok())
}

/// The timestamp of a log line, for the index.
pub(crate) fn log_timestamp(line: &[u8]) -> Option<EpochMs> {
    static TIMESTAMP: LazyLock<Finder<'static>> =
        LazyLock::new(|| Finder::new(b"\"timestamp\":\""));
    if let Some(ts) = quick_string_field(line, &TIMESTAMP).and_then(parse_rfc3339_ms) {
        return Some(ts);
    }
    #[derive(Deserialize)]
    struct Ts<'a> {
        #[serde(borrow)]
        timestamp: Str<'a>,
    }
    let ts: Ts<'_> = serde_json::from_slice(line).ok()?;
    parse_rfc3339_ms(ts.timestamp.as_str())
}

/// One line of `traces.jsonl`.
#[derive(Debug, Deserialize)]
pub(crate) struct RawSpan<'a> {
    #[serde(borrow)]
    trace_id: Str<'a>,
    #[serde(borrow)]
    span_id: Str<'a>,
    #[serde(borrow, default)]
    parent_id: Option<Str<'a>>,
    #[serde(borrow)]
    service: Str<'a>,
    #[serde(borrow)]
    operation: Str<'a>,
    #[serde(borrow)]
    kind: Str<'a>,
    #[serde(borrow)]
    start: Str<'a>,
    duration_ms: f64,
    #[serde(borrow)]
    status: Str<'a>,
    #[serde(borrow, default)]
    peer_service: Option<Str<'a>>,
}

/// A checked span line: time, kind and status parsed, strings still borrowed.
#[derive(Debug)]
pub(crate) struct SpanLine<'a> {
    pub start: EpochMs,
    pub kind: SpanKind,
    pub status: SpanStatus,
    raw: RawSpan<'a>,
}

impl<'a> SpanLine<'a> {
    pub fn parse(line: &'a [u8]) -> Result<Self, String> {
        let raw: RawSpan<'a> = parse_json(line)?;
        let start = timestamp(raw.start.as_str())?;
        let kind = match raw.kind.as_str() {
            "server" => SpanKind::Server,
            "client" => SpanKind::Client,
            "internal" => SpanKind::Internal,
            other => {
                return Err(format!(
                    "unknown span kind {other:?} (expected server, client or internal)"
                ));
            }
        };
        let status = match raw.status.as_str() {
            "ok" => SpanStatus::Ok,
            "error" => SpanStatus::Error,
            other => {
                return Err(format!(
                    "unknown span status {other:?} (expected ok or error)"
                ));
            }
        };
        Ok(SpanLine {
            start,
            kind,
            status,
            raw,
        })
    }

    pub fn service(&self) -> &str {
        self.raw.service.as_str()
    }
    pub fn trace_id(&self) -> &str {
        self.raw.trace_id.as_str()
    }
    pub fn span_id(&self) -> &str {
        self.raw.span_id.as_str()
    }
    pub fn parent_id(&self) -> Option<&str> {
        self.raw
            .parent_id
            .as_ref()
            .map(Str::as_str)
            .filter(|p| !p.is_empty())
    }
    pub fn peer_service(&self) -> Option<&str> {
        self.raw
            .peer_service
            .as_ref()
            .map(Str::as_str)
            .filter(|p| !p.is_empty())
    }

    pub fn into_span(self) -> Span {
        Span {
            trace_id: self.raw.trace_id.into_string(),
            span_id: self.raw.span_id.into_string(),
            parent_id: self.raw.parent_id.map(Str::into_string),
            service: self.raw.service.into_string(),
            operation: self.raw.operation.into_string(),
            kind: self.kind,
            start: self.start,
            duration_ms: self.raw.duration_ms,
            status: self.status,
            peer_service: self.raw.peer_service.map(Str::into_string),
        }
    }
}

/// The start of a span line, for the index.
pub(crate) fn span_timestamp(line: &[u8]) -> Option<EpochMs> {
    #[derive(Deserialize)]
    struct Ts<'a> {
        #[serde(borrow)]
        start: Str<'a>,
    }
    let ts: Ts<'_> = serde_json::from_slice(line).ok()?;
    parse_rfc3339_ms(ts.start.as_str())
}

/// One line of `events.jsonl`.
#[derive(Debug, Deserialize)]
struct RawEvent {
    #[serde(deserialize_with = "deserialize_rfc3339")]
    timestamp: EpochMs,
    kind: ChangeKind,
    service: String,
    description: String,
    #[serde(default)]
    version: Option<String>,
}

/// A change event from one line of `events.jsonl`.
pub(crate) fn parse_event(line: &[u8]) -> Result<ChangeEvent, String> {
    let raw: RawEvent = parse_json(line)?;
    Ok(ChangeEvent {
        ts: raw.timestamp,
        kind: raw.kind,
        service: raw.service,
        description: raw.description,
        version: raw.version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_line_borrows_and_unescapes() {
        let line = br#"{"timestamp":"2026-11-22T09:00:00.123Z","service":"cart","pod":"cart-1","level":"WARN","message":"say \"hi\"","trace_id":null,"extra":{"a":[1,2]}}"#;
        let log = LogLine::parse(line).unwrap();
        assert!(matches!(log.raw.service.0, Cow::Borrowed(_)));
        let record = log.into_record("logs.jsonl", 7);
        assert_eq!(record.ts, 1_795_338_000_123);
        assert_eq!(record.level, LogLevel::Warn);
        assert_eq!(record.message, "say \"hi\"");
        assert_eq!(record.trace_id, None);
        assert_eq!(
            record.origin,
            Some(LineOrigin {
                path: "logs.jsonl".into(),
                line: 7
            })
        );
    }

    #[test]
    fn log_line_errors_say_what_is_wrong() {
        let cases: [(&[u8], &str); 4] = [
            (br#"{"timestamp":"2026-11-22T09:00:00.123Z""#, "column 39: EOF while parsing an object"),
            (
                br#"{"timestamp":"2026-11-22T09:00:00.123Z","service":"a","pod":"p","level":"INFO"}"#,
                "missing field `message`",
            ),
            (
                br#"{"timestamp":"22/11/2026","service":"a","pod":"p","level":"INFO","message":"m"}"#,
                "bad timestamp \"22/11/2026\"",
            ),
            (
                br#"{"timestamp":"2026-11-22T09:00:00.123Z","service":"a","pod":"p","level":"LOUD","message":"m"}"#,
                "unknown level \"LOUD\"",
            ),
        ];
        for (line, want) in cases {
            let got = LogLine::parse(line).unwrap_err();
            assert!(got.contains(want), "{got:?} should contain {want:?}");
        }
    }
}
