//! One line of a log file: whether it starts a record (and the record's time, level,
//! service, message, trace id, pod), continues the previous one (a stack trace), or is
//! malformed. Also the level words shared with the Loki adapter.
//!
//! JSON lines: the time is the first of the configured timestamp field, `ts`, `time`,
//! `timestamp`, `@timestamp` (an RFC 3339-like string or epoch s/ms/µs/ns); the level
//! the first of `level`, `severity`, `lvl`, `log.level` (a name, or a pino/bunyan
//! number: 10 trace … 60 fatal), else the first level word of the message; the message
//! `msg`, `message` or `log`, else the line. Plain lines: see
//! [`super::timestamp::line_timestamp`]; the level is the line's first level word; the
//! message is the line without its leading timestamp.

use super::LogFileFormat;
use super::timestamp::{Timestamp, epoch_to_ms, line_timestamp, parse_timestamp};
use compass_core::{EpochMs, LogLevel};
use serde_json::{Map, Value};
use std::borrow::Cow;

const TIMESTAMP_FIELDS: &[&str] = &["ts", "time", "timestamp", "@timestamp"];
const LEVEL_FIELDS: &[&str] = &["level", "severity", "lvl", "log.level"];
const MESSAGE_FIELDS: &[&str] = &["msg", "message", "log"];
const TRACE_ID_FIELDS: &[&str] = &["trace_id", "traceID", "traceId", "trace.id"];
const POD_FIELDS: &[&str] = &["pod", "pod_name", "host", "hostname"];

/// Level names, any case (`warning`, `ERR`, `crit`, ...).
const LEVEL_NAMES: &[(&str, LogLevel)] = &[
    ("trace", LogLevel::Trace),
    ("debug", LogLevel::Debug),
    ("dbg", LogLevel::Debug),
    ("info", LogLevel::Info),
    ("information", LogLevel::Info),
    ("notice", LogLevel::Info),
    ("warn", LogLevel::Warn),
    ("warning", LogLevel::Warn),
    ("error", LogLevel::Error),
    ("err", LogLevel::Error),
    ("severe", LogLevel::Error),
    ("fatal", LogLevel::Fatal),
    ("critical", LogLevel::Fatal),
    ("crit", LogLevel::Fatal),
    ("panic", LogLevel::Fatal),
    ("emerg", LogLevel::Fatal),
    ("alert", LogLevel::Fatal),
];

/// The level a name stands for, in any case.
pub(crate) fn level_from_name(name: &str) -> Option<LogLevel> {
    let name = name.trim();
    LEVEL_NAMES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|&(_, level)| level)
}

/// Every name of a level at or above `min`.
pub(crate) fn level_names_at_least(min: LogLevel) -> impl Iterator<Item = &'static str> {
    LEVEL_NAMES
        .iter()
        .filter(move |(_, level)| *level >= min)
        .map(|&(name, _)| name)
}

/// The first whole word of `text`, in any case, that names a level (only the words a
/// logger writes as a level: not `alert` or `notice`, which are common in messages).
pub(crate) fn first_level_keyword(text: &str) -> Option<LogLevel> {
    const MESSAGE_WORDS: &[&str] = &["alert", "notice", "severe"];
    text.split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| (3..=8).contains(&w.len()))
        .filter(|w| !MESSAGE_WORDS.iter().any(|m| m.eq_ignore_ascii_case(w)))
        .find_map(level_from_name)
}

/// What one line is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Line<'a> {
    Record(Record<'a>),
    /// No timestamp: continues the previous record (or is blank).
    Continuation,
    /// Cannot be read as configured; the text says why.
    Malformed(String),
}

/// The parts of a record's first line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Record<'a> {
    pub ts: Timestamp,
    pub level: LogLevel,
    /// From the configured JSON service field, when the line has it.
    pub service: Option<Cow<'a, str>>,
    pub message: Cow<'a, str>,
    pub trace_id: Option<String>,
    pub pod: Option<String>,
}

/// How to read lines (from the source's config).
#[derive(Debug, Clone, Copy)]
pub(crate) struct LineRules<'c> {
    pub format: LogFileFormat,
    pub timestamp_field: Option<&'c str>,
    pub service_field: Option<&'c str>,
    /// Picks the year of yearless (syslog) timestamps.
    pub year_ref: EpochMs,
}

