//! Language-model providers behind `compass_engine::llm::LanguageModel`: OpenAI-compatible
//! chat completions ([`openai`]), Anthropic Messages ([`anthropic`]), prompt-token
//! counting ([`tokens`]) and, with the `local-llm` feature, an in-process GGUF model
//! ([`local`]).

pub mod anthropic;
#[cfg(feature = "local-llm")]
pub mod local;
pub mod openai;
pub mod tokens;
mod transport;

pub use transport::{MAX_REPLY_BYTES, MAX_RETRY_AFTER};

use crate::config::llm::{LlmSettings, ProviderKind};
use crate::http::RetryPolicy;
use compass_engine::llm::{LanguageModel, LlmError};
use std::sync::Arc;

/// The model `[llm]` configures. Reads the API key now, so a missing key is reported
/// before any investigation starts.
pub fn build(settings: &LlmSettings) -> Result<Arc<dyn LanguageModel>, LlmError> {
    let provider = settings.provider.as_str();
    let config_error = |detail: String| LlmError::Config {
        provider: provider.to_string(),
        detail,
    };
    let retry = RetryPolicy {
        max_retries: settings.retries,
        initial_backoff: std::time::Duration::from_millis(500),
        max_backoff: std::time::Duration::from_secs(8),
    };
    let api_key = settings.api_key.resolve().map_err(config_error)?;
    match settings.provider {
        ProviderKind::Openai => {
            let structured = openai::Structured::parse(&settings.structured).ok_or_else(|| {
                config_error(format!(
                    "structured = \"{}\" is not one of json_schema, tool, prompt",
                    settings.structured
                ))
            })?;
            Ok(Arc::new(openai::OpenAiModel::new(openai::OpenAiConfig {
                base_url: settings
                    .base_url
                    .clone()
                    .unwrap_or_else(|| openai::DEFAULT_BASE_URL.to_string()),
                api_key,
                model: settings.model.clone(),
                timeout: settings.timeout,
                retry,
                structured,
                provider: provider.to_string(),
            })?))
        }
        ProviderKind::Anthropic => Ok(Arc::new(anthropic::AnthropicModel::new(
            anthropic::AnthropicConfig {
                base_url: settings
                    .base_url
                    .clone()
                    .unwrap_or_else(|| anthropic::DEFAULT_BASE_URL.to_string()),
                api_key,
                model: settings.model.clone(),
                timeout: settings.timeout,
                retry,
            },
        )?)),
        ProviderKind::Local => build_local(settings),
    }
}

#[cfg(feature = "local-llm")]
fn build_local(settings: &LlmSettings) -> Result<Arc<dyn LanguageModel>, LlmError> {
    local::LocalModel::load(settings).map(|m| Arc::new(m) as Arc<dyn LanguageModel>)
}

#[cfg(not(feature = "local-llm"))]
fn build_local(_settings: &LlmSettings) -> Result<Arc<dyn LanguageModel>, LlmError> {
    Err(LlmError::Config {
        provider: "local".into(),
        detail: "this build has no in-process models; rebuild with `cargo install --path \
                 crates/compass --features local-llm` (needs cmake and clang), or run the \
                 model in Ollama / llama.cpp server and use provider = \"openai\" with its \
                 base_url"
            .into(),
    })
}
