//! The `compass` command line: `demo`, `simulate`, `investigate`, `eval`, `bench`,
//! `config check`, `llm check`, `cost`, `serve`, `mcp`, `token` and `act`.
//!
//! Exit codes (also in the README): 0 the investigation completed; 1 it could not run
//! (bad input: a missing or corrupt bundle, an unwritable output); 2 a usage error;
//! 3 it completed degraded (some agent failed, timed out or lacked data); 4 it stopped
//! early (budget exhausted or deadline reached) with a partial answer; 5 a remediation
//! (`compass act run` or `rollback`) ran and did not succeed.

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use compass::cli::{self, Outcome, UsageError};
use std::path::PathBuf;
use std::process::ExitCode;

/// mimalloc: log analysis allocates millions of short strings; glibc malloc spent a
/// quarter of the time of a large investigation in its own bookkeeping.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "compass",
    version,
    about = "COMPASS: incident investigation engine"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Simulate an incident in a built-in microservice system, investigate it and
    /// write an HTML report. Needs no services and no API key.
    Demo(DemoArgs),
    /// Write a simulated incident bundle (metrics, logs, traces, changes).
    Simulate(SimulateArgs),
    /// Investigate an incident from a bundle directory.
    Investigate(InvestigateArgs),
    /// Score COMPASS on public labelled data.
    #[command(subcommand)]
    Eval(EvalCommand),
    /// Measure COMPASS's speed.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Work with `compass.toml`.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Work with the configured language model.
    #[command(subcommand)]
    Llm(LlmCommand),
    /// LLM spend from the cost ledger, by day, model, step and investigation.
    Cost(CostArgs),
    /// Run the HTTP API, alert webhooks, web UI and investigation workers.
    Serve(ServeArgs),
    /// Serve COMPASS to other agents and assistants over MCP on stdin/stdout
    /// (the caller's API token in $COMPASS_TOKEN). `compass serve` also serves MCP at /mcp.
    Mcp(McpArgs),
    /// Manage the API tokens `compass serve` accepts.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Remediation with approval, backup, validation and rollback; the IRIS pack.
    #[command(subcommand)]
    Act(ActCommand),
}

/// `--config FILE` for `compass act` (its `[act]`, `[limits]` and `[llm]`).
#[derive(Debug, Args)]
struct ActConfigArg {
    /// `compass.toml` with `[act]` (default: state in the data directory, nothing
    /// allowlisted, every command approved by a human).
    #[arg(long, value_name = "FILE", env = "COMPASS_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Disable colors.
    #[arg(long, global = true)]
    no_color: bool,
}

/// The optional model of `propose` (it suggests the agent) and `drill generate` (it
/// writes the message text); rules and templates are the fallback.
#[derive(Debug, Args)]
struct ActLlmArg {
    /// Use the `[llm]` model of the config.
    #[arg(long)]
    llm: bool,
    /// Most the model may cost in this run, USD.
    #[arg(long, value_name = "USD", default_value_t = compass::act::DEFAULT_ACT_BUDGET_USD)]
    budget: f64,
}

/// Who is acting (the audit log's actor).
#[derive(Debug, Args)]
struct ActorArg {
    /// Your name as the audit log records it (default: $COMPASS_ACTOR, else $USER).
    #[arg(long, value_name = "NAME")]
    by: Option<String>,
}

impl ActorArg {
    fn name(&self) -> Result<String> {
        self.by
            .clone()
            .or_else(|| std::env::var("COMPASS_ACTOR").ok())
            .or_else(|| std::env::var("USER").ok())
            .filter(|n| !n.trim().is_empty())
            .ok_or_else(|| UsageError("say who you are with --by NAME".into()).into())
    }
}

