//! Reading the Nezha files: fault lists, per-pod metric CSVs, the dependency graph,
//! and the per-minute log and trace CSVs.

use super::{NezhaCase, NezhaError, NezhaLabel};
use crate::bundle::metrics::{MetricStore, StoredSeries};
use chrono::NaiveDateTime;
use compass_core::{
    CallGraph, EpochMs, LineOrigin, LogLevel, LogRecord, Span, SpanKind, SpanStatus,
};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// The service a pod belongs to: its name without the last two `-` parts
/// (`ts-contacts-service-866bd68c97-xcqfx` → `ts-contacts-service`).
pub fn service_of_pod(pod: &str) -> String {
    let mut parts: Vec<&str> = pod.split('-').collect();
    if parts.len() > 2 {
        parts.truncate(parts.len() - 2);
    }
    parts.join("-")
}

fn parse_utc(text: &str, format: &str) -> Option<EpochMs> {
    NaiveDateTime::parse_from_str(text, format)
        .ok()
        .map(|t| t.and_utc().timestamp_millis())
}

/// `inject_time` (`YYYY-MM-DD HH:MM:SS`, UTC) in epoch milliseconds.
fn parse_inject_time(text: &str) -> Option<EpochMs> {
    parse_utc(text.trim(), "%Y-%m-%d %H:%M:%S")
}

/// The end of the minute a `HH_MM_<kind>.csv` file holds, on `day`.
pub fn minute_key(day: &str, file_name: &str, kind: &str) -> Option<EpochMs> {
    let stem = file_name.strip_suffix(&format!("_{kind}.csv"))?;
    let (h, m) = stem.split_once('_')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(())?;
    parse_utc(&format!("{day} {h:02}:{m:02}:00"), "%Y-%m-%d %H:%M:%S")
}

fn read_json(path: &Path) -> Result<serde_json::Value, NezhaError> {
    let text = std::fs::read_to_string(path).map_err(|e| NezhaError::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| NezhaError::bad(path, format!("not valid JSON: {e}")))
}

/// Every entry of a fault list, hour by hour (hours sorted as text: the data set
/// writes them zero-padded), cases in the order written.
fn entries(path: &Path) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, NezhaError> {
    let json = read_json(path)?;
    let hours = json.as_object().ok_or_else(|| {
        NezhaError::bad(path, "expected an object of hours, each a list of cases")
    })?;
    let mut out = Vec::new();
    for (hour, list) in hours {
        let list = list
            .as_array()
            .ok_or_else(|| NezhaError::bad(path, format!("hour {hour:?}: expected a list")))?;
        for (i, entry) in list.iter().enumerate() {
            let entry = entry.as_object().ok_or_else(|| {
                NezhaError::bad(
                    path,
                    format!("hour {hour:?} case {}: expected an object", i + 1),
                )
            })?;
            out.push(entry.clone());
        }
    }
    Ok(out)
}

/// The cases of a fault list: `inject_time` only (the labels are not read here).
pub(super) fn read_cases(path: &Path) -> Result<Vec<NezhaCase>, NezhaError> {
    let mut cases = Vec::new();
    for (i, entry) in entries(path)?.iter().enumerate() {
        let text = entry
            .get("inject_time")
            .and_then(|v| v.as_str())
            .ok_or_else(|| NezhaError::bad(path, format!("case {}: no inject_time", i + 1)))?;
        let at = parse_inject_time(text).ok_or_else(|| {
            NezhaError::bad(
                path,
                format!(
                    "case {}: inject_time {text:?} is not YYYY-MM-DD HH:MM:SS",
                    i + 1
                ),
            )
        })?;
        cases.push(NezhaCase {
            inject_time: text.trim().to_string(),
            at,
        });
    }
    Ok(cases)
}

