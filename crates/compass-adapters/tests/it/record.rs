//! Record and replay: calls made through `record` against the in-memory fakes of
//! compass-engine are written as a recorded bundle, and `BundleSource` replays them
//! to identical results (floats bit for bit, recorded errors, paged logs and spans
//! with their cursors, abandoned calls as timeouts); unrecorded requests and broken
//! lines are named; and a full investigation of a simulated incident replays to the
//! same ranking.

use compass_adapters::BundleSource;
use compass_adapters::bundle::PortKind;
use compass_adapters::record::{RecordError, record};
use compass_core::{
    Aggregation, ChangeEvent, ChangeKind, EpochMs, Incident, IncidentOrigin, LogLevel, LogRecord,
    Matcher, MetricFunc, MetricQuery, Series, Severity, Span, SpanKind, SpanStatus, TimeRange,
};
use compass_engine::fakes::{Behavior, FakeChanges, FakeLogs, FakeMetrics, FakeTraces};
use compass_engine::{
    Coordinator, CoordinatorConfig, DataSources, LogQuery, MetricCatalog, Page, SourceError, agents,
};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// 2026-11-22T09:00:00Z.
const T0: EpochMs = 1_795_338_000_000;
const MINUTE: i64 = 60_000;

fn range(from_min: i64, to_min: i64) -> TimeRange {
    TimeRange::new(T0 + from_min * MINUTE, T0 + to_min * MINUTE)
}

fn gauge(metric: &str) -> MetricQuery {
    MetricQuery {
        metric: metric.to_string(),
        matchers: vec![Matcher::eq("service", "cart")],
        func: MetricFunc::Gauge,
        aggregation: Aggregation::Sum,
        by: vec!["service".to_string()],
    }
}

fn log(minute: i64, service: &str, level: LogLevel, message: &str) -> LogRecord {
    LogRecord {
        ts: T0 + minute * MINUTE,
        service: service.to_string(),
        pod: format!("{service}-0"),
        level,
        message: message.to_string(),
        trace_id: None,
        origin: None,
    }
}

fn span(minute: i64, service: &str, duration_ms: f64, peer: Option<&str>) -> Span {
    Span {
        trace_id: format!("t{minute}"),
        span_id: format!("s{minute}{service}"),
        parent_id: None,
        service: service.to_string(),
        operation: "GET /".to_string(),
        kind: if peer.is_some() {
            SpanKind::Client
        } else {
            SpanKind::Server
        },
        start: T0 + minute * MINUTE,
        duration_ms,
        status: SpanStatus::Ok,
        peer_service: peer.map(str::to_string),
    }
}

fn incident() -> Incident {
    Incident {
        id: "rec-1".to_string(),
        title: "High latency on frontend".to_string(),
        severity: Severity::Critical,
        start: T0 + 30 * MINUTE,
        affected_services: vec!["frontend".to_string()],
        labels: BTreeMap::from([("alertname".to_string(), "FrontendLatencyHigh".to_string())]),
        origin: IncidentOrigin::Cli,
    }
}

/// Values JSON readers get wrong in the last bit (958.787...), or cannot hold at all.
const AWKWARD: [f64; 6] = [
    958.787_270_229_118_9,
    0.1 + 0.2,
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    -0.0,
];

