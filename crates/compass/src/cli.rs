//! What the CLI commands do, apart from argument parsing: simulate a bundle, investigate
//! one with a progress display, render the result, run the demo. This module is the
//! CLI's output module: it is the one place that prints.

use crate::report::{self, RenderOptions};
use anyhow::{Context, Result};
use compass_adapters::config::llm::LlmSettings;
use compass_adapters::{BundleSource, read_truth};
use compass_core::{Incident, Investigation, InvestigationStatus};
use compass_engine::{
    BudgetLimits, Coordinator, CoordinatorConfig, DataSources, MetricCatalog, ProgressEvent,
    ProgressFn,
};
use compass_sim::SimConfig;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Output format on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Markdown,
}

/// Settings shared by `investigate` and `demo`.
#[derive(Debug, Clone)]
pub struct RunSettings {
    pub format: Format,
    pub top: usize,
    pub agent_timeout: Duration,
    pub deadline: Duration,
    /// Maximum LLM spend per investigation (`--budget`); `None`: the `[llm]` default.
    pub budget_usd: Option<f64>,
    /// The model to consult after the deterministic steps; `None`: no LLM steps.
    pub llm: Option<LlmSettings>,
    /// `--no-llm`: `llm` stays `None`, and a live `--config` file's `[llm]` is ignored.
    pub no_llm: bool,
    pub color: bool,
}

/// How a command ended; maps to the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Investigated(InvestigationStatus),
    /// A remediation ran and did not succeed (rolled back or failed).
    ActionFailed,
}

impl Outcome {
    pub fn exit_code(self) -> ExitCode {
        ExitCode::from(match self {
            Outcome::Done | Outcome::Investigated(InvestigationStatus::Completed) => 0,
            Outcome::Investigated(InvestigationStatus::Degraded) => 3,
            Outcome::Investigated(
                InvestigationStatus::BudgetExhausted | InvestigationStatus::DeadlineExceeded,
            ) => 4,
            Outcome::ActionFailed => 5,
        })
    }
}

/// A mistake in how the command was called (exit code 2), as opposed to a failure
/// while running it (exit code 1).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Print a command's error on stderr; returns the exit code: 2 for usage errors,
/// 1 for everything else.
pub fn report_error(e: &anyhow::Error) -> ExitCode {
    eprintln!("error: {e:#}");
    if e.downcast_ref::<UsageError>().is_some() {
        ExitCode::from(2)
    } else {
        ExitCode::from(1)
    }
}

/// A simulator error as the CLI reports it: bad settings are usage errors.
fn sim_error(e: compass_sim::SimError, out: &Path) -> anyhow::Error {
    match e.kind() {
        compass_sim::ErrorKind::BadInput => UsageError(e.to_string()).into(),
        _ => anyhow::Error::new(e).context(format!("cannot simulate into {}", out.display())),
    }
}

/// Refuse to write a bundle over a directory that already holds files.
pub(crate) fn ensure_empty_dir(dir: &Path) -> Result<()> {
    let has_entries = std::fs::read_dir(dir)
        .map(|mut entries| entries.next().is_some())
        .unwrap_or(false);
    if has_entries {
        return Err(UsageError(format!(
            "output directory {} is not empty: choose a new directory or remove it first",
            dir.display()
        ))
        .into());
    }
    Ok(())
}

/// Colors only on a terminal, and never when `NO_COLOR` is set.
pub fn stdout_supports_color() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(110)
        .clamp(60, 200)
}

/// `compass simulate --list`.
pub fn print_scenarios() {
    let mut table = comfy_table::Table::new();
    table.load_style(comfy_table::presets::NOTHING);
    table.set_header(["SCENARIO", "FAULT KIND", "DESCRIPTION"]);
    for s in compass_sim::scenarios() {
        table.add_row([s.name, s.fault_kind.as_str(), s.description]);
    }
    println!("{table}");
}

