//! The fakes answer like real sources: metric evaluation (gauge, rate, histogram
//! quantile, aggregation), paging with problems, call graphs, failure and hang modes.

use compass_core::{
    Aggregation, ChangeEvent, ChangeKind, LogLevel, LogRecord, Matcher, MetricFunc, MetricQuery,
    Span, SpanKind, SpanStatus, TimeRange,
};
use compass_engine::fakes::*;
use compass_engine::{ChangeSource, LogQuery, LogSource, MetricsSource, SourceError, TraceSource};
use std::time::Duration;

fn q(metric: &str, func: MetricFunc, by: &[&str]) -> MetricQuery {
    MetricQuery {
        metric: metric.into(),
        matchers: vec![],
        func,
        aggregation: Aggregation::Sum,
        by: by.iter().map(|s| s.to_string()).collect(),
    }
}

#[tokio::test]
async fn metrics_gauge_rate_and_quantile() {
    let counter = |per_s: f64| {
        (0..20)
            .map(|i| (i * 15_000, per_s * 15.0 * i as f64))
            .collect::<Vec<_>>()
    };
    let m = FakeMetrics::new("fake")
        .with_series(
            "req_total",
            &[("service", "a"), ("pod", "a-1")],
            counter(2.0),
        )
        .with_series(
            "req_total",
            &[("service", "a"), ("pod", "a-2")],
            counter(3.0),
        )
        .with_series(
            "req_total",
            &[("service", "b"), ("pod", "b-1")],
            counter(1.0),
        )
        .with_series(
            "mem",
            &[("service", "a")],
            (0..20).map(|i| (i * 15_000, 7.0)).collect(),
        )
        // 90% of requests under 0.1 s, all under 1 s.
        .with_series(
            "lat_bucket",
            &[("service", "a"), ("le", "0.1")],
            counter(9.0),
        )
        .with_series(
            "lat_bucket",
            &[("service", "a"), ("le", "1")],
            counter(10.0),
        )
        .with_series(
            "lat_bucket",
            &[("service", "a"), ("le", "+Inf")],
            counter(10.0),
        );
    let r = TimeRange::new(60_000, 300_000);
    let rate = m
        .query_range(
            &q("req_total", MetricFunc::Rate { window_s: 60 }, &["service"]),
            r,
            15_000,
        )
        .await
        .unwrap();
    assert_eq!(rate.len(), 2);
    assert_eq!(rate[0].label("service"), Some("a"));
    assert!(rate[0].points.iter().all(|p| (p.1 - 5.0).abs() < 1e-9));
    assert_eq!(rate[0].points[0].0, 60_000);
    let mut one = q("req_total", MetricFunc::Rate { window_s: 60 }, &[]);
    one.matchers.push(Matcher::eq("service", "b"));
    let b = m.query_range(&one, r, 15_000).await.unwrap();
    assert!(b.len() == 1 && b[0].labels.is_empty() && (b[0].points[0].1 - 1.0).abs() < 1e-9);
    let g = m
        .query_range(&q("mem", MetricFunc::Gauge, &["service"]), r, 60_000)
        .await
        .unwrap();
    assert_eq!(g[0].points.len(), 4);
    let hq = q(
        "lat",
        MetricFunc::HistogramQuantile {
            q: 0.95,
            window_s: 60,
        },
        &["service"],
    );
    let h = m.query_range(&hq, r, 15_000).await.unwrap();
    assert!(
        (h[0].points[0].1 - 0.55).abs() < 1e-9,
        "{:?}",
        h[0].points[0]
    );
    assert_eq!(m.label_values("service", r).await.unwrap(), vec!["a", "b"]);
    assert_eq!(m.control.calls(), 5);
}

fn log(ts: i64, service: &str, level: LogLevel, message: &str) -> LogRecord {
    LogRecord {
        ts,
        service: service.into(),
        pod: format!("{service}-0"),
        level,
        message: message.into(),
        trace_id: None,
        origin: None,
    }
}

