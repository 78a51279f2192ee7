//! The machine-readable rendering: one JSON object with the incident, the ranked hypotheses
//! (evidence with exact locators and samples, disproof attempts, next checks), the agent
//! runs, cost, status and window.
//!
//! Times appear both as RFC 3339 strings (UTC, milliseconds) and as epoch milliseconds
//! (`*_ms`). Enum values use the model's serde names. Keys come out sorted (serde_json's
//! default map), so the output is stable byte for byte.

use super::label;
use super::rfc3339;
use compass_core::model::{
    AgentRun, DisproofAttempt, Evidence, Hypothesis, Incident, Investigation, TimeRange,
};
use serde_json::{Value, json};

/// Renders the investigation as one JSON object.
pub fn json(inv: &Investigation) -> Value {
    json!({
        "id": inv.id,
        "trace_id": inv.trace_id,
        "incident": incident(&inv.incident),
        "hypotheses": inv.hypotheses.iter().enumerate()
            .map(|(i, h)| hypothesis(i + 1, h))
            .collect::<Vec<_>>(),
        "agents": inv.agents.iter().map(agent).collect::<Vec<_>>(),
        "cost": {
            "prompt_tokens": inv.cost.prompt_tokens,
            "completion_tokens": inv.cost.completion_tokens,
            "usd": inv.cost.usd,
        },
        "status": label(&inv.status),
        "window": time_range(&inv.window),
        "timeline": inv.timeline.iter().map(|e| json!({
            "time": rfc3339(e.time),
            "time_ms": e.time,
            "label": e.label,
            "service": e.service,
        })).collect::<Vec<_>>(),
        "elapsed_ms": inv.elapsed_ms,
        "llm": inv.llm,
        "decisions": inv.decisions.iter().map(|d| json!({
            "hypothesis_id": d.hypothesis_id,
            "verdict": if d.confirmed { "confirmed" } else { "rejected" },
            "by": d.by,
            "note": d.note,
            "at": rfc3339(d.at),
            "at_ms": d.at,
        })).collect::<Vec<_>>(),
    })
}

fn incident(incident: &Incident) -> Value {
    json!({
        "id": incident.id,
        "title": incident.title,
        "severity": label(&incident.severity),
        "start": rfc3339(incident.start),
        "start_ms": incident.start,
        "affected_services": incident.affected_services,
        "labels": incident.labels,
        "origin": label(&incident.origin),
    })
}

fn time_range(range: &TimeRange) -> Value {
    json!({
        "start": rfc3339(range.start),
        "start_ms": range.start,
        "end": rfc3339(range.end),
        "end_ms": range.end,
    })
}

fn hypothesis(rank: usize, h: &Hypothesis) -> Value {
    json!({
        "rank": rank,
        "id": h.id,
        "statement": h.statement,
        "root_cause": {
            "service": h.root_cause.service,
            "component": h.root_cause.component,
            "fault_kind": label(&h.root_cause.fault_kind),
        },
        "category": label(&h.category),
        "confidence": h.confidence.value,
        "confidence_reasoning": h.confidence.reasoning,
        "status": h.status.as_str(),
        "proposed_by": h.proposed_by,
        "onset": rfc3339(h.onset),
        "onset_ms": h.onset,
        "evidence": h.supporting.iter().chain(&h.contradicting).map(evidence).collect::<Vec<_>>(),
        "disproof": h.disproof.iter().map(disproof).collect::<Vec<_>>(),
        "next_checks": h.next_checks,
    })
}

fn evidence(e: &Evidence) -> Value {
    json!({
        "source": e.source,
        "locator": e.locator,
        "time_range": time_range(&e.time_range),
        "quality": label(&e.quality),
        "stance": label(&e.stance),
        "summary": e.summary,
        "sample": e.sample,
    })
}

fn disproof(attempt: &DisproofAttempt) -> Value {
    json!({
        "strategy": label(&attempt.strategy),
        "expected": attempt.expected,
        "observed": attempt.observed,
        "outcome": label(&attempt.outcome),
    })
}

fn agent(run: &AgentRun) -> Value {
    json!({
        "agent": run.agent,
        "status": run.status.as_str(),
        "duration_ms": run.duration_ms,
        "observations": run.observations,
        "hypotheses": run.hypotheses,
        "tokens": run.cost.total_tokens(),
        "cost_usd": run.cost.usd,
        "error": run.error,
    })
}
