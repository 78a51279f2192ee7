//! A `query_range` response (Loki HTTP API v1, `resultType: streams`) turned into one
//! time-ordered page of [`LogRecord`]s, and the paging rule.
//!
//! Entries of all streams are merged by (nanosecond time, stream, position). Paging:
//! when a response holds as many entries as were asked for, the entries at its last
//! nanosecond may be cut short, so they are dropped from this page and the next request
//! starts at that nanosecond (Loki's `start` is inclusive): every entry comes exactly
//! once, whichever of the equal-time entries Loki chose to cut. Only when a whole page
//! shares one nanosecond does the next start one nanosecond later, with a note that
//! entries at that instant beyond the page limit may be missing.
//!
//! A record's level is the first of: the configured level label, Loki 3's
//! `detected_level`, a JSON line's level field, the line's (or JSON message's) first
//! level word; else `INFO`. Its message is a JSON line's `msg`/`message`, else the
//! line; its pod the pod label, else `instance`; its trace id a `trace_id`/`traceID`
//! label or JSON field. Labels are looked up in the stream's labels, then in the
//! structured metadata and parsed labels Loki adds as a third element of an entry when
//! asked to categorize labels.

use super::LokiConfig;
use crate::logfile::{JsonParts, first_level_keyword, level_from_name};
use compass_core::{LogLevel, LogRecord};
use compass_engine::{SourceError, SourceResult};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// Problems listed per page (more are counted in one note).
const LISTED_PROBLEMS: usize = 20;

#[derive(Debug, Deserialize)]
pub(crate) struct QueryResponse {
    status: String,
    #[serde(default)]
    data: Option<QueryData>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct QueryData {
    #[serde(rename = "resultType")]
    result_type: String,
    #[serde(default)]
    result: Value,
}

#[derive(Debug, Deserialize)]
struct Stream {
    #[serde(default)]
    stream: BTreeMap<String, String>,
    #[serde(default)]
    values: Vec<Value>,
}

/// One entry, pointing into its stream.
#[derive(Debug)]
struct Entry<'a> {
    ns: i64,
    stream: usize,
    line: &'a str,
    /// Structured metadata and parsed labels (categorized responses only).
    extra: Option<&'a Value>,
}

/// A page read from one response.
#[derive(Debug, Default)]
pub(crate) struct ParsedPage {
    pub records: Vec<LogRecord>,
    /// Where the next request starts (ns), when the response was full.
    pub next_start: Option<i64>,
    pub problems: Vec<String>,
}

/// Turn a response into records: `asked` is the `limit` sent, `min_level` the level
/// below which records are dropped (the query's level filter is a superset).
pub(crate) fn read_page(
    source_name: &str,
    logql: &str,
    response: QueryResponse,
    asked: usize,
    min_level: Option<LogLevel>,
    config: &LokiConfig,
) -> SourceResult<ParsedPage> {
    let bad = |detail: String| SourceError::BadData {
        source_name: source_name.to_string(),
        detail: format!("`{logql}`: {detail}"),
    };
    if response.status != "success" {
        return Err(bad(format!(
            "Loki answered status `{}`: {}",
            response.status,
            response.error.as_deref().unwrap_or("no error message")
        )));
    }
    let data = response
        .data
        .ok_or_else(|| bad("a success response without `data`".to_string()))?;
    if data.result_type != "streams" {
        return Err(bad(format!(
            "expected resultType `streams` for a log query, got `{}`",
            data.result_type
        )));
    }
    let streams: Vec<Stream> = serde_json::from_value(data.result)
        .map_err(|e| bad(format!("the streams are malformed ({e})")))?;
    let mut problems = Vec::new();
    let mut entries = Vec::new();
    let mut received = 0usize;
    for (s, stream) in streams.iter().enumerate() {
        for value in &stream.values {
            received += 1;
            match entry(s, value) {
                Ok(e) => entries.push(e),
                Err(why) => problems.push(format!(
                    "{source_name}: {} entry {why}; skipped",
                    labels_text(&stream.stream)
                )),
            }
        }
    }
    entries.sort_by_key(|e| e.ns);
    let mut next_start = None;
    if received >= asked
        && let Some(last) = entries.last().map(|e| e.ns)
    {
        let before_last = entries.partition_point(|e| e.ns < last);
        if before_last > 0 {
            entries.truncate(before_last);
            next_start = Some(last);
        } else {
            problems.push(format!(
                "{source_name}: all {} entries of a page share the nanosecond {last}; entries at that instant beyond the page limit may be missing (raise the page limit)",
                entries.len()
            ));
            next_start = Some(last.saturating_add(1));
        }
    }
    let records = entries
        .iter()
        .map(|e| record(e, &streams[e.stream].stream, config))
        .filter(|r| min_level.is_none_or(|min| r.level >= min))
        .collect();
    if problems.len() > LISTED_PROBLEMS {
        let more = problems.len() - LISTED_PROBLEMS;
        problems.truncate(LISTED_PROBLEMS);
        problems.push(format!(
            "{source_name}: {more} more malformed entries not listed"
        ));
    }
    Ok(ParsedPage {
        records,
        next_start,
        problems,
    })
}

