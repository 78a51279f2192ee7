//! A generated 50 000-line `logs.jsonl` (13 index blocks) with runs of equal
//! timestamps across block boundaries and malformed lines at block starts: every
//! window and every paging must match a brute-force filter of the same lines.

use super::fixture;
use super::logs::all_pages;
use compass_adapters::BundleSource;
use compass_core::{EpochMs, LogLevel, TimeRange};
use compass_engine::{LogQuery, LogSource};
use std::fmt::Write;
use std::sync::Arc;

const LINES: u64 = 50_000;
const T0: EpochMs = 1_795_338_000_000;
const SERVICES: [&str; 5] = ["frontend", "checkout", "payment", "cart", "ads"];
const LEVELS: [&str; 7] = ["INFO", "INFO", "DEBUG", "WARN", "INFO", "ERROR", "INFO"];

/// Lines with this number are garbage (block starts, 4096 lines per block) or blank.
fn broken(line: u64) -> Option<&'static str> {
    match line {
        4097 | 8193 | 40_961 => Some("{\"timestamp\":"),
        12_289 => Some(""),
        _ if line.is_multiple_of(9_973) => Some("garbage"),
        _ => None,
    }
}

/// Four lines share each timestamp, 10 ms apart.
fn ts_of(line: u64) -> EpochMs {
    T0 + (line as i64 / 4) * 10
}

struct Generated {
    _dir: tempfile::TempDir,
    logs: Arc<dyn LogSource>,
    /// (line, ts, service, level) of every valid line.
    valid: Vec<(u64, EpochMs, &'static str, LogLevel)>,
}

fn generate() -> Generated {
    let dir = tempfile::tempdir().unwrap();
    for name in ["manifest.json", "incident.json"] {
        std::fs::copy(fixture("tiny").join(name), dir.path().join(name)).unwrap();
    }
    let mut text = String::new();
    let mut valid = Vec::new();
    for line in 1..=LINES {
        if let Some(garbage) = broken(line) {
            text.push_str(garbage);
            text.push('\n');
            continue;
        }
        let ts = ts_of(line);
        let time = chrono::DateTime::from_timestamp_millis(ts).unwrap();
        let service = SERVICES[line as usize % SERVICES.len()];
        let level = LEVELS[line as usize % LEVELS.len()];
        writeln!(
            text,
            r#"{{"timestamp":"{}","service":"{service}","pod":"{service}-{}","level":"{level}","message":"line {line}","trace_id":null}}"#,
            time.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
            line % 3,
        )
        .unwrap();
        let level: LogLevel = serde_json::from_value(serde_json::json!(level)).unwrap();
        valid.push((line, ts, service, level));
    }
    std::fs::write(dir.path().join("logs.jsonl"), text).unwrap();
    let bundle = Arc::new(BundleSource::open(dir.path()).unwrap());
    let logs = bundle.data_sources().logs.unwrap();
    Generated {
        _dir: dir,
        logs,
        valid,
    }
}

impl Generated {
    fn expected(&self, query: &LogQuery, range: TimeRange) -> Vec<u64> {
        self.valid
            .iter()
            .filter(|(_, ts, service, level)| {
                range.contains(*ts)
                    && query.service.as_deref().is_none_or(|s| s == *service)
                    && query.min_level.is_none_or(|min| *level >= min)
            })
            .map(|(line, ..)| *line)
            .collect()
    }

