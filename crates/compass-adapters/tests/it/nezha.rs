//! The Nezha data-set adapter on tiny folders the tests write in the Nezha layout:
//! days, cases and labels from the fault list, and one case's metrics, logs and
//! traces behind the ports, with nothing after the case's cutoff visible.

use compass_adapters::nezha::{self, NezhaDay, NezhaLabel, NezhaSystem};
use compass_core::{
    Aggregation, CallGraph, EpochMs, LogLevel, LogRecord, Matcher, MetricFunc, MetricQuery, Span,
    SpanKind, TimeRange,
};
use compass_engine::{DataSources, LogQuery};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

const DAY: &str = "2023-01-29";
/// 2023-01-29T00:00:00Z.
const MIDNIGHT_MS: EpochMs = 1_674_950_400_000;
const FRONT_POD: &str = "front-abc12-xyz9";
const SVC_A_POD: &str = "svc-a-5f55b6cf68-77cfw";
const SVC_B_POD: &str = "svc-b-7d9c8b6f5-q2w3e";

/// `HH:MM:SS` on [`DAY`] in epoch milliseconds.
fn at(h: i64, m: i64, s: i64) -> EpochMs {
    MIDNIGHT_MS + ((h * 60 + m) * 60 + s) * 1000
}

/// The cutoff of the case the source tests use: 10:05:30.
fn cutoff() -> EpochMs {
    at(10, 5, 30)
}

/// The hour around the case.
fn hour() -> TimeRange {
    TimeRange::new(at(10, 0, 0), at(11, 0, 0))
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn csv_quote(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

fn fault_list(root: &Path, day: &str, json: &str) {
    write(
        &root
            .join("rca_data")
            .join(day)
            .join(format!("{day}-fault_list.json")),
        json,
    );
}

/// A fault list with one case at 10:05:00 and one at 11:20:00 (hours as in the data set).
fn good_fault_list(root: &Path, day: &str) {
    fault_list(
        root,
        day,
        &format!(
            r#"{{
 "10": [{{"inject_time": "{day} 10:05:00", "inject_timestamp": "1674986700",
          "inject_pod": "svc-a-5f55b6cf68-77cfw", "inject_type": "cpu_contention"}}],
 "11": [{{"inject_time": " {day} 11:20:00 ", "inject_timestamp": "1674991200",
          "inject_pod": "front-abc12-xyz9", "inject_type": "return"}}]
}}"#
        ),
    );
}

/// `<pod>_metric.csv` with one row a minute from 10:00 to 10:10; `CpuUsageRate(%)` is
/// `base + minute`, so the newest visible value tells how far the source lets one see.
fn metric_file(dir: &Path, pod: &str, base: f64) {
    let mut text = String::from(
        "Time,TimeStamp,PodName,CpuUsage(m),CpuUsageRate(%),MemoryUsageRate(%),PodServerLatencyP95(s)\n",
    );
    for minute in 0..=10 {
        let ts = at(10, minute, 9) / 1000;
        text.push_str(&format!(
            "{DAY} 10:{minute:02}:09.607158889 +0000 UTC m=+{minute}.113112869,{ts},{pod},{},{},40.5,0.25\n",
            base * 10.0,
            base + minute as f64,
        ));
    }
    write(&dir.join(format!("{pod}_metric.csv")), &text);
}

const LOG_HEADER: &str = "Timestamp,TimeUnixNano,Node,PodName,Container,TraceID,SpanID,Log\n";

/// One log row whose `Log` column is the container runtime's JSON line.
fn log_row(ts: EpochMs, pod: &str, trace: &str, line: &str) -> String {
    let json = serde_json::json!({"log": format!("{line}\n"), "stream": "stdout", "time": "x"});
    format!(
        "x,{},10.0.0.1,{pod},server,{trace},span1,{}\n",
        ts * 1_000_000 + 123_456,
        csv_quote(&json.to_string())
    )
}

const TRACE_HEADER: &str =
    "TraceID,SpanID,ParentID,PodName,OperationName,StartTimeUnixNano,EndTimeUnixNano,Duration\n";

