//! The service's router driven in-process (`oneshot`, no socket), over a simulated
//! bundle and a SQLite store in a temp dir: auth and roles, webhooks (secret, HMAC,
//! bad input, dedup, resolve), the full investigation flow with SSE progress and
//! decisions, cancel, the audit log, the UI pages, and the OpenAPI document against
//! the router.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use compass::serve::{ServeOptions, ServeState, app, hash_token, prepare_with};
use compass_adapters::config::Settings;
use compass_engine::store::Role;
use hmac::{Hmac, Mac};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use sha2::Sha256;
use tower::ServiceExt;

const SECRET: &str = "hook-s3cret";

use crate::serve_common::bundle;

struct Server {
    state: ServeState,
    router: Router,
    _dir: tempfile::TempDir,
    tokens: Vec<(Role, String)>,
}

impl Server {
    async fn new(extra: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings::parse(&format!("version = 1\n{extra}"), "test", None).unwrap();
        settings.serve.webhook_secret = Some(SECRET.to_string().into());
        let opts = ServeOptions {
            bundle: Some(bundle()),
            database_url: Some(format!("sqlite://{}", dir.path().join("c.db").display())),
            replica: Some("test".into()),
            ..Default::default()
        };
        let (state, _) = prepare_with(settings, &opts).await.unwrap();
        let mut tokens = Vec::new();
        for role in Role::ALL {
            let token = compass::serve::new_token();
            state
                .store
                .create_token(role.as_str(), role, &hash_token(&token), 1)
                .await
                .unwrap();
            tokens.push((role, token));
        }
        let router = app(state.clone(), None);
        Server {
            state,
            router,
            _dir: dir,
            tokens,
        }
    }

    fn token(&self, role: Role) -> &str {
        &self.tokens.iter().find(|(r, _)| *r == role).unwrap().1
    }

    async fn call(&self, req: Request<Body>) -> (StatusCode, Value) {
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, value)
    }

    async fn get(&self, path: &str, role: Option<Role>) -> (StatusCode, Value) {
        let mut req = Request::get(path);
        if let Some(r) = role {
            req = req.header("authorization", format!("Bearer {}", self.token(r)));
        }
        self.call(req.body(Body::empty()).unwrap()).await
    }

    async fn post(&self, path: &str, role: Option<Role>, body: Value) -> (StatusCode, Value) {
        let mut req = Request::post(path).header("content-type", "application/json");
        if let Some(r) = role {
            req = req.header("authorization", format!("Bearer {}", self.token(r)));
        }
        self.call(req.body(Body::from(body.to_string())).unwrap())
            .await
    }

    async fn hook(&self, path: &str, auth: (&str, String), body: &str) -> (StatusCode, Value) {
        let req = Request::post(path)
            .header("content-type", "application/json")
            .header(auth.0, auth.1);
        self.call(req.body(Body::from(body.to_string())).unwrap())
            .await
    }
}

fn am_payload(status: &str, fingerprints: &[&str]) -> String {
    let alerts: Vec<Value> = fingerprints
        .iter()
        .map(|f| json!({"status": status, "labels": {"alertname": "HighLatency", "service": "frontend", "severity": "critical"},
                        "annotations": {"summary": "p99 latency high"}, "startsAt": "2026-03-14T09:32:00Z", "fingerprint": f}))
        .collect();
    json!({"version": "4", "groupKey": "{}:{alertname=\"HighLatency\"}", "status": status, "receiver": "compass", "alerts": alerts}).to_string()
}

