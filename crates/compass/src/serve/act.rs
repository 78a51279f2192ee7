//! `/api/v1/actions`: the remediation desk over HTTP, the same desk `compass act`
//! uses (records in `[act] state_dir`). Reading needs the viewer role, planning the
//! responder role (a plan changes nothing), approving, running and rolling back the
//! approver role. Every change is also written to the service's audit log.
//!
//! A run answers `202 Accepted` once its checks pass (approval, state, the resource's
//! lock) and carries on in the background; poll `GET /api/v1/actions/{id}`.

use super::ServeState;
use super::api::{AppError, JsonBody};
use super::auth::Caller;
use super::ops::audit;
use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use compass_act::action::Command;
use compass_act::audit::Entry;
use compass_act::runner::{ActError, RunResult};
use compass_act::service::{DeskError, Record};
use compass_engine::store::Role;
use schemars::JsonSchema;
use serde::Deserialize;

pub(super) fn routes() -> Router<ServeState> {
    Router::new()
        .route("/api/v1/actions", get(list).post(plan))
        .route("/api/v1/actions/{id}", get(one))
        .route("/api/v1/actions/{id}/approve", post(approve))
        .route("/api/v1/actions/{id}/run", post(run))
        .route("/api/v1/actions/{id}/rollback", post(rollback))
        .route("/api/v1/actions/{id}/log", get(log))
}

impl From<DeskError> for AppError {
    fn from(e: DeskError) -> Self {
        match &e {
            DeskError::NotFound(_) => AppError::not_found(e.to_string()),
            DeskError::Exists { .. } | DeskError::WrongState { .. } | DeskError::Busy { .. } => {
                AppError::conflict(e.to_string())
            }
            DeskError::Act(ActError::NotApproved(_)) => AppError::conflict(e.to_string()),
            DeskError::Act(
                ActError::Invalid(_) | ActError::Unsupported { .. } | ActError::Cpf(_),
            ) => AppError::unprocessable(e.to_string()),
            DeskError::Act(ActError::Exec(_) | ActError::Audit { .. })
            | DeskError::Io { .. }
            | DeskError::Corrupt { .. } => {
                tracing::error!(error = %e, "remediation desk error");
                AppError {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    message: "remediation state error (details are in the server log)".into(),
                }
            }
        }
    }
}

/// A command to plan.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanBody {
    /// The command (see `compass act plan`): `{id, action: {kind, …}, priority, reason,
    /// incident, validate}`.
    pub command: Command,
    /// The incident type `[act] auto_approve` matches (default `manual`).
    #[serde(default)]
    pub incident_type: Option<String>,
    /// `critical` (default), `warning` or `info`.
    #[serde(default)]
    pub severity: Option<String>,
}

async fn list(
    caller: Caller,
    State(state): State<ServeState>,
) -> Result<Json<Vec<Record>>, AppError> {
    caller.require(Role::Viewer)?;
    Ok(Json(state.desk.list()?))
}

async fn one(
    caller: Caller,
    State(state): State<ServeState>,
    Path(id): Path<String>,
) -> Result<Json<Record>, AppError> {
    caller.require(Role::Viewer)?;
    Ok(Json(state.desk.get(&id)?))
}

async fn log(
    caller: Caller,
    State(state): State<ServeState>,
    Path(id): Path<String>,
) -> Result<Json<Vec<Entry>>, AppError> {
    caller.require(Role::Viewer)?;
    state.desk.get(&id)?;
    Ok(Json(state.desk.log(Some(&id))?))
}

async fn plan(
    caller: Caller,
    State(state): State<ServeState>,
    JsonBody(body): JsonBody<PlanBody>,
) -> Result<(StatusCode, Json<Record>), AppError> {
    caller.require(Role::Responder)?;
    let severity = body.severity.unwrap_or_else(|| "critical".into());
    let incident_type = body.incident_type.unwrap_or_else(|| "manual".into());
    let r = state
        .desk
        .plan(body.command, &incident_type, &severity)
        .await?;
    audit(
        &state,
        &caller,
        "action.plan",
        r.id(),
        format!(
            "{} ({} risk)",
            r.plan.command.action.kind(),
            r.plan.risk.level
        ),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(r)))
}

async fn approve(
    caller: Caller,
    State(state): State<ServeState>,
    Path(id): Path<String>,
) -> Result<Json<Record>, AppError> {
    caller.require(Role::Approver)?;
    let r = state.desk.approve(&id, &caller.name).await?;
    audit(
        &state,
        &caller,
        "action.approve",
        &id,
        format!("{} risk", r.plan.risk.level),
    )
    .await?;
    Ok(Json(r))
}

#[derive(Debug, Deserialize)]
struct RunQuery {
    #[serde(default)]
    dry_run: bool,
}

async fn run(
    caller: Caller,
    State(state): State<ServeState>,
    Path(id): Path<String>,
    Query(q): Query<RunQuery>,
) -> Result<(StatusCode, Json<serde_json::Value>), AppError> {
    caller.require(Role::Approver)?;
    if q.dry_run {
        let (result, ran) = state.desk.dry_run(&id).await?;
        return Ok((
            StatusCode::OK,
            Json(serde_json::json!({"dry_run": true, "result": result, "would_run": ran})),
        ));
    }
    let started = state.desk.start(&id, &caller.name).await?;
    audit(&state, &caller, "action.run", &id, "started".into()).await?;
    let record = started.record.clone();
    let desk = state.desk.clone();
    tokio::spawn(async move {
        match desk.complete(started).await {
            Ok(r) => {
                let end = match &r.result {
                    Some(RunResult::Succeeded) => "succeeded".to_string(),
                    Some(RunResult::RolledBack { reason }) => format!("rolled back: {reason}"),
                    Some(RunResult::Failed { reason }) => format!("failed: {reason}"),
                    None => r.status.to_string(),
                };
                tracing::info!(action = %r.id(), result = %end, "remediation finished");
            }
            Err(e) => tracing::error!(error = %e, "remediation failed"),
        }
    });
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::to_value(record).expect("a record serializes")),
    ))
}

async fn rollback(
    caller: Caller,
    State(state): State<ServeState>,
    Path(id): Path<String>,
) -> Result<Json<Record>, AppError> {
    caller.require(Role::Approver)?;
    let r = state.desk.rollback(&id, &caller.name).await?;
    audit(
        &state,
        &caller,
        "action.rollback",
        &id,
        r.status.to_string(),
    )
    .await?;
    Ok(Json(r))
}