fn span_row(trace: &str, span: &str, parent: &str, pod: &str, op: &str, start: EpochMs) -> String {
    let start_ns = start * 1_000_000;
    let duration_us = 150_000;
    format!(
        "{trace},{span},{parent},{pod},{op},{start_ns},{},{duration_us}\n",
        start_ns + duration_us * 1000
    )
}

/// A TrainTicket-style day (no `dependency.csv`): metrics of two pods, minute files
/// of logs and traces in `rca_data` and `construct_data`, some after the cutoff.
fn train_ticket_day(root: &Path) {
    good_fault_list(root, DAY);
    let day_dir = root.join("rca_data").join(DAY);
    metric_file(&day_dir.join("metric"), FRONT_POD, 0.0);
    metric_file(&day_dir.join("metric"), SVC_A_POD, 100.0);

    let mut logs = String::from(LOG_HEADER);
    logs += &log_row(
        at(10, 4, 20),
        FRONT_POD,
        "t1",
        "16:42:22.382 ERROR  c.s.Impl#5 [find][No contacts]",
    );
    logs += "x,not-a-number,10.0.0.1,front-abc12-xyz9,server,t1,span1,\"{}\"\n";
    logs += &log_row(
        at(10, 4, 30),
        SVC_A_POD,
        "",
        "10:04:30.000 INFO  a.b.C#1 [ok][fine]",
    );
    // A Log cell that is not JSON is taken as the line itself.
    logs += &format!(
        "x,{},10.0.0.1,{SVC_A_POD},server,,,WARN disk almost full\n",
        at(10, 4, 40) * 1_000_000
    );
    write(&day_dir.join("log").join("10_05_log.csv"), &logs);

    let mut logs = String::from(LOG_HEADER);
    logs += &log_row(
        at(10, 5, 10),
        FRONT_POD,
        "t9",
        "10:05:10.000 INFO  f.F#2 [home][ok]",
    );
    logs += &log_row(
        at(10, 5, 50),
        FRONT_POD,
        "t9",
        "10:05:50.000 ERROR  f.F#2 [late][after cutoff]",
    );
    write(&day_dir.join("log").join("10_06_log.csv"), &logs);

    let mut logs = String::from(LOG_HEADER);
    logs += &log_row(
        at(10, 1, 30),
        SVC_A_POD,
        "",
        "10:01:30.000 INFO  a.b.C#1 [construct][quiet]",
    );
    write(
        &root
            .join("construct_data")
            .join(DAY)
            .join("log")
            .join("10_02_log.csv"),
        &logs,
    );

    // t1: front root → front client span → svc-a server span → svc-a internal span;
    // t2: a svc-a span whose parent is in another minute's file.
    let mut spans = String::from(TRACE_HEADER);
    spans += &span_row("t1", "r1", "root", FRONT_POD, "/*", at(10, 4, 10));
    spans += &span_row("t1", "c1", "r1", FRONT_POD, "GET /a", at(10, 4, 10) + 10);
    spans += &span_row("t1", "s1", "c1", SVC_A_POD, "/a", at(10, 4, 10) + 20);
    spans += &span_row("t1", "i1", "s1", SVC_A_POD, "db.query", at(10, 4, 10) + 30);
    spans += &span_row("t2", "o1", "elsewhere", SVC_A_POD, "/a", at(10, 4, 40));
    write(&day_dir.join("trace").join("10_05_trace.csv"), &spans);

    // Minute 10:06: one span before the cutoff; a call svc-a → svc-b after it.
    let mut spans = String::from(TRACE_HEADER);
    spans += &span_row("t3", "v1", "root", FRONT_POD, "/*", at(10, 5, 20));
    spans += &span_row("t4", "r4", "root", SVC_A_POD, "/a", at(10, 5, 50));
    spans += &span_row("t4", "x4", "r4", SVC_B_POD, "/b", at(10, 5, 51));
    write(&day_dir.join("trace").join("10_06_trace.csv"), &spans);
}

fn open_train_ticket() -> (tempfile::TempDir, Arc<NezhaDay>) {
    let tmp = tempfile::tempdir().unwrap();
    train_ticket_day(tmp.path());
    let day = NezhaDay::open(tmp.path(), DAY).unwrap();
    (tmp, Arc::new(day))
}

