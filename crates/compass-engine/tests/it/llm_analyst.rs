//! The LLM steps over a finished investigation: typed answers merged without demoting
//! evidence, repair retry then fallback, budget gating (exactly N calls), daily budget,
//! redaction of the prompt, follow-up queries checked and run once.

use async_trait::async_trait;
use compass_core::*;
use compass_engine::fakes::{FakeMetrics, ScriptedModel};
use compass_engine::llm::analyst::crossed_thresholds;
use compass_engine::llm::{
    AnalystConfig, CallOutcome, CostLedger, LanguageModel, LedgerEntry, LlmAnalyst, LlmError,
    MemoryLedger, Price, utc_day,
};
use compass_engine::*;
use std::collections::BTreeMap;
use std::sync::Arc;

const MIN: i64 = 60_000;

fn incident(title: &str) -> Incident {
    Incident {
        id: "t-1".into(),
        title: title.into(),
        severity: Severity::Critical,
        start: 100 * MIN,
        affected_services: vec!["frontend".into()],
        labels: BTreeMap::new(),
        origin: IncidentOrigin::Cli,
    }
}

/// An agent that sees errors on one service and blames it (error injection).
struct Sees {
    name: &'static str,
    service: &'static str,
    confidence: f64,
}

#[async_trait]
impl Agent for Sees {
    fn name(&self) -> &'static str {
        self.name
    }
    fn expertise(&self) -> &'static [Category] {
        &[Category::Application]
    }
    async fn observe(&self, _: &Incident, _: &AgentContext) -> Result<AgentOutput, AgentError> {
        let span = TimeRange::new(95 * MIN, 105 * MIN);
        Ok(AgentOutput {
            observations: vec![Observation {
                id: format!("{}-1", self.name),
                agent: self.name.into(),
                kind: ObservationKind::ErrorRateSurge,
                subject: Subject::service(self.service),
                span,
                magnitude: 6.0,
                confidence: 0.9,
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
                    summary: format!("errors on {} jump 6x", self.service),
                },
            }],
            ..Default::default()
        })
    }
    fn orient(&self, observations: &[Observation], _: &AgentContext) -> Vec<Hypothesis> {
        observations
            .iter()
            .map(|o| {
                Hypothesis::from_observations(
                    self.name,
                    RootCause {
                        service: o.subject.service.clone(),
                        component: None,
                        fault_kind: FaultKind::ErrorInjection,
                    },
                    format!("{} throws", o.subject.service),
                    &[o],
                    Confidence {
                        value: self.confidence,
                        reasoning: "scripted".into(),
                    },
                    vec![],
                )
            })
            .collect()
    }
}

fn agents() -> Vec<Arc<dyn Agent>> {
    vec![
        Arc::new(Sees {
            name: "a",
            service: "backend",
            confidence: 0.8,
        }),
        Arc::new(Sees {
            name: "b",
            service: "frontend",
            confidence: 0.6,
        }),
    ]
}

const PRICE: Price = Price {
    input_per_mtok: 1.0,
    output_per_mtok: 1.0,
};

fn analyst(
    model: Arc<ScriptedModel>,
    ledger: Arc<MemoryLedger>,
    config: AnalystConfig,
) -> Arc<LlmAnalyst> {
    Arc::new(LlmAnalyst::new(model, PRICE, ledger, config).unwrap())
}

async fn investigate(
    model: Arc<ScriptedModel>,
    ledger: Arc<MemoryLedger>,
    config: AnalystConfig,
    budget: BudgetLimits,
    title: &str,
    sources: DataSources,
) -> Investigation {
    let coordinator = Coordinator::new(
        agents(),
        CoordinatorConfig {
            budget,
            ..CoordinatorConfig::default()
        },
    )
    .with_llm(analyst(model, ledger, config));
    coordinator
        .investigate(&incident(title), &sources, None)
        .await
}

const SUMMARY: &str = r#"{"summary": "backend throws errors (a-1); frontend errors follow."}"#;
const NOTHING: &str = r#"{"hypotheses": [], "queries": []}"#;

fn unsplit() -> AnalystConfig {
    AnalystConfig {
        shares: BTreeMap::new(),
        ..AnalystConfig::default()
    }
}

