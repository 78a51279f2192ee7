//! The operations behind both front doors, the HTTP API (`api.rs`) and the MCP tools
//! (`mcp.rs`): each checks the caller's role, validates its input, changes the store
//! and writes the audit record, so the two cannot drift apart in what they allow.

use super::auth::Caller;
use super::worker::now_ms;
use super::{ServeState, api::AppError};
use compass_core::{Incident, IncidentOrigin, Investigation};
use compass_engine::store::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A new incident to investigate.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewIncident {
    /// One line saying what is wrong, e.g. "checkout p99 latency over 2 s".
    pub title: String,
    /// `critical`, `warning` (default) or `info`.
    #[serde(default)]
    pub severity: Option<String>,
    /// Services the alert names, if any (the agents also look beyond them).
    #[serde(default)]
    pub services: Vec<String>,
    /// When it started, RFC 3339 (default: now).
    #[serde(default)]
    pub start: Option<String>,
    /// Alert labels to keep with the incident.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// An incident just opened and the investigation queued for it.
#[derive(Debug, Serialize)]
pub struct Created {
    pub incident: IncidentRecord,
    pub investigation_id: String,
}

/// A human verdict on one hypothesis.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    /// The hypothesis id from the investigation's result (e.g. `h1`).
    pub hypothesis_id: String,
    /// `confirmed` or `rejected`.
    pub verdict: String,
    /// Why (kept as feedback; at most 4000 bytes).
    #[serde(default)]
    pub note: String,
}

/// Write one audit record for a change the caller made.
pub async fn audit(
    state: &ServeState,
    caller: &Caller,
    action: &str,
    target: &str,
    detail: String,
) -> Result<(), AppError> {
    state
        .store
        .audit(&AuditRecord {
            at: now_ms(),
            actor: caller.name.clone(),
            action: action.into(),
            target: target.into(),
            detail,
        })
        .await?;
    Ok(())
}

/// `open`, `resolved`, `all` (or nothing): the incidents in that state, newest first.
pub async fn list_incidents(
    state: &ServeState,
    caller: &Caller,
    filter: Option<&str>,
    limit: u32,
) -> Result<Vec<IncidentRecord>, AppError> {
    caller.require(Role::Viewer)?;
    let filter = match filter {
        None | Some("") | Some("all") => None,
        Some(s) => Some(IncidentState::parse(s).ok_or_else(|| {
            AppError::bad_request(format!("state `{s}`: use open, resolved or all"))
        })?),
    };
    Ok(state.store.incidents(filter, limit.clamp(1, 500)).await?)
}

/// Open an incident and queue its investigation.
pub async fn create_incident(
    state: &ServeState,
    caller: &Caller,
    body: NewIncident,
) -> Result<Created, AppError> {
    caller.require(Role::Responder)?;
    if body.title.trim().is_empty() {
        return Err(AppError::unprocessable("`title` is empty"));
    }
    let severity = match &body.severity {
        None => compass_core::Severity::Warning,
        Some(s) => compass_adapters::alertmanager::severity_of(s).ok_or_else(|| {
            AppError::unprocessable(format!("severity `{s}`: use critical, warning or info"))
        })?,
    };
    let start = match &body.start {
        None => now_ms(),
        Some(t) => chrono::DateTime::parse_from_rfc3339(t)
            .map_err(|e| {
                AppError::unprocessable(format!(
                    "start `{t}`: {e}; write RFC 3339, e.g. 2026-03-14T09:32:00Z"
                ))
            })?
            .timestamp_millis(),
    };
    let incident = Incident {
        id: String::new(),
        title: body.title.trim().to_string(),
        severity,
        start,
        affected_services: body.services,
        labels: body.labels,
        origin: IncidentOrigin::Api,
    };
    let (record, investigation_id) = state.store.create_incident(&incident, now_ms()).await?;
    state.queue_notify.notify_waiters();
    audit(
        state,
        caller,
        "incident.create",
        &record.id,
        format!("investigation {investigation_id}"),
    )
    .await?;
    Ok(Created {
        incident: record,
        investigation_id,
    })
}

