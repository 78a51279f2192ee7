//! The `Store` port: what `compass serve` keeps between requests and across replicas —
//! incidents and the alerts folded into them, investigations as leased jobs with their
//! progress events and results, human decisions, API tokens (hashes only) and the
//! audit log. The SQL implementation (SQLite and PostgreSQL) lives in
//! `compass-adapters::store`; both pass one conformance suite.
//!
//! Jobs: an investigation is `queued` until a replica leases it (`lease`); the holder
//! renews the lease while it works and is the only one who can finish it. A holder that
//! dies stops renewing, the lease expires and the next `lease` call takes the job over
//! (its attempt count goes up); after `max_attempts` the job fails instead of looping.

use async_trait::async_trait;
use compass_core::{EpochMs, Incident, Investigation};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A store failure. `kind()` drives HTTP statuses and retries.
#[derive(Debug, Clone, Error, PartialEq)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    BadInput(String),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Internal(String),
}

/// The coarse kind of a [`StoreError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorKind {
    NotFound,
    Conflict,
    BadInput,
    Unavailable,
    Internal,
}

impl StoreError {
    pub fn kind(&self) -> StoreErrorKind {
        match self {
            StoreError::NotFound(_) => StoreErrorKind::NotFound,
            StoreError::Conflict(_) => StoreErrorKind::Conflict,
            StoreError::BadInput(_) => StoreErrorKind::BadInput,
            StoreError::Unavailable(_) => StoreErrorKind::Unavailable,
            StoreError::Internal(_) => StoreErrorKind::Internal,
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Whether an incident still needs attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentState {
    Open,
    Resolved,
}

impl IncidentState {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentState::Open => "open",
            IncidentState::Resolved => "resolved",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(IncidentState::Open),
            "resolved" => Some(IncidentState::Resolved),
            _ => None,
        }
    }
}

/// An incident as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentRecord {
    pub id: String,
    /// Alerts with the same group key fold into one open incident.
    pub group_key: String,
    pub incident: Incident,
    pub state: IncidentState,
    /// Distinct alerts folded into it.
    pub alert_count: u64,
    /// Alerts among them still firing.
    pub firing_count: u64,
    pub opened_at: EpochMs,
    pub updated_at: EpochMs,
    pub resolved_at: Option<EpochMs>,
}

/// One alert from a webhook, already parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertIn {
    /// Identifies the alert across repeats (Alertmanager's `fingerprint`).
    pub fingerprint: String,
    /// Alerts sharing it belong to one incident while it is open (Alertmanager's
    /// `groupKey`; the generic webhook's `group`, else the alert name).
    pub group_key: String,
    pub firing: bool,
    /// The incident this alert would open (title, severity, onset, services, labels).
    pub incident: Incident,
    pub received_at: EpochMs,
}

/// How alert storms are collapsed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StormPolicy {
    /// At most this many incidents are opened per `window_ms`; alerts of further new
    /// groups join the most recently opened incident instead of opening their own.
    pub max_new_incidents: u64,
    pub window_ms: i64,
}

impl Default for StormPolicy {
    fn default() -> Self {
        Self {
            max_new_incidents: 20,
            window_ms: 60_000,
        }
    }
}

/// What happened to one alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum IntakeOutcome {
    /// A new incident was opened and an investigation queued for it.
    Opened {
        incident_id: String,
        investigation_id: String,
    },
    /// The alert was already part of an open incident.
    Deduplicated { incident_id: String },
    /// A new alert joined an open incident (same group, or a storm).
    Joined { incident_id: String },
    /// A resolved alert; `closed` when it was the incident's last firing one.
    Resolved { incident_id: String, closed: bool },
    /// A resolved alert for no open incident.
    Ignored,
}

impl IntakeOutcome {
    pub fn label(&self) -> &'static str {
        match self {
            IntakeOutcome::Opened { .. } => "opened",
            IntakeOutcome::Deduplicated { .. } => "deduplicated",
            IntakeOutcome::Joined { .. } => "joined",
            IntakeOutcome::Resolved { .. } => "resolved",
            IntakeOutcome::Ignored => "ignored",
        }
    }
}