/// The labels of a fault list (blank or malformed labels become `None`).
pub(super) fn read_labels(path: &Path) -> Result<Vec<NezhaLabel>, NezhaError> {
    let text = |entry: &serde_json::Map<String, serde_json::Value>, key: &str| {
        entry
            .get(key)
            .and_then(|v| v.as_str())
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    Ok(entries(path)?
        .iter()
        .map(|e| NezhaLabel {
            inject_time: text(e, "inject_time").unwrap_or_default(),
            service: text(e, "inject_pod").map(|p| service_of_pod(&p)),
            fault_type: text(e, "inject_type"),
        })
        .collect())
}

/// A metric name from a CSV header: `CpuUsageRate(%)` → `cpu_usage_rate_percent`,
/// `PodServerLatencyP95(s)` → `pod_server_latency_p95_seconds`.
pub(super) fn metric_name(header: &str) -> String {
    let (base, unit) = match header.split_once('(') {
        Some((b, u)) => (b, u.trim_end_matches(')')),
        None => (header, ""),
    };
    let mut name = String::new();
    let mut prev_lower = false;
    for c in base.chars() {
        if c.is_ascii_uppercase() && prev_lower {
            name.push('_');
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        match c.is_ascii_alphanumeric() {
            true => name.push(c.to_ascii_lowercase()),
            false if !name.ends_with('_') => name.push('_'),
            false => {}
        }
    }
    let unit = match unit {
        "" => "",
        "%" => "percent",
        "s" => "seconds",
        "m" => "millicores",
        "Mi" => "mebibytes",
        "Ops" => "ops",
        other => other,
    };
    if !unit.is_empty() {
        name.push('_');
        name.push_str(&unit.to_ascii_lowercase());
    }
    name.trim_matches('_').to_string()
}

/// `2022-08-22 03:51:19.607158889 +0000 UTC m=+0.11` → epoch ms.
fn parse_metric_time(text: &str) -> Option<EpochMs> {
    let stamp = text.split(" +").next()?;
    parse_utc(stamp, "%Y-%m-%d %H:%M:%S%.f")
}

fn open_csv(path: &Path) -> Result<(csv::Reader<std::fs::File>, Vec<String>), NezhaError> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .map_err(|e| NezhaError::io(path, e))?;
    let headers = reader
        .headers()
        .map_err(|e| NezhaError::bad(path, format!("unreadable header: {e}")))?
        .iter()
        .map(str::to_string)
        .collect();
    Ok((reader, headers))
}

fn column(path: &Path, headers: &[String], name: &str) -> Result<usize, NezhaError> {
    headers
        .iter()
        .position(|h| h == name)
        .ok_or_else(|| NezhaError::bad(path, format!("no {name:?} column")))
}

/// Every `<pod>_metric.csv` of a `metric/` folder as gauges labelled `service` and
/// `pod`. Rows whose time does not parse are skipped (and named in `problems`); so
/// are cells that are not numbers.
pub(super) fn read_metrics(
    dir: &Path,
    problems: &mut Vec<String>,
) -> Result<MetricStore, NezhaError> {
    let mut store = MetricStore::default();
    let entries = std::fs::read_dir(dir).map_err(|e| NezhaError::io(dir, e))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with("_metric.csv"))
        .collect();
    paths.sort();
    for path in paths {
        let (mut reader, headers) = open_csv(&path)?;
        let time = column(&path, &headers, "Time")?;
        let pod_col = column(&path, &headers, "PodName")?;
        let skip = ["Time", "TimeStamp", "PodName"];
        let value_cols: Vec<usize> = (0..headers.len())
            .filter(|&i| !skip.contains(&headers[i].as_str()))
            .collect();
        let mut pod = None;
        let mut columns: Vec<(Vec<EpochMs>, Vec<f64>)> = vec![Default::default(); headers.len()];
        for (n, row) in reader.records().enumerate() {
            let line = n + 2;
            let row = row.map_err(|e| NezhaError::bad(&path, format!("line {line}: {e}")))?;
            let Some(t) = row.get(time).and_then(parse_metric_time) else {
                problems.push(format!("{} line {line}: unreadable Time", path.display()));
                continue;
            };
            pod.get_or_insert_with(|| row.get(pod_col).unwrap_or_default().to_string());
            for &c in &value_cols {
                let value = row.get(c).and_then(|v| v.trim().parse::<f64>().ok());
                if let Some(v) = value.filter(|v| v.is_finite()) {
                    columns[c].0.push(t);
                    columns[c].1.push(v);
                }
            }
        }
        let Some(pod) = pod.filter(|p| !p.is_empty()) else {
            problems.push(format!("{}: no rows with a pod name", path.display()));
            continue;
        };
        let service = service_of_pod(&pod);
        for c in value_cols {
            let (mut times, mut values) = std::mem::take(&mut columns[c]);
            if !times.is_sorted() {
                let mut pairs: Vec<(EpochMs, f64)> = times.into_iter().zip(values).collect();
                pairs.sort_by_key(|p| p.0);
                (times, values) = pairs.into_iter().unzip();
            }
            let labels = BTreeMap::from([
                ("service".to_string(), service.clone()),
                ("pod".to_string(), pod.clone()),
            ]);
            store.push(StoredSeries {
                name: metric_name(&headers[c]),
                labels,
                times,
                values,
            });
        }
    }
    Ok(store)
}

