//! The LLM layer as the CLI uses it: building the analyst from `[llm]` (model, price,
//! the cost ledger in the data directory), `compass llm check` (one tiny call:
//! latency, tokens, cost) and `compass cost` (spend from the ledger).

use crate::cli::{Outcome, UsageError};
use crate::report::cost::{CostOptions, cost_json, cost_report};
use anyhow::{Context, Result};
use compass_adapters::config::Settings;
use compass_adapters::config::llm::LlmSettings;
use compass_adapters::store::FileLedger;
use compass_engine::llm::{ChatMessage, ChatRequest, JsonSchema, LlmAnalyst, utc_day};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// The per-investigation budget when neither `--budget` nor `budget_usd` sets one.
pub const DEFAULT_BUDGET_USD: f64 = 0.25;

/// The `[llm]` section of a config file; an error when it has none.
pub fn load_llm_settings(path: &Path) -> Result<LlmSettings> {
    let settings = Settings::load(path).map_err(|e| UsageError(e.to_string()))?;
    settings.llm.ok_or_else(|| {
        UsageError(format!(
            "{} has no [llm] section; see docs/configuration.md",
            path.display()
        ))
        .into()
    })
}

/// The analyst `[llm]` describes, recording spend in the default ledger.
pub fn analyst(settings: &LlmSettings) -> Result<Arc<LlmAnalyst>> {
    analyst_with_ledger(
        settings,
        Arc::new(FileLedger::new(FileLedger::default_path())),
    )
}

/// The analyst `[llm]` describes, recording spend in `ledger` (the service's store).
pub fn analyst_with_ledger(
    settings: &LlmSettings,
    ledger: Arc<dyn compass_engine::llm::CostLedger>,
) -> Result<Arc<LlmAnalyst>> {
    let model = compass_adapters::llm::build(settings)?;
    let price = settings.price().map_err(UsageError)?;
    let analyst = LlmAnalyst::new(model, price, ledger, settings.analyst.clone())
        .map_err(|e| UsageError(format!("[llm] {e}")))?;
    Ok(Arc::new(analyst))
}

/// `compass llm check`: one tiny structured call through the configured provider.
pub async fn check(config: &Path, color: bool) -> Result<Outcome> {
    let settings = load_llm_settings(config)?;
    let price = settings.price().map_err(UsageError)?;
    let model = compass_adapters::llm::build(&settings)?;
    let request = ChatRequest {
        messages: vec![
            ChatMessage::system("You check that a connection works. Answer briefly."),
            ChatMessage::user("Reply with {\"ok\": true}."),
        ],
        max_tokens: 20,
        temperature: 0.0,
        schema: Some(JsonSchema {
            name: "connection_check".into(),
            description: "Confirms the model answers".into(),
            schema: json!({
                "type": "object",
                "properties": {"ok": {"type": "boolean"}},
                "required": ["ok"]
            }),
        }),
    };
    let counted = model.count_prompt_tokens(&request);
    let where_ = settings
        .base_url
        .clone()
        .or_else(|| {
            settings
                .model_path
                .as_ref()
                .map(|p| p.display().to_string())
        })
        .unwrap_or_else(|| "default endpoint".into());
    println!(
        "{} {} · model {} · {where_}",
        paint(color, BOLD, "llm check"),
        model.provider(),
        model.model()
    );
    let started = Instant::now();
    let answer = model.complete(&request).await;
    let latency = started.elapsed();
    let answer = match answer {
        Ok(a) => a,
        Err(e) => {
            println!("{} {e}", paint(color, RED, "FAIL"));
            return Err(anyhow::anyhow!("the model did not answer"));
        }
    };
    let (usage, reported) = answer.usage_or_counted(counted);
    let source = if reported {
        "reported by the provider"
    } else {
        "counted (the provider reported none)"
    };
    let valid = serde_json::from_str::<serde_json::Value>(answer.content.trim())
        .ok()
        .and_then(|v| v.get("ok").and_then(|ok| ok.as_bool()))
        .is_some();
    let status = if valid {
        paint(color, GREEN, "ok  ")
    } else {
        paint(color, AMBER, "warn")
    };
    println!(
        "{status} answered in {:.2} s as {} (finish: {})",
        latency.as_secs_f64(),
        answer.model,
        answer.finish_reason.as_deref().unwrap_or("-")
    );
    println!(
        "     tokens: {} prompt ({counted} counted before the call) + {} completion, {source}",
        usage.prompt_tokens, usage.completion_tokens
    );
    println!(
        "     cost:   ${:.6} at ${}/M in, ${}/M out",
        price.cost(usage),
        price.input_per_mtok,
        price.output_per_mtok
    );
    let shown: String = answer.content.chars().take(120).collect();
    println!("     answer: {}", shown.replace('\n', " "));
    if !valid {
        println!(
            "     the answer is not the JSON asked for: investigations will repair once and \
             then fall back; try structured = \"tool\" or \"prompt\" for this server"
        );
    }
    Ok(Outcome::Done)
}

/// `compass cost`: spend from the ledger over the last `days` UTC days.
pub fn cost(days: u32, as_json: bool, config: Option<&Path>, color: bool) -> Result<Outcome> {
    let daily_budget = match config {
        Some(path) => load_llm_settings(path)?.daily_budget_usd,
        None => None,
    };
    let ledger = FileLedger::new(FileLedger::default_path());
    let (entries, problems) = ledger
        .read_all()
        .with_context(|| format!("cannot read the cost ledger {}", ledger.path().display()))?;
    for p in &problems {
        eprintln!("warning: {p}");
    }
    let now = chrono::Utc::now().timestamp_millis();
    let since = utc_day(now).start - i64::from(days.max(1) - 1) * 86_400_000;
    let entries: Vec<_> = entries.into_iter().filter(|e| e.at >= since).collect();
    if as_json {
        let mut v = cost_json(&entries);
        v["ledger"] = json!(ledger.path().display().to_string());
        v["days"] = json!(days.max(1));
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "ledger {} · last {} day(s)",
            ledger.path().display(),
            days.max(1)
        );
        print!(
            "{}",
            cost_report(
                &entries,
                &CostOptions {
                    color,
                    daily_budget_usd: daily_budget,
                    ..Default::default()
                }
            )
        );
    }
    Ok(Outcome::Done)
}

const BOLD: anstyle::Style = anstyle::Style::new().bold();
const GREEN: anstyle::Style = anstyle::AnsiColor::Green.on_default();
const AMBER: anstyle::Style = anstyle::AnsiColor::Yellow.on_default();
const RED: anstyle::Style = anstyle::AnsiColor::Red.on_default().bold();

fn paint(color: bool, style: anstyle::Style, text: &str) -> String {
    if color {
        format!("{style}{text}{style:#}")
    } else {
        text.to_string()
    }
}
