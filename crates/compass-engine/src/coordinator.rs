//! The OODA coordinator: runs every agent's observe and orient concurrently, each with
//! its own timeout inside an overall deadline, survives failures, cancels outstanding
//! agents when the budget runs out, then merges, disproves and ranks (compass-core's
//! `orient`) into one `Investigation`.
//!
//! Results are collected in agent-name order, never completion order, so the same
//! inputs give the same report.

use crate::agent::{Agent, AgentContext, AgentError, AgentOutput};
use crate::breaker::{BreakerConfig, with_breakers};
use crate::budget::{Budget, BudgetLimits};
use crate::catalog::MetricCatalog;
use crate::llm::{AnalysisEnv, LlmAnalyst};
use crate::ports::{DataSources, step_for};
use compass_core::orient::{OrientContext, orient};
use compass_core::{
    AgentRun, AgentStatus, AnalysisWindow, CallGraph, Category, Cost, Hypothesis, Incident,
    Investigation, InvestigationStatus, Observation, ObservationKind, TimelineEntry,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Settings of one investigation.
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    /// Each agent's own timeout.
    pub agent_timeout: Duration,
    /// The whole investigation's deadline.
    pub deadline: Duration,
    pub budget: BudgetLimits,
    /// Baseline length before the incident window.
    pub baseline: Duration,
    /// How long before the alert the incident window starts (faults precede alerts).
    pub lead: Duration,
    /// How long after the alert the incident window ends.
    pub after: Duration,
    /// Finest metric resolution to ask for.
    pub min_step: Duration,
    pub breaker: BreakerConfig,
    pub catalog: MetricCatalog,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        Self {
            agent_timeout: Duration::from_secs(30),
            deadline: Duration::from_secs(120),
            budget: BudgetLimits::default(),
            baseline: Duration::from_secs(40 * 60),
            lead: Duration::from_secs(10 * 60),
            after: Duration::from_secs(5 * 60),
            min_step: Duration::from_secs(15),
            breaker: BreakerConfig::default(),
            catalog: MetricCatalog::default(),
        }
    }
}

/// Progress of a running investigation, for display.
#[derive(Debug, Clone, PartialEq)]
pub enum ProgressEvent {
    Started {
        agents: Vec<String>,
    },
    AgentFinished(AgentRun),
    Orienting,
    /// The LLM steps started (only when a model is configured).
    Consulting {
        provider: String,
        model: String,
    },
}

/// Receives progress events (a terminal spinner, an SSE stream, ...).
pub type ProgressFn = Arc<dyn Fn(ProgressEvent) + Send + Sync>;

/// Runs investigations with a fixed set of agents.
pub struct Coordinator {
    agents: Vec<Arc<dyn Agent>>,
    config: CoordinatorConfig,
    llm: Option<Arc<LlmAnalyst>>,
}

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator")
            .field(
                "agents",
                &self.agents.iter().map(|a| a.name()).collect::<Vec<_>>(),
            )
            .field("config", &self.config)
            .field("llm", &self.llm)
            .finish()
    }
}

/// What one agent task returns.
struct AgentResult {
    output: Result<AgentOutput, AgentError>,
    hypotheses: Vec<Hypothesis>,
    elapsed: Duration,
}

impl Coordinator {
    /// Agents are kept sorted by name (the deterministic result order).
    pub fn new(mut agents: Vec<Arc<dyn Agent>>, config: CoordinatorConfig) -> Self {
        agents.sort_by_key(|a| a.name());
        Self {
            agents,
            config,
            llm: None,
        }
    }

    /// Run the LLM steps (extra hypotheses, follow-up queries, the summary) after the
    /// deterministic orient, within the same budget and deadline.
    pub fn with_llm(mut self, analyst: Arc<LlmAnalyst>) -> Self {
        self.llm = Some(analyst);
        self
    }

    pub fn config(&self) -> &CoordinatorConfig {
        &self.config
    }