/// A progress bar on stderr when it is a terminal, hidden otherwise.
fn progress_bar(len: u64, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template(
            "{spinner:.cyan} {prefix:<12} [{bar:30.cyan/blue}] {pos}/{len} {msg}",
        )
        .expect("valid progress template")
        .progress_chars("█▉▊▋▌▍▎▏ "),
    );
    pb.set_prefix(what.to_string());
    pb.enable_steady_tick(Duration::from_millis(100));
    pb
}

/// Write a bundle, showing progress; returns its summary.
pub fn simulate_quietly(
    cfg: &SimConfig,
    out: &Path,
    show: bool,
) -> Result<compass_sim::SimSummary> {
    ensure_empty_dir(out)?;
    let pb = if show {
        progress_bar(1, "simulating")
    } else {
        ProgressBar::hidden()
    };
    let summary = compass_sim::simulate(cfg, out, &mut |p| {
        pb.set_length(p.total.max(1));
        pb.set_position(p.done);
        pb.set_message(p.phase);
    })
    .map_err(|e| sim_error(e, out))?;
    pb.finish_and_clear();
    Ok(summary)
}

/// `compass simulate`.
pub fn simulate(cfg: &SimConfig, out: &Path) -> Result<()> {
    let s = simulate_quietly(cfg, out, true)?;
    println!(
        "wrote bundle {} ({} services, scenario {}, seed {})",
        s.out_dir.display(),
        s.services.len(),
        cfg.scenario,
        cfg.seed
    );
    println!(
        "  {} metric samples, {} log lines, {} spans; the injected fault is in truth.json",
        s.metric_samples, s.log_lines, s.spans
    );
    println!(
        "investigate it with: compass investigate --bundle {}",
        s.out_dir.display()
    );
    Ok(())
}

fn coordinator(settings: &RunSettings, sources: SourceSetup) -> Coordinator {
    let llm = settings.llm.as_ref();
    let max_usd = settings
        .budget_usd
        .or_else(|| llm.map(|l| l.budget_usd.unwrap_or(crate::llm::DEFAULT_BUDGET_USD)));
    let mut config = CoordinatorConfig {
        agent_timeout: settings.agent_timeout,
        deadline: settings.deadline,
        budget: BudgetLimits {
            max_usd,
            max_tokens: None,
        },
        ..Default::default()
    };
    config.catalog = sources.catalog;
    if let Some(call_timeout) = sources.call_timeout {
        config.breaker.call_timeout = call_timeout;
    }
    let coordinator = Coordinator::new(compass_engine::agents::all(), config);
    let Some(llm) = llm else {
        return coordinator;
    };
    // A model that cannot be set up (no key, bad URL) never stops an investigation:
    // it runs without the LLM steps and says so.
    match crate::llm::analyst(llm) {
        Ok(analyst) => coordinator.with_llm(analyst),
        Err(e) => {
            eprintln!("warning: investigating without the LLM steps: {e:#}");
            coordinator
        }
    }
}

/// What the coordinator needs to know about the data sources.
#[derive(Debug, Clone, Default)]
pub struct SourceSetup {
    /// Metric names and labels the agents query.
    pub catalog: MetricCatalog,
    /// The circuit breakers' per-call timeout (live sources: the longest a call with
    /// its retries can take); `None` keeps the default.
    pub call_timeout: Option<Duration>,
}

/// Investigate a bundle directory with a progress display on stderr.
pub async fn run_bundle(dir: &Path, settings: &RunSettings) -> Result<Investigation> {
    let bundle = Arc::new(BundleSource::open(dir).map_err(anyhow::Error::new)?);
    for missing in bundle.missing_files() {
        eprintln!(
            "warning: bundle {}: {missing} is missing; agents that need it are degraded",
            dir.display()
        );
    }
    for problem in bundle.problems() {
        eprintln!("warning: bundle {}: {problem}", dir.display());
    }
    let setup = SourceSetup {
        catalog: bundle.catalog().unwrap_or_default(),
        call_timeout: None,
    };
    Ok(investigate_sources(bundle.incident(), &bundle.data_sources(), setup, settings).await)
}

