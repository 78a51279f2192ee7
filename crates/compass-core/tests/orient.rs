//! Behaviour of the orient step: merge, conflict resolution, disproof and ranking.

use compass_core::orient::{OrientContext, orient};
use compass_core::*;
use std::collections::BTreeMap;

const MIN: i64 = 60_000;

fn incident() -> Incident {
    Incident {
        id: "i".into(),
        title: "latency on frontend".into(),
        severity: Severity::Critical,
        start: 100 * MIN,
        affected_services: vec!["frontend".into()],
        labels: BTreeMap::new(),
        origin: IncidentOrigin::Cli,
    }
}

fn graph() -> CallGraph {
    let mut g = CallGraph::default();
    g.add("frontend", "checkout");
    g.add("checkout", "payment");
    g.add("frontend", "catalog");
    g.add("batch", "reports");
    g
}

fn obs(id: &str, agent: &str, service: &str, start: EpochMs, confidence: f64) -> Observation {
    Observation {
        id: id.into(),
        agent: agent.into(),
        kind: ObservationKind::LatencyShift,
        subject: Subject::service(service),
        span: TimeRange::new(start, 105 * MIN),
        magnitude: 5.0,
        confidence,
        evidence: Evidence {
            source: "test".into(),
            locator: Locator::Query {
                language: "promql".into(),
                query: format!("q{id}"),
            },
            time_range: TimeRange::new(start, 105 * MIN),
            sample: Sample::Text {
                text: String::new(),
            },
            quality: QualityGrade::Direct,
            stance: Stance::Supports,
            summary: format!("{service} anomalous"),
        },
    }
}

fn hyp(o: &Observation, kind: FaultKind, confidence: f64) -> Hypothesis {
    Hypothesis::from_observations(
        &o.agent,
        RootCause {
            service: o.subject.service.clone(),
            component: None,
            fault_kind: kind,
        },
        format!("{} {}", o.subject.service, kind),
        &[o],
        Confidence {
            value: confidence,
            reasoning: format!("{} saw it", o.agent),
        },
        vec![],
    )
}

fn expertise() -> BTreeMap<String, Vec<Category>> {
    BTreeMap::from([
        ("infrastructure".to_string(), vec![Category::Infrastructure]),
        ("application".to_string(), vec![Category::Application]),
        ("change".to_string(), vec![Category::Change]),
        (
            "tracing".to_string(),
            vec![Category::Application, Category::Infrastructure],
        ),
    ])
}

fn run(observations: &[Observation], hypotheses: Vec<Hypothesis>) -> Vec<Hypothesis> {
    let inc = incident();
    let g = graph();
    let ex = expertise();
    let ctx = OrientContext {
        incident: &inc,
        window: AnalysisWindow::around(inc.start, 40 * MIN, 10 * MIN, 5 * MIN),
        observations,
        graph: &g,
        expertise: &ex,
        tolerance_ms: MIN,
    };
    orient(hypotheses, &ctx)
}

#[test]
fn duplicates_merge_and_pool_evidence() {
    let a = obs("a", "infrastructure", "payment", 95 * MIN, 0.9);
    let b = obs("b", "tracing", "payment", 95 * MIN, 0.8);
    let hs = vec![
        hyp(&a, FaultKind::CpuSaturation, 0.6),
        hyp(&b, FaultKind::CpuSaturation, 0.5),
    ];
    let out = run(&[a, b], hs);
    assert_eq!(out.len(), 1);
    let h = &out[0];
    assert_eq!(h.supporting.len(), 2);
    assert_eq!(h.proposed_by, vec!["infrastructure", "tracing"]);
    assert!(
        h.confidence.value > 0.6,
        "pooled confidence rises: {}",
        h.confidence.value
    );
}

#[test]
fn unknown_kind_folds_into_known_hypothesis_for_same_service() {
    let a = obs("a", "infrastructure", "payment", 95 * MIN, 0.9);
    let b = obs("b", "tracing", "payment", 95 * MIN, 0.8);
    let out = run(
        &[a.clone(), b.clone()],
        vec![
            hyp(&a, FaultKind::CpuSaturation, 0.6),
            hyp(&b, FaultKind::Unknown, 0.5),
        ],
    );
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].root_cause.fault_kind, FaultKind::CpuSaturation);
    assert!(out[0].proposed_by.contains(&"tracing".to_string()));
}