/// `dependency.csv` (`Source,Target,...`): who calls whom. Rows whose target is an
/// IP address place a service on a host; they are not calls and are left out.
pub(super) fn read_dependency(path: &Path) -> Result<CallGraph, NezhaError> {
    let (mut reader, headers) = open_csv(path)?;
    let (source, target) = (
        column(path, &headers, "Source")?,
        column(path, &headers, "Target")?,
    );
    let mut graph = CallGraph::default();
    for (n, row) in reader.records().enumerate() {
        let row = row.map_err(|e| NezhaError::bad(path, format!("line {}: {e}", n + 2)))?;
        match (row.get(source), row.get(target)) {
            (Some(a), Some(b))
                if !a.is_empty()
                    && !b.is_empty()
                    && a != b
                    && b.parse::<std::net::IpAddr>().is_err() =>
            {
                graph.add(a, b)
            }
            _ => {}
        }
    }
    Ok(graph)
}

/// Add the `HH_MM_<kind>.csv` files of `dir` (if it exists) to `index`.
pub(super) fn index_minutes(
    dir: &Path,
    day: &str,
    kind: &str,
    index: &mut BTreeMap<EpochMs, PathBuf>,
) -> Result<(), NezhaError> {
    if !dir.is_dir() {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir).map_err(|e| NezhaError::io(dir, e))? {
        let path = entry.map_err(|e| NezhaError::io(dir, e))?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if let Some(key) = minute_key(day, &name, kind) {
            index.entry(key).or_insert(path);
        }
    }
    Ok(())
}

/// The level and the message of a container log line such as
/// `16:42:22.382 INFO  t.s.TravelServiceImpl#532 TraceID: ... [getRoute][...]`:
/// the first level word among the leading tokens; the message is what follows it.
pub(super) fn split_level(line: &str) -> (LogLevel, &str) {
    let line = line.trim_end();
    let mut rest = line;
    for _ in 0..4 {
        let trimmed = rest.trim_start();
        let (word, after) = trimmed
            .split_once(char::is_whitespace)
            .unwrap_or((trimmed, ""));
        let level = match word.trim_matches(|c| c == '[' || c == ']' || c == ':') {
            "TRACE" => Some(LogLevel::Trace),
            "DEBUG" => Some(LogLevel::Debug),
            "INFO" => Some(LogLevel::Info),
            "WARN" | "WARNING" => Some(LogLevel::Warn),
            "ERROR" | "SEVERE" => Some(LogLevel::Error),
            "FATAL" => Some(LogLevel::Fatal),
            _ => None,
        };
        if let Some(level) = level {
            return (level, after.trim_start());
        }
        if after.is_empty() {
            break;
        }
        rest = after;
    }
    (LogLevel::Info, line)
}

/// One `HH_MM_log.csv` file. The `Log` column is the container runtime's JSON line;
/// its `log` field is the message. Unreadable rows are skipped and named.
pub(super) fn read_log_file(
    path: &Path,
    problems: &mut Vec<String>,
) -> Result<Vec<LogRecord>, NezhaError> {
    let (mut reader, headers) = open_csv(path)?;
    let ts = column(path, &headers, "TimeUnixNano")?;
    let pod_col = column(path, &headers, "PodName")?;
    let log_col = column(path, &headers, "Log")?;
    let trace_col = headers.iter().position(|h| h == "TraceID");
    let shown = path.display().to_string();
    let mut out = Vec::new();
    for (n, row) in reader.records().enumerate() {
        let row = match row {
            Ok(r) => r,
            Err(e) => {
                problems.push(format!("{shown} record {}: {e}", n + 1));
                continue;
            }
        };
        // The line the record starts on (a quoted field may span lines).
        let line = row.position().map_or(n as u64 + 2, |p| p.line());
        let Some(t) = row.get(ts).and_then(|v| v.trim().parse::<i64>().ok()) else {
            problems.push(format!("{shown} line {line}: unreadable TimeUnixNano"));
            continue;
        };
        let raw = row.get(log_col).unwrap_or_default();
        let text = match serde_json::from_str::<serde_json::Value>(raw) {
            Ok(v) => match v.get("log").and_then(|l| l.as_str()) {
                Some(l) => l.to_string(),
                None => raw.to_string(),
            },
            Err(_) => raw.to_string(),
        };
        let (level, message) = split_level(&text);
        let pod = row.get(pod_col).unwrap_or_default().to_string();
        out.push(LogRecord {
            ts: t / 1_000_000,
            service: service_of_pod(&pod),
            pod,
            level,
            message: message.to_string(),
            trace_id: trace_col
                .and_then(|c| row.get(c))
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            origin: Some(LineOrigin {
                path: shown.clone(),
                line,
            }),
        });
    }
    out.sort_by_key(|r| r.ts);
    Ok(out)
}

