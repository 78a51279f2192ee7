//! The OpenAI-compatible and Anthropic providers against a local HTTP server speaking
//! their wire formats (answers shaped like recorded ones: usage blocks, tool calls,
//! `tool_use` blocks), and every failure the providers must turn into a clear error:
//! rate limits with `Retry-After`, 5xx, 4xx, a hang, a truncated body, a huge reply,
//! malformed JSON.

use compass_adapters::http::RetryPolicy;
use compass_adapters::llm::anthropic::{AnthropicConfig, AnthropicModel};
use compass_adapters::llm::openai::{OpenAiConfig, OpenAiModel, Structured};
use compass_engine::llm::{
    ChatMessage, ChatRequest, JsonSchema, LanguageModel, LlmError, LlmErrorKind,
};
use secrecy::SecretString;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "sk-test-8f3b2c1d9e7a6b5c4d3e2f1a";

fn fast_retry(max_retries: u32) -> RetryPolicy {
    RetryPolicy {
        max_retries,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
    }
}

fn openai(server: &str, structured: Structured, retries: u32) -> OpenAiModel {
    let mut cfg = OpenAiConfig::new("gpt-4o-mini");
    cfg.base_url = format!("{server}/v1");
    cfg.api_key = Some(SecretString::from(KEY));
    cfg.structured = structured;
    cfg.retry = fast_retry(retries);
    cfg.timeout = Duration::from_secs(5);
    OpenAiModel::new(cfg).unwrap()
}

fn anthropic(server: &str) -> AnthropicModel {
    let mut cfg = AnthropicConfig::new("claude-3-5-haiku-latest");
    cfg.base_url = server.to_string();
    cfg.api_key = Some(SecretString::from(KEY));
    cfg.retry = fast_retry(2);
    AnthropicModel::new(cfg).unwrap()
}

fn schema() -> JsonSchema {
    JsonSchema {
        name: "propose_hypotheses".into(),
        description: "Extra root-cause hypotheses tied to observation ids".into(),
        schema: json!({
            "type": "object",
            "properties": {"hypotheses": {"type": "array", "items": {"type": "object"}}},
            "required": ["hypotheses"]
        }),
    }
}

fn request(with_schema: bool) -> ChatRequest {
    ChatRequest {
        messages: vec![
            ChatMessage::system("You are an SRE assistant."),
            ChatMessage::user("Digest: o1 checkout p99 latency up 8x at 12:03"),
        ],
        max_tokens: 300,
        temperature: 0.1,
        schema: with_schema.then(schema),
    }
}

const ANSWER: &str =
    r#"{"hypotheses":[{"service":"checkout","fault":"latency","evidence":["o1"]}]}"#;

fn openai_reply(message: Value, finish: &str) -> Value {
    json!({
        "id": "chatcmpl-AbC123",
        "object": "chat.completion",
        "created": 1_733_000_000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": 412, "completion_tokens": 38, "total_tokens": 450,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0}
        },
        "system_fingerprint": "fp_0ba0d124f1"
    })
}

fn openai_ok() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(openai_reply(
        json!({"role": "assistant", "content": ANSWER, "refusal": null}),
        "stop",
    ))
}

async fn body_of(server: &MockServer, n: usize) -> Value {
    let requests = server.received_requests().await.unwrap();
    serde_json::from_slice(&requests[n].body).unwrap()
}

async fn request_count(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

#[tokio::test]
async fn openai_json_schema_answer_and_usage() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .respond_with(openai_ok())
        .mount(&server)
        .await;
    let model = openai(&server.uri(), Structured::JsonSchema, 2);
    let answer = model.complete(&request(true)).await.unwrap();
    assert_eq!(answer.content, ANSWER);
    let usage = answer.usage.unwrap();
    assert_eq!((usage.prompt_tokens, usage.completion_tokens), (412, 38));
    assert_eq!(answer.model, "gpt-4o-mini-2024-07-18");
    assert_eq!(answer.finish_reason.as_deref(), Some("stop"));

    let sent = body_of(&server, 0).await;
    assert_eq!(sent["model"], "gpt-4o-mini");
    assert_eq!(sent["max_tokens"], 300);
    assert_eq!(sent["messages"][0]["role"], "system");
    assert_eq!(sent["response_format"]["type"], "json_schema");
    assert_eq!(
        sent["response_format"]["json_schema"]["name"],
        "propose_hypotheses"
    );
    assert_eq!(
        sent["response_format"]["json_schema"]["schema"]["required"][0],
        "hypotheses"
    );
    assert!(sent.get("tools").is_none());
}

