//! The domain model (design §2): incidents, observations, evidence, hypotheses and
//! investigations. Plain data, serialisable, no behaviour beyond small helpers.
//!
//! Times are milliseconds since the Unix epoch (UTC) everywhere in the model; the
//! presentation layer formats them.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Milliseconds since the Unix epoch, UTC.
pub type EpochMs = i64;

/// A half-open time range `[start, end)` in epoch milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TimeRange {
    pub start: EpochMs,
    pub end: EpochMs,
}

impl TimeRange {
    pub fn new(start: EpochMs, end: EpochMs) -> Self {
        Self { start, end }
    }
    pub fn contains(&self, t: EpochMs) -> bool {
        t >= self.start && t < self.end
    }
    pub fn duration_ms(&self) -> i64 {
        (self.end - self.start).max(0)
    }
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }
    /// The intersection of two ranges (possibly empty).
    pub fn intersect(&self, other: &TimeRange) -> TimeRange {
        TimeRange::new(self.start.max(other.start), self.end.min(other.end))
    }
}

/// Where an incident came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentOrigin {
    Cli,
    Api,
    Alertmanager,
    Replay,
    Simulator,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

/// What the alert says: a symptom, a time, the services it names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: String,
    pub title: String,
    pub severity: Severity,
    /// Alert time (onset as the alert saw it).
    pub start: EpochMs,
    /// Services the alert names (usually the edge where the symptom shows).
    pub affected_services: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub origin: IncidentOrigin,
}

/// The categories of root cause COMPASS reasons about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    CpuSaturation,
    MemoryLeak,
    NetworkLatency,
    ErrorInjection,
    DbPoolExhaustion,
    BadDeploy,
    Unknown,
}

impl FaultKind {
    pub const ALL: [FaultKind; 6] = [
        FaultKind::CpuSaturation,
        FaultKind::MemoryLeak,
        FaultKind::NetworkLatency,
        FaultKind::ErrorInjection,
        FaultKind::DbPoolExhaustion,
        FaultKind::BadDeploy,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::CpuSaturation => "cpu_saturation",
            FaultKind::MemoryLeak => "memory_leak",
            FaultKind::NetworkLatency => "network_latency",
            FaultKind::ErrorInjection => "error_injection",
            FaultKind::DbPoolExhaustion => "db_pool_exhaustion",
            FaultKind::BadDeploy => "bad_deploy",
            FaultKind::Unknown => "unknown",
        }
    }
    /// A short human phrase for reports ("CPU saturation").
    pub fn describe(self) -> &'static str {
        match self {
            FaultKind::CpuSaturation => "CPU saturation",
            FaultKind::MemoryLeak => "memory leak",
            FaultKind::NetworkLatency => "network latency",
            FaultKind::ErrorInjection => "errors/exceptions",
            FaultKind::DbPoolExhaustion => "database connection-pool exhaustion",
            FaultKind::BadDeploy => "bad deploy",
            FaultKind::Unknown => "unknown fault",
        }
    }
    pub fn category(self) -> Category {
        match self {
            FaultKind::CpuSaturation | FaultKind::MemoryLeak => Category::Infrastructure,
            FaultKind::NetworkLatency => Category::Network,
            FaultKind::ErrorInjection => Category::Application,
            FaultKind::DbPoolExhaustion => Category::Database,
            FaultKind::BadDeploy => Category::Change,
            FaultKind::Unknown => Category::Application,
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for FaultKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FaultKind::ALL
            .into_iter()
            .chain([FaultKind::Unknown])
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown fault kind {s:?}"))
    }
}

/// Root-cause categories, used for agent expertise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Application,
    Database,
    Network,
    Infrastructure,
    Change,
}

/// What an agent saw, with no interpretation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObservationKind {
    LogSpike,
    NewLogTemplate,
    ErrorRateSurge,
    LatencyShift,
    MetricChangePoint,
    ResourceSaturation,
    MemoryGrowth,
    PodRestarts,
    ConnectionPoolSaturation,
    NetworkDelay,
    TraceErrorPropagation,
    TraceLatencyAttribution,
    DeployChange,
    ConfigChange,
}

/// What an observation or root cause is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Subject {
    pub service: String,
    /// Pod, component or resource inside the service ("cpu", "db-pool", "pod-1"), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
}

impl Subject {
    pub fn service(service: impl Into<String>) -> Self {
        Self {
            service: service.into(),
            component: None,
        }
    }
    pub fn with_component(service: impl Into<String>, component: impl Into<String>) -> Self {
        Self {
            service: service.into(),
            component: Some(component.into()),
        }
    }
}

/// How directly a piece of evidence speaks to the claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QualityGrade {
    Weak,
    Circumstantial,
    Indirect,
    Corroborated,
    Direct,
}