#[tokio::test]
async fn tokens_and_roles_guard_every_call() {
    let s = Server::new("").await;
    let (st, v) = s.get("/api/v1/incidents", None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("compass token create"),
        "{v}"
    );
    let bad = Request::get("/api/v1/incidents")
        .header("authorization", "Bearer cps_nope")
        .body(Body::empty())
        .unwrap();
    assert_eq!(s.call(bad).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        s.get("/api/v1/incidents", Some(Role::Viewer)).await.0,
        StatusCode::OK
    );
    let new = json!({"title": "checkout slow", "severity": "critical", "services": ["frontend"]});
    let (st, v) = s
        .post("/api/v1/incidents", Some(Role::Viewer), new.clone())
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("needs the responder role"),
        "{v}"
    );
    let (st, v) = s
        .post("/api/v1/incidents", Some(Role::Responder), new)
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(
        s.get("/api/v1/audit", Some(Role::Approver)).await.0,
        StatusCode::FORBIDDEN
    );
    let (st, log) = s.get("/api/v1/audit", Some(Role::Admin)).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(log[0]["actor"], "responder");
    assert_eq!(log[0]["action"], "incident.create");
    // A revoked token stops working at once.
    s.state.store.revoke_token("responder", 2).await.unwrap();
    assert_eq!(
        s.get("/api/v1/incidents", Some(Role::Responder)).await.0,
        StatusCode::UNAUTHORIZED
    );
    // Bad bodies name the problem.
    let (st, v) = s
        .post(
            "/api/v1/incidents",
            Some(Role::Admin),
            json!({"title": "x", "colour": 1}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("unknown field `colour`"),
        "{v}"
    );
    let (st, v) = s
        .post(
            "/api/v1/incidents",
            Some(Role::Admin),
            json!({"title": "x", "start": "noon"}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(v["error"].as_str().unwrap().contains("RFC 3339"), "{v}");
    assert_eq!(
        s.get("/api/v1/incidents/inc_missing", Some(Role::Viewer))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (st, v) = s.get("/api/v1/nothing-here", Some(Role::Viewer)).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert!(v["error"].as_str().unwrap().contains("openapi.json"));
}

#[tokio::test]
async fn webhooks_check_the_secret_dedup_and_resolve() {
    let s = Server::new("").await;
    let am = "/api/v1/webhooks/alertmanager";
    let firing = am_payload("firing", &["f1", "f2"]);
    let (st, _) = s
        .hook(am, ("authorization", "Bearer wrong".into()), &firing)
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, v) = s
        .call(Request::post(am).body(Body::from(firing.clone())).unwrap())
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(
        v["error"].as_str().unwrap().contains("shared secret"),
        "{v}"
    );
    let (st, v) = s
        .hook(am, ("authorization", format!("Bearer {SECRET}")), &firing)
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        (
            v["received"].as_u64(),
            v["opened"].as_u64(),
            v["joined"].as_u64()
        ),
        (Some(2), Some(1), Some(1))
    );
    // Alertmanager repeats the group: nothing new.
    let (_, v) = s
        .hook(am, ("x-compass-secret", SECRET.into()), &firing)
        .await;
    assert_eq!(v["deduplicated"].as_u64(), Some(2), "{v}");
    // HMAC over the body.
    let resolved = am_payload("resolved", &["f1", "f2"]);
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(b"tampered");
    let (st, _) = s
        .hook(
            am,
            (
                "x-compass-signature",
                format!("sha256={}", hex::encode(mac.finalize().into_bytes())),
            ),
            &resolved,
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(resolved.as_bytes());
    let (st, v) = s
        .hook(
            am,
            (
                "x-compass-signature",
                format!("sha256={}", hex::encode(mac.finalize().into_bytes())),
            ),
            &resolved,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["resolved"].as_u64(), Some(2));
    let (_, incidents) = s.get("/api/v1/incidents", Some(Role::Viewer)).await;
    assert_eq!(incidents.as_array().unwrap().len(), 1);
    assert_eq!(incidents[0]["state"], "resolved");
    assert_eq!(incidents[0]["alert_count"], 2);
    // Bad input: clear 4xx, nothing stored.
    let auth = || ("authorization", format!("Bearer {SECRET}"));
    for (path, body, status, needle) in [
        (am, "{not json", 422, "not json"),
        (am, r#"{"version":"4","alerts":[]}"#, 422, "no alerts"),
        (am, r#"{"version":"2","alerts":[{}]}"#, 422, "not supported"),
        (
            "/api/v1/webhooks/generic",
            r#"{"name":"A","colour":"red"}"#,
            422,
            "unknown field `colour`",
        ),
        ("/api/v1/webhooks/generic", "[1,2", 400, "not JSON"),
    ] {
        let (st, v) = s.hook(path, auth(), body).await;
        assert_eq!(st.as_u16(), status, "{body}: {v}");
        assert!(v["error"].as_str().unwrap().contains(needle), "{body}: {v}");
    }
    let huge = format!(r#"{{"name":"A","summary":"{}"}}"#, "x".repeat(2 << 20));
    let (st, _) = s.hook("/api/v1/webhooks/generic", auth(), &huge).await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE);
    let (_, incidents) = s.get("/api/v1/incidents", Some(Role::Viewer)).await;
    assert_eq!(
        incidents.as_array().unwrap().len(),
        1,
        "bad input stored nothing"
    );
    // The generic webhook opens an incident too; [limits] severities filter.
    let (_, v) = s.hook("/api/v1/webhooks/generic", auth(), r#"{"alerts":[{"name":"DiskFull","service":"db","severity":"critical"},{"name":"Chatty","severity":"info"}]}"#).await;
    assert_eq!(
        (v["opened"].as_u64(), v["ignored"].as_u64()),
        (Some(2), Some(0)),
        "two groups: {v}"
    );
    let s2 = Server::new("[limits]\nseverities = [\"critical\"]").await;
    let (_, v) = s2
        .hook(
            "/api/v1/webhooks/generic",
            auth(),
            r#"{"name":"Chatty","severity":"info"}"#,
        )
        .await;
    assert_eq!(
        (v["opened"].as_u64(), v["ignored"].as_u64()),
        (Some(0), Some(1)),
        "{v}"
    );
    assert!(
        v["outcomes"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("[limits]")
    );
}

async fn wait_final(s: &Server, id: &str) -> Value {
    for _ in 0..600 {
        let (_, v) = s
            .get(&format!("/api/v1/investigations/{id}"), Some(Role::Viewer))
            .await;
        if !["queued", "running"].contains(&v["state"].as_str().unwrap()) {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("investigation {id} did not finish in 60 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_investigation_runs_streams_progress_and_takes_decisions() {
    let s = Server::new("").await;
    let truth = compass_adapters::bundle::BundleSource::open(&bundle())
        .unwrap()
        .incident()
        .clone();
    let start = chrono::DateTime::from_timestamp_millis(truth.start)
        .unwrap()
        .to_rfc3339();
    let (st, created) = s
        .post("/api/v1/incidents", Some(Role::Responder), json!({"title": truth.title, "severity": "critical", "services": truth.affected_services, "start": start}))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{created}");
    let id = created["investigation_id"].as_str().unwrap().to_string();
    let (st, v) = s
        .get(
            &format!("/api/v1/investigations/{id}/result"),
            Some(Role::Viewer),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    let workers = compass::serve::start_workers(&s.state);
    let done = wait_final(&s, &id).await;
    assert!(
        ["completed", "degraded"].contains(&done["state"].as_str().unwrap()),
        "{done}"
    );
    assert_eq!(done["attempts"], 1);
    let (st, result) = s
        .get(
            &format!("/api/v1/investigations/{id}/result"),
            Some(Role::Viewer),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(result["id"], id.as_str());
    let top = result["hypotheses"][0]["id"]
        .as_str()
        .expect("at least one hypothesis")
        .to_string();
    assert_eq!(done["top_hypothesis"], top.as_str());
    // The SSE stream replays every event and ends after `finished`.
    let req = Request::get(format!("/api/v1/investigations/{id}/events"))
        .header("authorization", format!("Bearer {}", s.token(Role::Viewer)))
        .body(Body::empty())
        .unwrap();
    let res = s.router.clone().oneshot(req).await.unwrap();
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let text =
        String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    for kind in [
        "event: started",
        "event: agents",
        "event: agent_finished",
        "event: orienting",
        "event: finished",
    ] {
        assert!(text.contains(kind), "{kind} missing from:\n{text}");
    }
    let resumed = Request::get(format!("/api/v1/investigations/{id}/events"))
        .header("authorization", format!("Bearer {}", s.token(Role::Viewer)))
        .header("last-event-id", "2")
        .body(Body::empty())
        .unwrap();
    let text2 = String::from_utf8(
        s.router
            .clone()
            .oneshot(resumed)
            .await
            .unwrap()
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    assert!(
        !text2.contains("event: started") && text2.contains("event: finished"),
        "{text2}"
    );
    // Decisions: validated, stored, folded into the result, audited.
    let path = format!("/api/v1/investigations/{id}/decisions");
    let (st, v) = s
        .post(
            &path,
            Some(Role::Responder),
            json!({"hypothesis_id": "nope", "verdict": "confirmed"}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        v["error"].as_str().unwrap().contains(&top),
        "lists the real ids: {v}"
    );
    let (st, _) = s
        .post(
            &path,
            Some(Role::Responder),
            json!({"hypothesis_id": top, "verdict": "maybe"}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    let (st, v) = s
        .post(
            &path,
            Some(Role::Viewer),
            json!({"hypothesis_id": top, "verdict": "confirmed"}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    let (st, v) = s
        .post(
            &path,
            Some(Role::Responder),
            json!({"hypothesis_id": top, "verdict": "confirmed", "note": "pool graph matches"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let (_, result) = s
        .get(
            &format!("/api/v1/investigations/{id}/result"),
            Some(Role::Viewer),
        )
        .await;
    assert_eq!(result["decisions"][0]["hypothesis_id"], top.as_str());
    assert_eq!(result["decisions"][0]["by"], "responder");
    assert_eq!(result["decisions"][0]["confirmed"], true);
    let (_, log) = s.get("/api/v1/audit", Some(Role::Admin)).await;
    assert_eq!(log[0]["action"], "decision.record");
    // A finished job cannot be cancelled; a queued one can.
    let (st, _) = s
        .post(
            &format!("/api/v1/investigations/{id}/cancel"),
            Some(Role::Responder),
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT);
    workers.stop().await;
    let incident = created["incident"]["id"].as_str().unwrap();
    let (st, queued) = s
        .post(
            &format!("/api/v1/incidents/{incident}/investigations"),
            Some(Role::Responder),
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{queued}");
    let (st, v) = s
        .post(
            &format!(
                "/api/v1/investigations/{}/cancel",
                queued["id"].as_str().unwrap()
            ),
            Some(Role::Responder),
            json!({}),
        )
        .await;
    assert_eq!(
        (st, v["state"].as_str()),
        (StatusCode::OK, Some("cancelled"))
    );
    // The UI: the list needs a session; with the cookie both pages render.
    let res = s
        .router
        .clone()
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let cookie = format!("compass_token={}", s.token(Role::Viewer));
    for page in ["/".to_string(), format!("/ui/investigations/{id}")] {
        let req = Request::get(&page)
            .header("cookie", &cookie)
            .body(Body::empty())
            .unwrap();
        let res = s.router.clone().oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{page}");
        let html = String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec())
            .unwrap();
        assert!(html.contains(incident), "{page} names the incident");
        if page != "/" {
            assert!(
                html.contains(&format!("data-hypothesis=\"{top}\"")),
                "decision buttons on {page}"
            );
            assert!(
                html.contains("confirmed by responder"),
                "the standing verdict on {page}"
            );
        }
    }
    // A cookie-carried change must say it comes from the UI.
    let req = Request::post(&path)
        .header("cookie", &cookie)
        .header("content-type", "application/json")
        .body(Body::from(
            json!({"hypothesis_id": top, "verdict": "rejected"}).to_string(),
        ))
        .unwrap();
    assert_eq!(s.call(req).await.0, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_openapi_document_matches_the_router() {
    let s = Server::new("").await;
    let (st, doc) = s.get("/api/openapi.json", None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 14);
    for (path, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            let concrete = path.replace("{id}", "x");
            let req = Request::builder()
                .method(method.to_uppercase().as_str())
                .uri(&concrete)
                .header("authorization", format!("Bearer {}", s.token(Role::Admin)))
                .header("content-type", "application/json")
                .body(Body::from("{}"))
                .unwrap();
            let (status, v) = s.call(req).await;
            let unrouted = status == StatusCode::NOT_FOUND
                && v["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("no such route"));
            let wrong_method = status == StatusCode::METHOD_NOT_ALLOWED;
            assert!(
                !unrouted && !wrong_method,
                "{method} {path} is documented but not routed ({status})"
            );
        }
    }
    let (st, v) = s.get("/readyz", None).await;
    assert_eq!((st, v["store"].as_str()), (StatusCode::OK, Some("sqlite")));
    assert_eq!(s.get("/healthz", None).await.0, StatusCode::OK);
}

/// A simulated IRIS instance for the remediation endpoints: a CPF and a control script.
fn iris_instance(dir: &std::path::Path) -> String {
    std::fs::write(
        dir.join("iris.cpf"),
        "[config]\nglobals=0,0,512,0,0,0\ngmheap=37568\n",
    )
    .unwrap();
    let ctl = dir.join("iris-control");
    std::fs::write(
        &ctl,
        format!(
            "#!/bin/sh\nD='{}'\necho \"$1 $2\" >> \"$D/calls\"\ncase \"$1\" in\n  status) echo running ;;\nesac\n",
            dir.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&ctl, std::fs::Permissions::from_mode(0o755)).unwrap();
    format!(
        "[act]\nstate_dir = \"{d}/act\"\ncontrol = \"{d}/iris-control\"\ndrain_wait = \"10ms\"\nstartup_deadline = \"5s\"\n[act.iris]\ncpf = \"{d}/iris.cpf\"\n",
        d = dir.display()
    )
}

#[tokio::test]
async fn actions_are_planned_approved_run_and_rolled_back_with_roles() {
    let w = tempfile::tempdir().unwrap();
    let s = Server::new(&iris_instance(w.path())).await;
    let cpf = w.path().join("iris.cpf");
    let cmd = json!({"command": {"id": "fix-1", "incident": "inc-1", "reason": "gmheap exhausted",
        "action": {"kind": "edit_config", "file": cpf.display().to_string(), "section": "config", "key": "gmheap", "value": "75136"}}});

    let (st, _) = s
        .post("/api/v1/actions", Some(Role::Viewer), cmd.clone())
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let bad = json!({"command": {"id": "x", "action": {"kind": "edit_config", "file": "f", "section": "s", "key": "k", "value": "v", "sudo": true}}});
    let (st, v) = s.post("/api/v1/actions", Some(Role::Responder), bad).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v["error"].as_str().unwrap().contains("sudo"), "{v}");
    let (st, v) = s
        .post("/api/v1/actions", Some(Role::Responder), cmd.clone())
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["plan"]["needs_approval"], true);
    assert!(
        v["plan"]["preview"]
            .as_str()
            .unwrap()
            .contains("+gmheap=75136")
    );
    let (st, _) = s.post("/api/v1/actions", Some(Role::Responder), cmd).await;
    assert_eq!(st, StatusCode::CONFLICT, "the id is taken");

    let (st, v) = s
        .post("/api/v1/actions/fix-1/run", Some(Role::Approver), json!({}))
        .await;
    assert_eq!(st, StatusCode::CONFLICT);
    assert!(
        v["error"].as_str().unwrap().contains("needs an approval"),
        "{v}"
    );
    let (st, v) = s
        .post(
            "/api/v1/actions/fix-1/approve",
            Some(Role::Responder),
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert!(
        v["error"].as_str().unwrap().contains("approver role"),
        "{v}"
    );
    let (st, v) = s
        .post(
            "/api/v1/actions/fix-1/approve",
            Some(Role::Approver),
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["approved_by"], "approver");

    let (st, v) = s
        .post(
            "/api/v1/actions/fix-1/run?dry_run=true",
            Some(Role::Approver),
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert!(
        std::fs::read_to_string(&cpf)
            .unwrap()
            .contains("gmheap=37568")
    );

    let (st, v) = s
        .post("/api/v1/actions/fix-1/run", Some(Role::Approver), json!({}))
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    let mut status = String::new();
    for _ in 0..100 {
        let (_, v) = s.get("/api/v1/actions/fix-1", Some(Role::Viewer)).await;
        status = v["status"].as_str().unwrap().to_string();
        if status != "running" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, "succeeded");
    assert!(
        std::fs::read_to_string(&cpf)
            .unwrap()
            .contains("gmheap=75136")
    );

    let (st, html) = s.get("/ui/actions", Some(Role::Approver)).await;
    assert_eq!(st, StatusCode::OK);
    let html = html.as_str().unwrap();
    assert!(
        html.contains("data-op=\"rollback\""),
        "approvers get the button"
    );
    assert!(html.contains("<span class=\"add\">+gmheap=75136</span>"));
    let (_, html) = s.get("/ui/actions", Some(Role::Viewer)).await;
    assert!(
        !html.as_str().unwrap().contains("data-op="),
        "viewers get no buttons"
    );

    let (st, v) = s
        .post(
            "/api/v1/actions/fix-1/rollback",
            Some(Role::Approver),
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "rolled_back");
    assert!(
        std::fs::read_to_string(&cpf)
            .unwrap()
            .contains("gmheap=37568")
    );

    let (_, log) = s.get("/api/v1/actions/fix-1/log", Some(Role::Viewer)).await;
    let steps: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["step"].as_str().unwrap())
        .collect();
    for want in [
        "planned",
        "refused",
        "approved",
        "dry_run",
        "started",
        "backup",
        "change",
        "validation",
        "rollback",
        "done",
    ] {
        assert!(steps.contains(&want), "{want} missing from {steps:?}");
    }
    let (_, audit) = s.get("/api/v1/audit", Some(Role::Admin)).await;
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for want in [
        "action.plan",
        "action.approve",
        "action.run",
        "action.rollback",
    ] {
        assert!(actions.contains(&want), "{want} missing from {actions:?}");
    }
    let (st, _) = s.get("/api/v1/actions/nope", Some(Role::Viewer)).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}
