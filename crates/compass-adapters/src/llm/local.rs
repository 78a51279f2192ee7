//! The `local` provider: a GGUF model run in-process by llama.cpp (through
//! `llama-cpp-2`), for teams with no external API. Built only with the `local-llm`
//! cargo feature (it compiles the vendored llama.cpp with cmake and clang).
//!
//! - The prompt is the model's own chat template applied to the messages, so prompt
//!   tokens are counted exactly with the model's vocabulary before the call.
//! - A schema becomes a GBNF grammar (llama.cpp's JSON-schema converter) that
//!   constrains sampling, so even a 135M-parameter model answers with JSON of the right
//!   shape; the schema is also described in the system message so the model knows
//!   what the fields mean. The engine still validates the values.
//! - Generation runs on a blocking thread, one at a time (a small model saturates the
//!   cores), and stops at the per-call timeout with [`LlmError::Timeout`].
//! - Local models cost nothing; usage is reported as counted.

use super::openai::schema_instruction;
use crate::config::llm::LlmSettings;
use async_trait::async_trait;
use compass_engine::llm::{ChatRequest, ChatResponse, LanguageModel, LlmError, Role, Usage};
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

const PROVIDER: &str = "local";

/// llama.cpp's process-wide backend; initialised once.
fn backend() -> Result<&'static LlamaBackend, LlmError> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            let mut backend = LlamaBackend::init().map_err(|e| e.to_string())?;
            backend.void_logs();
            Ok(backend)
        })
        .as_ref()
        .map_err(|e| config(format!("cannot start llama.cpp: {e}")))
}

fn config(detail: String) -> LlmError {
    LlmError::Config {
        provider: PROVIDER.into(),
        detail,
    }
}

struct Loaded {
    model: LlamaModel,
    /// One generation at a time.
    busy: Mutex<()>,
}

/// A GGUF model loaded in memory.
pub struct LocalModel {
    id: String,
    path: PathBuf,
    context_tokens: u32,
    timeout: Duration,
    loaded: Arc<Loaded>,
}

impl std::fmt::Debug for LocalModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalModel")
            .field("id", &self.id)
            .field("path", &self.path)
            .field("context_tokens", &self.context_tokens)
            .finish()
    }
}

impl LocalModel {
    /// Load the model `[llm] model_path` names.
    pub fn load(settings: &LlmSettings) -> Result<Self, LlmError> {
        let path = settings.model_path.as_deref().ok_or_else(|| {
            config("provider = \"local\" needs `model_path`, the GGUF file to run".into())
        })?;
        Self::open(
            path,
            &settings.model,
            settings.context_tokens,
            settings.timeout,
        )
    }

    /// Load `path` as model `id` with a context of `context_tokens`.
    pub fn open(
        path: &Path,
        id: &str,
        context_tokens: u32,
        timeout: Duration,
    ) -> Result<Self, LlmError> {
        if !path.is_file() {
            return Err(config(format!(
                "the model file {} does not exist; set `model_path` to a GGUF file",
                path.display()
            )));
        }
        let backend = backend()?;
        let model = LlamaModel::load_from_file(backend, path, &LlamaModelParams::default())
            .map_err(|e| {
                config(format!(
                    "cannot load {} as a GGUF model ({e}); is it a llama.cpp-compatible .gguf file?",
                    path.display()
                ))
            })?;
        model.chat_template(None).map_err(|e| {
            config(format!(
                "{} has no chat template ({e}); use an instruction-tuned model",
                path.display()
            ))
        })?;
        let context_tokens = context_tokens.clamp(512, model.n_ctx_train().max(512));
        Ok(Self {
            id: id.to_string(),
            path: path.to_path_buf(),
            context_tokens,
            timeout,
            loaded: Arc::new(Loaded {
                model,
                busy: Mutex::new(()),
            }),
        })
    }

    /// The chat-templated prompt and its tokens.
    fn prompt(loaded: &Loaded, request: &ChatRequest) -> Result<Vec<LlamaToken>, LlmError> {
        let mut messages = Vec::new();
        let mut instruction = request.schema.as_ref().map(schema_instruction);
        for m in &request.messages {
            let role = match m.role {
                Role::System => "system",
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            let mut content = m.content.clone();
            if m.role == Role::System
                && let Some(i) = instruction.take()
            {
                content = format!("{content}\n\n{i}");
            }
            messages.push((role, content));
        }
        if let Some(i) = instruction {
            messages.insert(0, ("system", i));
        }
        let chat = messages
            .into_iter()
            .map(|(role, content)| LlamaChatMessage::new(role.into(), content.replace('\0', "")))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| config(format!("cannot build the chat: {e}")))?;
        let template = loaded
            .model
            .chat_template(None)
            .map_err(|e| config(format!("no chat template: {e}")))?;
        let text = loaded
            .model
            .apply_chat_template(&template, &chat, true)
            .map_err(|e| config(format!("cannot apply the chat template: {e}")))?;
        Ok(loaded.model.vocab().tokenize(text.as_bytes(), true, true))
    }
}

#[async_trait]
impl LanguageModel for LocalModel {
    fn provider(&self) -> &str {
        PROVIDER
    }