/// Fakes behind all four ports; the change source fails, and `traces` can be told
/// to hang.
fn fakes() -> (DataSources, compass_engine::fakes::FakeControl) {
    let mut metrics = FakeMetrics::new("prometheus");
    let points = |values: &[f64]| -> Vec<(EpochMs, f64)> {
        (0..values.len())
            .map(|i| (T0 + i as i64 * MINUTE, values[i]))
            .collect()
    };
    metrics.push("cpu", &[("service", "cart")], points(&AWKWARD));
    metrics.push("cpu", &[("service", "payment")], points(&[1.5, 2.5]));
    let logs = FakeLogs::new(
        "loki",
        (0..5)
            .map(|i| log(i, "cart", LogLevel::Error, &format!("boom {i}")))
            .chain([log(2, "payment", LogLevel::Info, "fine")])
            .collect(),
    )
    .with_problems(vec!["loki: 1 line dropped".to_string()]);
    let traces = FakeTraces::new(
        "tempo",
        vec![
            span(1, "frontend", 12.345_678_901_234_567, Some("cart")),
            span(2, "cart", 958.787_270_229_118_9, None),
            span(3, "cart", 0.1 + 0.2, Some("payment")),
        ],
    );
    let trace_control = traces.control.clone();
    let changes = FakeChanges::new(
        "deploys",
        vec![ChangeEvent {
            ts: T0 + 5 * MINUTE,
            kind: ChangeKind::Deploy,
            service: "cart".to_string(),
            description: "rollout cart v2".to_string(),
            version: Some("v2".to_string()),
        }],
    );
    changes
        .control
        .set(Behavior::Fail(SourceError::Unavailable {
            source_name: "deploys".to_string(),
            detail: "connection refused".to_string(),
        }));
    let sources = DataSources {
        metrics: Some(Arc::new(metrics)),
        logs: Some(Arc::new(logs)),
        traces: Some(Arc::new(traces)),
        changes: Some(Arc::new(changes)),
    };
    (sources, trace_control)
}

/// A series with its values as bits, so NaN compares equal to itself.
type SeriesBits = (BTreeMap<String, String>, Vec<(EpochMs, u64)>);
/// A page of spans as (span id, duration bits) and its next cursor.
type SpanPage = (Vec<(String, u64)>, Option<String>);

/// Everything the calls of [`calls`] returned, floats as bits so NaN compares.
#[derive(Debug, PartialEq)]
struct Answers {
    names: Vec<String>,
    series: Result<Vec<SeriesBits>, SourceError>,
    labels: Result<Vec<String>, SourceError>,
    log_pages: Vec<Result<Page<LogRecord>, SourceError>>,
    span_pages: Vec<Result<SpanPage, SourceError>>,
    graph: Result<Vec<(String, String)>, SourceError>,
    changes: Result<Vec<ChangeEvent>, SourceError>,
}

fn bits(series: Vec<Series>) -> Vec<SeriesBits> {
    let points = |s: &Series| s.points.iter().map(|&(t, v)| (t, v.to_bits())).collect();
    series
        .iter()
        .map(|s| (s.labels.clone(), points(s)))
        .collect()
}

/// The same calls, against any sources: paging follows the cursors it is given.
async fn calls(sources: &DataSources) -> Answers {
    let (metrics, logs) = (
        sources.metrics.as_ref().unwrap(),
        sources.logs.as_ref().unwrap(),
    );
    let (traces, changes) = (
        sources.traces.as_ref().unwrap(),
        sources.changes.as_ref().unwrap(),
    );
    let cart_errors = LogQuery {
        service: Some("cart".to_string()),
        min_level: Some(LogLevel::Error),
    };
    let mut log_pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = logs
            .fetch_logs(&cart_errors, range(0, 60), cursor.as_deref(), 2)
            .await;
        cursor = page.as_ref().ok().and_then(|p| p.next.clone());
        log_pages.push(page);
        if cursor.is_none() {
            break;
        }
    }
    let mut span_pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = traces
            .fetch_spans(range(0, 60), None, cursor.as_deref(), 2)
            .await
            .map(|p| {
                let items = p.items.iter();
                let items = items.map(|s| (s.span_id.clone(), s.duration_ms.to_bits()));
                (items.collect(), p.next)
            });
        cursor = page.as_ref().ok().and_then(|p| p.1.clone());
        span_pages.push(page);
        if cursor.is_none() {
            break;
        }
    }
    Answers {
        names: vec![
            metrics.name().to_string(),
            logs.name().to_string(),
            traces.name().to_string(),
            changes.name().to_string(),
        ],
        series: metrics
            .query_range(&gauge("cpu"), range(0, 10), 60_000)
            .await
            .map(bits),
        labels: metrics.label_values("service", range(0, 60)).await,
        log_pages,
        span_pages,
        graph: (traces.call_graph(range(0, 60)).await).map(|g| g.edges.into_iter().collect()),
        changes: changes.fetch_changes(range(0, 60)).await,
    }
}

