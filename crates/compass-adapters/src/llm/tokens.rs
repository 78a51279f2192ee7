//! Prompt tokens before a call. OpenAI models are counted exactly with their BPE
//! vocabulary (`o200k_base` for the GPT-4o/4.1/5 and o-series, `cl100k_base` for GPT-4
//! and 3.5; `tiktoken-rs` embeds both), plus the chat framing OpenAI documents (3
//! tokens per message, 3 to prime the reply). Every other model (Anthropic, Llama,
//! Qwen, ... ) gets the `o200k_base` count × 1.2: their vocabularies are smaller, so
//! the same text costs up to ~20 % more tokens; over-counting errs on the side of the
//! budget, and the provider-reported usage after the call is what is charged.

use compass_engine::llm::ChatRequest;
use std::sync::OnceLock;
use tiktoken_rs::CoreBPE;

/// Which vocabulary an OpenAI model uses; `None` for models that are not OpenAI's.
pub fn openai_encoding(model: &str) -> Option<&'static str> {
    let m = model
        .rsplit('/')
        .next()
        .unwrap_or(model)
        .to_ascii_lowercase();
    let o200k = [
        "gpt-4o",
        "gpt-4.1",
        "gpt-4.5",
        "gpt-5",
        "chatgpt-4o",
        "o1",
        "o3",
        "o4",
    ];
    if o200k.iter().any(|p| m.starts_with(p)) {
        Some("o200k_base")
    } else if m.starts_with("gpt-4") || m.starts_with("gpt-3.5") {
        Some("cl100k_base")
    } else {
        None
    }
}

fn o200k() -> &'static CoreBPE {
    static BPE: OnceLock<CoreBPE> = OnceLock::new();
    BPE.get_or_init(|| tiktoken_rs::o200k_base().expect("the embedded o200k_base vocabulary loads"))
}

fn cl100k() -> &'static CoreBPE {
    static BPE: OnceLock<CoreBPE> = OnceLock::new();
    BPE.get_or_init(|| {
        tiktoken_rs::cl100k_base().expect("the embedded cl100k_base vocabulary loads")
    })
}

/// Exact prompt tokens for an OpenAI model; `None` for other models.
pub fn count_openai(model: &str, request: &ChatRequest) -> Option<u64> {
    let bpe = match openai_encoding(model)? {
        "o200k_base" => o200k(),
        _ => cl100k(),
    };
    Some(count_with(bpe, request))
}

/// Prompt tokens for any model: exact for OpenAI models, the approximation otherwise.
pub fn count(model: &str, request: &ChatRequest) -> u64 {
    count_openai(model, request)
        .unwrap_or_else(|| (count_with(o200k(), request) as f64 * 1.2).ceil() as u64)
}

fn count_with(bpe: &CoreBPE, request: &ChatRequest) -> u64 {
    let tokens = |s: &str| bpe.encode_ordinary(s).len() as u64;
    let messages: u64 = request
        .messages
        .iter()
        .map(|m| 3 + 1 + tokens(&m.content))
        .sum();
    // A schema travels as a tool or response format definition: count its text.
    let schema = request
        .schema
        .as_ref()
        .map(|s| tokens(&s.name) + tokens(&s.description) + tokens(&s.schema.to_string()) + 8)
        .unwrap_or(0);
    messages + schema + 3
}

#[cfg(test)]
mod tests {
    use super::*;
    use compass_engine::llm::{ChatMessage, approximate_tokens};

    fn request(text: &str) -> ChatRequest {
        ChatRequest {
            messages: vec![
                ChatMessage::system("You are terse."),
                ChatMessage::user(text),
            ],
            max_tokens: 10,
            temperature: 0.0,
            schema: None,
        }
    }

    #[test]
    fn openai_models_are_counted_exactly() {
        // "hello world" is 2 tokens in both vocabularies; "You are terse." is 4.
        let r = request("hello world");
        assert_eq!(count_openai("gpt-4o-mini", &r), Some(2 * 4 + 4 + 2 + 3));
        assert_eq!(count_openai("gpt-4", &r), Some(2 * 4 + 4 + 2 + 3));
        assert_eq!(openai_encoding("openai/gpt-5-mini"), Some("o200k_base"));
        assert_eq!(openai_encoding("claude-3-5-haiku-latest"), None);
        assert_eq!(count_openai("llama3.1:8b", &r), None);
    }

    #[test]
    fn other_models_get_a_larger_estimate() {
        let r = request(&"checkout latency p99 rose after the deploy; ".repeat(50));
        let exact = count_openai("gpt-4o", &r).unwrap();
        let estimate = count("claude-3-5-haiku-latest", &r);
        assert!(
            estimate > exact && estimate <= exact * 13 / 10,
            "{estimate} vs {exact}"
        );
        // Both stay in the same range as the engine's byte-based fallback.
        let rough = approximate_tokens(&r);
        assert!(
            rough * 2 > estimate && estimate * 2 > rough,
            "{rough} vs {estimate}"
        );
    }
}