/// Where an investigation job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Completed,
    Degraded,
    BudgetExhausted,
    DeadlineExceeded,
    Failed,
    Cancelled,
}

impl JobState {
    pub const ALL: [JobState; 8] = [
        JobState::Queued,
        JobState::Running,
        JobState::Completed,
        JobState::Degraded,
        JobState::BudgetExhausted,
        JobState::DeadlineExceeded,
        JobState::Failed,
        JobState::Cancelled,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Completed => "completed",
            JobState::Degraded => "degraded",
            JobState::BudgetExhausted => "budget_exhausted",
            JobState::DeadlineExceeded => "deadline_exceeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|j| j.as_str() == s)
    }
    /// Finished: no worker will touch it again.
    pub fn is_final(self) -> bool {
        !matches!(self, JobState::Queued | JobState::Running)
    }
}

/// An investigation job as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvestigationRecord {
    pub id: String,
    pub incident_id: String,
    pub state: JobState,
    pub priority: i64,
    pub created_at: EpochMs,
    pub started_at: Option<EpochMs>,
    pub finished_at: Option<EpochMs>,
    /// Leases taken on it so far (more than one: a replica died holding it).
    pub attempts: u32,
    pub lease_owner: Option<String>,
    pub lease_until: Option<EpochMs>,
    pub cancel_requested: bool,
    /// Why it failed or was cancelled.
    pub error: Option<String>,
    /// The top hypothesis' id and confidence, once finished.
    pub top_hypothesis: Option<String>,
    pub top_confidence: Option<f64>,
}

/// The queue priority of an investigation: critical incidents first.
pub fn priority_of(severity: compass_core::Severity) -> i64 {
    match severity {
        compass_core::Severity::Critical => 2,
        compass_core::Severity::Warning => 1,
        compass_core::Severity::Info => 0,
    }
}

/// A job a worker holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Lease {
    pub investigation_id: String,
    pub incident: Incident,
    pub owner: String,
    /// 1 on the first lease; more after takeovers.
    pub attempt: u32,
    pub until: EpochMs,
}

/// What renewing a lease found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseCheck {
    Held {
        cancel_requested: bool,
    },
    /// Another worker holds it now, or it was finished: stop and discard.
    Lost,
}

/// How a worker finished a job.
#[derive(Debug, Clone, PartialEq)]
pub struct Finish<'a> {
    pub state: JobState,
    pub result: Option<&'a Investigation>,
    pub error: Option<String>,
}

/// One progress event of an investigation, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgressRecord {
    pub seq: u64,
    pub at: EpochMs,
    /// `leased`, `started`, `agent_finished`, `orienting`, `consulting`, `finished`.
    pub kind: String,
    pub data: serde_json::Value,
}

/// A human verdict on a hypothesis (the feedback COMPASS learns from).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    pub investigation_id: String,
    pub hypothesis_id: String,
    pub confirmed: bool,
    pub note: String,
    pub actor: String,
    pub at: EpochMs,
}

/// One audited mutating call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub at: EpochMs,
    /// The token's name, `webhook:<receiver>`, or `system`.
    pub actor: String,
    /// `incident.create`, `investigation.start`, `decision.record`, ...
    pub action: String,
    pub target: String,
    pub detail: String,
}

/// What an API token may do; each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Read incidents, investigations and decisions.
    Viewer,
    /// Also create incidents, start and cancel investigations, record decisions.
    Responder,
    /// Also approve actions.
    Approver,
    /// Also manage tokens and read the audit log.
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Responder, Role::Approver, Role::Admin];
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Responder => "responder",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// An API token as stored: never the token itself, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub created_at: EpochMs,
    pub revoked_at: Option<EpochMs>,
}

/// The service's durable state.
#[async_trait]
pub trait Store: Send + Sync {
    /// Which backend ("sqlite", "postgres").
    fn backend(&self) -> &'static str;
    /// A cheap round trip, for readiness.
    async fn ping(&self) -> StoreResult<()>;