#[tokio::test]
async fn proposals_are_merged_without_demoting_evidence() {
    let answer = r#"{"hypotheses": [
        {"statement": "backend injects errors", "service": "backend", "fault_kind": "error_injection", "confidence": 0.9, "evidence": ["a-1"]},
        {"statement": "frontend CPU is saturated", "service": "frontend", "fault_kind": "cpu_saturation", "confidence": 0.99, "evidence": ["b-1"]}
    ], "queries": []}"#;
    let model = Arc::new(ScriptedModel::new("m").answer(answer).answer(SUMMARY));
    let ledger = Arc::new(MemoryLedger::new());
    let inv = investigate(
        model.clone(),
        ledger.clone(),
        AnalystConfig::default(),
        BudgetLimits::default(),
        "errors on frontend",
        DataSources::default(),
    )
    .await;
    let ids: Vec<&str> = inv.hypotheses.iter().map(|h| h.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "backend:error_injection:-",
            "frontend:error_injection:-",
            "frontend:cpu_saturation:-"
        ],
        "deterministic order kept, the new one last"
    );
    assert!(inv.hypotheses[0].proposed_by.contains(&"llm".to_string()));
    let added = &inv.hypotheses[2];
    assert_eq!(added.proposed_by, vec!["llm".to_string()]);
    assert!(
        !added.disproof.is_empty(),
        "the proposal went through disproof"
    );
    let lowest = inv.hypotheses[..2]
        .iter()
        .map(|h| h.confidence.value)
        .fold(1.0, f64::min);
    assert!(
        added.confidence.value <= lowest,
        "capped below the evidence"
    );
    let report = inv.llm.as_ref().unwrap();
    assert_eq!(report.added_hypotheses, vec!["frontend:cpu_saturation:-"]);
    assert_eq!(
        report.summary.as_deref(),
        Some("backend throws errors (a-1); frontend errors follow.")
    );
    let steps: Vec<(&str, &str)> = report
        .calls
        .iter()
        .map(|c| (c.step.as_str(), c.outcome.as_str()))
        .collect();
    assert_eq!(steps, [("hypotheses", "ok"), ("summary", "ok")]);
    assert_eq!(inv.status, InvestigationStatus::Completed);
    // The cost reached the investigation total, the agent runs and the ledger.
    let total: f64 = report.calls.iter().map(|c| c.usd).sum();
    assert!(total > 0.0 && (inv.cost.usd - total).abs() < 1e-12);
    assert!(
        inv.agents
            .iter()
            .any(|r| r.agent == "llm:hypotheses" && r.cost.usd > 0.0)
    );
    let entries = ledger.entries(TimeRange::new(0, i64::MAX)).await.unwrap();
    assert_eq!(entries.len(), 2);
    assert!(
        entries
            .iter()
            .all(|e| e.investigation_id == inv.id && e.reported)
    );
    // The prompt is the digest: ids and hypotheses, bounded.
    let first = &model.requests()[0];
    let prompt = &first.messages[1].content;
    assert!(prompt.contains("a-1") && prompt.contains("backend:error_injection:-"));
    assert!(first.schema.is_some());
}

#[tokio::test]
async fn an_invalid_answer_gets_one_repair_then_falls_back() {
    let bad = r#"{"hypotheses": [{"statement": "x", "service": "nowhere", "fault_kind": "cpu_saturation", "confidence": 2, "evidence": ["zz-9"]}], "queries": []}"#;
    let model = Arc::new(
        ScriptedModel::new("m")
            .answer(bad)
            .answer("not json at all")
            .answer(SUMMARY),
    );
    let inv = investigate(
        model.clone(),
        Arc::new(MemoryLedger::new()),
        AnalystConfig::default(),
        BudgetLimits::default(),
        "errors",
        DataSources::default(),
    )
    .await;
    let report = inv.llm.as_ref().unwrap();
    let outcomes: Vec<&str> = report.calls.iter().map(|c| c.outcome.as_str()).collect();
    assert_eq!(outcomes, ["invalid", "invalid", "ok"]);
    // The repair request carried the validation errors.
    let repair = &model.requests()[1];
    let last = &repair.messages.last().unwrap().content;
    assert!(last.contains("nowhere") && last.contains("zz-9"), "{last}");
    assert!(
        report
            .fallbacks
            .iter()
            .any(|f| f.starts_with("hypotheses:") && f.contains("invalid twice"))
    );
    assert_eq!(inv.hypotheses.len(), 2, "nothing added");
    assert!(report.summary.is_some());
    assert_eq!(inv.status, InvestigationStatus::Completed);
}

