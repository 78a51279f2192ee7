//! COMPASS over the Model Context Protocol, for other agents and assistants: the same
//! operations as the HTTP API (`ops.rs`, so the same roles, validation, audit records
//! and per-incident limits), as four tools.
//!
//! Two transports, one [`CompassMcp`]:
//! - `compass mcp`: stdio. The process is a replica of its own (store, workers), and
//!   the caller is the API token in `$COMPASS_TOKEN`, checked once at start
//!   (`--no-auth`: the anonymous admin).
//! - `/mcp` under `compass serve`: streamable HTTP, stateless (any replica answers any
//!   request). Each request authenticates like the rest of the API (`Authorization:
//!   Bearer`) before it reaches the MCP layer; the caller travels in the request's
//!   extensions to the tool.

use super::api::AppError;
use super::auth::{self, Caller};
use super::{ServeState, metrics as m, ops};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use compass_engine::store::JobState;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, Extensions};
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;
use std::time::{Duration, Instant};

/// The longest a `get_investigation` call waits for a running investigation.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// The MCP server: the replica's state and, on stdio, the caller fixed at start.
#[derive(Debug, Clone)]
pub struct CompassMcp {
    state: ServeState,
    /// `None` over HTTP: each request brings its own caller.
    caller: Option<Caller>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListArgs {
    /// `open`, `resolved` or `all` (default).
    #[serde(default)]
    pub state: Option<String>,
    /// At most this many, newest first (default 20, at most 500).
    #[serde(default)]
    pub limit: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StartArgs {
    /// Re-investigate this existing incident ...
    #[serde(default)]
    pub incident_id: Option<String>,
    /// ... or open this new incident and investigate it (give exactly one of the two).
    #[serde(default)]
    pub incident: Option<ops::NewIncident>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetArgs {
    /// The id `start_investigation` returned.
    pub investigation_id: String,
    /// Wait up to this many seconds (at most 60) for a queued or running
    /// investigation to finish before answering (default 0: answer now).
    #[serde(default)]
    pub wait_seconds: Option<u64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DecideArgs {
    /// The investigation the hypothesis belongs to.
    pub investigation_id: String,
    /// The hypothesis id from its report (e.g. `h1`).
    pub hypothesis_id: String,
    /// `confirmed` or `rejected`.
    pub verdict: String,
    /// Why (kept as feedback; at most 4000 bytes).
    #[serde(default)]
    pub note: String,
}

fn tool_error(message: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.into())])
}

fn json_result<T: serde::Serialize>(value: &T) -> CallToolResult {
    match serde_json::to_value(value) {
        Ok(v) => CallToolResult::structured(v),
        Err(e) => tool_error(format!("cannot encode the answer: {e}")),
    }
}

/// Count the call and turn an operation's error into a tool error the caller reads
/// (MCP clients show tool errors to the model; protocol errors they hide).
fn finish(tool: &'static str, outcome: Result<CallToolResult, AppError>) -> CallToolResult {
    let (label, result) = match outcome {
        Ok(r) if r.is_error == Some(true) => ("error", r),
        Ok(r) => ("ok", r),
        Err(e) => ("error", tool_error(e.message)),
    };
    metrics::counter!(m::MCP_TOOL_CALLS, "tool" => tool, "outcome" => label).increment(1);
    result
}

#[tool_router]
impl CompassMcp {
    /// Serve `state` as `caller` (stdio), or as each HTTP request's caller (`None`).
    pub fn new(state: ServeState, caller: Option<Caller>) -> Self {
        Self { state, caller }
    }

    fn caller(&self, extensions: &Extensions) -> Result<Caller, AppError> {
        if let Some(c) = &self.caller {
            return Ok(c.clone());
        }
        extensions
            .get::<axum::http::request::Parts>()
            .and_then(|p| p.extensions.get::<Caller>())
            .cloned()
            .ok_or_else(|| AppError::unauthorized("no authenticated caller on this request"))
    }