fn gauge(metric: &str, matchers: Vec<Matcher>, by: &[&str]) -> MetricQuery {
    MetricQuery {
        metric: metric.to_string(),
        matchers,
        func: MetricFunc::Gauge,
        aggregation: Aggregation::Max,
        by: by.iter().map(|s| s.to_string()).collect(),
    }
}

/// Every log record of `query` in `range`, page by page; and the problems of every page.
async fn all_logs(
    sources: &DataSources,
    query: &LogQuery,
    range: TimeRange,
    limit: usize,
) -> (Vec<LogRecord>, Vec<Vec<String>>) {
    let logs = sources.logs.as_ref().expect("a log source");
    let (mut out, mut problems, mut cursor) = (Vec::new(), Vec::new(), None::<String>);
    loop {
        let page = logs
            .fetch_logs(query, range, cursor.as_deref(), limit)
            .await
            .unwrap();
        assert!(page.items.len() <= limit, "page over the limit");
        out.extend(page.items);
        problems.push(page.problems);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return (out, problems),
        }
        assert!(problems.len() < 100, "paging does not end");
    }
}

async fn all_spans(sources: &DataSources, range: TimeRange, limit: usize) -> Vec<Span> {
    let traces = sources.traces.as_ref().expect("a trace source");
    let (mut out, mut cursor, mut pages) = (Vec::new(), None::<String>, 0);
    loop {
        let page = traces
            .fetch_spans(range, None, cursor.as_deref(), limit)
            .await
            .unwrap();
        assert!(page.items.len() <= limit, "page over the limit");
        out.extend(page.items);
        pages += 1;
        assert!(pages < 100, "paging does not end");
        match page.next {
            Some(next) => cursor = Some(next),
            None => return out,
        }
    }
}

fn edges(graph: &CallGraph) -> BTreeSet<(String, String)> {
    graph.edges.clone()
}

fn edge(a: &str, b: &str) -> (String, String) {
    (a.to_string(), b.to_string())
}

// ---- days, cases, labels ----------------------------------------------------------

#[test]
fn days_are_the_folders_with_a_fault_list_sorted() {
    let tmp = tempfile::tempdir().unwrap();
    good_fault_list(tmp.path(), "2023-01-30");
    good_fault_list(tmp.path(), "2023-01-29");
    std::fs::create_dir_all(
        tmp.path()
            .join("rca_data")
            .join("2023-01-31")
            .join("metric"),
    )
    .unwrap();
    write(&tmp.path().join("rca_data").join("README.md"), "notes");
    assert_eq!(
        nezha::days(tmp.path()).unwrap(),
        vec!["2023-01-29".to_string(), "2023-01-30".to_string()]
    );
}

#[test]
fn days_of_a_folder_without_rca_data_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let err = nezha::days(tmp.path()).unwrap_err().to_string();
    assert!(err.contains("rca_data"), "{err}");
    assert!(err.contains(&tmp.path().display().to_string()), "{err}");
}

#[test]
fn open_reads_the_inject_times_as_cases() {
    let (_tmp, day) = open_train_ticket();
    assert_eq!(day.day, DAY);
    let cases: Vec<(&str, EpochMs)> = day
        .cases
        .iter()
        .map(|c| (c.inject_time.as_str(), c.at))
        .collect();
    assert_eq!(
        cases,
        vec![
            ("2023-01-29 10:05:00", at(10, 5, 0)),
            ("2023-01-29 11:20:00", at(11, 20, 0)),
        ]
    );
}

#[test]
fn open_needs_only_the_inject_time_of_a_case() {
    let tmp = tempfile::tempdir().unwrap();
    fault_list(
        tmp.path(),
        DAY,
        r#"{"10": [{"inject_time": "2023-01-29 10:05:00"},
                  {"inject_time": "2023-01-29 10:30:00", "inject_pod": 7, "inject_type": null}]}"#,
    );
    metric_file(
        &tmp.path().join("rca_data").join(DAY).join("metric"),
        FRONT_POD,
        0.0,
    );
    let day = NezhaDay::open(tmp.path(), DAY).unwrap();
    assert_eq!(day.cases.len(), 2);
    assert_eq!(day.cases[1].at, at(10, 30, 0));
}