/// `["<ns>", "<line>"]` or `["<ns>", "<line>", {categorized labels}]`.
fn entry(stream: usize, value: &Value) -> Result<Entry<'_>, String> {
    let parts = value
        .as_array()
        .ok_or_else(|| format!("{value} is not a [timestamp, line] pair"))?;
    let ns = match parts.first() {
        Some(Value::String(s)) => s.parse::<i64>().ok(),
        Some(Value::Number(n)) => n.as_i64(),
        _ => None,
    }
    .filter(|ns| *ns >= 0)
    .ok_or_else(|| {
        let shown = parts
            .first()
            .map_or("nothing".to_string(), Value::to_string);
        format!("with a bad timestamp {shown} (expected nanoseconds since the epoch)")
    })?;
    let line = parts
        .get(1)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("at {ns} without a log line"))?;
    Ok(Entry {
        ns,
        stream,
        line,
        extra: parts.get(2),
    })
}

fn record(e: &Entry<'_>, labels: &BTreeMap<String, String>, config: &LokiConfig) -> LogRecord {
    let label = |name: &str| -> Option<&str> {
        labels.get(name).map(String::as_str).or_else(|| {
            let extra = e.extra?;
            ["structuredMetadata", "parsed"]
                .iter()
                .find_map(|group| extra.get(group)?.get(name)?.as_str())
        })
    };
    let json = JsonParts::of_line(e.line).unwrap_or_default();
    let message = json.message.unwrap_or_else(|| e.line.to_string());
    let level = config
        .level_label
        .as_deref()
        .and_then(&label)
        .and_then(level_from_name)
        .or_else(|| label("detected_level").and_then(level_from_name))
        .or(json.level)
        .or_else(|| first_level_keyword(&message))
        .unwrap_or(LogLevel::Info);
    let trace_id = label("trace_id")
        .or_else(|| label("traceID"))
        .map(str::to_string)
        .or(json.trace_id);
    LogRecord {
        ts: e.ns.div_euclid(1_000_000),
        service: label(&config.service_label).unwrap_or_default().to_string(),
        pod: label(&config.pod_label)
            .or_else(|| label("instance"))
            .unwrap_or_default()
            .to_string(),
        level,
        message,
        trace_id,
        origin: None,
    }
}

/// `{a="1", b="2"}`, for notes.
fn labels_text(labels: &BTreeMap<String, String>) -> String {
    let pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("stream {{{}}}", pairs.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn page(values: Value, asked: usize) -> ParsedPage {
        let response: QueryResponse = serde_json::from_value(json!({
            "status": "success",
            "data": {"resultType": "streams", "result": [
                {"stream": {"service": "a"}, "values": values}
            ]}
        }))
        .expect("response");
        read_page("loki", "{}", response, asked, None, &LokiConfig::default()).expect("page")
    }

    fn times(p: &ParsedPage) -> Vec<i64> {
        p.records.iter().map(|r| r.ts).collect()
    }

    #[test]
    fn a_short_response_is_the_last_page() {
        let p = page(json!([["1000000", "a"], ["2000000", "b"]]), 3);
        assert_eq!(times(&p), [1, 2]);
        assert_eq!(p.next_start, None);
    }

    #[test]
    fn a_full_response_leaves_its_last_instant_to_the_next_page() {
        let p = page(
            json!([["1000000", "a"], ["2000000", "b"], ["2000000", "c"]]),
            3,
        );
        assert_eq!(times(&p), [1]);
        assert_eq!(p.next_start, Some(2_000_000));
    }

    #[test]
    fn a_page_all_at_one_instant_moves_on_with_a_note() {
        let p = page(json!([["5000000", "a"], ["5000000", "b"]]), 2);
        assert_eq!(times(&p), [5, 5]);
        assert_eq!(p.next_start, Some(5_000_001));
        assert!(
            p.problems[0].contains("share the nanosecond 5000000"),
            "{:?}",
            p.problems
        );
    }

    #[test]
    fn bad_entries_are_skipped_with_a_note() {
        let p = page(json!([["x", "a"], ["2000000"], 7, ["3000000", "ok"]]), 10);
        assert_eq!(times(&p), [3]);
        assert_eq!(p.problems.len(), 3, "{:?}", p.problems);
        assert!(
            p.problems[0].contains("bad timestamp \"x\""),
            "{}",
            p.problems[0]
        );
    }
}
