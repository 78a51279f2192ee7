//! The web UI, rendered on the server and served by the binary (no separate build):
//!
//! - `/`: the incident list (state, severity, alerts, the latest investigation's
//!   status and top hypothesis with a confidence bar), refreshing itself;
//! - `/ui/investigations/{id}`: a finished investigation is the HTML report
//!   (`report::html_interactive`: hypotheses with confidence bars, status and
//!   disproof, evidence charts around the onset, log samples with the template
//!   highlighted, trace waterfalls, the agent timeline) with confirm/reject buttons;
//!   a queued or running one shows live progress from the SSE stream, then reloads;
//! - `/ui/actions`: the remediation commands with their risk, the exact change (the
//!   diff coloured), status and result, the audit log, and approve / run / roll back
//!   buttons for approvers;
//! - `/ui/login`: paste an API token; it is kept in an HttpOnly, SameSite=Strict
//!   cookie (see `auth.rs` for the CSRF rule).

use super::ServeState;
use super::api::AppError;
use super::auth::{COOKIE, Caller, authenticate, hash_token};
use super::ops::result_with_decisions;
use crate::report::{Interactive, escape_html, html_interactive};
use axum::Router;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use compass_engine::store::{InvestigationRecord, JobState, Role};
use std::collections::BTreeMap;
use std::fmt::Write;

const CSS: &str = include_str!("ui.css");

pub(super) fn routes() -> Router<ServeState> {
    Router::new()
        .route("/", get(incidents_page))
        .route("/ui/login", get(login_page).post(login))
        .route("/ui/logout", axum::routing::post(logout))
        .route("/ui/investigations/{id}", get(investigation_page))
        .route("/ui/actions", get(actions_page))
}

/// The caller, or a redirect to the login page.
async fn ui_caller(state: &ServeState, headers: &HeaderMap) -> Result<Caller, Response> {
    match authenticate(state, &Method::GET, headers).await {
        Ok(c) => Ok(c),
        Err(e) if e.status == StatusCode::UNAUTHORIZED => {
            Err(Redirect::to("/ui/login").into_response())
        }
        Err(e) => Err(e.into_response()),
    }
}

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>COMPASS · {}</title><style>{CSS}</style></head><body>\
         <header class=\"top\"><a class=\"brand\" href=\"/\">◈ COMPASS</a><nav><a href=\"/\">Incidents</a>\
         <a href=\"/ui/actions\">Actions</a><a href=\"/api/openapi.json\">API</a><a href=\"/metrics\">Metrics</a></nav></header>\
         <main>{body}</main></body></html>",
        escape_html(title)
    ))
}

fn ago(now: i64, at: i64) -> String {
    let s = (now - at).max(0) / 1000;
    match s {
        0..=59 => format!("{s}s ago"),
        60..=3599 => format!("{}m ago", s / 60),
        3600..=86_399 => format!("{}h {}m ago", s / 3600, s % 3600 / 60),
        _ => format!("{}d ago", s / 86_400),
    }
}

fn state_tone(state: JobState) -> &'static str {
    match state {
        JobState::Completed => "ok",
        JobState::Queued | JobState::Running => "info",
        JobState::Degraded | JobState::BudgetExhausted | JobState::DeadlineExceeded => "warn",
        JobState::Failed | JobState::Cancelled => "bad",
    }
}

