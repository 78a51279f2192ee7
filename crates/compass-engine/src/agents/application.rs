//! The application agent (logs): pages through every log line of the baseline and
//! incident windows, mines templates per service, and reports error surges, new
//! templates and per-template rate shifts. Errors whose lines name a callee ("call to
//! X failed") are symptoms; the deepest service with originating errors is the likely
//! cause. Proposes error injection.

use super::common::*;
use crate::agent::{Agent, AgentContext, AgentError, AgentOutput};
use crate::ports::LogQuery;
use async_trait::async_trait;
use compass_core::detect::{
    ShiftConfig, TemplateShiftConfig, WindowCounts, bucket_counts, error_keyword, metric_shift,
    rate_shift, template_shifts,
};
use compass_core::logmine::{TemplateId, TemplateMiner};
use compass_core::stats::{Direction, change_point};
use compass_core::{
    AnalysisWindow, Category, Confidence, EpochMs, FaultKind, Hypothesis, Incident, LogLevel,
    LogRecord, Observation, ObservationKind, QualityGrade, RootCause, Subject, TimeRange,
};
use std::collections::{BTreeMap, BTreeSet};

const NAME: &str = "application";
/// Component of error observations whose lines name one of the service's callees.
pub(crate) const FROM_CALLEE: &str = "callee-errors";
/// Component of error observations of the service's own making.
pub(crate) const OWN: &str = "errors";
/// Own errors that report a database connection or its pool failing.
pub(crate) const OWN_DB: &str = "errors-db-connection";
/// Own errors that report running out of memory.
pub(crate) const OWN_OOM: &str = "errors-out-of-memory";

/// What kind of own error a template reports (one of the `OWN*` components).
fn own_error_class(text: &str) -> &'static str {
    let lower = text.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| lower.contains(w));
    if has(&["out of memory", "outofmemory", "oomkilled"]) {
        OWN_OOM
    } else if has(&["pool"]) && has(&["connection"])
        || has(&["connection"]) && has(&["jdbc", "sql", "database", "db "])
    {
        OWN_DB
    } else {
        OWN
    }
}
/// Template shifts reported per service.
const MAX_SHIFTS: usize = 3;
/// A handful of extra lines is everyday noise: a shift needs volume and a clear score.
const SHIFTS: TemplateShiftConfig = TemplateShiftConfig {
    min_count: 20,
    min_ratio: 3.0,
    min_score: 6.0,
};

#[derive(Debug, Default)]
pub struct ApplicationAgent;

#[derive(Debug, Default)]
struct TemplateStats {
    counts: [u64; 2],
    max_level: Option<LogLevel>,
    error_level_lines: u64,
    times: Vec<EpochMs>,
    samples: Vec<LogRecord>,
}

#[derive(Debug, Default)]
struct ServiceLogs {
    miner: TemplateMiner,
    templates: Vec<TemplateStats>,
}

impl ServiceLogs {
    fn add(&mut self, window: usize, r: LogRecord) {
        let id = self.miner.add(&r.message) as usize;
        if self.templates.len() <= id {
            self.templates.resize_with(id + 1, TemplateStats::default);
        }
        let t = &mut self.templates[id];
        t.counts[window] += 1;
        t.max_level = t.max_level.max(Some(r.level));
        t.error_level_lines += u64::from(r.level.is_error());
        t.times.push(r.ts);
        if window == 1 && t.samples.len() < SAMPLE_LINES {
            t.samples.push(r);
        }
    }
    /// What kind of own error template `id` reports, read from its text and a sample
    /// line (masking may have hidden the telling word, as in `HikariPool-1`).
    fn error_class(&self, id: usize) -> &'static str {
        let sample = self.templates[id]
            .samples
            .first()
            .map_or("", |r| r.message.as_str());
        own_error_class(&format!(
            "{} {sample}",
            self.miner.template(id as TemplateId)
        ))
    }
    /// Whether template `id` reports failures (see `detect::is_error_line`).
    fn is_error(&self, id: usize) -> bool {
        let t = &self.templates[id];
        let text = self.miner.template(id as TemplateId);
        t.error_level_lines > 0
            || match error_keyword(text) {
                Some(k)
                    if [
                        "exception",
                        "traceback",
                        "panic",
                        "fatal",
                        "stack trace",
                        "out of memory",
                    ]
                    .contains(&k) =>
                {
                    true
                }
                Some(_) => t.max_level >= Some(LogLevel::Warn),
                None => false,
            }
    }
}

