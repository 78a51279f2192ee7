//! COMPASS as an MCP server, driven by the official `rmcp` client: over stdio
//! (`compass mcp` as a child process) and over streamable HTTP at `/mcp` of a served
//! replica on a loopback port. Both run a real investigation of a simulated bundle
//! to its ranked result and record a decision; roles and tokens apply as on the API.

use compass::serve::{ServeOptions, app, hash_token, prepare_with, start_workers};
use compass_adapters::config::Settings;
use compass_engine::store::Role;
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use serde_json::{Value, json};

use crate::serve_common::bundle;

type Client = RunningService<RoleClient, ()>;

async fn call(client: &Client, tool: &'static str, args: Value) -> CallToolResult {
    let params = CallToolRequestParams::new(tool).with_arguments(args.as_object().unwrap().clone());
    client.call_tool(params).await.unwrap()
}

fn text(r: &CallToolResult) -> String {
    r.content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Open an incident, wait for its investigation, check the report, confirm the top
/// hypothesis and see it listed: the whole flow an assistant would run.
async fn investigate_and_decide(client: &Client) {
    let mut names: Vec<String> = client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "get_investigation",
            "list_incidents",
            "record_decision",
            "start_investigation"
        ]
    );

    let both = call(
        client,
        "start_investigation",
        json!({"incident_id": "x", "incident": {"title": "t"}}),
    )
    .await;
    assert_eq!(both.is_error, Some(true));
    assert!(text(&both).contains("exactly one of"), "{}", text(&both));

    let started = call(
        client,
        "start_investigation",
        json!({"incident": {"title": "checkout errors", "severity": "critical",
                            "start": bundle_start()}}),
    )
    .await;
    assert_eq!(started.is_error, Some(false), "{}", text(&started));
    let s = started.structured_content.unwrap();
    let inv_id = s["investigation_id"].as_str().unwrap().to_string();
    assert_eq!(s["state"], "queued");

    let mut report = None;
    for _ in 0..6 {
        let got = call(
            client,
            "get_investigation",
            json!({"investigation_id": inv_id, "wait_seconds": 30}),
        )
        .await;
        assert_eq!(got.is_error, Some(false), "{}", text(&got));
        let v = got.structured_content.clone().unwrap();
        if v["hypotheses"].is_array() {
            assert!(
                text(&got).contains("checkout errors"),
                "the Markdown report names the incident: {}",
                text(&got)
            );
            report = Some(v);
            break;
        }
        assert!(
            matches!(v["state"].as_str(), Some("queued" | "running")),
            "{v}"
        );
    }
    let report = report.expect("the investigation finished within three minutes");
    let top = report["hypotheses"][0]["id"].as_str().unwrap().to_string();
    assert!(
        report["hypotheses"][0]["evidence"]
            .as_array()
            .is_some_and(|e| !e.is_empty()),
        "the top hypothesis carries its evidence: {report}"
    );

    let wrong = call(
        client,
        "record_decision",
        json!({"investigation_id": inv_id, "hypothesis_id": "nope", "verdict": "confirmed"}),
    )
    .await;
    assert_eq!(wrong.is_error, Some(true));
    assert!(
        text(&wrong).contains("has no hypothesis `nope`"),
        "{}",
        text(&wrong)
    );

    let decided = call(
        client,
        "record_decision",
        json!({"investigation_id": inv_id, "hypothesis_id": top, "verdict": "confirmed",
               "note": "pool graphs match"}),
    )
    .await;
    assert_eq!(decided.is_error, Some(false), "{}", text(&decided));
    assert_eq!(decided.structured_content.unwrap()["confirmed"], true);

    let again = call(
        client,
        "get_investigation",
        json!({"investigation_id": inv_id}),
    )
    .await;
    assert!(
        text(&again).contains("pool graphs match"),
        "the decision shows in the report"
    );

    let listed = call(client, "list_incidents", json!({"state": "open"})).await;
    let incidents = listed.structured_content.unwrap()["incidents"].clone();
    assert!(
        incidents
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["incident"]["title"] == "checkout errors"),
        "{incidents}"
    );
}

