//! `compass act`: remediation from the command line — plan a command from a JSON file,
//! approve it, run it (or dry-run it), roll it back, read the audit log — and the IRIS
//! pack's `propose` (diagnose `messages.log`, route each error to an agent, propose
//! commands) and `drill` (generate errors, deliver them through the durable outbox).
//! The same desk serves `/api/v1/actions`.

use crate::cli::{Outcome, UsageError};
use crate::report::act as show;
use anyhow::{Context, Result};
use compass_act::action::Command;
use compass_act::executor::LocalExecutor;
use compass_act::iris::diagnose::{self, Context as IrisContext, Proposal};
use compass_act::iris::generator::{Category, DrillLine, Generator};
use compass_act::iris::{cpf::CpfFile, messages, os};
use compass_act::outbox::Outbox;
use compass_act::router::Router;
use compass_act::service::{Desk, Record, Status};
use compass_adapters::config::llm::LlmSettings;
use compass_adapters::config::{ActSettings, Settings};
use compass_adapters::store::FileLedger;
use compass_engine::llm::{LanguageModel, Metered};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// LLM spend allowed for one `propose` or `drill generate` run when `--budget` is not
/// given, USD.
pub const DEFAULT_ACT_BUDGET_USD: f64 = 0.05;

/// The `[act]` settings (and `[llm]`, when present) of `config`; without a file, the
/// defaults: state in the data directory, nothing allowlisted, every command approved
/// by a human.
pub fn load(config: Option<&Path>) -> Result<(ActSettings, Option<LlmSettings>)> {
    match config {
        Some(p) => {
            let s = Settings::load(p).map_err(|e| UsageError(e.to_string()))?;
            Ok((s.act, s.llm))
        }
        None => Ok((
            ActSettings::with_state_dir(compass_adapters::store::data_dir().join("act")),
            None,
        )),
    }
}

/// The desk over the configured state directory, running programs locally.
pub fn desk(a: &ActSettings) -> Result<Desk> {
    Desk::open(&a.state_dir, a.runner.clone(), Arc::new(LocalExecutor)).with_context(|| {
        format!(
            "cannot open the remediation state in {}",
            a.state_dir.display()
        )
    })
}

/// Reads commands from a file (`-`: stdin) holding one JSON command or an array of them.
pub fn read_commands(path: &Path) -> Result<Vec<Command>> {
    let text = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin()).context("cannot read stdin")?
    } else {
        std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the command file {}", path.display()))?
    };
    let bad = |e: String| UsageError(format!("{}: {e}", path.display()));
    if text.trim_start().starts_with('[') {
        serde_json::from_str::<Vec<Command>>(&text)
            .map_err(|e| bad(format!("command JSON: {e}")).into())
    } else {
        compass_act::action::parse_command(&text)
            .map(|c| vec![c])
            .map_err(|e| bad(e).into())
    }
}