    /// Investigate `incident` with `sources`. Never fails: problems are recorded in the
    /// agent runs and the investigation status.
    pub async fn investigate(
        &self,
        incident: &Incident,
        sources: &DataSources,
        progress: Option<ProgressFn>,
    ) -> Investigation {
        let started = Instant::now();
        let deadline = started + self.config.deadline;
        let emit = |e: ProgressEvent| {
            if let Some(p) = &progress {
                p(e)
            }
        };
        let window = AnalysisWindow::around(
            incident.start,
            self.config.baseline.as_millis() as i64,
            self.config.lead.as_millis() as i64,
            self.config.after.as_millis() as i64,
        );
        let guarded = with_breakers(sources, self.config.breaker);
        // Discovery counts against the deadline too; what it could not finish stays empty.
        let (graph, services) = tokio::time::timeout_at(deadline, self.discover(&guarded, window))
            .await
            .unwrap_or_else(|_| {
                tracing::warn!("deadline reached while discovering services and the call graph");
                (CallGraph::default(), Vec::new())
            });
        let step_ms = step_for(window.whole(), self.config.min_step.as_millis() as i64, 400);
        let budget = match &self.llm {
            Some(llm) => Budget::with_shares(self.config.budget, llm.config().shares.clone()),
            None => Budget::new(self.config.budget),
        };
        let ctx = Arc::new(AgentContext {
            sources: guarded,
            window,
            graph,
            services,
            catalog: self.config.catalog.clone(),
            budget: budget.clone(),
            step_ms,
        });
        emit(ProgressEvent::Started {
            agents: self.agents.iter().map(|a| a.name().to_string()).collect(),
        });

        let (results, status) = self
            .run_agents(incident, &ctx, &budget, deadline, &emit)
            .await;

        emit(ProgressEvent::Orienting);
        let mut runs = Vec::new();
        let mut observations: Vec<Observation> = Vec::new();
        let mut hypotheses = Vec::new();
        let mut cost = Cost::default();
        let mut any_degraded = false;
        for result in results {
            let run = result.run;
            any_degraded |= run.status != AgentStatus::Succeeded;
            cost.add(&run.cost);
            runs.push(run);
            observations.extend(result.observations);
            hypotheses.extend(result.hypotheses);
        }
        let expertise: BTreeMap<String, Vec<Category>> = self
            .agents
            .iter()
            .map(|a| (a.name().to_string(), a.expertise().to_vec()))
            .collect();
        let ranked = orient(
            hypotheses,
            &OrientContext {
                incident,
                window,
                observations: &observations,
                graph: &ctx.graph,
                expertise: &expertise,
                tolerance_ms: 2 * step_ms.max(30_000),
            },
        );
        let status = match status {
            InvestigationStatus::Completed if any_degraded => InvestigationStatus::Degraded,
            s => s,
        };
        let mut inv = Investigation {
            id: format!("inv-{}", incident.id),
            timeline: Vec::new(),
            incident: incident.clone(),
            status,
            window: window.whole(),
            observations,
            hypotheses: ranked,
            agents: runs,
            cost,
            trace_id: trace_id_for(&incident.id),
            decisions: Vec::new(),
            elapsed_ms: 0,
            llm: None,
        };
        if let Some(llm) = &self.llm {
            emit(ProgressEvent::Consulting {
                provider: llm.model().provider().to_string(),
                model: llm.model().model().to_string(),
            });
            llm.analyse(
                &mut inv,
                &AnalysisEnv {
                    sources: &ctx.sources,
                    window,
                    step_ms,
                    graph: &ctx.graph,
                    services: &ctx.services,
                    expertise: &expertise,
                    tolerance_ms: 2 * step_ms.max(30_000),
                    budget: &budget,
                    deadline: Some(deadline.into_std()),
                },
            )
            .await;
        }
        inv.timeline = timeline(incident, &inv.observations, &inv.hypotheses);
        inv.elapsed_ms = started.elapsed().as_millis() as u64;
        inv
    }

