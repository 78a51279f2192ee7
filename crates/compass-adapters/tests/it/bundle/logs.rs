//! Log paging: half-open time windows, filters, cursors that cover every record
//! exactly once, line numbers, and malformed lines reported and skipped.

use super::{at, between, fixture, sources, whole_hour};
use compass_core::{LogLevel, LogRecord, TimeRange};
use compass_engine::{LogQuery, LogSource, Page};

/// Every page of a query, in order.
pub async fn all_pages(
    logs: &dyn LogSource,
    query: &LogQuery,
    range: TimeRange,
    limit: usize,
) -> Vec<Page<LogRecord>> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = logs
            .fetch_logs(query, range, cursor.as_deref(), limit)
            .await
            .unwrap();
        assert!(page.items.len() <= limit);
        cursor = page.next.clone();
        pages.push(page);
        if cursor.is_none() {
            return pages;
        }
    }
}

fn lines(records: &[LogRecord]) -> Vec<u64> {
    records
        .iter()
        .map(|r| r.origin.as_ref().expect("origin").line)
        .collect()
}

async fn fetch_lines(query: LogQuery, range: TimeRange) -> Vec<u64> {
    let logs = sources("tiny").logs.unwrap();
    let page = logs.fetch_logs(&query, range, None, 100).await.unwrap();
    assert_eq!(page.next, None);
    assert!(page.problems.is_empty(), "{:?}", page.problems);
    lines(&page.items)
}

