//! The HTTP API: the router built by [`app`], its handlers, request/response types
//! (separate from the domain types) and [`AppError`], the one error response, which
//! hides internals (`{"error": "..."}`; 5xx details go to the log only).
//!
//! Limits: bodies over `[serve] max_body_bytes` get 413, requests slower than
//! `request_timeout` get 408 (the SSE stream is exempt), and at most 512 requests are
//! handled at once (the rest wait holding only their connection, body unread:
//! backpressure, not a growing queue in memory).

use super::auth::Caller;
use super::worker::now_ms;
use super::{ServeState, intake, metrics as m, openapi, ops, ui};
use axum::extract::{MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use compass_engine::store::*;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

/// The one error response.
#[derive(Debug)]
pub struct AppError {
    pub status: StatusCode,
    pub message: String,
}

impl AppError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
    pub fn bad_request(m: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, m)
    }
    pub fn unprocessable(m: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, m)
    }
    pub fn unauthorized(m: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, m)
    }
    pub fn forbidden(m: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, m)
    }
    pub fn not_found(m: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, m)
    }
    pub fn conflict(m: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, m)
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e.kind() {
            StoreErrorKind::NotFound => AppError::not_found(e.to_string()),
            StoreErrorKind::Conflict => AppError::conflict(e.to_string()),
            StoreErrorKind::BadInput => AppError::unprocessable(e.to_string()),
            StoreErrorKind::Unavailable => {
                tracing::error!(error = %e, "store unavailable");
                AppError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the database is unavailable; try again shortly",
                )
            }
            StoreErrorKind::Internal => {
                tracing::error!(error = %e, "store error");
                AppError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error (details are in the server log)",
                )
            }
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(serde_json::json!({ "error": self.message })),
        )
            .into_response()
    }
}

/// A JSON body whose rejection is an [`AppError`] naming the problem.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequest<S> for JsonBody<T> {
    type Rejection = AppError;
    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(JsonBody(v)),
            Err(e) => Err(AppError::new(e.status(), e.body_text())),
        }
    }
}

/// The whole router: API, webhooks, UI, health, metrics, OpenAPI.
pub fn app(state: ServeState, prometheus: Option<PrometheusHandle>) -> Router {
    let timed = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route(
            "/api/openapi.json",
            get(|| async { Json(openapi::document()) }),
        )
        .route("/api/v1/webhooks/alertmanager", post(intake::alertmanager))
        .route("/api/v1/webhooks/generic", post(intake::generic))
        .route(
            "/api/v1/incidents",
            get(list_incidents).post(create_incident),
        )
        .route("/api/v1/incidents/{id}", get(get_incident))
        .route(
            "/api/v1/incidents/{id}/investigations",
            post(start_investigation),
        )
        .route("/api/v1/investigations", get(list_investigations))
        .route("/api/v1/investigations/{id}", get(get_investigation))
        .route("/api/v1/investigations/{id}/result", get(get_result))
        .route(
            "/api/v1/investigations/{id}/cancel",
            post(cancel_investigation),
        )
        .route(
            "/api/v1/investigations/{id}/decisions",
            get(list_decisions).post(record_decision),
        )
        .route("/api/v1/audit", get(audit_log))
        .merge(super::act::routes())
        .merge(ui::routes())
        .route(
            "/metrics",
            get(move |State(state): State<ServeState>| {
                let prometheus = prometheus.clone();
                async move {
                    super::telemetry::refresh_queue_gauge(&state).await;
                    match prometheus {
                        Some(h) => ([("content-type", "text/plain; version=0.0.4")], h.render())
                            .into_response(),
                        None => (
                            StatusCode::SERVICE_UNAVAILABLE,
                            "no metrics recorder installed\n",
                        )
                            .into_response(),
                    }
                }
            }),
        )
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            state.serve.request_timeout,
        ));
    Router::new()
        .route("/api/v1/investigations/{id}/events", get(events))
        .merge(super::mcp::routes(&state))
        .merge(timed)
        .fallback(|| async {
            AppError::not_found("no such route; the API is described at /api/openapi.json")
        })
        .layer(axum::middleware::from_fn(observe))
        .layer(RequestBodyLimitLayer::new(state.serve.max_body_bytes))
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(512))
        .with_state(state)
}

/// Per request: a span, the request counter and the latency histogram by route.
async fn observe(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().clone();
    let span = tracing::info_span!("http", %method, route = %route);
    let started = Instant::now();
    let response = tracing::Instrument::instrument(next.run(req), span).await;
    let class = format!("{}xx", response.status().as_u16() / 100);
    metrics::counter!(m::HTTP_REQUESTS, "route" => route.clone(), "status" => class).increment(1);
    metrics::histogram!(m::HTTP_SECONDS, "route" => route).record(started.elapsed().as_secs_f64());
    response
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

async fn readyz(State(state): State<ServeState>) -> Response {
    match state.store.ping().await {
        Ok(()) => Json(serde_json::json!({ "status": "ready", "store": state.store.backend() }))
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            (StatusCode::SERVICE_UNAVAILABLE, Json(serde_json::json!({ "status": "not ready", "error": "the database does not answer" })))
                .into_response()
        }
    }
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    state: Option<String>,
    incident: Option<String>,
    limit: Option<u32>,
}

fn limit(q: &ListQuery) -> u32 {
    q.limit.unwrap_or(50).clamp(1, 500)
}

