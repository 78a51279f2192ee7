//! The log-file source over small files written into a temporary directory.

use compass_adapters::logfile::{LogFileConfig, LogFileFormat, LogFileSource};
use compass_core::{EpochMs, LogLevel, LogRecord, TimeRange};
use compass_engine::{LogQuery, LogSource, SourceError};
use std::path::Path;

fn ms(rfc3339: &str) -> EpochMs {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .expect("valid test time")
        .timestamp_millis()
}

/// 2024-03-01 00:00 to 2024-03-02 00:00 UTC.
fn day() -> TimeRange {
    TimeRange::new(ms("2024-03-01T00:00:00Z"), ms("2024-03-02T00:00:00Z"))
}

fn write(dir: &Path, name: &str, lines: &[&str]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(dir.join(name), text).expect("write test file");
}

fn source(dir: &Path, pattern: &str, tweak: impl FnOnce(&mut LogFileConfig)) -> LogFileSource {
    let mut config = LogFileConfig {
        paths: vec![dir.join(pattern).display().to_string()],
        ..LogFileConfig::default()
    };
    tweak(&mut config);
    LogFileSource::new("files", config).expect("valid config")
}

/// Every page of a query, with `limit` records per page.
async fn fetch_all(
    src: &LogFileSource,
    query: &LogQuery,
    range: TimeRange,
    limit: usize,
) -> (Vec<LogRecord>, Vec<String>, usize) {
    let (mut records, mut problems, mut pages) = (Vec::new(), Vec::new(), 0);
    let mut cursor: Option<String> = None;
    loop {
        let page = src
            .fetch_logs(query, range, cursor.as_deref(), limit)
            .await
            .expect("page");
        assert!(page.items.len() <= limit, "page over the limit");
        pages += 1;
        records.extend(page.items);
        problems.extend(page.problems);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return (records, problems, pages),
        }
    }
}

#[tokio::test]
async fn each_timestamp_format() {
    let cases: &[(&str, &str)] = &[
        ("2024-03-01T10:00:00Z INFO rfc3339", "2024-03-01T10:00:00Z"),
        (
            "2024-03-01T10:00:00.250+02:00 INFO offset",
            "2024-03-01T08:00:00.250Z",
        ),
        (
            "2024-03-01 10:00:00 INFO space, no offset is UTC",
            "2024-03-01T10:00:00Z",
        ),
        (
            "2024-03-01 10:00:00,125 INFO log4j comma",
            "2024-03-01T10:00:00.125Z",
        ),
        (
            "[2024-03-01 10:00:00] INFO bracketed",
            "2024-03-01T10:00:00Z",
        ),
        ("2024/03/01 10:00:00 [error] nginx", "2024-03-01T10:00:00Z"),
        (
            "Mar  1 10:00:00 host app[1]: syslog",
            "2024-03-01T10:00:00Z",
        ),
        (
            "10.0.0.1 - - [01/Mar/2024:10:00:00 -0700] \"GET / HTTP/1.1\" 200 5",
            "2024-03-01T17:00:00Z",
        ),
        (
            "level=info time=\"2024-03-01T10:00:00Z\" msg=logfmt",
            "2024-03-01T10:00:00Z",
        ),
        (
            r#"{"ts":1709287200,"msg":"epoch seconds"}"#,
            "2024-03-01T10:00:00Z",
        ),
        (
            r#"{"time":1709287200123,"msg":"epoch ms"}"#,
            "2024-03-01T10:00:00.123Z",
        ),
        (
            r#"{"timestamp":1709287200123456789,"msg":"epoch ns"}"#,
            "2024-03-01T10:00:00.123Z",
        ),
        (
            r#"{"@timestamp":"2024-03-01T10:00:00Z","message":"ecs"}"#,
            "2024-03-01T10:00:00Z",
        ),
    ];
    for (i, (line, want)) in cases.iter().enumerate() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "app.log", &[line]);
        let src = source(dir.path(), "*.log", |_| {});
        let (records, problems, _) = fetch_all(&src, &LogQuery::default(), day(), 10).await;
        assert_eq!(problems, Vec::<String>::new(), "case {i}: {line}");
        assert_eq!(records.len(), 1, "case {i}: {line}");
        assert_eq!(records[0].ts, ms(want), "case {i}: {line}");
    }
}

