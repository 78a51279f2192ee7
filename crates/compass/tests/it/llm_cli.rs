//! The LLM layer end to end through the binary: `compass demo` with an
//! OpenAI-compatible test provider (a local HTTP server that answers like an analyst:
//! it reads the digest, cites its first observation, asks one follow-up query and
//! writes a summary), the cost ledger and `compass cost`, the per-investigation
//! budget, `compass llm check`, and a model that cannot be set up.

use assert_cmd::Command;
use serde_json::{Value, json};
use std::path::Path;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

fn compass(home: &Path) -> Command {
    let mut c = Command::cargo_bin("compass").expect("binary built");
    c.env("NO_COLOR", "1")
        .env("COMPASS_HOME", home)
        .env("COMPASS_TEST_KEY", "sk-test-1234567890abcdef")
        .env_remove("COMPASS_BUDGET")
        .env_remove("COMPASS_CONFIG")
        .env_remove("COMPASS_LLM_CONFIG");
    c
}

/// Answers each analyst step from what the request holds.
struct Analyst;

impl Respond for Analyst {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).expect("JSON request");
        let schema = &body["response_format"]["json_schema"];
        let user = body["messages"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["role"] == "user"))
            .and_then(|m| m["content"].as_str())
            .unwrap_or_default()
            .to_string();
        let answer = match schema["name"].as_str() {
            Some("write_summary") => json!({
                "summary": "Test analyst summary: the leading hypothesis is supported by the cited observations."
            }),
            Some("propose_hypotheses") => {
                let first = first_observation(&user).expect("the digest lists observations");
                let kinds = fault_kinds(&user);
                let mut answer = json!({"hypotheses": [{
                    "statement": format!("test analyst: {} is where the fault starts", first.1),
                    "service": first.1,
                    "fault_kind": kinds.first().cloned().unwrap_or_default(),
                    "confidence": 0.9,
                    "evidence": [first.0],
                }]});
                if schema["schema"]["properties"].get("queries").is_some() {
                    answer["queries"] = json!([{
                        "language": "promql",
                        "query": format!("sum by (service) (rate(http_requests_total{{service=\"{}\"}}[5m]))", first.1),
                        "reason": "is the request rate of the suspect changing"
                    }, {
                        "language": "promql",
                        "query": "{__name__=~\".*\"}",
                        "reason": "an unbounded selector the engine must reject"
                    }]);
                }
                answer
            }
            other => panic!("unexpected schema {other:?}"),
        };
        ResponseTemplate::new(200).set_body_json(json!({
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": answer.to_string()}}]
        }))
    }
}

/// (id, service) of the first observation line of the digest.
fn first_observation(digest: &str) -> Option<(String, String)> {
    let mut lines = digest
        .lines()
        .skip_while(|l| !l.starts_with("OBSERVATIONS"));
    lines.next()?;
    let fields: Vec<&str> = lines.next()?.split(" | ").collect();
    let service = fields.get(2)?.split('/').next()?.to_string();
    Some((fields[0].to_string(), service))
}

fn fault_kinds(digest: &str) -> Vec<String> {
    digest
        .lines()
        .find_map(|l| l.strip_prefix("FAULT KINDS: "))
        .map(|l| l.split(", ").map(str::to_string).collect())
        .unwrap_or_default()
}

fn write_config(dir: &Path, server: &str, extra: &str) -> std::path::PathBuf {
    let path = dir.join("compass.toml");
    std::fs::write(
        &path,
        format!(
            "version = 1\n[llm]\nprovider = \"openai\"\nmodel = \"gpt-4o-mini\"\n\
             base_url = \"{server}/v1\"\napi_key_env = \"COMPASS_TEST_KEY\"\nretries = 0\n{extra}"
        ),
    )
    .unwrap();
    path
}

fn demo_json(home: &Path, out: &Path, extra: &[&str]) -> (Value, i32) {
    let output = compass(home)
        .args(["demo", "--format", "json", "--out"])
        .arg(out)
        .args(extra)
        .output()
        .unwrap();
    let code = output.status.code().unwrap_or(-1);
    let v = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}); stderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (v, code)
}