/// Opening a day whose fault list is `json` fails; the message names the fault list
/// and contains `detail`.
fn assert_open_fails(json: &str, detail: &str) {
    let tmp = tempfile::tempdir().unwrap();
    fault_list(tmp.path(), DAY, json);
    metric_file(
        &tmp.path().join("rca_data").join(DAY).join("metric"),
        FRONT_POD,
        0.0,
    );
    let err = NezhaDay::open(tmp.path(), DAY).unwrap_err().to_string();
    assert!(err.contains(&format!("{DAY}-fault_list.json")), "{err}");
    assert!(err.contains(detail), "{err}");
}

#[test]
fn a_fault_list_that_is_not_json_is_an_error_naming_the_file() {
    assert_open_fails(r#"{"10": [{"inject_time": "#, "not valid JSON");
}

#[test]
fn a_case_without_inject_time_is_an_error_naming_the_file() {
    assert_open_fails(
        r#"{"10": [{"inject_time": "2023-01-29 10:05:00"}, {"inject_pod": "a-b-c"}]}"#,
        "case 2: no inject_time",
    );
}

#[test]
fn an_unparseable_inject_time_is_an_error_naming_the_file_and_the_text() {
    assert_open_fails(
        r#"{"10": [{"inject_time": "29/01/2023 10:05"}]}"#,
        "\"29/01/2023 10:05\"",
    );
}

#[test]
fn a_missing_day_folder_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    good_fault_list(tmp.path(), DAY);
    let err = NezhaDay::open(tmp.path(), "2023-02-01")
        .unwrap_err()
        .to_string();
    assert!(err.contains("2023-02-01"), "{err}");
}

#[test]
fn labels_map_pods_to_services_and_blank_or_garbage_labels_to_none() {
    let tmp = tempfile::tempdir().unwrap();
    fault_list(
        tmp.path(),
        DAY,
        r#"{
 "08": [{"inject_time": "2023-01-29 08:43:04", "inject_pod": "ts-contacts-service-866bd68c97-xcqfx",
         "inject_type": "return"}],
 "09": [{"inject_time": "2023-01-29 09:10:00", "inject_pod": "", "inject_type": "   "},
        {"inject_time": "2023-01-29 09:20:00", "inject_pod": 42, "inject_type": null},
        {"inject_time": "2023-01-29 09:30:00"}]
}"#,
    );
    let label = |t: &str, service: Option<&str>, fault: Option<&str>| NezhaLabel {
        inject_time: t.to_string(),
        service: service.map(str::to_string),
        fault_type: fault.map(str::to_string),
    };
    assert_eq!(
        nezha::read_labels(tmp.path(), DAY).unwrap(),
        vec![
            label(
                "2023-01-29 08:43:04",
                Some("ts-contacts-service"),
                Some("return")
            ),
            label("2023-01-29 09:10:00", None, None),
            label("2023-01-29 09:20:00", None, None),
            label("2023-01-29 09:30:00", None, None),
        ]
    );
}

#[test]
fn the_system_is_train_ticket_without_a_dependency_file() {
    let (_tmp, day) = open_train_ticket();
    assert_eq!(day.system, NezhaSystem::TrainTicket);
    assert_eq!(day.system.as_str(), "TrainTicket");
}

// ---- metrics -----------------------------------------------------------------------