/// Run every agent over `sources` with a progress display on stderr.
pub async fn investigate_sources(
    incident: &Incident,
    sources: &DataSources,
    setup: SourceSetup,
    settings: &RunSettings,
) -> Investigation {
    let coordinator = coordinator(settings, setup);
    let pb = progress_bar(0, "investigating");
    let progress: ProgressFn = {
        let pb = pb.clone();
        Arc::new(move |e| match e {
            ProgressEvent::Started { agents } => {
                pb.set_length(agents.len() as u64);
                pb.set_message(format!("agents: {}", agents.join(", ")));
            }
            ProgressEvent::AgentFinished(run) => {
                pb.inc(1);
                pb.set_message(format!(
                    "{} {} ({} ms)",
                    run.agent,
                    run.status.as_str(),
                    run.duration_ms
                ));
            }
            ProgressEvent::Orienting => pb.set_message("merging, disproving and ranking"),
            ProgressEvent::Consulting { provider, model } => {
                pb.set_message(format!("asking {provider}/{model} (within budget)"))
            }
        })
    };
    let inv = coordinator
        .investigate(incident, sources, Some(progress))
        .await;
    pb.finish_and_clear();
    inv
}

fn render(inv: &Investigation, settings: &RunSettings) -> Result<()> {
    match settings.format {
        Format::Text => {
            let opts = RenderOptions {
                color: settings.color,
                width: terminal_width(),
                top: settings.top,
            };
            print!("{}", report::terminal(inv, &opts));
        }
        Format::Json => println!("{}", serde_json::to_string_pretty(&report::json(inv))?),
        Format::Markdown => print!("{}", report::markdown(inv)),
    }
    Ok(())
}

fn write_html(inv: &Investigation, path: &Path) -> Result<()> {
    std::fs::write(path, report::html(inv))
        .with_context(|| format!("cannot write the HTML report to {}", path.display()))
}

/// `compass investigate --bundle DIR`.
pub async fn investigate_bundle(
    dir: &Path,
    html: Option<&Path>,
    settings: &RunSettings,
) -> Result<Outcome> {
    let inv = run_bundle(dir, settings).await?;
    report_investigation(&inv, html, settings)
}

/// Print an investigation on stdout, write its HTML report if asked, and say how the
/// command ended.
pub(crate) fn report_investigation(
    inv: &Investigation,
    html: Option<&Path>,
    settings: &RunSettings,
) -> Result<Outcome> {
    render(inv, settings)?;
    if let Some(path) = html {
        write_html(inv, path)?;
        eprintln!("HTML report written to {}", path.display());
    }
    Ok(Outcome::Investigated(inv.status))
}

/// `compass demo`: simulate, investigate, report.
pub async fn demo(
    scenario: &str,
    seed: u64,
    out: Option<&Path>,
    settings: &RunSettings,
) -> Result<Outcome> {
    let dir = match out {
        Some(d) => {
            ensure_empty_dir(d)?;
            d.to_path_buf()
        }
        None => tempfile::Builder::new()
            .prefix(&format!("compass-demo-{scenario}-{seed}-"))
            .tempdir()
            .context("cannot create a directory for the demo under the system temp dir")?
            .keep(),
    };
    let cfg = SimConfig {
        scenario: scenario.to_string(),
        seed,
        ..Default::default()
    };
    let bundle_dir = dir.join("bundle");
    if settings.format == Format::Text {
        eprintln!(
            "Simulating an incident in a microservice shop (scenario {scenario}, seed {seed}) ..."
        );
    }
    simulate_quietly(&cfg, &bundle_dir, true)?;
    let inv = run_bundle(&bundle_dir, settings).await?;
    render(&inv, settings)?;
    let html = dir.join("report.html");
    write_html(&inv, &html)?;
    if settings.format != Format::Text {
        eprintln!("HTML report written to {}", html.display());
    }
    if settings.format == Format::Text {
        let truth = read_truth(&bundle_dir).map_err(anyhow::Error::new)?;
        let rank = inv
            .hypotheses
            .iter()
            .position(|h| h.root_cause.service == truth.service)
            .map_or("not ranked".to_string(), |i| format!("ranked #{}", i + 1));
        println!();
        println!(
            "The simulator injected {} into {} ({}); COMPASS {rank}.",
            truth.fault_kind.describe(),
            truth.service,
            bundle_dir.join("truth.json").display()
        );
        println!("HTML report: {}", html.display());
        println!(
            "Bundle:      {} (try: compass investigate --bundle {} --format markdown)",
            bundle_dir.display(),
            bundle_dir.display()
        );
    }
    Ok(Outcome::Investigated(inv.status))
}

