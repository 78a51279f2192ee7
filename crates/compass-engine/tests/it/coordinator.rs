//! Coordinator semantics (design §4): concurrency, timeouts, deadline, failures,
//! deterministic order, budget exhaustion, cost totals and per-source circuit breakers.

use async_trait::async_trait;
use compass_core::*;
use compass_engine::breaker::BreakerConfig;
use compass_engine::*;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const MIN: i64 = 60_000;

fn incident() -> Incident {
    Incident {
        id: "t-1".into(),
        title: "errors on frontend".into(),
        severity: Severity::Critical,
        start: 100 * MIN,
        affected_services: vec!["frontend".into()],
        labels: BTreeMap::new(),
        origin: IncidentOrigin::Cli,
    }
}

/// What a scripted agent does in `observe`.
#[derive(Clone)]
enum Script {
    Ok,
    Sleep(Duration),
    Hang,
    Fail,
    Panic,
    DataProblem,
    Barrier(Arc<tokio::sync::Barrier>),
    Spend(f64),
    QueryMetrics,
}

struct Scripted {
    name: &'static str,
    script: Script,
}

fn observation(agent: &str, service: &str) -> Observation {
    Observation {
        id: format!("{agent}-1"),
        agent: agent.into(),
        kind: ObservationKind::ErrorRateSurge,
        subject: Subject::service(service),
        span: TimeRange::new(95 * MIN, 105 * MIN),
        magnitude: 4.0,
        confidence: 0.9,
        evidence: Evidence {
            source: "test".into(),
            locator: Locator::Query {
                language: "promql".into(),
                query: "up".into(),
            },
            time_range: TimeRange::new(95 * MIN, 105 * MIN),
            sample: Sample::Text {
                text: String::new(),
            },
            quality: QualityGrade::Direct,
            stance: Stance::Supports,
            summary: "errors".into(),
        },
    }
}

#[async_trait]
impl Agent for Scripted {
    fn name(&self) -> &'static str {
        self.name
    }
    fn expertise(&self) -> &'static [Category] {
        &[Category::Application]
    }
    async fn observe(&self, _: &Incident, ctx: &AgentContext) -> Result<AgentOutput, AgentError> {
        let mut out = AgentOutput {
            observations: vec![observation(self.name, self.name)],
            ..Default::default()
        };
        match &self.script {
            Script::Ok => {}
            Script::Sleep(d) => tokio::time::sleep(*d).await,
            Script::Hang => std::future::pending::<()>().await,
            Script::Fail => return Err(AgentError::Internal("boom".into())),
            Script::Panic => panic!("agent bug"),
            Script::DataProblem => out.problems.push("logs.jsonl line 7: invalid JSON".into()),
            Script::Barrier(b) => {
                b.wait().await;
            }
            Script::Spend(usd) => {
                out.cost = Cost {
                    prompt_tokens: 100,
                    completion_tokens: 10,
                    usd: *usd,
                };
                ctx.budget.charge(&out.cost);
            }
            Script::QueryMetrics => {
                let m = ctx
                    .sources
                    .metrics
                    .as_ref()
                    .ok_or(AgentError::MissingSource("metrics"))?;
                let q = MetricQuery {
                    metric: "up".into(),
                    matchers: vec![],
                    func: MetricFunc::Gauge,
                    aggregation: Aggregation::Sum,
                    by: vec![],
                };
                m.query_range(&q, ctx.window.incident, ctx.step_ms).await?;
            }
        }
        Ok(out)
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
                        value: 0.7,
                        reasoning: "scripted".into(),
                    },
                    vec![],
                )
            })
            .collect()
    }
}