/// Record [`calls`] against the fakes into `dir`; returns what the fakes answered.
async fn record_calls(dir: &Path) -> Answers {
    let (sources, _) = fakes();
    let (recorded, recorder) = record(&sources);
    let answers = calls(&recorded).await;
    // Asked twice, kept once.
    let again = recorded.metrics.as_ref().unwrap();
    again.label_values("service", range(0, 60)).await.unwrap();
    let summary = recorder
        .write_bundle(dir, &incident(), &MetricCatalog::default())
        .unwrap();
    assert_eq!(summary.requests, recorder.requests());
    answers
}

fn replay(dir: &Path) -> (Arc<BundleSource>, DataSources) {
    let bundle = Arc::new(BundleSource::open(dir).expect("the recording opens"));
    let sources = bundle.data_sources();
    (bundle, sources)
}

#[tokio::test]
async fn a_recording_replays_every_answer_and_error_identically() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("rec");
    let live = record_calls(&dir).await;
    assert!(live.changes.is_err(), "the change fake fails");
    assert_eq!(live.log_pages.len(), 3, "five cart errors in pages of two");
    assert_eq!(live.log_pages[0].as_ref().unwrap().problems.len(), 1);

    let (bundle, sources) = replay(&dir);
    assert!(bundle.is_recording());
    assert!(bundle.problems().is_empty(), "{:?}", bundle.problems());
    assert!(bundle.missing_files().is_empty());
    assert_eq!(bundle.incident(), &incident());
    assert_eq!(bundle.catalog(), Some(MetricCatalog::default()));
    assert_eq!(calls(&sources).await, live);
}