#[tokio::test]
async fn a_failing_provider_leaves_the_deterministic_result() {
    let model = Arc::new(
        ScriptedModel::new("m")
            .fail(LlmError::Unavailable {
                provider: "scripted".into(),
                detail: "HTTP 503".into(),
            })
            .fail(LlmError::Timeout {
                provider: "scripted".into(),
                after: std::time::Duration::from_secs(1),
            }),
    );
    let inv = investigate(
        model,
        Arc::new(MemoryLedger::new()),
        AnalystConfig::default(),
        BudgetLimits::default(),
        "errors",
        DataSources::default(),
    )
    .await;
    let report = inv.llm.as_ref().unwrap();
    assert_eq!(report.fallbacks.len(), 2, "{:?}", report.fallbacks);
    assert!(report.fallbacks[0].contains("HTTP 503"));
    assert!(report.summary.is_none());
    assert_eq!(inv.hypotheses[0].id, "backend:error_injection:-");
    // A timed-out call is charged its prompt (the provider may have billed it).
    assert!(report.calls[1].prompt_tokens > 0 && report.calls[1].usd > 0.0);
    assert_eq!(inv.status, InvestigationStatus::Completed);
}

/// Each call's (estimate, charge) in an unlimited run of the script.
async fn calls_of(script: fn() -> ScriptedModel) -> Vec<(f64, f64)> {
    let model = Arc::new(script());
    let inv = investigate(
        model.clone(),
        Arc::new(MemoryLedger::new()),
        unsplit(),
        BudgetLimits::default(),
        "errors",
        DataSources::default(),
    )
    .await;
    let report = inv.llm.unwrap();
    model
        .requests()
        .iter()
        .zip(&report.calls)
        .map(|(req, call)| {
            let estimate = (model.count_prompt_tokens(req) + req.max_tokens as u64) as f64 / 1e6;
            (estimate, call.usd)
        })
        .collect()
}

fn three_calls() -> ScriptedModel {
    ScriptedModel::new("m")
        .answer("{}")
        .answer(NOTHING)
        .answer(SUMMARY)
}

#[tokio::test]
async fn a_budget_that_allows_exactly_n_calls_makes_exactly_n() {
    let calls = calls_of(three_calls).await;
    assert_eq!(calls.len(), 3);
    for n in 0..=3usize {
        // Spent by the first n-1 calls plus the n-th call's estimate: exactly n fit.
        let limit = if n == 0 {
            calls[0].0 * 0.99
        } else {
            calls[..n - 1].iter().map(|c| c.1).sum::<f64>() + calls[n - 1].0
        };
        let model = Arc::new(three_calls());
        let inv = investigate(
            model.clone(),
            Arc::new(MemoryLedger::new()),
            unsplit(),
            BudgetLimits {
                max_usd: Some(limit),
                max_tokens: None,
            },
            "errors",
            DataSources::default(),
        )
        .await;
        assert_eq!(model.requests().len(), n, "budget for {n} calls");
        let report = inv.llm.as_ref().unwrap();
        let refused = report
            .calls
            .iter()
            .filter(|c| c.outcome == "refused")
            .count();
        if n < 3 {
            assert_eq!(inv.status, InvestigationStatus::BudgetExhausted, "n={n}");
            assert_eq!(refused, 1);
            assert!(
                report
                    .fallbacks
                    .iter()
                    .any(|f| f.contains("over the investigation budget"))
            );
            // Partial but well-formed: the deterministic ranking is all there.
            assert_eq!(inv.hypotheses.len(), 2);
            assert!(inv.cost.usd <= limit + 1e-12);
            let json = serde_json::to_string(&inv).unwrap();
            let back: Investigation = serde_json::from_str(&json).unwrap();
            assert_eq!(back.status, InvestigationStatus::BudgetExhausted);
        } else {
            assert_eq!(inv.status, InvestigationStatus::Completed);
            assert_eq!(refused, 0);
        }
    }
}

#[tokio::test]
async fn the_split_keeps_a_step_from_eating_the_others_share() {
    // Equal shares of a budget smaller than three first-call estimates: the first
    // step's share cannot cover its call, so nothing is spent at all.
    let calls = calls_of(three_calls).await;
    let limit = calls[0].0 * 2.0;
    let model = Arc::new(three_calls());
    let inv = investigate(
        model.clone(),
        Arc::new(MemoryLedger::new()),
        AnalystConfig::default(),
        BudgetLimits {
            max_usd: Some(limit),
            max_tokens: None,
        },
        "errors",
        DataSources::default(),
    )
    .await;
    assert_eq!(model.requests().len(), 0);
    assert_eq!(inv.status, InvestigationStatus::BudgetExhausted);
}