#[derive(Debug, Subcommand)]
enum ActCommand {
    /// Validate remediation commands (JSON: one command or an array; `-` for stdin),
    /// show the exact change and risk, and keep them for approval. Nothing changes.
    Plan {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// The incident type the approval rules match (`[act] auto_approve`).
        #[arg(long, default_value = "manual")]
        incident_type: String,
        /// critical, warning or info.
        #[arg(long, default_value = "critical")]
        severity: String,
        #[command(flatten)]
        cfg: ActConfigArg,
    },
    /// Approve a planned command.
    Approve {
        id: String,
        #[command(flatten)]
        actor: ActorArg,
        #[command(flatten)]
        cfg: ActConfigArg,
    },
    /// Run an approved command (or every ready one, by priority): backup, change,
    /// validation, rollback when validation fails. Exit code 5 when it did not succeed.
    Run {
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<String>,
        /// Run every ready command, highest priority first, one per resource at a time.
        #[arg(long)]
        all: bool,
        /// Show the steps through the dry-run executor: nothing runs, no file changes.
        #[arg(long, conflicts_with = "all")]
        dry_run: bool,
        #[command(flatten)]
        actor: ActorArg,
        #[command(flatten)]
        cfg: ActConfigArg,
    },
    /// Undo a command that ran, failed or was interrupted.
    Rollback {
        id: String,
        #[command(flatten)]
        actor: ActorArg,
        #[command(flatten)]
        cfg: ActConfigArg,
    },
    /// The audit log: every step, who, output, exit code, duration.
    Log {
        id: Option<String>,
        #[command(flatten)]
        cfg: ActConfigArg,
    },
    /// The commands and where each is in its lifecycle.
    List {
        #[command(flatten)]
        cfg: ActConfigArg,
    },
    /// IRIS: find the recent errors in messages.log, route each to an agent and
    /// propose the remediation commands.
    Propose {
        /// messages.log (default: `[act.iris] messages_log`).
        #[arg(long, value_name = "FILE")]
        messages: Option<PathBuf>,
        /// The CPF file (default: `[act.iris] cpf`).
        #[arg(long, value_name = "FILE")]
        cpf: Option<PathBuf>,
        /// Start of the window, RFC 3339 (default: `--window` before the last event).
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Length of the window when `--since` is not given.
        #[arg(long, default_value = "15m", value_name = "DURATION")]
        window: String,
        /// How many findings to propose for.
        #[arg(long, default_value_t = 3)]
        top: usize,
        /// The incident the commands remediate (their ids start with it).
        #[arg(long)]
        incident: Option<String>,
        /// Also plan the proposed commands, ready for approval.
        #[arg(long)]
        plan: bool,
        #[command(flatten)]
        model: ActLlmArg,
        #[command(flatten)]
        cfg: ActConfigArg,
    },
    /// IRIS drills: generate realistic errors, deliver them to the drill endpoint.
    #[command(subcommand)]
    Drill(DrillCommand),
}

#[derive(Debug, Subcommand)]
enum DrillCommand {
    /// Generate messages.log error events (configuration, license, os_resources,
    /// journal): print them, append them to a file, queue them for the endpoint.
    Generate {
        /// Categories (repeatable; default: all four, in turn).
        #[arg(long = "category", value_name = "NAME")]
        categories: Vec<String>,
        #[arg(long, default_value_t = 4)]
        count: usize,
        /// Seed of the templates (the same seed writes the same drill).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Append the events to this messages.log.
        #[arg(long, value_name = "FILE")]
        append: Option<PathBuf>,
        /// Queue them in the durable outbox and deliver to `[act.drill] endpoint`.
        #[arg(long)]
        send: bool,
        #[command(flatten)]
        model: ActLlmArg,
        #[command(flatten)]
        cfg: ActConfigArg,
    },
    /// Retry delivering the queued events until the outbox is empty or `--wait` passes.
    Deliver {
        #[arg(long, default_value = "2m", value_name = "DURATION")]
        wait: String,
        #[command(flatten)]
        cfg: ActConfigArg,
    },
}