/// One `HH_MM_trace.csv` file. The files carry no span kind or status; the kind
/// follows from the tree: a span whose parent is in another service is a server
/// span, a span with a child in another service is a client span calling it, roots
/// are server spans and the rest are internal. Every span's status is OK (the data
/// set records none).
pub(super) fn read_trace_file(
    path: &Path,
    problems: &mut Vec<String>,
) -> Result<Vec<Span>, NezhaError> {
    let (mut reader, headers) = open_csv(path)?;
    let col = |name| column(path, &headers, name);
    let (trace, span, parent) = (col("TraceID")?, col("SpanID")?, col("ParentID")?);
    let (pod, op, start) = (
        col("PodName")?,
        col("OperationName")?,
        col("StartTimeUnixNano")?,
    );
    let (end, duration) = (
        headers.iter().position(|h| h == "EndTimeUnixNano"),
        headers.iter().position(|h| h == "Duration"),
    );
    let shown = path.display();
    let mut spans = Vec::new();
    for (n, row) in reader.records().enumerate() {
        let line = n + 2;
        let row = match row {
            Ok(r) => r,
            Err(e) => {
                problems.push(format!("{shown} line {line}: {e}"));
                continue;
            }
        };
        let get = |c: usize| row.get(c).unwrap_or_default();
        let Some(start_ns) = get(start).trim().parse::<i64>().ok() else {
            problems.push(format!("{shown} line {line}: unreadable StartTimeUnixNano"));
            continue;
        };
        let end_ns = end.and_then(|c| row.get(c)?.trim().parse::<i64>().ok());
        let duration_us = duration.and_then(|c| row.get(c)?.trim().parse::<f64>().ok());
        let duration_ms = match (end_ns, duration_us) {
            (_, Some(us)) => us / 1000.0,
            (Some(e), None) => (e - start_ns) as f64 / 1e6,
            (None, None) => {
                problems.push(format!("{shown} line {line}: no duration"));
                continue;
            }
        };
        let parent_id = match get(parent) {
            "" | "root" => None,
            p => Some(p.to_string()),
        };
        spans.push(Span {
            trace_id: get(trace).to_string(),
            span_id: get(span).to_string(),
            parent_id,
            service: service_of_pod(get(pod)),
            operation: get(op).to_string(),
            kind: SpanKind::Internal,
            start: start_ns / 1_000_000,
            duration_ms: duration_ms.max(0.0),
            status: SpanStatus::Ok,
            peer_service: None,
        });
    }
    infer_kinds(&mut spans);
    spans.sort_by_key(|s| s.start);
    Ok(spans)
}

/// Set kinds (and the peer of client spans) from the service boundaries of the tree.
fn infer_kinds(spans: &mut [Span]) {
    let index: HashMap<(String, String), usize> = spans
        .iter()
        .enumerate()
        .map(|(i, s)| ((s.trace_id.clone(), s.span_id.clone()), i))
        .collect();
    let mut client_peer: Vec<Option<String>> = vec![None; spans.len()];
    let mut server = vec![false; spans.len()];
    for (i, s) in spans.iter().enumerate() {
        match &s.parent_id {
            None => server[i] = true,
            Some(p) => match index.get(&(s.trace_id.clone(), p.clone())) {
                Some(&pi) if spans[pi].service != s.service => {
                    server[i] = true;
                    client_peer[pi].get_or_insert_with(|| s.service.clone());
                }
                Some(_) => {}
                // The parent is in another minute's file: the call came from elsewhere.
                None => server[i] = true,
            },
        }
    }
    for (i, s) in spans.iter_mut().enumerate() {
        if let Some(peer) = client_peer[i].take() {
            s.kind = SpanKind::Client;
            s.peer_service = Some(peer);
        } else if server[i] {
            s.kind = SpanKind::Server;
        }
    }
}