    /// Fold one alert in: dedup by fingerprint, group into an open incident, collapse
    /// storms, close on the last resolve. Opening an incident queues its investigation
    /// in the same transaction.
    async fn intake_alert(&self, alert: &AlertIn, storm: StormPolicy)
    -> StoreResult<IntakeOutcome>;
    /// An incident created through the API (its own group), with a queued investigation.
    async fn create_incident(
        &self,
        incident: &Incident,
        at: EpochMs,
    ) -> StoreResult<(IncidentRecord, String)>;
    async fn incident(&self, id: &str) -> StoreResult<IncidentRecord>;
    /// Newest first.
    async fn incidents(
        &self,
        state: Option<IncidentState>,
        limit: u32,
    ) -> StoreResult<Vec<IncidentRecord>>;

    /// Queue an investigation of an existing incident; returns its id.
    async fn enqueue(&self, incident_id: &str, priority: i64, at: EpochMs) -> StoreResult<String>;
    /// Take the most urgent queued job, or one whose lease expired, for `lease_ms`.
    /// Jobs already leased `max_attempts` times fail instead.
    async fn lease(
        &self,
        owner: &str,
        now: EpochMs,
        lease_ms: i64,
        max_attempts: u32,
    ) -> StoreResult<Option<Lease>>;
    /// Extend a held lease to `until`.
    async fn renew(&self, id: &str, owner: &str, until: EpochMs) -> StoreResult<LeaseCheck>;
    /// Finish a held job; `false` when the lease was lost (nothing written).
    async fn finish(
        &self,
        id: &str,
        owner: &str,
        finish: Finish<'_>,
        at: EpochMs,
    ) -> StoreResult<bool>;
    /// Cancel: a queued job at once, a running one at its holder's next renewal.
    async fn cancel(&self, id: &str, at: EpochMs) -> StoreResult<InvestigationRecord>;
    async fn investigation(&self, id: &str) -> StoreResult<InvestigationRecord>;
    /// The stored result of a finished investigation.
    async fn result(&self, id: &str) -> StoreResult<Option<Investigation>>;
    /// Newest first; all incidents when `incident_id` is `None`.
    async fn investigations(
        &self,
        incident_id: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<InvestigationRecord>>;
    /// Jobs by state (for the queue-depth gauge and the UI).
    async fn job_counts(&self) -> StoreResult<Vec<(JobState, u64)>>;

    /// Append a progress event (only the lease holder writes them); returns its seq.
    async fn append_progress(
        &self,
        id: &str,
        kind: &str,
        data: &serde_json::Value,
        at: EpochMs,
    ) -> StoreResult<u64>;
    /// Events with `seq > after`, in order.
    async fn progress(&self, id: &str, after: u64) -> StoreResult<Vec<ProgressRecord>>;

    async fn record_decision(&self, decision: &DecisionRecord) -> StoreResult<()>;
    /// Oldest first; the latest per hypothesis is the one that stands.
    async fn decisions(&self, investigation_id: &str) -> StoreResult<Vec<DecisionRecord>>;

    async fn audit(&self, record: &AuditRecord) -> StoreResult<()>;
    /// Newest first.
    async fn audit_log(&self, limit: u32) -> StoreResult<Vec<AuditRecord>>;

    /// Store a token's hash; the token itself is shown once and never kept.
    async fn create_token(
        &self,
        name: &str,
        role: Role,
        sha256_hex: &str,
        at: EpochMs,
    ) -> StoreResult<TokenRecord>;
    /// The live (not revoked) token with this hash.
    async fn token_by_hash(&self, sha256_hex: &str) -> StoreResult<Option<TokenRecord>>;
    async fn tokens(&self) -> StoreResult<Vec<TokenRecord>>;
    /// Revoke by id or name.
    async fn revoke_token(&self, id_or_name: &str, at: EpochMs) -> StoreResult<TokenRecord>;
}
