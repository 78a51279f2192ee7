//! The compact digest of an investigation that a model sees: never raw logs, never an
//! unbounded list. Times are offsets from the alert (`t0`), so no clock or time zone
//! leaks in and the text stays short.
//!
//! Bounds: the [`MAX_OBSERVATIONS`] most confident observations (each line cut to
//! [`MAX_LINE_CHARS`]), the [`MAX_HYPOTHESES`] best-ranked deterministic hypotheses,
//! [`MAX_EDGES`] call-graph edges and [`MAX_SERVICES`] service names. The whole text
//! goes through the [`Redactor`] before it is used, and the counts of what was
//! replaced are returned for the report.

use compass_core::redact::Redactor;
use compass_core::{CallGraph, EpochMs, FaultKind, Hypothesis, Incident, Observation};
use std::collections::BTreeMap;
use std::fmt::Write;

pub const MAX_OBSERVATIONS: usize = 30;
pub const MAX_HYPOTHESES: usize = 8;
pub const MAX_EDGES: usize = 60;
pub const MAX_SERVICES: usize = 80;
pub const MAX_LINE_CHARS: usize = 200;

/// What goes into a digest.
#[derive(Debug, Clone, Copy)]
pub struct DigestInput<'a> {
    pub incident: &'a Incident,
    pub observations: &'a [Observation],
    /// Ranked, best first.
    pub hypotheses: &'a [Hypothesis],
    pub services: &'a [String],
    pub graph: &'a CallGraph,
}

/// The redacted digest text and what redaction replaced.
#[derive(Debug, Clone, PartialEq)]
pub struct Digest {
    pub text: String,
    pub redactions: BTreeMap<String, usize>,
}

fn offset(at: EpochMs, t0: EpochMs) -> String {
    let s = (at - t0) / 1000;
    if s >= 0 {
        format!("+{s}s")
    } else {
        format!("{s}s")
    }
}

fn one_line(text: &str, max: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let flat = flat.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        flat
    } else {
        let cut: String = flat.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

/// Every fault kind a hypothesis may name (the schema's enum).
pub fn fault_kind_names() -> Vec<&'static str> {
    FaultKind::ALL
        .iter()
        .filter(|k| **k != FaultKind::Unknown)
        .map(|k| k.as_str())
        .collect()
}

/// Render and redact the digest.
pub fn digest(input: &DigestInput<'_>, redactor: &Redactor) -> Digest {
    let inc = input.incident;
    let t0 = inc.start;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "INCIDENT {} | {} | severity {:?} | alert at t0 | affected: {}",
        inc.id,
        one_line(&inc.title, MAX_LINE_CHARS),
        inc.severity,
        if inc.affected_services.is_empty() {
            "-".to_string()
        } else {
            inc.affected_services.join(", ")
        }
    );

    let shown: Vec<&String> = input.services.iter().take(MAX_SERVICES).collect();
    let _ = writeln!(
        out,
        "SERVICES ({}{}): {}",
        input.services.len(),
        if input.services.len() > shown.len() {
            format!(", first {}", shown.len())
        } else {
            String::new()
        },
        shown
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );

    let edges: Vec<String> = input
        .graph
        .edges
        .iter()
        .take(MAX_EDGES)
        .map(|(a, b)| format!("{a}->{b}"))
        .collect();
    if !edges.is_empty() {
        let _ = writeln!(
            out,
            "CALLS ({} edges{}): {}",
            input.graph.edges.len(),
            if input.graph.edges.len() > edges.len() {
                format!(", first {}", edges.len())
            } else {
                String::new()
            },
            edges.join(" ")
        );
    }

    let mut obs: Vec<&Observation> = input.observations.iter().collect();
    obs.sort_by(|a, b| {
        b.confidence
            .total_cmp(&a.confidence)
            .then_with(|| a.id.cmp(&b.id))
    });
    let _ = writeln!(
        out,
        "OBSERVATIONS ({} in all, {} most confident; id | kind | service/component | onset | magnitude | confidence | what it shows):",
        input.observations.len(),
        obs.len().min(MAX_OBSERVATIONS)
    );
    for o in obs.iter().take(MAX_OBSERVATIONS) {
        let subject = match &o.subject.component {
            Some(c) => format!("{}/{c}", o.subject.service),
            None => o.subject.service.clone(),
        };
        let _ = writeln!(
            out,
            "{} | {} | {} | {} | {:.2} | {:.2} | {}",
            o.id,
            serde_json::to_value(o.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            subject,
            offset(o.span.start, t0),
            o.magnitude,
            o.confidence,
            one_line(&o.evidence.summary, MAX_LINE_CHARS)
        );
    }

    let _ = writeln!(
        out,
        "HYPOTHESES from the deterministic agents ({} in all, best first; rank | id | confidence | status | proposed by | evidence | statement):",
        input.hypotheses.len()
    );
    for (i, h) in input.hypotheses.iter().take(MAX_HYPOTHESES).enumerate() {
        let ids: Vec<&str> = h
            .observation_ids
            .iter()
            .take(6)
            .map(|s| s.as_str())
            .collect();
        let _ = writeln!(
            out,
            "{} | {} | {:.2} | {} | {} | {} | {}",
            i + 1,
            h.id,
            h.confidence.value,
            h.status.as_str(),
            h.proposed_by.join("+"),
            ids.join(","),
            one_line(&h.statement, MAX_LINE_CHARS)
        );
    }
    let _ = writeln!(out, "FAULT KINDS: {}", fault_kind_names().join(", "));

    let r = redactor.redact(&out);
    Digest {
        text: r.text,
        redactions: r.counts,
    }
}

/// Redact a piece of text that is added to a prompt after the digest (follow-up
/// results, validation errors), adding its counts to `counts`.
pub fn redact_into(
    text: &str,
    redactor: &Redactor,
    counts: &mut BTreeMap<String, usize>,
) -> String {
    let r = redactor.redact(text);
    for (k, n) in r.counts {
        *counts.entry(k).or_default() += n;
    }
    r.text
}