async fn incidents_page(State(state): State<ServeState>, headers: HeaderMap) -> Response {
    let caller = match ui_caller(&state, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let result: Result<String, AppError> = async {
        let now = super::worker::now_ms();
        let incidents = state.store.incidents(None, 100).await?;
        let counts = state.store.job_counts().await?;
        let mut body = String::new();
        let count = |j: JobState| counts.iter().find(|(s, _)| *s == j).map_or(0, |c| c.1);
        let open = incidents.iter().filter(|i| i.state == compass_engine::store::IncidentState::Open).count();
        let _ = write!(
            body,
            "<div class=\"heading\"><h1>Incidents</h1><div class=\"stats\">\
             <span><b>{open}</b> open</span><span><b>{}</b> queued</span><span><b>{}</b> running</span>\
             <span><b>{}</b> done</span><span class=\"muted\">signed in as {} ({})</span></div></div>",
            count(JobState::Queued),
            count(JobState::Running),
            count(JobState::Completed) + count(JobState::Degraded),
            escape_html(&caller.name),
            caller.role.as_str()
        );
        if incidents.is_empty() {
            body.push_str(
                "<div class=\"card empty\">No incidents yet. Point Alertmanager at \
                 <code>/api/v1/webhooks/alertmanager</code> or POST one to <code>/api/v1/incidents</code>.</div>",
            );
        } else {
            body.push_str(
                "<table class=\"list\"><thead><tr><th>Severity</th><th>Incident</th><th>Services</th><th>Alerts</th>\
                 <th>Opened</th><th>Investigation</th><th>Leading hypothesis</th></tr></thead><tbody>",
            );
            for rec in &incidents {
                let latest: Option<InvestigationRecord> =
                    state.store.investigations(Some(&rec.id), 1).await?.into_iter().next();
                let sev = super::severity_str(rec.incident.severity);
                let (inv_cell, hyp_cell, link) = match &latest {
                    None => ("<span class=\"muted\">none</span>".to_string(), String::new(), None),
                    Some(inv) => {
                        let pill = format!(
                            "<span class=\"pill {}\">{}</span>",
                            state_tone(inv.state),
                            inv.state.as_str().replace('_', " ")
                        );
                        let hyp = match (&inv.top_hypothesis, inv.top_confidence) {
                            (Some(h), Some(c)) => format!(
                                "<div class=\"hyp\"><code>{}</code><div class=\"bar\"><span style=\"width:{:.0}%\"></span></div><b>{:.0}%</b></div>",
                                escape_html(h),
                                c * 100.0,
                                c * 100.0
                            ),
                            _ => String::new(),
                        };
                        (pill, hyp, Some(format!("/ui/investigations/{}", inv.id)))
                    }
                };
                let title = match &link {
                    Some(l) => format!("<a href=\"{}\">{}</a>", escape_html(l), escape_html(&rec.incident.title)),
                    None => escape_html(&rec.incident.title),
                };
                let _ = write!(
                    body,
                    "<tr class=\"{}\"><td><span class=\"sev sev-{sev}\">{sev}</span></td><td>{title}<div class=\"muted small\">{} · {}</div></td>\
                     <td>{}</td><td class=\"num\">{}<span class=\"muted\"> / {} firing</span></td><td>{}</td><td>{inv_cell}</td><td>{hyp_cell}</td></tr>",
                    rec.state.as_str(),
                    escape_html(&rec.id),
                    rec.state.as_str(),
                    rec.incident.affected_services.iter().map(|s| format!("<span class=\"chip\">{}</span>", escape_html(s))).collect::<String>(),
                    rec.alert_count,
                    rec.firing_count,
                    ago(now, rec.opened_at),
                );
            }
            body.push_str("</tbody></table>");
        }
        body.push_str("<script>setTimeout(()=>location.reload(),5000)</script>");
        Ok(body)
    }
    .await;
    match result {
        Ok(body) => page("Incidents", &body).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn investigation_page(
    State(state): State<ServeState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = ui_caller(&state, &headers).await {
        return r;
    }
    let rec = match state.store.investigation(&id).await {
        Ok(r) => r,
        Err(e) => return AppError::from(e).into_response(),
    };
    match result_with_decisions(&state, &id).await {
        Ok(Some(inv)) => {
            let mut verdicts = BTreeMap::new();
            for d in &inv.decisions {
                verdicts.insert(
                    d.hypothesis_id.clone(),
                    (d.confirmed, d.by.clone(), d.note.clone()),
                );
            }
            let ui = Interactive {
                decisions_url: format!("/api/v1/investigations/{id}/decisions"),
                verdicts,
                back_url: "/".into(),
            };
            Html(html_interactive(&inv, &ui)).into_response()
        }
        Ok(None) => progress_page(&rec).into_response(),
        Err(e) => e.into_response(),
    }
}

/// A queued, running or unfinished (failed, cancelled) investigation.
fn progress_page(rec: &InvestigationRecord) -> Html<String> {
    let mut body = String::new();
    let _ = write!(
        body,
        "<div class=\"heading\"><h1>Investigation <code>{}</code></h1><span id=\"state\" class=\"pill {}\">{}</span></div>\
         <p class=\"muted\">incident <code>{}</code> · attempt {} {}</p>\
         <div class=\"card\"><h2>Agents</h2><table class=\"list\" id=\"agents\"><thead><tr><th>Agent</th><th>Status</th>\
         <th>Duration</th><th>Observations</th><th>Hypotheses</th><th>Cost</th></tr></thead><tbody></tbody></table>\
         <p id=\"phase\" class=\"muted\">{}</p></div>",
        escape_html(&rec.id),
        state_tone(rec.state),
        rec.state.as_str(),
        escape_html(&rec.incident_id),
        rec.attempts,
        rec.error
            .as_deref()
            .map(|e| format!("· {}", escape_html(e)))
            .unwrap_or_default(),
        if rec.state.is_final() {
            "no result was stored"
        } else {
            "waiting for a worker…"
        },
    );
    if !rec.state.is_final() {
        let _ = write!(
            body,
            "<script>{}</script>",
            include_str!("progress.js").replace("__ID__", &rec.id)
        );
    }
    page("Investigation", &body)
}

async fn login_page() -> Html<String> {
    page(
        "Sign in",
        "<div class=\"card login\"><h1>Sign in</h1><p class=\"muted\">Paste an API token \
         (create one with <code>compass token create --name NAME --role responder</code>).</p>\
         <form method=\"post\" action=\"/ui/login\"><input type=\"password\" name=\"token\" placeholder=\"cps_…\" autofocus>\
         <button type=\"submit\">Sign in</button></form></div>",
    )
}

#[derive(Debug, serde::Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(State(state): State<ServeState>, Form(form): Form<LoginForm>) -> Response {
    match state.store.token_by_hash(&hash_token(&form.token)).await {
        Ok(Some(t)) if t.role >= Role::Viewer => {
            let cookie = format!("{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age=43200", form.token.trim());
            ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
        }
        Ok(_) => (StatusCode::UNAUTHORIZED, page("Sign in", "<div class=\"card login\"><h1>Sign in</h1><p class=\"bad\">That token is unknown or revoked.</p><a href=\"/ui/login\">Try again</a></div>")).into_response(),
        Err(e) => AppError::from(e).into_response(),
    }
}

async fn logout() -> Response {
    let cookie = format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    ([(header::SET_COOKIE, cookie)], Redirect::to("/ui/login")).into_response()
}

fn diff_html(preview: &str) -> String {
    preview
        .lines()
        .map(|l| {
            let class = if l.starts_with("+++") || l.starts_with("---") {
                "file"
            } else if l.starts_with('+') {
                "add"
            } else if l.starts_with('-') {
                "del"
            } else if l.starts_with("@@") {
                "hunk"
            } else {
                ""
            };
            format!("<span class=\"{class}\">{}</span>\n", escape_html(l))
        })
        .collect()
}

fn action_card(
    r: &compass_act::service::Record,
    log: &[compass_act::audit::Entry],
    approver: bool,
) -> String {
    use compass_act::action::RiskLevel;
    use compass_act::runner::RunResult;
    use compass_act::service::Status;
    let c = &r.plan.command;
    let risk_tone = match r.plan.risk.level {
        RiskLevel::Low => "ok",
        RiskLevel::Medium => "warn",
        RiskLevel::High => "bad",
    };
    let status_tone = match r.status {
        Status::Succeeded => "ok",
        Status::Planned | Status::Approved => "info",
        Status::Running | Status::RolledBack => "warn",
        Status::Failed => "bad",
    };
    let mut buttons = String::new();
    if approver {
        if r.status == Status::Planned {
            buttons.push_str("<button class=\"approve\" data-op=\"approve\">Approve</button>");
        }
        if r.ready() {
            buttons.push_str("<button data-op=\"run\">Run</button>");
        }
        if matches!(
            r.status,
            Status::Succeeded | Status::Failed | Status::Running
        ) {
            buttons.push_str("<button class=\"rollback\" data-op=\"rollback\">Roll back</button>");
        }
    }
    let approval = match (&r.approved_by, r.plan.needs_approval) {
        (Some(by), _) => format!("approved by <b>{}</b>", escape_html(by)),
        (None, true) => "<span class=\"warn\">needs an approver</span>".into(),
        (None, false) => "no approval needed (auto-remediation policy)".into(),
    };
    let result = match &r.result {
        None => String::new(),
        Some(RunResult::Succeeded) => "<div class=\"ok\">succeeded</div>".into(),
        Some(RunResult::RolledBack { reason }) => {
            format!(
                "<div class=\"warn\">rolled back: {}</div>",
                escape_html(reason)
            )
        }
        Some(RunResult::Failed { reason }) => {
            format!("<div class=\"bad\">failed: {}</div>", escape_html(reason))
        }
    };
    let mut rows = String::new();
    for e in log {
        let _ = write!(
            rows,
            "<tr><td class=\"num\">{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td><code>{}</code></td></tr>",
            crate::report::utc_time(e.ts),
            escape_html(&e.step),
            escape_html(&e.actor),
            if e.ok { "ok" } else { "bad" },
            if e.ok { "✓" } else { "✗" },
            e.exit_code.map(|c| c.to_string()).unwrap_or_default(),
            e.duration_ms.map(|d| format!("{d} ms")).unwrap_or_default(),
            escape_html(&e.detail),
        );
    }
    format!(
        "<div class=\"card action\" data-id=\"{id}\" data-status=\"{status}\"><div class=\"row\">\
         <span class=\"id\">{id}</span><span class=\"chip\">{kind}</span><span class=\"chip\">{resource}</span>\
         <span class=\"pill {risk_tone}\">{risk} risk</span><span class=\"pill {status_tone}\">{status_text}</span>\
         <span class=\"buttons\"><span class=\"outcome muted small\"></span>{buttons}</span></div>\
         <div class=\"muted small\">{rule} · {approval}{incident}</div>\
         {reason}<pre class=\"diff\">{diff}</pre>{result}\
         <details><summary>audit log ({n} steps)</summary><table class=\"list\"><thead><tr><th>Time</th><th>Step</th>\
         <th>Actor</th><th>OK</th><th>Exit</th><th>Duration</th><th>Detail</th></tr></thead><tbody>{rows}</tbody></table></details></div>",
        id = escape_html(&c.id),
        status = r.status,
        kind = c.action.kind(),
        resource = escape_html(&c.action.resource()),
        risk = r.plan.risk.level,
        status_text = r.status.to_string().replace('_', " "),
        rule = escape_html(&r.plan.risk.rule),
        incident = c
            .incident
            .as_deref()
            .map(|i| format!(" · incident <code>{}</code>", escape_html(i)))
            .unwrap_or_default(),
        reason = if c.reason.is_empty() {
            String::new()
        } else {
            format!("<p>{}</p>", escape_html(&c.reason))
        },
        diff = diff_html(&r.plan.preview),
        n = log.len(),
    )
}

async fn actions_page(State(state): State<ServeState>, headers: HeaderMap) -> Response {
    let caller = match ui_caller(&state, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let result: Result<String, AppError> = (|| {
        let mut records = state.desk.list()?;
        records.reverse();
        let approver = caller.role >= Role::Approver;
        let mut body = format!(
            "<div class=\"heading\"><h1>Remediation</h1><div class=\"stats\"><span><b>{}</b> waiting for approval</span>\
             <span><b>{}</b> running</span><span class=\"muted\">signed in as {} ({}){}</span></div></div>",
            records
                .iter()
                .filter(
                    |r| r.status == compass_act::service::Status::Planned && r.plan.needs_approval
                )
                .count(),
            records
                .iter()
                .filter(|r| r.status == compass_act::service::Status::Running)
                .count(),
            escape_html(&caller.name),
            caller.role.as_str(),
            if approver {
                ""
            } else {
                " · approving needs the approver role"
            },
        );
        if records.is_empty() {
            body.push_str(
                "<div class=\"card empty\">No remediation commands. Plan one with <code>compass act plan FILE</code>, \
                 <code>compass act propose --plan</code> or <code>POST /api/v1/actions</code>.</div>",
            );
        }
        for r in &records {
            let log = state.desk.log(Some(r.id()))?;
            body.push_str(&action_card(r, &log, approver));
        }
        let _ = write!(body, "<script>{}</script>", include_str!("actions.js"));
        Ok(body)
    })();
    match result {
        Ok(body) => page("Remediation", &body).into_response(),
        Err(e) => e.into_response(),
    }
}
