//! The LLM steps on top of a finished deterministic investigation (design §7):
//!
//! 1. `hypotheses`: from the redacted [`digest`](super::digest), the model proposes
//!    extra hypotheses (each citing observation ids) and follow-up PromQL/LogQL queries.
//! 2. `follow_up`: the valid queries run once over the investigation window (see
//!    [`queries`](super::queries)); their results become observations `llm-q<n>` and go
//!    back to the model, which may revise its proposals citing them.
//! 3. `summary`: the model writes the human summary of the final ranking.
//!
//! Rules that hold whatever the model answers:
//! - **Budget first.** Before every call its cost is estimated (prompt tokens counted
//!   by the provider, completion at `max_tokens`, the model's price). A call that would
//!   exceed the step's share of the investigation budget, or what is left of the daily
//!   budget in the ledger, is not made: the investigation keeps what it has and its
//!   status becomes `budget_exhausted`. After a call the provider's reported usage is
//!   charged (the count, when it reports none) and written to the cost ledger.
//! - **Typed and checked.** Answers are parsed into typed structs and validated (schema,
//!   ranges, observation ids, service names). An invalid answer gets one repair retry
//!   with the validation errors; if that fails too, the step falls back to the
//!   deterministic result and the report says why.
//! - **Evidence wins.** The deterministic ranking is never reordered. A proposal that
//!   matches a deterministic hypothesis (same service and fault kind) only adds `llm`
//!   to its proposers; a new one goes through the same disproof as every other
//!   hypothesis and is ranked after every deterministic one, with its confidence capped
//!   below theirs.
//! - **Nothing raw leaves.** Prompts carry the digest and short query results only,
//!   all through the redactor; the report counts what was redacted.
//! - The model never triggers actions: its only outputs are hypotheses, queries that
//!   pass the read-only checks, and text.

use super::digest::{Digest, DigestInput, digest, redact_into};
use super::output::{
    Invalid, Proposals, ValidationContext, parse_proposals, parse_summary, proposals_schema,
    summary_schema,
};
use super::queries;
use super::{
    CallOutcome, ChatMessage, ChatRequest, ChatResponse, CostLedger, LanguageModel, LedgerEntry,
    LlmError, Price, Usage, utc_day,
};
use crate::budget::Budget;
use crate::ports::DataSources;
use compass_core::orient::{OrientContext, disprove};
use compass_core::redact::{RedactionConfig, Redactor};
use compass_core::{
    AgentRun, AgentStatus, AnalysisWindow, CallGraph, Category, Confidence, Cost, EpochMs,
    FollowUp, FollowUpOutcome, Hypothesis, Investigation, InvestigationStatus, LlmCall, LlmReport,
    Observation, RootCause,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

/// The spending steps, in the order they run.
pub const STEPS: [&str; 3] = ["hypotheses", "follow_up", "summary"];

/// Daily-budget fractions that raise an alert event when crossed.
pub const DAILY_THRESHOLDS: [f64; 3] = [0.5, 0.8, 1.0];

/// How the LLM steps run.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalystConfig {
    /// Most completion tokens per call, by step (also the basis of each estimate).
    pub max_tokens: BTreeMap<String, u32>,
    /// Weights of the steps in the investigation budget (equal by default).
    pub shares: BTreeMap<String, f64>,
    /// The most the model may spend per UTC day across all investigations, USD.
    pub daily_budget_usd: Option<f64>,
    pub redaction: RedactionConfig,
    pub temperature: f32,
    /// The metric label naming a service (for checking follow-up queries).
    pub service_label: String,
}

impl Default for AnalystConfig {
    fn default() -> Self {
        Self {
            max_tokens: [("hypotheses", 900), ("follow_up", 700), ("summary", 500)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            shares: STEPS.iter().map(|s| (s.to_string(), 1.0)).collect(),
            daily_budget_usd: None,
            redaction: RedactionConfig::default(),
            temperature: 0.1,
            service_label: "service".into(),
        }
    }
}

/// What the steps need from the investigation run besides the record itself.
#[derive(Debug, Clone, Copy)]
pub struct AnalysisEnv<'a> {
    pub sources: &'a DataSources,
    pub window: AnalysisWindow,
    pub step_ms: i64,
    pub graph: &'a CallGraph,
    pub services: &'a [String],
    pub expertise: &'a BTreeMap<String, Vec<Category>>,
    pub tolerance_ms: i64,
    pub budget: &'a Budget,
    /// No call starts after this instant.
    pub deadline: Option<Instant>,
}