/// Queue another investigation of an incident (priority: the severity's, unless given).
pub async fn start_investigation(
    state: &ServeState,
    caller: &Caller,
    incident_id: &str,
    priority: Option<i64>,
) -> Result<InvestigationRecord, AppError> {
    caller.require(Role::Responder)?;
    let incident = state.store.incident(incident_id).await?;
    let priority = priority.unwrap_or(priority_of(incident.incident.severity));
    let inv = state.store.enqueue(incident_id, priority, now_ms()).await?;
    state.queue_notify.notify_waiters();
    audit(
        state,
        caller,
        "investigation.start",
        &inv,
        format!("incident {incident_id}"),
    )
    .await?;
    Ok(state.store.investigation(&inv).await?)
}

/// The stored result with the standing human decisions folded in; `None` while it
/// has none (queued, running, failed, cancelled).
pub async fn result_with_decisions(
    state: &ServeState,
    id: &str,
) -> Result<Option<Investigation>, AppError> {
    let Some(mut inv) = state.store.result(id).await? else {
        return Ok(None);
    };
    inv.decisions = state
        .store
        .decisions(id)
        .await?
        .into_iter()
        .map(|d| compass_core::Decision {
            hypothesis_id: d.hypothesis_id,
            confirmed: d.confirmed,
            by: d.actor,
            note: d.note,
            at: d.at,
        })
        .collect();
    Ok(Some(inv))
}

/// The result, or a conflict saying why there is none yet.
pub async fn result(
    state: &ServeState,
    caller: &Caller,
    id: &str,
) -> Result<Investigation, AppError> {
    caller.require(Role::Viewer)?;
    match result_with_decisions(state, id).await? {
        Some(inv) => Ok(inv),
        None => {
            let rec = state.store.investigation(id).await?;
            Err(AppError::conflict(format!(
                "investigation {id} has no result ({}{})",
                rec.state.as_str(),
                rec.error.map(|e| format!(": {e}")).unwrap_or_default()
            )))
        }
    }
}

/// Record a confirm/reject on one hypothesis of a finished investigation.
pub async fn record_decision(
    state: &ServeState,
    caller: &Caller,
    id: &str,
    body: DecisionBody,
) -> Result<DecisionRecord, AppError> {
    caller.require(Role::Responder)?;
    let confirmed = match body.verdict.as_str() {
        "confirmed" | "confirm" => true,
        "rejected" | "reject" => false,
        other => {
            return Err(AppError::unprocessable(format!(
                "verdict `{other}`: use \"confirmed\" or \"rejected\""
            )));
        }
    };
    if body.note.len() > 4_000 {
        return Err(AppError::unprocessable("`note` is over 4000 bytes"));
    }
    let Some(result) = state.store.result(id).await? else {
        let rec = state.store.investigation(id).await?;
        return Err(AppError::conflict(format!(
            "investigation {id} is {}; decide once it has a result",
            rec.state.as_str()
        )));
    };
    if !result.hypotheses.iter().any(|h| h.id == body.hypothesis_id) {
        return Err(AppError::unprocessable(format!(
            "investigation {id} has no hypothesis `{}` (it has: {})",
            body.hypothesis_id,
            result
                .hypotheses
                .iter()
                .map(|h| h.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let decision = DecisionRecord {
        investigation_id: id.to_string(),
        hypothesis_id: body.hypothesis_id.clone(),
        confirmed,
        note: body.note.trim().to_string(),
        actor: caller.name.clone(),
        at: now_ms(),
    };
    state.store.record_decision(&decision).await?;
    let verdict = if confirmed { "confirmed" } else { "rejected" };
    audit(
        state,
        caller,
        "decision.record",
        id,
        format!("{verdict} {}", body.hypothesis_id),
    )
    .await?;
    Ok(decision)
}