#[tokio::test]
async fn json_lines_with_a_service_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "mixed.jsonl",
        &[
            r#"{"time":"2024-03-01T10:00:00Z","level":"info","svc":"cart","msg":"added","trace_id":"t1","pod":"cart-7"}"#,
            r#"{"time":"2024-03-01T10:00:01Z","level":"error","svc":"payments","msg":"declined"}"#,
            r#"{"time":"2024-03-01T10:00:02Z","level":"warn","msg":"no service field"}"#,
        ],
    );
    let src = source(dir.path(), "*.jsonl", |c| {
        c.format = LogFileFormat::JsonLines;
        c.service_field = Some("svc".to_string());
    });
    let (records, problems, _) = fetch_all(&src, &LogQuery::default(), day(), 10).await;
    assert!(problems.is_empty(), "{problems:?}");
    let got: Vec<_> = records
        .iter()
        .map(|r| (r.service.as_str(), r.level, r.message.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("cart", LogLevel::Info, "added"),
            ("payments", LogLevel::Error, "declined"),
            ("mixed", LogLevel::Warn, "no service field"),
        ]
    );
    assert_eq!(records[0].trace_id.as_deref(), Some("t1"));
    assert_eq!(records[0].pod, "cart-7");
    let origin = records[1].origin.as_ref().expect("origin");
    assert!(origin.path.ends_with("mixed.jsonl"), "{}", origin.path);
    assert_eq!(origin.line, 2);
}

#[tokio::test]
async fn a_fixed_service_names_every_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "x.log", &["2024-03-01T10:00:00Z INFO hello"]);
    let src = source(dir.path(), "x.log", |c| {
        c.service = Some("edge".to_string())
    });
    let (records, _, _) = fetch_all(&src, &LogQuery::default(), day(), 10).await;
    assert_eq!(records[0].service, "edge");
    assert_eq!(records[0].message, "INFO hello");
}

#[tokio::test]
async fn a_stack_trace_joins_its_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "orders.log",
        &[
            "2024-03-01 10:00:00,000 ERROR request failed",
            "java.lang.IllegalStateException: pool exhausted",
            "\tat com.example.Pool.get(Pool.java:42)",
            "Caused by: java.io.IOException: reset",
            "2024-03-01 10:00:01,000 INFO next request",
        ],
    );
    let src = source(dir.path(), "orders.log", |_| {});
    let (records, problems, _) = fetch_all(&src, &LogQuery::default(), day(), 10).await;
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(records.len(), 2);
    assert_eq!(
        records[0].message,
        "ERROR request failed\njava.lang.IllegalStateException: pool exhausted\n\tat com.example.Pool.get(Pool.java:42)\nCaused by: java.io.IOException: reset"
    );
    assert_eq!(records[0].level, LogLevel::Error);
    assert_eq!(records[1].message, "INFO next request");
    assert_eq!(records[1].origin.as_ref().map(|o| o.line), Some(5));
}

#[tokio::test]
async fn an_unparseable_first_line_is_a_problem_naming_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "app.log",
        &[
            "starting up without a timestamp",
            "2024-03-01T10:00:00Z INFO ready",
        ],
    );
    let src = source(dir.path(), "app.log", |_| {});
    let (records, problems, _) = fetch_all(&src, &LogQuery::default(), day(), 10).await;
    assert_eq!(records.len(), 1);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("app.log:1:"), "{}", problems[0]);
    assert!(problems[0].contains("no timestamp"), "{}", problems[0]);
}

/// Two files interleaved in time, read 2 records per page.
#[tokio::test]
async fn pages_with_cursor_and_limit_in_time_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "a.log",
        &[
            "2024-03-01T10:00:00Z INFO a1",
            "2024-03-01T10:00:02Z INFO a2",
            "2024-03-01T10:00:02Z INFO a3",
        ],
    );
    write(
        dir.path(),
        "b.log",
        &[
            "2024-03-01T10:00:01Z INFO b1",
            "2024-03-01T10:00:02Z INFO b2",
        ],
    );
    let src = source(dir.path(), "*.log", |_| {});
    let (records, _, pages) = fetch_all(&src, &LogQuery::default(), day(), 2).await;
    let got: Vec<_> = records.iter().map(|r| r.message.as_str()).collect();
    assert_eq!(got, ["INFO a1", "INFO b1", "INFO a2", "INFO a3", "INFO b2"]);
    assert_eq!(pages, 3);
    let first = src
        .fetch_logs(&LogQuery::default(), day(), None, 2)
        .await
        .expect("page");
    let err = src
        .fetch_logs(&LogQuery::default(), day(), Some("nonsense"), 2)
        .await
        .expect_err("bad cursor");
    assert!(matches!(err, SourceError::QueryRejected { .. }), "{err}");
    assert!(first.next.is_some());
}