/// An incident and its investigations.
#[derive(Debug, Serialize)]
pub struct IncidentView {
    #[serde(flatten)]
    pub record: IncidentRecord,
    pub investigations: Vec<InvestigationRecord>,
}

async fn list_incidents(
    caller: Caller,
    State(state): State<ServeState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<IncidentRecord>>, AppError> {
    Ok(Json(
        ops::list_incidents(&state, &caller, q.state.as_deref(), limit(&q)).await?,
    ))
}

async fn create_incident(
    caller: Caller,
    State(state): State<ServeState>,
    JsonBody(body): JsonBody<ops::NewIncident>,
) -> Result<(StatusCode, Json<ops::Created>), AppError> {
    let created = ops::create_incident(&state, &caller, body).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn get_incident(
    caller: Caller,
    State(state): State<ServeState>,
    Path(id): Path<String>,
) -> Result<Json<IncidentView>, AppError> {
    caller.require(Role::Viewer)?;
    let record = state.store.incident(&id).await?;
    let investigations = state.store.investigations(Some(&id), 50).await?;
    Ok(Json(IncidentView {
        record,
        investigations,
    }))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    #[serde(default)]
    priority: Option<i64>,
}

async fn start_investigation(
    caller: Caller,
    State(state): State<ServeState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<InvestigationRecord>), AppError> {
    let body: StartBody = match body.iter().all(u8::is_ascii_whitespace) {
        true => StartBody::default(),
        false => serde_json::from_slice(&body)
            .map_err(|e| AppError::unprocessable(format!("not a start request: {e}")))?,
    };
    let inv = ops::start_investigation(&state, &caller, &id, body.priority).await?;
    Ok((StatusCode::ACCEPTED, Json(inv)))
}

async fn list_investigations(
    caller: Caller,
    State(state): State<ServeState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<InvestigationRecord>>, AppError> {
    caller.require(Role::Viewer)?;
    Ok(Json(
        state
            .store
            .investigations(q.incident.as_deref(), limit(&q))
            .await?,
    ))
}

async fn get_investigation(
    caller: Caller,
    State(state): State<ServeState>,
    Path(id): Path<String>,
) -> Result<Json<InvestigationRecord>, AppError> {
    caller.require(Role::Viewer)?;
    Ok(Json(state.store.investigation(&id).await?))
}

async fn get_result(
    caller: Caller,
    State(state): State<ServeState>,
    Path(id): Path<String>,
) -> Result<Json<compass_core::Investigation>, AppError> {
    Ok(Json(ops::result(&state, &caller, &id).await?))
}

async fn cancel_investigation(
    caller: Caller,
    State(state): State<ServeState>,
    Path(id): Path<String>,
) -> Result<Json<InvestigationRecord>, AppError> {
    caller.require(Role::Responder)?;
    let rec = state.store.cancel(&id, now_ms()).await?;
    ops::audit(
        &state,
        &caller,
        "investigation.cancel",
        &id,
        rec.state.as_str().to_string(),
    )
    .await?;
    Ok(Json(rec))
}

async fn record_decision(
    caller: Caller,
    State(state): State<ServeState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ops::DecisionBody>,
) -> Result<(StatusCode, Json<DecisionRecord>), AppError> {
    let decision = ops::record_decision(&state, &caller, &id, body).await?;
    Ok((StatusCode::CREATED, Json(decision)))
}

async fn list_decisions(
    caller: Caller,
    State(state): State<ServeState>,
    Path(id): Path<String>,
) -> Result<Json<Vec<DecisionRecord>>, AppError> {
    caller.require(Role::Viewer)?;
    state.store.investigation(&id).await?;
    Ok(Json(state.store.decisions(&id).await?))
}

async fn audit_log(
    caller: Caller,
    State(state): State<ServeState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<AuditRecord>>, AppError> {
    caller.require(Role::Admin)?;
    Ok(Json(state.store.audit_log(limit(&q)).await?))
}

/// `GET /api/v1/investigations/{id}/events`: the progress events as Server-Sent
/// Events (`event: <kind>`, `id: <seq>`, `data: <json>`), from `Last-Event-ID` on,
/// ending after `finished`. Read from the store, so any replica can serve it.
async fn events(
    caller: Caller,
    State(state): State<ServeState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    caller.require(Role::Viewer)?;
    state.store.investigation(&id).await?;
    let after: u64 = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let stream = futures::stream::unfold(
        (state, id, after, false, Vec::<ProgressRecord>::new()),
        |(state, id, mut after, done, mut pending)| async move {
            loop {
                if let Some(p) = (!pending.is_empty()).then(|| pending.remove(0)) {
                    after = p.seq;
                    let finished = p.kind == "finished";
                    let event = Event::default().event(p.kind.clone()).id(p.seq.to_string()).data(
                    serde_json::json!({ "seq": p.seq, "at": p.at, "kind": p.kind, "data": p.data }).to_string(),
                );
                    return Some((
                        Ok::<_, std::convert::Infallible>(event),
                        (state, id, after, finished, pending),
                    ));
                }
                if done {
                    return None;
                }
                match state.store.progress(&id, after).await {
                    Ok(batch) if !batch.is_empty() => pending = batch,
                    Ok(_) => tokio::time::sleep(Duration::from_millis(250)).await,
                    Err(e) => {
                        tracing::warn!(error = %e, "progress stream stopped");
                        return None;
                    }
                }
            }
        },
    );
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}