/// The window to compute log rates over: each side shrunk to the minutes the source
/// actually holds lines for (a source that keeps only a few minutes around an incident
/// would otherwise show every template surging against an empty baseline).
fn covered_window(w: &AnalysisWindow, minutes: [usize; 2]) -> AnalysisWindow {
    let span = |range: TimeRange, n: usize| (n.max(1) as i64 * 60_000).min(range.duration_ms());
    AnalysisWindow {
        baseline: TimeRange::new(
            w.baseline.end - span(w.baseline, minutes[0]),
            w.baseline.end,
        ),
        incident: TimeRange::new(
            w.incident.start,
            w.incident.start + span(w.incident, minutes[1]),
        ),
    }
}

/// When a count series steps up inside the incident window: the best mean-shift split
/// (robust to a few stray early events), else the first persistent excess.
fn count_onset(series: &[(EpochMs, f64)], w: &AnalysisWindow) -> Option<EpochMs> {
    let values: Vec<f64> = series.iter().map(|p| p.1).collect();
    let split = change_point(&values, 2)
        .filter(|c| c.after_mean > c.before_mean)
        .map(|c| series[c.index].0)
        .filter(|t| w.incident.contains(*t));
    split.or_else(|| {
        metric_shift(series, w, &ShiftConfig::counts())
            .filter(|s| s.direction() == Direction::Up)
            .map(|s| s.onset())
    })
}

/// Whether `text` names one of `names` as a whole word.
fn names_any(text: &str, names: &BTreeSet<&str>) -> bool {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .any(|w| names.contains(w))
}

fn first_line(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or("");
    if line.chars().count() > max {
        format!("{}...", line.chars().take(max).collect::<String>())
    } else {
        line.to_string()
    }
}

