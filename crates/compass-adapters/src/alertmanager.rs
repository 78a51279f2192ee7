//! Alertmanager webhook payloads (version 4) turned into an [`Incident`]: the firing
//! alerts of one notification become one incident, starting at the earliest
//! `startsAt`, naming the services their labels name.
//!
//! Rules: only firing alerts count (a payload of resolved alerts is an error, there is
//! nothing to investigate); each alert's service is the value of the first of the
//! configured service labels it has; severity is the most severe `severity` label
//! ([`severity_of`]; alerts without a known one count as `Warning`); the title is the
//! `summary` annotation, else `<alertname> on <services>`; the id is `am-` and the
//! first firing alert's fingerprint (or a stable hash of the group key); labels are
//! the common labels plus `fingerprint`, `alertname`, `receiver` and `alert_count`
//! (the number of firing alerts).

use crate::bundle::json_message;
use chrono::DateTime;
use compass_core::{Incident, IncidentOrigin, Severity};
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use thiserror::Error;

/// The webhook payload versions this module reads.
pub const SUPPORTED_VERSIONS: &[&str] = &["4"];

/// Why a payload gives no incident.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum AlertError {
    #[error("alertmanager payload is not json: line {line} column {column}: {detail}")]
    NotJson {
        line: usize,
        column: usize,
        detail: String,
    },
    #[error(
        "alertmanager payload does not have the webhook shape: line {line} column {column}: {detail}"
    )]
    Malformed {
        line: usize,
        column: usize,
        detail: String,
    },
    #[error(
        "alertmanager payload has no version field (supported versions: {})",
        supported()
    )]
    MissingVersion,
    #[error(
        "alertmanager payload has version {found}, which is not supported (supported versions: {})",
        supported()
    )]
    UnsupportedVersion { found: String },
    #[error("alertmanager payload has no alerts")]
    NoAlerts,
    #[error(
        "alertmanager payload only holds resolved alerts ({resolved}); there is nothing to investigate"
    )]
    OnlyResolved { resolved: usize },
    #[error("alerts[{index}].startsAt is missing")]
    MissingStartsAt { index: usize },
    #[error("alerts[{index}].startsAt {value:?} is not an RFC 3339 time")]
    BadStartsAt { index: usize, value: String },
    #[error(
        "no firing alert has a service label (looked for {}; the firing alerts have {}): add one of those labels to the alert rule, or configure the label that names the service",
        list(configured),
        list(seen)
    )]
    NoServiceLabel {
        /// Label names the firing alerts have, sorted.
        seen: Vec<String>,
        /// The configured service labels, in order.
        configured: Vec<String>,
    },
}

