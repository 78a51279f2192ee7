//! The LLM layer (design §7): the `LanguageModel` port every provider implements, the
//! pricing table, the cost ledger port, structured outputs and their validation, the
//! follow-up query checks, and the steps that use a model on top of the deterministic
//! investigation (extra hypotheses, follow-up queries, the human summary).
//!
//! COMPASS works without any of this: every step here is optional, bounded by the
//! investigation's budget, and falls back to the deterministic result (saying why)
//! when the model is unavailable, too expensive, or answers nonsense.

pub mod analyst;
pub mod digest;
pub mod ledger;
pub mod metered;
pub mod output;
pub mod pricing;
pub mod queries;

pub use analyst::{AnalysisEnv, AnalystConfig, LlmAnalyst};
pub use ledger::{CallOutcome, CostLedger, LedgerEntry, LedgerError, MemoryLedger, utc_day};
pub use metered::Metered;
pub use pricing::{Price, PriceTable};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use thiserror::Error;

/// Who said a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    System,
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
}

impl ChatMessage {
    pub fn system(content: impl Into<String>) -> Self {
        Self {
            role: Role::System,
            content: content.into(),
        }
    }
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: content.into(),
        }
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Self {
            role: Role::Assistant,
            content: content.into(),
        }
    }
}

/// The JSON shape an answer must have. Providers that support it enforce the schema
/// (OpenAI `response_format: json_schema`, a forced tool call, a grammar); the others
/// get it in the prompt. Either way the engine validates the answer itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonSchema {
    /// A short identifier (`[a-zA-Z0-9_-]`, used as the tool or schema name).
    pub name: String,
    /// What the answer is for (the tool description).
    pub description: String,
    /// A JSON Schema (draft 2020-12 subset: object, array, string, number, integer,
    /// boolean, enum, required, properties, items, maxItems, maxLength).
    pub schema: serde_json::Value,
}

/// One call to a model.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    /// The system message first, then the conversation.
    pub messages: Vec<ChatMessage>,
    /// Most completion tokens the answer may use (also the basis of the cost estimate).
    pub max_tokens: u32,
    pub temperature: f32,
    /// When set, the answer must be one JSON value of this shape.
    pub schema: Option<JsonSchema>,
}

/// Tokens of one call, as the provider reported them (or as counted, when it did not).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// A model's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatResponse {
    /// The text of the answer; with a schema, the JSON text (tool arguments included).
    pub content: String,
    /// Usage as the provider reported it; `None` when it reported none.
    pub usage: Option<Usage>,
    /// The model that answered, as the provider named it.
    pub model: String,
    /// Why generation stopped (`stop`, `length`, `tool_calls`, `end_turn`, ...).
    pub finish_reason: Option<String>,
}

impl ChatResponse {
    /// The usage to charge: what the provider reported, else `counted_prompt` and the
    /// answer's bytes / 4 for the completion. `true` when it was reported.
    pub fn usage_or_counted(&self, counted_prompt: u64) -> (Usage, bool) {
        match self.usage {
            Some(u) => (u, true),
            None => (
                Usage {
                    prompt_tokens: counted_prompt,
                    completion_tokens: (self.content.len() as u64).div_ceil(4),
                },
                false,
            ),
        }
    }
}

/// What went wrong calling a model.
#[derive(Debug, Clone, Error, PartialEq)]
pub enum LlmError {
    #[error("{provider}: timed out after {} s", .after.as_secs_f64())]
    Timeout { provider: String, after: Duration },
    /// Cannot connect, 5xx, or 429 after the retries.
    #[error("{provider}: unavailable: {detail}")]
    Unavailable { provider: String, detail: String },
    /// The provider refused the request (4xx other than 429): wrong key, unknown
    /// model, a request it cannot serve. Not retried.
    #[error("{provider}: rejected the request: {detail}")]
    Rejected { provider: String, detail: String },
    /// The answer could not be read (malformed JSON, truncated, too large, no content).
    #[error("{provider}: bad response: {detail}")]
    BadResponse { provider: String, detail: String },
    /// The call was not made: its estimated cost exceeds what is left.
    #[error("budget exhausted: {0}")]
    BudgetExceeded(String),
    /// A misconfigured provider (no model file, bad URL).
    #[error("{provider}: {detail}")]
    Config { provider: String, detail: String },
}

/// A coarse class of [`LlmError`], for retries, fallbacks and exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LlmErrorKind {
    Timeout,
    Unavailable,
    BadInput,
    BadResponse,
    BudgetExceeded,
}

impl LlmError {
    pub fn kind(&self) -> LlmErrorKind {
        match self {
            LlmError::Timeout { .. } => LlmErrorKind::Timeout,
            LlmError::Unavailable { .. } => LlmErrorKind::Unavailable,
            LlmError::Rejected { .. } | LlmError::Config { .. } => LlmErrorKind::BadInput,
            LlmError::BadResponse { .. } => LlmErrorKind::BadResponse,
            LlmError::BudgetExceeded(_) => LlmErrorKind::BudgetExceeded,
        }
    }
}

/// A chat model: OpenAI-compatible servers, Anthropic, an in-process GGUF model, or a
/// scripted one in tests. Implementations do their own timeouts and retries (429 and
/// 5xx with backoff, honouring `Retry-After`; never 4xx).
#[async_trait]
pub trait LanguageModel: Send + Sync {
    /// The configured provider name (appears in reports and the ledger).
    fn provider(&self) -> &str;
    /// The model id the pricing table is keyed by (e.g. `gpt-4o-mini`).
    fn model(&self) -> &str;
    /// Prompt tokens `request` will cost, counted before the call: exact BPE counting
    /// for OpenAI models, a documented approximation for the others.
    fn count_prompt_tokens(&self, request: &ChatRequest) -> u64;
    /// Make the call.
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, LlmError>;
}

/// The approximate token count used where no exact tokenizer is known: about four
/// bytes of UTF-8 text per token (BPE vocabularies of current models average 3.5–4.5
/// on English and JSON), plus four tokens of framing per message, rounded up. It
/// over-counts dense text slightly, which errs on the side of the budget.
pub fn approximate_tokens(request: &ChatRequest) -> u64 {
    let text: usize = request.messages.iter().map(|m| m.content.len()).sum();
    let schema = request
        .schema
        .as_ref()
        .map(|s| s.schema.to_string().len() + s.description.len())
        .unwrap_or(0);
    ((text + schema) as u64).div_ceil(4) + 4 * request.messages.len() as u64 + 3
}