/// Runs the LLM steps with one model.
pub struct LlmAnalyst {
    model: Arc<dyn LanguageModel>,
    price: Price,
    ledger: Arc<dyn CostLedger>,
    config: AnalystConfig,
    redactor: Redactor,
}

impl std::fmt::Debug for LlmAnalyst {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmAnalyst")
            .field("provider", &self.model.provider())
            .field("model", &self.model.model())
            .field("price", &self.price)
            .field("config", &self.config)
            .finish()
    }
}

/// Why a call did not give a usable answer.
enum CallError {
    /// Not made: over budget (investigation or daily). Ends the LLM work.
    Refused(String),
    /// Not made: the investigation's deadline has passed.
    Deadline,
    /// Made, and failed.
    Failed(LlmError),
}

impl LlmAnalyst {
    /// `price` is what the model costs (the caller resolves it from the pricing table;
    /// a model without a price cannot be held to a budget). Fails on a custom
    /// redaction pattern that does not compile.
    pub fn new(
        model: Arc<dyn LanguageModel>,
        price: Price,
        ledger: Arc<dyn CostLedger>,
        config: AnalystConfig,
    ) -> Result<Self, String> {
        let redactor = Redactor::new(&config.redaction)?;
        Ok(Self {
            model,
            price,
            ledger,
            config,
            redactor,
        })
    }

    pub fn config(&self) -> &AnalystConfig {
        &self.config
    }

    pub fn model(&self) -> &Arc<dyn LanguageModel> {
        &self.model
    }

    /// Run the steps on `inv` (already oriented), adding what the model contributes.
    pub async fn analyse(&self, inv: &mut Investigation, env: &AnalysisEnv<'_>) {
        let mut run = Run {
            analyst: self,
            env,
            report: LlmReport {
                provider: self.model.provider().to_string(),
                model: self.model.model().to_string(),
                calls: Vec::new(),
                redactions: BTreeMap::new(),
                summary: None,
                follow_ups: Vec::new(),
                added_hypotheses: Vec::new(),
                fallbacks: Vec::new(),
            },
            refused: false,
            deadline_hit: false,
            investigation_id: inv.id.clone(),
            step_cost: BTreeMap::new(),
            step_ms: BTreeMap::new(),
        };
        run.steps(inv).await;
        if run.refused {
            inv.status = InvestigationStatus::BudgetExhausted;
        } else if run.deadline_hit && inv.status != InvestigationStatus::BudgetExhausted {
            inv.status = InvestigationStatus::DeadlineExceeded;
        }
        for step in STEPS {
            if let Some(duration) = run.step_ms.get(step) {
                let cost = run.step_cost.get(step).copied().unwrap_or_default();
                inv.cost.add(&cost);
                let calls: Vec<&LlmCall> =
                    run.report.calls.iter().filter(|c| c.step == step).collect();
                let failed = calls.iter().all(|c| c.outcome != "ok");
                inv.agents.push(AgentRun {
                    agent: format!("llm:{step}"),
                    status: if !failed {
                        AgentStatus::Succeeded
                    } else if calls.iter().any(|c| c.outcome == "refused") {
                        AgentStatus::Cancelled
                    } else {
                        AgentStatus::Degraded
                    },
                    duration_ms: *duration,
                    observations: 0,
                    hypotheses: 0,
                    cost,
                    error: calls
                        .iter()
                        .rev()
                        .find_map(|c| c.error.clone())
                        .filter(|_| failed),
                });
            }
        }
        inv.llm = Some(run.report);
    }
}

