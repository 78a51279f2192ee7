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

/// The observations the digest shows: the most confident first (ties by id).
fn strongest(observations: &[Observation]) -> Vec<&Observation> {
    let mut obs: Vec<&Observation> = observations.iter().collect();
    obs.sort_by(|a, b| {
        b.confidence
            .total_cmp(&a.confidence)
            .then_with(|| a.id.cmp(&b.id))
    });
    obs.truncate(MAX_OBSERVATIONS);
    obs
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

    // The call graph near the suspects: edges touching a service the alert names or a
    // shown observation or hypothesis is about come first; grouped by caller
    // (`a->b,c`), which says the same in far fewer tokens.
    let mut suspects: std::collections::BTreeSet<&str> = input
        .hypotheses
        .iter()
        .take(MAX_HYPOTHESES)
        .map(|h| h.root_cause.service.as_str())
        .collect();
    suspects.extend(inc.affected_services.iter().map(String::as_str));
    suspects.extend(
        strongest(input.observations)
            .into_iter()
            .map(|o| o.subject.service.as_str()),
    );
    let touches =
        |(a, b): &&(String, String)| suspects.contains(a.as_str()) || suspects.contains(b.as_str());
    let mut near: Vec<&(String, String)> = input.graph.edges.iter().filter(touches).collect();
    near.extend(input.graph.edges.iter().filter(|e| !touches(e)));
    near.truncate(MAX_EDGES);
    near.sort();
    let mut grouped: Vec<(&str, Vec<&str>)> = Vec::new();
    for (a, b) in &near {
        match grouped.last_mut() {
            Some((caller, callees)) if *caller == a.as_str() => callees.push(b.as_str()),
            _ => grouped.push((a.as_str(), vec![b.as_str()])),
        }
    }
    if !grouped.is_empty() {
        let _ = writeln!(
            out,
            "CALLS ({} edges{}; caller->callees): {}",
            input.graph.edges.len(),
            if input.graph.edges.len() > near.len() {
                format!(", the {} nearest the suspects", near.len())
            } else {
                String::new()
            },
            grouped
                .iter()
                .map(|(a, bs)| format!("{a}->{}", bs.join(",")))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }

    let obs = strongest(input.observations);
    let _ = writeln!(
        out,
        "OBSERVATIONS ({} in all, {} most confident; id | kind | service/component | onset | magnitude | confidence | what it shows):",
        input.observations.len(),
        obs.len()
    );
    for o in &obs {
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
            // The service is in its own column: do not spend tokens on it twice.
            one_line(
                o.evidence
                    .summary
                    .strip_prefix(o.subject.service.as_str())
                    .map(str::trim_start)
                    .filter(|rest| !rest.is_empty())
                    .unwrap_or(&o.evidence.summary),
                MAX_LINE_CHARS
            )
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

#[cfg(test)]
mod tests {
    use super::*;
    use compass_core::redact::RedactionConfig;
    use compass_core::*;

    fn observation(id: &str, service: &str, confidence: f64, summary: &str) -> Observation {
        let span = TimeRange::new(1_000, 61_000);
        Observation {
            id: id.into(),
            agent: "test".into(),
            kind: ObservationKind::ErrorRateSurge,
            subject: Subject::service(service),
            span,
            magnitude: 5.0,
            confidence,
            evidence: Evidence {
                source: "test".into(),
                locator: Locator::Query {
                    language: "promql".into(),
                    query: "up".into(),
                },
                time_range: span,
                sample: Sample::Text {
                    text: String::new(),
                },
                quality: QualityGrade::Direct,
                stance: Stance::Supports,
                summary: summary.into(),
            },
        }
    }

    fn incident() -> Incident {
        Incident {
            id: "inc-1".into(),
            title: "checkout errors".into(),
            severity: Severity::Critical,
            start: 0,
            affected_services: vec!["checkout".into()],
            labels: Default::default(),
            origin: IncidentOrigin::Cli,
        }
    }

    fn render(observations: &[Observation], graph: &CallGraph) -> Digest {
        let services: Vec<String> = ["checkout", "payments", "db"].map(String::from).into();
        digest(
            &DigestInput {
                incident: &incident(),
                observations,
                hypotheses: &[],
                services: &services,
                graph,
            },
            &Redactor::new(&RedactionConfig::default()).unwrap(),
        )
    }

    #[test]
    fn calls_are_grouped_by_caller_and_the_suspects_neighbourhood_comes_first() {
        let mut graph = CallGraph::default();
        graph.add("checkout", "payments");
        graph.add("checkout", "db");
        for i in 0..MAX_EDGES + 10 {
            graph.add(&format!("a{i:03}"), &format!("b{i:03}"));
        }
        let obs = [observation("o1", "payments", 0.9, "errors")];
        let text = render(&obs, &graph).text;
        let calls = text.lines().find(|l| l.starts_with("CALLS")).unwrap();
        assert!(
            calls.contains(&format!(
                "{} edges, the {MAX_EDGES} nearest the suspects",
                MAX_EDGES + 12
            )),
            "{calls}"
        );
        assert!(calls.contains("checkout->db,payments"), "{calls}");
        let list = calls.split_once("): ").unwrap().1;
        assert_eq!(
            list.matches("->").count(),
            MAX_EDGES - 1,
            "one group for checkout: {calls}"
        );
    }

    #[test]
    fn observations_are_bounded_strongest_first_and_redacted() {
        let mut obs: Vec<Observation> = (0..MAX_OBSERVATIONS + 5)
            .map(|i| observation(&format!("o{i:02}"), "db", i as f64 / 100.0, "slow queries"))
            .collect();
        obs.push(observation(
            "secret",
            "checkout",
            0.99,
            &format!("login failed for ops@example.com {}", "x".repeat(400)),
        ));
        let d = render(&obs, &CallGraph::default());
        let lines: Vec<&str> = d.text.lines().collect();
        let first = lines
            .iter()
            .position(|l| l.starts_with("OBSERVATIONS"))
            .unwrap();
        assert!(
            lines[first + 1].starts_with("secret | "),
            "{}",
            lines[first + 1]
        );
        assert!(!d.text.contains("ops@example.com"));
        assert_eq!(d.redactions.get("email"), Some(&1));
        assert!(lines[first + 1].chars().count() < MAX_LINE_CHARS + 80);
        let shown = lines
            .iter()
            .filter(|l| l.starts_with('o') && l.contains(" | db | "))
            .count();
        assert_eq!(shown, MAX_OBSERVATIONS - 1, "the weakest are left out");
        assert!(
            !d.text.contains("o00 |"),
            "the least confident is not shown"
        );
    }
}