impl ApplicationAgent {
    fn analyse_service(
        &self,
        ctx: &AgentContext,
        source: &str,
        service: &str,
        logs: &ServiceLogs,
        rates: &AnalysisWindow,
        log: &mut ObservationLog,
    ) {
        let w = ctx.window;
        let q = LogQuery {
            service: Some(service.to_string()),
            min_level: None,
        };
        let bucket = ctx.step_ms.max(60_000);
        let callees: BTreeSet<&str> = if ctx.graph.is_empty() {
            ctx.services
                .iter()
                .map(String::as_str)
                .filter(|s| *s != service)
                .collect()
        } else {
            ctx.graph.callees(service).collect()
        };
        let counts: Vec<WindowCounts<usize>> = logs
            .templates
            .iter()
            .enumerate()
            .map(|(i, t)| WindowCounts {
                key: i,
                baseline: t.counts[0],
                incident: t.counts[1],
            })
            .collect();
        let shifts = template_shifts(&counts, rates, &SHIFTS);
        // Error surge over all error templates of the service.
        let errors: Vec<usize> = (0..logs.templates.len())
            .filter(|&i| logs.is_error(i))
            .collect();
        let total = WindowCounts {
            key: (),
            baseline: errors.iter().map(|&i| logs.templates[i].counts[0]).sum(),
            incident: errors.iter().map(|&i| logs.templates[i].counts[1]).sum(),
        };
        if let Some(surge) = rate_shift(&total, rates, &SHIFTS) {
            let error_times: Vec<EpochMs> = errors
                .iter()
                .flat_map(|&i| logs.templates[i].times.iter().copied())
                .collect();
            let series = bucket_counts(&error_times, w.whole(), bucket);
            let first = error_times
                .iter()
                .copied()
                .filter(|t| w.incident.contains(*t))
                .min()
                .unwrap_or(w.incident.start);
            let onset = count_onset(&series, &w).unwrap_or(first);
            // The surging error templates, strongest first.
            let surging: Vec<usize> = shifts
                .iter()
                .map(|s| s.key)
                .filter(|k| errors.contains(k))
                .collect();
            let top = surging.first().copied().or_else(|| {
                errors
                    .iter()
                    .copied()
                    .max_by_key(|&i| logs.templates[i].counts[1])
            });
            let own_top = surging
                .iter()
                .copied()
                .find(|&i| !names_any(logs.miner.template(i as TemplateId), &callees));
            let lines: Vec<&LogRecord> = top
                .map(|i| logs.templates[i].samples.iter().collect())
                .unwrap_or_default();
            let summary = format!(
                "{service} error lines {} from {} ({:.1}/min vs {:.1}/min){}",
                times(surge.ratio),
                hhmm(onset),
                surge.incident_rate,
                surge.baseline_rate,
                top.map(|i| format!(
                    ": \"{}\"",
                    first_line(logs.miner.template(i as TemplateId), 100)
                ))
                .unwrap_or_default()
            );
            let ev = log_evidence(
                source,
                log_query_text(ctx, &q),
                w.incident,
                &lines,
                top.map(|i| logs.miner.template(i as TemplateId)),
                QualityGrade::Direct,
                summary,
            );
            let component = match (own_top, surging.is_empty()) {
                (Some(i), _) => logs.error_class(i),
                (None, true) => OWN,
                (None, false) => FROM_CALLEE,
            };
            log.push(
                ObservationKind::ErrorRateSurge,
                Subject::with_component(service, component),
                onset,
                w.incident.end,
                surge.ratio,
                surge.confidence,
                ev,
            );
        }
        // New and surging templates that matter (errors or warnings).
        for s in shifts
            .iter()
            .filter(|s| {
                logs.is_error(s.key) || logs.templates[s.key].max_level >= Some(LogLevel::Warn)
            })
            .take(MAX_SHIFTS)
        {
            let t = &logs.templates[s.key];
            let text = logs.miner.template(s.key as TemplateId);
            let first = t
                .times
                .iter()
                .copied()
                .filter(|x| w.incident.contains(*x))
                .min()
                .unwrap_or(w.incident.start);
            // Even for a new template, a stray early line is not the onset.
            let onset =
                count_onset(&bucket_counts(&t.times, w.whole(), bucket), &w).unwrap_or(first);
            let kind = if s.is_new {
                ObservationKind::NewLogTemplate
            } else {
                ObservationKind::LogSpike
            };
            let summary = format!(
                "{} template in {service} from {} ({} lines, {:.1}/min vs {:.1}/min): \"{}\"",
                if s.is_new { "new" } else { "surging" },
                hhmm(onset),
                s.incident,
                s.incident_rate,
                s.baseline_rate,
                first_line(text, 100)
            );
            let lines: Vec<&LogRecord> = t.samples.iter().collect();
            let quality = if logs.is_error(s.key) {
                QualityGrade::Direct
            } else {
                QualityGrade::Indirect
            };
            let ev = log_evidence(
                source,
                log_query_text(ctx, &q),
                w.incident,
                &lines,
                Some(text),
                quality,
                summary,
            );
            let component = if !logs.is_error(s.key) {
                "warnings"
            } else if names_any(text, &callees) {
                FROM_CALLEE
            } else {
                logs.error_class(s.key)
            };
            log.push(
                kind,
                Subject::with_component(service, component),
                onset,
                w.incident.end,
                s.ratio,
                s.confidence,
                ev,
            );
        }
    }
}