struct Run<'a> {
    analyst: &'a LlmAnalyst,
    env: &'a AnalysisEnv<'a>,
    report: LlmReport,
    refused: bool,
    deadline_hit: bool,
    investigation_id: String,
    step_cost: BTreeMap<&'static str, Cost>,
    step_ms: BTreeMap<&'static str, u64>,
}

const SYSTEM: &str = "You are the incident analyst of COMPASS, an incident investigation engine. \
Deterministic agents have already analysed logs, metrics and traces; you get a digest of what \
they observed (observation ids, services, onsets as offsets from the alert at t0) and their \
ranked hypotheses. Be precise and brief. Cite only observation ids that appear in the digest. \
Use only service names from the digest. Answer with exactly one JSON object matching the schema \
and nothing else.";

impl Run<'_> {
    async fn steps(&mut self, inv: &mut Investigation) {
        let Digest { text, redactions } = digest(
            &DigestInput {
                incident: &inv.incident,
                observations: &inv.observations,
                hypotheses: &inv.hypotheses,
                services: self.env.services,
                graph: self.env.graph,
            },
            &self.analyst.redactor,
        );
        self.report.redactions = redactions;

        // Step 1: hypotheses and follow-up queries.
        let ask = format!(
            "{text}\nTASK: propose up to 5 root-cause hypotheses the list above misses or \
             states too weakly (each citing observation ids as evidence), and up to 3 follow-up \
             queries that would confirm or refute the leading hypotheses. PromQL: a selector, \
             rate(m[5m]), sum/max/avg by (<=3 labels) over either, or histogram_quantile over \
             sum by (le) (rate(m_bucket[5m])); a literal metric name; no offset, @ or subquery. \
             LogQL: {{service=\"<name>\"}} followed by at most 5 line filters (|= != |~ !~). \
             Empty lists are a fine answer."
        );
        let ctx = self.validation_context(inv);
        let first = self
            .structured("hypotheses", &ask, true, &ctx, |t, c| {
                parse_proposals(t, c, true)
            })
            .await;
        self.finish("hypotheses");
        let mut proposals = first.unwrap_or_default();

        // Step 2: run the follow-ups once and let the model revise.
        if !self.refused && !self.deadline_hit && !proposals.queries.is_empty() {
            let results = self.run_follow_ups(inv, &proposals).await;
            if results.iter().any(|(_, ran)| *ran) {
                let lines: Vec<String> = results.into_iter().map(|(l, _)| l).collect();
                let results_text = redact_into(
                    &lines.join("\n"),
                    &self.analyst.redactor,
                    &mut self.report.redactions,
                );
                let ask = format!(
                    "{text}\nFOLLOW-UP RESULTS (new observation ids in brackets):\n{results_text}\n\
                     TASK: with these results, give your final list of up to 5 hypotheses the \
                     deterministic list misses or states too weakly, each citing observation ids \
                     (the new ones included). An empty list is a fine answer."
                );
                let ctx = self.validation_context(inv);
                if let Some(revised) = self
                    .structured("follow_up", &ask, false, &ctx, |t, c| {
                        parse_proposals(t, c, false)
                    })
                    .await
                {
                    proposals.hypotheses = revised.hypotheses;
                }
            }
        }
        self.finish("follow_up");
        if !proposals.hypotheses.is_empty() {
            self.merge(inv, &proposals);
        }

        // Step 3: the summary of the final ranking.
        if !self.refused && !self.deadline_hit {
            let ranking = summary_input(inv, &self.report);
            let ranking = redact_into(
                &ranking,
                &self.analyst.redactor,
                &mut self.report.redactions,
            );
            let ask = format!(
                "{text}\nFINAL RANKING:\n{ranking}\nTASK: write the summary an on-call engineer reads \
                 first: what is most likely wrong and why (cite the evidence), what else is \
                 possible, and the next check to make. At most 8 sentences, no preamble."
            );
            let ctx = ValidationContext::default();
            if let Some(s) = self
                .structured("summary", &ask, false, &ctx, |t, _| parse_summary(t))
                .await
            {
                self.report.summary = Some(s.summary);
            }
        }
        self.finish("summary");
    }

    fn finish(&self, step: &str) {
        self.env.budget.finish(step);
    }

    fn validation_context(&self, inv: &Investigation) -> ValidationContext {
        let mut services: BTreeSet<String> = self.env.services.iter().cloned().collect();
        services.extend(inv.observations.iter().map(|o| o.subject.service.clone()));
        services.extend(inv.incident.affected_services.iter().cloned());
        ValidationContext {
            observation_ids: inv.observations.iter().map(|o| o.id.clone()).collect(),
            services,
        }
    }

    /// One step's structured call, with one repair retry. `None`: the step fell back
    /// (the reason is in the report).
    async fn structured<T>(
        &mut self,
        step: &'static str,
        ask: &str,
        with_queries: bool,
        ctx: &ValidationContext,
        parse: impl Fn(&str, &ValidationContext) -> Result<T, Invalid>,
    ) -> Option<T> {
        let started = Instant::now();
        let schema = if step == "summary" {
            summary_schema()
        } else {
            proposals_schema(with_queries)
        };
        let mut request = ChatRequest {
            messages: vec![ChatMessage::system(SYSTEM), ChatMessage::user(ask)],
            max_tokens: self
                .analyst
                .config
                .max_tokens
                .get(step)
                .copied()
                .unwrap_or(600),
            temperature: self.analyst.config.temperature,
            schema: Some(schema),
        };
        let mut result = None;
        for attempt in 0..2 {
            match self.call(step, &request).await {
                Err(CallError::Refused(why)) => {
                    self.report
                        .fallbacks
                        .push(format!("{step}: not run, {why}"));
                    break;
                }
                Err(CallError::Deadline) => {
                    self.report.fallbacks.push(format!(
                        "{step}: not run, the investigation deadline has passed"
                    ));
                    break;
                }
                Err(CallError::Failed(e)) => {
                    self.report.fallbacks.push(format!(
                        "{step}: the model call failed ({e}); kept the deterministic result"
                    ));
                    break;
                }
                Ok(response) => match parse(&response.content, ctx) {
                    Ok(v) => {
                        self.settle_outcome(CallOutcome::Ok, None);
                        result = Some(v);
                        break;
                    }
                    Err(invalid) => {
                        self.settle_outcome(CallOutcome::Invalid, Some(invalid.to_string()));
                        if attempt == 1 {
                            self.report.fallbacks.push(format!(
                                "{step}: the answer was invalid twice ({invalid}); kept the \
                                 deterministic result"
                            ));
                            break;
                        }
                        let errors = redact_into(
                            &invalid.to_string(),
                            &self.analyst.redactor,
                            &mut self.report.redactions,
                        );
                        request
                            .messages
                            .push(ChatMessage::assistant(clip(&response.content, 4000)));
                        request.messages.push(ChatMessage::user(format!(
                            "That answer is invalid: {errors}. Answer again with one JSON object \
                             that matches the schema and fixes every problem."
                        )));
                    }
                },
            }
        }
        *self.step_ms.entry(step).or_default() += started.elapsed().as_millis() as u64;
        result
    }

    /// The last call's outcome, once its answer has been checked: fix up the report
    /// entry written by [`Self::call`].
    fn settle_outcome(&mut self, outcome: CallOutcome, error: Option<String>) {
        if let Some(last) = self.report.calls.last_mut() {
            last.outcome = outcome.as_str().to_string();
            last.error = error;
        }
    }

    /// Estimate, gate, call, charge and record one model call.
    async fn call(
        &mut self,
        step: &'static str,
        request: &ChatRequest,
    ) -> Result<ChatResponse, CallError> {
        let a = self.analyst;
        if self.env.deadline.is_some_and(|d| Instant::now() >= d) {
            self.deadline_hit = true;
            return Err(CallError::Deadline);
        }
        let prompt = a.model.count_prompt_tokens(request);
        let estimate = Cost {
            prompt_tokens: prompt,
            completion_tokens: u64::from(request.max_tokens),
            usd: a.price.cost(Usage {
                prompt_tokens: prompt,
                completion_tokens: u64::from(request.max_tokens),
            }),
        };
        let allowance = self.env.budget.allowance(step);
        let refusal = if !allowance.covers(&estimate) {
            Some(format!(
                "over the investigation budget: the call was estimated at {} (${:.4}) and this \
                 step may spend {}",
                tokens_text(estimate.total_tokens()),
                estimate.usd,
                allowance_text(allowance.usd, allowance.tokens)
            ))
        } else {
            self.daily_refusal(estimate.usd).await
        };
        if let Some(why) = refusal {
            self.refused = true;
            self.report.calls.push(LlmCall {
                step: step.to_string(),
                outcome: "refused".into(),
                prompt_tokens: prompt,
                completion_tokens: 0,
                usd: 0.0,
                duration_ms: 0,
                error: Some(why.clone()),
            });
            tracing::warn!(step, reason = %why, "LLM call refused by the budget");
            return Err(CallError::Refused(why));
        }

        let started = Instant::now();
        let span = tracing::info_span!(
            "llm.call",
            step,
            provider = a.model.provider(),
            model = a.model.model(),
            prompt_tokens = tracing::field::Empty,
            completion_tokens = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        let answer = tracing::Instrument::instrument(a.model.complete(request), span.clone()).await;
        let duration_ms = started.elapsed().as_millis() as u64;
        let (usage, reported, outcome, error) = match &answer {
            Ok(r) => {
                let (usage, reported) = r.usage_or_counted(prompt);
                (usage, reported, CallOutcome::Ok, None)
            }
            // The provider may have billed the prompt of a call that timed out or
            // answered garbage: charge it, to stay on the safe side of the budget.
            Err(e @ (LlmError::Timeout { .. } | LlmError::BadResponse { .. })) => (
                Usage {
                    prompt_tokens: prompt,
                    completion_tokens: 0,
                },
                false,
                CallOutcome::Failed,
                Some(e.to_string()),
            ),
            Err(e) => (
                Usage::default(),
                false,
                CallOutcome::Failed,
                Some(e.to_string()),
            ),
        };
        span.record("prompt_tokens", usage.prompt_tokens);
        span.record("completion_tokens", usage.completion_tokens);
        span.record("outcome", outcome.as_str());
        let cost = Cost {
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            usd: a.price.cost(usage),
        };
        self.env.budget.charge(&cost);
        self.step_cost.entry(step).or_default().add(&cost);
        self.report.calls.push(LlmCall {
            step: step.to_string(),
            outcome: outcome.as_str().to_string(),
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            usd: cost.usd,
            duration_ms,
            error,
        });
        self.record(step, usage, cost.usd, reported, outcome).await;
        answer.map_err(CallError::Failed)
    }

    async fn daily_refusal(&mut self, estimate_usd: f64) -> Option<String> {
        let limit = self.analyst.config.daily_budget_usd?;
        let today = utc_day(now_ms());
        match self.analyst.ledger.spent_usd(today).await {
            Ok(spent) if spent + estimate_usd > limit + 1e-12 => Some(format!(
                "over the daily budget: ${spent:.4} of ${limit:.4} spent today (UTC) and the \
                 call was estimated at ${estimate_usd:.4}"
            )),
            Ok(_) => None,
            Err(e) => Some(format!(
                "the daily budget cannot be checked because the cost ledger is unreadable ({e})"
            )),
        }
    }

    async fn record(
        &mut self,
        step: &str,
        usage: Usage,
        usd: f64,
        reported: bool,
        outcome: CallOutcome,
    ) {
        let a = self.analyst;
        let at = now_ms();
        let today = utc_day(at);
        let before = match a.config.daily_budget_usd {
            Some(_) => a.ledger.spent_usd(today).await.ok(),
            None => None,
        };
        let entry = LedgerEntry {
            at,
            investigation_id: self.investigation_id.clone(),
            agent: step.to_string(),
            provider: a.model.provider().to_string(),
            model: a.model.model().to_string(),
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            usd,
            reported,
            outcome,
        };
        if let Err(e) = a.ledger.record(&entry).await {
            tracing::error!(error = %e, "cannot record an LLM call in the cost ledger");
            self.report.fallbacks.push(format!(
                "{step}: the call's cost could not be recorded ({e})"
            ));
        }
        metrics::counter!("compass_llm_calls_total", "step" => step.to_string(), "outcome" => outcome.as_str()).increment(1);
        metrics::counter!("compass_llm_prompt_tokens_total").increment(usage.prompt_tokens);
        metrics::counter!("compass_llm_completion_tokens_total").increment(usage.completion_tokens);
        metrics::counter!("compass_llm_cost_micro_usd_total").increment((usd * 1e6).round() as u64);
        if let (Some(limit), Some(before)) = (a.config.daily_budget_usd, before) {
            for t in crossed_thresholds(before, before + usd, limit) {
                let pct = (t * 100.0).round() as u64;
                tracing::warn!(
                    event = "llm_daily_budget_threshold",
                    threshold_pct = pct,
                    spent_usd = before + usd,
                    daily_budget_usd = limit,
                    "LLM spend today reached {pct}% of the daily budget"
                );
                metrics::counter!("compass_llm_daily_budget_alerts_total", "threshold" => pct.to_string())
                    .increment(1);
            }
        }
    }

    /// Check and run the proposed follow-ups once. Returns one line per query for the
    /// model, and whether it ran.
    async fn run_follow_ups(
        &mut self,
        inv: &mut Investigation,
        proposals: &Proposals,
    ) -> Vec<(String, bool)> {
        let label = self.analyst.config.service_label.clone();
        let mut lines = Vec::new();
        for (i, q) in proposals.queries.iter().enumerate() {
            let id = format!("llm-q{}", i + 1);
            let (outcome, detail, observation_id) =
                match queries::check(&q.language, &q.query, &label) {
                    Err(why) => (FollowUpOutcome::Rejected, why, None),
                    Ok(checked) => {
                        match queries::run(
                            &checked,
                            &q.query,
                            &id,
                            self.env.sources,
                            self.env.window,
                            self.env.step_ms,
                            &label,
                        )
                        .await
                        {
                            Ok(result) => {
                                let oid = result.observation.as_ref().map(|o| o.id.clone());
                                if let Some(o) = result.observation {
                                    inv.observations.push(o);
                                }
                                (FollowUpOutcome::Ran, result.detail, oid)
                            }
                            Err(e) => (FollowUpOutcome::Failed, e, None),
                        }
                    }
                };
            let shown = match &observation_id {
                Some(oid) => format!("[{oid}]"),
                None => "[no observation]".to_string(),
            };
            let ran = outcome == FollowUpOutcome::Ran;
            lines.push((
                format!(
                    "{shown} {} `{}` {}: {}",
                    q.language,
                    clip(&q.query, 300),
                    match outcome {
                        FollowUpOutcome::Ran => "ran",
                        FollowUpOutcome::Rejected => "rejected",
                        FollowUpOutcome::Failed => "failed",
                        FollowUpOutcome::Skipped => "skipped",
                    },
                    clip(&detail, 600)
                ),
                ran,
            ));
            self.report.follow_ups.push(FollowUp {
                language: q.language.clone(),
                query: q.query.clone(),
                reason: q.reason.clone(),
                outcome,
                detail,
                observation_id,
            });
        }
        lines
    }

    /// Fold the model's hypotheses into the ranking without reordering the
    /// deterministic ones (see the module docs).
    fn merge(&mut self, inv: &mut Investigation, proposals: &Proposals) {
        let cap = inv
            .hypotheses
            .iter()
            .map(|h| h.confidence.value)
            .fold(f64::INFINITY, f64::min)
            .min(1.0);
        let mut added: Vec<Hypothesis> = Vec::new();
        for p in &proposals.hypotheses {
            if let Some(h) = inv.hypotheses.iter_mut().find(|h| {
                h.root_cause.service == p.service && h.root_cause.fault_kind == p.fault_kind
            }) {
                if !h.proposed_by.iter().any(|a| a == "llm") {
                    h.proposed_by.push("llm".into());
                }
                continue;
            }
            if added.iter().any(|h| {
                h.root_cause.service == p.service && h.root_cause.fault_kind == p.fault_kind
            }) {
                continue;
            }
            let cited: Vec<&Observation> = inv
                .observations
                .iter()
                .filter(|o| p.evidence.contains(&o.id))
                .collect();
            let value = p.confidence.min(cap);
            let mut h = Hypothesis::from_observations(
                "llm",
                RootCause {
                    service: p.service.clone(),
                    component: p.component.clone(),
                    fault_kind: p.fault_kind,
                },
                p.statement.clone(),
                &cited,
                Confidence {
                    value,
                    reasoning: format!(
                        "proposed by the model ({}) from observations {}; stated {:.2}{}",
                        self.analyst.model.model(),
                        p.evidence.join(", "),
                        p.confidence,
                        if value < p.confidence {
                            ", capped below the evidence-backed hypotheses"
                        } else {
                            ""
                        }
                    ),
                },
                Vec::new(),
            );
            if inv.hypotheses.iter().any(|x| x.id == h.id) {
                h.id = format!("{}:llm", h.id);
            }
            added.push(h);
        }
        let ctx = OrientContext {
            incident: &inv.incident,
            window: self.env.window,
            observations: &inv.observations,
            graph: self.env.graph,
            expertise: self.env.expertise,
            tolerance_ms: self.env.tolerance_ms,
        };
        for h in &mut added {
            disprove(h, &ctx);
            // Disproof may only lower a confidence; keep it under the cap either way.
            h.confidence.value = h.confidence.value.min(cap);
        }
        // Surviving proposals first, disproven ones last; each group by confidence.
        added.sort_by(|a, b| {
            (a.status == compass_core::HypothesisStatus::Disproven)
                .cmp(&(b.status == compass_core::HypothesisStatus::Disproven))
                .then(b.confidence.value.total_cmp(&a.confidence.value))
        });
        self.report
            .added_hypotheses
            .extend(added.iter().map(|h| h.id.clone()));
        inv.hypotheses.extend(added);
    }
}