#[test]
fn conflict_is_won_by_expertise_weighted_vote() {
    // The application agent claims a CPU problem (outside its expertise) with more raw
    // confidence than the infrastructure agent's memory claim (inside its expertise).
    let a = obs("a", "application", "payment", 95 * MIN, 0.9);
    let b = obs("b", "infrastructure", "payment", 95 * MIN, 0.9);
    let b2 = obs("b2", "tracing", "payment", 95 * MIN, 0.9);
    let out = run(
        &[a.clone(), b.clone(), b2.clone()],
        vec![
            hyp(&a, FaultKind::CpuSaturation, 0.7),
            hyp(&b, FaultKind::MemoryLeak, 0.6),
            hyp(&b2, FaultKind::MemoryLeak, 0.3),
        ],
    );
    assert_eq!(out[0].root_cause.fault_kind, FaultKind::MemoryLeak);
    assert!(out[1].confidence.reasoning.contains("outvoted"));
}

#[test]
fn conflict_tie_falls_back_to_evidence_quality() {
    let a = obs("a", "infrastructure", "payment", 95 * MIN, 0.9);
    let mut b = obs("b", "infrastructure", "payment", 95 * MIN, 0.9);
    b.evidence.quality = QualityGrade::Weak;
    let out = run(
        &[a.clone(), b.clone()],
        vec![
            hyp(&b, FaultKind::MemoryLeak, 0.6),
            hyp(&a, FaultKind::CpuSaturation, 0.6),
        ],
    );
    assert_eq!(out[0].root_cause.fault_kind, FaultKind::CpuSaturation);
}

#[test]
fn temporal_disproof_when_callers_were_anomalous_first() {
    let effect = obs("e", "tracing", "frontend", 90 * MIN, 0.9);
    let late = obs("l", "infrastructure", "payment", 97 * MIN, 0.9);
    let out = run(
        &[effect.clone(), late.clone()],
        vec![hyp(&late, FaultKind::CpuSaturation, 0.8)],
    );
    let h = &out[0];
    assert_eq!(h.status, HypothesisStatus::Disproven);
    let t = h
        .disproof
        .iter()
        .find(|d| d.strategy == DisproofStrategy::Temporal)
        .unwrap();
    assert_eq!(t.outcome, DisproofOutcome::Disproven);
    assert!(h.confidence.value < 0.2);
}

#[test]
fn temporal_disproof_when_cause_follows_alert() {
    let late = obs("l", "infrastructure", "payment", 104 * MIN, 0.9);
    let out = run(
        std::slice::from_ref(&late),
        vec![hyp(&late, FaultKind::CpuSaturation, 0.8)],
    );
    assert_eq!(out[0].status, HypothesisStatus::Disproven);
}

#[test]
fn scope_disproof_when_alerting_service_does_not_depend_on_cause() {
    let o = obs("r", "infrastructure", "reports", 95 * MIN, 0.9);
    let out = run(
        std::slice::from_ref(&o),
        vec![hyp(&o, FaultKind::CpuSaturation, 0.9)],
    );
    let s = out[0]
        .disproof
        .iter()
        .find(|d| d.strategy == DisproofStrategy::Scope)
        .unwrap();
    assert_eq!(s.outcome, DisproofOutcome::Disproven);
    assert_eq!(out[0].status, HypothesisStatus::Disproven);
}

#[test]
fn threshold_disproof_for_weak_signal() {
    let o = obs("w", "infrastructure", "payment", 95 * MIN, 0.1);
    let out = run(
        std::slice::from_ref(&o),
        vec![hyp(&o, FaultKind::CpuSaturation, 0.9)],
    );
    let s = out[0]
        .disproof
        .iter()
        .find(|d| d.strategy == DisproofStrategy::Threshold)
        .unwrap();
    assert_eq!(s.outcome, DisproofOutcome::Disproven);
}

#[test]
fn deepest_anomalous_service_ranks_above_its_callers() {
    let caller = obs("c", "tracing", "checkout", 95 * MIN, 0.9);
    let callee = obs("p", "infrastructure", "payment", 95 * MIN, 0.9);
    let out = run(
        &[caller.clone(), callee.clone()],
        vec![
            hyp(&caller, FaultKind::Unknown, 0.7),
            hyp(&callee, FaultKind::CpuSaturation, 0.65),
        ],
    );
    assert_eq!(out[0].root_cause.service, "payment");
    assert!(out[1].confidence.reasoning.contains("callee payment"));
}

