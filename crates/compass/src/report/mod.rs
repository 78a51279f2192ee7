//! Every user-facing rendering of an [`Investigation`]: the terminal summary
//! ([`terminal`]), a machine-readable JSON object ([`json`]), a Markdown post-mortem
//! draft ([`markdown`]) and a self-contained HTML report ([`html`]).
//!
//! All renderers are pure functions of the investigation (and [`RenderOptions`]): they never
//! read the clock or the environment, so the same investigation always renders to the same
//! bytes. Times in the model are epoch milliseconds and are shown in UTC. Odd data (an
//! out-of-range timestamp, a NaN confidence, an empty sample) renders as something readable
//! rather than failing.

pub mod act;
pub mod cost;
mod html;
mod interactive;
mod json;
mod markdown;
mod svg;
mod terminal;

pub use html::{escape as escape_html, html, html_interactive};
pub use interactive::Interactive;
pub use json::json;
pub use markdown::markdown;
pub use terminal::terminal;

use chrono::{DateTime, SecondsFormat, Utc};
use compass_core::model::{
    EpochMs, Evidence, Hypothesis, HypothesisStatus, Investigation, Locator, RootCause, TimeRange,
};
use serde::Serialize;

/// How many hypotheses the Markdown and HTML reports describe in full.
pub const DEFAULT_TOP: usize = 5;

/// How many supporting evidence items a hypothesis shows in summaries.
const STRONGEST_EVIDENCE: usize = 3;

/// Options for the terminal rendering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderOptions {
    /// Emit ANSI colours (only when writing to a terminal that wants them).
    pub color: bool,
    /// Terminal columns; lines are wrapped or truncated to fit (60 at the least).
    pub width: usize,
    /// How many ranked hypotheses to show in full.
    pub top: usize,
}

impl Default for RenderOptions {
    fn default() -> Self {
        Self {
            color: false,
            width: 100,
            top: DEFAULT_TOP,
        }
    }
}

fn datetime(ms: EpochMs) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
}

/// `2026-03-14 09:32:00 UTC`, or the raw number when out of range.
fn utc(ms: EpochMs) -> String {
    datetime(ms).map_or_else(
        || format!("{ms} ms"),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

/// `2026-03-14 09:02:00 → 09:42:00 UTC` (the end's date only when it differs).
fn utc_span(range: TimeRange) -> String {
    match (datetime(range.start), datetime(range.end)) {
        (Some(start), Some(end)) if start.date_naive() == end.date_naive() => {
            format!(
                "{} → {} UTC",
                start.format("%Y-%m-%d %H:%M:%S"),
                end.format("%H:%M:%S")
            )
        }
        _ => format!("{} → {}", utc(range.start), utc(range.end)),
    }
}

/// `09:32:00` (time of day only, UTC).
pub(crate) fn utc_time(ms: EpochMs) -> String {
    datetime(ms).map_or_else(|| format!("{ms} ms"), |t| t.format("%H:%M:%S").to_string())
}

/// `2026-03-14T09:32:00.000Z`.
fn rfc3339(ms: EpochMs) -> String {
    datetime(ms).map_or_else(
        || format!("{ms} ms"),
        |t| t.to_rfc3339_opts(SecondsFormat::Millis, true),
    )
}

/// The serde name of a model enum (`"db_pool_exhaustion"`, `"timed_out"`), so labels in every
/// rendering match the JSON and the stored model exactly.
fn label<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::from("?"),
    }
}

/// A confidence clamped into `[0, 1]` (NaN becomes 0) for display.
fn unit(value: f64) -> f64 {
    if value.is_nan() {
        0.0
    } else {
        value.clamp(0.0, 1.0)
    }
}

/// `82%`.
fn percent(value: f64) -> String {
    format!("{:.0}%", unit(value) * 100.0)
}

/// `promql: rate(...)` or `logs/payments.log:1203-1288`.
fn locator_text(locator: &Locator) -> String {
    match locator {
        Locator::Query { language, query } => format!("{language}: {query}"),
        Locator::File { .. } => file_lines(locator).unwrap_or_default(),
    }
}

/// `path:first-last` (or `path:line`) for file locators.
fn file_lines(locator: &Locator) -> Option<String> {
    match locator {
        Locator::File {
            path,
            first_line,
            last_line,
        } if first_line == last_line => Some(format!("{path}:{first_line}")),
        Locator::File {
            path,
            first_line,
            last_line,
        } => Some(format!("{path}:{first_line}-{last_line}")),
        Locator::Query { .. } => None,
    }
}

/// `payments / db-pool / db_pool_exhaustion`.
fn root_cause_text(root_cause: &RootCause) -> String {
    match &root_cause.component {
        Some(component) => {
            format!(
                "{} / {} / {}",
                root_cause.service, component, root_cause.fault_kind
            )
        }
        None => format!("{} / {}", root_cause.service, root_cause.fault_kind),
    }
}

/// The `n` strongest items, best quality first; ties keep their original order.
fn strongest(evidence: &[Evidence], n: usize) -> Vec<&Evidence> {
    let mut sorted: Vec<&Evidence> = evidence.iter().collect();
    sorted.sort_by_key(|e| std::cmp::Reverse(e.quality));
    sorted.truncate(n);
    sorted
}