fn supported() -> String {
    SUPPORTED_VERSIONS
        .iter()
        .map(|v| format!("{v:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn list(names: &[String]) -> String {
    match names.is_empty() {
        true => "no labels".to_string(),
        false => names.join(", "),
    }
}

/// The fields of a version 4 payload that make the incident.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Payload {
    #[serde(default)]
    group_key: String,
    #[serde(default)]
    receiver: String,
    #[serde(default)]
    common_labels: BTreeMap<String, String>,
    #[serde(default)]
    common_annotations: BTreeMap<String, String>,
    #[serde(default)]
    alerts: Vec<Alert>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Alert {
    #[serde(default)]
    status: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    starts_at: Option<String>,
    #[serde(default)]
    fingerprint: String,
}

/// A version 4 payload with at least one alert.
fn parse_payload(json: &str) -> Result<Payload, AlertError> {
    let value: Value = serde_json::from_str(json).map_err(|e| AlertError::NotJson {
        line: e.line(),
        column: e.column(),
        detail: json_message(&e),
    })?;
    check_version(&value)?;
    let payload: Payload = serde_json::from_str(json).map_err(|e| AlertError::Malformed {
        line: e.line(),
        column: e.column(),
        detail: json_message(&e),
    })?;
    if payload.alerts.is_empty() {
        return Err(AlertError::NoAlerts);
    }
    Ok(payload)
}

/// Parse an Alertmanager webhook payload into an incident. `service_labels` are the
/// label names that name a service, in order of preference (e.g. `service`, `job`,
/// `app`): for each alert the first one present wins.
pub fn incident_from_alertmanager(
    json: &str,
    service_labels: &[String],
) -> Result<Incident, AlertError> {
    let payload = parse_payload(json)?;
    let firing: Vec<(usize, &Alert)> = (payload.alerts.iter().enumerate())
        .filter(|(_, alert)| alert.status == "firing")
        .collect();
    let Some(&(_, first)) = firing.first() else {
        return Err(AlertError::OnlyResolved {
            resolved: payload.alerts.len(),
        });
    };

    let mut onset = i64::MAX;
    for &(index, alert) in &firing {
        onset = onset.min(starts_at(index, alert)?);
    }
    let services: BTreeSet<&str> = firing
        .iter()
        .filter_map(|(_, alert)| service_of(alert, service_labels))
        .collect();
    if services.is_empty() {
        let seen: BTreeSet<&String> = firing.iter().flat_map(|(_, a)| a.labels.keys()).collect();
        return Err(AlertError::NoServiceLabel {
            seen: seen.into_iter().cloned().collect(),
            configured: service_labels.to_vec(),
        });
    }
    let affected_services: Vec<String> = services.iter().map(|s| s.to_string()).collect();

    let severity = firing
        .iter()
        .filter_map(|(_, alert)| alert.labels.get("severity"))
        .filter_map(|label| severity_of(label))
        .max()
        .unwrap_or(Severity::Warning);
    let alertname = (payload.common_labels.get("alertname"))
        .or_else(|| first.labels.get("alertname"))
        .cloned();
    let summary = (payload.common_annotations.get("summary"))
        .or_else(|| first.annotations.get("summary"))
        .map(|s| s.trim())
        .filter(|s| !s.is_empty());
    let title = match summary {
        Some(summary) => summary.to_string(),
        None => format!(
            "{} on {}",
            alertname.as_deref().unwrap_or("alert"),
            services_phrase(&affected_services)
        ),
    };
    let id = match first.fingerprint.trim() {
        "" => format!(
            "am-{}",
            crate::store::stable_hash(&identity(&payload.group_key, first))
        ),
        fingerprint => format!("am-{fingerprint}"),
    };

    let mut labels = payload.common_labels.clone();
    if !first.fingerprint.is_empty() {
        labels.insert("fingerprint".to_string(), first.fingerprint.clone());
    }
    if let Some(alertname) = alertname {
        labels.insert("alertname".to_string(), alertname);
    }
    if !payload.receiver.is_empty() {
        labels.insert("receiver".to_string(), payload.receiver.clone());
    }
    labels.insert("alert_count".to_string(), firing.len().to_string());

    Ok(Incident {
        id,
        title,
        severity,
        start: onset,
        affected_services,
        labels,
        origin: IncidentOrigin::Alertmanager,
    })
}

/// The model's severity for a `severity` label value, `None` when it is not one this
/// knows. Critical: `critical`, `page`, `error` and their kin (an error pages: like
/// PagerDuty's high urgency); Warning: `warning`, `medium`, ...; Info: `info`, `low`,
/// `none`, ...
pub fn severity_of(label: &str) -> Option<Severity> {
    let severity = match label.trim().to_ascii_lowercase().as_str() {
        "critical" | "crit" | "page" | "pager" | "emergency" | "emerg" | "alert" | "fatal"
        | "disaster" | "error" | "err" | "high" | "p1" | "p2" | "sev1" | "sev2" => {
            Severity::Critical
        }
        "warning" | "warn" | "medium" | "moderate" | "minor" | "p3" | "sev3" => Severity::Warning,
        "info" | "informational" | "notice" | "low" | "none" | "debug" | "p4" | "p5" | "sev4"
        | "sev5" => Severity::Info,
        _ => return None,
    };
    Some(severity)
}

fn check_version(value: &Value) -> Result<(), AlertError> {
    let found = match value.get("version") {
        None | Some(Value::Null) => return Err(AlertError::MissingVersion),
        Some(Value::String(version)) => version.clone(),
        Some(other) => other.to_string(),
    };
    match SUPPORTED_VERSIONS.contains(&found.as_str()) {
        true => Ok(()),
        false => Err(AlertError::UnsupportedVersion {
            found: format!("{found:?}"),
        }),
    }
}

/// Epoch milliseconds (UTC) of an alert's `startsAt`.
fn starts_at(index: usize, alert: &Alert) -> Result<i64, AlertError> {
    let text = match alert.starts_at.as_deref().map(str::trim) {
        None | Some("") => return Err(AlertError::MissingStartsAt { index }),
        Some(text) => text,
    };
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|_| AlertError::BadStartsAt {
            index,
            value: text.to_string(),
        })
}

/// The value of the first configured service label the alert has (non-empty).
fn service_of<'a>(alert: &'a Alert, service_labels: &[String]) -> Option<&'a str> {
    service_labels
        .iter()
        .filter_map(|label| alert.labels.get(label))
        .map(|value| value.trim())
        .find(|value| !value.is_empty())
}

/// `a`, `a, b`, `a, b, c` or `a, b, c and 2 more`.
fn services_phrase(services: &[String]) -> String {
    const SHOWN: usize = 3;
    let shown = services[..services.len().min(SHOWN)].join(", ");
    match services.len().saturating_sub(SHOWN) {
        0 => shown,
        more => format!("{shown} and {more} more"),
    }
}

/// What identifies a notification without a fingerprint: its group key, or the first
/// firing alert's labels and start when the key is empty too.
fn identity(group_key: &str, first: &Alert) -> String {
    if !group_key.is_empty() {
        return group_key.to_string();
    }
    let labels: Vec<String> = first
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    format!(
        "{}@{}",
        labels.join(","),
        first.starts_at.as_deref().unwrap_or("")
    )
}

