//! The `[llm]` section of `compass.toml`: which model, how it is reached, what it may
//! spend, what it costs and what is redacted. No section: COMPASS runs without a model.
//!
//! ```toml
//! [llm]
//! provider = "openai"            # openai | anthropic | local
//! model = "gpt-4o-mini"
//! api_key_env = "OPENAI_API_KEY" # or api_key_file; never inline in a shared file
//! budget_usd = 0.05              # per investigation (`--budget` overrides)
//! daily_budget_usd = 2.0
//! [llm.pricing."my-finetune"]
//! input_per_mtok = 0.3
//! output_per_mtok = 1.2
//! ```
//!
//! The API key is read when a model is built, not when the file is loaded, so a run
//! that uses no model never needs it.

use compass_core::redact::{RedactionConfig, Redactor};
use compass_engine::llm::analyst::{AnalystConfig, STEPS};
use compass_engine::llm::{Price, PriceTable};
use secrecy::SecretString;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Which kind of provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// OpenAI chat completions and compatible servers (Groq, Ollama, vLLM, llama.cpp).
    Openai,
    /// Anthropic Messages.
    Anthropic,
    /// A GGUF model in-process (cargo feature `local-llm`).
    Local,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Openai => "openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Local => "local",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LlmSection {
    provider: ProviderKind,
    model: Option<String>,
    base_url: Option<String>,
    api_key_env: Option<String>,
    api_key_file: Option<PathBuf>,
    /// openai: json_schema | tool | prompt.
    structured: Option<String>,
    timeout: Option<String>,
    retries: Option<u32>,
    /// local: the GGUF file.
    model_path: Option<PathBuf>,
    context_tokens: Option<u32>,
    budget_usd: Option<f64>,
    daily_budget_usd: Option<f64>,
    max_tokens: Option<BTreeMap<String, u32>>,
    split: Option<BTreeMap<String, f64>>,
    pricing: Option<BTreeMap<String, Price>>,
    redaction: Option<RedactionSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RedactionSection {
    emails: Option<bool>,
    ips: Option<bool>,
    /// name = "regex"
    patterns: Option<BTreeMap<String, String>>,
}

/// Where the API key comes from.
#[derive(Debug, Clone)]
pub enum ApiKey {
    None,
    Env(String),
    File(PathBuf),
}

impl ApiKey {
    /// Read the key now. `Ok(None)`: no key configured.
    pub fn resolve(&self) -> Result<Option<SecretString>, String> {
        match self {
            ApiKey::None => Ok(None),
            ApiKey::Env(var) => match std::env::var(var) {
                Ok(v) if !v.trim().is_empty() => Ok(Some(SecretString::from(v.trim().to_string()))),
                _ => Err(format!(
                    "the API key variable `{var}` is not set; export it, or set `api_key_env` \
                     or `api_key_file` in [llm]"
                )),
            },
            ApiKey::File(p) => std::fs::read_to_string(p)
                .map(|v| Some(SecretString::from(v.trim().to_string())))
                .map_err(|e| format!("cannot read the API key file {}: {e}", p.display())),
        }
    }
}

/// Validated `[llm]` settings.
#[derive(Debug, Clone)]
pub struct LlmSettings {
    pub provider: ProviderKind,
    /// The model id (for `local`, the GGUF file stem unless set).
    pub model: String,
    pub base_url: Option<String>,
    pub api_key: ApiKey,
    /// openai only: `json_schema`, `tool` or `prompt`.
    pub structured: String,
    pub timeout: Duration,
    pub retries: u32,
    pub model_path: Option<PathBuf>,
    pub context_tokens: u32,
    /// Default investigation budget in USD (`--budget` overrides).
    pub budget_usd: Option<f64>,
    pub daily_budget_usd: Option<f64>,
    pub prices: PriceTable,
    pub analyst: AnalystConfig,
}

impl LlmSettings {
    /// What the model costs; `local` is free. A remote model with no price cannot be
    /// held to a budget, so that is an error naming the fix.
    pub fn price(&self) -> Result<Price, String> {
        if self.provider == ProviderKind::Local {
            return Ok(self.prices.lookup(&self.model).unwrap_or(Price::FREE));
        }
        self.prices.lookup(&self.model).ok_or_else(|| {
            format!(
                "no price is known for model `{}`; add it to compass.toml:\n  [llm.pricing.\"{}\"]\n  \
                 input_per_mtok = <USD per million prompt tokens>\n  output_per_mtok = <USD per \
                 million completion tokens>\n(0 and 0 for a self-hosted model)",
                self.model, self.model
            )
        })
    }
}