fn print_json(v: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// `compass act plan FILE…`: validate, plan and keep each command; prints the change.
pub async fn plan(
    a: &ActSettings,
    files: &[PathBuf],
    incident_type: &str,
    severity: &str,
    json: bool,
    color: bool,
) -> Result<Outcome> {
    let desk = desk(a)?;
    let mut commands = Vec::new();
    for f in files {
        commands.extend(read_commands(f)?);
    }
    let mut planned = Vec::new();
    for c in commands {
        let r = desk
            .plan(c, incident_type, severity)
            .await
            .map_err(|e| UsageError(e.to_string()))?;
        planned.push(r);
    }
    if json {
        print_json(&planned)?;
    } else {
        for r in &planned {
            print!("{}", show::record(r, color));
        }
    }
    Ok(Outcome::Done)
}

/// `compass act approve ID --by NAME`.
pub async fn approve(a: &ActSettings, id: &str, by: &str, color: bool) -> Result<Outcome> {
    let r = desk(a)?
        .approve(id, by)
        .await
        .map_err(|e| UsageError(e.to_string()))?;
    print!("{}", show::record(&r, color));
    println!("run it with: compass act run {id}");
    Ok(Outcome::Done)
}

fn ended(records: &[Record]) -> Outcome {
    if records.iter().all(|r| r.status == Status::Succeeded) {
        Outcome::Done
    } else {
        Outcome::ActionFailed
    }
}

/// `compass act run ID | --all [--dry-run]`.
pub async fn run(
    a: &ActSettings,
    id: Option<&str>,
    by: &str,
    dry_run: bool,
    json: bool,
    color: bool,
) -> Result<Outcome> {
    let desk = desk(a)?;
    if dry_run {
        let id = id.ok_or_else(|| UsageError("--dry-run needs a command id".into()))?;
        let (res, ran) = desk
            .dry_run(id)
            .await
            .map_err(|e| UsageError(e.to_string()))?;
        if json {
            print_json(&serde_json::json!({"result": res, "would_run": ran}))?;
        } else {
            print!("{}", show::record(&desk.get(id)?, color));
            println!("  dry run: nothing ran and no file changed; the steps would run:");
            for l in &ran {
                println!("    {l}");
            }
        }
        return Ok(Outcome::Done);
    }
    let records = match id {
        Some(id) => vec![match desk.run(id, by).await {
            Ok(r) => r,
            // the runner failed: the record says so; show it and fail
            Err(e) => match desk.get(id) {
                Ok(r) if r.status == Status::Failed => r,
                _ => return Err(UsageError(e.to_string()).into()),
            },
        }],
        None => desk.run_ready(by).await?,
    };
    if json {
        print_json(&records)?;
    } else if records.is_empty() {
        println!("Nothing is ready to run: approve a command first (compass act list).");
    } else {
        for r in &records {
            print!("{}", show::record(r, color));
        }
    }
    Ok(ended(&records))
}

/// `compass act rollback ID --by NAME`.
pub async fn rollback(a: &ActSettings, id: &str, by: &str, color: bool) -> Result<Outcome> {
    let r = desk(a)?
        .rollback(id, by)
        .await
        .map_err(|e| UsageError(e.to_string()))?;
    print!("{}", show::record(&r, color));
    Ok(if r.status == Status::RolledBack {
        Outcome::Done
    } else {
        Outcome::ActionFailed
    })
}

/// `compass act log [ID]`.
pub fn log(a: &ActSettings, id: Option<&str>, json: bool, color: bool) -> Result<Outcome> {
    let entries = desk(a)?.log(id)?;
    if json {
        print_json(&entries)?;
    } else {
        print!("{}", show::log(&entries, color));
    }
    Ok(Outcome::Done)
}

/// `compass act list`.
pub fn list(a: &ActSettings, json: bool, color: bool) -> Result<Outcome> {
    let records = desk(a)?.list()?;
    if json {
        print_json(&records)?;
    } else {
        print!("{}", show::list(&records, color));
    }
    Ok(Outcome::Done)
}

/// The configured model held to `budget_usd`, its calls in the cost ledger under
/// `step`; an error naming the missing `[llm]` section when there is none.
fn metered(
    llm: Option<&LlmSettings>,
    budget_usd: f64,
    step: &str,
) -> Result<Arc<dyn LanguageModel>> {
    let s = llm.ok_or_else(|| UsageError("--llm needs an [llm] section in the config".into()))?;
    let model = compass_adapters::llm::build(s)?;
    let price = s.price().map_err(UsageError)?;
    let ledger = Arc::new(FileLedger::new(FileLedger::default_path()));
    let purpose = format!("act-{step}-{}", chrono::Utc::now().format("%Y%m%dT%H%M%S"));
    Ok(Arc::new(Metered::new(
        model, price, budget_usd, ledger, step, &purpose,
    )))
}

/// What `propose` reads.
#[derive(Debug, Clone)]
pub struct ProposeArgs {
    pub messages: Option<PathBuf>,
    pub cpf: Option<PathBuf>,
    pub since: Option<String>,
    pub window: Duration,
    pub top: usize,
    pub incident: Option<String>,
    /// Plan the proposed commands on the desk too.
    pub plan: bool,
    pub use_llm: bool,
    pub budget_usd: f64,
}

fn hugepage_kb(a: &ActSettings) -> u64 {
    a.iris.hugepage_kb.unwrap_or_else(|| {
        std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| os::page_size_kb(&m))
            .unwrap_or(2048)
    })
}