async fn analyst_server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(Analyst)
        .mount(&server)
        .await;
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_with_a_model_keeps_the_ranking_adds_a_summary_and_records_the_cost() {
    let server = analyst_server().await;
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), &server.uri(), "");

    let (plain, code) = demo_json(tmp.path(), &tmp.path().join("plain"), &["--no-llm"]);
    assert_eq!(code, 0);
    assert!(plain["llm"].is_null());
    let (with, code) = demo_json(
        tmp.path(),
        &tmp.path().join("with"),
        &["--llm-config", config.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{with:#}");

    let llm = &with["llm"];
    assert_eq!(llm["provider"], "openai");
    assert_eq!(llm["model"], "gpt-4o-mini");
    let calls = llm["calls"].as_array().unwrap();
    let steps: Vec<&str> = calls.iter().map(|c| c["step"].as_str().unwrap()).collect();
    assert_eq!(steps, ["hypotheses", "follow_up", "summary"], "{llm:#}");
    assert!(calls.iter().all(|c| c["outcome"] == "ok"), "{llm:#}");
    assert!(
        llm["summary"]
            .as_str()
            .unwrap()
            .starts_with("Test analyst summary")
    );
    let follow_ups = llm["follow_ups"].as_array().unwrap();
    assert_eq!(follow_ups.len(), 2, "{llm:#}");
    assert_eq!(
        follow_ups[1]["outcome"], "rejected",
        "a selector matching every metric is unbounded: {llm:#}"
    );

    // The deterministic leader keeps its place.
    assert_eq!(with["hypotheses"][0]["id"], plain["hypotheses"][0]["id"]);
    assert_eq!(
        with["hypotheses"][0]["confidence"],
        plain["hypotheses"][0]["confidence"]
    );
    let prompt: u64 = calls
        .iter()
        .map(|c| c["prompt_tokens"].as_u64().unwrap())
        .sum();
    eprintln!("demo: {} LLM calls, {prompt} prompt tokens", calls.len());
    assert!(prompt > 0);
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 3, "one request per step");

    // Every call is in the ledger, and `compass cost` reports it.
    let output = compass(tmp.path())
        .args(["cost", "--json"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let cost: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(cost["total"]["calls"], 3, "{cost:#}");
    assert_eq!(cost["total"]["prompt_tokens"], prompt, "{cost:#}");
    let text = compass(tmp.path())
        .args(["cost", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("gpt-4o-mini"), "{text}");
    assert!(text.contains("hypotheses"), "{text}");

    // The Markdown and terminal reports say what the model did.
    let output = compass(tmp.path())
        .args(["investigate", "--format", "markdown", "--llm-config"])
        .arg(&config)
        .arg("--bundle")
        .arg(tmp.path().join("with").join("bundle"))
        .output()
        .unwrap();
    let md = String::from_utf8(output.stdout).unwrap();
    assert!(md.contains("## LLM analysis"), "{md}");
    assert!(md.contains("Test analyst summary"), "{md}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_too_small_for_any_call_returns_the_deterministic_report() {
    let server = analyst_server().await;
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), &server.uri(), "");
    let (v, code) = demo_json(
        tmp.path(),
        &tmp.path().join("out"),
        &[
            "--llm-config",
            config.to_str().unwrap(),
            "--budget",
            "0.0000001",
        ],
    );
    assert_eq!(code, 4, "budget exhausted is exit code 4");
    assert_eq!(v["status"], "budget_exhausted");
    assert!(
        !v["hypotheses"].as_array().unwrap().is_empty(),
        "the deterministic result stays"
    );
    let calls = v["llm"]["calls"].as_array().unwrap();
    assert!(calls.iter().all(|c| c["outcome"] == "refused"), "{calls:?}");
    assert!(
        server.received_requests().await.unwrap().is_empty(),
        "no call was made"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llm_check_reports_latency_tokens_and_cost() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-mini-2024-07-18",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "{\"ok\": true}"}}],
            "usage": {"prompt_tokens": 41, "completion_tokens": 5, "total_tokens": 46}
        })))
        .mount(&server)
        .await;
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), &server.uri(), "");
    let output = compass(tmp.path())
        .args(["llm", "check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "{text}");
    assert!(text.contains("ok   answered in"), "{text}");
    assert!(text.contains("41 prompt"), "{text}");
    assert!(text.contains("5 completion"), "{text}");
    assert!(text.contains("reported by the provider"), "{text}");
    assert!(
        text.contains("cost:   $0.000009"),
        "41 × 0.15 + 5 × 0.60 per M: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llm_check_names_a_rejected_key() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}
        })))
        .mount(&server)
        .await;
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), &server.uri(), "");
    let output = compass(tmp.path())
        .args(["llm", "check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("FAIL"), "{text}");
    assert!(text.contains("check the API key"), "{text}");
}

#[test]
fn a_model_that_cannot_be_set_up_leaves_the_investigation_deterministic() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), "http://127.0.0.1:9", "");
    let output = compass(tmp.path())
        .env_remove("COMPASS_TEST_KEY")
        .args(["demo", "--format", "json", "--out"])
        .arg(tmp.path().join("out"))
        .arg("--llm-config")
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("investigating without the LLM steps"),
        "{stderr}"
    );
    assert!(
        stderr.contains("COMPASS_TEST_KEY"),
        "the missing variable is named: {stderr}"
    );
    let v: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(v["llm"].is_null());
}

#[test]
fn a_config_without_an_llm_section_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("c.toml");
    std::fs::write(&path, "version = 1\n").unwrap();
    let output = compass(tmp.path())
        .args(["llm", "check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("has no [llm] section"));
}