/// `compass eval loghub`: parse, write, score and print a table.
pub fn eval_loghub(
    data: &Path,
    systems: &[String],
    format: Option<&str>,
    out: &Path,
) -> Result<()> {
    let results = crate::eval::loghub(data, systems, format, out)?;
    let mut table = comfy_table::Table::new();
    table.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
    table.set_header([
        "system",
        "lines",
        "skipped",
        "templates",
        "GA",
        "PA",
        "FGA",
        "FTA",
        "ms",
    ]);
    let fmt = |v: f64| format!("{v:.3}");
    let mut sums = [0.0f64; 4];
    let mut scored = 0usize;
    for r in &results {
        let cells = match &r.scores {
            Some((s, _)) => {
                scored += 1;
                for (sum, v) in sums.iter_mut().zip([
                    s.grouping_accuracy,
                    s.parsing_accuracy,
                    s.f1_grouping,
                    s.f1_template,
                ]) {
                    *sum += v;
                }
                [
                    fmt(s.grouping_accuracy),
                    fmt(s.parsing_accuracy),
                    fmt(s.f1_grouping),
                    fmt(s.f1_template),
                ]
            }
            None => [
                "-".to_string(),
                "-".to_string(),
                "-".to_string(),
                "-".to_string(),
            ],
        };
        let mut row = vec![
            r.system.clone(),
            r.lines.to_string(),
            r.unmatched.to_string(),
            r.templates.to_string(),
        ];
        row.extend(cells);
        row.push(r.elapsed_ms.to_string());
        table.add_row(row);
    }
    if scored > 0 {
        let mean = |i: usize| fmt(sums[i] / scored as f64);
        table.add_row(vec![
            format!("mean ({scored})"),
            String::new(),
            String::new(),
            String::new(),
            mean(0),
            mean(1),
            mean(2),
            mean(3),
            String::new(),
        ]);
    }
    println!("{table}");
    println!("structured files written to {}", out.display());
    for r in results.iter().filter(|r| r.scores.is_none()) {
        println!("  {}: no ground truth found, not scored", r.system);
    }
    for r in &results {
        if let Some((_, truth)) = &r.scores {
            println!("  {} scored against {}", r.system, truth.display());
        }
    }
    Ok(())
}