fn positive_usd(what: &str, v: Option<f64>) -> Result<Option<f64>, String> {
    match v {
        Some(x) if !x.is_finite() || x < 0.0 => Err(format!(
            "{what} = {x} must be a non-negative number of US dollars"
        )),
        other => Ok(other),
    }
}

pub(super) fn validate(
    s: LlmSection,
    service_label: &str,
    base_dir: Option<&Path>,
) -> Result<LlmSettings, String> {
    let resolve = |p: &Path| match base_dir {
        Some(b) if p.is_relative() => b.join(p),
        _ => p.to_path_buf(),
    };
    let provider = s.provider;
    let model_path = s.model_path.as_deref().map(resolve);
    if provider == ProviderKind::Local {
        if model_path.is_none() {
            return Err("provider = \"local\" needs `model_path` (a GGUF file)".into());
        }
        for (field, set) in [
            ("base_url", s.base_url.is_some()),
            ("api_key_env", s.api_key_env.is_some()),
            ("api_key_file", s.api_key_file.is_some()),
            ("structured", s.structured.is_some()),
        ] {
            if set {
                return Err(format!("`{field}` does not apply to provider = \"local\""));
            }
        }
    } else {
        if model_path.is_some() || s.context_tokens.is_some() {
            return Err(format!(
                "`model_path` and `context_tokens` are for provider = \"local\", not \"{}\"",
                provider.as_str()
            ));
        }
        if let Some(u) = &s.base_url
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            return Err(format!(
                "base_url = \"{u}\" must start with http:// or https://"
            ));
        }
    }
    let model = match (&s.model, &model_path) {
        (Some(m), _) if !m.trim().is_empty() => m.trim().to_string(),
        (_, Some(p)) if provider == ProviderKind::Local => p
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "local".into()),
        _ => {
            return Err(format!(
                "provider = \"{}\" needs `model` (e.g. {})",
                provider.as_str(),
                match provider {
                    ProviderKind::Anthropic => "\"claude-haiku-4-5\"",
                    _ => "\"gpt-4o-mini\"",
                }
            ));
        }
    };
    let api_key = match (s.api_key_env, s.api_key_file) {
        (Some(_), Some(_)) => return Err("set only one of api_key_env and api_key_file".into()),
        (Some(v), None) => ApiKey::Env(v),
        (None, Some(f)) => ApiKey::File(resolve(&f)),
        (None, None) => match provider {
            ProviderKind::Anthropic => ApiKey::Env("ANTHROPIC_API_KEY".into()),
            // A compatible server elsewhere (Ollama, vLLM) usually needs no key.
            ProviderKind::Openai if s.base_url.is_none() => ApiKey::Env("OPENAI_API_KEY".into()),
            _ => ApiKey::None,
        },
    };
    let structured = s.structured.unwrap_or_else(|| "json_schema".into());
    if !["json_schema", "tool", "prompt"].contains(&structured.as_str()) {
        return Err(format!(
            "structured = \"{structured}\": use \"json_schema\", \"tool\" or \"prompt\""
        ));
    }
    let timeout = match &s.timeout {
        Some(t) => {
            let d = humantime::parse_duration(t)
                .map_err(|e| format!("timeout = \"{t}\": {e} (write e.g. \"60s\")"))?;
            if d.is_zero() {
                return Err("timeout must be more than zero".into());
            }
            d
        }
        None if provider == ProviderKind::Local => Duration::from_secs(120),
        None => Duration::from_secs(60),
    };
    let retries = s.retries.unwrap_or(2);
    if retries > 10 {
        return Err(format!("retries = {retries} is too many (at most 10)"));
    }
    let budget_usd = positive_usd("budget_usd", s.budget_usd)?;
    let daily_budget_usd = positive_usd("daily_budget_usd", s.daily_budget_usd)?;

    let mut analyst = AnalystConfig {
        daily_budget_usd,
        service_label: service_label.to_string(),
        ..AnalystConfig::default()
    };
    if let Some(mt) = s.max_tokens {
        for (step, n) in mt {
            if !STEPS.contains(&step.as_str()) {
                return Err(format!(
                    "max_tokens: unknown step `{step}` (steps: {})",
                    STEPS.join(", ")
                ));
            }
            if !(16..=16_384).contains(&n) {
                return Err(format!("max_tokens.{step} = {n}: use 16 to 16384"));
            }
            analyst.max_tokens.insert(step, n);
        }
    }
    if let Some(split) = s.split {
        for (step, w) in &split {
            if !STEPS.contains(&step.as_str()) {
                return Err(format!(
                    "split: unknown step `{step}` (steps: {})",
                    STEPS.join(", ")
                ));
            }
            if !w.is_finite() || *w < 0.0 {
                return Err(format!("split.{step} = {w} must be a non-negative weight"));
            }
        }
        for step in STEPS {
            analyst
                .shares
                .insert(step.to_string(), split.get(step).copied().unwrap_or(1.0));
        }
    }
    let mut prices = PriceTable::default();
    for (m, p) in s.pricing.unwrap_or_default() {
        for (what, v) in [
            ("input_per_mtok", p.input_per_mtok),
            ("output_per_mtok", p.output_per_mtok),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(format!("pricing.\"{m}\".{what} = {v} must be non-negative"));
            }
        }
        prices.set(m, p);
    }
    if let Some(r) = s.redaction {
        analyst.redaction = RedactionConfig {
            emails: r.emails.unwrap_or(true),
            ips: r.ips.unwrap_or(true),
            custom: r.patterns.unwrap_or_default().into_iter().collect(),
        };
        Redactor::new(&analyst.redaction).map_err(|e| format!("redaction: {e}"))?;
    }
    Ok(LlmSettings {
        provider,
        model,
        base_url: s.base_url,
        api_key,
        structured,
        timeout,
        retries,
        model_path,
        context_tokens: s.context_tokens.unwrap_or(4096),
        budget_usd,
        daily_budget_usd,
        prices,
        analyst,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::Settings;

    fn parse(llm: &str) -> Result<Settings, String> {
        Settings::parse(&format!("version = 1\n{llm}"), "t.toml", None).map_err(|e| e.to_string())
    }

    #[test]
    fn no_section_means_no_model() {
        assert!(parse("").unwrap().llm.is_none());
    }

    #[test]
    fn openai_defaults_and_overrides() {
        let s = parse(
            "[llm]\nprovider = \"openai\"\nmodel = \"gpt-4o-mini\"\nbudget_usd = 0.05\n\
             daily_budget_usd = 2\n[llm.split]\nhypotheses = 2\n[llm.max_tokens]\nsummary = 300\n\
             [llm.redaction]\nips = false\npatterns = { ticket = \"TCK-[0-9]+\" }\n",
        )
        .unwrap();
        let l = s.llm.unwrap();
        assert!(matches!(&l.api_key, super::ApiKey::Env(v) if v == "OPENAI_API_KEY"));
        assert_eq!(l.budget_usd, Some(0.05));
        assert_eq!(l.analyst.daily_budget_usd, Some(2.0));
        assert_eq!(l.analyst.shares["hypotheses"], 2.0);
        assert_eq!(l.analyst.shares["summary"], 1.0);
        assert_eq!(l.analyst.max_tokens["summary"], 300);
        assert!(!l.analyst.redaction.ips);
        assert_eq!(l.price().unwrap().input_per_mtok, 0.15);
    }

    #[test]
    fn unknown_models_need_a_price_and_local_is_free() {
        let s = parse("[llm]\nprovider = \"openai\"\nbase_url = \"http://localhost:11434/v1\"\nmodel = \"qwen3:8b\"\n")
            .unwrap();
        let l = s.llm.unwrap();
        assert!(matches!(l.api_key, super::ApiKey::None));
        let e = l.price().unwrap_err();
        assert!(e.contains("[llm.pricing.\"qwen3:8b\"]"), "{e}");
        let s = parse("[llm]\nprovider = \"local\"\nmodel_path = \"/m/SmolLM2.gguf\"\n").unwrap();
        let l = s.llm.unwrap();
        assert_eq!(l.model, "SmolLM2");
        assert_eq!(l.price().unwrap(), compass_engine::llm::Price::FREE);
    }

    #[test]
    fn mistakes_are_named() {
        for (text, needle) in [
            ("[llm]\nprovider = \"gemini\"\nmodel = \"x\"\n", "provider"),
            ("[llm]\nprovider = \"openai\"\n", "needs `model`"),
            ("[llm]\nprovider = \"local\"\n", "model_path"),
            (
                "[llm]\nprovider = \"openai\"\nmodel = \"m\"\nbudget_usd = -1\n",
                "budget_usd",
            ),
            (
                "[llm]\nprovider = \"openai\"\nmodel = \"m\"\n[llm.split]\nplanning = 1\n",
                "unknown step",
            ),
            (
                "[llm]\nprovider = \"openai\"\nmodel = \"m\"\nstructured = \"xml\"\n",
                "structured",
            ),
            (
                "[llm]\nprovider = \"anthropic\"\nmodel = \"m\"\nmodel_path = \"x.gguf\"\n",
                "model_path",
            ),
            (
                "[llm]\nprovider = \"openai\"\nmodel = \"m\"\n[llm.redaction]\npatterns = { bad = \"(\" }\n",
                "redaction",
            ),
            (
                "[llm]\nprovider = \"openai\"\nmodel = \"m\"\ntemperature = 1\n",
                "unknown field",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }
}
