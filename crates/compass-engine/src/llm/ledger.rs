//! The cost ledger port: every model call's tokens and cost, persisted by the store,
//! so spend can be reported per investigation, per agent, per model and per day, and
//! the daily budget holds across processes.

use async_trait::async_trait;
use compass_core::{EpochMs, TimeRange};
use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use thiserror::Error;

/// How a recorded call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallOutcome {
    /// Answered and the answer was usable.
    Ok,
    /// Answered, but the answer failed validation.
    Invalid,
    /// The call failed (timeout, unavailable, rejected, unreadable).
    Failed,
}

impl CallOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            CallOutcome::Ok => "ok",
            CallOutcome::Invalid => "invalid",
            CallOutcome::Failed => "failed",
        }
    }
}

/// One model call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// When the call finished, epoch ms UTC.
    pub at: EpochMs,
    pub investigation_id: String,
    /// The LLM step that made the call (`hypotheses`, `follow_up`, `summary`, `check`).
    pub agent: String,
    pub provider: String,
    pub model: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub usd: f64,
    /// Whether the tokens are the provider's own report (`false`: counted here).
    pub reported: bool,
    pub outcome: CallOutcome,
}

#[derive(Debug, Clone, Error, PartialEq)]
#[error("cost ledger: {0}")]
pub struct LedgerError(pub String);

/// Where call costs are kept.
#[async_trait]
pub trait CostLedger: Send + Sync {
    /// Append one entry. Entries are never changed or deleted.
    async fn record(&self, entry: &LedgerEntry) -> Result<(), LedgerError>;
    /// Entries with `at` in `range`, oldest first.
    async fn entries(&self, range: TimeRange) -> Result<Vec<LedgerEntry>, LedgerError>;
    /// Total USD spent in `range`.
    async fn spent_usd(&self, range: TimeRange) -> Result<f64, LedgerError> {
        Ok(self.entries(range).await?.iter().map(|e| e.usd).sum())
    }
}

/// A ledger in memory (tests, and runs with no store configured).
#[derive(Debug, Default)]
pub struct MemoryLedger {
    entries: Mutex<Vec<LedgerEntry>>,
}

impl MemoryLedger {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl CostLedger for MemoryLedger {
    async fn record(&self, entry: &LedgerEntry) -> Result<(), LedgerError> {
        self.entries
            .lock()
            .expect("ledger lock")
            .push(entry.clone());
        Ok(())
    }
    async fn entries(&self, range: TimeRange) -> Result<Vec<LedgerEntry>, LedgerError> {
        let mut v: Vec<LedgerEntry> = self
            .entries
            .lock()
            .expect("ledger lock")
            .iter()
            .filter(|e| range.contains(e.at))
            .cloned()
            .collect();
        v.sort_by_key(|e| e.at);
        Ok(v)
    }
}

/// The UTC day `[00:00, 24:00)` holding `at`.
pub fn utc_day(at: EpochMs) -> TimeRange {
    const DAY: i64 = 86_400_000;
    let start = at.div_euclid(DAY) * DAY;
    TimeRange::new(start, start + DAY)
}