/// What a replica investigates with: `compass serve` and `compass mcp` share these.
#[derive(Debug, Args)]
struct ReplicaArgs {
    /// `compass.toml` with `[sources]`, `[serve]`, `[limits]` and `[llm]`.
    #[arg(long, value_name = "FILE", env = "COMPASS_CONFIG")]
    config: Option<PathBuf>,
    /// `sqlite://PATH` (one node) or `postgres://USER@HOST/DB` (replicas); default:
    /// `[serve] database_url`, else SQLite in the data directory.
    #[arg(long = "database", value_name = "URL", env = "COMPASS_DATABASE_URL")]
    database: Option<String>,
    /// Investigate over this bundle directory instead of live sources.
    #[arg(long, value_name = "DIR", conflicts_with = "demo")]
    bundle: Option<PathBuf>,
    /// Simulate an incident, serve over it and open it (no services, no tokens; loopback only).
    #[arg(long)]
    demo: bool,
    /// Require no API token (loopback addresses only; over MCP the client is the
    /// anonymous admin).
    #[arg(long)]
    no_auth: bool,
    /// Investigations run at once by this process (default: `[serve] workers`).
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
}

impl ReplicaArgs {
    fn options(self) -> compass::serve::ServeOptions {
        compass::serve::ServeOptions {
            config: self.config,
            database_url: self.database,
            bundle: self.bundle,
            demo: self.demo,
            no_auth: self.no_auth,
            workers: self.workers,
            ..Default::default()
        }
    }
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten)]
    replica_args: ReplicaArgs,
    /// Address to listen on (default: `[serve] listen`, else 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR", env = "COMPASS_LISTEN")]
    listen: Option<String>,
    /// Job lease length, seconds (default: `[serve] lease`).
    #[arg(long, value_name = "SECS")]
    lease: Option<u64>,
    /// This replica's name in job leases (default: host name and process id).
    #[arg(long, value_name = "NAME")]
    replica: Option<String>,
}

#[derive(Debug, Args)]
struct McpArgs {
    #[command(flatten)]
    replica_args: ReplicaArgs,
}

/// `--database URL`, defaulting to `$COMPASS_DATABASE_URL`.
#[derive(Debug, Args)]
struct DatabaseArg {
    /// `sqlite://PATH` (one node) or `postgres://USER@HOST/DB` (replicas); default:
    /// `[serve] database_url`, else SQLite in the data directory.
    #[arg(long = "database", value_name = "URL", env = "COMPASS_DATABASE_URL")]
    url: Option<String>,
    /// Read `[serve] database_url` from this file.
    #[arg(long, value_name = "FILE", env = "COMPASS_CONFIG")]
    config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create a token and print it once (only its SHA-256 is stored).
    Create {
        /// Who or what uses it (the audit log's actor).
        #[arg(long)]
        name: String,
        /// viewer, responder, approver or admin.
        #[arg(long, default_value = "viewer")]
        role: String,
        #[command(flatten)]
        db: DatabaseArg,
    },
    /// List tokens (names, roles, dates; never the tokens).
    List {
        #[command(flatten)]
        db: DatabaseArg,
    },
    /// Revoke a token by name or id.
    Revoke {
        name: String,
        #[command(flatten)]
        db: DatabaseArg,
    },
}

#[derive(Debug, Subcommand)]
enum LlmCommand {
    /// Make one tiny call through the `[llm]` provider; print latency, tokens and cost.
    Check(LlmCheckArgs),
}

#[derive(Debug, Args)]
struct LlmCheckArgs {
    #[command(flatten)]
    file: ConfigFileArg,
    /// Disable colors.
    #[arg(long)]
    no_color: bool,
}

#[derive(Debug, Args)]
struct CostArgs {
    /// How many UTC days to include, today counted.
    #[arg(long, default_value_t = 30, value_name = "N")]
    days: u32,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// Read `daily_budget_usd` from this file's `[llm]` to show each day's share.
    #[arg(long, value_name = "FILE", env = "COMPASS_CONFIG")]
    config: Option<PathBuf>,
    /// Disable colors.
    #[arg(long)]
    no_color: bool,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate the file, ping every source and check the metric mappings against
    /// what the backend holds.
    Check(ConfigCheckArgs),
}