#[tokio::test]
async fn the_bundle_says_what_was_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("rec");
    record_calls(&dir).await;
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "catalog.json",
            "incident.json",
            "manifest.json",
            "responses.jsonl"
        ]
    );

    let (bundle, _) = replay(&dir);
    let manifest = bundle.manifest();
    assert_eq!(manifest.format, "compass-bundle/1");
    assert!(manifest.generator.starts_with("compass record "));
    assert_eq!(
        (manifest.start, manifest.end),
        (range(0, 60).start, range(0, 60).end)
    );
    assert_eq!(manifest.services, ["cart", "frontend", "payment"]);
    let recording = manifest.recording.as_ref().expect("a recording section");
    let names: Vec<(PortKind, &str)> = recording
        .sources
        .iter()
        .map(|(port, name)| (*port, name.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            (PortKind::Metrics, "prometheus"),
            (PortKind::Logs, "loki"),
            (PortKind::Traces, "tempo"),
            (PortKind::Changes, "deploys"),
        ]
    );
    // query_range, label_values (asked twice), 3 log pages, 2 span pages, call_graph,
    // fetch_changes.
    assert_eq!((recording.requests, recording.errors), (9, 1));

    let text = std::fs::read_to_string(dir.join("responses.jsonl")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 9);
    assert!(
        lines[0].starts_with(r#"{"port":"metrics","call":"label_values","request":{"label":"service","range":{"start":"2026-11-22T09:00:00.000Z","end":"2026-11-22T10:00:00.000Z"}},"response":["cart","payment"]}"#),
        "{}",
        lines[0]
    );
    let cpu = lines.iter().find(|l| l.contains("query_range")).unwrap();
    assert!(
        cpu.contains(r#""958.7872702291189""#) && cpu.contains(r#""NaN""#),
        "floats a reader would change are strings: {cpu}"
    );
    let failed = lines.iter().find(|l| l.contains("fetch_changes")).unwrap();
    assert!(
        failed.ends_with(r#""error":{"kind":"unavailable","source_name":"deploys","detail":"connection refused"}}"#),
        "{failed}"
    );
}

#[tokio::test]
async fn an_abandoned_call_replays_as_a_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("rec");
    let (sources, trace_control) = fakes();
    let (recorded, recorder) = record(&sources);
    trace_control.set(Behavior::Hang);
    let traces = recorded.traces.as_ref().unwrap();
    let asked = tokio::time::timeout(Duration::from_millis(20), traces.call_graph(range(0, 60)));
    assert!(asked.await.is_err(), "the fake hangs");
    recorder
        .write_bundle(&dir, &incident(), &MetricCatalog::default())
        .unwrap();

    let (_, replayed) = replay(&dir);
    let replayed = replayed.traces.unwrap().call_graph(range(0, 60)).await;
    match replayed {
        Err(SourceError::Timeout {
            source_name,
            after_ms,
        }) => {
            assert_eq!(source_name, "tempo");
            assert!(after_ms >= 20, "{after_ms}");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
}

#[tokio::test]
async fn an_unrecorded_request_is_not_found_and_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("rec");
    record_calls(&dir).await;
    let (_, sources) = replay(&dir);
    let metrics = sources.metrics.unwrap();
    let error = metrics
        .query_range(&gauge("memory"), range(0, 10), 15_000)
        .await
        .unwrap_err();
    assert_eq!(
        error,
        SourceError::NotFound {
            source_name: "prometheus".to_string(),
            detail: "not recorded: metrics query_range `sum by (service) (memory{service=\"cart\"})` over 2026-11-22T09:00:00.000Z..2026-11-22T09:10:00.000Z step 15s".to_string(),
        }
    );
    let logs = sources.logs.unwrap();
    let other_page = logs
        .fetch_logs(&LogQuery::default(), range(0, 60), Some("4"), 2)
        .await
        .unwrap_err();
    assert_eq!(
        other_page.to_string(),
        "loki: not found: not recorded: logs fetch_logs `{service=~\".+\"}` over 2026-11-22T09:00:00.000Z..2026-11-22T10:00:00.000Z cursor \"4\" limit 2"
    );
}

#[tokio::test]
async fn broken_lines_are_skipped_and_reported_with_their_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("rec");
    record_calls(&dir).await;
    let path = dir.join("responses.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    // Line 1 (label_values): the response is not a list of strings any more.
    lines[0] = lines[0].replace(r#""response":["cart","payment"]"#, r#""response":[1]"#);
    lines.insert(1, "{not json".to_string());
    lines.insert(
        2,
        r#"{"port":"logs","call":"query_range","request":{}}"#.to_string(),
    );
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();

    let (bundle, sources) = replay(&dir);
    let problems = bundle.problems();
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(
        problems[0].starts_with("responses.jsonl line 1: response: invalid type: integer `1`"),
        "{problems:?}"
    );
    assert!(
        problems[1].starts_with("responses.jsonl line 2: "),
        "{problems:?}"
    );
    assert!(
        problems[2].starts_with("responses.jsonl line 3: request: "),
        "{problems:?}"
    );

    let metrics = sources.metrics.unwrap();
    match metrics.label_values("service", range(0, 60)).await {
        Err(SourceError::BadData {
            source_name,
            detail,
        }) => {
            assert_eq!(source_name, "prometheus");
            assert!(
                detail.starts_with("responses.jsonl line 1: response: "),
                "{detail}"
            );
        }
        other => panic!("expected bad data, got {other:?}"),
    }
    // Everything else still replays.
    let series = metrics
        .query_range(&gauge("cpu"), range(0, 10), 60_000)
        .await;
    assert_eq!(series.unwrap().len(), 1);
    let unrecorded = metrics.label_values("pod", range(0, 60)).await.unwrap_err();
    assert!(
        unrecorded.to_string().ends_with(
            "(3 lines of responses.jsonl could not be read; first: responses.jsonl line 1: response: invalid type: integer `1`, expected a string)"
        ),
        "{unrecorded}"
    );
}

#[tokio::test]
async fn recording_refuses_a_directory_that_is_not_empty() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("notes.txt"), "keep me").unwrap();
    let (sources, _) = fakes();
    let (_, recorder) = record(&sources);
    let error = recorder
        .write_bundle(tmp.path(), &incident(), &MetricCatalog::default())
        .unwrap_err();
    assert!(matches!(error, RecordError::NotEmpty { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        format!(
            "recording {}: the directory is not empty (record into a new or empty directory; a recording never writes over files)",
            tmp.path().display()
        )
    );
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("notes.txt")).unwrap(),
        "keep me"
    );
}

#[test]
fn responses_without_a_recording_section_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/bundles/minimal");
    for name in ["manifest.json", "incident.json"] {
        std::fs::copy(fixture.join(name), tmp.path().join(name)).unwrap();
    }
    std::fs::write(tmp.path().join("responses.jsonl"), "").unwrap();
    let text = BundleSource::open(tmp.path()).unwrap_err().to_string();
    assert!(
        text.contains("manifest.json: responses.jsonl is present but the manifest has no \"recording\" section"),
        "{text}"
    );
}