    fn model(&self) -> &str {
        &self.id
    }

    /// Exact: the templated prompt tokenised with the model's own vocabulary.
    fn count_prompt_tokens(&self, request: &ChatRequest) -> u64 {
        Self::prompt(&self.loaded, request)
            .map(|t| t.len() as u64)
            .unwrap_or_else(|_| compass_engine::llm::approximate_tokens(request))
    }

    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, LlmError> {
        let loaded = Arc::clone(&self.loaded);
        let request = request.clone();
        let (n_ctx, timeout, id) = (self.context_tokens, self.timeout, self.id.clone());
        tokio::task::spawn_blocking(move || generate(&loaded, &request, n_ctx, timeout, id))
            .await
            .map_err(|e| LlmError::Unavailable {
                provider: PROVIDER.into(),
                detail: format!("the generation thread failed: {e}"),
            })?
    }
}

fn generate(
    loaded: &Loaded,
    request: &ChatRequest,
    n_ctx: u32,
    timeout: Duration,
    id: String,
) -> Result<ChatResponse, LlmError> {
    let _turn = loaded.busy.lock().unwrap_or_else(|p| p.into_inner());
    let started = Instant::now();
    let prompt = LocalModel::prompt(loaded, request)?;
    let room = n_ctx as usize;
    if prompt.len() + request.max_tokens as usize > room {
        return Err(LlmError::Rejected {
            provider: PROVIDER.into(),
            detail: format!(
                "the prompt ({} tokens) and answer ({} tokens) do not fit the {room}-token \
                 context; raise `context_tokens` in [llm]",
                prompt.len(),
                request.max_tokens
            ),
        });
    }
    let threads = std::thread::available_parallelism()
        .map(|n| n.get() as i32)
        .unwrap_or(2);
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(n_ctx))
        .with_n_batch(n_ctx)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    let backend = backend()?;
    let mut ctx = loaded
        .model
        .new_context(backend, params)
        .map_err(|e| config(format!("cannot create a {n_ctx}-token context: {e}")))?;
    let mut sampler = sampler(&loaded.model, request)?;

    let failed = |what: &str, e: String| LlmError::Unavailable {
        provider: PROVIDER.into(),
        detail: format!("{what}: {e}"),
    };
    let mut batch = LlamaBatch::new(room, 1);
    let last = prompt.len() as i32 - 1;
    for (i, token) in prompt.iter().enumerate() {
        batch
            .add(*token, i as i32, &[0], i as i32 == last)
            .map_err(|e| failed("cannot queue the prompt", e.to_string()))?;
    }
    ctx.decode(&mut batch)
        .map_err(|e| failed("cannot read the prompt", e.to_string()))?;

    let vocab = loaded.model.vocab();
    let mut out: Vec<u8> = Vec::new();
    let mut generated = 0u64;
    let mut finish = "length";
    let mut pos = prompt.len() as i32;
    while generated < u64::from(request.max_tokens) {
        if started.elapsed() > timeout {
            return Err(LlmError::Timeout {
                provider: PROVIDER.into(),
                after: timeout,
            });
        }
        let token = sampler.sample(&ctx, batch.n_tokens() - 1);
        if vocab.is_eog(token) {
            finish = "stop";
            break;
        }
        out.extend(vocab.token_to_piece(token, false, None));
        generated += 1;
        batch.clear();
        batch
            .add(token, pos, &[0], true)
            .map_err(|e| failed("cannot queue a token", e.to_string()))?;
        pos += 1;
        ctx.decode(&mut batch)
            .map_err(|e| failed("generation failed", e.to_string()))?;
    }
    let content = String::from_utf8_lossy(&out).trim().to_string();
    if content.is_empty() {
        return Err(LlmError::BadResponse {
            provider: PROVIDER.into(),
            detail: format!("the model produced no text (finish_reason {finish})"),
        });
    }
    Ok(ChatResponse {
        content,
        usage: Some(Usage {
            prompt_tokens: prompt.len() as u64,
            completion_tokens: generated,
        }),
        model: id,
        finish_reason: Some(finish.into()),
    })
}

/// Grammar-constrained when a schema is asked for; greedy at temperature 0.
fn sampler(model: &LlamaModel, request: &ChatRequest) -> Result<LlamaSampler, LlmError> {
    let mut chain = Vec::new();
    if let Some(schema) = &request.schema {
        let grammar =
            llama_cpp_2::json_schema_to_grammar(&schema.schema.to_string()).map_err(|e| {
                config(format!(
                    "cannot turn schema `{}` into a grammar: {e}",
                    schema.name
                ))
            })?;
        chain.push(LlamaSampler::grammar(model, &grammar, "root").map_err(|e| {
            config(format!(
                "llama.cpp refused the grammar for `{}`: {e}",
                schema.name
            ))
        })?);
    }
    if request.temperature <= 0.0 {
        chain.push(LlamaSampler::greedy());
    } else {
        chain.push(LlamaSampler::top_k(40));
        chain.push(LlamaSampler::temp(request.temperature));
        chain.push(LlamaSampler::dist(0x5eed));
    }
    Ok(LlamaSampler::chain_simple(chain))
}