/// `--config FILE`, defaulting to `$COMPASS_CONFIG`, then `compass.toml`.
#[derive(Debug, Args)]
struct ConfigFileArg {
    #[arg(
        long,
        value_name = "FILE",
        env = "COMPASS_CONFIG",
        default_value = "compass.toml"
    )]
    config: PathBuf,
}

#[derive(Debug, Args)]
struct ConfigCheckArgs {
    #[command(flatten)]
    file: ConfigFileArg,
    /// How far back to look for the mapped metrics, seconds.
    #[arg(long, default_value_t = 3600, value_name = "SECS")]
    window: u64,
    /// Disable colors.
    #[arg(long)]
    no_color: bool,
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Time log template mining on a file (one message a line): lines per second and
    /// peak memory.
    Logs(BenchLogsArgs),
}

#[derive(Debug, Args)]
struct BenchLogsArgs {
    /// The input file, one message a line.
    #[arg(long, value_name = "FILE")]
    input: PathBuf,
    /// First write the input from the Loghub samples in this folder (headers stripped),
    /// cycled to `--lines` lines.
    #[arg(long, value_name = "LOGHUB_DIR")]
    make_from: Option<PathBuf>,
    /// Lines to write with `--make-from`.
    #[arg(long, default_value_t = 1_000_000)]
    lines: usize,
}

#[derive(Debug, Subcommand)]
enum EvalCommand {
    /// Parse the Loghub 2k log samples with COMPASS's template miner, write
    /// `<S>_2k.log_structured.csv` files and score them (GA, PA, FGA, FTA).
    Loghub(LoghubArgs),
    /// Investigate every case of the Nezha fault-injection data set, write one JSON
    /// line per case, and score the rankings (AC@1/3/5, Avg@5, MRR).
    Nezha(NezhaArgs),
}

#[derive(Debug, Args)]
struct NezhaArgs {
    /// The Nezha folder (holding `rca_data/<day>/`).
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// Days to run (default: every day with a fault list).
    #[arg(long = "day", value_name = "DAY")]
    days: Vec<String>,
    /// Where to write the results, one JSON line per case.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Also write each case's investigation report (Markdown) into this folder.
    #[arg(long, value_name = "DIR")]
    reports: Option<PathBuf>,
    /// Run the LLM steps too, with the `[llm]` section of this file.
    #[arg(long, value_name = "FILE")]
    llm_config: Option<PathBuf>,
    /// LLM budget per case, USD (default: the file's `budget_usd`).
    #[arg(long, value_name = "USD", requires = "llm_config")]
    budget: Option<f64>,
}

#[derive(Debug, Args)]
struct LoghubArgs {
    /// The Loghub folder (holding `<S>/<S>_2k.log`).
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// Systems to run (default: every folder with a `<S>_2k.log`).
    #[arg(long = "system", value_name = "S")]
    systems: Vec<String>,
    /// Header format for systems without a built-in one, Loghub style
    /// (e.g. `<Date> <Time> <Level> <Content>`).
    #[arg(long, value_name = "FMT")]
    format: Option<String>,
    /// Where to write the structured files.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
    Markdown,
}