impl QualityGrade {
    /// A weight in (0, 1] used when pooling evidence.
    pub fn weight(self) -> f64 {
        match self {
            QualityGrade::Direct => 1.0,
            QualityGrade::Corroborated => 0.8,
            QualityGrade::Indirect => 0.6,
            QualityGrade::Circumstantial => 0.4,
            QualityGrade::Weak => 0.2,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stance {
    Supports,
    Contradicts,
}

/// Exactly where the data behind a claim came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Locator {
    /// A query against a data source (PromQL, LogQL, a trace search), verbatim.
    Query { language: String, query: String },
    /// Lines of a file, 1-based and inclusive.
    File {
        path: String,
        first_line: u64,
        last_line: u64,
    },
}

/// A small sample of the data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Sample {
    Points {
        points: Vec<(EpochMs, f64)>,
    },
    LogLines {
        lines: Vec<String>,
        /// The mined template every line matches (variables as `<*>`), when the
        /// lines are one template's samples.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        template: Option<String>,
    },
    Spans {
        spans: Vec<String>,
        /// The path of the first example's trace, root first: its ancestors, the
        /// example itself (`blamed`) and the example's children.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        path: Vec<PathSpan>,
    },
    Text {
        text: String,
    },
}

/// One span of a trace path, for a waterfall.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathSpan {
    pub service: String,
    pub operation: String,
    pub start: EpochMs,
    pub duration_ms: f64,
    /// Nesting below the path's first span (0 for it).
    pub depth: u32,
    pub error: bool,
    /// The span the evidence is about.
    pub blamed: bool,
}

/// The data behind a claim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// Which data source (its configured name, e.g. "bundle:metrics").
    pub source: String,
    pub locator: Locator,
    pub time_range: TimeRange,
    pub sample: Sample,
    pub quality: QualityGrade,
    pub stance: Stance,
    /// One line saying what this shows.
    pub summary: String,
}

/// What an agent saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// Stable id within an investigation (`<agent>-<n>`).
    pub id: String,
    pub agent: String,
    pub kind: ObservationKind,
    pub subject: Subject,
    pub span: TimeRange,
    /// Size of the effect in the detector's own unit (robust z, ratio, ...); see `summary`.
    pub magnitude: f64,
    /// Detector confidence in [0, 1] that the effect is real.
    pub confidence: f64,
    pub evidence: Evidence,
}

/// The structured root cause a hypothesis claims.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RootCause {
    pub service: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    pub fault_kind: FaultKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HypothesisStatus {
    Generated,
    Validating,
    Validated,
    Disproven,
    RequiresHuman,
    Confirmed,
    Rejected,
}

impl HypothesisStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HypothesisStatus::Generated => "generated",
            HypothesisStatus::Validating => "validating",
            HypothesisStatus::Validated => "validated",
            HypothesisStatus::Disproven => "disproven",
            HypothesisStatus::RequiresHuman => "requires_human",
            HypothesisStatus::Confirmed => "confirmed",
            HypothesisStatus::Rejected => "rejected",
        }
    }

    /// Whether moving to `next` is allowed by the lifecycle.
    pub fn can_become(self, next: HypothesisStatus) -> bool {
        use HypothesisStatus::*;
        matches!(
            (self, next),
            (Generated, Validating)
                | (Validating, Validated | Disproven | RequiresHuman)
                | (Validated | RequiresHuman | Disproven, Confirmed | Rejected)
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisproofStrategy {
    /// The effect started before the cause.
    Temporal,
    /// The cause's blast radius does not match the affected set.
    Scope,
    /// The metric never left its normal band.
    Threshold,
}

impl DisproofStrategy {
    pub fn as_str(self) -> &'static str {
        match self {
            DisproofStrategy::Temporal => "temporal",
            DisproofStrategy::Scope => "scope",
            DisproofStrategy::Threshold => "threshold",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisproofOutcome {
    Survived,
    Disproven,
    Inconclusive,
}

impl DisproofOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            DisproofOutcome::Survived => "survived",
            DisproofOutcome::Disproven => "disproven",
            DisproofOutcome::Inconclusive => "inconclusive",
        }
    }
}

/// One attempt to disprove a hypothesis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DisproofAttempt {
    pub strategy: DisproofStrategy,
    /// What we would see if the hypothesis were true.
    pub expected: String,
    /// What we saw.
    pub observed: String,
    pub outcome: DisproofOutcome,
}

/// A probability with the one-line reason for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Confidence {
    pub value: f64,
    pub reasoning: String,
}

/// A testable root-cause statement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hypothesis {
    pub id: String,
    pub statement: String,
    pub root_cause: RootCause,
    pub category: Category,
    /// Ids of the observations behind it.
    pub observation_ids: Vec<String>,
    pub supporting: Vec<Evidence>,
    pub contradicting: Vec<Evidence>,
    pub disproof: Vec<DisproofAttempt>,
    pub status: HypothesisStatus,
    pub confidence: Confidence,
    /// Agents that proposed it (several after a merge).
    pub proposed_by: Vec<String>,
    pub next_checks: Vec<String>,
    /// Earliest onset of the supporting observations.
    pub onset: EpochMs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    Succeeded,
    /// Finished, but some of its data was missing or broken (see `error`).
    Degraded,
    Failed,
    TimedOut,
    /// Cancelled because the budget or the deadline ran out.
    Cancelled,
}