/// Diagnoses `messages.log` and proposes commands; the proposals and (with `plan`) the
/// planned records.
pub async fn diagnose_and_propose(
    a: &ActSettings,
    llm: Option<&LlmSettings>,
    args: &ProposeArgs,
) -> Result<(Vec<Proposal>, Vec<String>)> {
    let log_path = args
        .messages
        .clone()
        .or_else(|| a.iris.messages_log.clone())
        .ok_or_else(|| UsageError("give --messages FILE or set [act.iris] messages_log".into()))?;
    let text = std::fs::read_to_string(&log_path)
        .with_context(|| format!("cannot read {}", log_path.display()))?;
    let log = messages::parse(&text, a.iris.utc_offset);
    for r in log.refused.iter().take(5) {
        eprintln!("warning: {}: {r}", log_path.display());
    }
    let cpf_path = args.cpf.clone().or_else(|| a.iris.cpf.clone());
    let cpf = match &cpf_path {
        Some(p) => Some(
            CpfFile::new(p)
                .read()
                .map_err(|e| UsageError(e.to_string()))?,
        ),
        None => None,
    };
    let since = match &args.since {
        Some(s) => Some(
            chrono::DateTime::parse_from_rfc3339(s)
                .map_err(|e| UsageError(format!("--since {s}: {e}; use RFC 3339")))?
                .timestamp_millis(),
        ),
        None => None,
    };
    let findings = diagnose::diagnose(&log.messages, since, args.window);
    let mut router = Router::new(diagnose::rules());
    if args.use_llm {
        router = router.with_model(metered(llm, args.budget_usd, "route")?);
    }
    let ctx = IrisContext {
        cpf_path: cpf_path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        cpf,
        service: a.iris.service.clone(),
        page_kb: hugepage_kb(a),
        journal_command: a.iris.journal_command.clone(),
        log: &log.messages,
        incident: args.incident.clone(),
    };
    let proposals = diagnose::propose(&findings, &ctx, &router, args.top).await;
    let mut planned = Vec::new();
    if args.plan {
        let desk = desk(a)?;
        for p in &proposals {
            if let Some(c) = &p.command {
                let category = match p.route.agent {
                    compass_act::router::Agent::Os => "os_resources",
                    compass_act::router::Agent::Config => "configuration",
                    _ => "iris",
                };
                let severity = if p.finding.severity >= 3 {
                    "critical"
                } else {
                    "warning"
                };
                let r = desk
                    .plan(c.clone(), category, severity)
                    .await
                    .map_err(|e| UsageError(e.to_string()))?;
                planned.push(r.id().to_string());
            }
        }
    }
    Ok((proposals, planned))
}

/// `compass act propose`.
pub async fn propose(
    a: &ActSettings,
    llm: Option<&LlmSettings>,
    args: &ProposeArgs,
    json: bool,
    color: bool,
) -> Result<Outcome> {
    let (proposals, planned) = diagnose_and_propose(a, llm, args).await?;
    if json {
        print_json(&serde_json::json!({"proposals": proposals, "planned": planned}))?;
        return Ok(Outcome::Done);
    }
    print!("{}", show::proposals(&proposals, color));
    if !planned.is_empty() {
        let desk = desk(a)?;
        println!();
        for id in &planned {
            print!("{}", show::record(&desk.get(id)?, color));
        }
        println!("approve with: compass act approve ID --by NAME");
    } else if proposals.iter().any(|p| p.command.is_some()) {
        println!("\nplan them with --plan, or save the JSON (--json) and use compass act plan");
    }
    Ok(Outcome::Done)
}

