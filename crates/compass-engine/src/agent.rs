//! The `Agent` port: a specialist that observes (queries its data sources and reports
//! what it saw) and orients (turns its observations into root-cause hypotheses).

use crate::budget::Budget;
use crate::catalog::MetricCatalog;
use crate::ports::{DataSources, SourceError};
use async_trait::async_trait;
use compass_core::{AnalysisWindow, CallGraph, Category, Cost, Hypothesis, Incident, Observation};
use thiserror::Error;

/// Everything an agent may use during one investigation.
#[derive(Debug, Clone)]
pub struct AgentContext {
    /// Data sources, already behind circuit breakers.
    pub sources: DataSources,
    pub window: AnalysisWindow,
    /// Who calls whom (empty when no trace source could tell).
    pub graph: CallGraph,
    /// Every service known to the sources in the window, sorted.
    pub services: Vec<String>,
    pub catalog: MetricCatalog,
    pub budget: Budget,
    /// Metric resolution in milliseconds.
    pub step_ms: i64,
}

/// What `observe` returns.
#[derive(Debug, Clone, Default)]
pub struct AgentOutput {
    pub observations: Vec<Observation>,
    /// Data problems met (malformed lines, a missing file): the agent ran but is degraded.
    pub problems: Vec<String>,
    /// What the agent spent, for the record. Agents charge `ctx.budget` as they spend
    /// (that is what lets the coordinator cancel the others when it runs out).
    pub cost: Cost,
}

#[derive(Debug, Clone, Error, PartialEq)]
pub enum AgentError {
    #[error("no {0} source is configured")]
    MissingSource(&'static str),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("timed out after {} s", .0.as_secs_f64())]
    TimedOut(std::time::Duration),
    #[error("budget exhausted")]
    BudgetExhausted,
    #[error("internal error: {0}")]
    Internal(String),
}

impl AgentError {
    /// Data problems degrade an agent; anything else fails it.
    pub fn is_data_problem(&self) -> bool {
        matches!(self, AgentError::MissingSource(_) | AgentError::Source(_))
    }
}

#[async_trait]
pub trait Agent: Send + Sync {
    /// Stable, unique, lowercase (`application`, `tracing`, ...).
    fn name(&self) -> &'static str;
    /// Root-cause categories this agent is good at (weights its votes in conflicts).
    fn expertise(&self) -> &'static [Category];
    /// Query the data sources for the incident window and report what was seen.
    async fn observe(
        &self,
        incident: &Incident,
        ctx: &AgentContext,
    ) -> Result<AgentOutput, AgentError>;
    /// Turn this agent's observations into hypotheses (pure).
    fn orient(&self, observations: &[Observation], ctx: &AgentContext) -> Vec<Hypothesis>;
}