impl From<Format> for cli::Format {
    fn from(f: Format) -> Self {
        match f {
            Format::Text => cli::Format::Text,
            Format::Json => cli::Format::Json,
            Format::Markdown => cli::Format::Markdown,
        }
    }
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// How many hypotheses to show in text output.
    #[arg(long, default_value_t = 5)]
    top: usize,
    /// Timeout of each agent, seconds.
    #[arg(long, default_value_t = 30.0, value_name = "SECS")]
    agent_timeout: f64,
    /// Deadline of the whole investigation, seconds.
    #[arg(long, default_value_t = 120.0, value_name = "SECS")]
    deadline: f64,
    /// Maximum LLM spend for this investigation, USD.
    #[arg(long, value_name = "USD", env = "COMPASS_BUDGET")]
    budget: Option<f64>,
    /// Use the `[llm]` section of this file (live investigations default to the
    /// `--config` file's).
    #[arg(long, value_name = "FILE", env = "COMPASS_LLM_CONFIG")]
    llm_config: Option<PathBuf>,
    /// Run without the LLM steps even when one is configured.
    #[arg(long, conflicts_with = "llm_config")]
    no_llm: bool,
    /// Disable colors (also off when stdout is not a terminal or NO_COLOR is set).
    #[arg(long)]
    no_color: bool,
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// Scenario to simulate (see `compass simulate --list`).
    #[arg(long, default_value = "db-pool-exhaustion")]
    scenario: String,
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Where to write the bundle and report (default: a new directory under the
    /// system temp dir).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Args)]
struct SimulateArgs {
    /// List the scenarios and exit.
    #[arg(long)]
    list: bool,
    #[arg(long, required_unless_present = "list")]
    scenario: Option<String>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output directory (created; must be empty or absent).
    #[arg(long, required_unless_present = "list", value_name = "DIR")]
    out: Option<PathBuf>,
    /// Number of services (at least 12).
    #[arg(long, default_value_t = 12)]
    services: usize,
    /// Simulated duration, seconds.
    #[arg(long, default_value_t = 3600)]
    duration: u64,
    /// Baseline log lines per second across all services.
    #[arg(long, default_value_t = 50.0)]
    log_rate: f64,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("from").required(true).args(["bundle", "config"])))]
struct InvestigateArgs {
    /// Bundle directory (from `compass simulate` or `--record`): investigate offline.
    #[arg(long, value_name = "DIR")]
    bundle: Option<PathBuf>,
    /// Investigate against the live sources configured in this file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// An Alertmanager webhook payload (version 4) naming the incident (with --config).
    #[arg(long, value_name = "FILE", requires = "config")]
    alert: Option<PathBuf>,
    /// A service where the symptom shows (with --config; repeatable).
    #[arg(long = "service", value_name = "NAME", requires = "config")]
    services: Vec<String>,
    /// When the symptom began, RFC 3339 (with --config and without --alert).
    #[arg(long, value_name = "TIME", requires = "config")]
    at: Option<String>,
    /// Store every backend response in this (new) directory as a bundle that
    /// `--bundle` replays offline.
    #[arg(long, value_name = "DIR", requires = "config")]
    record: Option<PathBuf>,
    /// Also write a self-contained HTML report here.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    #[command(flatten)]
    run: RunArgs,
}

impl RunArgs {
    fn settings(&self) -> Result<cli::RunSettings> {
        let secs = |name: &str, v: f64| {
            std::time::Duration::try_from_secs_f64(v)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    UsageError(format!(
                        "--{name} must be a positive number of seconds, got {v}"
                    ))
                })
        };
        if let Some(b) = self.budget
            && !(b.is_finite() && b >= 0.0)
        {
            return Err(UsageError(format!(
                "--budget must be a non-negative amount in USD, got {b}"
            ))
            .into());
        }
        let llm = match &self.llm_config {
            Some(path) if !self.no_llm => Some(compass::llm::load_llm_settings(path)?),
            _ => None,
        };
        Ok(cli::RunSettings {
            format: self.format.into(),
            top: self.top.max(1),
            agent_timeout: secs("agent-timeout", self.agent_timeout)?,
            deadline: secs("deadline", self.deadline)?,
            budget_usd: self.budget,
            llm,
            no_llm: self.no_llm,
            color: !self.no_color && cli::stdout_supports_color(),
        })
    }
}

fn main() -> ExitCode {
    let args = Cli::parse();
    // The service logs its own progress; the one-shot commands only errors.
    let default_filter = match args.command {
        Command::Serve(_) => "info",
        Command::Mcp(_) => "warn",
        _ => "error",
    };
    compass::serve::telemetry::init_logging(default_filter);
    let code = match run(args) {
        Ok(outcome) => outcome.exit_code(),
        Err(e) => cli::report_error(&e),
    };
    compass::serve::telemetry::shutdown_tracing();
    code
}