impl AgentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Succeeded => "succeeded",
            AgentStatus::Degraded => "degraded",
            AgentStatus::Failed => "failed",
            AgentStatus::TimedOut => "timed_out",
            AgentStatus::Cancelled => "cancelled",
        }
    }
}

/// Tokens and money spent (LLM calls).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub usd: f64,
}

impl Cost {
    pub fn add(&mut self, other: &Cost) {
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
        self.usd += other.usd;
    }
    pub fn total_tokens(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }
}

/// One agent's run within an investigation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentRun {
    pub agent: String,
    pub status: AgentStatus,
    pub duration_ms: u64,
    pub observations: usize,
    pub hypotheses: usize,
    pub cost: Cost,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An entry in the investigation timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub time: EpochMs,
    pub label: String,
    pub service: Option<String>,
}

/// A human decision on a hypothesis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub hypothesis_id: String,
    pub confirmed: bool,
    pub by: String,
    pub note: String,
    pub at: EpochMs,
}

/// How an investigation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvestigationStatus {
    Completed,
    /// Completed but some agents failed or were degraded.
    Degraded,
    BudgetExhausted,
    DeadlineExceeded,
}

/// The whole record of one investigation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Investigation {
    pub id: String,
    pub incident: Incident,
    pub status: InvestigationStatus,
    /// The window the agents looked at.
    pub window: TimeRange,
    pub observations: Vec<Observation>,
    /// Ranked, best first.
    pub hypotheses: Vec<Hypothesis>,
    pub timeline: Vec<TimelineEntry>,
    pub agents: Vec<AgentRun>,
    pub cost: Cost,
    pub trace_id: String,
    pub decisions: Vec<Decision>,
    pub elapsed_ms: u64,
    /// What the LLM layer did; absent when no model was configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm: Option<LlmReport>,
}

/// What the LLM layer did in one investigation: every call with its tokens and cost,
/// what was redacted before anything left the machine, the follow-up queries it asked
/// for (and which were rejected), the hypotheses it added, and why a step fell back to
/// the deterministic result.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LlmReport {
    pub provider: String,
    pub model: String,
    pub calls: Vec<LlmCall>,
    /// Items redacted from the prompts, by kind (`email`, `ip`, `bearer_token`, ...).
    pub redactions: BTreeMap<String, usize>,
    /// The human summary the model wrote (absent when that step fell back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    pub follow_ups: Vec<FollowUp>,
    /// Ids of the hypotheses the model proposed that the deterministic agents had not.
    pub added_hypotheses: Vec<String>,
    /// One line per step that fell back to the deterministic result, saying why.
    pub fallbacks: Vec<String>,
}

impl LlmReport {
    pub fn redaction_total(&self) -> usize {
        self.redactions.values().sum()
    }
    pub fn cost(&self) -> Cost {
        let mut c = Cost::default();
        for call in &self.calls {
            c.add(&Cost {
                prompt_tokens: call.prompt_tokens,
                completion_tokens: call.completion_tokens,
                usd: call.usd,
            });
        }
        c
    }
}

/// One model call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlmCall {
    /// The step that made it (`hypotheses`, `follow_up`, `summary`).
    pub step: String,
    /// `ok`, `invalid` (answered, failed validation), `failed`, or `refused` (not made:
    /// over budget).
    pub outcome: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub usd: f64,
    pub duration_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A follow-up query the model asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FollowUp {
    /// `promql` or `logql`.
    pub language: String,
    pub query: String,
    /// Why the model wanted it.
    pub reason: String,
    pub outcome: FollowUpOutcome,
    /// What came back, or why it was rejected or failed.
    pub detail: String,
    /// The observation made from its result, when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observation_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FollowUpOutcome {
    Ran,
    /// Invalid or unbounded: not run.
    Rejected,
    /// Valid, but the data source failed.
    Failed,
    /// Valid, but not run (limit reached).
    Skipped,
}

impl Hypothesis {
    /// A freshly generated hypothesis backed by `observations` (their evidence becomes
    /// the supporting evidence; the earliest observation start is the onset).
    pub fn from_observations(
        agent: &str,
        root_cause: RootCause,
        statement: String,
        observations: &[&Observation],
        confidence: Confidence,
        next_checks: Vec<String>,
    ) -> Self {
        let onset = observations.iter().map(|o| o.span.start).min().unwrap_or(0);
        let id = format!(
            "{}:{}:{}",
            root_cause.service,
            root_cause.fault_kind.as_str(),
            root_cause.component.as_deref().unwrap_or("-")
        );
        Hypothesis {
            id,
            statement,
            category: root_cause.fault_kind.category(),
            root_cause,
            observation_ids: observations.iter().map(|o| o.id.clone()).collect(),
            supporting: observations.iter().map(|o| o.evidence.clone()).collect(),
            contradicting: Vec::new(),
            disproof: Vec::new(),
            status: HypothesisStatus::Generated,
            confidence,
            proposed_by: vec![agent.to_string()],
            next_checks,
            onset,
        }
    }
}