#[test]
fn survivors_are_validated_or_need_a_human_and_order_is_deterministic() {
    let a = obs("a", "infrastructure", "payment", 95 * MIN, 0.9);
    let b = obs("b", "application", "catalog", 95 * MIN, 0.9);
    let hs = vec![
        hyp(&a, FaultKind::CpuSaturation, 0.9),
        hyp(&b, FaultKind::ErrorInjection, 0.3),
    ];
    let first = run(&[a.clone(), b.clone()], hs.clone());
    let mut reversed = hs;
    reversed.reverse();
    let second = run(&[a, b], reversed);
    assert_eq!(first, second);
    assert_eq!(first[0].status, HypothesisStatus::Validated);
    assert_eq!(first[1].status, HypothesisStatus::RequiresHuman);
}

#[test]
fn one_early_blip_on_a_caller_does_not_disprove_the_cause() {
    let blip = obs("b", "application", "frontend", 91 * MIN, 0.9);
    let effect1 = obs("e1", "tracing", "frontend", 97 * MIN, 0.9);
    let effect2 = obs("e2", "tracing", "checkout", 97 * MIN, 0.9);
    let cause = obs("c", "infrastructure", "payment", 96 * MIN, 0.9);
    let out = run(
        &[blip, effect1, effect2, cause.clone()],
        vec![hyp(&cause, FaultKind::CpuSaturation, 0.8)],
    );
    let t = out[0]
        .disproof
        .iter()
        .find(|d| d.strategy == DisproofStrategy::Temporal)
        .unwrap();
    assert_eq!(t.outcome, DisproofOutcome::Survived, "{t:?}");
}

#[test]
fn a_deploy_before_new_exceptions_explains_them() {
    let errors = obs("e", "application", "payment", 96 * MIN, 0.9);
    let traces = obs("t", "tracing", "payment", 96 * MIN, 0.9);
    let deploy = obs("d", "change", "payment", 95 * MIN, 0.9);
    let out = run(
        &[errors.clone(), traces.clone(), deploy.clone()],
        vec![
            hyp(&errors, FaultKind::ErrorInjection, 0.9),
            hyp(&traces, FaultKind::ErrorInjection, 0.9),
            hyp(&deploy, FaultKind::BadDeploy, 0.8),
        ],
    );
    assert_eq!(out.len(), 1, "{out:#?}");
    assert_eq!(out[0].root_cause.fault_kind, FaultKind::BadDeploy);
    assert!(out[0].proposed_by.contains(&"application".to_string()));
    assert!(out[0].confidence.value > 0.8);
}

#[test]
fn a_deploy_after_the_errors_began_does_not_explain_them() {
    let errors = obs("e", "application", "payment", 93 * MIN, 0.9);
    let deploy = obs("d", "change", "payment", 97 * MIN, 0.9);
    let out = run(
        &[errors.clone(), deploy.clone()],
        vec![
            hyp(&errors, FaultKind::ErrorInjection, 0.9),
            hyp(&deploy, FaultKind::BadDeploy, 0.8),
        ],
    );
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].root_cause.fault_kind, FaultKind::ErrorInjection);
}

#[test]
fn an_early_blip_among_the_errors_does_not_hide_the_deploy_behind_them() {
    let blip = obs("b", "tracing", "payment", 92 * MIN, 0.9);
    let errors = obs("e", "application", "payment", 96 * MIN, 0.9);
    let errors2 = obs("e2", "tracing", "payment", 96 * MIN, 0.9);
    let deploy = obs("d", "change", "payment", 95 * MIN, 0.9);
    let mut merged = hyp(&errors, FaultKind::ErrorInjection, 0.9);
    merged.observation_ids = vec!["b".into(), "e".into(), "e2".into()];
    merged.onset = 92 * MIN;
    let out = run(
        &[blip, errors, errors2, deploy.clone()],
        vec![merged, hyp(&deploy, FaultKind::BadDeploy, 0.8)],
    );
    assert_eq!(
        out[0].root_cause.fault_kind,
        FaultKind::BadDeploy,
        "{out:#?}"
    );
}

#[test]
fn scope_is_inconclusive_when_the_cause_explains_less_than_half_of_the_anomalies() {
    let cause = obs("p", "infrastructure", "payment", 95 * MIN, 0.9);
    let others = ["reports", "batch", "catalog"]
        .map(|s| obs(&format!("o-{s}"), "application", s, 95 * MIN, 0.9));
    let mut all = vec![cause.clone()];
    all.extend(others);
    let out = run(&all, vec![hyp(&cause, FaultKind::CpuSaturation, 0.9)]);
    let s = out[0]
        .disproof
        .iter()
        .find(|d| d.strategy == DisproofStrategy::Scope)
        .unwrap();
    assert_eq!(s.outcome, DisproofOutcome::Inconclusive, "{s:?}");
    assert!(s.observed.starts_with("1 of 4"), "{}", s.observed);
}