fn agents(list: &[(&'static str, Script)]) -> Vec<Arc<dyn Agent>> {
    list.iter()
        .map(|(name, script)| {
            Arc::new(Scripted {
                name,
                script: script.clone(),
            }) as Arc<dyn Agent>
        })
        .collect()
}

async fn run(list: &[(&'static str, Script)], config: CoordinatorConfig) -> Investigation {
    run_with(list, config, DataSources::default()).await
}

async fn run_with(
    list: &[(&'static str, Script)],
    config: CoordinatorConfig,
    sources: DataSources,
) -> Investigation {
    Coordinator::new(agents(list), config)
        .investigate(&incident(), &sources, None)
        .await
}

fn run_of<'a>(inv: &'a Investigation, agent: &str) -> &'a AgentRun {
    inv.agents.iter().find(|r| r.agent == agent).unwrap()
}

#[tokio::test]
async fn agents_run_concurrently() {
    // Each agent waits until all three have arrived: run one after another, they
    // would all time out instead.
    let barrier = Arc::new(tokio::sync::Barrier::new(3));
    let config = CoordinatorConfig {
        agent_timeout: Duration::from_secs(5),
        ..Default::default()
    };
    let inv = run(
        &[
            ("a", Script::Barrier(barrier.clone())),
            ("b", Script::Barrier(barrier.clone())),
            ("c", Script::Barrier(barrier)),
        ],
        config,
    )
    .await;
    assert!(
        inv.agents
            .iter()
            .all(|r| r.status == AgentStatus::Succeeded),
        "{:?}",
        inv.agents
    );
    assert_eq!(inv.status, InvestigationStatus::Completed);
}

#[tokio::test(start_paused = true)]
async fn slow_agent_times_out_and_others_finish() {
    let config = CoordinatorConfig {
        agent_timeout: Duration::from_secs(30),
        ..Default::default()
    };
    let inv = run(&[("fast", Script::Ok), ("slow", Script::Hang)], config).await;
    assert_eq!(run_of(&inv, "fast").status, AgentStatus::Succeeded);
    let slow = run_of(&inv, "slow");
    assert_eq!(slow.status, AgentStatus::TimedOut);
    assert!(
        slow.error
            .as_deref()
            .unwrap()
            .contains("timed out after 30")
    );
    assert_eq!(inv.status, InvestigationStatus::Degraded);
    assert_eq!(
        inv.hypotheses.len(),
        1,
        "the fast agent's hypothesis survives"
    );
}

#[tokio::test(start_paused = true)]
async fn overall_deadline_cancels_outstanding_agents() {
    let config = CoordinatorConfig {
        agent_timeout: Duration::from_secs(600),
        deadline: Duration::from_secs(120),
        ..Default::default()
    };
    let inv = run(&[("done", Script::Ok), ("stuck", Script::Hang)], config).await;
    assert_eq!(inv.status, InvestigationStatus::DeadlineExceeded);
    assert_eq!(run_of(&inv, "stuck").status, AgentStatus::Cancelled);
    assert_eq!(run_of(&inv, "done").status, AgentStatus::Succeeded);
    assert!(!inv.hypotheses.is_empty());
}

#[tokio::test]
async fn failures_and_panics_are_recorded_and_survived() {
    let inv = run(
        &[
            ("bad", Script::Fail),
            ("buggy", Script::Panic),
            ("good", Script::Ok),
            ("partial", Script::DataProblem),
        ],
        CoordinatorConfig::default(),
    )
    .await;
    assert_eq!(run_of(&inv, "bad").status, AgentStatus::Failed);
    assert_eq!(run_of(&inv, "buggy").status, AgentStatus::Failed);
    assert_eq!(
        run_of(&inv, "buggy").error.as_deref(),
        Some("agent panicked")
    );
    assert_eq!(run_of(&inv, "good").status, AgentStatus::Succeeded);
    let partial = run_of(&inv, "partial");
    assert_eq!(partial.status, AgentStatus::Degraded);
    assert!(
        partial
            .error
            .as_deref()
            .unwrap()
            .contains("logs.jsonl line 7")
    );
    assert_eq!(inv.status, InvestigationStatus::Degraded);
    let services: Vec<&str> = inv
        .hypotheses
        .iter()
        .map(|h| h.root_cause.service.as_str())
        .collect();
    assert!(services.contains(&"good") && services.contains(&"partial"));
}

#[tokio::test(start_paused = true)]
async fn results_are_in_agent_order_not_completion_order() {
    let list = [
        ("alpha", Script::Sleep(Duration::from_secs(3))),
        ("beta", Script::Sleep(Duration::from_secs(2))),
        ("gamma", Script::Sleep(Duration::from_secs(1))),
    ];
    let first = run(&list, CoordinatorConfig::default()).await;
    let names: Vec<&str> = first.agents.iter().map(|r| r.agent.as_str()).collect();
    assert_eq!(names, ["alpha", "beta", "gamma"]);
    let second = run(&list, CoordinatorConfig::default()).await;
    assert_eq!(first.hypotheses, second.hypotheses);
    assert_eq!(first.observations, second.observations);
}

#[tokio::test(start_paused = true)]
async fn budget_exhaustion_cancels_outstanding_agents_and_keeps_partial_answer() {
    let config = CoordinatorConfig {
        budget: BudgetLimits {
            max_usd: Some(0.10),
            max_tokens: None,
        },
        ..Default::default()
    };
    let inv = run(
        &[("spender", Script::Spend(0.25)), ("waiter", Script::Hang)],
        config,
    )
    .await;
    assert_eq!(inv.status, InvestigationStatus::BudgetExhausted);
    let waiter = run_of(&inv, "waiter");
    assert_eq!(waiter.status, AgentStatus::Cancelled);
    assert!(waiter.error.as_deref().unwrap().contains("budget"));
    assert_eq!(inv.hypotheses.len(), 1, "the spender's finding is kept");
}

#[tokio::test]
async fn cost_is_summed_across_agents() {
    let inv = run(
        &[("a", Script::Spend(0.01)), ("b", Script::Spend(0.02))],
        CoordinatorConfig::default(),
    )
    .await;
    assert_eq!(inv.cost.prompt_tokens, 200);
    assert_eq!(inv.cost.completion_tokens, 20);
    assert!((inv.cost.usd - 0.03).abs() < 1e-9);
}

/// A metrics source that never answers and counts the calls it gets.
struct DeadMetrics(AtomicUsize);

#[async_trait]
impl MetricsSource for DeadMetrics {
    fn name(&self) -> &str {
        "dead"
    }
    async fn query_range(
        &self,
        _: &MetricQuery,
        _: TimeRange,
        _: i64,
    ) -> SourceResult<Vec<Series>> {
        self.0.fetch_add(1, Ordering::SeqCst);
        std::future::pending().await
    }
    async fn label_values(&self, _: &str, _: TimeRange) -> SourceResult<Vec<String>> {
        self.0.fetch_add(1, Ordering::SeqCst);
        std::future::pending().await
    }
}

#[tokio::test(start_paused = true)]
async fn dead_source_costs_one_timeout_not_one_per_query() {
    let dead = Arc::new(DeadMetrics(AtomicUsize::new(0)));
    let sources = DataSources {
        metrics: Some(dead.clone()),
        ..Default::default()
    };
    let config = CoordinatorConfig {
        breaker: BreakerConfig {
            failure_threshold: 1,
            cool_down: Duration::from_secs(300),
            call_timeout: Duration::from_secs(5),
        },
        ..Default::default()
    };
    let inv = run_with(
        &[
            ("m1", Script::QueryMetrics),
            ("m2", Script::QueryMetrics),
            ("m3", Script::QueryMetrics),
        ],
        config,
        sources,
    )
    .await;
    // Service discovery is the one call that waits for the timeout; every agent
    // after it is refused by the open breaker at once.
    assert_eq!(dead.0.load(Ordering::SeqCst), 1);
    for r in &inv.agents {
        assert_eq!(r.status, AgentStatus::Degraded, "{r:?}");
        assert!(
            r.error.as_deref().unwrap().contains("circuit open"),
            "{r:?}"
        );
    }
    assert!(
        inv.elapsed_ms < 6_000,
        "one timeout, not one per agent: {} ms",
        inv.elapsed_ms
    );
}

#[tokio::test]
async fn missing_source_degrades_the_agent_that_needs_it() {
    let inv = run(
        &[("m", Script::QueryMetrics), ("ok", Script::Ok)],
        CoordinatorConfig::default(),
    )
    .await;
    let m = run_of(&inv, "m");
    assert_eq!(m.status, AgentStatus::Degraded);
    assert_eq!(m.error.as_deref(), Some("no metrics source is configured"));
    assert_eq!(run_of(&inv, "ok").status, AgentStatus::Succeeded);
}

/// A trace source whose every call hangs.
struct HungTraces;

#[async_trait]
impl TraceSource for HungTraces {
    fn name(&self) -> &str {
        "hung"
    }
    async fn fetch_spans(
        &self,
        _: TimeRange,
        _: Option<&str>,
        _: Option<&str>,
        _: usize,
    ) -> SourceResult<Page<Span>> {
        std::future::pending().await
    }
    async fn call_graph(&self, _: TimeRange) -> SourceResult<CallGraph> {
        std::future::pending().await
    }
}

#[tokio::test(start_paused = true)]
async fn the_deadline_also_bounds_service_discovery() {
    let config = CoordinatorConfig {
        deadline: Duration::from_secs(5),
        breaker: BreakerConfig {
            failure_threshold: 1,
            cool_down: Duration::from_secs(300),
            call_timeout: Duration::from_secs(600),
        },
        ..Default::default()
    };
    let sources = DataSources {
        traces: Some(Arc::new(HungTraces)),
        ..Default::default()
    };
    let inv = run_with(&[("a", Script::Ok)], config, sources).await;
    assert_eq!(inv.status, InvestigationStatus::DeadlineExceeded);
    assert!(inv.elapsed_ms <= 5_100, "{} ms", inv.elapsed_ms);
    assert_eq!(run_of(&inv, "a").status, AgentStatus::Cancelled);
}