#[tokio::test]
async fn logs_page_filter_and_report_problems() {
    let records: Vec<LogRecord> = (0..25)
        .map(|i| {
            log(
                i * 1000,
                if i % 2 == 0 { "a" } else { "b" },
                if i % 5 == 0 {
                    LogLevel::Error
                } else {
                    LogLevel::Info
                },
                "x",
            )
        })
        .collect();
    let logs =
        FakeLogs::new("fake-logs", records).with_problems(vec!["logs.jsonl:7: bad json".into()]);
    let query = LogQuery {
        service: Some("a".into()),
        min_level: None,
    };
    let range = TimeRange::new(0, 100_000);
    let p1 = logs.fetch_logs(&query, range, None, 5).await.unwrap();
    assert_eq!(
        (p1.items.len(), p1.next.as_deref(), p1.problems.len()),
        (5, Some("5"), 1)
    );
    let p2 = logs
        .fetch_logs(&query, range, p1.next.as_deref(), 5)
        .await
        .unwrap();
    assert_eq!(
        (p2.items.len(), p2.next, p2.problems.len()),
        (5, Some("10".to_string()), 0)
    );
    let errors = LogQuery {
        service: None,
        min_level: Some(LogLevel::Error),
    };
    assert_eq!(
        logs.fetch_logs(&errors, range, None, 100)
            .await
            .unwrap()
            .items
            .len(),
        5
    );
    assert!(logs.fetch_logs(&query, range, Some("zz"), 5).await.is_err());
}

#[tokio::test]
async fn traces_and_changes() {
    let span =
        |id: &str, parent: Option<&str>, service: &str, kind: SpanKind, peer: Option<&str>| Span {
            trace_id: "t".into(),
            span_id: id.into(),
            parent_id: parent.map(str::to_string),
            service: service.into(),
            operation: "op".into(),
            kind,
            start: 1000,
            duration_ms: 5.0,
            status: SpanStatus::Ok,
            peer_service: peer.map(str::to_string),
        };
    let t = FakeTraces::new(
        "fake-traces",
        vec![
            span("1", None, "front", SpanKind::Server, None),
            span("2", Some("1"), "front", SpanKind::Client, Some("back")),
            span("3", Some("2"), "back", SpanKind::Server, None),
        ],
    );
    let r = TimeRange::new(0, 10_000);
    let g = t.call_graph(r).await.unwrap();
    assert_eq!(g.callees("front").collect::<Vec<_>>(), vec!["back"]);
    assert_eq!(
        t.fetch_spans(r, Some("back"), None, 10)
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    let c = FakeChanges::new(
        "fake-changes",
        vec![ChangeEvent {
            ts: 5,
            kind: ChangeKind::Deploy,
            service: "a".into(),
            description: "d".into(),
            version: None,
        }],
    );
    assert_eq!(
        c.fetch_changes(TimeRange::new(0, 10)).await.unwrap().len(),
        1
    );
    assert!(
        c.fetch_changes(TimeRange::new(6, 10))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn fakes_fail_and_hang_on_demand() {
    let m = FakeMetrics::new("m");
    let err = SourceError::Unavailable {
        source_name: "m".into(),
        detail: "down".into(),
    };
    m.control.set(Behavior::Fail(err.clone()));
    assert_eq!(
        m.label_values("service", TimeRange::new(0, 1)).await,
        Err(err)
    );
    m.control.set(Behavior::Hang);
    let hung = tokio::time::timeout(
        Duration::from_millis(50),
        m.label_values("service", TimeRange::new(0, 1)),
    )
    .await;
    assert!(hung.is_err(), "a hanging fake never answers");
    m.control.set(Behavior::Normal);
    assert!(
        m.label_values("service", TimeRange::new(0, 1))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(m.control.calls(), 3);
}