#[tokio::test]
async fn only_records_in_the_range() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "app.log",
        &[
            "2024-03-01T09:59:59.999Z INFO before",
            "2024-03-01T10:00:00Z INFO first",
            "2024-03-01T10:59:59.999Z INFO last",
            "2024-03-01T11:00:00Z INFO at the end, excluded",
        ],
    );
    let src = source(dir.path(), "app.log", |_| {});
    let range = TimeRange::new(ms("2024-03-01T10:00:00Z"), ms("2024-03-01T11:00:00Z"));
    let (records, _, _) = fetch_all(&src, &LogQuery::default(), range, 10).await;
    let got: Vec<_> = records.iter().map(|r| r.message.as_str()).collect();
    assert_eq!(got, ["INFO first", "INFO last"]);
    let empty = TimeRange::new(range.end, range.start);
    let (none, _, _) = fetch_all(&src, &LogQuery::default(), empty, 10).await;
    assert!(none.is_empty());
}

#[tokio::test]
async fn service_and_min_level_filters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lines = [
        "2024-03-01T10:00:00Z DEBUG d",
        "2024-03-01T10:00:01Z INFO i",
        "2024-03-01T10:00:02Z WARN w",
        "2024-03-01T10:00:03Z ERROR e",
        "2024-03-01T10:00:04Z FATAL f",
    ];
    write(dir.path(), "cart.log", &lines);
    write(dir.path(), "payments.log", &lines);
    let src = source(dir.path(), "*.log", |_| {});
    let query = LogQuery {
        service: Some("payments".to_string()),
        min_level: Some(LogLevel::Warn),
    };
    let (records, _, _) = fetch_all(&src, &query, day(), 10).await;
    let got: Vec<_> = records
        .iter()
        .map(|r| (r.service.as_str(), r.level))
        .collect();
    assert_eq!(
        got,
        [
            ("payments", LogLevel::Warn),
            ("payments", LogLevel::Error),
            ("payments", LogLevel::Fatal)
        ]
    );
    let unknown = LogQuery {
        service: Some("nobody".to_string()),
        min_level: None,
    };
    let (records, _, _) = fetch_all(&src, &unknown, day(), 10).await;
    assert!(records.is_empty());
}

#[tokio::test]
async fn a_glob_matching_nothing_is_not_found_naming_the_pattern() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = source(dir.path(), "*.log", |_| {});
    let err = src
        .fetch_logs(&LogQuery::default(), day(), None, 10)
        .await
        .expect_err("no files");
    assert!(matches!(err, SourceError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("*.log"), "{err}");
    let err = src.describe().expect_err("no files");
    assert!(err.to_string().contains("*.log"), "{err}");
}

#[test]
fn config_mistakes_are_refused() {
    let err = LogFileSource::new("files", LogFileConfig::default()).expect_err("no paths");
    assert!(err.to_string().contains("paths"), "{err}");
    let bad_glob = LogFileConfig {
        paths: vec!["/var/log/[".to_string()],
        ..LogFileConfig::default()
    };
    let err = LogFileSource::new("files", bad_glob).expect_err("bad glob");
    assert!(err.to_string().contains("not a valid glob"), "{err}");
}

#[test]
fn describe_counts_files_and_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "a.log", &["2024-03-01T10:00:00Z INFO a"]);
    write(dir.path(), "b.log", &["2024-03-01T10:00:00Z INFO b"]);
    let src = source(dir.path(), "*.log", |_| {});
    assert_eq!(src.describe().expect("describe"), "2 files, 56 B");
}

/// `/proc/self/mem` is a regular file whose first page cannot be read, even by root.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn an_unreadable_file_is_named() {
    let config = LogFileConfig {
        paths: vec!["/proc/self/mem".to_string()],
        ..LogFileConfig::default()
    };
    let src = LogFileSource::new("files", config).expect("valid config");
    let err = src
        .fetch_logs(&LogQuery::default(), day(), None, 10)
        .await
        .expect_err("unreadable");
    assert!(matches!(err, SourceError::Unavailable { .. }), "{err}");
    assert!(
        err.to_string().contains("cannot read /proc/self/mem"),
        "{err}"
    );
}
