//! OpenAI chat completions and the servers that speak the same wire format (Groq,
//! Ollama, vLLM, llama.cpp server, LiteLLM): `POST {base_url}/chat/completions`.
//!
//! Structured answers use, by [`Structured`]: `response_format: json_schema` (OpenAI,
//! vLLM, recent Ollama and llama.cpp), a forced function call (`tool`: servers with
//! tool calling but no schema mode), or the schema written into the system message
//! (`prompt`: anything else). Whatever the route, the engine validates the answer.

use super::tokens;
use super::transport::{Transport, endpoint, secret_header, short};
use crate::http::RetryPolicy;
use async_trait::async_trait;
use compass_engine::llm::{
    ChatRequest, ChatResponse, JsonSchema, LanguageModel, LlmError, Role, Usage,
};
use reqwest::Url;
use reqwest::header::{AUTHORIZATION, HeaderMap};
use secrecy::SecretString;
use serde_json::{Value, json};
use std::time::Duration;

pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// How a schema is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Structured {
    JsonSchema,
    Tool,
    Prompt,
}

impl Structured {
    /// `json_schema`, `tool` or `prompt` (the `structured` key in `[llm]`).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "json_schema" => Some(Self::JsonSchema),
            "tool" => Some(Self::Tool),
            "prompt" => Some(Self::Prompt),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct OpenAiConfig {
    /// Up to and including the version prefix (`https://api.openai.com/v1`,
    /// `http://localhost:11434/v1` for Ollama).
    pub base_url: String,
    /// Sent as `Authorization: Bearer`; local servers usually need none.
    pub api_key: Option<SecretString>,
    pub model: String,
    /// Per attempt.
    pub timeout: Duration,
    pub retry: RetryPolicy,
    pub structured: Structured,
    /// The name in reports and the ledger (`openai`, or e.g. `groq`).
    pub provider: String,
}

impl OpenAiConfig {
    pub fn new(model: impl Into<String>) -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_string(),
            api_key: None,
            model: model.into(),
            timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
            structured: Structured::JsonSchema,
            provider: "openai".to_string(),
        }
    }
}

#[derive(Debug)]
pub struct OpenAiModel {
    config: OpenAiConfig,
    url: Url,
    transport: Transport,
}

impl OpenAiModel {
    pub fn new(config: OpenAiConfig) -> Result<Self, LlmError> {
        let url = endpoint(&config.provider, &config.base_url, "chat/completions")?;
        let mut headers = HeaderMap::new();
        if let Some(key) = &config.api_key {
            headers.insert(
                AUTHORIZATION,
                secret_header(&config.provider, "Bearer ", key)?,
            );
        }
        let transport = Transport::new(&config.provider, headers, config.timeout, config.retry)?;
        Ok(Self {
            config,
            url,
            transport,
        })
    }

    fn body(&self, request: &ChatRequest) -> Value {
        let mut messages: Vec<Value> = request
            .messages
            .iter()
            .map(|m| json!({"role": role(m.role), "content": m.content}))
            .collect();
        let mut body = json!({
            "model": self.config.model,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        });
        if let Some(schema) = &request.schema {
            match self.config.structured {
                Structured::JsonSchema => {
                    body["response_format"] = json!({
                        "type": "json_schema",
                        "json_schema": {
                            "name": schema.name,
                            "description": schema.description,
                            "schema": schema.schema,
                            "strict": false,
                        }
                    });
                }
                Structured::Tool => {
                    body["tools"] = json!([{
                        "type": "function",
                        "function": {
                            "name": schema.name,
                            "description": schema.description,
                            "parameters": schema.schema,
                        }
                    }]);
                    body["tool_choice"] =
                        json!({"type": "function", "function": {"name": schema.name}});
                }
                Structured::Prompt => {
                    let instruction = schema_instruction(schema);
                    match messages.first_mut() {
                        Some(first) if first["role"] == "system" => {
                            let text = format!(
                                "{}\n\n{instruction}",
                                first["content"].as_str().unwrap_or_default()
                            );
                            first["content"] = Value::String(text);
                        }
                        _ => messages.insert(0, json!({"role": "system", "content": instruction})),
                    }
                }
            }
        }
        body["messages"] = Value::Array(messages);
        body
    }

    fn read(&self, request: &ChatRequest, reply: &Value) -> Result<ChatResponse, LlmError> {
        let choice = reply.get("choices").and_then(|c| c.get(0)).ok_or_else(|| {
            self.transport
                .bad(format!("no `choices` in the answer: {}", short(reply)))
        })?;
        let message = &choice["message"];
        if let Some(refusal) = message.get("refusal").and_then(Value::as_str) {
            return Err(self.transport.bad(format!("the model refused: {refusal}")));
        }
        let tool_arguments = message
            .get("tool_calls")
            .and_then(|t| t.get(0))
            .and_then(|t| t["function"]["arguments"].as_str());
        let content = match (
            tool_arguments,
            message.get("content").and_then(Value::as_str),
        ) {
            (Some(args), _) if request.schema.is_some() => args.to_string(),
            (_, Some(text)) if !text.trim().is_empty() => text.to_string(),
            (Some(args), _) => args.to_string(),
            _ => {
                return Err(self.transport.bad(format!(
                    "the answer has no content (finish_reason {})",
                    choice["finish_reason"].as_str().unwrap_or("none")
                )));
            }
        };
        let usage = reply.get("usage").and_then(|u| {
            Some(Usage {
                prompt_tokens: u.get("prompt_tokens")?.as_u64()?,
                completion_tokens: u
                    .get("completion_tokens")
                    .and_then(Value::as_u64)
                    .unwrap_or(0),
            })
        });
        Ok(ChatResponse {
            content,
            usage,
            model: reply["model"]
                .as_str()
                .unwrap_or(&self.config.model)
                .to_string(),
            finish_reason: choice["finish_reason"].as_str().map(str::to_string),
        })
    }
}

#[async_trait]
impl LanguageModel for OpenAiModel {
    fn provider(&self) -> &str {
        &self.config.provider
    }

    fn model(&self) -> &str {
        &self.config.model
    }

    fn count_prompt_tokens(&self, request: &ChatRequest) -> u64 {
        let mut counted = request.clone();
        if self.config.structured == Structured::Prompt
            && let Some(schema) = &request.schema
        {
            // The instruction becomes prompt text; count it as such.
            counted.messages.insert(
                0,
                compass_engine::llm::ChatMessage::system(schema_instruction(schema)),
            );
        }
        tokens::count(&self.config.model, &counted)
    }

    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, LlmError> {
        let reply = self
            .transport
            .post_json(&self.url, &self.body(request))
            .await?;
        self.read(request, &reply)
    }
}

fn role(r: Role) -> &'static str {
    match r {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
    }
}

/// The instruction that carries a schema in the prompt.
pub(crate) fn schema_instruction(schema: &JsonSchema) -> String {
    format!(
        "Answer with one JSON object and nothing else (no prose, no code fence). It must \
         match this JSON Schema ({}: {}):\n{}",
        schema.name, schema.description, schema.schema
    )
}
