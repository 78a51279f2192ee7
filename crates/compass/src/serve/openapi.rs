//! The OpenAPI 3.1 document served at `/api/openapi.json`, built from one table of
//! operations (`OPERATIONS`): path, method, summary, the role it needs and its success
//! status. A test checks the table against the router, so the document cannot
//! silently fall behind the routes.

use serde_json::{Map, Value, json};

/// (method, path, summary, role needed or "secret" for webhooks, success status)
pub(super) const OPERATIONS: &[(&str, &str, &str, &str, u16)] = &[
    (
        "get",
        "/healthz",
        "Liveness: the process serves requests",
        "none",
        200,
    ),
    (
        "get",
        "/readyz",
        "Readiness: the database answers (503 when not)",
        "none",
        200,
    ),
    (
        "get",
        "/metrics",
        "Prometheus metrics of this replica",
        "none",
        200,
    ),
    (
        "post",
        "/api/v1/webhooks/alertmanager",
        "Alertmanager webhook (payload version 4): dedup, grouping, storms, resolves",
        "secret",
        200,
    ),
    (
        "post",
        "/api/v1/webhooks/generic",
        "Generic JSON webhook: {\"alerts\": [...]} or one alert",
        "secret",
        200,
    ),
    (
        "get",
        "/api/v1/incidents",
        "List incidents, newest first (?state=open|resolved|all&limit=N)",
        "viewer",
        200,
    ),
    (
        "post",
        "/api/v1/incidents",
        "Create an incident and queue its investigation",
        "responder",
        201,
    ),
    (
        "get",
        "/api/v1/incidents/{id}",
        "An incident with its investigations",
        "viewer",
        200,
    ),
    (
        "post",
        "/api/v1/incidents/{id}/investigations",
        "Queue another investigation of an incident",
        "responder",
        202,
    ),
    (
        "get",
        "/api/v1/investigations",
        "List investigations (?incident=ID&limit=N)",
        "viewer",
        200,
    ),
    (
        "get",
        "/api/v1/investigations/{id}",
        "An investigation's status",
        "viewer",
        200,
    ),
    (
        "get",
        "/api/v1/investigations/{id}/result",
        "The finished investigation: hypotheses, evidence, agents, decisions (409 until finished)",
        "viewer",
        200,
    ),
    (
        "post",
        "/api/v1/investigations/{id}/cancel",
        "Cancel: at once when queued, at the next lease renewal when running",
        "responder",
        200,
    ),
    (
        "get",
        "/api/v1/investigations/{id}/events",
        "Progress as Server-Sent Events, ending after `finished` (Last-Event-ID resumes)",
        "viewer",
        200,
    ),
    (
        "get",
        "/api/v1/investigations/{id}/decisions",
        "Human decisions on the hypotheses, oldest first",
        "viewer",
        200,
    ),
    (
        "post",
        "/api/v1/investigations/{id}/decisions",
        "Confirm or reject a hypothesis with a note",
        "responder",
        201,
    ),
    (
        "get",
        "/api/v1/audit",
        "The audit log of mutating calls, newest first",
        "admin",
        200,
    ),
    (
        "get",
        "/api/v1/actions",
        "Remediation commands and where each is in its lifecycle",
        "viewer",
        200,
    ),
    (
        "post",
        "/api/v1/actions",
        "Validate and plan a remediation command: risk, approval needed, the exact change (nothing changes)",
        "responder",
        201,
    ),
    (
        "get",
        "/api/v1/actions/{id}",
        "One remediation command: plan, approval, status, result",
        "viewer",
        200,
    ),
    (
        "post",
        "/api/v1/actions/{id}/approve",
        "Approve a planned command (the caller is the approver)",
        "approver",
        200,
    ),
    (
        "post",
        "/api/v1/actions/{id}/run",
        "Run an approved command in the background: backup, change, validation, rollback on failure (?dry_run=true shows the steps and runs nothing, 200)",
        "approver",
        202,
    ),
    (
        "post",
        "/api/v1/actions/{id}/rollback",
        "Undo a command that ran, failed or was interrupted; answers when done",
        "approver",
        200,
    ),
    (
        "get",
        "/api/v1/actions/{id}/log",
        "The command's audit log: every step, actor, output, exit code, duration",
        "viewer",
        200,
    ),
    (
        "post",
        "/mcp",
        "Model Context Protocol, streamable HTTP (stateless JSON-RPC): the tools list_incidents, start_investigation, get_investigation and record_decision, each with the role its API twin needs",
        "viewer",
        200,
    ),
];

fn schemas() -> Value {
    json!({
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
        // The request types' own schemas (the MCP tools publish the same ones).
        "NewIncident": schemars::schema_for!(super::ops::NewIncident),
        "Decision": schemars::schema_for!(super::ops::DecisionBody),
        "PlanAction": schemars::schema_for!(super::act::PlanBody),
        "GenericAlert": {"type": "object", "required": ["name"], "additionalProperties": false, "properties": {
            "name": {"type": "string"}, "status": {"enum": ["firing", "resolved"]}, "severity": {"type": "string"},
            "service": {"type": "string"}, "services": {"type": "array", "items": {"type": "string"}},
            "summary": {"type": "string"}, "starts_at": {"type": "string", "format": "date-time"},
            "fingerprint": {"type": "string"}, "group": {"type": "string"},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}}}},
        "Investigation": {"type": "object", "properties": {
            "id": {"type": "string"}, "incident_id": {"type": "string"},
            "state": {"enum": ["queued", "running", "completed", "degraded", "budget_exhausted", "deadline_exceeded", "failed", "cancelled"]},
            "attempts": {"type": "integer"}, "top_hypothesis": {"type": ["string", "null"]}, "top_confidence": {"type": ["number", "null"]}}}
    })
}

fn request_schema(method: &str, path: &str) -> Option<&'static str> {
    match (method, path) {
        ("post", "/api/v1/incidents") => Some("NewIncident"),
        ("post", "/api/v1/investigations/{id}/decisions") => Some("Decision"),
        ("post", "/api/v1/webhooks/generic") => Some("GenericAlert"),
        ("post", "/api/v1/actions") => Some("PlanAction"),
        _ => None,
    }
}

/// The document.
pub(super) fn document() -> Value {
    let mut paths = Map::new();
    for (method, path, summary, role, status) in OPERATIONS {
        let mut op = json!({
            "summary": summary,
            "responses": {
                status.to_string(): {"description": "success"},
                "4XX": {"description": "bad request, missing or wrong credentials, missing role, not found, conflict, oversized body",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            }
        });
        match *role {
            "none" => {}
            "secret" => {
                op["security"] = json!([{"webhookSecret": []}, {"webhookHmac": []}, {"token": []}]);
            }
            role => {
                op["security"] = json!([{"token": []}]);
                op["x-compass-role"] = json!(role);
            }
        }
        if path.contains("{id}") {
            op["parameters"] = json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}]);
        }
        if let Some(schema) = request_schema(method, path) {
            op["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}});
        }
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        entry[*method] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "COMPASS", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Incident investigation: alert intake, investigations, progress, human decisions, remediation with approval."},
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
                "token": {"type": "http", "scheme": "bearer", "description": "API token from `compass token create`; roles viewer < responder < approver < admin"},
                "webhookSecret": {"type": "apiKey", "in": "header", "name": "X-Compass-Secret"},
                "webhookHmac": {"type": "apiKey", "in": "header", "name": "X-Compass-Signature", "description": "sha256=<hex HMAC-SHA256 of the body with the webhook secret>"}
            }
        }
    })
}
