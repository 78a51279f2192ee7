//! Orient: turn every agent's hypotheses into one ranked list.
//!
//! 1. **Merge** duplicates (same service and fault kind): pool evidence, observation ids,
//!    proposers and next checks; combine confidences (noisy-OR weighted by expertise).
//!    Hypotheses of unknown fault kind fold into a known one about the same service.
//! 2. **Resolve conflicts** (same service, different fault kinds): a change that precedes
//!    the errors on its service explains them and absorbs them; otherwise expertise-weighted vote,
//!    then evidence quality, then statistics (supporting observations), then highest
//!    confidence. The loser stays, demoted, as an alternative.
//! 3. **Disprove**: temporal (the effect started before the cause), scope (the affected
//!    set is not inside the cause's blast radius), threshold (the signal never left its
//!    normal band). Confidence is recomputed from the outcomes.
//! 4. **Rank**: topology-aware (a service whose anomaly is explained by an anomalous
//!    callee is likely a symptom), then by confidence.
//!
//! Pure and deterministic: same input, same output.

use crate::data::{AnalysisWindow, CallGraph};
use crate::model::{
    Category, DisproofAttempt, DisproofOutcome, DisproofStrategy, EpochMs, FaultKind, Hypothesis,
    HypothesisStatus, Incident, Observation,
};
use std::collections::{BTreeMap, BTreeSet};

/// Everything orient needs besides the hypotheses.
#[derive(Debug, Clone, Copy)]
pub struct OrientContext<'a> {
    pub incident: &'a Incident,
    pub window: AnalysisWindow,
    pub observations: &'a [Observation],
    pub graph: &'a CallGraph,
    /// Each agent's expertise, by agent name.
    pub expertise: &'a BTreeMap<String, Vec<Category>>,
    /// Tolerance for temporal comparisons (about two metric steps).
    pub tolerance_ms: i64,
}

/// Weight of an agent's vote on a hypothesis of `category`.
fn expertise_weight(ctx: &OrientContext<'_>, agent: &str, category: Category) -> f64 {
    match ctx.expertise.get(agent) {
        Some(cats) if cats.contains(&category) => 1.0,
        Some(_) => 0.6,
        None => 0.5,
    }
}

/// Merge, resolve conflicts, disprove and rank.
pub fn orient(hypotheses: Vec<Hypothesis>, ctx: &OrientContext<'_>) -> Vec<Hypothesis> {
    let merged = merge_duplicates(hypotheses, ctx);
    let mut resolved = resolve_conflicts(merged, ctx);
    for h in &mut resolved {
        disprove(h, ctx);
    }
    rank(resolved, ctx)
}

fn combine(a: f64, b: f64) -> f64 {
    1.0 - (1.0 - a.clamp(0.0, 1.0)) * (1.0 - b.clamp(0.0, 1.0))
}

fn absorb(into: &mut Hypothesis, other: Hypothesis) {
    for e in other.supporting {
        if !into.supporting.contains(&e) {
            into.supporting.push(e);
        }
    }
    for e in other.contradicting {
        if !into.contradicting.contains(&e) {
            into.contradicting.push(e);
        }
    }
    for id in other.observation_ids {
        if !into.observation_ids.contains(&id) {
            into.observation_ids.push(id);
        }
    }
    for a in other.proposed_by {
        if !into.proposed_by.contains(&a) {
            into.proposed_by.push(a);
        }
    }
    for c in other.next_checks {
        if !into.next_checks.contains(&c) {
            into.next_checks.push(c);
        }
    }
    into.onset = into.onset.min(other.onset);
    if into.root_cause.component.is_none() {
        into.root_cause.component = other.root_cause.component;
    }
}

