//! Opening bundles: the manifest and incident, which files are missing, and errors
//! that name the file and say what to do.

use super::{fixture, ms};
use compass_adapters::{BundleErrorKind, BundleSource, read_truth};
use compass_core::{FaultKind, IncidentOrigin, Severity};
use std::sync::Arc;

#[test]
fn opens_the_tiny_bundle() {
    let bundle = BundleSource::open(&fixture("tiny")).unwrap();
    let manifest = bundle.manifest();
    assert_eq!(manifest.format, "compass-bundle/1");
    assert_eq!(manifest.scenario.as_deref(), Some("tiny"));
    assert_eq!(manifest.seed, Some(7));
    assert_eq!(manifest.start, ms("2026-11-22T09:00:00Z"));
    assert_eq!(manifest.end, ms("2026-11-22T10:00:00Z"));
    assert_eq!(
        manifest.services,
        ["frontend", "checkout", "payment", "inventory"]
    );
    assert_eq!(manifest.step_seconds, 15);
    assert_eq!(bundle.dir(), fixture("tiny"));
    assert!(bundle.missing_files().is_empty());
}

#[test]
fn parses_the_incident() {
    let bundle = BundleSource::open(&fixture("tiny")).unwrap();
    let incident = bundle.incident();
    assert_eq!(incident.id, "tiny-1");
    assert_eq!(incident.title, "High latency on frontend");
    assert_eq!(incident.severity, Severity::Critical);
    assert_eq!(incident.start, ms("2026-11-22T09:42:30.000Z"));
    assert_eq!(incident.start, 1_795_340_550_000);
    assert_eq!(incident.affected_services, ["frontend"]);
    assert_eq!(incident.labels["alertname"], "FrontendLatencyHigh");
    assert_eq!(incident.origin, IncidentOrigin::Simulator);
}

#[test]
fn reads_the_truth_only_on_request() {
    let truth = read_truth(&fixture("tiny")).unwrap();
    assert_eq!(truth.service, "payment");
    assert_eq!(truth.fault_kind, FaultKind::CpuSaturation);
    assert_eq!(truth.start, ms("2026-11-22T09:40:00Z"));
    let error = read_truth(&fixture("minimal")).unwrap_err();
    assert_eq!(error.kind(), BundleErrorKind::NotFound);
    assert!(
        error.to_string().contains("truth.json is missing"),
        "{error}"
    );
}

#[test]
fn missing_optional_files_leave_their_ports_out() {
    let bundle = Arc::new(BundleSource::open(&fixture("minimal")).unwrap());
    assert_eq!(
        bundle.missing_files(),
        ["metrics.om", "logs.jsonl", "traces.jsonl", "events.jsonl"]
    );
    let sources = bundle.data_sources();
    assert!(sources.metrics.is_none());
    assert!(sources.logs.is_none());
    assert!(sources.traces.is_none());
    assert!(sources.changes.is_none());

    let sources = Arc::new(BundleSource::open(&fixture("tiny")).unwrap()).data_sources();
    assert_eq!(sources.metrics.unwrap().name(), "bundle:metrics");
    assert_eq!(sources.logs.unwrap().name(), "bundle:logs");
    assert_eq!(sources.traces.unwrap().name(), "bundle:traces");
    assert_eq!(sources.changes.unwrap().name(), "bundle:changes");
}

#[test]
fn a_missing_incident_says_what_to_do() {
    let dir = fixture("no-incident");
    let error = BundleSource::open(&dir).unwrap_err();
    assert_eq!(error.kind(), BundleErrorKind::NotFound);
    assert_eq!(
        error.to_string(),
        format!(
            "bundle {}: incident.json is missing (is this a COMPASS bundle? create one with `compass simulate`)",
            dir.display()
        )
    );
}

#[test]
fn a_missing_directory_says_so() {
    let dir = fixture("does-not-exist");
    let error = BundleSource::open(&dir).unwrap_err();
    assert_eq!(error.kind(), BundleErrorKind::NotFound);
    let text = error.to_string();
    assert!(text.contains("directory does not exist"), "{text}");
    assert!(text.contains("compass simulate"), "{text}");
}

/// A temp bundle with the tiny fixture's manifest and incident, edited.
fn edited_bundle(file: &str, text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in ["manifest.json", "incident.json"] {
        std::fs::copy(fixture("tiny").join(name), dir.path().join(name)).unwrap();
    }
    std::fs::write(dir.path().join(file), text).unwrap();
    dir
}

#[test]
fn bad_json_names_file_line_and_column() {
    let dir = edited_bundle(
        "incident.json",
        "{\"id\":\"x\",\"title\":\"t\",\n \"severity\":\"urgent\",\"start\":\"2026-11-22T09:42:30.000Z\",\n \"affected_services\":[],\"origin\":\"cli\"}",
    );
    let error = BundleSource::open(dir.path()).unwrap_err();
    assert_eq!(error.kind(), BundleErrorKind::BadInput);
    let text = error.to_string();
    assert!(
        text.contains("incident.json line 2 column 20: unknown variant `urgent`"),
        "{text}"
    );
    assert!(text.contains("compass simulate"), "{text}");
}

#[test]
fn a_bad_incident_time_is_explained() {
    let dir = edited_bundle(
        "incident.json",
        r#"{"id":"x","title":"t","severity":"info","start":"22/11/2026","affected_services":[],"origin":"cli"}"#,
    );
    let text = BundleSource::open(dir.path()).unwrap_err().to_string();
    assert!(text.contains("incident.json line 1"), "{text}");
    assert!(
        text.contains("bad timestamp \"22/11/2026\": expected RFC 3339"),
        "{text}"
    );
}

#[test]
fn an_unknown_format_is_refused() {
    let dir = edited_bundle(
        "manifest.json",
        r#"{"format":"compass-bundle/9","start":"2026-11-22T09:00:00Z","end":"2026-11-22T10:00:00Z"}"#,
    );
    let error = BundleSource::open(dir.path()).unwrap_err();
    assert_eq!(error.kind(), BundleErrorKind::BadInput);
    let text = error.to_string();
    assert!(
        text.contains("manifest.json: unsupported format \"compass-bundle/9\""),
        "{text}"
    );
}

#[test]
fn a_minimal_manifest_gets_defaults() {
    let dir = edited_bundle(
        "manifest.json",
        r#"{"format":"compass-bundle/1","start":"2026-11-22T09:00:00Z","end":"2026-11-22T10:00:00Z"}"#,
    );
    let bundle = BundleSource::open(dir.path()).unwrap();
    assert_eq!(bundle.manifest().step_seconds, 15);
    assert!(bundle.manifest().services.is_empty());
    assert_eq!(bundle.manifest().range().duration_ms(), 3_600_000);
}

#[tokio::test]
async fn an_unreadable_data_file_names_its_path() {
    let dir = edited_bundle(
        "incident.json",
        &std::fs::read_to_string(fixture("tiny").join("incident.json")).unwrap(),
    );
    std::fs::create_dir(dir.path().join("logs.jsonl")).unwrap();
    let sources = Arc::new(BundleSource::open(dir.path()).unwrap()).data_sources();
    let logs = sources.logs.expect("the file exists, so the port is there");
    let error = logs
        .fetch_logs(&Default::default(), super::whole_hour(), None, 10)
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(
        text.starts_with("bundle:logs: not found: cannot read"),
        "{text}"
    );
    assert!(
        text.contains(&dir.path().join("logs.jsonl").display().to_string()),
        "{text}"
    );
}