#[tokio::test]
async fn openai_forced_tool_call_returns_the_arguments() {
    let server = MockServer::start().await;
    let message = json!({
        "role": "assistant", "content": null, "refusal": null,
        "tool_calls": [{
            "id": "call_Xy12", "type": "function",
            "function": {"name": "propose_hypotheses", "arguments": ANSWER}
        }]
    });
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(openai_reply(message, "tool_calls")))
        .mount(&server)
        .await;
    let model = openai(&server.uri(), Structured::Tool, 2);
    let answer = model.complete(&request(true)).await.unwrap();
    assert_eq!(answer.content, ANSWER);
    assert_eq!(answer.finish_reason.as_deref(), Some("tool_calls"));
    let sent = body_of(&server, 0).await;
    assert_eq!(sent["tools"][0]["function"]["name"], "propose_hypotheses");
    assert_eq!(
        sent["tool_choice"]["function"]["name"],
        "propose_hypotheses"
    );
    assert!(sent.get("response_format").is_none());
}

#[tokio::test]
async fn openai_prompt_mode_puts_the_schema_in_the_system_message() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(openai_ok())
        .mount(&server)
        .await;
    let model = openai(&server.uri(), Structured::Prompt, 0);
    model.complete(&request(true)).await.unwrap();
    let sent = body_of(&server, 0).await;
    let system = sent["messages"][0]["content"].as_str().unwrap();
    assert!(system.starts_with("You are an SRE assistant."), "{system}");
    assert!(system.contains("\"required\":[\"hypotheses\"]"), "{system}");
    assert_eq!(sent["messages"].as_array().unwrap().len(), 2);
    // The instruction is prompt text, so it is counted.
    assert!(model.count_prompt_tokens(&request(true)) > model.count_prompt_tokens(&request(false)));
}

#[tokio::test]
async fn anthropic_tool_use_answer_and_usage() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(header("x-api-key", KEY))
        .and(header("anthropic-version", "2023-06-01"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
            "type": "message",
            "role": "assistant",
            "model": "claude-3-5-haiku-20241022",
            "content": [
                {"type": "text", "text": "Looking at the digest."},
                {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9",
                 "name": "propose_hypotheses",
                 "input": {"hypotheses": [{"service": "checkout", "fault": "latency", "evidence": ["o1"]}]}}
            ],
            "stop_reason": "tool_use",
            "stop_sequence": null,
            "usage": {"input_tokens": 530, "output_tokens": 61,
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        })))
        .mount(&server)
        .await;
    let model = anthropic(&server.uri());
    let answer = model.complete(&request(true)).await.unwrap();
    let parsed: Value = serde_json::from_str(&answer.content).unwrap();
    assert_eq!(parsed["hypotheses"][0]["evidence"][0], "o1");
    let usage = answer.usage.unwrap();
    assert_eq!((usage.prompt_tokens, usage.completion_tokens), (530, 61));
    assert_eq!(answer.finish_reason.as_deref(), Some("tool_use"));

    let sent = body_of(&server, 0).await;
    assert_eq!(sent["system"], "You are an SRE assistant.");
    assert_eq!(
        sent["messages"].as_array().unwrap().len(),
        1,
        "the system text is not a message"
    );
    assert_eq!(
        sent["tools"][0]["input_schema"]["required"][0],
        "hypotheses"
    );
    assert_eq!(
        sent["tool_choice"],
        json!({"type": "tool", "name": "propose_hypotheses"})
    );
}