/// Combine hypotheses about the same (service, fault kind).
pub fn merge_duplicates(hypotheses: Vec<Hypothesis>, ctx: &OrientContext<'_>) -> Vec<Hypothesis> {
    let mut groups: BTreeMap<(String, FaultKind), Vec<Hypothesis>> = BTreeMap::new();
    for h in hypotheses {
        groups
            .entry((h.root_cause.service.clone(), h.root_cause.fault_kind))
            .or_default()
            .push(h);
    }
    let mut out: Vec<Hypothesis> = Vec::new();
    for (_, mut group) in groups {
        group.sort_by(|a, b| b.confidence.value.total_cmp(&a.confidence.value));
        let mut iter = group.into_iter();
        let Some(mut best) = iter.next() else {
            continue;
        };
        let agents_before = best.proposed_by.len();
        let mut reasons = vec![best.confidence.reasoning.clone()];
        for other in iter {
            let w = other
                .proposed_by
                .iter()
                .map(|a| expertise_weight(ctx, a, other.category))
                .fold(0.0, f64::max);
            best.confidence.value = combine(best.confidence.value, other.confidence.value * w);
            reasons.push(other.confidence.reasoning.clone());
            absorb(&mut best, other);
        }
        if best.proposed_by.len() > agents_before {
            reasons.dedup();
            best.confidence.reasoning = reasons.join("; ");
        }
        out.push(best);
    }
    // Fold unknown-kind hypotheses into a known one about the same service.
    let (unknown, mut known): (Vec<_>, Vec<_>) = out
        .into_iter()
        .partition(|h| h.root_cause.fault_kind == FaultKind::Unknown);
    for u in unknown {
        let target = known
            .iter_mut()
            .filter(|k| k.root_cause.service == u.root_cause.service)
            .max_by(|a, b| a.confidence.value.total_cmp(&b.confidence.value));
        match target {
            Some(k) => {
                k.confidence.value = combine(k.confidence.value, u.confidence.value * 0.5);
                k.confidence.reasoning = format!(
                    "{}; corroborated: {}",
                    k.confidence.reasoning, u.confidence.reasoning
                );
                absorb(k, u);
            }
            None => known.push(u),
        }
    }
    known
}

/// The vote of one hypothesis in a conflict.
fn vote(h: &Hypothesis, ctx: &OrientContext<'_>) -> (f64, u8, usize, f64) {
    let weight: f64 = h
        .proposed_by
        .iter()
        .map(|a| expertise_weight(ctx, a, h.category))
        .sum::<f64>()
        * h.confidence.value;
    let quality = h
        .supporting
        .iter()
        .map(|e| e.quality as u8)
        .max()
        .unwrap_or(0);
    (weight, quality, h.observation_ids.len(), h.confidence.value)
}

/// Among hypotheses about one service with different fault kinds, keep the winner on
/// top and demote the rest.
pub fn resolve_conflicts(hypotheses: Vec<Hypothesis>, ctx: &OrientContext<'_>) -> Vec<Hypothesis> {
    let mut by_service: BTreeMap<String, Vec<Hypothesis>> = BTreeMap::new();
    for h in hypotheses {
        by_service
            .entry(h.root_cause.service.clone())
            .or_default()
            .push(h);
    }
    let mut out = Vec::new();
    for (_, group) in by_service {
        let mut group = explain_by_change(group, ctx);
        if group.len() > 1 {
            group.sort_by(|a, b| {
                let (va, vb) = (vote(a, ctx), vote(b, ctx));
                vb.0.total_cmp(&va.0)
                    .then(vb.1.cmp(&va.1))
                    .then(vb.2.cmp(&va.2))
                    .then(vb.3.total_cmp(&va.3))
                    .then(a.id.cmp(&b.id))
            });
            let winner_kind = group[0].root_cause.fault_kind;
            for loser in &mut group[1..] {
                loser.confidence.value *= 0.5;
                loser.confidence.reasoning = format!(
                    "{}; outvoted by {} for the same service",
                    loser.confidence.reasoning,
                    winner_kind.describe()
                );
            }
        }
        out.extend(group);
    }
    out
}

/// A change (deploy) on a service that precedes its other symptoms explains them: new
/// exceptions or slowness right after a rollout are what a bad deploy looks like. The
/// change hypothesis absorbs the error and unknown-kind hypotheses it precedes, as
/// corroboration, before any vote.
fn explain_by_change(group: Vec<Hypothesis>, ctx: &OrientContext<'_>) -> Vec<Hypothesis> {
    let Some(change_at) = group
        .iter()
        .position(|h| h.root_cause.fault_kind == FaultKind::BadDeploy)
    else {
        return group;
    };
    let change_onset = group[change_at].onset;
    let (explained, mut rest): (Vec<_>, Vec<_>) = group.into_iter().partition(|h| {
        matches!(
            h.root_cause.fault_kind,
            FaultKind::ErrorInjection | FaultKind::Unknown
        ) && change_onset <= median_onset(h, ctx) + ctx.tolerance_ms
    });
    let change = rest
        .iter_mut()
        .find(|h| h.root_cause.fault_kind == FaultKind::BadDeploy)
        .expect("the change hypothesis is not explained away");
    for h in explained {
        change.confidence.value = combine(change.confidence.value, h.confidence.value * 0.5);
        change.confidence.reasoning = format!(
            "{}; explains: {}",
            change.confidence.reasoning, h.confidence.reasoning
        );
        absorb(change, h);
    }
    rest
}

