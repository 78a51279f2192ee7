//! Language-model providers behind `compass_engine::llm::LanguageModel`: OpenAI-compatible
//! chat completions ([`openai`]), Anthropic Messages ([`anthropic`]), prompt-token
//! counting ([`tokens`]) and, with the `local-llm` feature, an in-process GGUF model
//! ([`local`]).

pub mod anthropic;
#[cfg(feature = "local-llm")]
pub mod local;
pub mod openai;
pub mod tokens;