#[tokio::test]
async fn anthropic_text_answer_without_a_schema() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "msg_02", "type": "message", "role": "assistant",
            "model": "claude-3-5-haiku-20241022",
            "content": [{"type": "text", "text": "ok"}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 12, "output_tokens": 1}
        })))
        .mount(&server)
        .await;
    let answer = anthropic(&server.uri())
        .complete(&request(false))
        .await
        .unwrap();
    assert_eq!(answer.content, "ok");
    assert!(body_of(&server, 0).await.get("tools").is_none());
}

#[tokio::test]
async fn a_rate_limit_is_retried_after_the_time_the_provider_asks() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "1")
                .set_body_json(json!({"error": {"message": "Rate limit reached for gpt-4o-mini",
                                                 "type": "requests", "code": "rate_limit_exceeded"}})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(openai_ok())
        .mount(&server)
        .await;
    let model = openai(&server.uri(), Structured::JsonSchema, 2);
    let started = Instant::now();
    let answer = model.complete(&request(true)).await.unwrap();
    assert_eq!(answer.content, ANSWER);
    assert_eq!(request_count(&server).await, 2);
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "waited only {:?} although the provider asked for 1 s",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_retry_after_longer_than_a_minute_ends_the_call() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "3600"))
        .mount(&server)
        .await;
    let err = openai(&server.uri(), Structured::JsonSchema, 3)
        .complete(&request(true))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), LlmErrorKind::Unavailable, "{err}");
    assert!(err.to_string().contains("3600 s"), "{err}");
    assert_eq!(request_count(&server).await, 1);
}

#[tokio::test]
async fn a_server_error_is_retried_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500).set_body_string("internal error"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(openai_ok())
        .mount(&server)
        .await;
    let answer = openai(&server.uri(), Structured::JsonSchema, 2)
        .complete(&request(true))
        .await
        .unwrap();
    assert_eq!(answer.content, ANSWER);
    assert_eq!(request_count(&server).await, 2);
}

#[tokio::test]
async fn a_provider_that_keeps_failing_gets_exactly_the_configured_retries() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(529).set_body_json(
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        ))
        .mount(&server)
        .await;
    let err = anthropic(&server.uri())
        .complete(&request(true))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), LlmErrorKind::Unavailable);
    assert!(err.to_string().contains("HTTP 529"), "{err}");
    assert!(
        err.to_string().contains("Overloaded (overloaded_error)"),
        "{err}"
    );
    assert_eq!(request_count(&server).await, 3, "one call and two retries");
}

#[tokio::test]
async fn client_errors_are_not_retried_and_keep_the_provider_message() {
    for (status, body, expect) in [
        (
            400,
            json!({"error": {"message": "Invalid schema for response_format 'propose_hypotheses'",
                             "type": "invalid_request_error", "param": "response_format"}}),
            "Invalid schema for response_format",
        ),
        (
            401,
            json!({"error": {"message": "Incorrect API key provided: sk-test-***", "type": "invalid_request_error",
                             "code": "invalid_api_key"}}),
            "check the API key",
        ),
        (
            404,
            json!({"error": {"message": "The model `gpt-9` does not exist", "type": "invalid_request_error"}}),
            "check `base_url` and `model`",
        ),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(status).set_body_json(body))
            .mount(&server)
            .await;
        let err = openai(&server.uri(), Structured::JsonSchema, 3)
            .complete(&request(true))
            .await
            .unwrap_err();
        assert!(matches!(err, LlmError::Rejected { .. }), "{status}: {err}");
        assert!(err.to_string().contains(expect), "{status}: {err}");
        assert_eq!(
            request_count(&server).await,
            1,
            "HTTP {status} must not be retried"
        );
    }
}

#[tokio::test]
async fn a_hanging_provider_times_out_once() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(openai_ok().set_delay(Duration::from_secs(30)))
        .mount(&server)
        .await;
    let mut cfg = OpenAiConfig::new("gpt-4o-mini");
    cfg.base_url = format!("{}/v1", server.uri());
    cfg.timeout = Duration::from_millis(300);
    cfg.retry = fast_retry(2);
    let err = OpenAiModel::new(cfg)
        .unwrap()
        .complete(&request(true))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), LlmErrorKind::Timeout, "{err}");
    assert!(err.to_string().contains("timed out after 0.3 s"), "{err}");
    assert_eq!(request_count(&server).await, 1, "a timeout is not retried");
}