#[async_trait]
impl Agent for ApplicationAgent {
    fn name(&self) -> &'static str {
        NAME
    }
    fn expertise(&self) -> &'static [Category] {
        &[Category::Application]
    }
    async fn observe(
        &self,
        _incident: &Incident,
        ctx: &AgentContext,
    ) -> Result<AgentOutput, AgentError> {
        let logs = logs_source(ctx)?;
        let mut per_service: BTreeMap<String, ServiceLogs> = BTreeMap::new();
        let mut problems = Vec::new();
        let all = LogQuery::default();
        let mut covered: [BTreeSet<EpochMs>; 2] = Default::default();
        for (window, range) in [ctx.window.baseline, ctx.window.incident]
            .into_iter()
            .enumerate()
        {
            for_each_log_page(logs, &all, range, &mut problems, |items| {
                for r in items {
                    covered[window].insert(r.ts.div_euclid(60_000));
                    if !per_service.contains_key(&r.service) {
                        per_service.insert(r.service.clone(), ServiceLogs::default());
                    }
                    per_service
                        .get_mut(&r.service)
                        .expect("inserted")
                        .add(window, r);
                }
            })
            .await?;
        }
        let rates = covered_window(&ctx.window, [covered[0].len(), covered[1].len()]);
        let mut log = ObservationLog::new(NAME);
        for (service, s) in &per_service {
            self.analyse_service(ctx, logs.name(), service, s, &rates, &mut log);
        }
        problems.sort();
        problems.dedup();
        Ok(AgentOutput {
            observations: log.observations,
            problems,
            ..AgentOutput::default()
        })
    }

    fn orient(&self, observations: &[Observation], ctx: &AgentContext) -> Vec<Hypothesis> {
        let is_error_obs = |o: &&Observation| {
            matches!(
                o.kind,
                ObservationKind::ErrorRateSurge
                    | ObservationKind::NewLogTemplate
                    | ObservationKind::LogSpike
            ) && matches!(
                o.subject.component.as_deref(),
                Some(OWN) | Some(OWN_DB) | Some(OWN_OOM) | Some(FROM_CALLEE)
            )
        };
        let erroring: BTreeSet<&str> = observations
            .iter()
            .filter(is_error_obs)
            .map(|o| o.subject.service.as_str())
            .collect();
        let mut out = Vec::new();
        for &service in &erroring {
            let obs: Vec<&Observation> = observations
                .iter()
                .filter(is_error_obs)
                .filter(|o| o.subject.service == service)
                .collect();
            let own: Vec<&Observation> = obs
                .iter()
                .copied()
                .filter(|o| o.subject.component.as_deref() != Some(FROM_CALLEE))
                .collect();
            // The kind the strongest own error points at.
            let kind = match own
                .iter()
                .max_by(|a, b| a.confidence.total_cmp(&b.confidence))
                .and_then(|o| o.subject.component.as_deref())
            {
                Some(OWN_DB) => FaultKind::DbPoolExhaustion,
                Some(OWN_OOM) => FaultKind::MemoryLeak,
                _ => FaultKind::ErrorInjection,
            };
            let below = ctx.graph.downstream(service);
            let deepest = !erroring.iter().any(|o| *o != service && below.contains(*o));
            let top = obs.iter().map(|o| o.confidence).fold(0.0, f64::max);
            let new_template = own
                .iter()
                .any(|o| o.kind == ObservationKind::NewLogTemplate);
            let value = match (deepest, !own.is_empty()) {
                (true, true) => 0.45 + 0.35 * top + if new_template { 0.05 } else { 0.0 },
                (true, false) => 0.25,
                (false, _) => 0.1,
            };
            let mut reasoning = obs
                .iter()
                .map(|o| o.evidence.summary.as_str())
                .take(3)
                .collect::<Vec<_>>()
                .join("; ");
            if !deepest {
                reasoning.push_str("; a callee fails too");
            }
            out.push(Hypothesis::from_observations(
                NAME,
                RootCause {
                    service: service.to_string(),
                    component: None,
                    fault_kind: kind,
                },
                match kind {
                    FaultKind::DbPoolExhaustion => {
                        format!("{service} fails to get database connections")
                    }
                    FaultKind::MemoryLeak => format!("{service} runs out of memory"),
                    _ => format!("{service} throws errors of its own making"),
                },
                &obs,
                Confidence {
                    value: value.min(0.9),
                    reasoning,
                },
                vec![format!(
                    "read the new exceptions of {service} and the code path they name"
                )],
            ));
        }
        out
    }
}
