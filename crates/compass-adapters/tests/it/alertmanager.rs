//! Alertmanager webhook payloads into incidents, against the payloads in
//! `testdata/alertmanager/` (a version 4 notification with two firing alerts and one
//! resolved, one with resolved alerts only, one cut short) and edited copies of them.

use compass_adapters::alertmanager::{AlertError, incident_from_alertmanager, severity_of};
use compass_core::{IncidentOrigin, Severity};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/alertmanager")
        .join(name);
    std::fs::read_to_string(path).expect("fixture")
}

/// The firing fixture after `edit`.
fn edited(edit: impl FnOnce(&mut Value)) -> String {
    let mut payload: Value = serde_json::from_str(&fixture("firing.json")).unwrap();
    edit(&mut payload);
    payload.to_string()
}

fn labels(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

fn standard() -> Vec<String> {
    labels(&["service", "job", "app"])
}

#[test]
fn firing_alerts_make_one_incident() {
    let incident = incident_from_alertmanager(&fixture("firing.json"), &standard()).unwrap();
    assert_eq!(incident.id, "am-5d3a1c2b9e8f7a60");
    assert_eq!(incident.title, "HighRequestLatency on checkout, frontend");
    assert_eq!(incident.severity, Severity::Critical);
    // The earliest firing start: 09:42:30Z, before 10:43:10.517+01:00 (09:43:10.517Z);
    // the resolved alert's earlier start does not count.
    let onset = chrono::DateTime::parse_from_rfc3339("2026-11-22T09:42:30Z").unwrap();
    assert_eq!(incident.start, onset.timestamp_millis());
    assert_eq!(incident.affected_services, ["checkout", "frontend"]);
    let want: BTreeMap<String, String> = [
        ("alertname", "HighRequestLatency"),
        ("namespace", "shop"),
        ("fingerprint", "5d3a1c2b9e8f7a60"),
        ("receiver", "compass"),
        ("alert_count", "2"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(incident.labels, want);
    assert_eq!(incident.origin, IncidentOrigin::Alertmanager);
}

#[test]
fn the_first_configured_service_label_wins() {
    let payload = fixture("firing.json");
    let by_job = incident_from_alertmanager(&payload, &labels(&["job", "service"])).unwrap();
    assert_eq!(by_job.affected_services, ["checkout", "frontend-web"]);
    // The checkout alert has no `service` label: only frontend is named.
    let by_service = incident_from_alertmanager(&payload, &labels(&["service"])).unwrap();
    assert_eq!(by_service.affected_services, ["frontend"]);
    assert_eq!(by_service.title, "HighRequestLatency on frontend");
}

#[test]
fn a_payload_of_resolved_alerts_only_is_an_error() {
    let error = incident_from_alertmanager(&fixture("resolved.json"), &standard()).unwrap_err();
    assert_eq!(error, AlertError::OnlyResolved { resolved: 2 });
    assert_eq!(
        error.to_string(),
        "alertmanager payload only holds resolved alerts (2); there is nothing to investigate"
    );
}

#[test]
fn text_that_is_not_json_names_line_and_column() {
    let error = incident_from_alertmanager(&fixture("malformed.json"), &standard()).unwrap_err();
    match &error {
        AlertError::NotJson { line, .. } => assert_eq!(*line, 9),
        other => panic!("expected not json, got {other:?}"),
    }
    assert!(
        error
            .to_string()
            .starts_with("alertmanager payload is not json: line 9 column 0: EOF while parsing"),
        "{error}"
    );
}

#[test]
fn json_of_another_shape_is_malformed() {
    let payload = r#"{"version": "4", "alerts": {"status": "firing"}}"#;
    let error = incident_from_alertmanager(payload, &standard()).unwrap_err();
    assert!(
        matches!(error, AlertError::Malformed { line: 1, .. }),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("invalid type: map, expected a sequence"),
        "{error}"
    );
}

#[test]
fn only_version_4_is_read() {
    let v3 = edited(|p| p["version"] = json!("3"));
    let error = incident_from_alertmanager(&v3, &standard()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "alertmanager payload has version \"3\", which is not supported (supported versions: \"4\")"
    );
    let numeric = edited(|p| p["version"] = json!(4));
    assert!(incident_from_alertmanager(&numeric, &standard()).is_ok());
    let missing = edited(|p| {
        p.as_object_mut().unwrap().remove("version");
    });
    assert_eq!(
        incident_from_alertmanager(&missing, &standard())
            .unwrap_err()
            .to_string(),
        "alertmanager payload has no version field (supported versions: \"4\")"
    );
}

#[test]
fn a_payload_without_alerts_is_an_error() {
    let empty = edited(|p| p["alerts"] = json!([]));
    let error = incident_from_alertmanager(&empty, &standard()).unwrap_err();
    assert_eq!(error, AlertError::NoAlerts);
    assert_eq!(error.to_string(), "alertmanager payload has no alerts");
}

#[test]
fn a_missing_or_bad_start_names_the_alert_and_the_value() {
    let bad = edited(|p| p["alerts"][2]["startsAt"] = json!("22/11/2026 09:42"));
    assert_eq!(
        incident_from_alertmanager(&bad, &standard())
            .unwrap_err()
            .to_string(),
        "alerts[2].startsAt \"22/11/2026 09:42\" is not an RFC 3339 time"
    );
    let missing = edited(|p| {
        p["alerts"][0].as_object_mut().unwrap().remove("startsAt");
    });
    assert_eq!(
        incident_from_alertmanager(&missing, &standard()).unwrap_err(),
        AlertError::MissingStartsAt { index: 0 }
    );
    // A resolved alert's start is never read.
    let resolved_bad = edited(|p| p["alerts"][1]["startsAt"] = json!("never"));
    assert!(incident_from_alertmanager(&resolved_bad, &standard()).is_ok());
}

#[test]
fn no_service_label_lists_what_the_alerts_have() {
    let error = incident_from_alertmanager(&fixture("firing.json"), &labels(&["app", "component"]))
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "no firing alert has a service label (looked for app, component; the firing alerts have alertname, instance, job, namespace, service, severity): add one of those labels to the alert rule, or configure the label that names the service"
    );
}

#[test]
fn severity_is_the_most_severe_known_label() {
    let cases = [
        ("critical", Some(Severity::Critical)),
        ("Page", Some(Severity::Critical)),
        ("error", Some(Severity::Critical)),
        ("warning", Some(Severity::Warning)),
        (" warn ", Some(Severity::Warning)),
        ("info", Some(Severity::Info)),
        ("none", Some(Severity::Info)),
        ("purple", None),
    ];
    for (label, want) in cases {
        assert_eq!(severity_of(label), want, "{label}");
    }
    let info_and_unknown = edited(|p| {
        p["alerts"][0]["labels"]["severity"] = json!("info");
        p["alerts"][2]["labels"]["severity"] = json!("purple");
    });
    let incident = incident_from_alertmanager(&info_and_unknown, &standard()).unwrap();
    assert_eq!(incident.severity, Severity::Info);
    let unlabelled = edited(|p| {
        for index in [0, 2] {
            p["alerts"][index]["labels"]
                .as_object_mut()
                .unwrap()
                .remove("severity");
        }
    });
    let incident = incident_from_alertmanager(&unlabelled, &standard()).unwrap();
    assert_eq!(incident.severity, Severity::Warning, "the default");
}

#[test]
fn the_summary_annotation_is_the_title() {
    let own = edited(|p| p["alerts"][0]["annotations"]["summary"] = json!("Checkout is slow"));
    let incident = incident_from_alertmanager(&own, &standard()).unwrap();
    assert_eq!(incident.title, "Checkout is slow");
    let common = edited(|p| {
        p["alerts"][0]["annotations"]["summary"] = json!("Checkout is slow");
        p["commonAnnotations"]["summary"] = json!("Shop latency is high");
    });
    let incident = incident_from_alertmanager(&common, &standard()).unwrap();
    assert_eq!(incident.title, "Shop latency is high");
}

#[test]
fn without_a_fingerprint_the_id_hashes_the_group_key() {
    let unprinted = |group_key: &str| {
        let payload = edited(|p| {
            for alert in p["alerts"].as_array_mut().unwrap() {
                alert.as_object_mut().unwrap().remove("fingerprint");
            }
            p["groupKey"] = json!(group_key);
        });
        incident_from_alertmanager(&payload, &standard()).unwrap()
    };
    let first = unprinted("{}:{alertname=\"HighRequestLatency\"}");
    assert_eq!(
        first.id,
        unprinted("{}:{alertname=\"HighRequestLatency\"}").id
    );
    assert!(
        first.id.starts_with("am-") && first.id.len() == 3 + 16,
        "{}",
        first.id
    );
    assert_ne!(first.id, unprinted("{}:{alertname=\"ErrorRate\"}").id);
    assert!(!first.labels.contains_key("fingerprint"));
}