/// A server that answers every connection with `reply` and then closes it.
async fn raw_server(reply: Vec<u8>) -> (String, tokio::task::JoinHandle<usize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handle = tokio::spawn(async move {
        let mut served = 0;
        while let Ok(Ok((mut socket, _))) =
            tokio::time::timeout(Duration::from_secs(1), listener.accept()).await
        {
            let mut buf = vec![0u8; 64 * 1024];
            let _ = socket.read(&mut buf).await;
            let _ = socket.write_all(&reply).await;
            let _ = socket.shutdown().await;
            served += 1;
        }
        served
    });
    (url, handle)
}

#[tokio::test]
async fn a_truncated_body_is_a_bad_response_and_not_retried() {
    let body = openai_reply(json!({"role": "assistant", "content": ANSWER}), "stop").to_string();
    let cut = &body[..body.len() / 2];
    let reply = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{cut}",
        body.len()
    );
    let (url, served) = raw_server(reply.into_bytes()).await;
    let err = openai(&url, Structured::JsonSchema, 2)
        .complete(&request(true))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), LlmErrorKind::BadResponse, "{err}");
    assert!(err.to_string().contains("cut off"), "{err}");
    assert_eq!(served.await.unwrap(), 1);
}

#[tokio::test]
async fn a_huge_reply_is_refused() {
    let server = MockServer::start().await;
    let huge = "x".repeat(compass_adapters::llm::MAX_REPLY_BYTES + 1);
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string(huge))
        .mount(&server)
        .await;
    let err = openai(&server.uri(), Structured::JsonSchema, 2)
        .complete(&request(true))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), LlmErrorKind::BadResponse, "{err}");
    assert!(err.to_string().contains("more than 8 MiB"), "{err}");
}

#[tokio::test]
async fn malformed_json_and_empty_answers_are_named() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string("{\"id\":\"chatcmpl-1\",\"choices\":[{"),
        )
        .mount(&server)
        .await;
    let err = openai(&server.uri(), Structured::JsonSchema, 2)
        .complete(&request(true))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), LlmErrorKind::BadResponse);
    assert!(err.to_string().contains("malformed JSON"), "{err}");
    assert!(
        err.to_string().contains("chatcmpl-1"),
        "the start of the body is shown: {err}"
    );

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(openai_reply(
            json!({"role": "assistant", "content": ""}),
            "length",
        )))
        .mount(&server)
        .await;
    let err = openai(&server.uri(), Structured::JsonSchema, 2)
        .complete(&request(true))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("no content (finish_reason length)"),
        "{err}"
    );
}

#[tokio::test]
async fn a_dead_server_is_unavailable_with_a_hint() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = openai(
        &format!("http://127.0.0.1:{port}"),
        Structured::JsonSchema,
        1,
    )
    .complete(&request(true))
    .await
    .unwrap_err();
    assert_eq!(err.kind(), LlmErrorKind::Unavailable, "{err}");
    assert!(err.to_string().contains("check `base_url`"), "{err}");
}

#[test]
fn the_api_key_never_appears_in_debug_output() {
    let model = openai("http://127.0.0.1:9", Structured::JsonSchema, 0);
    let shown = format!("{model:?}");
    assert!(!shown.contains(KEY), "{shown}");
    let shown = format!("{:?}", anthropic("http://127.0.0.1:9"));
    assert!(!shown.contains(KEY), "{shown}");
}

#[test]
fn bad_base_urls_are_refused_with_an_example() {
    let mut cfg = OpenAiConfig::new("m");
    cfg.base_url = "localhost:11434".into();
    let err = OpenAiModel::new(cfg).unwrap_err();
    assert!(err.to_string().contains("http://"), "{err}");
    let mut cfg = OpenAiConfig::new("m");
    cfg.base_url = "https://user:secret@example.invalid/v1".into();
    let err = OpenAiModel::new(cfg).unwrap_err();
    assert!(!err.to_string().contains("secret"), "{err}");
}