#[tokio::test]
async fn metrics_are_gauges_named_from_headers_with_service_and_pod_labels() {
    let (_tmp, day) = open_train_ticket();
    let metrics = day.sources(cutoff()).metrics.expect("a metrics source");
    let names = metrics.label_values("__name__", hour()).await.unwrap();
    for name in [
        "cpu_usage_millicores",
        "cpu_usage_rate_percent",
        "memory_usage_rate_percent",
        "pod_server_latency_p95_seconds",
    ] {
        assert!(names.contains(&name.to_string()), "{name} not in {names:?}");
    }
    assert!(
        !names.iter().any(|n| n == "time_stamp" || n == "pod_name"),
        "{names:?}"
    );
    assert_eq!(
        metrics.label_values("service", hour()).await.unwrap(),
        vec!["front".to_string(), "svc-a".to_string()]
    );
    assert_eq!(
        metrics.label_values("pod", hour()).await.unwrap(),
        vec![FRONT_POD.to_string(), SVC_A_POD.to_string()]
    );

    let query = gauge(
        "cpu_usage_rate_percent",
        vec![Matcher::eq("service", "svc-a")],
        &["service", "pod"],
    );
    let series = metrics.query_range(&query, hour(), 15_000).await.unwrap();
    assert_eq!(series.len(), 1, "{series:?}");
    assert_eq!(series[0].label("service"), Some("svc-a"));
    assert_eq!(series[0].label("pod"), Some(SVC_A_POD));
    // The sample of 10:02:09 is the value at 10:02:15.
    let at_1015 = series[0]
        .points
        .iter()
        .find(|p| p.0 == at(10, 2, 15))
        .expect("a point at 10:02:15");
    assert_eq!(at_1015.1, 102.0);
}

#[tokio::test]
async fn no_metric_sample_after_the_cutoff_is_visible() {
    let (_tmp, day) = open_train_ticket();
    let metrics = day.sources(cutoff()).metrics.expect("a metrics source");
    let query = gauge("cpu_usage_rate_percent", vec![], &["service", "pod"]);
    let series = metrics.query_range(&query, hour(), 15_000).await.unwrap();
    assert_eq!(series.len(), 2, "{series:?}");
    for s in &series {
        assert!(s.points.iter().all(|p| p.0 <= cutoff()), "{s:?}");
        let newest = s.values().into_iter().fold(f64::MIN, f64::max);
        // The newest visible row is 10:05:09 (minute 5); rows up to 10:10 exist.
        let base = if s.label("service") == Some("front") {
            0.0
        } else {
            100.0
        };
        assert_eq!(newest, base + 5.0, "{s:?}");
    }
    let later = TimeRange::new(cutoff() + 1, at(11, 0, 0));
    assert!(
        metrics
            .label_values("service", later)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        metrics
            .query_range(&query, later, 15_000)
            .await
            .unwrap()
            .is_empty()
    );

    // The same day seen later shows the later rows.
    let late = day.sources(at(10, 30, 0)).metrics.unwrap();
    let series = late.query_range(&query, hour(), 15_000).await.unwrap();
    let newest = series[0].values().into_iter().fold(f64::MIN, f64::max);
    assert_eq!(newest, 10.0);
}

#[test]
fn metric_rows_with_an_unreadable_time_are_skipped_and_named() {
    let tmp = tempfile::tempdir().unwrap();
    good_fault_list(tmp.path(), DAY);
    let path = tmp
        .path()
        .join("rca_data")
        .join(DAY)
        .join("metric")
        .join(format!("{FRONT_POD}_metric.csv"));
    write(
        &path,
        &format!(
            "Time,TimeStamp,PodName,CpuUsageRate(%)\n\
             {DAY} 10:00:09.5 +0000 UTC m=+0.1,1,{FRONT_POD},1.5\n\
             yesterday,2,{FRONT_POD},2.5\n"
        ),
    );
    let day = NezhaDay::open(tmp.path(), DAY).unwrap();
    assert_eq!(day.problems.len(), 1, "{:?}", day.problems);
    assert!(
        day.problems[0].contains(&format!("{FRONT_POD}_metric.csv line 3")),
        "{:?}",
        day.problems
    );
}

// ---- logs ----------------------------------------------------------------------------

