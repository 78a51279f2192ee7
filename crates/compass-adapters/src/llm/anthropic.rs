//! Anthropic Messages: `POST {base_url}/v1/messages` with `x-api-key` and
//! `anthropic-version: 2023-06-01`. A schema becomes one tool the model is forced to
//! call (`tool_choice: {type: tool}`); its `input` is the answer.

use super::tokens;
use super::transport::{Transport, endpoint, secret_header, short};
use crate::http::RetryPolicy;
use async_trait::async_trait;
use compass_engine::llm::{ChatRequest, ChatResponse, LanguageModel, LlmError, Role, Usage};
use reqwest::Url;
use reqwest::header::{HeaderMap, HeaderValue};
use secrecy::SecretString;
use serde_json::{Value, json};
use std::time::Duration;

pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
pub const API_VERSION: &str = "2023-06-01";

#[derive(Debug, Clone)]
pub struct AnthropicConfig {
    /// Without the `/v1` (`https://api.anthropic.com`).
    pub base_url: String,
    pub api_key: Option<SecretString>,
    pub model: String,
    /// Per attempt.
    pub timeout: Duration,
    pub retry: RetryPolicy,
}

impl AnthropicConfig {
    pub fn new(model: impl Into<String>) -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_string(),
            api_key: None,
            model: model.into(),
            timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
        }
    }
}

#[derive(Debug)]
pub struct AnthropicModel {
    config: AnthropicConfig,
    url: Url,
    transport: Transport,
}

const PROVIDER: &str = "anthropic";

impl AnthropicModel {
    pub fn new(config: AnthropicConfig) -> Result<Self, LlmError> {
        let url = endpoint(PROVIDER, &config.base_url, "v1/messages")?;
        let mut headers = HeaderMap::new();
        headers.insert("anthropic-version", HeaderValue::from_static(API_VERSION));
        if let Some(key) = &config.api_key {
            headers.insert("x-api-key", secret_header(PROVIDER, "", key)?);
        }
        let transport = Transport::new(PROVIDER, headers, config.timeout, config.retry)?;
        Ok(Self {
            config,
            url,
            transport,
        })
    }

    fn body(&self, request: &ChatRequest) -> Value {
        let system: Vec<&str> = request
            .messages
            .iter()
            .filter(|m| m.role == Role::System)
            .map(|m| m.content.as_str())
            .collect();
        let messages: Vec<Value> = request
            .messages
            .iter()
            .filter(|m| m.role != Role::System)
            .map(|m| {
                let role = if m.role == Role::Assistant {
                    "assistant"
                } else {
                    "user"
                };
                json!({"role": role, "content": m.content})
            })
            .collect();
        let mut body = json!({
            "model": self.config.model,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "messages": messages,
        });
        if !system.is_empty() {
            body["system"] = Value::String(system.join("\n\n"));
        }
        if let Some(schema) = &request.schema {
            body["tools"] = json!([{
                "name": schema.name,
                "description": schema.description,
                "input_schema": schema.schema,
            }]);
            body["tool_choice"] = json!({"type": "tool", "name": schema.name});
        }
        body
    }

    fn read(&self, request: &ChatRequest, reply: &Value) -> Result<ChatResponse, LlmError> {
        let blocks = reply
            .get("content")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                self.transport
                    .bad(format!("no `content` in the answer: {}", short(reply)))
            })?;
        let tool_input = blocks
            .iter()
            .find(|b| b["type"] == "tool_use")
            .map(|b| b["input"].to_string());
        let text: String = blocks
            .iter()
            .filter(|b| b["type"] == "text")
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join("");
        let content = match tool_input {
            Some(input) if request.schema.is_some() => input,
            _ if !text.trim().is_empty() => text,
            Some(input) => input,
            None => {
                return Err(self.transport.bad(format!(
                    "the answer has no text or tool input (stop_reason {})",
                    reply["stop_reason"].as_str().unwrap_or("none")
                )));
            }
        };
        let usage = reply.get("usage").and_then(|u| {
            Some(Usage {
                prompt_tokens: u.get("input_tokens")?.as_u64()?
                    + u.get("cache_read_input_tokens")
                        .and_then(Value::as_u64)
                        .unwrap_or(0)
                    + u.get("cache_creation_input_tokens")
                        .and_then(Value::as_u64)
                        .unwrap_or(0),
                completion_tokens: u.get("output_tokens").and_then(Value::as_u64).unwrap_or(0),
            })
        });
        Ok(ChatResponse {
            content,
            usage,
            model: reply["model"]
                .as_str()
                .unwrap_or(&self.config.model)
                .to_string(),
            finish_reason: reply["stop_reason"].as_str().map(str::to_string),
        })
    }
}

#[async_trait]
impl LanguageModel for AnthropicModel {
    fn provider(&self) -> &str {
        PROVIDER
    }

    fn model(&self) -> &str {
        &self.config.model
    }

    /// Anthropic publishes no tokenizer: the documented approximation (see [`tokens`]).
    fn count_prompt_tokens(&self, request: &ChatRequest) -> u64 {
        tokens::count(&self.config.model, request)
    }

    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, LlmError> {
        let reply = self
            .transport
            .post_json(&self.url, &self.body(request))
            .await?;
        self.read(request, &reply)
    }
}