    /// The call graph and service list, from the traces and metrics sources. Failures
    /// leave them empty; the agents that need those sources report the failure.
    async fn discover(
        &self,
        sources: &DataSources,
        window: AnalysisWindow,
    ) -> (CallGraph, Vec<String>) {
        let range = window.whole();
        let graph = match &sources.traces {
            Some(t) => t.call_graph(range).await.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "call graph unavailable");
                CallGraph::default()
            }),
            None => CallGraph::default(),
        };
        let mut services: BTreeSet<String> =
            graph.services().into_iter().map(str::to_string).collect();
        if let Some(m) = &sources.metrics {
            match m
                .label_values(&self.config.catalog.service_label, range)
                .await
            {
                Ok(v) => services.extend(v),
                Err(e) => tracing::warn!(error = %e, "service list unavailable"),
            }
        }
        (graph, services.into_iter().collect())
    }

    /// Run every agent concurrently; returns per-agent results in agent order.
    async fn run_agents(
        &self,
        incident: &Incident,
        ctx: &Arc<AgentContext>,
        budget: &Budget,
        deadline: Instant,
        emit: &(dyn Fn(ProgressEvent) + Sync),
    ) -> (Vec<Collected>, InvestigationStatus) {
        let agents_started = Instant::now();
        let mut set: JoinSet<(usize, AgentResult)> = JoinSet::new();
        let mut task_index: HashMap<tokio::task::Id, usize> = HashMap::new();
        for (i, agent) in self.agents.iter().enumerate() {
            let agent = Arc::clone(agent);
            let ctx = Arc::clone(ctx);
            let incident = incident.clone();
            let per_agent = self.config.agent_timeout;
            // Spawned tasks do not inherit the caller's span: give each its own,
            // a child of the investigation's (one trace per investigation over OTLP).
            let span = tracing::info_span!("agent", agent = agent.name());
            let handle = set.spawn(tracing::Instrument::instrument(
                async move {
                    let t0 = Instant::now();
                    // Observe and orient both count against the agent's own timeout.
                    let work = async {
                        let output = agent.observe(&incident, &ctx).await?;
                        let hypotheses = agent.orient(&output.observations, &ctx);
                        Ok::<_, AgentError>((output, hypotheses))
                    };
                    let (output, hypotheses) = match tokio::time::timeout(per_agent, work).await {
                        Ok(Ok((out, hyps))) => (Ok(out), hyps),
                        Ok(Err(e)) => (Err(e), Vec::new()),
                        Err(_) => (Err(AgentError::TimedOut(per_agent)), Vec::new()),
                    };
                    (
                        i,
                        AgentResult {
                            output,
                            hypotheses,
                            elapsed: t0.elapsed(),
                        },
                    )
                },
                span,
            ));
            task_index.insert(handle.id(), i);
        }

        let mut slots: Vec<Option<Collected>> = (0..self.agents.len()).map(|_| None).collect();
        let mut status = InvestigationStatus::Completed;
        loop {
            tokio::select! {
                biased;
                joined = set.join_next_with_id() => match joined {
                    None => break,
                    Some(Ok((_, (i, r)))) => {
                        let c = collect(self.agents[i].name(), r);
                        emit(ProgressEvent::AgentFinished(c.run.clone()));
                        slots[i] = Some(c);
                    }
                    Some(Err(e)) => {
                        let i = task_index[&e.id()];
                        let reason = if e.is_panic() { "agent panicked" } else { "agent task was cancelled" };
                        tracing::error!(agent = self.agents[i].name(), "{reason}");
                        let c = Collected::empty(
                            self.agents[i].name(),
                            AgentStatus::Failed,
                            reason,
                            agents_started.elapsed().as_millis() as u64,
                        );
                        emit(ProgressEvent::AgentFinished(c.run.clone()));
                        slots[i] = Some(c);
                    }
                },
                _ = budget.exhausted() => {
                    status = InvestigationStatus::BudgetExhausted;
                    break;
                }
                _ = tokio::time::sleep_until(deadline) => {
                    status = InvestigationStatus::DeadlineExceeded;
                    break;
                }
            }
        }
        set.abort_all();
        let reason = match status {
            InvestigationStatus::BudgetExhausted => "cancelled: budget exhausted",
            _ => "cancelled: investigation deadline reached",
        };
        let results = slots
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                s.unwrap_or_else(|| {
                    Collected::empty(
                        self.agents[i].name(),
                        AgentStatus::Cancelled,
                        reason,
                        agents_started.elapsed().as_millis() as u64,
                    )
                })
            })
            .collect();
        (results, status)
    }
}