/// What `drill generate` makes.
#[derive(Debug, Clone)]
pub struct DrillArgs {
    pub categories: Vec<Category>,
    pub count: usize,
    pub seed: u64,
    pub append: Option<PathBuf>,
    pub send: bool,
    pub use_llm: bool,
    pub budget_usd: f64,
}

/// `compass act drill generate`: writes the lines to stdout, appends them to a
/// `messages.log`, and queues them for the drill endpoint.
pub async fn drill_generate(
    a: &ActSettings,
    llm: Option<&LlmSettings>,
    args: &DrillArgs,
    json: bool,
) -> Result<Outcome> {
    if args.send && a.drill.endpoint.is_none() {
        return Err(UsageError("--send needs [act.drill] endpoint in the config".into()).into());
    }
    let model = if args.use_llm {
        Some(metered(llm, args.budget_usd, "drill")?)
    } else {
        None
    };
    let mut generator = Generator::new(args.seed, a.iris.utc_offset);
    let categories = if args.categories.is_empty() {
        Category::ALL.to_vec()
    } else {
        args.categories.clone()
    };
    let mut lines: Vec<DrillLine> = Vec::new();
    for i in 0..args.count.max(1) {
        let c = categories[i % categories.len()];
        let at = chrono::Utc::now();
        let d = match &model {
            Some(m) => generator.llm(m.as_ref(), c, at).await,
            None => generator.template(c, at),
        };
        if let Some(why) = &d.fallback {
            eprintln!("note: {c}: template used: {why}");
        }
        lines.push(d);
    }
    if let Some(path) = &args.append {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open {} to append", path.display()))?;
        for d in &lines {
            writeln!(f, "{}", d.line)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        f.sync_data().ok();
    }
    let mut queued = 0;
    if args.send {
        let outbox = Outbox::open(&a.drill.outbox)?;
        for d in &lines {
            outbox.enqueue(serde_json::to_value(d)?)?;
            queued += 1;
        }
    }
    if json {
        print_json(&lines)?;
    } else {
        for d in &lines {
            println!("{}", d.line);
        }
    }
    if args.send {
        let endpoint = a.drill.endpoint.clone().unwrap_or_default();
        eprintln!(
            "queued {queued} event(s) in {}; delivering to {endpoint}",
            a.drill.outbox.display()
        );
        let d = deliver(a, Duration::from_secs(30)).await?;
        if d.remaining > 0 {
            eprintln!(
                "{} event(s) wait in the outbox ({}); `compass act drill deliver` retries",
                d.remaining,
                d.error.unwrap_or_default()
            );
        }
    }
    Ok(Outcome::Done)
}

async fn deliver(
    a: &ActSettings,
    give_up_after: Duration,
) -> Result<compass_act::outbox::Delivery> {
    let endpoint = a
        .drill
        .endpoint
        .clone()
        .ok_or_else(|| UsageError("[act.drill] endpoint is not set in the config".into()))?;
    let outbox = Outbox::open(&a.drill.outbox)?;
    let client = compass_act::outbox::Client::new();
    let d = outbox
        .drain(&client, &endpoint, a.drill.timeout, give_up_after, |d| {
            if let Some(e) = &d.error {
                eprintln!("  sent {}, {} waiting: {e}", d.sent, d.remaining);
            }
        })
        .await?;
    Ok(d)
}

/// `compass act drill deliver`: retries the outbox until it is empty or `wait` passes.
pub async fn drill_deliver(a: &ActSettings, wait: Duration) -> Result<Outcome> {
    let d = deliver(a, wait).await?;
    println!("sent {}, {} still queued", d.sent, d.remaining);
    if d.remaining > 0 {
        return Err(anyhow::anyhow!(
            "{} event(s) could not be delivered: {}",
            d.remaining,
            d.error.unwrap_or_default()
        ));
    }
    Ok(Outcome::Done)
}