#[tokio::test]
async fn logs_carry_level_message_service_and_origin_and_stop_at_the_cutoff() {
    let (_tmp, day) = open_train_ticket();
    let sources = day.sources(cutoff());
    let (records, _) = all_logs(&sources, &LogQuery::default(), hour(), 100).await;
    let seen: Vec<(EpochMs, &str, LogLevel, &str)> = records
        .iter()
        .map(|r| (r.ts, r.service.as_str(), r.level, r.message.as_str()))
        .collect();
    assert_eq!(
        seen,
        vec![
            (
                at(10, 1, 30),
                "svc-a",
                LogLevel::Info,
                "a.b.C#1 [construct][quiet]"
            ),
            (
                at(10, 4, 20),
                "front",
                LogLevel::Error,
                "c.s.Impl#5 [find][No contacts]"
            ),
            (at(10, 4, 30), "svc-a", LogLevel::Info, "a.b.C#1 [ok][fine]"),
            (at(10, 4, 40), "svc-a", LogLevel::Warn, "disk almost full"),
            (at(10, 5, 10), "front", LogLevel::Info, "f.F#2 [home][ok]"),
        ]
    );
    assert!(records.iter().all(|r| r.ts <= cutoff()));
    let error = &records[1];
    assert_eq!(error.pod, FRONT_POD);
    assert_eq!(error.trace_id.as_deref(), Some("t1"));
    let origin = error.origin.as_ref().expect("an origin");
    assert!(origin.path.ends_with("10_05_log.csv"), "{origin:?}");
    assert_eq!(origin.line, 2);
    assert_eq!(records[2].trace_id, None, "an empty TraceID is no trace");
}

#[tokio::test]
async fn log_queries_filter_by_service_and_level() {
    let (_tmp, day) = open_train_ticket();
    let sources = day.sources(cutoff());
    let query = LogQuery {
        service: Some("svc-a".into()),
        min_level: Some(LogLevel::Warn),
    };
    let (records, _) = all_logs(&sources, &query, hour(), 100).await;
    let messages: Vec<&str> = records.iter().map(|r| r.message.as_str()).collect();
    assert_eq!(messages, vec!["disk almost full"]);
}

#[tokio::test]
async fn a_malformed_log_row_is_skipped_and_named_in_the_page_problems() {
    let (_tmp, day) = open_train_ticket();
    let sources = day.sources(cutoff());
    let (records, problems) = all_logs(&sources, &LogQuery::default(), hour(), 100).await;
    assert_eq!(records.len(), 5);
    assert_eq!(problems.len(), 1);
    let named: Vec<&String> = problems[0]
        .iter()
        .filter(|p| p.contains("10_05_log.csv line 3"))
        .collect();
    assert_eq!(named.len(), 1, "{:?}", problems[0]);
    assert!(named[0].contains("TimeUnixNano"), "{named:?}");
}

#[tokio::test]
async fn log_paging_returns_every_record_exactly_once() {
    let (_tmp, day) = open_train_ticket();
    let sources = day.sources(cutoff());
    let (whole, _) = all_logs(&sources, &LogQuery::default(), hour(), 1000).await;
    for limit in [1, 2, 3] {
        let (paged, problems) = all_logs(&sources, &LogQuery::default(), hour(), limit).await;
        assert_eq!(paged, whole, "limit {limit}");
        assert_eq!(problems.len(), whole.len().div_ceil(limit), "limit {limit}");
        // Problems come once, with the first page.
        assert!(!problems[0].is_empty());
        assert!(problems[1..].iter().all(Vec::is_empty), "{problems:?}");
    }
}

#[tokio::test]
async fn an_unknown_log_cursor_is_rejected() {
    let (_tmp, day) = open_train_ticket();
    let logs = day.sources(cutoff()).logs.unwrap();
    let err = logs
        .fetch_logs(&LogQuery::default(), hour(), Some("bogus"), 10)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("bogus"), "{err}");
}

// ---- traces --------------------------------------------------------------------------