    async fn fetched(&self, query: &LogQuery, range: TimeRange, limit: usize) -> Vec<u64> {
        let pages = all_pages(self.logs.as_ref(), query, range, limit).await;
        let mut lines = Vec::new();
        for page in pages {
            for record in page.items {
                let line = record.origin.unwrap().line;
                assert_eq!(record.message, format!("line {line}"));
                assert_eq!(record.ts, ts_of(line));
                lines.push(line);
            }
        }
        lines
    }
}

#[tokio::test]
async fn windows_across_many_blocks_match_brute_force() {
    let generated = generate();
    let everything = LogQuery::default();
    // (first line, last line) of windows [ts(first), ts(last)); equal times come in
    // runs of four lines (4096..=4099 straddle the first block boundary).
    let windows = [
        (1, 8),
        (1, 4096),
        (4095, 4097),
        (4096, 4100),
        (4097, 4104),
        (4100, 8200),
        (8193, 8196),
        (12_289, 12_300),
        (25_000, 25_004),
        (40_960, 40_964),
        (49_990, 50_000),
        (49_999, 60_000),
        (1, 60_000),
    ];
    for (first, last) in windows {
        let range = TimeRange::new(ts_of(first), ts_of(last));
        let want = generated.expected(&everything, range);
        let page = generated
            .logs
            .fetch_logs(&everything, range, None, 100_000)
            .await
            .unwrap();
        let got: Vec<u64> = page
            .items
            .iter()
            .map(|r| r.origin.as_ref().unwrap().line)
            .collect();
        assert_eq!(got, want, "lines {first}..{last}");
        assert!(!want.is_empty(), "lines {first}..{last}");
    }
}

#[tokio::test]
async fn paging_across_blocks_covers_every_record_once() {
    let generated = generate();
    let whole = TimeRange::new(T0 - 1, ts_of(LINES) + 1);
    let everything = LogQuery::default();
    let want = generated.expected(&everything, whole);
    assert_eq!(want.len(), 50_000 - 4 - 5);
    assert_eq!(generated.fetched(&everything, whole, 997).await, want);

    let errors_of_cart = LogQuery {
        service: Some("cart".into()),
        min_level: Some(LogLevel::Warn),
    };
    let range = TimeRange::new(ts_of(3_000), ts_of(45_000));
    let want = generated.expected(&errors_of_cart, range);
    assert!(want.len() > 1_000);
    assert_eq!(generated.fetched(&errors_of_cart, range, 333).await, want);

    // Malformed lines are reported once each, on the page that read them.
    let pages = all_pages(generated.logs.as_ref(), &everything, whole, 4_000).await;
    let problems: Vec<&String> = pages.iter().flat_map(|p| &p.problems).collect();
    let broken_lines: Vec<String> = (1..=LINES)
        .filter(|&l| broken(l).is_some_and(|g| !g.is_empty()))
        .map(|l| format!("logs.jsonl line {l}: "))
        .collect();
    assert_eq!(problems.len(), broken_lines.len());
    for (problem, prefix) in problems.iter().zip(&broken_lines) {
        assert!(
            problem.starts_with(prefix.as_str()),
            "{problem} vs {prefix}"
        );
    }
}

#[tokio::test]
async fn problem_messages_are_capped_per_page() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["manifest.json", "incident.json"] {
        std::fs::copy(fixture("tiny").join(name), dir.path().join(name)).unwrap();
    }
    let text: String = (0..100).map(|i| format!("bad {i}\n")).collect();
    std::fs::write(dir.path().join("logs.jsonl"), text).unwrap();
    let logs = Arc::new(BundleSource::open(dir.path()).unwrap())
        .data_sources()
        .logs
        .unwrap();
    let page = logs
        .fetch_logs(&LogQuery::default(), TimeRange::new(0, i64::MAX), None, 10)
        .await
        .unwrap();
    assert!(page.items.is_empty());
    assert_eq!(page.problems.len(), 21);
    assert_eq!(
        page.problems[0],
        "logs.jsonl line 1: column 1: expected value"
    );
    assert_eq!(
        page.problems[20],
        "logs.jsonl: 80 more malformed lines on this page not listed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_queries_share_one_index() {
    let generated = Arc::new(generate());
    let range = TimeRange::new(ts_of(10_000), ts_of(30_000));
    let want = generated.expected(&LogQuery::default(), range);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let generated = generated.clone();
            tokio::spawn(async move { generated.fetched(&LogQuery::default(), range, 1_500).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), want);
    }
}