/// Every alert of a webhook payload, one by one, for the service's intake: each keeps
/// its fingerprint (dedup), the payload's `groupKey` (one incident per group while it
/// is open) and whether it is firing or resolved. An alert without `startsAt` is taken
/// as starting at `received_at`; one without a service label names no service (the
/// agents then look at every service).
pub fn alerts_from_alertmanager(
    json: &str,
    service_labels: &[String],
    received_at: i64,
) -> Result<Vec<compass_engine::store::AlertIn>, AlertError> {
    let payload = parse_payload(json)?;
    let mut out = Vec::with_capacity(payload.alerts.len());
    for (index, alert) in payload.alerts.iter().enumerate() {
        let start = match alert.starts_at.as_deref().map(str::trim) {
            None | Some("") => received_at,
            Some(_) => starts_at(index, alert)?,
        };
        let fingerprint = match alert.fingerprint.trim() {
            "" => crate::store::stable_hash(&identity("", alert)),
            f => f.to_string(),
        };
        let alertname = alert.labels.get("alertname").cloned();
        let group_key = match payload.group_key.trim() {
            "" => format!("alertname:{}", alertname.as_deref().unwrap_or("alert")),
            g => g.to_string(),
        };
        let services: Vec<String> = service_of(alert, service_labels)
            .map(|s| vec![s.to_string()])
            .unwrap_or_default();
        let summary = alert
            .annotations
            .get("summary")
            .map(|s| s.trim())
            .filter(|s| !s.is_empty());
        let title = match summary {
            Some(s) => s.to_string(),
            None if services.is_empty() => alertname.clone().unwrap_or_else(|| "alert".into()),
            None => format!(
                "{} on {}",
                alertname.as_deref().unwrap_or("alert"),
                services_phrase(&services)
            ),
        };
        let mut labels = alert.labels.clone();
        labels.insert("fingerprint".to_string(), fingerprint.clone());
        if !payload.receiver.is_empty() {
            labels.insert("receiver".to_string(), payload.receiver.clone());
        }
        out.push(compass_engine::store::AlertIn {
            fingerprint,
            group_key,
            firing: alert.status != "resolved",
            incident: Incident {
                id: String::new(),
                title,
                severity: alert
                    .labels
                    .get("severity")
                    .and_then(|l| severity_of(l))
                    .unwrap_or(Severity::Warning),
                start,
                affected_services: services,
                labels,
                origin: IncidentOrigin::Alertmanager,
            },
            received_at,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod intake_tests {
    use super::*;

    #[test]
    fn each_alert_keeps_its_fingerprint_group_and_status() {
        let json = r#"{"version":"4","groupKey":"{}:{alertname=\"HighLatency\"}","receiver":"compass",
            "alerts":[
              {"status":"firing","labels":{"alertname":"HighLatency","service":"checkout","severity":"critical"},
               "annotations":{"summary":"p99 over 2s"},"startsAt":"2026-03-14T09:32:00Z","fingerprint":"aa11"},
              {"status":"resolved","labels":{"alertname":"HighLatency","job":"cart"},"annotations":{},
               "startsAt":"2026-03-14T09:30:00Z","fingerprint":"bb22"},
              {"status":"firing","labels":{"alertname":"HighLatency"},"annotations":{}}
            ]}"#;
        let labels = vec!["service".to_string(), "job".to_string()];
        let alerts = alerts_from_alertmanager(json, &labels, 42).unwrap();
        assert_eq!(alerts.len(), 3);
        assert_eq!(
            (
                alerts[0].fingerprint.as_str(),
                alerts[0].firing,
                alerts[0].incident.severity
            ),
            ("aa11", true, Severity::Critical)
        );
        assert_eq!(alerts[0].incident.title, "p99 over 2s");
        assert_eq!(alerts[0].incident.start, 1_773_480_720_000);
        assert_eq!(alerts[0].group_key, alerts[1].group_key);
        assert_eq!(
            (
                alerts[1].firing,
                alerts[1].incident.affected_services.clone()
            ),
            (false, vec!["cart".to_string()])
        );
        // No fingerprint, no startsAt, no service: a stable fingerprint, the receive time, no service.
        assert_eq!(alerts[2].incident.start, 42);
        assert_eq!(alerts[2].fingerprint.len(), 16);
        assert!(alerts[2].incident.affected_services.is_empty());
        assert_eq!(
            alerts_from_alertmanager(json, &labels, 42).unwrap()[2].fingerprint,
            alerts[2].fingerprint
        );
    }

    #[test]
    fn bad_payloads_say_what_is_wrong() {
        let labels = vec!["service".to_string()];
        for (json, needle) in [
            ("{", "not json"),
            (r#"{"alerts":[]}"#, "no version"),
            (r#"{"version":"3","alerts":[]}"#, "version \"3\""),
            (r#"{"version":"4","alerts":[]}"#, "no alerts"),
            (
                r#"{"version":"4","alerts":[{"status":"firing","startsAt":"yesterday"}]}"#,
                "not an RFC 3339",
            ),
            (r#"{"version":"4","alerts":"x"}"#, "webhook shape"),
        ] {
            let e = alerts_from_alertmanager(json, &labels, 0)
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{json}: {e}");
        }
    }
}