#[tokio::test]
async fn the_daily_budget_holds_across_investigations() {
    let ledger = Arc::new(MemoryLedger::new());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    ledger
        .record(&LedgerEntry {
            at: utc_day(now).start,
            investigation_id: "earlier".into(),
            agent: "summary".into(),
            provider: "scripted".into(),
            model: "m".into(),
            prompt_tokens: 1000,
            completion_tokens: 0,
            usd: 0.999_9,
            reported: true,
            outcome: CallOutcome::Ok,
        })
        .await
        .unwrap();
    let model = Arc::new(three_calls());
    let inv = investigate(
        model.clone(),
        ledger,
        AnalystConfig {
            daily_budget_usd: Some(1.0),
            ..AnalystConfig::default()
        },
        BudgetLimits::default(),
        "errors",
        DataSources::default(),
    )
    .await;
    assert_eq!(model.requests().len(), 0);
    assert_eq!(inv.status, InvestigationStatus::BudgetExhausted);
    let report = inv.llm.unwrap();
    assert!(
        report.fallbacks[0].contains("daily budget"),
        "{:?}",
        report.fallbacks
    );
}

#[test]
fn daily_thresholds_fire_once_when_crossed() {
    assert_eq!(crossed_thresholds(0.0, 0.49, 1.0), Vec::<f64>::new());
    assert_eq!(crossed_thresholds(0.4, 0.85, 1.0), vec![0.5, 0.8]);
    assert_eq!(crossed_thresholds(0.85, 1.2, 1.0), vec![1.0]);
    assert_eq!(crossed_thresholds(1.2, 1.5, 1.0), Vec::<f64>::new());
    assert!(crossed_thresholds(0.0, 1.0, 0.0).is_empty());
}

#[tokio::test]
async fn secrets_and_personal_data_never_reach_the_model() {
    let model = Arc::new(ScriptedModel::new("m").answer(NOTHING).answer(SUMMARY));
    let inv = investigate(
        model.clone(),
        Arc::new(MemoryLedger::new()),
        AnalystConfig::default(),
        BudgetLimits::default(),
        "errors for jane.doe@example.com from 10.1.2.3 token=sk-abcdefghijklmnopqrstuvwxyz123456",
        DataSources::default(),
    )
    .await;
    for req in model.requests() {
        for m in &req.messages {
            assert!(!m.content.contains("jane.doe@example.com"));
            assert!(!m.content.contains("10.1.2.3"));
            assert!(!m.content.contains("sk-abcdefghijklmnopqrstuvwxyz123456"));
        }
    }
    let report = inv.llm.unwrap();
    assert!(report.redaction_total() >= 3, "{:?}", report.redactions);
}

#[tokio::test]
async fn follow_up_queries_are_checked_run_once_and_cited() {
    let mut metrics = FakeMetrics::new("fake-metrics");
    let points: Vec<(EpochMs, f64)> = (0..120)
        .map(|m| (m * MIN, if m >= 95 { 0.95 } else { 0.2 }))
        .collect();
    metrics.push("process_cpu_ratio", &[("service", "frontend")], points);
    let sources = DataSources {
        metrics: Some(Arc::new(metrics)),
        ..DataSources::default()
    };
    let first = r#"{"hypotheses": [], "queries": [
        {"language": "promql", "query": "max by (service) (process_cpu_ratio{service=\"frontend\"})", "reason": "is frontend CPU bound?"},
        {"language": "promql", "query": "{__name__=~\".+\"}", "reason": "everything"}
    ]}"#;
    let revised = r#"{"hypotheses": [
        {"statement": "frontend CPU saturated", "service": "frontend", "fault_kind": "cpu_saturation", "confidence": 0.7, "evidence": ["llm-q1"]}
    ]}"#;
    let model = Arc::new(
        ScriptedModel::new("m")
            .answer(first)
            .answer(revised)
            .answer(SUMMARY),
    );
    let inv = investigate(
        model.clone(),
        Arc::new(MemoryLedger::new()),
        AnalystConfig::default(),
        BudgetLimits::default(),
        "errors",
        sources,
    )
    .await;
    let report = inv.llm.as_ref().unwrap();
    assert_eq!(report.follow_ups.len(), 2);
    assert_eq!(
        report.follow_ups[0].outcome,
        FollowUpOutcome::Ran,
        "{:?}",
        report.follow_ups[0]
    );
    assert_eq!(
        report.follow_ups[0].observation_id.as_deref(),
        Some("llm-q1")
    );
    assert_eq!(report.follow_ups[1].outcome, FollowUpOutcome::Rejected);
    assert!(
        inv.observations
            .iter()
            .any(|o| o.id == "llm-q1" && o.agent == "llm")
    );
    // The results went back to the model once, and the revision cites the new id.
    assert_eq!(model.requests().len(), 3);
    assert!(model.requests()[1].messages[1].content.contains("llm-q1"));
    let added = inv.hypotheses.last().unwrap();
    assert_eq!(added.observation_ids, vec!["llm-q1".to_string()]);
    assert_eq!(report.added_hypotheses, vec![added.id.clone()]);
}