#[tokio::test]
async fn span_kinds_follow_from_service_boundaries_and_spans_stop_at_the_cutoff() {
    let (_tmp, day) = open_train_ticket();
    let sources = day.sources(cutoff());
    let spans = all_spans(&sources, hour(), 100).await;
    let seen: Vec<(&str, &str, SpanKind, Option<&str>)> = spans
        .iter()
        .map(|s| {
            (
                s.span_id.as_str(),
                s.service.as_str(),
                s.kind,
                s.peer_service.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("r1", "front", SpanKind::Server, None),
            ("c1", "front", SpanKind::Client, Some("svc-a")),
            ("s1", "svc-a", SpanKind::Server, None),
            ("i1", "svc-a", SpanKind::Internal, None),
            ("o1", "svc-a", SpanKind::Server, None),
            ("v1", "front", SpanKind::Server, None),
        ]
    );
    assert!(spans.iter().all(|s| s.start <= cutoff()));
    let root = &spans[0];
    assert_eq!(root.parent_id, None, "ParentID `root` is no parent");
    assert_eq!(spans[1].parent_id.as_deref(), Some("r1"));
    assert_eq!(root.start, at(10, 4, 10));
    assert_eq!(root.duration_ms, 150.0, "Duration is in microseconds");
}

#[tokio::test]
async fn spans_of_one_service() {
    let (_tmp, day) = open_train_ticket();
    let traces = day.sources(cutoff()).traces.unwrap();
    let page = traces
        .fetch_spans(hour(), Some("svc-a"), None, 100)
        .await
        .unwrap();
    let ids: Vec<&str> = page.items.iter().map(|s| s.span_id.as_str()).collect();
    assert_eq!(ids, vec!["s1", "i1", "o1"]);
}

#[tokio::test]
async fn span_paging_returns_every_span_exactly_once() {
    let (_tmp, day) = open_train_ticket();
    let sources = day.sources(cutoff());
    let whole = all_spans(&sources, hour(), 1000).await;
    assert_eq!(whole.len(), 6);
    for limit in [1, 4, 6] {
        let paged = all_spans(&sources, hour(), limit).await;
        assert_eq!(paged, whole, "limit {limit}");
    }
}

#[tokio::test]
async fn the_train_ticket_call_graph_comes_from_visible_traces() {
    let (_tmp, day) = open_train_ticket();
    let traces = day.sources(cutoff()).traces.unwrap();
    let graph = traces.call_graph(hour()).await.unwrap();
    // svc-a → svc-b happens only after the cutoff.
    assert_eq!(edges(&graph), BTreeSet::from([edge("front", "svc-a")]));

    let later = day.sources(at(10, 30, 0)).traces.unwrap();
    let graph = later.call_graph(hour()).await.unwrap();
    assert_eq!(
        edges(&graph),
        BTreeSet::from([edge("front", "svc-a"), edge("svc-a", "svc-b")])
    );
}

// ---- OnlineBoutique ------------------------------------------------------------------

#[tokio::test]
async fn the_online_boutique_call_graph_is_the_dependency_file_without_host_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let day = "2022-08-22";
    good_fault_list(tmp.path(), day);
    let metric = tmp.path().join("rca_data").join(day).join("metric");
    write(
        &metric.join("frontend-579b9bff58-t2dbm_metric.csv"),
        &format!(
            "Time,TimeStamp,PodName,CpuUsageRate(%)\n\
             {day} 10:00:09.5 +0000 UTC m=+0.1,1,frontend-579b9bff58-t2dbm,1.5\n"
        ),
    );
    write(
        &metric.join("dependency.csv"),
        "Source,Target,Weight\n\
         frontend,cartservice,1\n\
         frontend,checkoutservice,1\n\
         checkoutservice,cartservice,1\n\
         cartservice,10.0.0.5,1\n\
         checkoutservice,fe80::1,1\n\
         frontend,frontend,1\n",
    );
    let nezha_day = Arc::new(NezhaDay::open(tmp.path(), day).unwrap());
    assert_eq!(nezha_day.system, NezhaSystem::OnlineBoutique);
    let sources = nezha_day.sources(i64::MAX / 4);
    assert!(sources.logs.is_none(), "no log files, no log source");
    let traces = sources
        .traces
        .expect("the dependency file is a trace source");
    let range = TimeRange::new(0, i64::MAX / 2);
    assert_eq!(
        edges(&traces.call_graph(range).await.unwrap()),
        BTreeSet::from([
            edge("checkoutservice", "cartservice"),
            edge("frontend", "cartservice"),
            edge("frontend", "checkoutservice"),
        ])
    );
}