impl LineRules<'_> {
    pub fn parse<'a>(&self, line: &'a str) -> Line<'a> {
        if line.trim().is_empty() {
            return Line::Continuation;
        }
        let json_like = line.trim_start().starts_with('{');
        match self.format {
            LogFileFormat::JsonLines if !json_like => {
                Line::Malformed("not a JSON object (the format is json_lines)".to_string())
            }
            LogFileFormat::JsonLines => match serde_json::from_str(line) {
                Ok(object) => self.json_record(line, object),
                Err(e) => Line::Malformed(format!("not a JSON object ({e})")),
            },
            LogFileFormat::Auto if json_like => match serde_json::from_str(line) {
                Ok(object) => self.json_record(line, object),
                Err(_) => self.plain_record(line),
            },
            LogFileFormat::Auto | LogFileFormat::Plain => self.plain_record(line),
        }
    }

    fn plain_record<'a>(&self, line: &'a str) -> Line<'a> {
        let Some(found) = line_timestamp(line, self.year_ref) else {
            return Line::Continuation;
        };
        let message = line[found.prefix_len..].trim_start();
        let message = if message.is_empty() { line } else { message };
        Line::Record(Record {
            ts: found.ts,
            level: first_level_keyword(line).unwrap_or(LogLevel::Info),
            service: None,
            message: Cow::Borrowed(message),
            trace_id: None,
            pod: None,
        })
    }

    fn json_record<'a>(&self, line: &'a str, mut object: Map<String, Value>) -> Line<'a> {
        let ts_fields = self
            .timestamp_field
            .into_iter()
            .chain(TIMESTAMP_FIELDS.iter().copied());
        let Some((field, value)) = ts_fields
            .filter_map(|f| object.get(f).map(|v| (f, v)))
            .next()
        else {
            return Line::Malformed(format!(
                "JSON line without a timestamp field (looked for {})",
                self.timestamp_field
                    .into_iter()
                    .chain(TIMESTAMP_FIELDS.iter().copied())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        };
        let Some(ts) = json_timestamp(value, self.year_ref) else {
            return Line::Malformed(format!("field `{field}` is not a timestamp: {value}"));
        };
        let service = self
            .service_field
            .and_then(|f| take_string(&mut object, &[f]))
            .map(Cow::Owned);
        let pod = take_string(&mut object, POD_FIELDS);
        let parts = JsonParts::take(&mut object);
        let level = parts
            .level
            .or_else(|| parts.message.as_deref().and_then(first_level_keyword))
            .unwrap_or(LogLevel::Info);
        Line::Record(Record {
            ts,
            level,
            service,
            message: parts.message.map_or(Cow::Borrowed(line), Cow::Owned),
            trace_id: parts.trace_id,
            pod,
        })
    }
}

/// What a JSON log line says about itself (also read by the Loki adapter).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct JsonParts {
    /// From the first level field (`level`, `severity`, `lvl`, `log.level`).
    pub level: Option<LogLevel>,
    /// From `msg`, `message` or `log`.
    pub message: Option<String>,
    /// From `trace_id`, `traceID`, `traceId` or `trace.id`.
    pub trace_id: Option<String>,
}

impl JsonParts {
    /// The parts of `line` when it is a JSON object.
    pub fn of_line(line: &str) -> Option<Self> {
        if !line.trim_start().starts_with('{') {
            return None;
        }
        let mut object: Map<String, Value> = serde_json::from_str(line).ok()?;
        Some(Self::take(&mut object))
    }

    fn take(object: &mut Map<String, Value>) -> Self {
        Self {
            level: LEVEL_FIELDS
                .iter()
                .find_map(|f| object.get(*f).and_then(json_level)),
            message: take_string(object, MESSAGE_FIELDS),
            trace_id: take_string(object, TRACE_ID_FIELDS),
        }
    }
}

/// A JSON timestamp: a string in one of the text formats, or an epoch number (also as
/// a string of digits).
fn json_timestamp(value: &Value, year_ref: EpochMs) -> Option<Timestamp> {
    let epoch = |ms| Timestamp {
        ms,
        len: 0,
        yearless: false,
    };
    match value {
        Value::Number(n) => n.as_f64().and_then(epoch_to_ms).map(epoch),
        Value::String(s) => {
            let s = s.trim();
            if let Some(ts) = parse_timestamp(s, year_ref).filter(|t| t.len == s.len()) {
                return Some(ts);
            }
            let numeric = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.');
            numeric
                .then(|| s.parse::<f64>().ok())
                .flatten()
                .and_then(epoch_to_ms)
                .map(epoch)
        }
        _ => None,
    }
}