fn run(args: Cli) -> Result<Outcome> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match args.command {
        Command::Simulate(a) => {
            if a.list {
                cli::print_scenarios();
                return Ok(Outcome::Done);
            }
            let (Some(scenario), Some(out)) = (a.scenario, a.out) else {
                anyhow::bail!("--scenario and --out are required (or use --list)");
            };
            let cfg = compass_sim::SimConfig {
                scenario,
                seed: a.seed,
                services: a.services,
                duration_s: a.duration,
                log_rate: a.log_rate,
                ..Default::default()
            };
            cli::simulate(&cfg, &out)?;
            Ok(Outcome::Done)
        }
        Command::Investigate(a) => {
            let settings = a.run.settings()?;
            match (a.bundle, a.config) {
                (Some(bundle), None) => runtime.block_on(cli::investigate_bundle(
                    &bundle,
                    a.html.as_deref(),
                    &settings,
                )),
                (None, Some(config)) => {
                    let request = compass::live::LiveRequest {
                        config,
                        alert: a.alert,
                        services: a.services,
                        at: a.at,
                        record: a.record,
                        html: a.html,
                    };
                    runtime.block_on(compass::live::investigate(&request, &settings))
                }
                _ => Err(UsageError("use either --bundle DIR or --config FILE".into()).into()),
            }
        }
        Command::Config(ConfigCommand::Check(a)) => runtime.block_on(compass::live::check(
            &a.file.config,
            std::time::Duration::from_secs(a.window.max(60)),
            !a.no_color && cli::stdout_supports_color(),
        )),
        Command::Llm(LlmCommand::Check(a)) => runtime.block_on(compass::llm::check(
            &a.file.config,
            !a.no_color && cli::stdout_supports_color(),
        )),
        Command::Cost(a) => compass::llm::cost(
            a.days,
            a.json,
            a.config.as_deref(),
            !a.no_color && cli::stdout_supports_color(),
        ),
        Command::Eval(EvalCommand::Loghub(a)) => {
            cli::eval_loghub(&a.data, &a.systems, a.format.as_deref(), &a.out)?;
            Ok(Outcome::Done)
        }
        Command::Eval(EvalCommand::Nezha(a)) => {
            let llm = a
                .llm_config
                .as_deref()
                .map(compass::llm::load_llm_settings)
                .transpose()?;
            runtime.block_on(cli::eval_nezha(
                &a.data,
                &a.days,
                &a.out,
                a.reports.as_deref(),
                llm.as_ref(),
                a.budget,
            ))?;
            Ok(Outcome::Done)
        }
        Command::Bench(BenchCommand::Logs(a)) => {
            cli::bench_logs(&a.input, a.make_from.as_deref(), a.lines)?;
            Ok(Outcome::Done)
        }
        Command::Demo(a) => {
            let settings = a.run.settings()?;
            runtime.block_on(cli::demo(&a.scenario, a.seed, a.out.as_deref(), &settings))
        }
        Command::Serve(a) => {
            let opts = compass::serve::ServeOptions {
                listen: a.listen,
                lease: a.lease.map(std::time::Duration::from_secs),
                replica: a.replica,
                ..a.replica_args.options()
            };
            runtime.block_on(compass::serve::run(opts))?;
            Ok(Outcome::Done)
        }
        Command::Mcp(a) => {
            let opts = compass::serve::ServeOptions {
                replica: Some(format!("mcp-{}", std::process::id())),
                ..a.replica_args.options()
            };
            let token = std::env::var("COMPASS_TOKEN").ok();
            runtime.block_on(compass::serve::mcp::run_stdio(opts, token))?;
            Ok(Outcome::Done)
        }
        Command::Token(t) => {
            runtime.block_on(token(t))?;
            Ok(Outcome::Done)
        }
        Command::Act(a) => runtime.block_on(act(a)),
    }
}

