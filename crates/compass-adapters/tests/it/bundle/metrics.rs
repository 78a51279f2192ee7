//! Metric queries, data-driven: every `testdata/cases/metrics/*.json` names a bundle,
//! a `MetricQuery`, a range and step, and the series expected (or an error); `check`
//! runs one. Plus label values and a corrupt `metrics.om`.

use super::{between, fixture, ms, sources, whole_hour};
use compass_core::{MetricQuery, Series, TimeRange};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Deserialize)]
struct Case {
    bundle: String,
    query: MetricQuery,
    range: [String; 2],
    step_ms: i64,
    #[serde(default)]
    expect: Vec<ExpectedSeries>,
    #[serde(default)]
    expect_error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ExpectedSeries {
    labels: BTreeMap<String, String>,
    points: Vec<(String, f64)>,
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// Run one case; `Err` says how the result differs.
async fn check(case: &Case) -> Result<(), String> {
    let metrics = sources(&case.bundle).metrics.expect("bundle has metrics");
    let range = TimeRange::new(ms(&case.range[0]), ms(&case.range[1]));
    let result = metrics.query_range(&case.query, range, case.step_ms).await;
    let series: Vec<Series> = match (&case.expect_error, result) {
        (Some(want), Err(e)) if e.to_string().contains(want.as_str()) => return Ok(()),
        (Some(want), other) => {
            return Err(format!("expected an error with {want:?}, got {other:?}"));
        }
        (None, Err(e)) => return Err(format!("unexpected error: {e}")),
        (None, Ok(series)) => series,
    };
    let describe = |s: &[Series]| format!("{s:#?}");
    if series.len() != case.expect.len() {
        return Err(format!(
            "expected {} series, got {}",
            case.expect.len(),
            describe(&series)
        ));
    }
    for (got, want) in series.iter().zip(&case.expect) {
        let want_points: Vec<(i64, f64)> = want.points.iter().map(|(t, v)| (ms(t), *v)).collect();
        let same = got.labels == want.labels
            && got.points.len() == want_points.len()
            && got
                .points
                .iter()
                .zip(&want_points)
                .all(|(g, w)| g.0 == w.0 && close(g.1, w.1));
        if !same {
            return Err(format!(
                "expected {:?} {want_points:?}, got {}",
                want.labels,
                describe(&series)
            ));
        }
    }
    Ok(())
}

#[tokio::test]
async fn metric_cases() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/cases/metrics");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    assert!(paths.len() >= 10, "cases in {}", dir.display());
    let mut failures = Vec::new();
    for path in &paths {
        let case: Case = serde_json::from_str(&std::fs::read_to_string(path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if let Err(why) = check(&case).await {
            failures.push(format!(
                "{}: {why}",
                path.file_name().unwrap().to_string_lossy()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        paths.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn label_values_come_from_series_with_samples_in_range() {
    let metrics = sources("tiny").metrics.unwrap();
    let early = metrics
        .label_values("service", between("00:00.000", "02:00.000"))
        .await
        .unwrap();
    assert_eq!(early, ["checkout", "frontend"]);
    let all = metrics.label_values("service", whole_hour()).await.unwrap();
    assert_eq!(all, ["checkout", "frontend", "payment"]);
    let late = metrics
        .label_values("service", between("05:00.000", "15:00.000"))
        .await
        .unwrap();
    assert_eq!(late, ["payment"]);
    let versions = metrics.label_values("version", whole_hour()).await.unwrap();
    assert_eq!(versions, ["v1 \"quoted\" \\ back\nline"]);
    assert!(
        metrics
            .label_values("nope", whole_hour())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_corrupt_metrics_line_fails_with_file_and_line() {
    let metrics = sources("corrupt-metrics").metrics.unwrap();
    let query = MetricQuery {
        metric: "http_server_requests_total".into(),
        matchers: vec![],
        func: compass_core::MetricFunc::Gauge,
        aggregation: compass_core::Aggregation::Sum,
        by: vec![],
    };
    let error = metrics
        .query_range(&query, whole_hour(), 60_000)
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(
        text.starts_with("bundle:metrics: bad data: metrics.om line 5: unterminated label set"),
        "{text}"
    );
    assert!(
        text.contains(
            &fixture("corrupt-metrics")
                .join("metrics.om")
                .display()
                .to_string()
        )
    );
    // The failure is remembered, not re-parsed differently.
    let again = metrics
        .label_values("service", whole_hour())
        .await
        .unwrap_err();
    assert_eq!(again, error);
}

#[tokio::test]
async fn a_truncated_metrics_file_is_bad_data() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["manifest.json", "incident.json"] {
        std::fs::copy(fixture("tiny").join(name), dir.path().join(name)).unwrap();
    }
    std::fs::write(
        dir.path().join("metrics.om"),
        "up{service=\"a\"} 1 1795338000\n",
    )
    .unwrap();
    let bundle = std::sync::Arc::new(compass_adapters::BundleSource::open(dir.path()).unwrap());
    let metrics = bundle.data_sources().metrics.unwrap();
    let error = metrics
        .label_values("service", whole_hour())
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("metrics.om: ends without `# EOF`"),
        "{error}"
    );
}