/// Thresholds (fractions of `limit`) crossed going from `before` to `after` USD.
pub fn crossed_thresholds(before: f64, after: f64, limit: f64) -> Vec<f64> {
    if limit <= 0.0 {
        return Vec::new();
    }
    DAILY_THRESHOLDS
        .iter()
        .copied()
        .filter(|t| before < t * limit && after >= t * limit)
        .collect()
}

pub(crate) fn now_ms() -> EpochMs {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as EpochMs)
        .unwrap_or(0)
}

fn clip(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

fn tokens_text(n: u64) -> String {
    format!("{n} tokens")
}

fn allowance_text(usd: Option<f64>, tokens: Option<u64>) -> String {
    match (usd, tokens) {
        (Some(u), Some(t)) => format!("${u:.4} and {t} tokens"),
        (Some(u), None) => format!("${u:.4}"),
        (None, Some(t)) => format!("{t} tokens"),
        (None, None) => "anything".into(),
    }
}

/// The final ranking as the summary step sees it.
fn summary_input(inv: &Investigation, report: &LlmReport) -> String {
    let mut lines = Vec::new();
    for (i, h) in inv.hypotheses.iter().take(5).enumerate() {
        let evidence: Vec<String> = h
            .supporting
            .iter()
            .take(3)
            .map(|e| e.summary.chars().take(160).collect())
            .collect();
        lines.push(format!(
            "{}. [{}] {:.2} {} (by {}): {} | evidence: {}",
            i + 1,
            h.id,
            h.confidence.value,
            h.status.as_str(),
            h.proposed_by.join("+"),
            h.statement,
            evidence.join("; ")
        ));
    }
    for f in &report.follow_ups {
        lines.push(format!(
            "follow-up {} `{}`: {:?}: {}",
            f.language, f.query, f.outcome, f.detail
        ));
    }
    lines.join("\n")
}