/// A JSON level: a name, or a pino/bunyan number (10, 20, ... 60).
fn json_level(value: &Value) -> Option<LogLevel> {
    match value {
        Value::String(s) => level_from_name(s),
        Value::Number(n) => match n.as_u64()? {
            10 => Some(LogLevel::Trace),
            20 => Some(LogLevel::Debug),
            30 => Some(LogLevel::Info),
            40 => Some(LogLevel::Warn),
            50 => Some(LogLevel::Error),
            60 => Some(LogLevel::Fatal),
            _ => None,
        },
        _ => None,
    }
}

/// Remove and return the first of `fields` holding a non-empty string (numbers are
/// turned into text).
fn take_string(object: &mut Map<String, Value>, fields: &[&str]) -> Option<String> {
    fields.iter().find_map(|f| match object.get(*f)? {
        Value::String(s) if !s.is_empty() => match object.remove(*f) {
            Some(Value::String(s)) => Some(s),
            _ => None,
        },
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(format: LogFileFormat) -> LineRules<'static> {
        LineRules {
            format,
            timestamp_field: None,
            service_field: Some("svc"),
            year_ref: 1_718_000_000_000,
        }
    }

    fn record(line: &str, format: LogFileFormat) -> Record<'_> {
        match rules(format).parse(line) {
            Line::Record(r) => r,
            other => panic!("{line:?} is not a record: {other:?}"),
        }
    }

    #[test]
    fn level_words() {
        assert_eq!(first_level_keyword("2024 [WARN] x"), Some(LogLevel::Warn));
        assert_eq!(
            first_level_keyword("level=info msg=\"after error\""),
            Some(LogLevel::Info)
        );
        assert_eq!(
            first_level_keyword("GET /errors 200"),
            None,
            "whole words only"
        );
        assert_eq!(first_level_keyword("sending alert to team"), None);
        assert_eq!(
            first_level_keyword("E: crit disk full"),
            Some(LogLevel::Fatal)
        );
        assert_eq!(level_from_name("Warning"), Some(LogLevel::Warn));
        assert_eq!(level_from_name("verbose"), None);
    }

    #[test]
    fn json_fields() {
        let line = r#"{"time":"2024-03-01T10:00:00Z","severity":"ERROR","msg":"boom","svc":"cart","traceId":"abc","pod":"cart-1"}"#;
        let r = record(line, LogFileFormat::JsonLines);
        assert_eq!(r.level, LogLevel::Error);
        assert_eq!(r.message, "boom");
        assert_eq!(r.service.as_deref(), Some("cart"));
        assert_eq!(r.trace_id.as_deref(), Some("abc"));
        assert_eq!(r.pod.as_deref(), Some("cart-1"));
        let pino = record(
            r#"{"time":1709287200000,"level":50,"msg":"x"}"#,
            LogFileFormat::Auto,
        );
        assert_eq!(pino.level, LogLevel::Error);
        assert_eq!(pino.ts.ms, 1_709_287_200_000);
        let no_level = record(
            r#"{"ts":"1709287200","message":"WARN low disk"}"#,
            LogFileFormat::Auto,
        );
        assert_eq!(no_level.level, LogLevel::Warn);
        assert_eq!(no_level.ts.ms, 1_709_287_200_000);
    }

    #[test]
    fn malformed_and_continuations() {
        let json = rules(LogFileFormat::JsonLines);
        assert!(matches!(json.parse("plain text"), Line::Malformed(_)));
        assert!(
            matches!(json.parse("{\"msg\":\"x\"}"), Line::Malformed(m) if m.contains("timestamp field"))
        );
        assert!(
            matches!(json.parse("{\"ts\":\"soon\"}"), Line::Malformed(m) if m.contains("`ts`"))
        );
        let auto = rules(LogFileFormat::Auto);
        assert_eq!(auto.parse("\tat a.b(C.java:1)"), Line::Continuation);
        assert_eq!(auto.parse(""), Line::Continuation);
        assert_eq!(
            record("2024-03-01T10:00:00Z ERROR boom", LogFileFormat::Plain).message,
            "ERROR boom"
        );
    }
}