/// When the bundle's incident began (RFC 3339), so the new incident covers its data.
fn bundle_start() -> String {
    let source = compass_adapters::bundle::BundleSource::open(&bundle()).unwrap();
    chrono::DateTime::from_timestamp_millis(source.incident().start)
        .unwrap()
        .to_rfc3339()
}

fn mcp_command(db: &std::path::Path) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_compass"));
    cmd.arg("mcp")
        .arg("--bundle")
        .arg(bundle())
        .arg("--database")
        .arg(format!("sqlite://{}", db.display()))
        .env_remove("COMPASS_TOKEN")
        .env_remove("COMPASS_CONFIG")
        .env_remove("COMPASS_DATABASE_URL");
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_server_investigates_and_records_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = mcp_command(&dir.path().join("c.db"));
    cmd.arg("--no-auth");
    let client = ().serve(TokioChildProcess::new(cmd).unwrap()).await.unwrap();
    investigate_and_decide(&client).await;
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_server_checks_the_token_and_its_role() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");

    // No token: a clear refusal at start, before any protocol traffic.
    let out = mcp_command(&db).output().await.unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("needs an API token in $COMPASS_TOKEN"),
        "{err}"
    );

    // A revoked or unknown token is refused the same way.
    let mut cmd = mcp_command(&db);
    cmd.env("COMPASS_TOKEN", "cps_unknown");
    let out = cmd.output().await.unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown or revoked"), "{err}");

    // A viewer may look but not start investigations.
    let store = compass::serve::open_store(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let token = compass::serve::new_token();
    use compass_engine::store::Store;
    store
        .create_token("assistant", Role::Viewer, &hash_token(&token), 1)
        .await
        .unwrap();
    let mut cmd = mcp_command(&db);
    cmd.env("COMPASS_TOKEN", &token);
    let client = ().serve(TokioChildProcess::new(cmd).unwrap()).await.unwrap();
    let listed = call(&client, "list_incidents", json!({})).await;
    assert_eq!(listed.is_error, Some(false), "{}", text(&listed));
    let refused = call(
        &client,
        "start_investigation",
        json!({"incident": {"title": "x"}}),
    )
    .await;
    assert_eq!(refused.is_error, Some(true));
    assert!(
        text(&refused).contains("needs the responder role; token `assistant` has viewer"),
        "{}",
        text(&refused)
    );
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_endpoint_authenticates_like_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings::parse("version = 1", "test", None).unwrap();
    let opts = ServeOptions {
        bundle: Some(bundle()),
        database_url: Some(format!("sqlite://{}", dir.path().join("c.db").display())),
        replica: Some("mcp-http".into()),
        ..Default::default()
    };
    let (state, _) = prepare_with(settings, &opts).await.unwrap();
    let token = compass::serve::new_token();
    state
        .store
        .create_token("copilot", Role::Responder, &hash_token(&token), 1)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let router = app(state.clone(), None);
    tokio::spawn(async move { axum::serve(listener, router).await });
    let workers = start_workers(&state);

    // Without a token the endpoint answers 401 before any MCP handling.
    let res = reqwest::Client::new()
        .post(&url)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.text().await.unwrap().contains("no API token"));

    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url).auth_header(token),
    );
    let client = ().serve(transport).await.unwrap();
    investigate_and_decide(&client).await;
    client.cancel().await.unwrap();

    // The changes are audited under the token's name, as on the API.
    let audit = state.store.audit_log(50).await.unwrap();
    for action in ["incident.create", "decision.record"] {
        assert!(
            audit
                .iter()
                .any(|a| a.action == action && a.actor == "copilot"),
            "{action} by copilot in {audit:?}"
        );
    }
    workers.stop().await;
}