fn duration_arg(flag: &str, v: &str) -> Result<std::time::Duration> {
    compass_adapters::config::parse_duration(v)
        .map_err(|e| UsageError(format!("--{flag} {v}: {e}")).into())
}

async fn act(cmd: ActCommand) -> Result<Outcome> {
    use compass::act;
    let color = |c: &ActConfigArg| !c.no_color && cli::stdout_supports_color();
    match cmd {
        ActCommand::Plan {
            files,
            incident_type,
            severity,
            cfg,
        } => {
            let (a, _) = act::load(cfg.config.as_deref())?;
            act::plan(&a, &files, &incident_type, &severity, cfg.json, color(&cfg)).await
        }
        ActCommand::Approve { id, actor, cfg } => {
            let (a, _) = act::load(cfg.config.as_deref())?;
            act::approve(&a, &id, &actor.name()?, color(&cfg)).await
        }
        ActCommand::Run {
            id,
            all: _,
            dry_run,
            actor,
            cfg,
        } => {
            let (a, _) = act::load(cfg.config.as_deref())?;
            let by = if dry_run {
                "dry-run".to_string()
            } else {
                actor.name()?
            };
            act::run(&a, id.as_deref(), &by, dry_run, cfg.json, color(&cfg)).await
        }
        ActCommand::Rollback { id, actor, cfg } => {
            let (a, _) = act::load(cfg.config.as_deref())?;
            act::rollback(&a, &id, &actor.name()?, color(&cfg)).await
        }
        ActCommand::Log { id, cfg } => {
            let (a, _) = act::load(cfg.config.as_deref())?;
            act::log(&a, id.as_deref(), cfg.json, color(&cfg))
        }
        ActCommand::List { cfg } => {
            let (a, _) = act::load(cfg.config.as_deref())?;
            act::list(&a, cfg.json, color(&cfg))
        }
        ActCommand::Propose {
            messages,
            cpf,
            since,
            window,
            top,
            incident,
            plan,
            model,
            cfg,
        } => {
            let (a, llm_settings) = act::load(cfg.config.as_deref())?;
            let args = act::ProposeArgs {
                messages,
                cpf,
                since,
                window: duration_arg("window", &window)?,
                top: top.max(1),
                incident,
                plan,
                use_llm: model.llm,
                budget_usd: model.budget,
            };
            act::propose(&a, llm_settings.as_ref(), &args, cfg.json, color(&cfg)).await
        }
        ActCommand::Drill(DrillCommand::Generate {
            categories,
            count,
            seed,
            append,
            send,
            model,
            cfg,
        }) => {
            let (a, llm_settings) = act::load(cfg.config.as_deref())?;
            let categories = categories
                .iter()
                .map(|c| c.parse().map_err(UsageError))
                .collect::<Result<Vec<_>, _>>()?;
            let args = act::DrillArgs {
                categories,
                count,
                seed,
                append,
                send,
                use_llm: model.llm,
                budget_usd: model.budget,
            };
            act::drill_generate(&a, llm_settings.as_ref(), &args, cfg.json).await
        }
        ActCommand::Drill(DrillCommand::Deliver { wait, cfg }) => {
            let (a, _) = act::load(cfg.config.as_deref())?;
            act::drill_deliver(&a, duration_arg("wait", &wait)?).await
        }
    }
}

async fn token(cmd: TokenCommand) -> Result<()> {
    use compass::serve::tokens;
    match cmd {
        TokenCommand::Create { name, role, db } => {
            tokens::create(db.url.as_deref(), db.config.as_deref(), &name, &role).await
        }
        TokenCommand::List { db } => tokens::list(db.url.as_deref(), db.config.as_deref()).await,
        TokenCommand::Revoke { name, db } => {
            tokens::revoke(db.url.as_deref(), db.config.as_deref(), &name).await
        }
    }
}