/// A simulated incident investigated through the recorder, then replayed from the
/// recording alone: the same hypotheses, in the same order, with the same confidence.
#[tokio::test(flavor = "multi_thread")]
async fn a_recorded_investigation_replays_to_the_same_ranking() {
    let tmp = tempfile::tempdir().unwrap();
    let simulated = tmp.path().join("sim");
    let cfg = compass_sim::SimConfig {
        scenario: "cpu-saturation".to_string(),
        seed: 3,
        duration_s: 1800,
        log_rate: 5.0,
        trace_rate: 0.5,
        ..Default::default()
    };
    compass_sim::simulate(&cfg, &simulated, &mut |_| {}).expect("simulate");
    let config = || CoordinatorConfig {
        agent_timeout: Duration::from_secs(120),
        deadline: Duration::from_secs(300),
        ..Default::default()
    };

    let bundle = Arc::new(BundleSource::open(&simulated).unwrap());
    let (recorded, recorder) = record(&bundle.data_sources());
    let coordinator = Coordinator::new(agents::all(), config());
    let live = coordinator
        .investigate(bundle.incident(), &recorded, None)
        .await;
    let recording = tmp.path().join("recording");
    let summary = recorder
        .write_bundle(&recording, bundle.incident(), &coordinator.config().catalog)
        .unwrap();
    assert!(summary.requests > 10, "{summary:?}");
    assert_eq!(summary.errors, 0, "{summary:?}");

    let (replayed_bundle, replayed_sources) = replay(&recording);
    let replay_config = CoordinatorConfig {
        catalog: replayed_bundle
            .catalog()
            .expect("the recording has a catalog"),
        ..config()
    };
    let replayed = Coordinator::new(agents::all(), replay_config)
        .investigate(replayed_bundle.incident(), &replayed_sources, None)
        .await;

    let ranking = |inv: &compass_core::Investigation| -> Vec<(String, String, u64)> {
        inv.hypotheses
            .iter()
            .map(|h| {
                let cause = &h.root_cause;
                let kind = cause.fault_kind.as_str().to_string();
                (cause.service.clone(), kind, h.confidence.value.to_bits())
            })
            .collect()
    };
    assert!(!live.hypotheses.is_empty(), "the live run finds something");
    assert_eq!(ranking(&replayed), ranking(&live));
    assert_eq!(replayed.status, live.status);
    assert_eq!(replayed.observations.len(), live.observations.len());
}