/// The median onset of a hypothesis' observations (its own onset when none are known):
/// one early blip among them does not move it.
fn median_onset(h: &Hypothesis, ctx: &OrientContext<'_>) -> EpochMs {
    let mut onsets: Vec<EpochMs> = ctx
        .observations
        .iter()
        .filter(|o| h.observation_ids.contains(&o.id))
        .map(|o| o.span.start)
        .collect();
    onsets.sort_unstable();
    onsets
        .get(onsets.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or(h.onset)
}

/// Services with any observation, and the first time each was seen anomalous.
fn anomalous_services<'a>(ctx: &OrientContext<'a>) -> BTreeMap<&'a str, EpochMs> {
    let mut m: BTreeMap<&str, EpochMs> = BTreeMap::new();
    for o in ctx.observations {
        let e = m.entry(o.subject.service.as_str()).or_insert(o.span.start);
        *e = (*e).min(o.span.start);
    }
    m
}

fn fmt_offset(ms: i64) -> String {
    let s = ms / 1000;
    if s.abs() >= 60 {
        format!("{}m{:02}s", s / 60, (s % 60).abs())
    } else {
        format!("{s}s")
    }
}

fn temporal(h: &Hypothesis, ctx: &OrientContext<'_>) -> DisproofAttempt {
    let expected = "the cause starts no later than the symptoms it explains".to_string();
    // The effect's onset is the median onset of the confident observations on the
    // services that depend on the cause: one early blip on a caller is noise, not the
    // effect starting first.
    let upstream = ctx.graph.upstream(&h.root_cause.service);
    let mut onsets: Vec<EpochMs> = ctx
        .observations
        .iter()
        .filter(|o| o.confidence >= 0.5 && upstream.contains(&o.subject.service))
        .map(|o| o.span.start)
        .collect();
    onsets.sort_unstable();
    let earliest_effect = onsets.get(onsets.len().saturating_sub(1) / 2).copied();
    let alert = ctx.incident.start;
    if h.onset > alert + ctx.tolerance_ms {
        return DisproofAttempt {
            strategy: DisproofStrategy::Temporal,
            expected,
            observed: format!("onset {} after the alert", fmt_offset(h.onset - alert)),
            outcome: DisproofOutcome::Disproven,
        };
    }
    match earliest_effect {
        Some(t) if h.onset > t + ctx.tolerance_ms => DisproofAttempt {
            strategy: DisproofStrategy::Temporal,
            expected,
            observed: format!(
                "callers were typically anomalous {} before this cause began",
                fmt_offset(h.onset - t)
            ),
            outcome: DisproofOutcome::Disproven,
        },
        Some(t) => DisproofAttempt {
            strategy: DisproofStrategy::Temporal,
            expected,
            observed: format!(
                "cause began {} before its callers turned anomalous (median onset)",
                fmt_offset((t - h.onset).max(0))
            ),
            outcome: DisproofOutcome::Survived,
        },
        None => DisproofAttempt {
            strategy: DisproofStrategy::Temporal,
            expected,
            observed: format!(
                "cause began {} before the alert",
                fmt_offset(alert - h.onset)
            ),
            outcome: DisproofOutcome::Survived,
        },
    }
}

fn scope(h: &Hypothesis, ctx: &OrientContext<'_>) -> DisproofAttempt {
    let service = h.root_cause.service.as_str();
    let expected = format!("the alerting services are {service} or call it");
    if ctx.graph.is_empty() {
        return DisproofAttempt {
            strategy: DisproofStrategy::Scope,
            expected,
            observed: "no call graph available".into(),
            outcome: DisproofOutcome::Inconclusive,
        };
    }
    let mut radius: BTreeSet<String> = ctx.graph.upstream(service);
    radius.insert(service.to_string());
    let known: BTreeSet<&str> = ctx.graph.services();
    let outside: Vec<&str> = ctx
        .incident
        .affected_services
        .iter()
        .map(String::as_str)
        .filter(|s| known.contains(s) && !radius.contains(*s))
        .collect();
    if !outside.is_empty() {
        return DisproofAttempt {
            strategy: DisproofStrategy::Scope,
            expected,
            observed: format!("{} do(es) not depend on {service}", outside.join(", ")),
            outcome: DisproofOutcome::Disproven,
        };
    }
    let anomalous = anomalous_services(ctx);
    let explained = anomalous.keys().filter(|s| radius.contains(**s)).count();
    DisproofAttempt {
        strategy: DisproofStrategy::Scope,
        expected,
        observed: format!(
            "{explained} of {} anomalous services are in its blast radius",
            anomalous.len()
        ),
        // A cause that explains less than half of what is anomalous is not refuted
        // (other faults may coexist) but not supported by scope either.
        outcome: if 2 * explained >= anomalous.len() {
            DisproofOutcome::Survived
        } else {
            DisproofOutcome::Inconclusive
        },
    }
}