/// `compass eval nezha`: investigate every case, write the JSON lines, then score
/// them and print the tables.
pub async fn eval_nezha(
    data: &Path,
    days: &[String],
    out: &Path,
    reports: Option<&Path>,
    llm: Option<&LlmSettings>,
    budget_usd: Option<f64>,
) -> Result<()> {
    use crate::eval::nezha;
    let llm = match llm {
        Some(settings) => Some((
            crate::llm::analyst(settings)?,
            budget_usd
                .or(settings.budget_usd)
                .unwrap_or(crate::llm::DEFAULT_BUDGET_USD),
        )),
        None => None,
    };
    let pb = progress_bar(0, "cases");
    let lines = nezha::run(data, days, out, reports, llm, |done, total, line| {
        pb.set_length(total as u64);
        pb.set_position(done as u64);
        let top = line.ranking.first().map_or("-", |r| r.service.as_str());
        pb.set_message(format!("{} {} → {top}", line.day, line.inject_time));
    })
    .await?;
    pb.finish_and_clear();
    println!(
        "{} cases investigated; rankings written to {}",
        lines.len(),
        out.display()
    );
    let labels = nezha::labels(data, &lines);
    let report = nezha::score(&lines, &labels);
    let mut table = comfy_table::Table::new();
    table.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
    table.set_header([
        "system",
        "fault type",
        "cases",
        "AC@1",
        "AC@3",
        "AC@5",
        "Avg@5",
        "MRR",
        "type@1",
    ]);
    let fmt = |v: f64| format!("{v:.3}");
    let row = |system: &str, fault: &str, s: &nezha::Scores| {
        vec![
            system.to_string(),
            fault.to_string(),
            s.cases.to_string(),
            fmt(s.ac(1)),
            fmt(s.ac(3)),
            fmt(s.ac(5)),
            fmt(s.avg5()),
            fmt(s.mrr()),
            if s.typed == 0 {
                "-".into()
            } else {
                fmt(s.type_accuracy())
            },
        ]
    };
    for (system, s) in &report.by_system {
        for ((sys, fault), t) in report.by_type.iter().filter(|((sys, _), _)| sys == system) {
            table.add_row(row(sys, fault, t));
        }
        table.add_row(row(system, "all", s));
    }
    if report.by_system.len() > 1 {
        table.add_row(row("all", "all", &report.overall));
    }
    if report.overall.cases > 0 {
        println!("{table}");
        println!(
            "fault type at rank 1 is scored as COMPASS's kind: cpu_contention and cpu_consumed \
             = cpu_saturation, network_delay = network_latency, exception and return = error_injection"
        );
    }
    if report.unscored > 0 {
        println!(
            "{} case(s) without a usable label: written, not scored",
            report.unscored
        );
    }
    let times: Vec<u64> = lines.iter().map(|l| l.elapsed_ms).collect();
    println!(
        "time per case: median {} ms, p95 {} ms",
        nezha::quantile(&times, 0.5),
        nezha::quantile(&times, 0.95)
    );
    let used: Vec<&nezha::LlmCase> = lines.iter().filter_map(|l| l.llm.as_ref()).collect();
    if !used.is_empty() {
        let prompt: Vec<u64> = used.iter().map(|c| c.prompt_tokens).collect();
        println!(
            "LLM: {} calls ({} ok), prompt tokens per case median {} max {}, {} completion \
             tokens, ${:.4} in all, {} hypotheses added, {} step fallbacks",
            used.iter().map(|c| c.calls).sum::<usize>(),
            used.iter().map(|c| c.ok_calls).sum::<usize>(),
            nezha::quantile(&prompt, 0.5),
            prompt.iter().max().copied().unwrap_or(0),
            used.iter().map(|c| c.completion_tokens).sum::<u64>(),
            used.iter().map(|c| c.usd).sum::<f64>(),
            used.iter().map(|c| c.added_hypotheses).sum::<usize>(),
            used.iter().map(|c| c.fallbacks).sum::<usize>(),
        );
    }
    Ok(())
}

/// `compass bench logs`: optionally make the input, then time template mining on it.
pub fn bench_logs(input: &Path, make_from: Option<&Path>, lines: usize) -> Result<()> {
    if let Some(data) = make_from {
        let distinct = crate::eval::make_mining_input(data, lines, input)?;
        println!(
            "wrote {} ({lines} lines cycling {distinct} Loghub messages)",
            input.display()
        );
    }
    let b = crate::eval::bench_mining(input)?;
    let rss = b.peak_rss.map_or("unknown".to_string(), |r| {
        format!("{:.0} MiB", r as f64 / 1048576.0)
    });
    println!(
        "lines={} seconds={:.3} lines_per_s={:.0} templates={} peak_rss={rss}",
        b.lines,
        b.seconds,
        b.lines as f64 / b.seconds.max(1e-9),
        b.templates
    );
    Ok(())
}