    #[tool(
        description = "List incidents COMPASS knows (newest first): id, title, severity, state, services, alert count and the latest investigation.",
        annotations(read_only_hint = true)
    )]
    async fn list_incidents(
        &self,
        extensions: Extensions,
        Parameters(args): Parameters<ListArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let run = async {
            let caller = self.caller(&extensions)?;
            let list = ops::list_incidents(
                &self.state,
                &caller,
                args.state.as_deref(),
                args.limit.unwrap_or(20),
            )
            .await?;
            Ok(json_result(&serde_json::json!({ "incidents": list })))
        };
        Ok(finish("list_incidents", run.await))
    }

    #[tool(
        description = "Start a root-cause investigation: of an existing incident (incident_id), or of a new one (incident: title, severity, services, start). Returns the investigation id at once; the agents run in the background; fetch the ranked hypotheses with get_investigation. Needs the responder role; the per-incident agent, cost and time limits apply."
    )]
    async fn start_investigation(
        &self,
        extensions: Extensions,
        Parameters(args): Parameters<StartArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let run = async {
            let caller = self.caller(&extensions)?;
            match (args.incident_id, args.incident) {
                (Some(id), None) => {
                    let inv = ops::start_investigation(&self.state, &caller, &id, None).await?;
                    Ok(json_result(&serde_json::json!({
                        "incident_id": inv.incident_id,
                        "investigation_id": inv.id,
                        "state": inv.state.as_str(),
                    })))
                }
                (None, Some(incident)) => {
                    let created = ops::create_incident(&self.state, &caller, incident).await?;
                    Ok(json_result(&serde_json::json!({
                        "incident_id": created.incident.id,
                        "investigation_id": created.investigation_id,
                        "state": "queued",
                    })))
                }
                _ => Err(AppError::unprocessable(
                    "give exactly one of `incident_id` (re-investigate) or `incident` (open a new one)",
                )),
            }
        };
        Ok(finish("start_investigation", run.await))
    }

    #[tool(
        description = "The state of an investigation and, once finished, its report: ranked root-cause hypotheses with confidence, status, the evidence behind each (with the exact query) and disproof attempts, as Markdown plus the JSON report. wait_seconds (at most 60) waits for a running one.",
        annotations(read_only_hint = true)
    )]
    async fn get_investigation(
        &self,
        extensions: Extensions,
        Parameters(args): Parameters<GetArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let run = async {
            let caller = self.caller(&extensions)?;
            caller.require(compass_engine::store::Role::Viewer)?;
            let id = args.investigation_id.as_str();
            let wait = Duration::from_secs(args.wait_seconds.unwrap_or(0)).min(MAX_WAIT);
            let started = Instant::now();
            let mut rec = self.state.store.investigation(id).await?;
            while matches!(rec.state, JobState::Queued | JobState::Running)
                && started.elapsed() < wait
            {
                tokio::time::sleep(Duration::from_millis(250)).await;
                rec = self.state.store.investigation(id).await?;
            }
            let Some(inv) = ops::result_with_decisions(&self.state, id).await? else {
                return Ok(json_result(&serde_json::json!({
                    "investigation_id": id,
                    "incident_id": rec.incident_id,
                    "state": rec.state.as_str(),
                    "error": rec.error,
                    "hint": match rec.state {
                        JobState::Queued | JobState::Running => "not finished: call again, with wait_seconds to wait",
                        _ => "this investigation ended without a result; start another one",
                    },
                })));
            };
            let mut result =
                CallToolResult::success(vec![ContentBlock::text(crate::report::markdown(&inv))]);
            let mut report = crate::report::json(&inv);
            report["state"] = serde_json::Value::String(rec.state.as_str().to_string());
            result.structured_content = Some(report);
            Ok(result)
        };
        Ok(finish("get_investigation", run.await))
    }

    #[tool(
        description = "Record a human decision on one hypothesis of a finished investigation: verdict `confirmed` or `rejected`, with a note. COMPASS keeps it as feedback and in the audit log. Needs the responder role."
    )]
    async fn record_decision(
        &self,
        extensions: Extensions,
        Parameters(args): Parameters<DecideArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let run = async {
            let caller = self.caller(&extensions)?;
            let body = ops::DecisionBody {
                hypothesis_id: args.hypothesis_id,
                verdict: args.verdict,
                note: args.note,
            };
            let d =
                ops::record_decision(&self.state, &caller, &args.investigation_id, body).await?;
            Ok(json_result(&d))
        };
        Ok(finish("record_decision", run.await))
    }
}

#[tool_handler(
    name = "compass",
    instructions = "COMPASS investigates incidents over logs, metrics and traces and ranks testable root-cause hypotheses. Typical use: list_incidents, start_investigation, get_investigation with wait_seconds until it is finished, then record_decision once a human has checked a hypothesis."
)]
impl rmcp::ServerHandler for CompassMcp {}

/// The `/mcp` service of `compass serve`: stateless streamable HTTP behind the API's
/// authentication. With `--no-auth` only loopback `Host`s are accepted (no DNS
/// rebinding onto an open server); with tokens any host is.
pub(super) fn routes(state: &ServeState) -> axum::Router<ServeState> {
    let mut config = StreamableHttpServerConfig::default();
    config.legacy_session_mode = false;
    config.json_response = true;
    config.max_request_body_bytes = state.serve.max_body_bytes;
    if state.auth == super::AuthMode::Tokens {
        config = config.disable_allowed_hosts();
    }
    let server = state.clone();
    let service = StreamableHttpService::new(
        move || Ok(CompassMcp::new(server.clone(), None)),
        NeverSessionManager::default().into(),
        config,
    );
    axum::Router::new()
        .route_service("/mcp", service)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authenticate,
        ))
}

async fn authenticate(State(state): State<ServeState>, mut req: Request, next: Next) -> Response {
    match auth::authenticate(&state, req.method(), req.headers()).await {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}

/// `compass mcp`: serve MCP on stdin/stdout until the client closes stdin. Logs and
/// progress go to stderr (stdout is the protocol).
pub async fn run_stdio(opts: super::ServeOptions, token: Option<String>) -> anyhow::Result<()> {
    use rmcp::ServiceExt;
    let (state, demo_incident) = super::prepare(&opts).await?;
    super::open_demo_incident(&state, demo_incident).await?;
    let caller = match state.auth {
        super::AuthMode::Open => auth::anonymous(),
        super::AuthMode::Tokens => {
            let Some(token) = token.filter(|t| !t.trim().is_empty()) else {
                return Err(crate::cli::UsageError(
                    "compass mcp needs an API token in $COMPASS_TOKEN (create one with `compass token create NAME --role responder`), or --no-auth".into(),
                )
                .into());
            };
            auth::caller_for_token(&state, &token)
                .await
                .map_err(|e| crate::cli::UsageError(format!("$COMPASS_TOKEN: {}", e.message)))?
        }
    };
    eprintln!(
        "compass mcp: serving on stdio as `{}` ({}; store: {}, {} workers)",
        caller.name,
        caller.role.as_str(),
        state.store.backend(),
        state.serve.workers
    );
    let workers = super::start_workers(&state);
    let service = CompassMcp::new(state.clone(), Some(caller))
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| anyhow::anyhow!("MCP handshake on stdio failed: {e}"))?;
    let ended = service.waiting().await;
    workers.stop().await;
    ended.map_err(|e| anyhow::anyhow!("the MCP session ended with an error: {e}"))?;
    Ok(())
}