fn is_ruled_out(hypothesis: &Hypothesis) -> bool {
    matches!(
        hypothesis.status,
        HypothesisStatus::Disproven | HypothesisStatus::Rejected
    )
}

/// The best hypothesis that has not been ruled out.
fn leading(inv: &Investigation) -> Option<(usize, &Hypothesis)> {
    inv.hypotheses
        .iter()
        .enumerate()
        .find(|(_, h)| !is_ruled_out(h))
        .map(|(i, h)| (i + 1, h))
}

/// What a timeline event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EventKind {
    Alert,
    Entry,
    /// Onset of the hypothesis with this 1-based rank.
    Onset(usize),
}

#[derive(Debug, Clone, PartialEq)]
struct Event {
    time: EpochMs,
    kind: EventKind,
    label: String,
    service: Option<String>,
}

/// The alert, the recorded timeline entries and the onsets of the first `top` hypotheses,
/// in time order (ties keep that order). An entry at exactly the alert time replaces the
/// synthetic alert event.
fn timeline_events(inv: &Investigation, top: usize) -> Vec<Event> {
    let mut events = Vec::new();
    if !inv.timeline.iter().any(|e| e.time == inv.incident.start) {
        events.push(Event {
            time: inv.incident.start,
            kind: EventKind::Alert,
            label: format!("alert fired: {}", inv.incident.title),
            service: inv.incident.affected_services.first().cloned(),
        });
    }
    events.extend(inv.timeline.iter().map(|e| Event {
        time: e.time,
        kind: EventKind::Entry,
        label: e.label.clone(),
        service: e.service.clone(),
    }));
    events.extend(
        inv.hypotheses
            .iter()
            .take(top)
            .enumerate()
            .map(|(i, h)| Event {
                time: h.onset,
                kind: EventKind::Onset(i + 1),
                label: format!(
                    "onset of #{}: {}",
                    i + 1,
                    h.root_cause.fault_kind.describe()
                ),
                service: Some(h.root_cause.service.clone()),
            }),
    );
    events.sort_by_key(|e| e.time);
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use compass_core::model::{QualityGrade, Sample, Stance};

    fn evidence(quality: QualityGrade, summary: &str) -> Evidence {
        Evidence {
            source: "s".into(),
            locator: Locator::File {
                path: "a.log".into(),
                first_line: 3,
                last_line: 3,
            },
            time_range: TimeRange::new(0, 1),
            sample: Sample::Text {
                text: String::new(),
            },
            quality,
            stance: Stance::Supports,
            summary: summary.into(),
        }
    }

    #[test]
    fn strongest_sorts_by_quality_and_keeps_ties_in_order() {
        let items = [
            evidence(QualityGrade::Weak, "w"),
            evidence(QualityGrade::Direct, "d1"),
            evidence(QualityGrade::Indirect, "i"),
            evidence(QualityGrade::Direct, "d2"),
        ];
        let names: Vec<_> = strongest(&items, 3)
            .iter()
            .map(|e| e.summary.as_str())
            .collect();
        assert_eq!(names, ["d1", "d2", "i"]);
    }

    #[test]
    fn odd_values_render_readably() {
        assert_eq!(utc(i64::MAX), format!("{} ms", i64::MAX));
        assert_eq!(percent(f64::NAN), "0%");
        assert_eq!(percent(1.7), "100%");
        assert_eq!(
            file_lines(&evidence(QualityGrade::Weak, "").locator).unwrap(),
            "a.log:3"
        );
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(label(&HypothesisStatus::RequiresHuman), "requires_human");
    }
}

/// What the model did, in the words every renderer uses.
mod llm_text {
    use compass_core::model::{FollowUp, FollowUpOutcome, LlmReport};

    /// `openai/gpt-4o-mini · 3 calls · 2,140 tokens · $0.0009`.
    pub(super) fn headline(report: &LlmReport) -> String {
        let cost = report.cost();
        format!(
            "{}/{} · {} call{} · {} tokens · ${:.4}",
            report.provider,
            report.model,
            report.calls.len(),
            if report.calls.len() == 1 { "" } else { "s" },
            thousands(cost.prompt_tokens + cost.completion_tokens),
            cost.usd
        )
    }

    /// `5 items redacted before anything left the machine: 3 email, 2 ip`, or `None`.
    pub(super) fn redactions(report: &LlmReport) -> Option<String> {
        let total = report.redaction_total();
        (total > 0).then(|| {
            let kinds: Vec<String> = report
                .redactions
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(k, n)| format!("{n} {k}"))
                .collect();
            format!(
                "{total} item{} redacted before anything left the machine: {}",
                if total == 1 { "" } else { "s" },
                kinds.join(", ")
            )
        })
    }

    /// `ran`, `rejected`, ... for a follow-up.
    pub(super) fn follow_up_outcome(f: &FollowUp) -> &'static str {
        match f.outcome {
            FollowUpOutcome::Ran => "ran",
            FollowUpOutcome::Rejected => "rejected",
            FollowUpOutcome::Failed => "failed",
            FollowUpOutcome::Skipped => "skipped",
        }
    }

    fn thousands(n: u64) -> String {
        let digits = n.to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        out
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn thousands_groups_digits() {
            assert_eq!(super::thousands(0), "0");
            assert_eq!(super::thousands(999), "999");
            assert_eq!(super::thousands(1234), "1,234");
            assert_eq!(super::thousands(1_234_567), "1,234,567");
        }
    }
}