fn threshold(h: &Hypothesis, ctx: &OrientContext<'_>) -> DisproofAttempt {
    let expected = "the signal leaves its normal band".to_string();
    let strongest = ctx
        .observations
        .iter()
        .filter(|o| h.observation_ids.contains(&o.id))
        .map(|o| o.confidence)
        .fold(f64::NAN, f64::max);
    if strongest.is_nan() {
        return DisproofAttempt {
            strategy: DisproofStrategy::Threshold,
            expected,
            observed: "no measured signal behind this hypothesis".into(),
            outcome: DisproofOutcome::Inconclusive,
        };
    }
    let outcome = if strongest < 0.25 {
        DisproofOutcome::Disproven
    } else {
        DisproofOutcome::Survived
    };
    DisproofAttempt {
        strategy: DisproofStrategy::Threshold,
        expected,
        observed: format!("strongest signal has detector confidence {strongest:.2}"),
        outcome,
    }
}

/// Run every disproof strategy and recompute confidence and status.
pub fn disprove(h: &mut Hypothesis, ctx: &OrientContext<'_>) {
    h.status = HypothesisStatus::Validating;
    h.disproof = vec![temporal(h, ctx), scope(h, ctx), threshold(h, ctx)];
    let disproven: Vec<&DisproofAttempt> = h
        .disproof
        .iter()
        .filter(|d| d.outcome == DisproofOutcome::Disproven)
        .collect();
    let inconclusive = h
        .disproof
        .iter()
        .filter(|d| d.outcome == DisproofOutcome::Inconclusive)
        .count();
    if let Some(first) = disproven.first() {
        h.confidence.value *= 0.2;
        h.confidence.reasoning = format!(
            "{}; disproven ({}): {}",
            h.confidence.reasoning,
            first.strategy.as_str(),
            first.observed
        );
        h.status = HypothesisStatus::Disproven;
        return;
    }
    h.confidence.value *= 0.95_f64.powi(inconclusive as i32);
    h.status = if h.confidence.value >= 0.5 {
        HypothesisStatus::Validated
    } else {
        HypothesisStatus::RequiresHuman
    };
}

/// Topology-aware ranking, best first.
pub fn rank(mut hypotheses: Vec<Hypothesis>, ctx: &OrientContext<'_>) -> Vec<Hypothesis> {
    // A service whose (transitive) callee also has a surviving, stronger hypothesis is
    // more likely a symptom of it than a cause.
    let strength: BTreeMap<String, f64> = hypotheses
        .iter()
        .filter(|h| h.status != HypothesisStatus::Disproven)
        .fold(BTreeMap::new(), |mut m, h| {
            let e = m.entry(h.root_cause.service.clone()).or_insert(0.0_f64);
            *e = e.max(h.confidence.value);
            m
        });
    for h in &mut hypotheses {
        if h.status == HypothesisStatus::Disproven
            || h.root_cause.fault_kind == FaultKind::BadDeploy
        {
            continue;
        }
        let downstream = ctx.graph.downstream(&h.root_cause.service);
        let culprit = strength
            .iter()
            .filter(|(s, c)| downstream.contains(*s) && **c >= 0.8 * h.confidence.value)
            .max_by(|a, b| a.1.total_cmp(b.1));
        if let Some((s, _)) = culprit {
            h.confidence.value *= 0.6;
            h.confidence.reasoning = format!(
                "{}; its callee {s} is anomalous too",
                h.confidence.reasoning
            );
            if h.status == HypothesisStatus::Validated && h.confidence.value < 0.5 {
                h.status = HypothesisStatus::RequiresHuman;
            }
        }
    }
    hypotheses.sort_by(|a, b| {
        let disproven = |h: &Hypothesis| h.status == HypothesisStatus::Disproven;
        disproven(a)
            .cmp(&disproven(b))
            .then(b.confidence.value.total_cmp(&a.confidence.value))
            .then(a.id.cmp(&b.id))
    });
    for h in &mut hypotheses {
        h.confidence.value = (h.confidence.value * 1000.0).round() / 1000.0;
    }
    hypotheses
}