#[tokio::test]
async fn windows_are_half_open() {
    // Lines 4 and 5 are at 09:00:02.000, 8 and 9 at 09:00:05.000.
    assert_eq!(
        fetch_lines(LogQuery::default(), between("00:02.000", "00:05.000")).await,
        [4, 5, 6, 7]
    );
    assert_eq!(
        fetch_lines(LogQuery::default(), between("00:01.501", "00:02.001")).await,
        [4, 5]
    );
    assert_eq!(
        fetch_lines(LogQuery::default(), between("00:05.000", "00:05.001")).await,
        [8, 9]
    );
    assert!(
        fetch_lines(LogQuery::default(), between("00:05.000", "00:05.000"))
            .await
            .is_empty()
    );
    assert!(
        fetch_lines(LogQuery::default(), between("30:00.000", "40:00.000"))
            .await
            .is_empty()
    );
    assert_eq!(
        fetch_lines(LogQuery::default(), whole_hour()).await,
        (1..=12).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn filters_by_service_and_level() {
    let frontend = LogQuery {
        service: Some("frontend".into()),
        min_level: None,
    };
    assert_eq!(
        fetch_lines(frontend, whole_hour()).await,
        [1, 3, 6, 8, 10, 12]
    );
    let errors = LogQuery {
        service: None,
        min_level: Some(LogLevel::Error),
    };
    assert_eq!(fetch_lines(errors, whole_hour()).await, [4, 5, 8, 12]);
    let frontend_warnings = LogQuery {
        service: Some("frontend".into()),
        min_level: Some(LogLevel::Warn),
    };
    assert_eq!(
        fetch_lines(frontend_warnings, whole_hour()).await,
        [3, 8, 12]
    );
    let nobody = LogQuery {
        service: Some("nobody".into()),
        min_level: None,
    };
    assert!(fetch_lines(nobody, whole_hour()).await.is_empty());
}

#[tokio::test]
async fn records_carry_their_fields_and_origin() {
    let logs = sources("tiny").logs.unwrap();
    let page = logs
        .fetch_logs(&LogQuery::default(), whole_hour(), None, 100)
        .await
        .unwrap();
    let first = &page.items[0];
    assert_eq!(first.ts, at("00:00.000"));
    assert_eq!(first.service, "frontend");
    assert_eq!(first.pod, "frontend-1");
    assert_eq!(first.level, LogLevel::Info);
    assert_eq!(first.message, "GET / 200 3ms");
    assert_eq!(
        first.trace_id.as_deref(),
        Some("4bf92f3577b34da6a3ce929d0e0e4736")
    );
    let origin = first.origin.as_ref().unwrap();
    assert_eq!(
        origin.path,
        fixture("tiny").join("logs.jsonl").display().to_string()
    );
    assert_eq!(origin.line, 1);
    // Escapes are decoded; a null or absent trace id is None.
    assert_eq!(page.items[9].message, "said \"hi\" \u{e9} \\ done");
    assert_eq!(page.items[1].trace_id, None);
    assert_eq!(page.items[10].trace_id, None);
}

#[tokio::test]
async fn pages_cover_every_record_once() {
    let logs = sources("tiny").logs.unwrap();
    for limit in [1, 2, 3, 5, 11, 12, 13] {
        let pages = all_pages(logs.as_ref(), &LogQuery::default(), whole_hour(), limit).await;
        let seen: Vec<u64> = pages.iter().flat_map(|p| lines(&p.items)).collect();
        assert_eq!(seen, (1..=12).collect::<Vec<_>>(), "limit {limit}");
        assert_eq!(pages.len(), 12usize.div_ceil(limit), "limit {limit}");
    }
    let frontend = LogQuery {
        service: Some("frontend".into()),
        min_level: None,
    };
    let pages = all_pages(
        logs.as_ref(),
        &frontend,
        between("00:01.000", "00:07.000"),
        2,
    )
    .await;
    let seen: Vec<Vec<u64>> = pages.iter().map(|p| lines(&p.items)).collect();
    assert_eq!(seen, [vec![3, 6], vec![8, 10]]);
}

#[tokio::test]
async fn bad_cursors_and_limits_are_rejected() {
    let logs = sources("tiny").logs.unwrap();
    for cursor in ["", "abc", "5:1", "999999:1", "0:0"] {
        let error = logs
            .fetch_logs(&LogQuery::default(), whole_hour(), Some(cursor), 10)
            .await
            .unwrap_err();
        assert!(
            error.to_string().contains("invalid cursor"),
            "{cursor:?}: {error}"
        );
    }
    let error = logs
        .fetch_logs(&LogQuery::default(), whole_hour(), None, 0)
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("limit must be at least 1"),
        "{error}"
    );
}

#[tokio::test]
async fn malformed_lines_are_reported_and_skipped() {
    let logs = sources("malformed-log").logs.unwrap();
    let page = logs
        .fetch_logs(&LogQuery::default(), whole_hour(), None, 100)
        .await
        .unwrap();
    assert_eq!(lines(&page.items), [1, 2, 4, 9, 11]);
    assert_eq!(
        page.items[4].message, "eleven",
        "the last line has no newline"
    );
    assert_eq!(
        page.problems,
        [
            "logs.jsonl line 3: column 60: EOF while parsing an object",
            "logs.jsonl line 5: column 95: missing field `message`",
            "logs.jsonl line 7: bad timestamp \"2026-11-22 09:00:03\" (expected RFC 3339 like 2026-11-22T10:00:00.000Z)",
            "logs.jsonl line 8: unknown level \"LOUD\" (expected TRACE, DEBUG, INFO, WARN, ERROR or FATAL)",
            "logs.jsonl line 10: column 2: expected ident",
        ]
    );
    // Each problem is reported on the page that read its line, once.
    let pages = all_pages(logs.as_ref(), &LogQuery::default(), whole_hour(), 2).await;
    let problems: Vec<&String> = pages.iter().flat_map(|p| &p.problems).collect();
    assert_eq!(problems.len(), 5);
    assert_eq!(pages.iter().map(|p| p.items.len()).sum::<usize>(), 5);
}

#[tokio::test]
async fn malformed_lines_outside_the_window_are_not_reported() {
    let logs = sources("malformed-log").logs.unwrap();
    // Lines 5 (missing message) and 8 (unknown level) have readable times in the
    // window. Line 7 has none but lies between line 4 (before the window) and line 9
    // (at its end), so it may be in it; line 3 is followed by line 4, so it is not.
    let page = logs
        .fetch_logs(
            &LogQuery::default(),
            between("00:02.000", "00:04.000"),
            None,
            100,
        )
        .await
        .unwrap();
    assert!(page.items.is_empty());
    let cited: Vec<&str> = page
        .problems
        .iter()
        .map(|p| &p[..p.find(':').unwrap()])
        .collect();
    assert_eq!(
        cited,
        [
            "logs.jsonl line 5",
            "logs.jsonl line 7",
            "logs.jsonl line 8"
        ]
    );

    let page = logs
        .fetch_logs(
            &LogQuery::default(),
            between("00:04.000", "00:06.000"),
            None,
            100,
        )
        .await
        .unwrap();
    assert_eq!(lines(&page.items), [9, 11]);
    let cited: Vec<&str> = page
        .problems
        .iter()
        .map(|p| &p[..p.find(':').unwrap()])
        .collect();
    assert_eq!(cited, ["logs.jsonl line 10"]);

    let page = logs
        .fetch_logs(
            &LogQuery::default(),
            between("00:00.000", "00:00.600"),
            None,
            100,
        )
        .await
        .unwrap();
    assert_eq!(lines(&page.items), [1, 2]);
    let cited: Vec<&str> = page
        .problems
        .iter()
        .map(|p| &p[..p.find(':').unwrap()])
        .collect();
    // Line 3 is cut short, but its timestamp (01.000) is still readable and lies
    // after the window, so it is not this window's problem.
    assert!(cited.is_empty(), "{cited:?}");
}

#[tokio::test]
async fn an_unsorted_file_is_read_whole_and_said_so() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["manifest.json", "incident.json"] {
        std::fs::copy(fixture("tiny").join(name), dir.path().join(name)).unwrap();
    }
    let mut text: Vec<String> = std::fs::read_to_string(fixture("tiny").join("logs.jsonl"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    text.swap(0, 7); // 09:00:05.000 first, 09:00:00.000 eighth
    std::fs::write(dir.path().join("logs.jsonl"), text.join("\n")).unwrap();
    let bundle = std::sync::Arc::new(compass_adapters::BundleSource::open(dir.path()).unwrap());
    let logs = bundle.data_sources().logs.unwrap();
    let page = logs
        .fetch_logs(
            &LogQuery::default(),
            between("00:00.000", "00:01.000"),
            None,
            100,
        )
        .await
        .unwrap();
    assert_eq!(lines(&page.items), [2, 8]);
    assert_eq!(
        page.problems,
        [
            "logs.jsonl is not sorted by time (line 2 is earlier than a line before it); read all of it"
        ]
    );
}
