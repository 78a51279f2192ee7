//! Investigating against live backends configured in `compass.toml`, and
//! `compass config check`. The incident comes from an Alertmanager webhook payload
//! (`--alert`) or from `--service`/`--at`; `--record DIR` keeps every backend response
//! as a bundle that `compass investigate --bundle DIR` replays offline.

use crate::cli::{self, Outcome, RunSettings, SourceSetup, UsageError};
use anyhow::{Context, Result};
use compass_adapters::config::{Settings, SourceCheck, check_sources};
use compass_core::{Incident, IncidentOrigin, Severity, TimeRange};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What to investigate and where to put the outputs.
#[derive(Debug, Clone, Default)]
pub struct LiveRequest {
    pub config: PathBuf,
    /// An Alertmanager webhook payload (version 4).
    pub alert: Option<PathBuf>,
    /// Services the symptom shows in (without `--alert`).
    pub services: Vec<String>,
    /// When the symptom began, RFC 3339 (without `--alert`).
    pub at: Option<String>,
    pub record: Option<PathBuf>,
    pub html: Option<PathBuf>,
}

fn load_settings(path: &Path) -> Result<Settings> {
    Settings::load(path).map_err(|e| UsageError(e.to_string()).into())
}

/// The incident the request describes.
fn incident(req: &LiveRequest, settings: &Settings) -> Result<Incident> {
    if let Some(path) = &req.alert {
        if !req.services.is_empty() || req.at.is_some() {
            return Err(UsageError(
                "--alert gives the services and the time; drop --service and --at".into(),
            )
            .into());
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the alert payload {}", path.display()))?;
        return compass_adapters::alertmanager::incident_from_alertmanager(
            &text,
            &settings.alert_service_labels,
        )
        .map_err(|e| UsageError(format!("alert payload {}: {e}", path.display())).into());
    }
    let Some(at) = &req.at else {
        return Err(UsageError(
            "say what to investigate: --alert payload.json, or --service NAME --at TIME".into(),
        )
        .into());
    };
    let start = chrono::DateTime::parse_from_rfc3339(at)
        .map_err(|e| {
            UsageError(format!(
                "--at {at}: {e}; write an RFC 3339 time such as 2026-11-22T09:42:00Z"
            ))
        })?
        .timestamp_millis();
    let title = if req.services.is_empty() {
        format!("Investigation at {at}")
    } else {
        format!("Symptoms on {} at {at}", req.services.join(", "))
    };
    Ok(Incident {
        id: format!("cli-{start}"),
        title,
        severity: Severity::Warning,
        start,
        affected_services: req.services.clone(),
        labels: Default::default(),
        origin: IncidentOrigin::Cli,
    })
}

/// `compass investigate --config FILE (--alert F | --service S --at T) [--record DIR]`.
pub async fn investigate(req: &LiveRequest, run: &RunSettings) -> Result<Outcome> {
    let settings = load_settings(&req.config)?;
    let incident = incident(req, &settings)?;
    if settings.sources.is_empty() {
        return Err(UsageError(format!(
            "{} configures no [sources]; add at least one (see docs/configuration.md)",
            settings.origin
        ))
        .into());
    }
    if let Some(dir) = &req.record {
        cli::ensure_empty_dir(dir)?;
    }
    let sources = settings
        .build_sources()
        .map_err(|e| UsageError(e.to_string()))?;
    let setup = SourceSetup {
        catalog: settings.catalog.clone(),
        call_timeout: Some(settings.worst_case_call()),
    };
    // The config file's [llm] applies unless --llm-config or --no-llm says otherwise.
    let mut run = run.clone();
    if run.llm.is_none() && !run.no_llm {
        run.llm = settings.llm.clone();
    }
    let run = &run;
    let inv = match &req.record {
        Some(dir) => {
            let (recording, recorder) = compass_adapters::record::record(&sources);
            let inv = cli::investigate_sources(&incident, &recording, setup, run).await;
            let summary = recorder
                .write_bundle(dir, &incident, &settings.catalog)
                .with_context(|| format!("cannot write the recording to {}", dir.display()))?;
            eprintln!(
                "recorded {} backend responses into {} (replay: compass investigate --bundle {})",
                summary.requests,
                dir.display(),
                dir.display()
            );
            inv
        }
        None => cli::investigate_sources(&incident, &sources, setup, run).await,
    };
    cli::report_investigation(&inv, req.html.as_deref(), run)
}

/// `compass config check --config FILE`: validate, ping every source, check the
/// mappings over the last `window`. Exit code 0 only when everything passed.
pub async fn check(config: &Path, window: Duration, color: bool) -> Result<Outcome> {
    let settings = load_settings(config)?;
    println!("{}: valid (version 1)", settings.origin);
    let end = chrono::Utc::now().timestamp_millis();
    let range = TimeRange {
        start: end - window.as_millis() as i64,
        end,
    };
    let checks = check_sources(&settings, range).await;
    if checks.is_empty() {
        println!("no [sources] configured: nothing to check");
    }
    let mut failed = 0;
    for c in &checks {
        print_check(c, color);
        if !c.passed() {
            failed += 1;
        }
    }
    if failed > 0 {
        return Err(anyhow::anyhow!(
            "{failed} of {} source(s) failed the check",
            checks.len()
        ));
    }
    Ok(Outcome::Done)
}

fn print_check(c: &SourceCheck, color: bool) {
    let paint = |ok: bool, text: &str| {
        if !color {
            return text.to_string();
        }
        let style = if ok {
            anstyle::AnsiColor::Green.on_default()
        } else {
            anstyle::AnsiColor::Red.on_default().bold()
        };
        format!("{style}{text}{style:#}")
    };
    let mark = |ok: bool| paint(ok, if ok { "ok  " } else { "FAIL" });
    match &c.reachable {
        Ok(desc) => println!(
            "{} {:<12} {:<10} {desc}",
            mark(true),
            c.name,
            c.kind.as_str()
        ),
        Err(e) => println!("{} {:<12} {:<10} {e}", mark(false), c.name, c.kind.as_str()),
    }
    for (ok, finding) in &c.findings {
        println!("     {} {finding}", paint(*ok, if *ok { "✓" } else { "✗" }));
    }
}