/// One agent's contribution after it finished (or didn't).
struct Collected {
    run: AgentRun,
    observations: Vec<Observation>,
    hypotheses: Vec<Hypothesis>,
}

impl Collected {
    fn empty(agent: &str, status: AgentStatus, error: &str, duration_ms: u64) -> Self {
        Collected {
            run: AgentRun {
                agent: agent.to_string(),
                status,
                duration_ms,
                observations: 0,
                hypotheses: 0,
                cost: Cost::default(),
                error: Some(error.to_string()),
            },
            observations: Vec::new(),
            hypotheses: Vec::new(),
        }
    }
}

fn collect(agent: &str, r: AgentResult) -> Collected {
    let duration_ms = r.elapsed.as_millis() as u64;
    match r.output {
        Ok(out) => {
            let status = if out.problems.is_empty() {
                AgentStatus::Succeeded
            } else {
                AgentStatus::Degraded
            };
            let error = (!out.problems.is_empty()).then(|| summarize_problems(&out.problems));
            Collected {
                run: AgentRun {
                    agent: agent.to_string(),
                    status,
                    duration_ms,
                    observations: out.observations.len(),
                    hypotheses: r.hypotheses.len(),
                    cost: out.cost,
                    error,
                },
                observations: out.observations,
                hypotheses: r.hypotheses,
            }
        }
        Err(e) => {
            let status = if matches!(e, AgentError::TimedOut(_)) {
                AgentStatus::TimedOut
            } else if e.is_data_problem() {
                AgentStatus::Degraded
            } else {
                AgentStatus::Failed
            };
            tracing::warn!(agent, error = %e, "agent did not complete");
            Collected::empty(agent, status, &e.to_string(), duration_ms)
        }
    }
}

fn summarize_problems(problems: &[String]) -> String {
    match problems {
        [one] => one.clone(),
        [first, rest @ ..] => format!("{first} (and {} more problems)", rest.len()),
        [] => String::new(),
    }
}

/// Alert, first anomaly per service, changes and hypothesis onsets, in time order.
fn timeline(
    incident: &Incident,
    observations: &[Observation],
    ranked: &[Hypothesis],
) -> Vec<TimelineEntry> {
    let mut entries = vec![TimelineEntry {
        time: incident.start,
        label: format!("alert: {}", incident.title),
        service: incident.affected_services.first().cloned(),
    }];
    let mut first_seen: BTreeMap<&str, &Observation> = BTreeMap::new();
    for o in observations {
        if matches!(
            o.kind,
            ObservationKind::DeployChange | ObservationKind::ConfigChange
        ) {
            entries.push(TimelineEntry {
                time: o.span.start,
                label: o.evidence.summary.clone(),
                service: Some(o.subject.service.clone()),
            });
            continue;
        }
        let e = first_seen.entry(o.subject.service.as_str()).or_insert(o);
        if o.span.start < e.span.start {
            *e = o;
        }
    }
    for (service, o) in first_seen {
        entries.push(TimelineEntry {
            time: o.span.start,
            label: format!("{service} first anomalous: {}", o.evidence.summary),
            service: Some(service.to_string()),
        });
    }
    if let Some(top) = ranked.first() {
        entries.push(TimelineEntry {
            time: top.onset,
            label: format!("most likely cause begins: {}", top.statement),
            service: Some(top.root_cause.service.clone()),
        });
    }
    entries.sort_by(|a, b| a.time.cmp(&b.time).then(a.label.cmp(&b.label)));
    entries
}

/// A stable 32-hex-digit trace id for an incident id (FNV-1a, twice).
fn trace_id_for(id: &str) -> String {
    let fnv = |seed: u64| {
        id.bytes()
            .fold(seed, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
    };
    format!(
        "{:016x}{:016x}",
        fnv(0xcbf2_9ce4_8422_2325),
        fnv(0x8422_2325_cbf2_9ce4)
    )
}
