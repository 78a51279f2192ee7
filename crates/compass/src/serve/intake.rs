//! Alert intake: the Alertmanager webhook (payload version 4) and a generic JSON
//! webhook, both folded alert by alert into the store (dedup by fingerprint, one open
//! incident per group, storms collapsed, the last resolve closing the incident).
//!
//! The generic webhook takes `{"alerts": [...]}` or one alert object, strictly (an
//! unknown field is a 422 naming it):
//!
//! ```json
//! {"name": "HighLatency", "status": "firing", "severity": "critical",
//!  "service": "checkout", "summary": "p99 over 2 s", "starts_at": "2026-03-14T09:32:00Z",
//!  "fingerprint": "optional, else derived", "group": "optional, else the name",
//!  "labels": {"team": "payments"}}
//! ```

use super::ServeState;
use super::api::AppError;
use super::auth::webhook_caller;
use super::metrics as m;
use super::worker::now_ms;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use compass_core::{Incident, IncidentOrigin, Severity};
use compass_engine::store::{AlertIn, AuditRecord, IntakeOutcome, StormPolicy};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a webhook call did, alert by alert.
#[derive(Debug, Serialize)]
pub struct IntakeReply {
    pub received: usize,
    pub opened: usize,
    pub deduplicated: usize,
    pub joined: usize,
    pub resolved: usize,
    pub ignored: usize,
    pub outcomes: Vec<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum GenericBody {
    Many { alerts: Vec<GenericAlert> },
    One(Box<GenericAlert>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GenericAlert {
    name: String,
    #[serde(default = "firing")]
    status: String,
    #[serde(default)]
    severity: Option<String>,
    #[serde(default)]
    service: Option<String>,
    #[serde(default)]
    services: Vec<String>,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    starts_at: Option<String>,
    #[serde(default)]
    fingerprint: Option<String>,
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

fn firing() -> String {
    "firing".into()
}

/// Parse the generic webhook body into alerts.
fn generic_alerts(body: &[u8], received_at: i64) -> Result<Vec<AlertIn>, AppError> {
    // Parse twice only on failure: the untagged enum hides the real error, so the
    // message comes from the shape the body looks like.
    let parsed: GenericBody = match serde_json::from_slice(body) {
        Ok(b) => b,
        Err(_) => {
            let value: serde_json::Value = serde_json::from_slice(body)
                .map_err(|e| AppError::bad_request(format!("the body is not JSON: {e}")))?;
            let detail = match value.get("alerts") {
                Some(_) => {
                    serde_json::from_value::<Vec<GenericAlert>>(value["alerts"].clone()).err()
                }
                None => serde_json::from_value::<GenericAlert>(value).err(),
            };
            return Err(AppError::unprocessable(format!(
                "not a generic alert: {}",
                detail.map_or(
                    "expected {\"alerts\": [...]} or one alert object".to_string(),
                    |e| e.to_string()
                )
            )));
        }
    };
    let alerts = match parsed {
        GenericBody::Many { alerts } => alerts,
        GenericBody::One(a) => vec![*a],
    };
    if alerts.is_empty() {
        return Err(AppError::unprocessable("`alerts` is empty"));
    }
    let mut out = Vec::with_capacity(alerts.len());
    for (i, a) in alerts.into_iter().enumerate() {
        let at = |m: String| AppError::unprocessable(format!("alerts[{i}]: {m}"));
        if a.name.trim().is_empty() {
            return Err(at("`name` is empty".into()));
        }
        let firing = match a.status.as_str() {
            "firing" => true,
            "resolved" => false,
            other => {
                return Err(at(format!(
                    "status `{other}`: use \"firing\" or \"resolved\""
                )));
            }
        };
        let severity = match &a.severity {
            None => Severity::Warning,
            Some(s) => compass_adapters::alertmanager::severity_of(s)
                .ok_or_else(|| at(format!("severity `{s}`: use critical, warning or info")))?,
        };
        let start = match &a.starts_at {
            None => received_at,
            Some(t) => chrono::DateTime::parse_from_rfc3339(t)
                .map_err(|e| {
                    at(format!(
                        "starts_at `{t}`: {e}; write RFC 3339, e.g. 2026-03-14T09:32:00Z"
                    ))
                })?
                .timestamp_millis(),
        };
        let mut services = a.services.clone();
        if let Some(s) = &a.service {
            services.insert(0, s.clone());
        }
        services.dedup();
        let fingerprint = a.fingerprint.clone().unwrap_or_else(|| {
            let mut identity = format!("{}|{}", a.name, services.join(","));
            for (k, v) in &a.labels {
                identity.push_str(&format!("|{k}={v}"));
            }
            compass_adapters::store::stable_hash(&identity)
        });
        let mut labels = a.labels.clone();
        labels.insert("alertname".into(), a.name.clone());
        labels.insert("fingerprint".into(), fingerprint.clone());
        out.push(AlertIn {
            group_key: a
                .group
                .clone()
                .unwrap_or_else(|| format!("alertname:{}", a.name)),
            fingerprint,
            firing,
            incident: Incident {
                id: String::new(),
                title: a
                    .summary
                    .clone()
                    .unwrap_or_else(|| match services.is_empty() {
                        true => a.name.clone(),
                        false => format!("{} on {}", a.name, services.join(", ")),
                    }),
                severity,
                start,
                affected_services: services,
                labels,
                origin: IncidentOrigin::Api,
            },
            received_at,
        });
    }
    Ok(out)
}

/// Fold the alerts into the store and audit the call.
async fn fold(
    state: &ServeState,
    receiver: &str,
    actor: &str,
    alerts: Vec<AlertIn>,
) -> Result<IntakeReply, AppError> {
    let storm = StormPolicy {
        max_new_incidents: state.serve.storm_max_new_incidents,
        window_ms: state.serve.storm_window.as_millis() as i64,
    };
    let mut reply = IntakeReply {
        received: alerts.len(),
        opened: 0,
        deduplicated: 0,
        joined: 0,
        resolved: 0,
        ignored: 0,
        outcomes: Vec::new(),
    };
    for alert in &alerts {
        let severity = super::severity_str(alert.incident.severity);
        let alertname = alert.incident.labels.get("alertname").map(String::as_str);
        let outcome = if alert.firing && !state.limits.auto_investigates(severity, alertname) {
            reply.ignored += 1;
            serde_json::json!({ "outcome": "ignored", "fingerprint": alert.fingerprint,
                "reason": format!("[limits] does not investigate {severity} alerts named {}", alertname.unwrap_or("-")) })
        } else {
            let o = state.store.intake_alert(alert, storm).await?;
            match &o {
                IntakeOutcome::Opened { .. } => {
                    reply.opened += 1;
                    state.queue_notify.notify_waiters();
                }
                IntakeOutcome::Deduplicated { .. } => reply.deduplicated += 1,
                IntakeOutcome::Joined { .. } => reply.joined += 1,
                IntakeOutcome::Resolved { .. } => reply.resolved += 1,
                IntakeOutcome::Ignored => reply.ignored += 1,
            }
            let mut v = serde_json::to_value(&o).unwrap_or_default();
            v["fingerprint"] = serde_json::Value::String(alert.fingerprint.clone());
            v
        };
        let label = outcome["outcome"].as_str().unwrap_or("unknown").to_string();
        metrics::counter!(m::WEBHOOK_ALERTS, "receiver" => receiver.to_string(), "outcome" => label).increment(1);
        reply.outcomes.push(outcome);
    }
    state
        .store
        .audit(&AuditRecord {
            at: now_ms(),
            actor: actor.to_string(),
            action: "alerts.receive".into(),
            target: receiver.to_string(),
            detail: format!(
                "received {} opened {} deduplicated {} joined {} resolved {} ignored {}",
                reply.received,
                reply.opened,
                reply.deduplicated,
                reply.joined,
                reply.resolved,
                reply.ignored
            ),
        })
        .await?;
    Ok(reply)
}

fn rejected(receiver: &str) {
    metrics::counter!(m::WEBHOOK_ALERTS, "receiver" => receiver.to_string(), "outcome" => "rejected").increment(1);
}

/// `POST /api/v1/webhooks/alertmanager`
pub(super) async fn alertmanager(
    State(state): State<ServeState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<IntakeReply>, AppError> {
    let caller = webhook_caller(&state, &headers, &body, "alertmanager")
        .await
        .inspect_err(|_| rejected("alertmanager"))?;
    let text = std::str::from_utf8(&body).map_err(|_| {
        rejected("alertmanager");
        AppError::bad_request("the body is not UTF-8 text")
    })?;
    let alerts = compass_adapters::alertmanager::alerts_from_alertmanager(
        text,
        &state.alert_labels,
        now_ms(),
    )
    .map_err(|e| {
        rejected("alertmanager");
        AppError::unprocessable(e.to_string())
    })?;
    Ok(Json(
        fold(&state, "alertmanager", &caller.name, alerts).await?,
    ))
}

/// `POST /api/v1/webhooks/generic`
pub(super) async fn generic(
    State(state): State<ServeState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<IntakeReply>, AppError> {
    let caller = webhook_caller(&state, &headers, &body, "generic")
        .await
        .inspect_err(|_| rejected("generic"))?;
    let alerts = generic_alerts(&body, now_ms()).inspect_err(|_| rejected("generic"))?;
    Ok(Json(fold(&state, "generic", &caller.name, alerts).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generic_alerts_parse_strictly() {
        let one = br#"{"name":"HighLatency","service":"checkout","severity":"critical","starts_at":"2026-03-14T09:32:00Z"}"#;
        let a = generic_alerts(one, 5).unwrap();
        assert_eq!(a.len(), 1);
        assert_eq!(
            (a[0].firing, a[0].incident.severity, a[0].incident.start),
            (true, Severity::Critical, 1_773_480_720_000)
        );
        assert_eq!(a[0].group_key, "alertname:HighLatency");
        assert_eq!(a[0].incident.title, "HighLatency on checkout");
        // The derived fingerprint is stable.
        assert_eq!(
            generic_alerts(one, 9).unwrap()[0].fingerprint,
            a[0].fingerprint
        );
        let many = br#"{"alerts":[{"name":"A","status":"resolved","fingerprint":"f1"},{"name":"B","group":"g"}]}"#;
        let a = generic_alerts(many, 5).unwrap();
        assert_eq!(
            (
                a[0].firing,
                a[0].fingerprint.as_str(),
                a[1].group_key.as_str(),
                a[1].incident.start
            ),
            (false, "f1", "g", 5)
        );
        for (body, status, needle) in [
            (&b"nope"[..], 400, "not JSON"),
            (
                br#"{"name":"A","colour":"red"}"#,
                422,
                "unknown field `colour`",
            ),
            (
                br#"{"alerts":[{"name":"A","sevrity":"x"}]}"#,
                422,
                "unknown field `sevrity`",
            ),
            (br#"{"alerts":[]}"#, 422, "empty"),
            (
                br#"{"name":"A","status":"open"}"#,
                422,
                "alerts[0]: status `open`",
            ),
            (
                br#"{"name":"A","severity":"urgent"}"#,
                422,
                "severity `urgent`",
            ),
            (
                br#"{"name":"A","starts_at":"noon"}"#,
                422,
                "starts_at `noon`",
            ),
            (br#"{"service":"x"}"#, 422, "missing field `name`"),
        ] {
            let e = generic_alerts(body, 0).unwrap_err();
            assert_eq!(e.status.as_u16(), status, "{}", e.message);
            assert!(
                e.message.contains(needle),
                "{}: {}",
                String::from_utf8_lossy(body),
                e.message
            );
        }
    }
}
